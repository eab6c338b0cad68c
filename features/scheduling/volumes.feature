Feature: Volume binding in scheduling
  Pods wait for their Immediate claims to bind; a WaitForFirstConsumer claim is bound only once
  the scheduler has picked a node, which it records on the claim.

  @B-SCHED-007 @needs:workloads
  Scenario: A pod whose Immediate claim is unbound is not scheduled
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: storage.k8s.io/v1
      kind: StorageClass
      metadata:
        name: manual-{{ suffix }}
      provisioner: kubernetes.io/no-provisioner
      volumeBindingMode: Immediate
      ---
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
      spec:
        storageClassName: manual-{{ suffix }}
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: db
      spec:
        volumes:
        - name: data
          persistentVolumeClaim:
            claimName: data
        containers:
        - name: app
          image: postgres:16
          volumeMounts:
          - name: data
            mountPath: /var/lib/postgresql/data
      """
    Then pod "db" has "{.status.conditions[?(@.type=='PodScheduled')].message}" equal to "0/{{ nodes }} nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/{{ nodes }} nodes are available: {{ nodes }} Preemption is not helpful for scheduling.." within 30 seconds
    And an Event with reason "FailedScheduling" and message containing "pod has unbound immediate PersistentVolumeClaims" exists for pod "db" within 10 seconds
    And pod "db" has "{.spec.nodeName}" equal to "" for 2 seconds
    And persistentvolumeclaim "data" has "{.status.phase}" equal to "Pending"

  @B-SCHED-014 @needs:workloads
  Scenario: A WaitForFirstConsumer claim gets the node the scheduler picked
    Given a namespace
    When I create:
      """
      apiVersion: storage.k8s.io/v1
      kind: StorageClass
      metadata:
        name: late-{{ suffix }}
      provisioner: example.com/late-{{ suffix }}
      volumeBindingMode: WaitForFirstConsumer
      ---
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
      spec:
        storageClassName: late-{{ suffix }}
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
      """
    Then persistentvolumeclaim "data" has "{.status.phase}" equal to "Pending" for 2 seconds
    And persistentvolumeclaim "data" has "{.metadata.annotations['volume.kubernetes.io/selected-node']}" equal to ""
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: db
      spec:
        volumes:
        - name: data
          persistentVolumeClaim:
            claimName: data
        containers:
        - name: app
          image: postgres:16
          volumeMounts:
          - name: data
            mountPath: /var/lib/postgresql/data
      """
    Then persistentvolumeclaim "data" has "{.metadata.annotations['volume.kubernetes.io/selected-node']}" not equal to "" within 30 seconds
    When I remember "{.metadata.annotations['volume.kubernetes.io/selected-node']}" of persistentvolumeclaim "data" as "node"
    Then node "{{ node }}" exists
    And pod "db" has "{.spec.nodeName}" equal to "" for 2 seconds
