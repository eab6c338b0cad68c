Feature: Paginated lists
  A limit splits a list into pages joined by continue tokens, with every item exactly once.

  Scenario: Paging through a list with limit and continue
    Given I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: page-1, labels: {set: paged}}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: page-2, labels: {set: paged}}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: page-3, labels: {set: paged}}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: page-4, labels: {set: paged}}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: page-5, labels: {set: paged}}
      """
    When I list configmaps with label selector "set=paged" with limit 2
    Then the last list has 2 items
    And the last list has a continue token
    When I list the next page
    Then the last list has 2 items
    And the last list has a continue token
    When I list the next page
    Then the last list has 1 item
    And the last list has no continue token
    And all pages of the last list hold 5 items

  # Secrets, because a namespace gets no Secret of its own in 1.32 (unlike the
  # kube-root-ca.crt ConfigMap), so the count is exactly what the scenario made.
  Scenario: The remaining item count is announced on a partial page
    Given I create:
      """
      apiVersion: v1
      kind: Secret
      metadata: {name: rest-1}
      ---
      apiVersion: v1
      kind: Secret
      metadata: {name: rest-2}
      ---
      apiVersion: v1
      kind: Secret
      metadata: {name: rest-3}
      """
    When I list secrets with limit 1
    Then the last response has "{.metadata.remainingItemCount}" equal to "2"
