Feature: Troubleshooting a 403 Forbidden from RBAC
  An identity without a Role for what it does is refused with 403 Forbidden, and the message
  names the user, the verb, the resource with its API group and the namespace: what the missing
  Role must grant. `kubectl auth can-i` (a SubjectAccessReview) answers no until a Role and a
  RoleBinding grant it, and the same request then succeeds.

  @B-FAIL-025
  Scenario: A ServiceAccount without bindings may not create pods until a Role is bound to it
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: deployer
      """
    And I try to create as user "system:serviceaccount:{{ namespace }}:deployer" in groups "system:serviceaccounts,system:serviceaccounts:{{ namespace }},system:authenticated":
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: job-runner
      spec:
        containers:
        - name: app
          image: nginx:1.26
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods is forbidden: User \"system:serviceaccount:{{ namespace }}:deployer\" cannot create resource \"pods\" in API group \"\" in the namespace \"{{ namespace }}\""
    And pod "job-runner" does not exist
    When I request POST "/apis/authorization.k8s.io/v1/subjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: SubjectAccessReview
      spec:
        user: "system:serviceaccount:{{ namespace }}:deployer"
        groups: ["system:serviceaccounts", "system:serviceaccounts:{{ namespace }}", "system:authenticated"]
        resourceAttributes: {verb: create, resource: pods, namespace: "{{ namespace }}"}
      """
    Then the last request succeeded with code 201
    And the last response has "{.status.allowed}" equal to "false"
    When I create:
      """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: Role
      metadata:
        name: pod-creator
      rules:
      - apiGroups: [""]
        resources: ["pods"]
        verbs: ["create", "get"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: RoleBinding
      metadata:
        name: deployer-creates-pods
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: pod-creator
      subjects:
      - kind: ServiceAccount
        name: deployer
        namespace: "{{ namespace }}"
      """
    And I request POST "/apis/authorization.k8s.io/v1/subjectaccessreviews"
      """
      apiVersion: authorization.k8s.io/v1
      kind: SubjectAccessReview
      spec:
        user: "system:serviceaccount:{{ namespace }}:deployer"
        groups: ["system:serviceaccounts", "system:serviceaccounts:{{ namespace }}", "system:authenticated"]
        resourceAttributes: {verb: create, resource: pods, namespace: "{{ namespace }}"}
      """
    Then the last response has "{.status.allowed}" equal to "true"
    And the last response has "{.status.reason}" containing "RoleBinding \"deployer-creates-pods/{{ namespace }}\" of Role \"pod-creator\""
    When I create as user "system:serviceaccount:{{ namespace }}:deployer" in groups "system:serviceaccounts,system:serviceaccounts:{{ namespace }},system:authenticated":
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: job-runner
      spec:
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "job-runner" exists
    When I try to delete pod "job-runner" as user "system:serviceaccount:{{ namespace }}:deployer" in groups "system:serviceaccounts,system:serviceaccounts:{{ namespace }},system:authenticated"
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods \"job-runner\" is forbidden: User \"system:serviceaccount:{{ namespace }}:deployer\" cannot delete resource \"pods\" in API group \"\" in the namespace \"{{ namespace }}\""
