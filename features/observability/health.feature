Feature: Health endpoints
  Load balancers and probes ask the API server whether it is alive and ready.

  @B-OBS-001
  Scenario Outline: <endpoint> answers 200 ok
    When I request GET "<endpoint>"
    Then the last request succeeded with code 200
    And the last response matches "^ok$"

    Examples:
      | endpoint |
      | /healthz |
      | /livez   |
      | /readyz  |

  @B-OBS-002
  Scenario: Verbose health lists each check, and each check has its own path
    When I request GET "/readyz?verbose"
    Then the last request succeeded with code 200
    And the last response contains "[+]ping ok"
    And the last response contains "[+]etcd ok"
    And the last response contains "readyz check passed"
    When I request GET "/livez?verbose"
    Then the last response contains "livez check passed"
    When I request GET "/readyz/etcd"
    Then the last request succeeded with code 200
    And the last response matches "^ok$"
