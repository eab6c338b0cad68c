Feature: Troubleshooting a Service that reaches no pod
  The first signal is the Service's endpoints: `kubectl get endpoints` shows <none> when the
  selector matches no pod, and pods that fail readiness are held back as not-ready addresses.
  Fixing the selector or the readiness fills the endpoints again.

  @B-FAIL-014 @needs:workloads
  Scenario: A selector that matches no pod leaves the endpoints empty although the pods run
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: webapp
      spec:
        replicas: 2
        selector:
          matchLabels:
            app: webapp
        template:
          metadata:
            labels:
              app: webapp
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: app
              image: nginx:1.26
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        selector:
          app: web
        ports:
        - name: http
          port: 80
      """
    Then there are 2 ready pods with label "app=webapp" within 60 seconds
    And endpoints "web" exists within 30 seconds
    And the Endpoints of service "web" list pods "" for 3 seconds
    And endpoints "web" has "{.subsets}" equal to ""
    And the EndpointSlices of service "web" list pods "" within 30 seconds
    When I patch service "web" with merge patch:
      """
      spec:
        selector:
          app: webapp
      """
    Then endpoints "web" has "{.subsets[0].addresses[*].ip}" matching "^\S+ \S+$" within 30 seconds
    And endpoints "web" has "{.subsets[0].notReadyAddresses}" equal to ""
    And endpoints "web" has "{.subsets[0].addresses[*].targetRef.name}" matching "^webapp-\S+ webapp-\S+$"

  @B-FAIL-015 @needs:workloads
  Scenario: Pods whose readiness probe never passes run but hold no ready address
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        selector:
          app: web
        ports:
        - name: http
          port: 80
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          app: web
        annotations:
          # Simulated nodes run no nginx to probe: this tells them the probe fails.
          sim.kubeproof.dev/ready: "false"
      spec:
        containers:
        - name: app
          image: nginx:1.26
          readinessProbe:
            httpGet:
              path: /
              port: 81
            periodSeconds: 1
      """
    Then pod "web" has "{.status.phase}" equal to "Running" within 30 seconds
    And the Endpoints of service "web" list not-ready pods "web" within 30 seconds
    And the Endpoints of service "web" list ready pods "" for 3 seconds
    And the EndpointSlices of service "web" list ready pods ""
    And the EndpointSlices of service "web" list not-ready pods "web"
    And endpoints "web" has "{.subsets[0].addresses}" equal to ""
    And an Event with reason "Unhealthy" and message containing "Readiness probe failed: " exists for pod "web" within 30 seconds
    And pod "web" matches:
      """
      status:
        phase: Running
        conditions:
        - type: Ready
          status: "False"
          reason: ContainersNotReady
        - type: ContainersReady
          status: "False"
          reason: ContainersNotReady
        containerStatuses:
        - name: app
          ready: false
          started: true
          restartCount: 0
          state:
            running: {}
      """
