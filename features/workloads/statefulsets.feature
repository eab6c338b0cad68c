Feature: StatefulSets
  StatefulSet pods have stable ordinal names, are created in order (each after the previous
  is Ready) and come back under the same name when deleted.

  Background:
    Given a namespace
    And I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: db
      spec:
        clusterIP: None
        selector:
          app: db
        ports:
        - port: 5432
      """

  @B-WL-016 @needs:workloads
  Scenario: Pods get ordinal names and a deleted pod returns under its name
    When I create:
      """
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: db
      spec:
        serviceName: db
        replicas: 3
        selector:
          matchLabels:
            app: db
        template:
          metadata:
            labels:
              app: db
          spec:
            containers:
            - name: db
              image: postgres:17
      """
    Then there are 3 ready pods with label "app=db" within 90 seconds
    And pod "db-0" exists
    And pod "db-1" exists
    And pod "db-2" exists
    When I remember "{.metadata.uid}" of pod "db-1" as "old_uid"
    And I delete pod "db-1"
    Then pod "db-1" has "{.metadata.uid}" not equal to "{{ old_uid }}" within 60 seconds
    And there are 3 ready pods with label "app=db" within 60 seconds

  @B-WL-017 @needs:workloads
  Scenario: OrderedReady creates each pod only after the previous one is Ready
    When I create:
      """
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: db
      spec:
        serviceName: db
        replicas: 3
        selector:
          matchLabels:
            app: db
        template:
          metadata:
            labels:
              app: db
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: db
              image: busybox:1.36
              command: ["sh", "-c", "sleep 3600"]
              # Each pod turns Ready 6 s after its container starts: a window in which the
              # next ordinal must not exist yet.
              readinessProbe:
                exec:
                  command: ["true"]
                initialDelaySeconds: 6
                periodSeconds: 1
      """
    Then pod "db-0" exists within 30 seconds
    And pod "db-1" does not exist for 2 seconds
    And pod "db-1" exists within 60 seconds
    And pod "db-0" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True"
    And pod "db-2" exists within 60 seconds
    And pod "db-1" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True"
    And there are 3 ready pods with label "app=db" within 60 seconds
