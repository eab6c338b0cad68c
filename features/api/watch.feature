Feature: Watch
  A watch from a resourceVersion delivers every later change, in order.

  @B-API-011
  Scenario: A watch sees ADDED, MODIFIED and DELETED in order
    # Named, because a real cluster adds kube-root-ca.crt to new namespaces at any moment.
    When I watch configmaps named "watched" from now
    And I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: watched
      data:
        step: "1"
      """
    And I patch configmap "watched" with merge patch:
      """
      data:
        step: "2"
      """
    And I delete configmap "watched"
    Then the watch on configmaps sees ADDED, MODIFIED, DELETED

  @B-API-012
  Scenario: A watch resumed from the last seen resourceVersion misses nothing
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: resumed
      data:
        step: "1"
      """
    And I remember "{.metadata.resourceVersion}" of configmap "resumed" as "last_seen"
    And I patch configmap "resumed" with merge patch:
      """
      data:
        step: "2"
      """
    And I patch configmap "resumed" with merge patch:
      """
      data:
        step: "3"
      """
    And I delete configmap "resumed"
    And I watch configmaps named "resumed" from resource version "{{ last_seen }}"
    Then the watch on configmaps sees MODIFIED, MODIFIED, DELETED
