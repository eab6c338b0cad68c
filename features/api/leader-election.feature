Feature: Leader election of the control plane
  kube-scheduler and kube-controller-manager elect one active instance through Leases in
  kube-system; the leader renews its Lease about every 2 seconds (retryPeriod), well within
  its leaseDurationSeconds (15 by default, a flag of each component), and stays the holder.

  @B-API-038 @B-API-039 @needs:workloads
  Scenario Outline: The <component> Lease names its holder and is renewed every few seconds
    Then lease "<component>" in namespace "kube-system" has "{.spec.holderIdentity}" not equal to ""
    And lease "<component>" in namespace "kube-system" has "{.spec.leaseDurationSeconds}" matching "^[1-9][0-9]*$"
    When I remember "{.spec.holderIdentity}" of lease "<component>" in namespace "kube-system" as "holder"
    And I remember "{.spec.renewTime}" of lease "<component>" in namespace "kube-system" as "renewed"
    Then lease "<component>" in namespace "kube-system" has "{.spec.renewTime}" not equal to "{{ renewed }}" within 6 seconds
    And lease "<component>" in namespace "kube-system" has "{.spec.holderIdentity}" equal to "{{ holder }}"

    Examples:
      | component               |
      | kube-scheduler          |
      | kube-controller-manager |
