Feature: Rolling update bounds at every moment
  The seed's Deployment (10 replicas, maxSurge and maxUnavailable 25 %) rolls out a new
  template with at most 13 replicas (the surge rounds up to 3) and at least 8 available ones
  (the unavailability rounds down to 2). Every state is checked, from a watch: a bound broken
  between two polls is still caught. As upstream computes the surge on the ReplicaSets' specs,
  the 13 is checked there: a pod of a ReplicaSet just scaled down may still exist for a moment
  while the new ReplicaSet's pod is created, in upstream Kubernetes too.

  Background:
    Given a namespace
    And I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: seed
      spec:
        replicas: 10
        strategy:
          type: RollingUpdate
          rollingUpdate:
            maxSurge: 25%
            maxUnavailable: 25%
        selector:
          matchLabels:
            app: seed
        template:
          metadata:
            labels:
              app: seed
            annotations:
              # New pods take a while to become ready, which stretches the rollout.
              sim.kubeproof.dev/ready-after: 1s
          spec:
            containers:
            - name: app
              image: nginx:1.26
      """

  @B-WL-007 @B-WL-008 @needs:workloads
  Scenario: A 10-replica rollout stays within 13 replicas and 8 available throughout
    Given there are 10 ready pods with label "app=seed" within 90 seconds
    # The ReplicaSet counts its pods available a moment after they are ready; the Deployment's
    # status is made from the ReplicaSets', so once it says 10 the tracking starts in bounds.
    And deployment "seed" matches within 30 seconds:
      """
      status:
        availableReplicas: 10
      """
    When I track replicasets with label "app=seed"
    And I track pods with label "app=seed"
    And I set the image of container "app" of deployment "seed" to "nginx:1.27"
    Then deployment "seed" matches within 120 seconds:
      """
      metadata:
        annotations:
          deployment.kubernetes.io/revision: "2"
      status:
        replicas: 10
        updatedReplicas: 10
        availableReplicas: 10
      """
    And at every moment the tracked replicasets had at most 13 wanted and at least 8 available
    And at every moment the tracked pods had at least 8 ready
