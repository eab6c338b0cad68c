Feature: Suspended Jobs
  While a Job is suspended and has never started, the scheduling directives of its pod
  template may change; once it has started, the template is immutable.

  @B-WL-029 @needs:workloads
  Scenario: A suspended Job's node selector may change, a started Job's may not
    Given a namespace
    When I create:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: waiting
      spec:
        suspend: true
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: work
              image: busybox:1.36
              command: ["true"]
      ---
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: started
      spec:
        template:
          spec:
            restartPolicy: Never
            schedulerName: kubeproof-no-such-scheduler
            containers:
            - name: work
              image: busybox:1.36
              command: ["true"]
      """
    And I patch job "waiting" with merge patch:
      """
      spec:
        template:
          metadata:
            labels:
              tier: batch
          spec:
            nodeSelector:
              disktype: ssd
            tolerations:
            - key: dedicated
              operator: Equal
              value: batch
              effect: NoSchedule
      """
    Then the last request succeeded with code 200
    And job "waiting" matches:
      """
      spec:
        suspend: true
        template:
          metadata:
            labels:
              tier: batch
          spec:
            nodeSelector:
              disktype: ssd
      """
    And job "started" has "{.status.startTime}" not equal to "" within 30 seconds
    When I try to patch job "started" with merge patch:
      """
      spec:
        template:
          spec:
            nodeSelector:
              disktype: ssd
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.template: Invalid value"
    And the last response contains "field is immutable"
    And job "started" has "{.spec.template.spec.nodeSelector}" equal to ""
