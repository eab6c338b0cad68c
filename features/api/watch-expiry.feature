Feature: Watching from compacted history
  The API server keeps only recent history: a watch from a resourceVersion that has been
  compacted away is answered with an ERROR event carrying a 410 `Expired` Status ("too old
  resource version"), and the client lists again and watches from the list's resourceVersion.
  A real cluster compacts every 5 minutes on its own; only a cluster the runner started can be
  compacted on demand, so elsewhere the scenario is skipped with the reason.

  @B-API-013 @serial @needs:compaction-control
  Scenario: A watch from a compacted resourceVersion gets 410 Expired, and one from a new list works
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: before
      """
    And I list configmaps
    And I remember "{.metadata.resourceVersion}" of the last response as "old"
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: after
      """
    And the API server compacts its storage history
    And I request GET "/api/v1/namespaces/{{ namespace }}/configmaps?watch=1&resourceVersion={{ old }}&timeoutSeconds=5"
    Then the last request succeeded with code 200
    And the last response is a watch stream whose ERROR event has code 410 and reason "Expired" and a message containing "too old resource version"
    And the last response is a watch stream without an ADDED event
    When I list configmaps
    And I remember "{.metadata.resourceVersion}" of the last response as "fresh"
    And I watch configmaps from resource version "{{ fresh }}"
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: latest
      """
    Then the watch on configmaps sees ADDED
