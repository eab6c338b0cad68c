Feature: Priority and preemption
  A pending pod that outranks pods on a node makes the scheduler evict lower-priority victims,
  nominate the node for it and then bind it there.

  @B-SCHED-013 @serial @needs:workloads @needs:sim-nodes
  Scenario: A high-priority pod preempts a low-priority pod and takes its place
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: scheduling.k8s.io/v1
      kind: PriorityClass
      metadata:
        name: low-{{ suffix }}
      value: 100
      ---
      apiVersion: scheduling.k8s.io/v1
      kind: PriorityClass
      metadata:
        name: high-{{ suffix }}
      value: 1000000
      """
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: low
        annotations:
          # The victim lingers until its grace period ends, so the preemptor is seen waiting
          # on its nominated node.
          sim.kubeproof.dev/ignore-sigterm: "true"
      spec:
        priorityClassName: low-{{ suffix }}
        terminationGracePeriodSeconds: 6
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "3"
      """
    Then pod "low" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "low" has "{.spec.priority}" equal to "100"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: high
      spec:
        priorityClassName: high-{{ suffix }}
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "3"
      """
    Then pod "high" has "{.status.nominatedNodeName}" equal to "{{ node }}" within 30 seconds
    And pod "low" matches within 10 seconds:
      """
      metadata:
        deletionGracePeriodSeconds: 6
      status:
        conditions:
        - type: DisruptionTarget
          status: "True"
          reason: PreemptionByScheduler
      """
    And an Event with reason "Preempted" and message containing "Preempted by pod" exists for pod "low" within 10 seconds
    And pod "high" has "{.spec.nodeName}" equal to ""
    And pod "low" does not exist within 30 seconds
    And pod "high" has "{.spec.nodeName}" equal to "{{ node }}" within 30 seconds
    And pod "high" has "{.status.phase}" equal to "Running" within 30 seconds

  @B-SCHED-013 @serial @needs:workloads
  Scenario: A pod with preemptionPolicy Never waits instead of preempting
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: scheduling.k8s.io/v1
      kind: PriorityClass
      metadata:
        name: low-{{ suffix }}
      value: 100
      ---
      apiVersion: scheduling.k8s.io/v1
      kind: PriorityClass
      metadata:
        name: polite-{{ suffix }}
      value: 1000000
      preemptionPolicy: Never
      """
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: low
      spec:
        priorityClassName: low-{{ suffix }}
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "3"
      """
    Then pod "low" has "{.status.phase}" equal to "Running" within 30 seconds
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: polite
      spec:
        priorityClassName: polite-{{ suffix }}
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "3"
      """
    Then pod "polite" has "{.spec.preemptionPolicy}" equal to "Never"
    And an Event with reason "FailedScheduling" and message containing "preemption: not eligible due to preemptionPolicy=Never." exists for pod "polite" within 30 seconds
    And pod "low" has "{.status.phase}" equal to "Running" for 3 seconds
    And pod "polite" has "{.status.nominatedNodeName}" equal to ""
    And pod "polite" has "{.spec.nodeName}" equal to ""
