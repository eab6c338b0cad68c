Feature: API server metrics
  The API server's /metrics exposes the series dashboards and alerts are built on.

  @B-OBS-004 @needs:metrics
  Scenario: apiserver_request_total counts requests by code
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: metered
      """
    And I get configmap "metered"
    And I try to get configmap "missing-for-metrics"
    And I request GET "/metrics"
    Then the last request succeeded with code 200
    And the last response matches "(?m)^apiserver_request_total\{[^}]*code=.404.[^}]*\} [0-9]"
    And the last response matches "(?m)^apiserver_request_total\{[^}]*code=.200.[^}]*verb=.GET.[^}]*\} [0-9]"

  @B-OBS-003 @needs:metrics
  Scenario: apiserver_request_duration_seconds is a histogram by verb and resource
    When I list configmaps
    And I request GET "/metrics"
    Then the last response matches "(?m)^apiserver_request_duration_seconds_bucket\{[^}]*resource=.configmaps.[^}]*verb=.LIST.[^}]*\} [0-9]"
    And the last response matches "(?m)^apiserver_request_duration_seconds_count\{"
    And the last response matches "(?m)^# TYPE apiserver_request_duration_seconds histogram$"

  @B-OBS-005 @needs:metrics
  Scenario: In-flight requests are reported split into read-only and mutating
    When I request GET "/metrics"
    Then the last response matches "(?m)^# TYPE apiserver_current_inflight_requests gauge$"
    And the last response matches "(?m)^apiserver_current_inflight_requests\{[^}]*request_kind=.readOnly.[^}]*\} [0-9]"
    And the last response matches "(?m)^apiserver_current_inflight_requests\{[^}]*request_kind=.mutating.[^}]*\} [0-9]"
    # The gauge is the most requests executing at once in the last second. Each scrape is a
    # read-only request, and this step scrapes every 200 ms, so a second soon ends that saw one.
    And the API server metric apiserver_current_inflight_requests{request_kind="readOnly"} is at least 1 within 5 seconds
