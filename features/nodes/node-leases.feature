Feature: Node heartbeats
  Every kubelet keeps a Lease named after its node in kube-node-lease and renews it, and
  re-posts its node status even when nothing changed.

  @B-NODE-001 @needs:workloads
  Scenario: A node's Lease is held by the node and renewed
    Given I remember the name of a Ready node as "node"
    Then lease "{{ node }}" in namespace "kube-node-lease" matches:
      """
      spec:
        holderIdentity: "{{ node }}"
      """
    And lease "{{ node }}" in namespace "kube-node-lease" has "{.metadata.ownerReferences[0].name}" equal to "{{ node }}"
    When I remember "{.spec.renewTime}" of lease "{{ node }}" in namespace "kube-node-lease" as "renewed"
    Then lease "{{ node }}" in namespace "kube-node-lease" has "{.spec.renewTime}" not equal to "{{ renewed }}" within 30 seconds

  @B-NODE-002 @needs:workloads
  Scenario: A node re-posts its unchanged status, advancing the conditions' heartbeat times
    Given I remember the name of a Ready node as "node"
    When I remember "{.status.conditions[?(@.type=='Ready')].lastHeartbeatTime}" of node "{{ node }}" as "beat"
    # Upstream re-posts an unchanged status every nodeStatusReportFrequency (5 minutes).
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].lastHeartbeatTime}" not equal to "{{ beat }}" within 330 seconds
    And node "{{ node }}" matches:
      """
      status:
        conditions:
        - type: Ready
          status: "True"
          reason: KubeletReady
        - type: MemoryPressure
          status: "False"
        - type: DiskPressure
          status: "False"
        - type: PIDPressure
          status: "False"
      """
