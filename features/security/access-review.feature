Feature: Asking what one may do
  `kubectl auth can-i` (SelfSubjectAccessReview) answers as RBAC decides, and `can-i --list`
  (SelfSubjectRulesReview) lists what a namespace allows.

  Background:
    Given I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: robot
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: Role
      metadata:
        name: pod-reader
      rules:
      - apiGroups: [""]
        resources: ["pods"]
        verbs: ["get", "list", "watch"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: RoleBinding
      metadata:
        name: robot-reads-pods
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: pod-reader
      subjects:
      - kind: ServiceAccount
        name: robot
        namespace: "{{ namespace }}"
      """

  @B-SEC-004
  Scenario: can-i answers as RBAC decides for the asking service account
    When I request POST "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" as service account "robot" with headers:
      """
      Content-Type: application/json

      apiVersion: authorization.k8s.io/v1
      kind: SelfSubjectAccessReview
      spec:
        resourceAttributes:
          namespace: "{{ namespace }}"
          verb: list
          resource: pods
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.allowed}" equal to "true"
    When I request POST "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" as service account "robot" with headers:
      """
      Content-Type: application/json

      apiVersion: authorization.k8s.io/v1
      kind: SelfSubjectAccessReview
      spec:
        resourceAttributes:
          namespace: "{{ namespace }}"
          verb: create
          resource: pods
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.allowed}" equal to "false"
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" as service account "robot"
    Then the last request succeeded with code 200

  @B-SEC-004
  Scenario: can-i --list enumerates the verbs a namespace allows
    When I request POST "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" as service account "robot" with headers:
      """
      Content-Type: application/json

      apiVersion: authorization.k8s.io/v1
      kind: SelfSubjectRulesReview
      spec:
        namespace: "{{ namespace }}"
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.resourceRules[?(@.resources[0]=='pods')].verbs}" containing "list"
    And the last response has "{.status.resourceRules[?(@.resources[0]=='pods')].verbs}" containing "watch"
