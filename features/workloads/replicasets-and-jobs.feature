Feature: ReplicaSets and Jobs
  A ReplicaSet keeps its declared number of pods, replacing any that go away; a Job runs pods
  until the required number have succeeded.

  @B-WL-003 @needs:workloads
  Scenario: A ReplicaSet replaces a deleted pod
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: ReplicaSet
      metadata:
        name: frontend
      spec:
        replicas: 3
        selector:
          matchLabels:
            app: frontend
        template:
          metadata:
            labels:
              app: frontend
          spec:
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there are 3 ready pods with label "app=frontend" within 60 seconds
    When I remember the name of a pod with label "app=frontend" as "victim"
    And I delete pod "{{ victim }}"
    Then pod "{{ victim }}" does not exist within 30 seconds
    And there are 3 ready pods with label "app=frontend" within 60 seconds
    And replicaset "frontend" has "{.status.readyReplicas}" equal to "3" within 30 seconds

  @needs:workloads
  Scenario: A Job runs to completion once its pods have succeeded
    Given a namespace
    When I create:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: batch
      spec:
        completions: 2
        parallelism: 1
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: work
              image: busybox:1.36
              command: ["sh", "-c", "sleep 1"]
      """
    Then job "batch" matches within 90 seconds:
      """
      status:
        succeeded: 2
        conditions:
        - type: Complete
          status: "True"
      """
    And there are 2 pods with label "job-name=batch" in phase Succeeded
    And there are 0 pods with label "job-name=batch" in phase Failed
