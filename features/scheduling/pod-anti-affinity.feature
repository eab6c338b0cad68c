Feature: Inter-pod affinity and anti-affinity
  Required pod anti-affinity on the hostname keeps replicas on distinct nodes; replicas beyond
  the number of eligible nodes wait.

  @B-SCHED-011 @serial @needs:workloads
  Scenario: Required anti-affinity puts one replica per node and leaves the rest Pending
    Given a namespace
    And I remember the number of nodes as "nodes"
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: spread
      spec:
        replicas: 4
        selector:
          matchLabels:
            app: spread
        template:
          metadata:
            labels:
              app: spread
          spec:
            affinity:
              podAntiAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                - topologyKey: kubernetes.io/hostname
                  labelSelector:
                    matchLabels:
                      app: spread
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there is one pod with label "app=spread" on every Ready node within 60 seconds
    And the pods with label "app=spread" are spread over "kubernetes.io/hostname" as "1, 1, 1"
    And there is 1 pod with label "app=spread" in phase Pending within 30 seconds
    And there is 1 pod with label "app=spread" in phase Pending for 3 seconds
    And the pods with label "app=spread" are spread over "kubernetes.io/hostname" as "1, 1, 1"

  @B-SCHED-001 @needs:workloads
  Scenario: Required pod affinity puts a pod next to the pod it names
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: cache
        labels:
          app: cache
      spec:
        containers:
        - name: app
          image: redis:7
      """
    Then pod "cache" has "{.spec.nodeName}" not equal to "" within 30 seconds
    When I remember "{.spec.nodeName}" of pod "cache" as "node"
    And I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
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
            affinity:
              podAffinity:
                requiredDuringSchedulingIgnoredDuringExecution:
                - topologyKey: kubernetes.io/hostname
                  labelSelector:
                    matchLabels:
                      app: cache
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there are 3 pods with label "app=web" in phase Running within 60 seconds
    When I list pods with label selector "app=web" with field selector "spec.nodeName={{ node }}"
    Then the last list has 3 items
