Feature: Role-based access control
  A Role grants verbs on resources in its own namespace to the subjects its RoleBinding names,
  and nothing more. Access reviews ask the cluster's authorizer, so they show what it decides
  for any identity.

  Background:
    Given I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: monitoring-sa
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
        name: read-pods
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: pod-reader
      subjects:
      - kind: ServiceAccount
        name: monitoring-sa
        namespace: "{{ namespace }}"
      """

  @B-SEC-001
  Scenario: A Role grants reading pods to the bound service account
    When I request POST "/apis/authorization.k8s.io/v1/subjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: SubjectAccessReview
      spec:
        user: "system:serviceaccount:{{ namespace }}:monitoring-sa"
        groups: ["system:serviceaccounts", "system:serviceaccounts:{{ namespace }}", "system:authenticated"]
        resourceAttributes: {verb: list, resource: pods, namespace: "{{ namespace }}"}
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.allowed}" equal to "true"
    And the last response has "{.status.reason}" containing "RoleBinding \"read-pods/{{ namespace }}\" of Role \"pod-reader\""

  @B-SEC-002
  Scenario: Verbs the Role does not list are refused
    When I request POST "/apis/authorization.k8s.io/v1/namespaces/{{ namespace }}/localsubjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: LocalSubjectAccessReview
      metadata:
        namespace: "{{ namespace }}"
      spec:
        user: "system:serviceaccount:{{ namespace }}:monitoring-sa"
        groups: ["system:serviceaccounts", "system:serviceaccounts:{{ namespace }}", "system:authenticated"]
        resourceAttributes: {verb: delete, resource: pods, namespace: "{{ namespace }}"}
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.allowed}" equal to "false"
    When I request POST "/apis/authorization.k8s.io/v1/subjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: SubjectAccessReview
      spec:
        user: "system:serviceaccount:{{ namespace }}:monitoring-sa"
        groups: ["system:serviceaccounts", "system:serviceaccounts:{{ namespace }}", "system:authenticated"]
        resourceAttributes: {verb: get, resource: secrets, namespace: "{{ namespace }}"}
      """
    Then the last response has "{.status.allowed}" equal to "false"

  @B-SEC-003
  Scenario: A Role only grants in its own namespace
    Given another namespace as "elsewhere"
    When I request POST "/apis/authorization.k8s.io/v1/subjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: SubjectAccessReview
      spec:
        user: "system:serviceaccount:{{ namespace }}:monitoring-sa"
        groups: ["system:serviceaccounts", "system:serviceaccounts:{{ namespace }}", "system:authenticated"]
        resourceAttributes: {verb: list, resource: pods, namespace: "{{ elsewhere }}"}
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.allowed}" equal to "false"

  Scenario: An access review must say what it asks about
    When I request POST "/apis/authorization.k8s.io/v1/subjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: SubjectAccessReview
      spec:
        user: someone
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "exactly one of nonResourceAttributes or resourceAttributes must be specified"
