Feature: Horizontal pod autoscaling
  A HorizontalPodAutoscaler (autoscaling/v2) re-evaluates its target periodically, computes
  desiredReplicas = ceil(currentReplicas × current / target) from the resource metrics API
  (metrics.k8s.io), keeps the result within minReplicas..maxReplicas, follows the scaling
  behaviour's stabilization windows and policies, and sets replicas through the target's scale
  subresource.

  The scenarios that need pods to use a chosen amount of CPU make them do so with kubeproof's
  simulated nodes (`sim.kubeproof.dev/cpu-usage`, see SIM.md), so they need `@needs:sim-nodes`;
  on other clusters they are skipped. Every wait holds with upstream's 15 s sync period.

  @B-WL-030 @needs:workloads @needs:sim-nodes @needs:resource-metrics
  Scenario: The HPA re-evaluates its target periodically and reports the current metric
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 3
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
            annotations:
              sim.kubeproof.dev/cpu-usage: 50m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 100m}}
      ---
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: web
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
        minReplicas: 1
        maxReplicas: 3
        metrics:
        - type: Resource
          resource:
            name: cpu
            target: {type: Utilization, averageUtilization: 50}
      """
    Then horizontalpodautoscaler "web" has "{.status.currentMetrics[0].resource.current.averageUtilization}" equal to "50" within 120 seconds
    And horizontalpodautoscaler "web" matches:
      """
      status:
        currentReplicas: 3
        desiredReplicas: 3
      """
    # Only the load changes, not the HPA: the next periodic evaluation sees it.
    When I patch deployment "web" with merge patch:
      """
      spec:
        template:
          metadata:
            annotations:
              sim.kubeproof.dev/cpu-usage: 60m
      """
    Then horizontalpodautoscaler "web" has "{.status.currentMetrics[0].resource.current.averageUtilization}" equal to "60" within 120 seconds

  @B-WL-031 @needs:workloads @needs:sim-nodes @needs:resource-metrics
  Scenario: Four replicas at 140% CPU against a 70% target become eight through the scale subresource
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 4
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
            annotations:
              sim.kubeproof.dev/cpu-usage: 140m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 100m}}
      """
    Then there are 4 ready pods with label "app=web" within 60 seconds
    When I create:
      """
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: web
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
        minReplicas: 1
        maxReplicas: 8
        metrics:
        - type: Resource
          resource:
            name: cpu
            target: {type: Utilization, averageUtilization: 70}
      """
    Then deployment "web" has "{.spec.replicas}" equal to "8" within 120 seconds
    And an event with reason "SuccessfulRescale" and message containing "New size: 8; reason: cpu resource utilization (percentage of request) above target" exists for horizontalpodautoscaler "web" within 30 seconds
    And horizontalpodautoscaler "web" matches within 30 seconds:
      """
      status:
        desiredReplicas: 8
        currentMetrics:
        - type: Resource
          resource:
            name: cpu
            current:
              averageUtilization: 140
      """
    And there are 8 ready pods with label "app=web" within 60 seconds

  @B-WL-032 @needs:workloads @needs:sim-nodes @needs:resource-metrics
  Scenario: Replicas stay within minReplicas and maxReplicas, and a metric on target changes nothing
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: idle
      spec:
        replicas: 5
        selector:
          matchLabels: {app: idle}
        template:
          metadata:
            labels: {app: idle}
            annotations:
              sim.kubeproof.dev/cpu-usage: 1m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 10m}}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: busy
      spec:
        replicas: 2
        selector:
          matchLabels: {app: busy}
        template:
          metadata:
            labels: {app: busy}
            annotations:
              sim.kubeproof.dev/cpu-usage: 100m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 10m}}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: steady
      spec:
        replicas: 3
        selector:
          matchLabels: {app: steady}
        template:
          metadata:
            labels: {app: steady}
            annotations:
              sim.kubeproof.dev/cpu-usage: 5m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 10m}}
      """
    Then there are 3 ready pods with label "app=steady" within 60 seconds
    When I create:
      """
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: idle
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: idle}
        minReplicas: 2
        maxReplicas: 20
        metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
        behavior:
          scaleDown: {stabilizationWindowSeconds: 0}
      ---
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: busy
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: busy}
        minReplicas: 2
        maxReplicas: 20
        metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
      ---
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: steady
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: steady}
        minReplicas: 2
        maxReplicas: 20
        metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
      """
    Then deployment "idle" has "{.spec.replicas}" equal to "2" within 120 seconds
    And horizontalpodautoscaler "idle" has "{.status.conditions[?(@.type=='ScalingLimited')].reason}" equal to "TooFewReplicas" within 60 seconds
    And deployment "busy" has "{.spec.replicas}" equal to "20" within 180 seconds
    And horizontalpodautoscaler "busy" has "{.status.conditions[?(@.type=='ScalingLimited')].reason}" equal to "TooManyReplicas" within 60 seconds
    And deployment "idle" has "{.spec.replicas}" equal to "2" for 10 seconds
    And deployment "busy" has "{.spec.replicas}" equal to "20" for 10 seconds
    And deployment "steady" has "{.spec.replicas}" equal to "3" for 10 seconds
    And horizontalpodautoscaler "steady" has "{.status.currentMetrics[0].resource.current.averageUtilization}" equal to "50"
    And horizontalpodautoscaler "steady" has "{.status.desiredReplicas}" equal to "3"

  @B-WL-033 @needs:workloads @needs:sim-nodes @needs:resource-metrics
  Scenario: A Percent 100 scale-up policy at most doubles the replicas per period
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
            annotations:
              sim.kubeproof.dev/cpu-usage: 50m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 10m}}
      """
    Then there are 2 ready pods with label "app=web" within 60 seconds
    When I create:
      """
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: web
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
        minReplicas: 1
        maxReplicas: 10
        metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
        behavior:
          scaleUp:
            stabilizationWindowSeconds: 0
            policies:
            - {type: Percent, value: 100, periodSeconds: 20}
      """
    Then deployment "web" has "{.spec.replicas}" equal to "4" within 60 seconds
    And horizontalpodautoscaler "web" has "{.status.conditions[?(@.type=='ScalingLimited')].reason}" equal to "ScaleUpLimit" within 15 seconds
    And deployment "web" has "{.spec.replicas}" equal to "4" for 12 seconds
    And deployment "web" has "{.spec.replicas}" equal to "8" within 60 seconds
    And deployment "web" has "{.spec.replicas}" equal to "8" for 12 seconds
    And deployment "web" has "{.spec.replicas}" equal to "10" within 60 seconds

  @B-WL-034 @needs:workloads @needs:sim-nodes @needs:resource-metrics
  Scenario: After load drops, a scale-down stabilization window holds the replicas, then a Percent 10 policy removes at most 10% per period
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 20
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
            annotations:
              sim.kubeproof.dev/cpu-usage: 1m
          spec:
            containers:
            - name: app
              image: nginx
              resources: {requests: {cpu: 10m}}
      """
    Then there are 20 ready pods with label "app=web" within 90 seconds
    When I create:
      """
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: web
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
        minReplicas: 2
        maxReplicas: 20
        metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
        behavior:
          scaleDown:
            stabilizationWindowSeconds: 30
            policies:
            - {type: Percent, value: 10, periodSeconds: 20}
      """
    Then horizontalpodautoscaler "web" has "{.status.conditions[?(@.type=='AbleToScale')].reason}" equal to "ScaleDownStabilized" within 60 seconds
    And deployment "web" has "{.spec.replicas}" equal to "20" for 15 seconds
    And deployment "web" has "{.spec.replicas}" equal to "18" within 60 seconds
    And deployment "web" has "{.spec.replicas}" equal to "18" for 10 seconds
    And deployment "web" has "{.spec.replicas}" equal to "16" within 45 seconds

  @B-WL-035 @needs:workloads @needs:resource-metrics
  Scenario: Without CPU requests a utilization target cannot be computed and nothing scales
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
      ---
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: web
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
        minReplicas: 1
        maxReplicas: 5
        metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
      """
    Then horizontalpodautoscaler "web" has "{.status.conditions[?(@.type=='ScalingActive')].reason}" equal to "FailedGetResourceMetric" within 120 seconds
    And horizontalpodautoscaler "web" has "{.status.conditions[?(@.type=='ScalingActive')].status}" equal to "False"
    And an event with reason "FailedGetResourceMetric" and message containing "missing request for cpu in container app of Pod web-" exists for horizontalpodautoscaler "web" within 120 seconds
    And deployment "web" has "{.spec.replicas}" equal to "2" for 20 seconds

  @B-WL-036 @needs:workloads
  Scenario: Pods metrics are read from the custom metrics API, and a metric it does not serve stops scaling
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
              resources: {requests: {cpu: 10m}}
      ---
      apiVersion: autoscaling/v2
      kind: HorizontalPodAutoscaler
      metadata:
        name: web
      spec:
        scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
        minReplicas: 1
        maxReplicas: 5
        metrics:
        - type: Pods
          pods:
            metric: {name: kubeproof_metric_nobody_serves}
            target: {type: AverageValue, averageValue: "1"}
      """
    Then horizontalpodautoscaler "web" has "{.status.conditions[?(@.type=='ScalingActive')].reason}" equal to "FailedGetPodsMetric" within 120 seconds
    And an event with reason "FailedGetPodsMetric" and message containing "unable to get metric kubeproof_metric_nobody_serves" exists for horizontalpodautoscaler "web" within 60 seconds
    And deployment "web" has "{.spec.replicas}" equal to "2" for 20 seconds
