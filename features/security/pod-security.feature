Feature: Pod Security admission
  Namespaces choose a Pod Security Standard per mode with labels: `enforce` refuses pods that
  break it, `warn` answers with a Warning header, and workloads are only ever warned about.

  @B-SEC-006
  Scenario: A restricted namespace refuses a privileged pod
    When I patch namespace "{{ namespace }}" with merge patch:
      """
      metadata:
        labels:
          pod-security.kubernetes.io/enforce: restricted
      """
    And I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: privileged
      spec:
        containers:
        - name: c
          image: registry.k8s.io/pause:3.10
          securityContext:
            privileged: true
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods \"privileged\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"

  @B-SEC-007
  Scenario: A compliant pod is admitted under restricted
    When I patch namespace "{{ namespace }}" with merge patch:
      """
      metadata:
        labels:
          pod-security.kubernetes.io/enforce: restricted
      """
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: compliant
      spec:
        securityContext:
          runAsNonRoot: true
          seccompProfile: {type: RuntimeDefault}
        containers:
        - name: c
          image: registry.k8s.io/pause:3.10
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: ["ALL"]}
      """
    Then pod "compliant" exists

  @B-SEC-008
  Scenario: A warn level answers with a Warning header
    When I patch namespace "{{ namespace }}" with merge patch:
      """
      metadata:
        labels:
          pod-security.kubernetes.io/warn: baseline
      """
    And I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: host-network
      spec:
        hostNetwork: true
        containers:
        - name: c
          image: registry.k8s.io/pause:3.10
      """
    Then the last request succeeded with code 201
    And the last response has header "Warning" containing "would violate PodSecurity"

  @B-SEC-010
  Scenario: Workloads are warned about, not refused
    When I patch namespace "{{ namespace }}" with merge patch:
      """
      metadata:
        labels:
          pod-security.kubernetes.io/enforce: restricted
          pod-security.kubernetes.io/warn: restricted
      """
    And I try to create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: privileged-template
      spec:
        selector:
          matchLabels: {app: p}
        template:
          metadata:
            labels: {app: p}
          spec:
            containers:
            - name: c
              image: registry.k8s.io/pause:3.10
              securityContext:
                privileged: true
      """
    Then the last request succeeded with code 201
    And the last response has header "Warning" containing "would violate PodSecurity"

  @B-SEC-012
  Scenario: Secret data is base64, not encrypted, in the API
    When I create:
      """
      apiVersion: v1
      kind: Secret
      metadata:
        name: db
      stringData:
        password: hunter2
      """
    Then secret "db" has "{.data.password}" equal to "aHVudGVyMg=="
