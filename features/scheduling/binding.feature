Feature: Binding pods to nodes
  The scheduler binds every pod with an empty nodeName that names it (default-scheduler) to a
  node; a pod naming another scheduler is left alone, and a pod that sets nodeName itself goes
  straight to that node's kubelet.

  @B-SCHED-001 @needs:workloads
  Scenario: The scheduler binds a pod and records PodScheduled and a Scheduled event
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "web" has "{.spec.nodeName}" not equal to "" within 30 seconds
    When I remember "{.spec.nodeName}" of pod "web" as "node"
    Then pod "web" matches within 30 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: PodScheduled
          status: "True"
      """
    And an Event with reason "Scheduled" and message containing "Successfully assigned {{ namespace }}/web to {{ node }}" exists for pod "web" within 10 seconds

  @B-SCHED-008 @needs:workloads
  Scenario: A pod naming a scheduler that does not run stays Pending without any scheduling events
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: orphan
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "orphan" has "{.spec.nodeName}" equal to "" for 5 seconds
    And pod "orphan" has "{.status.phase}" equal to "Pending"
    And pod "orphan" has "{.status.conditions[?(@.type=='PodScheduled')].status}" equal to ""
    And 0 events exist

  @B-SCHED-001 @needs:workloads
  Scenario: A pod that sets nodeName bypasses the scheduler and runs on that node
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: direct
      spec:
        nodeName: "{{ node }}"
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "direct" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "direct" has "{.spec.nodeName}" equal to "{{ node }}"
    And pod "direct" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 10 seconds

  @B-NODE-006 @needs:workloads
  Scenario: The kubelet rejects a pod forced onto a node without room for its requests
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: forced
      spec:
        nodeName: "{{ node }}"
        restartPolicy: Never
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1000"
      """
    Then pod "forced" matches within 30 seconds:
      """
      status:
        phase: Failed
        reason: OutOfcpu
      """
    And pod "forced" has "{.status.message}" containing "Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000, used: "
