Feature: StatefulSet ordering and storage
  A StatefulSet removes and replaces its pods from the highest ordinal down, one at a time,
  and gives each ordinal its own PersistentVolumeClaim that outlives the pod.

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
      ---
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
              image: postgres:17
      """
    And there are 3 ready pods with label "app=db" within 90 seconds

  @B-WL-018 @needs:workloads
  Scenario: Scale-down removes pods from the highest ordinal down
    When I watch pods from now
    And I scale statefulset "db" to 0
    Then the watch on pods sees DELETED events of "db-2, db-1, db-0" in this order within 60 seconds
    And there are 0 pods with label "app=db" within 30 seconds

  @B-WL-019 @needs:workloads
  Scenario: A rolling update replaces one pod at a time from the highest ordinal down
    When I track pods with label "app=db"
    And I watch pods from now
    And I patch statefulset "db" with merge patch:
      """
      spec:
        template:
          metadata:
            annotations:
              kubeproof.dev/revision: "2"
      """
    Then the watch on pods sees DELETED events of "db-2, db-1, db-0" in this order within 90 seconds
    And statefulset "db" matches within 60 seconds:
      """
      status:
        replicas: 3
        readyReplicas: 3
        updatedReplicas: 3
      """
    And pod "db-0" has "{.metadata.annotations['kubeproof.dev/revision']}" equal to "2"
    And at every moment the tracked pods had at least 2 ready

  @B-WL-020 @needs:workloads
  Scenario: Each ordinal gets its own claim from the template, kept when the pod is replaced
    When I create:
      """
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: store
      spec:
        serviceName: db
        replicas: 2
        podManagementPolicy: Parallel
        selector:
          matchLabels:
            app: store
        template:
          metadata:
            labels:
              app: store
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: store
              image: postgres:17
              volumeMounts:
              - name: data
                mountPath: /var/lib/postgresql/data
        volumeClaimTemplates:
        - metadata:
            name: data
          spec:
            accessModes: ["ReadWriteOnce"]
            resources:
              requests:
                storage: 1Gi
      """
    Then persistentvolumeclaim "data-store-0" exists within 30 seconds
    And persistentvolumeclaim "data-store-1" exists within 30 seconds
    And pod "store-0" has "{.spec.volumes[?(@.name=='data')].persistentVolumeClaim.claimName}" equal to "data-store-0" within 30 seconds
    And pod "store-1" has "{.spec.volumes[?(@.name=='data')].persistentVolumeClaim.claimName}" equal to "data-store-1" within 30 seconds
    When I remember "{.metadata.uid}" of pod "store-0" as "old_pod"
    And I remember "{.metadata.uid}" of persistentvolumeclaim "data-store-0" as "claim"
    And I delete pod "store-0"
    Then pod "store-0" has "{.metadata.uid}" not equal to "{{ old_pod }}" within 60 seconds
    And pod "store-0" has "{.spec.volumes[?(@.name=='data')].persistentVolumeClaim.claimName}" equal to "data-store-0"
    And persistentvolumeclaim "data-store-0" has "{.metadata.uid}" equal to "{{ claim }}"
