Feature: Content negotiation
  The API server answers in the encoding the Accept header asks for: JSON, YAML, or
  Kubernetes protobuf for built-in kinds.

  Background:
    Given I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """

  @B-API-019
  Scenario: A pod is served as YAML or JSON as the Accept header asks
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods/web" with headers:
      """
      Accept: application/yaml
      """
    Then the last request succeeded with code 200
    And the last response has header "Content-Type" containing "application/yaml"
    And the last response read as YAML has "{.kind}" equal to "Pod"
    And the last response read as YAML has "{.metadata.name}" equal to "web"
    And the last response does not contain "{\"kind\""
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods/web" with headers:
      """
      Accept: application/json
      """
    Then the last request succeeded with code 200
    And the last response has header "Content-Type" containing "application/json"
    And the last response has "{.spec.containers[0].name}" equal to "app"

  @B-API-019
  Scenario: A built-in kind is served as Kubernetes protobuf when asked
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods/web" with headers:
      """
      Accept: application/vnd.kubernetes.protobuf
      """
    Then the last request succeeded with code 200
    And the last response has header "Content-Type" containing "application/vnd.kubernetes.protobuf"
    And the last response body begins with hex "6b387300"
