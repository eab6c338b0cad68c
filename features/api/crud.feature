Feature: Create, read, update and delete
  Built-in objects go through the same verbs with the same answers as in Kubernetes.

  @B-API-022 @B-API-023
  Scenario: Creating an existing object fails with 409 AlreadyExists
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
      data:
        mode: fast
      """
    Then the last request succeeded with code 201
    When I try to create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
      data:
        mode: slow
      """
    Then the last request failed with code 409 and reason "AlreadyExists"
    And configmap "settings" has "{.data.mode}" equal to "fast"

  @B-API-023
  Scenario: The same name may be used in another namespace
    Given another namespace as "other"
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: shared-name
      """
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: shared-name
        namespace: {{ other }}
      """
    Then the last request succeeded with code 201
    And configmap "shared-name" in namespace "{{ other }}" exists

  @B-API-022
  Scenario: Apply creates an absent object and updates a present one
    When I apply:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: applied
      data:
        mode: fast
      """
    Then the last request succeeded with code 201
    When I apply:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: applied
      data:
        mode: slow
      """
    Then the last request succeeded with code 200
    And configmap "applied" matches:
      """
      data:
        mode: slow
      """

  Scenario: A ConfigMap goes through its whole life
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: lifecycle
        labels:
          app: demo
      data:
        a: "1"
      """
    Then configmap "lifecycle" matches:
      """
      metadata:
        name: lifecycle
        namespace: {{ namespace }}
        labels:
          app: demo
      data:
        a: "1"
      """
    When I replace:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: lifecycle
      data:
        a: "2"
        b: "3"
      """
    Then the last request succeeded with code 200
    And configmap "lifecycle" has "{.data.b}" equal to "3"
    And configmap "lifecycle" matches:
      """
      metadata:
        labels: null
      """
    When I delete configmap "lifecycle"
    Then the last request succeeded with code 200
    And configmap "lifecycle" does not exist within 5 seconds
    When I try to get configmap "lifecycle"
    Then the last request failed with code 404 and reason "NotFound"

  @B-SEC-012
  Scenario: Secret values are only base64-encoded
    When I create:
      """
      apiVersion: v1
      kind: Secret
      metadata:
        name: credentials
      type: Opaque
      stringData:
        password: s3cr3t
      """
    Then secret "credentials" matches:
      """
      data:
        password: czNjcjN0
      """
    And secret "credentials" matches:
      """
      stringData: null
      """

  @B-API-002
  Scenario: A new pod is stored Pending and unbound until a scheduler binds it
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: waiting
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then the last request succeeded with code 201
    And pod "waiting" has "{.status.phase}" equal to "Pending"
    And pod "waiting" has "{.spec.nodeName}" equal to ""

  @B-API-009 @B-API-015
  Scenario: Every write changes the resourceVersion and reads see it at once
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: versioned
      data:
        n: "1"
      """
    And I remember "{.metadata.resourceVersion}" of configmap "versioned" as "first"
    And I patch configmap "versioned" with merge patch:
      """
      data:
        n: "2"
      """
    Then configmap "versioned" has "{.data.n}" equal to "2"
    And configmap "versioned" has "{.metadata.resourceVersion}" not equal to "{{ first }}"
    When I list configmaps
    Then the last response has "{.metadata.resourceVersion}" matching "^.+$"
