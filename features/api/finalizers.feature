Feature: Finalizers and garbage collection
  Deletion is a process: finalizers hold an object, owner references tie dependents to it,
  and the propagation policy decides what happens to them.

  @B-API-029
  Scenario: A finalizer keeps a deleted object until it is removed
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: held
        finalizers: [example.com/hold]
      """
    And I delete configmap "held"
    Then the last request succeeded
    And configmap "held" exists
    And configmap "held" has "{.metadata.deletionTimestamp}" matching "^\d{4}-\d\d-\d\dT"
    When I patch configmap "held" with merge patch:
      """
      metadata:
        finalizers: null
      """
    Then configmap "held" does not exist within 10 seconds

  @B-API-026
  Scenario: Background deletion removes the owner at once and its dependents after
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: owner
      """
    And I remember "{.metadata.uid}" of configmap "owner" as "owner_uid"
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: dependent
        ownerReferences:
        - apiVersion: v1
          kind: ConfigMap
          name: owner
          uid: "{{ owner_uid }}"
      """
    And I delete configmap "owner" with propagation policy Background
    Then configmap "owner" does not exist within 5 seconds
    And configmap "dependent" does not exist within 30 seconds

  @B-API-027
  Scenario: Foreground deletion keeps the owner until blocking dependents are gone
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: parent
      """
    And I remember "{.metadata.uid}" of configmap "parent" as "parent_uid"
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: child
        finalizers: [example.com/hold]
        ownerReferences:
        - apiVersion: v1
          kind: ConfigMap
          name: parent
          uid: "{{ parent_uid }}"
          blockOwnerDeletion: true
      """
    And I delete configmap "parent" with propagation policy Foreground
    Then configmap "parent" matches:
      """
      metadata:
        finalizers: [foregroundDeletion]
      """
    And configmap "parent" has "{.metadata.deletionTimestamp}" matching "^\d{4}-"
    And configmap "child" has "{.metadata.deletionTimestamp}" matching "^\d{4}-" within 30 seconds
    And configmap "parent" exists
    When I patch configmap "child" with merge patch:
      """
      metadata:
        finalizers: null
      """
    Then configmap "child" does not exist within 10 seconds
    And configmap "parent" does not exist within 30 seconds

  @B-API-028
  Scenario: Orphan deletion keeps dependents and drops their owner reference
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: leaving
      """
    And I remember "{.metadata.uid}" of configmap "leaving" as "leaving_uid"
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: orphan
        ownerReferences:
        - apiVersion: v1
          kind: ConfigMap
          name: leaving
          uid: "{{ leaving_uid }}"
      """
    And I delete configmap "leaving" with propagation policy Orphan
    Then configmap "leaving" does not exist within 30 seconds
    And configmap "orphan" has "{.metadata.ownerReferences}" equal to "" within 30 seconds
    And configmap "orphan" exists
