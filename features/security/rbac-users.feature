Feature: What a user bound to Roles may do
  The same rules as the access reviews, seen from the user's side: requests made as a user
  (through impersonation) are allowed or refused by the RBAC authorizer, refusals answer 403
  with upstream's message, and RBAC will not let anyone grant what they do not hold.

  Background:
    Given I create:
      """
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
      - apiGroup: rbac.authorization.k8s.io
        kind: User
        name: jane
      ---
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

  @B-SEC-001
  Scenario: A user bound to pod-reader reads pods in the Role's namespace
    When I get pod "web" as user "jane"
    Then the last request succeeded with code 200
    And the last response has "{.metadata.name}" equal to "web"
    When I list pods as user "jane"
    Then the last request succeeded with code 200
    And the last response has "{.items[*].metadata.name}" containing "web"

  @B-SEC-002
  Scenario: The user is refused what the Role does not grant, with upstream's message
    When I try to create as user "jane":
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: not-allowed
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods is forbidden: User \"jane\" cannot create resource \"pods\" in API group \"\" in the namespace \"{{ namespace }}\""
    And pod "not-allowed" does not exist
    When I try to list secrets as user "jane"
    Then the last request failed with code 403 and reason "Forbidden" and message containing "secrets is forbidden: User \"jane\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{{ namespace }}\""

  @B-SEC-003
  Scenario: The Role grants nothing in another namespace
    Given another namespace as "elsewhere"
    When I try to list pods in namespace "{{ elsewhere }}" as user "jane"
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"{{ elsewhere }}\""

  @B-SEC-003
  Scenario: A ClusterRole with an aggregation rule gains the rules of the ClusterRoles it selects
    Given I create:
      """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRole
      metadata:
        name: kubeproof-aggregate-{{ suffix }}
      aggregationRule:
        clusterRoleSelectors:
        - matchLabels:
            kubeproof.dev/aggregate-to: "aggregate-{{ suffix }}"
      rules: []
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRole
      metadata:
        name: kubeproof-configmap-reader-{{ suffix }}
        labels:
          kubeproof.dev/aggregate-to: "aggregate-{{ suffix }}"
      rules:
      - apiGroups: [""]
        resources: ["configmaps"]
        verbs: ["get", "list"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: RoleBinding
      metadata:
        name: read-aggregated
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: ClusterRole
        name: kubeproof-aggregate-{{ suffix }}
      subjects:
      - apiGroup: rbac.authorization.k8s.io
        kind: User
        name: jane
      """
    Then clusterrole "kubeproof-aggregate-{{ suffix }}" has "{.rules[*].resources}" containing "configmaps" within 30 seconds
    When I list configmaps as user "jane"
    Then the last request succeeded with code 200
    When I try to list configmaps in namespace "default" as user "jane"
    Then the last request failed with code 403 and reason "Forbidden"
    # Cluster-scoped objects outlive the scenario's namespace.
    When I delete clusterrole "kubeproof-aggregate-{{ suffix }}"
    And I delete clusterrole "kubeproof-configmap-reader-{{ suffix }}"

  Scenario: A user allowed to write Roles cannot grant a verb it does not hold
    Given I create:
      """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: Role
      metadata:
        name: role-writer
      rules:
      - apiGroups: ["rbac.authorization.k8s.io"]
        resources: ["roles"]
        verbs: ["create", "get"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: RoleBinding
      metadata:
        name: write-roles
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: role-writer
      subjects:
      - apiGroup: rbac.authorization.k8s.io
        kind: User
        name: rita
      """
    When I try to create as user "rita":
      """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: Role
      metadata:
        name: too-much
      rules:
      - apiGroups: [""]
        resources: ["pods"]
        verbs: ["delete"]
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "roles.rbac.authorization.k8s.io \"too-much\" is forbidden: user \"rita\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"
    And the last response has "{.message}" containing "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"
    And role "too-much" does not exist
    When I create as user "rita":
      """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: Role
      metadata:
        name: held
      rules:
      - apiGroups: ["rbac.authorization.k8s.io"]
        resources: ["roles"]
        verbs: ["get"]
      """
    Then role "held" exists
