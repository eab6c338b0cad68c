Feature: Troubleshooting a NotReady node whose kubelet stopped
  A node agent that stops posting status and renewing its Lease is noticed by the node lifecycle
  controller after node-monitor-grace-period (50 s upstream): every condition turns Unknown with
  "Kubelet stopped posting node status.", so `kubectl get nodes` shows NotReady, and the node is
  tainted unreachable. Silencing a node needs kubeproof's simulated nodes (SIM.md,
  `sim.kubeproof.dev/silent`); on other clusters stop the kubelet by hand.

  @B-FAIL-011 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: A silent node goes NotReady with every condition Unknown and recovers when it posts again
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/silent=true"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "Unknown" within 90 seconds
    And node "{{ node }}" matches within 10 seconds:
      """
      spec:
        taints:
        - key: node.kubernetes.io/unreachable
          effect: NoSchedule
      status:
        conditions:
        - type: Ready
          status: Unknown
          reason: NodeStatusUnknown
          message: Kubelet stopped posting node status.
        - type: MemoryPressure
          status: Unknown
          reason: NodeStatusUnknown
          message: Kubelet stopped posting node status.
        - type: DiskPressure
          status: Unknown
          reason: NodeStatusUnknown
          message: Kubelet stopped posting node status.
        - type: PIDPressure
          status: Unknown
          reason: NodeStatusUnknown
          message: Kubelet stopped posting node status.
      """
    When I remember "{.spec.renewTime}" of lease "{{ node }}" in namespace "kube-node-lease" as "renewed"
    Then lease "{{ node }}" in namespace "kube-node-lease" has "{.spec.renewTime}" equal to "{{ renewed }}" for 3 seconds
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/silent-"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 60 seconds
    And node "{{ node }}" has "{.spec.taints[?(@.key=='node.kubernetes.io/unreachable')].effect}" equal to "" within 30 seconds
