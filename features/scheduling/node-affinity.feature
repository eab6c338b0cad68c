Feature: Node affinity and nodeSelector
  nodeSelector and required node affinity restrict which nodes a pod may run on; preferred
  node affinity steers it without restricting it.

  @B-SCHED-005 @B-SCHED-015 @serial @needs:workloads @needs:node-control
  Scenario: A nodeSelector no node satisfies keeps the pod Pending until a node is labelled
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: ssd
      spec:
        nodeSelector:
          disk-{{ suffix }}: ssd
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "ssd" has "{.status.conditions[?(@.type=='PodScheduled')].message}" equal to "0/{{ nodes }} nodes are available: {{ nodes }} node(s) didn't match Pod's node affinity/selector. preemption: 0/{{ nodes }} nodes are available: {{ nodes }} Preemption is not helpful for scheduling.." within 30 seconds
    And an Event with reason "FailedScheduling" and message containing "didn't match Pod's node affinity/selector" exists for pod "ssd" within 10 seconds
    And pod "ssd" has "{.spec.nodeName}" equal to "" for 2 seconds
    When I remember the name of a Ready node as "node"
    And I label node "{{ node }}" with "disk-{{ suffix }}=ssd"
    Then pod "ssd" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds
    And pod "ssd" has "{.status.phase}" equal to "Running" within 30 seconds

  @B-SCHED-005 @needs:workloads
  Scenario: Required node affinity with an operator no node satisfies keeps the pod Pending
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: picky
      spec:
        affinity:
          nodeAffinity:
            requiredDuringSchedulingIgnoredDuringExecution:
              nodeSelectorTerms:
              - matchExpressions:
                - key: kubernetes.io/hostname
                  operator: In
                  values: ["no-such-node-{{ suffix }}"]
        containers:
        - name: app
          image: nginx:1.26
      """
    Then an Event with reason "FailedScheduling" and message containing "didn't match Pod's node affinity/selector" exists for pod "picky" within 30 seconds
    And pod "picky" has "{.spec.nodeName}" equal to "" for 2 seconds

  @B-SCHED-005 @needs:workloads
  Scenario: Required node affinity places the pod on a matching node
    Given a namespace
    And I remember the name of a Ready node as "first"
    And I remember the name of a Ready node other than "{{ first }}" as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: placed
      spec:
        affinity:
          nodeAffinity:
            requiredDuringSchedulingIgnoredDuringExecution:
              nodeSelectorTerms:
              - matchExpressions:
                - key: kubernetes.io/hostname
                  operator: In
                  values: ["{{ node }}"]
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "placed" has "{.spec.nodeName}" equal to "{{ node }}" within 30 seconds

  @B-SCHED-012 @needs:workloads
  Scenario: Preferred node affinity steers pods to the preferred node
    Given a namespace
    And I remember the name of a Ready node as "first"
    And I remember the name of a Ready node other than "{{ first }}" as "node"
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: steer
      spec:
        replicas: 3
        selector:
          matchLabels:
            app: steer
        template:
          metadata:
            labels:
              app: steer
          spec:
            affinity:
              nodeAffinity:
                preferredDuringSchedulingIgnoredDuringExecution:
                - weight: 100
                  preference:
                    matchExpressions:
                    - key: kubernetes.io/hostname
                      operator: In
                      values: ["{{ node }}"]
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there are 3 pods with label "app=steer" in phase Running within 60 seconds
    And 3 pods exist with label "app=steer"
    When I list pods with label selector "app=steer" with field selector "spec.nodeName={{ node }}"
    Then the last list has 3 items
