Feature: Node heartbeats
  Every kubelet keeps a Lease named after its node in kube-node-lease and renews it.

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
