Feature: Authentication
  A request with a token the server cannot verify is refused with 401; a request with no
  credentials is refused with 401, or, where anonymous access is enabled, runs as
  system:anonymous and is refused with 403 for ordinary resources.

  @B-SEC-005
  Scenario: Requests without valid credentials are not served
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" with bearer token "kubeproof-not-a-valid-token"
    Then the last request failed with code 401 and reason "Unauthorized"
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" without credentials
    Then the last request failed with code 401 or 403
    And the last response does not contain "\"kind\":\"PodList\""

  @B-SEC-005
  Scenario: A service account token issued by the API authenticates as that service account
    Given I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: robot
      """
    When I request POST "/apis/authentication.k8s.io/v1/selfsubjectreviews" as service account "robot" with headers:
      """
      Content-Type: application/json

      apiVersion: authentication.k8s.io/v1
      kind: SelfSubjectReview
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.userInfo.username}" equal to "system:serviceaccount:{{ namespace }}:robot"
    And the last response has "{.status.userInfo.groups}" containing "system:serviceaccounts:{{ namespace }}"
