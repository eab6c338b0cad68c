Feature: Taints and tolerations
  A NoSchedule taint keeps pods that do not tolerate it off a node; a NoExecute taint also
  evicts running pods that do not tolerate it, after their tolerationSeconds if they have one.

  @B-SCHED-006 @serial @needs:workloads @needs:node-control
  Scenario: A NoSchedule taint repels pods without a matching toleration and admits those with one
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I add taint "gpu=true:NoSchedule" to node "{{ node }}"
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: plain
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: tolerant
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        tolerations:
        - key: gpu
          operator: Equal
          value: "true"
          effect: NoSchedule
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "tolerant" has "{.spec.nodeName}" equal to "{{ node }}" within 30 seconds
    And pod "tolerant" has "{.status.phase}" equal to "Running" within 30 seconds
    And an Event with reason "FailedScheduling" and message containing "1 node(s) had untolerated taint {gpu: true}" exists for pod "plain" within 30 seconds
    And pod "plain" matches:
      """
      spec:
        nodeName: null
      status:
        phase: Pending
        conditions:
        - type: PodScheduled
          status: "False"
          reason: Unschedulable
      """
    When I remove taint "gpu:NoSchedule" from node "{{ node }}"
    Then pod "plain" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds

  @B-SCHED-006 @serial @needs:workloads @needs:node-control
  Scenario: A NoExecute taint evicts pods that do not tolerate it and keeps those that do
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: plain
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: forever
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        tolerations:
        - key: maintenance
          operator: Exists
          effect: NoExecute
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: briefly
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        tolerations:
        - key: maintenance
          operator: Exists
          effect: NoExecute
          tolerationSeconds: 3
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "plain" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "forever" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "briefly" has "{.status.phase}" equal to "Running" within 30 seconds
    When I add taint "maintenance=now:NoExecute" to node "{{ node }}"
    Then pod "plain" does not exist within 30 seconds
    And an Event with reason "TaintManagerEviction" exists for pod "plain" within 10 seconds
    And pod "briefly" does not exist within 30 seconds
    And pod "forever" exists for 3 seconds
    And pod "forever" has "{.status.phase}" equal to "Running"
