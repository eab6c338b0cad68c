Feature: Label and field selectors
  Lists can be narrowed on the server by labels and by fields.

  Background:
    Given I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: web-prod
        labels: {app: web, tier: frontend, env: prod}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: web-dev
        labels: {app: web, tier: frontend, env: dev}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: db-prod
        labels: {app: db, env: prod}
      """

  Scenario: Equality, inequality, set and existence label selectors
    When I list configmaps with label selector "app=web"
    Then the last list has 2 items
    And the last list contains "web-prod"
    And the last list contains "web-dev"
    When I list configmaps with label selector "app=web,env!=dev"
    Then the last list has 1 item
    And the last list contains "web-prod"
    When I list configmaps with label selector "env in (prod),app notin (web)"
    Then the last list has 1 item
    And the last list contains "db-prod"
    When I list configmaps with label selector "tier"
    Then the last list has 2 items
    When I list configmaps with label selector "!tier,env=prod"
    Then the last list has 1 item
    And the last list contains "db-prod"
    And 2 configmaps exist with label "env=prod"

  Scenario: Field selectors on metadata.name
    When I list configmaps with field selector "metadata.name=db-prod"
    Then the last list has 1 item
    And the last list contains "db-prod"
    When I list configmaps with label selector "app" with field selector "metadata.name!=db-prod"
    Then the last list has 2 items
    And the last list does not contain "db-prod"

  Scenario: An invalid label selector is a bad request
    When I try to list configmaps with label selector "app=(web"
    Then the last request failed with code 400 and reason "BadRequest"
