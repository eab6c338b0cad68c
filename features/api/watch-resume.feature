Feature: Resuming watches
  A watch that allows bookmarks receives BOOKMARK events carrying only a resourceVersion, so a
  client can resume from the newest point however quiet the resource was.

  @B-API-014
  Scenario: A watch that allows bookmarks gets BOOKMARKs carrying only a resourceVersion, and can resume from them
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: quiet
      """
    And I list configmaps
    And I remember "{.metadata.resourceVersion}" of the last response as "start"
    # Upstream sends a bookmark shortly (2 s) before a watch's timeout, besides about once a minute.
    And I request GET "/api/v1/namespaces/{{ namespace }}/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=5&resourceVersion={{ start }}"
    Then the last request succeeded with code 200
    And the last response is a watch stream with a BOOKMARK event
    And every BOOKMARK of the last response carries only a resourceVersion
    When I remember the resourceVersion of the last BOOKMARK event of the last response as "resume"
    And I watch configmaps named "later" from resource version "{{ resume }}"
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: later
      """
    Then the watch on configmaps sees ADDED
