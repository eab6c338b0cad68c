Feature: Graceful deletion
  A deleted pod keeps running through its preStop hook, then gets SIGTERM; a container that
  ignores SIGTERM is killed when the grace period ends.

  @B-NODE-028 @needs:workloads
  Scenario: A preStop hook runs before the container is stopped, within the grace period
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: drain
      spec:
        terminationGracePeriodSeconds: 120
        containers:
        - name: app
          image: nginx:1.26
          lifecycle:
            preStop:
              sleep:
                seconds: 6
      """
    Then pod "drain" has "{.status.phase}" equal to "Running" within 30 seconds
    When I delete pod "drain"
    Then pod "drain" matches:
      """
      metadata:
        deletionGracePeriodSeconds: 120
      """
    And pod "drain" has "{.metadata.deletionTimestamp}" not equal to ""
    # While the hook sleeps the container keeps running; after it, SIGTERM ends the container
    # long before the 120 s grace period.
    And pod "drain" has "{.status.containerStatuses[0].state.running.startedAt}" not equal to "" for 2 seconds
    And pod "drain" does not exist within 40 seconds

  @B-NODE-028 @needs:workloads
  Scenario: A container that ignores SIGTERM is killed when the grace period ends
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: stubborn
      spec:
        terminationGracePeriodSeconds: 2
        containers:
        - name: app
          image: busybox:1.36
          # A shell running as PID 1 without a trap ignores SIGTERM.
          command: ["sh", "-c", "sleep 3600"]
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: polite
      spec:
        terminationGracePeriodSeconds: 100
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "stubborn" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "polite" has "{.status.phase}" equal to "Running" within 30 seconds
    When I delete pod "stubborn"
    And I delete pod "polite"
    # A container that exits on SIGTERM does not wait for its long grace period.
    Then pod "polite" does not exist within 30 seconds
    And pod "stubborn" does not exist within 30 seconds

  @B-NODE-028 @needs:workloads
  Scenario: A second delete with a shorter grace period ends the pod sooner
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: stubborn
      spec:
        terminationGracePeriodSeconds: 300
        containers:
        - name: app
          image: busybox:1.36
          # A shell running as PID 1 without a trap ignores SIGTERM.
          command: ["sh", "-c", "sleep 3600"]
      """
    Then pod "stubborn" has "{.status.phase}" equal to "Running" within 30 seconds
    When I delete pod "stubborn"
    Then pod "stubborn" has "{.metadata.deletionGracePeriodSeconds}" equal to "300"
    And pod "stubborn" exists for 3 seconds
    When I delete pod "stubborn" with grace period 2
    Then pod "stubborn" does not exist within 20 seconds
