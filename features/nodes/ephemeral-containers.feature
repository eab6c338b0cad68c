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

  @B-NODE-029 @needs:workloads
  Scenario: Ephemeral containers are neither added through the pod itself nor removed once added
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
    And I try to patch pod "target" with json patch:
      """
      - op: add
        path: /spec/ephemeralContainers
        value:
        - name: sneaky
          image: busybox:1.36
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "pod updates may not change fields"
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
      """
    Then the last request succeeded with code 200
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
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "existing ephemeral containers \"debugger\" may not be removed"
