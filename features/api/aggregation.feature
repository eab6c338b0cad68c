Feature: API aggregation
  An APIService hands a group/version to an extension API server: the API server proxies
  requests for it to that server, which answers from its own storage, and discovery lists the
  group while the APIService is Available. Upstream's conformance test for this behaviour is
  "[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using
  the current Aggregator [Conformance]".

  # The extension API server runs in the runner's process on a loopback address, so the API
  # server must be able to reach the runner; the APIService changes cluster-wide discovery.
  @B-API-034 @serial @needs:runner-reachable
  Scenario: Requests for an aggregated group are answered by its extension API server
    Given an extension API server serving group "wardle{{ suffix }}.example.com" version "v1alpha1" with resource "flunders"
    Then apiservice "{{ apiservice }}" matches within 30 seconds:
      """
      status:
        conditions:
        - type: Available
          status: "True"
          reason: Passed
      """
    And discovery lists group "wardle{{ suffix }}.example.com" within 10 seconds
    When I request GET "/apis/wardle{{ suffix }}.example.com/v1alpha1"
    Then the last response has "{.resources[0].kind}" equal to "Flunder"
    When I create:
      """
      apiVersion: wardle{{ suffix }}.example.com/v1alpha1
      kind: Flunder
      metadata:
        name: my-flunder
      """
    Then the extension API server holds "my-flunder" created by the runner's user
    When I list flunders
    Then the last list contains "my-flunder"
    When I delete apiservice "{{ apiservice }}"
    Then discovery does not list group "wardle{{ suffix }}.example.com" within 10 seconds
    When I try to list flunders
    Then the last request failed with code 404
