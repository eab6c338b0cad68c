Feature: Scheduler profiles
  A pod picks the scheduling profile that schedules it by spec.schedulerName; every profile of
  kube-scheduler is a scheduler of that name. A pod naming no running scheduler is left alone:
  no binding, no PodScheduled condition, no events.

  @B-SCHED-019 @needs:workloads
  Scenario: Pods are scheduled only by the profile they name
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: by-default-profile
      spec:
        schedulerName: default-scheduler
        containers:
        - name: app
          image: nginx:1.26
      """
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: by-unknown-profile
      spec:
        schedulerName: no-such-profile
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "by-default-profile" has "{.spec.nodeName}" not equal to "" within 30 seconds
    And an Event with reason "Scheduled" exists for pod "by-default-profile" within 10 seconds
    And pod "by-unknown-profile" has "{.spec.nodeName}" equal to "" for 5 seconds
    And pod "by-unknown-profile" has "{.status.phase}" equal to "Pending"
    And pod "by-unknown-profile" has "{.status.conditions[?(@.type=='PodScheduled')].status}" equal to ""
    And there are no events for pod "by-unknown-profile"
