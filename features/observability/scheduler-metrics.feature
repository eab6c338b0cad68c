Feature: Scheduler metrics
  kube-scheduler serves /metrics on its secure port (10259 upstream): the attempts it made and
  their latency by result and profile, and the pods waiting in each part of its queue. Health
  endpoints are open to anyone; /metrics needs credentials the API server authorizes (the
  system:monitoring role, or cluster admin as the runner is). Other scenarios schedule pods at
  the same time, so values are compared with "at least" or with what was seen before.

  @B-OBS-008 @needs:scheduler-metrics
  Scenario: The secure port serves health to anyone and metrics only to authorized clients
    When I request GET "/healthz" from the scheduler without credentials
    Then the last request succeeded with code 200
    And the last response matches "^ok$"
    When I request GET "/readyz" from the scheduler without credentials
    Then the last request succeeded with code 200
    When I request GET "/metrics" from the scheduler without credentials
    Then the last request failed with code 403 and reason "Forbidden" and message containing "cannot get path \"/metrics\""
    When I request GET "/metrics" from the scheduler with bearer token "not-a-token-the-cluster-issued"
    Then the last request failed with code 401
    When I request GET "/metrics" from the scheduler
    Then the last request succeeded with code 200
    And the last response matches "(?m)^# TYPE scheduler_pending_pods gauge$"
    And the scheduler metric scheduler_pending_pods{queue="active"} exists
    And the scheduler metric scheduler_pending_pods{queue="backoff"} exists
    And the scheduler metric scheduler_pending_pods{queue="unschedulable"} exists
    And the scheduler metric scheduler_pending_pods{queue="gated"} exists

  @B-OBS-008 @needs:scheduler-metrics
  Scenario: Gated and unschedulable pods show in scheduler_pending_pods
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: gated
      spec:
        schedulingGates:
        - name: example.com/not-yet
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: nowhere
      spec:
        nodeSelector:
          kubeproof.dev/no-node-has-this: "true"
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "nowhere" matches within 20 seconds:
      """
      status:
        conditions:
        - type: PodScheduled
          status: "False"
          reason: Unschedulable
      """
    And the scheduler metric scheduler_pending_pods{queue="gated"} is at least 1 within 10 seconds
    And the scheduler metric scheduler_pending_pods{queue="unschedulable"} is at least 1 within 20 seconds
    And the scheduler metric scheduler_schedule_attempts_total{result="unschedulable"} is at least 1

  @B-OBS-008 @needs:scheduler-metrics @needs:nodes
  Scenario: Scheduling a pod counts a scheduled attempt and observes its latency
    Given a namespace
    And I remember the scheduler metric scheduler_schedule_attempts_total{result="scheduled"} as "scheduled_before"
    And I remember the scheduler metric scheduler_scheduling_attempt_duration_seconds_count{result="scheduled"} as "observed_before"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: placed
      spec:
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "placed" has "{.spec.nodeName}" not equal to "" within 30 seconds
    And the scheduler metric scheduler_schedule_attempts_total{result="scheduled"} is greater than {{ scheduled_before }} within 10 seconds
    And the scheduler metric scheduler_scheduling_attempt_duration_seconds_count{result="scheduled"} is greater than {{ observed_before }} within 10 seconds
    And the scheduler metric scheduler_pod_scheduling_attempts_count is at least 1
    When I request GET "/metrics" from the scheduler
    Then the last response matches "(?m)^# TYPE scheduler_scheduling_attempt_duration_seconds histogram$"
    And the last response matches "(?m)^# TYPE scheduler_schedule_attempts_total counter$"
    # Upstream's buckets: 15 from 1 ms, doubling.
    And the last response matches "(?m)^scheduler_scheduling_attempt_duration_seconds_bucket\{[^}]*le=.0\.001.[^}]*\} [0-9]"
    And the last response matches "(?m)^scheduler_scheduling_attempt_duration_seconds_bucket\{[^}]*le=.16\.384.[^}]*\} [0-9]"
