Feature: The binding subresource
  Scheduling results are written through pods/{name}/binding: a Binding sets spec.nodeName
  and PodScheduled, and a pod that is already bound cannot be bound again.

  @B-API-003 @needs:nodes
  Scenario: A pod is bound once; a second Binding is refused with 409 Conflict
    Given I remember the name of a Ready node as "node"
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: manual
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    When I request POST "/api/v1/namespaces/{{ namespace }}/pods/manual/binding"
      """
      apiVersion: v1
      kind: Binding
      metadata:
        name: manual
      target:
        apiVersion: v1
        kind: Node
        name: "{{ node }}"
      """
    Then the last request succeeded with code 201
    And pod "manual" has "{.spec.nodeName}" equal to "{{ node }}"
    And pod "manual" has "{.status.conditions[?(@.type=='PodScheduled')].status}" equal to "True"
    When I request POST "/api/v1/namespaces/{{ namespace }}/pods/manual/binding"
      """
      apiVersion: v1
      kind: Binding
      metadata:
        name: manual
      target:
        apiVersion: v1
        kind: Node
        name: another-node-{{ suffix }}
      """
    Then the last request failed with code 409 and reason "Conflict" and message containing "Operation cannot be fulfilled on pods/binding \"manual\": pod manual is already assigned to node \"{{ node }}\""
    And pod "manual" has "{.spec.nodeName}" equal to "{{ node }}"
