Feature: Troubleshooting pods stuck in Pending
  A Pending pod that the scheduler could not place says why: its PodScheduled condition is False
  with reason Unschedulable and a FailedScheduling Event from the scheduler names, per node, what
  did not fit. Fixing the cause (smaller requests, a node label, a toleration) gets it bound
  without recreating anything else. A Pending pod with no Events at all was never seen by a
  scheduler: the one it asks for (spec.schedulerName) is not running.

  @B-FAIL-001 @needs:workloads
  Scenario: Requests larger than any node leave the pod Pending with Insufficient cpu until they are lowered
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: big
      spec:
        replicas: 1
        selector:
          matchLabels:
            app: big
        template:
          metadata:
            labels:
              app: big
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: app
              image: nginx:1.26
              resources:
                requests:
                  cpu: "1000"
      """
    Then there is 1 pod with label "app=big" in phase Pending within 30 seconds
    When I remember the name of a pod with label "app=big" in phase Pending as "stuck"
    Then pod "{{ stuck }}" matches within 30 seconds:
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
    And pod "{{ stuck }}" has "{.status.conditions[?(@.type=='PodScheduled')].message}" containing "0/{{ nodes }} nodes are available: {{ nodes }} Insufficient cpu."
    And an Event with reason "FailedScheduling" and message containing "0/{{ nodes }} nodes are available: {{ nodes }} Insufficient cpu." exists for pod "{{ stuck }}" within 10 seconds
    When I patch deployment "big" with strategic patch:
      """
      spec:
        template:
          spec:
            containers:
            - name: app
              resources:
                requests:
                  cpu: 10m
      """
    Then there is 1 ready pod with label "app=big" within 60 seconds
    And pod "{{ stuck }}" does not exist within 30 seconds

  @B-FAIL-002 @serial @needs:workloads @needs:node-control
  Scenario: A nodeSelector no node matches leaves the pod Pending until a node is labelled
    Given a namespace
    And I remember the number of nodes as "nodes"
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: picky
      spec:
        nodeSelector:
          disk-{{ suffix }}: ssd
        containers:
        - name: app
          image: nginx:1.26
      """
    Then an Event with reason "FailedScheduling" and message containing "0/{{ nodes }} nodes are available: {{ nodes }} node(s) didn't match Pod's node affinity/selector." exists for pod "picky" within 30 seconds
    And pod "picky" has "{.status.conditions[?(@.type=='PodScheduled')].reason}" equal to "Unschedulable" within 10 seconds
    And pod "picky" has "{.spec.nodeName}" equal to ""
    When I label node "{{ node }}" with "disk-{{ suffix }}=ssd"
    Then pod "picky" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds
    And pod "picky" has "{.status.conditions[?(@.type=='PodScheduled')].status}" equal to "True" within 10 seconds
    And an Event with reason "Scheduled" exists for pod "picky" within 10 seconds

  @B-FAIL-003 @serial @needs:workloads @needs:node-control
  Scenario: An untolerated taint is named in the event; adding the toleration gets the pod bound
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I add taint "dedicated-{{ suffix }}=db:NoSchedule" to node "{{ node }}"
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: app
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      """
    Then an Event with reason "FailedScheduling" and message containing "1 node(s) had untolerated taint {dedicated-{{ suffix }}: db}" exists for pod "app" within 30 seconds
    And pod "app" matches within 10 seconds:
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
    When I patch pod "app" with json patch:
      """
      - op: add
        path: /spec/tolerations/-
        value:
          key: dedicated-{{ suffix }}
          operator: Equal
          value: db
          effect: NoSchedule
      """
    Then pod "app" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds
    And pod "app" has "{.status.phase}" equal to "Running" within 30 seconds

  @B-FAIL-005 @needs:workloads
  Scenario: A pod whose scheduler is not running stays Pending without a single Event
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: orphan
      spec:
        schedulerName: absent-scheduler-{{ suffix }}
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "orphan" has "{.status.phase}" equal to "Pending" for 5 seconds
    And there are no events for pod "orphan"
    And pod "orphan" matches:
      """
      spec:
        nodeName: null
        schedulerName: absent-scheduler-{{ suffix }}
      status:
        conditions: null
      """
