Feature: Deployment progress, availability and history
  minReadySeconds delays availability, progressDeadlineSeconds flags a stuck rollout without
  rolling it back, and revisionHistoryLimit bounds the old ReplicaSets kept.

  @B-WL-009 @needs:workloads
  Scenario: A Ready pod counts as available only after minReadySeconds
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 1
        minReadySeconds: 10
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
    Then deployment "web" has "{.status.readyReplicas}" equal to "1" within 60 seconds
    # Zero is omitted from the status upstream; either form means "none available yet".
    And deployment "web" has "{.status.availableReplicas}" matching "^0?$" for 3 seconds
    And deployment "web" has "{.status.availableReplicas}" equal to "1" within 30 seconds
    And deployment "web" has "{.status.conditions[?(@.type=='Available')].status}" equal to "True" within 10 seconds

  @B-WL-010 @needs:workloads
  Scenario: A rollout that makes no progress is marked ProgressDeadlineExceeded and the old pods keep serving
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        progressDeadlineSeconds: 5
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: app
              image: nginx:1.26
      """
    Then deployment "web" has "{.status.conditions[?(@.type=='Progressing')].reason}" equal to "NewReplicaSetAvailable" within 60 seconds
    When I set the image of container "app" of deployment "web" to "registry.example/nonexistent-{{ suffix }}:1.0"
    Then deployment "web" matches within 45 seconds:
      """
      status:
        conditions:
        - type: Progressing
          status: "False"
          reason: ProgressDeadlineExceeded
      """
    And deployment "web" has "{.status.conditions[?(@.type=='Progressing')].message}" containing "has timed out progressing"
    And deployment "web" has "{.spec.template.spec.containers[0].image}" equal to "registry.example/nonexistent-{{ suffix }}:1.0"
    And there are 2 ready pods with label "app=web"
    And deployment "web" has "{.status.availableReplicas}" equal to "2"

  @B-WL-011 @needs:workloads
  Scenario: Old ReplicaSets beyond revisionHistoryLimit are deleted
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 0
        revisionHistoryLimit: 2
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
            annotations:
              kubeproof.dev/revision: "1"
          spec:
            containers:
            - name: app
              image: nginx:1.26
      """
    Then deployment "web" has "{.metadata.annotations['deployment.kubernetes.io/revision']}" equal to "1" within 30 seconds
    When I patch deployment "web" with merge patch:
      """
      spec:
        template:
          metadata:
            annotations:
              kubeproof.dev/revision: "2"
      """
    Then deployment "web" has "{.metadata.annotations['deployment.kubernetes.io/revision']}" equal to "2" within 30 seconds
    When I patch deployment "web" with merge patch:
      """
      spec:
        template:
          metadata:
            annotations:
              kubeproof.dev/revision: "3"
      """
    Then deployment "web" has "{.metadata.annotations['deployment.kubernetes.io/revision']}" equal to "3" within 30 seconds
    When I patch deployment "web" with merge patch:
      """
      spec:
        template:
          metadata:
            annotations:
              kubeproof.dev/revision: "4"
      """
    Then deployment "web" has "{.metadata.annotations['deployment.kubernetes.io/revision']}" equal to "4" within 30 seconds
    When I patch deployment "web" with merge patch:
      """
      spec:
        template:
          metadata:
            annotations:
              kubeproof.dev/revision: "5"
      """
    Then deployment "web" has "{.metadata.annotations['deployment.kubernetes.io/revision']}" equal to "5" within 30 seconds
    And 3 replicasets exist with label "app=web" within 30 seconds
    And 3 replicasets exist with label "app=web" for 3 seconds
