Feature: API Priority and Fairness isolates priority levels
  Each priority level has its own share of the server's concurrency. A client that floods a
  small level exhausts only that level: its excess requests are rejected with 429 and a
  Retry-After header, while a client whose requests are classified into another level keeps
  being served.

  @B-API-037 @serial
  Scenario: A flood of one service account's level is rejected with 429 while another account is served
    Given I create:
      """
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: flooder
      ---
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: steady
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
        name: accounts-read-configmaps
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: Role
        name: configmap-reader
      subjects:
      - kind: ServiceAccount
        name: flooder
        namespace: "{{ namespace }}"
      - kind: ServiceAccount
        name: steady
        namespace: "{{ namespace }}"
      ---
      apiVersion: flowcontrol.apiserver.k8s.io/v1
      kind: PriorityLevelConfiguration
      metadata:
        name: kp-tiny-{{ suffix }}
      spec:
        type: Limited
        limited:
          # One share of the server's (upstream: 600 seats over about 250 shares): 1 to 3 seats.
          nominalConcurrencyShares: 1
          lendablePercent: 0
          limitResponse:
            type: Reject
      ---
      apiVersion: flowcontrol.apiserver.k8s.io/v1
      kind: FlowSchema
      metadata:
        name: kp-flooder-{{ suffix }}
      spec:
        priorityLevelConfiguration:
          name: kp-tiny-{{ suffix }}
        matchingPrecedence: 100
        distinguisherMethod:
          type: ByUser
        rules:
        - subjects:
          - kind: ServiceAccount
            serviceAccount:
              name: flooder
              namespace: "{{ namespace }}"
          resourceRules:
          - verbs: ["*"]
            apiGroups: ["*"]
            resources: ["*"]
            namespaces: ["*"]
      """
    # The flow-control configuration is applied asynchronously (upstream: its config controller).
    And I wait 2 seconds
    When I request GET "/api/v1/namespaces/{{ namespace }}/configmaps" as service account "flooder"
    Then the last request succeeded with code 200
    When I remember header "X-Kubernetes-PF-PriorityLevel-UID" of the last response as "level"
    Then prioritylevelconfiguration "kp-tiny-{{ suffix }}" has "{.metadata.uid}" equal to "{{ level }}"
    # Each flood request lists from a resourceVersion far in the future, which the API server
    # waits for (up to 3 s upstream) before answering 504 Timeout: every admitted request holds
    # its seat meanwhile, so thirty of them overrun a level of a few seats however fast the
    # server is. The steady account's plain lists go to the bootstrap workload-low level.
    When I send 30 concurrent requests "GET /api/v1/namespaces/{{ namespace }}/configmaps?resourceVersion=999999999999&resourceVersionMatch=NotOlderThan" as service account "flooder" and at the same time 20 concurrent requests "GET /api/v1/namespaces/{{ namespace }}/configmaps" as service account "steady"
    Then some requests as service account "flooder" were rejected with code 429 and a Retry-After header
    And every request as service account "steady" succeeded
