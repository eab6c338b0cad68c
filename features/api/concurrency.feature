Feature: Optimistic concurrency
  Writes carry the resourceVersion they were based on; a stale one is refused so that no
  update is silently lost.

  @B-API-010
  Scenario: An update with a stale resourceVersion is rejected with 409 Conflict
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: counter
      data:
        value: "0"
      """
    And I remember "{.metadata.resourceVersion}" of configmap "counter" as "seen"
    And I replace:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: counter
        resourceVersion: "{{ seen }}"
      data:
        value: "1"
      """
    Then the last request succeeded with code 200
    When I try to replace:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: counter
        resourceVersion: "{{ seen }}"
      data:
        value: "2"
      """
    Then the last request failed with code 409 and reason "Conflict" and message containing "the object has been modified"
    And configmap "counter" has "{.data.value}" equal to "1"
