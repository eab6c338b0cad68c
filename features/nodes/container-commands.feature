Feature: A container's command decides what it prints and how it ends
  A container runs its command: what the command prints is the container's log, written as it
  runs, and its exit code is the container's. These scenarios use busybox scripts, so they hold
  on real nodes and on kubeproof's simulated ones (which run such scripts, see SIM.md).

  @B-NODE-026 @needs:workloads
  Scenario: A container's output is its log, written while it runs
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: ticker
      spec:
        terminationGracePeriodSeconds: 1
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "i=0; while true; do echo \"tick $i\"; i=$((i+1)); sleep 1; done"]
      """
    Then pod "ticker" has "{.status.phase}" equal to "Running" within 60 seconds
    And the logs of pod "ticker" contain "tick 0" within 20 seconds
    And the logs of pod "ticker" contain "tick 3" within 20 seconds
    And pod "ticker" has "{.status.containerStatuses[0].restartCount}" equal to "0"
