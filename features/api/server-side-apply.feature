Feature: Server-side apply
  Field managers own the fields they apply; taking a field another manager owns is a conflict
  unless forced.

  Scenario: A second manager conflicts on a field it does not own, and force takes it over
    When I apply as "alice":
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: owned
      data:
        color: red
      """
    And I try to apply as "bob":
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: owned
      data:
        color: blue
      """
    Then the last request failed with code 409 and reason "Conflict"
    And configmap "owned" has "{.data.color}" equal to "red"
    When I apply as "bob" with force:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: owned
      data:
        color: blue
      """
    Then the last request succeeded with code 200
    And configmap "owned" has "{.data.color}" equal to "blue"
    And configmap "owned" has "{.metadata.managedFields[?(@.manager=='bob')].operation}" equal to "Apply"

  Scenario: Managers that apply different fields share the object
    When I apply as "alice":
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: shared
      data:
        a: "1"
      """
    And I apply as "bob":
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: shared
      data:
        b: "2"
      """
    Then configmap "shared" matches:
      """
      data:
        a: "1"
        b: "2"
      """
