Feature: Node-pressure eviction
  When a node runs short of memory the kubelet evicts pods to reclaim it: first those using
  more than they request (the largest excess first), Guaranteed pods last. An evicted pod stays
  behind as Failed with reason Evicted and a message naming the starved resource, the node
  reports MemoryPressure while it lasts, and the control plane taints it.

  @B-NODE-018 @B-NODE-020 @B-FAIL-013 @B-FAIL-024 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: Memory pressure evicts the pod furthest over its requests and spares the others
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: hog
        annotations:
          sim.kubeproof.dev/memory-usage: 950Mi
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
        name: burstable
        annotations:
          sim.kubeproof.dev/memory-usage: 200Mi
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              memory: 64Mi
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: guaranteed
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
            limits:
              cpu: 100m
              memory: 64Mi
      """
    Then pod "hog" has "{.status.phase}" equal to "Running" within 60 seconds
    And pod "burstable" has "{.status.phase}" equal to "Running" within 60 seconds
    And pod "guaranteed" has "{.status.phase}" equal to "Running" within 60 seconds
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/memory-available=1200Mi"
    Then pod "hog" matches within 60 seconds:
      """
      status:
        phase: Failed
        reason: Evicted
      """
    And pod "hog" has "{.status.message}" matching "^The node was low on resource: memory\. Threshold quantity: 100Mi, available: [0-9]+[KMG]?i?\. Container app was using 950Mi, request is 0, has larger consumption of memory\. $"
    And an Event with reason "Evicted" and message containing "The node was low on resource: memory." exists for pod "hog" within 30 seconds
    And node "{{ node }}" has "{.status.conditions[?(@.type=='MemoryPressure')].status}" equal to "True" within 30 seconds
    And pod "burstable" has "{.status.phase}" equal to "Running"
    And pod "guaranteed" has "{.status.phase}" equal to "Running"
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/memory-available-"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='MemoryPressure')].status}" equal to "False" within 60 seconds
    And pod "burstable" has "{.status.phase}" equal to "Running"
    And pod "guaranteed" has "{.status.phase}" equal to "Running"
