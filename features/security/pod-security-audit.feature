Feature: Pod Security admission in audit mode
  A namespace labelled only `pod-security.kubernetes.io/audit` admits pods that break the
  standard and records the violations on the request's audit event, in the annotation
  `pod-security.kubernetes.io/audit-violations`. Reading the audit log needs access beyond the
  API: the runner knows the bundled cluster's log, and another cluster's is named with
  `--audit-log PATH`.

  @B-SEC-009 @needs:audit-log
  Scenario: An audit-only restricted namespace admits a violating pod and annotates its audit event
    When I patch namespace "{{ namespace }}" with merge patch:
      """
      metadata:
        labels:
          pod-security.kubernetes.io/audit: restricted
      """
    And I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: escalating
      spec:
        containers:
        - name: c
          image: registry.k8s.io/pause:3.10
      """
    Then the last request succeeded with code 201
    And pod "escalating" exists
    And the audit log has an event for create pods "escalating" with annotation "pod-security.kubernetes.io/audit-violations" containing "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)" within 10 seconds
