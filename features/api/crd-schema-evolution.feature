Feature: Custom resource schemas that evolve
  A tightened CRD schema does not strand objects stored under the looser one (validation
  ratcheting), and a CRD version may declare fields that list and watch can select on.

  Background:
    Given I create:
      """
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata:
        name: gadgets{{ suffix }}.kubeproof.dev
      spec:
        group: kubeproof.dev
        scope: Namespaced
        names:
          plural: gadgets{{ suffix }}
          singular: gadget{{ suffix }}
          kind: Gadget{{ suffix }}
          listKind: Gadget{{ suffix }}List
        versions:
        - name: v1
          served: true
          storage: true
          selectableFields:
          - jsonPath: .spec.color
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
                    label:
                      type: string
                      maxLength: 10
                    color:
                      type: string
                    size:
                      type: integer
      """
    And customresourcedefinition "gadgets{{ suffix }}.kubeproof.dev" has "{.status.conditions[?(@.type=='Established')].status}" equal to "True" within 20 seconds

  @B-API-032
  Scenario: After the schema is tightened, an object that violates it may still change its other fields
    Given I create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Gadget{{ suffix }}
      metadata:
        name: old
      spec:
        label: abcdefgh
        color: red
      """
    When I patch customresourcedefinition "gadgets{{ suffix }}.kubeproof.dev" with json patch:
      """
      - op: replace
        path: /spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/label/maxLength
        value: 4
      """
    # The tightened schema reaches the custom resource handler asynchronously; a new object
    # that breaks it shows that it is in force.
    And I wait 2 seconds
    And I try to create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Gadget{{ suffix }}
      metadata:
        name: new
      spec:
        label: abcdefgh
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.label"
    When I patch gadgets{{ suffix }}.kubeproof.dev "old" with merge patch:
      """
      spec:
        color: blue
      """
    Then the last request succeeded with code 200
    And gadgets{{ suffix }}.kubeproof.dev "old" matches:
      """
      spec:
        label: abcdefgh
        color: blue
      """
    When I try to patch gadgets{{ suffix }}.kubeproof.dev "old" with merge patch:
      """
      spec:
        label: abcdefghi
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.label"
    And gadgets{{ suffix }}.kubeproof.dev "old" has "{.spec.label}" equal to "abcdefgh"
    When I patch gadgets{{ suffix }}.kubeproof.dev "old" with merge patch:
      """
      spec:
        label: abcd
      """
    Then gadgets{{ suffix }}.kubeproof.dev "old" has "{.spec.label}" equal to "abcd"

  @B-API-033
  Scenario: A field declared in selectableFields selects custom objects; an undeclared one is refused
    Given I create:
      """
      apiVersion: kubeproof.dev/v1
      kind: Gadget{{ suffix }}
      metadata:
        name: cherry
      spec:
        color: red
        size: 1
      ---
      apiVersion: kubeproof.dev/v1
      kind: Gadget{{ suffix }}
      metadata:
        name: sky
      spec:
        color: blue
        size: 2
      ---
      apiVersion: kubeproof.dev/v1
      kind: Gadget{{ suffix }}
      metadata:
        name: brick
      spec:
        color: red
        size: 3
      """
    When I list gadgets{{ suffix }}.kubeproof.dev with field selector "spec.color=red"
    Then the last list has 2 items
    And the last list contains "cherry"
    And the last list contains "brick"
    When I list gadgets{{ suffix }}.kubeproof.dev with field selector "spec.color!=red,metadata.name!=cherry"
    Then the last list has 1 item
    And the last list contains "sky"
    When I try to list gadgets{{ suffix }}.kubeproof.dev with field selector "spec.size=3"
    Then the last request failed with code 400 and reason "BadRequest"
