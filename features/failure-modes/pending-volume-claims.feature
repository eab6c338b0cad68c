Feature: Troubleshooting PersistentVolumeClaims stuck in Pending
  `kubectl describe pvc` shows why a claim waits, in Events from the persistentvolume-controller:
  no volume fits and no class is set, the class does not exist, or the class's provisioner has
  not created a volume. A pod using an unbound claim stays Pending with "pod has unbound
  immediate PersistentVolumeClaims". Creating a volume that fits binds the claim (and the claim
  to it), and the pod is then scheduled.
  Volumes are cluster-wide, so every claim here selects its volume by a label unique to the
  scenario: no other claim in the cluster can take it.

  @B-FAIL-018
  Scenario: A claim without a class and without a fitting volume stays Pending until a volume is created
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
      spec:
        storageClassName: ""
        selector:
          matchLabels:
            kubeproof.dev/volume: data-{{ suffix }}
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
      """
    Then an Event with reason "FailedBinding" and message containing "no persistent volumes available for this claim and no storage class is set" exists for persistentvolumeclaim "data" within 30 seconds
    And persistentvolumeclaim "data" matches:
      """
      spec:
        volumeName: null
      status:
        phase: Pending
      """
    When I create:
      """
      apiVersion: v1
      kind: PersistentVolume
      metadata:
        name: data-{{ suffix }}
        labels:
          kubeproof.dev/volume: data-{{ suffix }}
      spec:
        storageClassName: ""
        capacity:
          storage: 2Gi
        accessModes: [ReadWriteOnce]
        persistentVolumeReclaimPolicy: Retain
        hostPath:
          path: /tmp/kubeproof-data-{{ suffix }}
          type: DirectoryOrCreate
      """
    Then persistentvolumeclaim "data" matches within 30 seconds:
      """
      spec:
        volumeName: data-{{ suffix }}
      status:
        phase: Bound
        accessModes: [ReadWriteOnce]
        capacity:
          storage: 2Gi
      """
    And persistentvolume "data-{{ suffix }}" matches within 10 seconds:
      """
      spec:
        claimRef:
          kind: PersistentVolumeClaim
          namespace: "{{ namespace }}"
          name: data
      status:
        phase: Bound
      """

  @B-FAIL-019
  Scenario: A claim naming a StorageClass that does not exist reports it and waits
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
      spec:
        storageClassName: missing-sc-{{ suffix }}
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
      """
    Then an Event with reason "ProvisioningFailed" and message containing "storageclass.storage.k8s.io \"missing-sc-{{ suffix }}\" not found" exists for persistentvolumeclaim "data" within 30 seconds
    And persistentvolumeclaim "data" has "{.status.phase}" equal to "Pending" for 2 seconds
    And persistentvolumeclaim "data" has "{.spec.volumeName}" equal to ""

  @B-FAIL-020
  Scenario: A claim whose class's provisioner is not installed waits for the external provisioner
    Given a namespace
    When I create:
      """
      apiVersion: storage.k8s.io/v1
      kind: StorageClass
      metadata:
        name: absent-{{ suffix }}
      provisioner: example.com/absent-{{ suffix }}
      volumeBindingMode: Immediate
      ---
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
      spec:
        storageClassName: absent-{{ suffix }}
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 1Gi
      """
    Then an Event with reason "ExternalProvisioning" and message containing "Waiting for a volume to be created either by the external provisioner 'example.com/absent-{{ suffix }}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered." exists for persistentvolumeclaim "data" within 30 seconds
    And persistentvolumeclaim "data" matches:
      """
      metadata:
        annotations:
          volume.kubernetes.io/storage-provisioner: example.com/absent-{{ suffix }}
      spec:
        volumeName: null
      status:
        phase: Pending
      """
    And persistentvolumeclaim "data" has "{.status.phase}" equal to "Pending" for 2 seconds

  @B-FAIL-004 @needs:workloads
  Scenario: A pod whose claim is unbound stays Pending until a volume binds the claim
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
      spec:
        storageClassName: ""
        selector:
          matchLabels:
            kubeproof.dev/volume: db-{{ suffix }}
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
          image: nginx:1.26
          volumeMounts:
          - name: data
            mountPath: /data
      """
    Then an Event with reason "FailedScheduling" and message containing "0/{{ nodes }} nodes are available: pod has unbound immediate PersistentVolumeClaims." exists for pod "db" within 30 seconds
    And pod "db" has "{.spec.nodeName}" equal to ""
    And persistentvolumeclaim "data" has "{.status.phase}" equal to "Pending"
    When I create:
      """
      apiVersion: v1
      kind: PersistentVolume
      metadata:
        name: db-{{ suffix }}
        labels:
          kubeproof.dev/volume: db-{{ suffix }}
      spec:
        storageClassName: ""
        capacity:
          storage: 1Gi
        accessModes: [ReadWriteOnce]
        persistentVolumeReclaimPolicy: Retain
        hostPath:
          path: /tmp/kubeproof-db-{{ suffix }}
          type: DirectoryOrCreate
      """
    Then persistentvolumeclaim "data" has "{.status.phase}" equal to "Bound" within 30 seconds
    And persistentvolumeclaim "data" has "{.spec.volumeName}" equal to "db-{{ suffix }}"
    And pod "db" has "{.spec.nodeName}" not equal to "" within 60 seconds
    And pod "db" has "{.status.phase}" equal to "Running" within 30 seconds
