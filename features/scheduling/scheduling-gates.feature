Feature: Pod scheduling readiness
  A pod with scheduling gates is not considered for scheduling until every gate is removed;
  gates can be removed after creation but never added.

  @B-SCHED-018 @needs:workloads
  Scenario: A gated pod waits as SchedulingGated and is scheduled once its gates are removed
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: gated
      spec:
        schedulingGates:
        - name: example.com/wait
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "gated" matches within 20 seconds:
      """
      status:
        phase: Pending
        conditions:
        - type: PodScheduled
          status: "False"
          reason: SchedulingGated
          message: Scheduling is blocked due to non-empty scheduling gates
      """
    And pod "gated" has "{.spec.nodeName}" equal to "" for 3 seconds
    # The scheduler does not even try: no FailedScheduling event.
    And 0 events exist
    When I try to patch pod "gated" with json patch:
      """
      - op: add
        path: /spec/schedulingGates/-
        value:
          name: example.com/another
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "only deletion is allowed, but found new scheduling gate"
    When I patch pod "gated" with json patch:
      """
      - op: remove
        path: /spec/schedulingGates/0
      """
    Then pod "gated" has "{.spec.nodeName}" not equal to "" within 30 seconds
    And pod "gated" matches within 30 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: PodScheduled
          status: "True"
      """
