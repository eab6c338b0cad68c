Feature: Ephemeral containers
  Debug containers are added through the pods/ephemeralcontainers subresource only, never
  removed, and run on the pod's node.

  @B-NODE-029 @needs:workloads
  Scenario: An ephemeral container is added through its subresource, runs, and cannot be removed
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: target
      spec:
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "target" has "{.status.phase}" equal to "Running" within 30 seconds
    When I try to patch pod "target" with strategic patch:
      """
      spec:
        ephemeralContainers:
        - name: debugger
          image: busybox:1.36
      """
    Then the last request failed with code 422
    When I request PUT "/api/v1/namespaces/{{ namespace }}/pods/target/ephemeralcontainers"
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: target
        namespace: "{{ namespace }}"
      spec:
        containers:
        - name: app
          image: nginx:1.26
        ephemeralContainers:
        - name: debugger
          image: busybox:1.36
          stdin: true
          tty: true
      """
    Then the last request succeeded with code 200
    And pod "target" matches within 30 seconds:
      """
      spec:
        ephemeralContainers:
        - name: debugger
          image: busybox:1.36
      status:
        ephemeralContainerStatuses:
        - name: debugger
          state:
            running: {}
      """
    When I request PUT "/api/v1/namespaces/{{ namespace }}/pods/target/ephemeralcontainers"
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: target
        namespace: "{{ namespace }}"
      spec:
        containers:
        - name: app
          image: nginx:1.26
        ephemeralContainers: []
      """
    Then the last request failed with code 422
    And pod "target" has "{.spec.ephemeralContainers[0].name}" equal to "debugger"
