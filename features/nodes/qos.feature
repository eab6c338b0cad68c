Feature: Quality of service classes
  Every pod gets a QoS class from its containers' requests and limits; limits alone default
  the requests.

  @B-NODE-016 @B-NODE-017
  Scenario: Pods are Guaranteed, Burstable or BestEffort by their requests and limits
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: guaranteed
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests: {cpu: 250m, memory: 64Mi}
            limits: {cpu: 250m, memory: 64Mi}
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: burstable
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
          resources:
            requests: {cpu: 100m}
        - name: side
          image: busybox:1.36
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: besteffort
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: limits-only
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
          resources:
            limits: {cpu: 500m, memory: 128Mi}
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: memory-limit-only
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
          resources:
            limits: {memory: 128Mi}
      """
    Then pod "guaranteed" has "{.status.qosClass}" equal to "Guaranteed"
    And pod "burstable" has "{.status.qosClass}" equal to "Burstable"
    And pod "besteffort" has "{.status.qosClass}" equal to "BestEffort"
    And pod "limits-only" matches:
      """
      spec:
        containers:
        - name: app
          resources:
            requests: {cpu: 500m, memory: 128Mi}
            limits: {cpu: 500m, memory: 128Mi}
      status:
        qosClass: Guaranteed
      """
    And pod "memory-limit-only" matches:
      """
      spec:
        containers:
        - name: app
          resources:
            requests: {memory: 128Mi}
      status:
        qosClass: Burstable
      """
