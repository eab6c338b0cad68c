Feature: API Priority and Fairness
  Every request is classified into a FlowSchema and a priority level, which the response
  names in X-Kubernetes-PF-FlowSchema-UID and X-Kubernetes-PF-PriorityLevel-UID; among the
  FlowSchemas that match, the lowest matchingPrecedence wins.

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
        name: configmap-reader
      rules:
      - apiGroups: [""]
        resources: ["configmaps"]
        verbs: ["get", "list"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: RoleBinding
      metadata:
        name: robot-reads-configmaps
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: configmap-reader
      subjects:
      - kind: ServiceAccount
        name: robot
        namespace: "{{ namespace }}"
      """

  @B-API-035
  Scenario: A service account's request is classified by the bootstrap service-accounts FlowSchema
    When I request GET "/api/v1/namespaces/{{ namespace }}/configmaps" as service account "robot"
    Then the last request succeeded with code 200
    And the last response has header "X-Kubernetes-PF-FlowSchema-UID"
    And the last response has header "X-Kubernetes-PF-PriorityLevel-UID"
    When I remember header "X-Kubernetes-PF-FlowSchema-UID" of the last response as "schema"
    And I remember header "X-Kubernetes-PF-PriorityLevel-UID" of the last response as "level"
    Then flowschema "service-accounts" has "{.metadata.uid}" equal to "{{ schema }}"
    And flowschema "service-accounts" has "{.spec.priorityLevelConfiguration.name}" equal to "workload-low"
    And prioritylevelconfiguration "workload-low" has "{.metadata.uid}" equal to "{{ level }}"

  @B-API-036
  Scenario: A FlowSchema naming a service account routes its requests to the priority level it names
    Given I create:
      """
      apiVersion: flowcontrol.apiserver.k8s.io/v1
      kind: PriorityLevelConfiguration
      metadata:
        name: kp-high-{{ suffix }}
      spec:
        type: Limited
        limited:
          nominalConcurrencyShares: 5
          limitResponse:
            type: Reject
      ---
      apiVersion: flowcontrol.apiserver.k8s.io/v1
      kind: FlowSchema
      metadata:
        name: kp-robot-{{ suffix }}
      spec:
        priorityLevelConfiguration:
          name: kp-high-{{ suffix }}
        matchingPrecedence: 100
        distinguisherMethod:
          type: ByUser
        rules:
        - subjects:
          - kind: ServiceAccount
            serviceAccount:
              name: robot
              namespace: "{{ namespace }}"
          resourceRules:
          - verbs: ["*"]
            apiGroups: ["*"]
            resources: ["*"]
            namespaces: ["*"]
      ---
      apiVersion: flowcontrol.apiserver.k8s.io/v1
      kind: FlowSchema
      metadata:
        name: kp-robot-later-{{ suffix }}
      spec:
        priorityLevelConfiguration:
          name: kp-high-{{ suffix }}
        matchingPrecedence: 200
        distinguisherMethod:
          type: ByUser
        rules:
        - subjects:
          - kind: ServiceAccount
            serviceAccount:
              name: robot
              namespace: "{{ namespace }}"
          resourceRules:
          - verbs: ["*"]
            apiGroups: ["*"]
            resources: ["*"]
            namespaces: ["*"]
      """
    # The flow-control configuration is applied asynchronously (upstream: its config controller).
    And I wait 2 seconds
    When I request GET "/api/v1/namespaces/{{ namespace }}/configmaps" as service account "robot"
    Then the last request succeeded with code 200
    When I remember header "X-Kubernetes-PF-FlowSchema-UID" of the last response as "schema"
    And I remember header "X-Kubernetes-PF-PriorityLevel-UID" of the last response as "level"
    Then flowschema "kp-robot-{{ suffix }}" has "{.metadata.uid}" equal to "{{ schema }}"
    And prioritylevelconfiguration "kp-high-{{ suffix }}" has "{.metadata.uid}" equal to "{{ level }}"
