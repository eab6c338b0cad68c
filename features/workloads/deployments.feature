Feature: Deployments
  A Deployment runs its pods through a ReplicaSet, scales through its scale subresource, rolls
  a changed pod template out by trading replicas between ReplicaSets, and can be paused,
  resumed and rolled back to an earlier template.

  Background:
    Given a namespace
    And I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
        labels:
          app: web
      spec:
        replicas: 3
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            containers:
            - name: app
              image: nginx:1.26
      """

  @B-WL-001 @B-WL-005 @needs:workloads
  Scenario: A Deployment of three runs three ready pods through one ReplicaSet
    Then there are 3 ready pods with label "app=web" within 60 seconds
    And 1 replicaset exists with label "app=web"
    And deployment "web" matches within 30 seconds:
      """
      status:
        replicas: 3
        readyReplicas: 3
        availableReplicas: 3
      """
    When I remember the name of a pod with label "app=web" as "pod"
    Then pod "{{ pod }}" matches:
      """
      metadata:
        ownerReferences:
        - kind: ReplicaSet
          controller: true
      """
    When I list replicasets with label selector "app=web"
    Then the last response has "{.items[0].metadata.ownerReferences[0].kind}" equal to "Deployment"

  @B-API-021 @B-WL-015 @needs:workloads
  Scenario: Scaling through the scale subresource adds and removes pods
    Given there are 3 ready pods with label "app=web" within 60 seconds
    When I scale deployment "web" to 5
    Then there are 5 ready pods with label "app=web" within 60 seconds
    And deployment "web" has "{.spec.replicas}" equal to "5"
    When I list pods with label selector "app=web"
    Then the last response has "{.items[*].metadata.name}" matching "^web-[a-z0-9]+-[a-z0-9]{5}( web-[a-z0-9]+-[a-z0-9]{5}){4}$"
    When I scale deployment "web" to 2
    Then there are 2 pods with label "app=web" within 60 seconds
    And there are 2 pods with label "app=web" for 3 seconds
    And deployment "web" has "{.status.replicas}" equal to "2" within 30 seconds

  @B-WL-006 @B-WL-012 @B-WL-014 @needs:workloads
  Scenario: Changing the image rolls out a new ReplicaSet and keeps the old one at zero
    Given deployment "web" has "{.status.readyReplicas}" equal to "3" within 60 seconds
    When I set the image of container "app" of deployment "web" to "nginx:1.27"
    Then deployment "web" matches within 90 seconds:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "2"
      spec:
        template:
          spec:
            containers:
            - name: app
              image: nginx:1.27
      status:
        replicas: 3
        updatedReplicas: 3
        availableReplicas: 3
        conditions:
        - type: Progressing
          status: "True"
          reason: NewReplicaSetAvailable
      """
    And 2 replicasets exist with label "app=web"
    And there are 3 ready pods with label "app=web" within 30 seconds
    When I list replicasets with label selector "app=web"
    Then the last response has "{.items[*].spec.replicas}" matching "^(0 3|3 0)$"

  @B-WL-013 @needs:workloads
  Scenario: Undoing a rollout restores the previous template under a new revision
    Given deployment "web" has "{.status.readyReplicas}" equal to "3" within 60 seconds
    When I set the image of container "app" of deployment "web" to "nginx:1.27"
    # updatedReplicas alone would still describe the old template until the controller sees the
    # new one: the revision annotation says the rollout to the new template happened.
    Then deployment "web" matches within 90 seconds:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "2"
      status:
        updatedReplicas: 3
        availableReplicas: 3
      """
    When I undo the rollout of deployment "web"
    Then deployment "web" has "{.spec.template.spec.containers[0].image}" equal to "nginx:1.26"
    And deployment "web" matches within 90 seconds:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "3"
      status:
        updatedReplicas: 3
        availableReplicas: 3
      """
    And 2 replicasets exist with label "app=web"

  @B-WL-006 @needs:workloads
  Scenario: A paused Deployment holds template changes until it is resumed
    Given deployment "web" has "{.status.readyReplicas}" equal to "3" within 60 seconds
    When I pause the rollout of deployment "web"
    And I set the image of container "app" of deployment "web" to "nginx:1.27"
    Then 1 replicaset exists with label "app=web" for 3 seconds
    And deployment "web" matches for 1 second:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "1"
      """
    When I resume the rollout of deployment "web"
    Then 2 replicasets exist with label "app=web" within 30 seconds
    And deployment "web" matches within 90 seconds:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "2"
      status:
        updatedReplicas: 3
        availableReplicas: 3
      """

  @B-WL-006 @needs:workloads
  Scenario: A rollout restart replaces every pod with an identical template
    Given there are 3 ready pods with label "app=web" within 60 seconds
    When I remember the name of a pod with label "app=web" as "before"
    And I restart the rollout of deployment "web"
    Then deployment "web" matches within 90 seconds:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "2"
      status:
        updatedReplicas: 3
        availableReplicas: 3
      """
    And pod "{{ before }}" does not exist within 60 seconds
    And 2 replicasets exist with label "app=web"

  @B-WL-002 @needs:workloads
  Scenario: Applying the same manifest again changes nothing
    Given there are 3 ready pods with label "app=web" within 60 seconds
    When I apply:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
        labels:
          app: web
      spec:
        replicas: 3
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there are 3 pods with label "app=web" for 3 seconds
    And 1 replicaset exists with label "app=web"

  @B-WL-004 @needs:workloads
  Scenario: Scaling a Deployment's ReplicaSet by hand is reverted
    Given there are 3 ready pods with label "app=web" within 60 seconds
    When I list replicasets with label selector "app=web"
    And I remember "{.items[0].metadata.name}" of the last response as "rs"
    And I scale replicaset "{{ rs }}" to 5
    Then replicaset "{{ rs }}" has "{.spec.replicas}" equal to "3" within 30 seconds
    And there are 3 pods with label "app=web" within 60 seconds
