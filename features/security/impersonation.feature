Feature: Impersonation
  Impersonate-User and Impersonate-Group headers need the impersonate verb on users and
  groups; without it the request is refused with 403 before anything else happens.

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
        name: jane-reads-pods
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: pod-reader
      subjects:
      - apiGroup: rbac.authorization.k8s.io
        kind: User
        name: jane-{{ suffix }}
      """

  Scenario: Impersonating without the impersonate verb is refused; with it the request runs as the impersonated user
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" as service account "robot" with headers:
      """
      Impersonate-User: jane-{{ suffix }}
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "users \"jane-{{ suffix }}\" is forbidden: User \"system:serviceaccount:{{ namespace }}:robot\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    Given I create:
      """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRole
      metadata:
        name: impersonate-jane-{{ suffix }}
      rules:
      - apiGroups: [""]
        resources: ["users"]
        verbs: ["impersonate"]
        resourceNames: ["jane-{{ suffix }}"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRoleBinding
      metadata:
        name: robot-impersonates-jane-{{ suffix }}
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: ClusterRole
        name: impersonate-jane-{{ suffix }}
      subjects:
      - kind: ServiceAccount
        name: robot
        namespace: "{{ namespace }}"
      """
    # RBAC changes reach the authorizer asynchronously (upstream: through informers).
    And I wait 2 seconds
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" as service account "robot" with headers:
      """
      Impersonate-User: jane-{{ suffix }}
      """
    Then the last request succeeded with code 200
    When I request GET "/api/v1/namespaces/{{ namespace }}/secrets" as service account "robot" with headers:
      """
      Impersonate-User: jane-{{ suffix }}
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "secrets is forbidden: User \"jane-{{ suffix }}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{{ namespace }}\""
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" as service account "robot" with headers:
      """
      Impersonate-User: somebody-else-{{ suffix }}
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "users \"somebody-else-{{ suffix }}\" is forbidden: User \"system:serviceaccount:{{ namespace }}:robot\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    When I request GET "/api/v1/namespaces/{{ namespace }}/pods" as service account "robot" with headers:
      """
      Impersonate-User: jane-{{ suffix }}
      Impersonate-Group: admins-{{ suffix }}
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "groups \"admins-{{ suffix }}\" is forbidden: User \"system:serviceaccount:{{ namespace }}:robot\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
