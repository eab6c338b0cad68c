Feature: Ephemeral containers
  Debug containers are added to a running pod through the pods/ephemeralcontainers subresource.
  (Running them needs a process runtime; the simulated nodes do not run them.)

  @B-NODE-029 @needs:workloads
  Scenario: An ephemeral container is added to a running pod through its subresource
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
    And pod "target" matches:
      """
      spec:
        ephemeralContainers:
        - name: debugger
          image: busybox:1.36
      """
