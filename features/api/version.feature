Feature: Server identity and API layout
  The server is a Kubernetes 1.32 API server and lays out its REST resources the way
  Kubernetes does, so every client library finds them.

  @B-API-001
  Scenario: The server reports Kubernetes 1.32
    Then the server version is 1.32

  @B-API-020
  Scenario: Kinds map to plural resources under /api and /apis
    When I request GET "/apis/apps/v1"
    Then the last request succeeded with code 200
    And the last response has "{.resources[?(@.name=='deployments')].kind}" equal to "Deployment"
    When I request GET "/api/v1"
    Then the last response has "{.resources[?(@.name=='configmaps')].kind}" equal to "ConfigMap"
    When I request GET "/api/v1/namespaces/{{ namespace }}/configmaps"
    Then the last request succeeded with code 200
    When I request GET "/apis/v1/namespaces/{{ namespace }}/configmaps"
    Then the last request failed with code 404

  @B-API-021
  Scenario: The scale subresource speaks autoscaling/v1 Scale
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 1
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            schedulerName: kubeproof-none
            containers:
            - name: web
              image: registry.k8s.io/pause:3.10
      """
    And I request GET "/apis/apps/v1/namespaces/{{ namespace }}/deployments/web/scale"
    Then the last request succeeded with code 200
    And the last response has "{.kind}" equal to "Scale"
    And the last response has "{.apiVersion}" equal to "autoscaling/v1"
    And the last response has "{.spec.replicas}" equal to "1"
    When I scale deployment "web" to 4
    Then deployment "web" has "{.spec.replicas}" equal to "4"

  @B-SEC-011
  Scenario: PodSecurityPolicy is no longer served
    When I request GET "/apis/policy/v1beta1"
    Then the last request failed with code 404
    When I request GET "/apis/policy/v1"
    Then the last response does not contain "podsecuritypolicies"
