Feature: Dry run and field validation
  A dry run goes through every stage but storage; strict field validation refuses what the
  schema does not know.

  Scenario: A dry-run create answers like a create and stores nothing
    When I create with dry run:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: imaginary
      data:
        k: v
      """
    Then the last request succeeded with code 201
    And the last response has "{.metadata.name}" equal to "imaginary"
    And configmap "imaginary" does not exist

  Scenario: A dry-run delete leaves the object in place
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: survivor
      """
    And I request DELETE "/api/v1/namespaces/{{ namespace }}/configmaps/survivor?dryRun=All"
    Then the last request succeeded with code 200
    And configmap "survivor" exists

  Scenario: Strict field validation rejects an unknown field
    When I try to create with field validation Strict:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: strict
      bogus: true
      """
    Then the last request failed with code 400 and reason "BadRequest" and message containing "unknown field \"bogus\""
    And configmap "strict" does not exist

  Scenario: Ignored field validation drops an unknown field
    When I create with field validation Ignore:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: lenient
      bogus: true
      """
    Then the last request succeeded with code 201
    And configmap "lenient" matches:
      """
      bogus: null
      """

  Scenario: Built-in validation rejects an invalid object with 422
    When I try to create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: Not_A_Valid_Name
      """
    Then the last request failed with code 422 and reason "Invalid"
