Feature: Node authorization
  A kubelet authenticates as "system:node:<name>" in group "system:nodes". The Node authorizer
  lets it read its own Node and only the secrets that pods bound to it use, and NodeRestriction
  admission lets it write only its own Node, without the labels that steer workloads to trusted
  nodes. Refusals are 403s whose message says why. The identity is taken here through
  impersonation, so the runner needs the impersonate permission (a cluster admin has it).

  Background:
    Given I remember the name of a Ready node as "node"

  @B-SEC-002
  Scenario: A node reads and updates its own Node and may not touch another
    When I try to get node "{{ node }}" as user "system:node:{{ node }}" in group "system:nodes"
    Then the last request succeeded
    When I try to get node "kubeproof-other-{{ suffix }}" as user "system:node:{{ node }}" in group "system:nodes"
    Then the last request failed with code 403 and reason "Forbidden" and message containing "nodes \"kubeproof-other-{{ suffix }}\" is forbidden: User \"system:node:{{ node }}\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node '{{ node }}' cannot read 'kubeproof-other-{{ suffix }}', only its own Node object"
    When I try to patch node "{{ node }}" as user "system:node:{{ node }}" in group "system:nodes" with merge patch:
      """
      metadata:
        labels:
          example.com/kubeproof-probe-{{ suffix }}: "yes"
      """
    Then the last request succeeded
    When I try to patch node "{{ node }}" as user "system:node:{{ node }}" in group "system:nodes" with merge patch:
      """
      metadata:
        labels:
          example.com/kubeproof-probe-{{ suffix }}: null
      """
    Then the last request succeeded
    When I request PATCH "/api/v1/nodes/{{ node }}/status" with headers:
      """
      Impersonate-User: system:node:{{ node }}
      Impersonate-Group: system:nodes
      Content-Type: application/merge-patch+json

      status: {}
      """
    Then the last request succeeded
    When I try to patch node "{{ node }}" as user "system:node:{{ node }}" in group "system:nodes" with merge patch:
      """
      metadata:
        labels:
          node-restriction.kubernetes.io/trusted-{{ suffix }}: "yes"
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "nodes \"{{ node }}\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/trusted-{{ suffix }}"
    When I try to create as user "system:node:{{ node }}" in group "system:nodes":
      """
      apiVersion: v1
      kind: Node
      metadata:
        name: kubeproof-other-{{ suffix }}
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "nodes \"kubeproof-other-{{ suffix }}\" is forbidden: node \"{{ node }}\" is not allowed to modify node \"kubeproof-other-{{ suffix }}\""

  @B-SEC-002 @needs:workloads
  Scenario: A node reads a secret a pod bound to it mounts, and no other
    Given I create:
      """
      apiVersion: v1
      kind: Secret
      metadata:
        name: mounted
      stringData:
        password: s3cret
      ---
      apiVersion: v1
      kind: Secret
      metadata:
        name: unrelated
      stringData:
        password: s3cret
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        nodeName: "{{ node }}"
        terminationGracePeriodSeconds: 0
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
        volumes:
        - name: creds
          secret:
            secretName: mounted
      """
    Then pod "web" has "{.status.phase}" equal to "Running" within 60 seconds
    When I try to get secret "mounted" as user "system:node:{{ node }}" in group "system:nodes"
    Then the last request succeeded
    When I try to get secret "unrelated" as user "system:node:{{ node }}" in group "system:nodes"
    Then the last request failed with code 403 and reason "Forbidden" and message containing "secrets \"unrelated\" is forbidden: User \"system:node:{{ node }}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{{ namespace }}\": no relationship found between node '{{ node }}' and this object"
    When I try to list secrets as user "system:node:{{ node }}" in group "system:nodes"
    Then the last request failed with code 403 and reason "Forbidden"
