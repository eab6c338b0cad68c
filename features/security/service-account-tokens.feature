Feature: ServiceAccount tokens
  The TokenRequest API issues signed JWTs for a service account; the cluster's own
  authenticator accepts them (TokenReview) and publishes the keys that verify them.

  @B-SEC-014
  Scenario: A requested token is a JWT the cluster authenticates
    Given I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: builder
      """
    When I request POST "/api/v1/namespaces/{{ namespace }}/serviceaccounts/builder/token"
      """
      apiVersion: authentication.k8s.io/v1
      kind: TokenRequest
      spec:
        expirationSeconds: 600
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.token}" matching "^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
    When I remember "{.status.token}" of the last response as "token"
    And I request POST "/apis/authentication.k8s.io/v1/tokenreviews"
      """
      apiVersion: authentication.k8s.io/v1
      kind: TokenReview
      spec:
        token: "{{ token }}"
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.authenticated}" equal to "true"
    And the last response has "{.status.user.username}" equal to "system:serviceaccount:{{ namespace }}:builder"
    When I request GET "/openid/v1/jwks"
    Then the last request succeeded with code 200
    And the last response has "{.keys[0].kty}" matching "^(RSA|EC)$"

  Scenario: A token of a deleted service account is no longer accepted
    Given I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: short-lived
      """
    When I request POST "/api/v1/namespaces/{{ namespace }}/serviceaccounts/short-lived/token"
      """
      apiVersion: authentication.k8s.io/v1
      kind: TokenRequest
      spec: {}
      """
    And I remember "{.status.token}" of the last response as "token"
    And I delete serviceaccount "short-lived"
    And I request POST "/apis/authentication.k8s.io/v1/tokenreviews"
      """
      apiVersion: authentication.k8s.io/v1
      kind: TokenReview
      spec:
        token: "{{ token }}"
      """
    Then the last request succeeded with code 201
    And the last response does not contain "\"authenticated\":true"
