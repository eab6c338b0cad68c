Feature: Custom resources
  A CustomResourceDefinition adds a resource served with every verb of a built-in, validated
  by its schema.

  Background:
    Given I create:
      """
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata:
        name: widgets{{ suffix }}.kubeproof.dev
      spec:
        group: kubeproof.dev
        scope: Namespaced
        names:
          plural: widgets{{ suffix }}
          singular: widget{{ suffix }}
          kind: Widget{{ suffix }}
          listKind: Widget{{ suffix }}List
        versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
                    size:
                      type: integer
                      minimum: 1
                      maximum: 10
                    replicas:
                      type: integer
                    maxReplicas:
                      type: integer
                  x-kubernetes-validations:
                  - rule: "!has(self.replicas) || !has(self.maxReplicas) || self.replicas <= self.maxReplicas"
                    message: replicas must not exceed maxReplicas
      """
    And customresourcedefinition "widgets{{ suffix }}.kubeproof.dev" has "{.status.conditions[?(@.type=='Established')].status}" equal to "True" within 20 seconds

  @B-API-030
  Scenario: Custom objects support create, get, list, watch, update, patch and delete
    When I watch widgets{{ suffix }}.kubeproof.dev from now
    And I create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Widget{{ suffix }}
      metadata:
        name: gizmo
      spec:
        size: 3
      """
    Then the last request succeeded with code 201
    And widgets{{ suffix }}.kubeproof.dev "gizmo" matches:
      """
      apiVersion: kubeproof.dev/v1
      spec:
        size: 3
      """
    When I list widgets{{ suffix }}.kubeproof.dev
    Then the last list has 1 item
    When I replace:
      """
      apiVersion: kubeproof.dev/v1
      kind: Widget{{ suffix }}
      metadata:
        name: gizmo
      spec:
        size: 4
      """
    And I patch widgets{{ suffix }}.kubeproof.dev "gizmo" with merge patch:
      """
      spec:
        size: 5
      """
    Then widgets{{ suffix }}.kubeproof.dev "gizmo" has "{.spec.size}" equal to "5"
    When I delete widgets{{ suffix }}.kubeproof.dev "gizmo"
    Then widgets{{ suffix }}.kubeproof.dev "gizmo" does not exist within 10 seconds
    And the watch on widgets{{ suffix }}.kubeproof.dev sees ADDED, MODIFIED, MODIFIED, DELETED

  Scenario: The CRD's OpenAPI schema rejects invalid custom objects
    When I try to create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Widget{{ suffix }}
      metadata:
        name: huge
      spec:
        size: 11
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.size"
    When I try to create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Widget{{ suffix }}
      metadata:
        name: wordy
      spec:
        size: large
      """
    Then the last request failed with code 422 and reason "Invalid"
    And widgets{{ suffix }}.kubeproof.dev "huge" does not exist

  Scenario: Unknown fields are pruned from custom objects
    When I create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Widget{{ suffix }}
      metadata:
        name: pruned
      spec:
        size: 2
        colour: green
      """
    Then widgets{{ suffix }}.kubeproof.dev "pruned" matches:
      """
      spec:
        size: 2
        colour: null
      """

  @B-API-031
  Scenario: A CEL validation rule rejects an object with the rule's message
    When I try to create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Widget{{ suffix }}
      metadata:
        name: greedy
      spec:
        replicas: 5
        maxReplicas: 3
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "replicas must not exceed maxReplicas"
