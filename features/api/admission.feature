Feature: The admission chain
  Every write passes authentication, authorization, mutating admission, object validation and
  validating admission, in that order; any one rejection rejects the request. Built-in
  admission (LimitRanger) and ValidatingAdmissionPolicy show the order on any cluster, without
  a webhook server.

  Background:
    Given I create:
      """
      apiVersion: admissionregistration.k8s.io/v1
      kind: ValidatingAdmissionPolicy
      metadata:
        name: require-memory-limit-{{ suffix }}
      spec:
        failurePolicy: Fail
        matchConstraints:
          resourceRules:
          - apiGroups: [""]
            apiVersions: ["v1"]
            operations: ["CREATE"]
            resources: ["pods"]
        validations:
        - expression: "object.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && 'memory' in c.resources.limits)"
          message: every container needs a memory limit
      ---
      apiVersion: admissionregistration.k8s.io/v1
      kind: ValidatingAdmissionPolicyBinding
      metadata:
        name: require-memory-limit-{{ suffix }}
      spec:
        policyName: require-memory-limit-{{ suffix }}
        validationActions: [Deny]
        matchResources:
          namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: "{{ namespace }}"
      """
    # Policies reach the admission plugin asynchronously (upstream: through an informer).
    And I wait 3 seconds

  @B-API-008 @B-API-007 @B-SEC-017
  Scenario: A validating policy judges the object after mutating admission has defaulted it
    When I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: bare
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "ValidatingAdmissionPolicy 'require-memory-limit-{{ suffix }}' with binding 'require-memory-limit-{{ suffix }}' denied request: every container needs a memory limit"
    And pod "bare" does not exist
    Given I create:
      """
      apiVersion: v1
      kind: LimitRange
      metadata:
        name: memory-defaults
      spec:
        limits:
        - type: Container
          default:
            memory: 128Mi
      """
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: bare
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then the last request succeeded with code 201
    And pod "bare" has "{.spec.containers[0].resources.limits.memory}" equal to "128Mi"
    And pod "bare" has "{.metadata.annotations['kubernetes.io/limit-ranger']}" containing "memory limit for container app"

  @B-API-004
  Scenario: Authorization and object validation refuse a request before validating admission sees it
    When I try to create as user "kubeproof-nobody":
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: unauthorized
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods is forbidden: User \"kubeproof-nobody\" cannot create resource \"pods\" in API group \"\" in the namespace \"{{ namespace }}\""
    And the last response does not contain "ValidatingAdmissionPolicy"
    When I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: invalid
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: Not_A_DNS_Label
          image: registry.k8s.io/pause:3.10
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.containers[0].name: Invalid value: \"Not_A_DNS_Label\""
    And the last response does not contain "ValidatingAdmissionPolicy"
    And pod "invalid" does not exist

  @B-API-006
  Scenario: One denying policy among several rejects the whole request
    Given I create:
      """
      apiVersion: admissionregistration.k8s.io/v1
      kind: ValidatingAdmissionPolicy
      metadata:
        name: forbid-tier-{{ suffix }}
      spec:
        failurePolicy: Fail
        matchConstraints:
          resourceRules:
          - apiGroups: [""]
            apiVersions: ["v1"]
            operations: ["CREATE"]
            resources: ["pods"]
        validations:
        - expression: "!has(object.metadata.labels) || !('tier' in object.metadata.labels) || object.metadata.labels['tier'] != 'forbidden'"
          message: the forbidden tier is not allowed here
          reason: Forbidden
      ---
      apiVersion: admissionregistration.k8s.io/v1
      kind: ValidatingAdmissionPolicyBinding
      metadata:
        name: forbid-tier-{{ suffix }}
      spec:
        policyName: forbid-tier-{{ suffix }}
        validationActions: [Deny]
        matchResources:
          namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: "{{ namespace }}"
      """
    And I wait 3 seconds
    When I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: tiered
        labels:
          tier: forbidden
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          resources:
            limits:
              memory: 64Mi
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "ValidatingAdmissionPolicy 'forbid-tier-{{ suffix }}' with binding 'forbid-tier-{{ suffix }}' denied request: the forbidden tier is not allowed here"
    And pod "tiered" does not exist
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: tiered
        labels:
          tier: allowed
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          resources:
            limits:
              memory: 64Mi
      """
    Then the last request succeeded with code 201
