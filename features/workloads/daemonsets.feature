Feature: DaemonSets
  A DaemonSet runs exactly one pod on every eligible node.

  @B-WL-021 @needs:workloads
  Scenario: A DaemonSet runs one pod per Ready node
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: DaemonSet
      metadata:
        name: agent
      spec:
        selector:
          matchLabels:
            app: agent
        template:
          metadata:
            labels:
              app: agent
          spec:
            containers:
            - name: agent
              image: fluent/fluent-bit:3.1
      """
    Then there is one ready pod with label "app=agent" on every Ready node within 90 seconds
    And daemonset "agent" has "{.status.desiredNumberScheduled}" not equal to "0"
    When I remember "{.status.desiredNumberScheduled}" of daemonset "agent" as "nodes"
    Then daemonset "agent" has "{.status.numberReady}" equal to "{{ nodes }}" within 30 seconds
    And there is one pod with label "app=agent" on every Ready node for 3 seconds
