Feature: Restart policy and CrashLoopBackOff
  The kubelet restarts exited containers as the pod's restartPolicy says, backing off between
  restarts of a crashing container; `logs --previous` shows the attempt before.

  @B-NODE-012 @B-FAIL-006 @needs:workloads
  Scenario: A crashing container under restartPolicy Always goes into CrashLoopBackOff
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: crash
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo 'error: /etc/app/config.yaml not found'; sleep 1; exit 1"]
      """
    Then pod "crash" has "{.status.containerStatuses[0].restartCount}" matching "^([2-9]|[1-9][0-9]+)$" within 60 seconds
    And pod "crash" matches within 30 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: Ready
          status: "False"
        containerStatuses:
        - name: app
          ready: false
          state:
            waiting:
              reason: CrashLoopBackOff
          lastState:
            terminated:
              exitCode: 1
              reason: Error
      """
    And pod "crash" has "{.status.containerStatuses[0].state.waiting.message}" containing "restarting failed container=app pod=crash_{{ namespace }}("
    And the logs of pod "crash" (previous) contain "error: /etc/app/config.yaml not found"

  @B-NODE-026 @needs:workloads
  Scenario: The logs of the previous attempt of a crashed container stay readable
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: crash
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo hello from the crashing app; exit 1"]
      """
    Then pod "crash" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds
    And the logs of pod "crash" (previous) contain "hello from the crashing app"

  @B-NODE-012 @needs:workloads
  Scenario: restartPolicy OnFailure restarts a failing container but not one that succeeded
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: done
      spec:
        restartPolicy: OnFailure
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "sleep 1; exit 0"]
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: failing
      spec:
        restartPolicy: OnFailure
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "sleep 1; exit 2"]
      """
    Then pod "done" matches within 30 seconds:
      """
      status:
        phase: Succeeded
        containerStatuses:
        - name: app
          restartCount: 0
          state:
            terminated:
              exitCode: 0
              reason: Completed
      """
    And pod "failing" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 30 seconds
    And pod "failing" matches:
      """
      status:
        containerStatuses:
        - name: app
          lastState:
            terminated:
              exitCode: 2
              reason: Error
      """
    And pod "failing" has "{.status.phase}" not equal to "Failed"
    And pod "done" has "{.status.containerStatuses[0].restartCount}" equal to "0" for 3 seconds

  @B-NODE-012 @needs:workloads
  Scenario: restartPolicy Never leaves a failed container down and the pod Failed
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: once
      spec:
        restartPolicy: Never
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo working; sleep 1; exit 3"]
      """
    Then pod "once" matches within 30 seconds:
      """
      status:
        phase: Failed
        containerStatuses:
        - name: app
          restartCount: 0
          state:
            terminated:
              exitCode: 3
              reason: Error
      """
    And pod "once" has "{.status.containerStatuses[0].restartCount}" equal to "0" for 3 seconds
    And pod "once" has "{.status.phase}" equal to "Failed"
    And the logs of pod "once" contain "working"
