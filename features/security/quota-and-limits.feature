Feature: ResourceQuota and LimitRange admission
  The ResourceQuota admission plugin refuses a create that would push a namespace over its
  quota, naming the quota; the LimitRanger plugin fills in the defaults of a LimitRange for
  containers that state no resources.

  @B-API-024 @B-API-005
  Scenario: A create beyond the quota is refused with 403 naming the quota
    Given I create:
      """
      apiVersion: v1
      kind: ResourceQuota
      metadata:
        name: pod-quota
      spec:
        hard:
          pods: "1"
      """
    And resourcequota "pod-quota" has "{.status.hard.pods}" equal to "1" within 30 seconds
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: first
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    When I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: second
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "pods \"second\" is forbidden: exceeded quota: pod-quota, requested: pods=1, used: pods=1, limited: pods=1"
    And pod "second" does not exist

  @B-API-025
  Scenario: A LimitRange's defaults are filled into containers without resources
    Given I create:
      """
      apiVersion: v1
      kind: LimitRange
      metadata:
        name: cpu-defaults
      spec:
        limits:
        - type: Container
          default:
            cpu: 500m
          defaultRequest:
            cpu: 100m
      """
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: plain
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then pod "plain" has "{.spec.containers[0].resources.limits.cpu}" equal to "500m"
    And pod "plain" has "{.spec.containers[0].resources.requests.cpu}" equal to "100m"
    And pod "plain" has "{.metadata.annotations['kubernetes.io/limit-ranger']}" equal to "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
