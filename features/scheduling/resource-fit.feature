Feature: Resource fit
  The scheduler places pods by their requests against each node's allocatable resources, and
  says exactly why no node fits.

  @B-SCHED-002 @B-SCHED-003 @needs:workloads
  Scenario: A pod requesting more CPU than any node has stays Pending with upstream's message
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: big
      spec:
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1000"
      """
    Then an Event with reason "FailedScheduling" and message containing "0/{{ nodes }} nodes are available: {{ nodes }} Insufficient cpu. preemption: 0/{{ nodes }} nodes are available: {{ nodes }} No preemption victims found for incoming pod.." exists for pod "big" within 30 seconds
    And pod "big" matches:
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
    And pod "big" has "{.status.conditions[?(@.type=='PodScheduled')].message}" equal to "0/{{ nodes }} nodes are available: {{ nodes }} Insufficient cpu. preemption: 0/{{ nodes }} nodes are available: {{ nodes }} No preemption victims found for incoming pod.."

  @B-SCHED-003 @needs:workloads
  Scenario: A pod requesting more memory than any node has is rejected for Insufficient memory
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: hungry
      spec:
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              memory: 100Ti
      """
    Then pod "hungry" has "{.status.conditions[?(@.type=='PodScheduled')].message}" equal to "0/{{ nodes }} nodes are available: {{ nodes }} Insufficient memory. preemption: 0/{{ nodes }} nodes are available: {{ nodes }} No preemption victims found for incoming pod.." within 30 seconds
    And pod "hungry" has "{.spec.nodeName}" equal to "" for 2 seconds

  @B-SCHED-004 @B-SCHED-015 @serial @needs:workloads @needs:sim-nodes
  Scenario: Only requests count toward a node's capacity, not limits or usage
    Given a namespace
    And I remember the name of a Ready node as "node"
    And node "{{ node }}" has "{.status.allocatable.cpu}" equal to "4"
    # Each pod asks for 1 CPU, may burst to all 4 and says it uses 4: four still fit.
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: p1
        labels:
          app: burst
        annotations:
          sim.kubeproof.dev/cpu-usage: "4"
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1"
            limits:
              cpu: "4"
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: p2
        labels:
          app: burst
        annotations:
          sim.kubeproof.dev/cpu-usage: "4"
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1"
            limits:
              cpu: "4"
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: p3
        labels:
          app: burst
        annotations:
          sim.kubeproof.dev/cpu-usage: "4"
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1"
            limits:
              cpu: "4"
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: p4
        labels:
          app: burst
        annotations:
          sim.kubeproof.dev/cpu-usage: "4"
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1"
            limits:
              cpu: "4"
      """
    Then there are 4 pods with label "app=burst" in phase Running within 60 seconds
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: p5
        labels:
          app: burst
        annotations:
          sim.kubeproof.dev/cpu-usage: "4"
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: "1"
            limits:
              cpu: "4"
      """
    Then pod "p5" has "{.status.conditions[?(@.type=='PodScheduled')].message}" containing "1 Insufficient cpu" within 30 seconds
    And pod "p5" has "{.spec.nodeName}" equal to "" for 2 seconds
    And there are 4 pods with label "app=burst" in phase Running
    # Freeing one CPU's worth of requests lets the pending pod in without any user action.
    When I delete pod "p1"
    Then pod "p5" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds
    And pod "p5" has "{.status.phase}" equal to "Running" within 30 seconds

  @B-SCHED-020 @serial @needs:workloads
  Scenario: A node takes at most its pod capacity and the next pod aimed at it waits for Too many pods
    Given a namespace
    And I remember the name of a Ready node as "node"
    And node "{{ node }}" has "{.status.allocatable.pods}" equal to "110"
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: many
      spec:
        replicas: 112
        selector:
          matchLabels:
            app: many
        template:
          metadata:
            labels:
              app: many
          spec:
            nodeSelector:
              kubernetes.io/hostname: "{{ node }}"
            containers:
            - name: app
              image: pause:3.10
      """
    Then there are 110 pods with label "app=many" in phase Running within 120 seconds
    And there are 2 pods with label "app=many" in phase Pending within 30 seconds
    When I remember the name of a pod with label "app=many" in phase Pending as "pending"
    Then pod "{{ pending }}" has "{.status.conditions[?(@.type=='PodScheduled')].message}" containing "1 Too many pods" within 60 seconds
    And pod "{{ pending }}" has "{.spec.nodeName}" equal to ""
