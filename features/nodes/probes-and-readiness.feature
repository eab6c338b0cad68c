Feature: Probes and readiness
  Readiness decides the pod's Ready condition and its place in Service endpoints without
  restarting anything; a startup probe holds readiness back until it passes; a failing
  liveness probe gets the container killed and restarted.

  @B-NODE-009 @needs:workloads @needs:sim-nodes
  Scenario: A container that turns unready leaves the endpoints without a restart and comes back
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
        - port: 80
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          app: web
        annotations:
          sim.kubeproof.dev/ready-after: 1s
          sim.kubeproof.dev/unready-after: 8s
          sim.kubeproof.dev/not-ready-for: 6s
      spec:
        containers:
        - name: app
          image: nginx:1.26
          readinessProbe:
            httpGet:
              path: /ready
              port: 80
            periodSeconds: 1
            failureThreshold: 1
      """
    Then pod "web" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 30 seconds
    And endpoints "web" has "{.subsets[0].addresses[0].targetRef.name}" equal to "web" within 15 seconds
    And pod "web" matches within 15 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: Ready
          status: "False"
        - type: ContainersReady
          status: "False"
        containerStatuses:
        - name: app
          ready: false
          restartCount: 0
          state:
            running: {}
      """
    And endpoints "web" has "{.subsets[0].notReadyAddresses[0].targetRef.name}" equal to "web" within 10 seconds
    And pod "web" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 20 seconds
    And pod "web" has "{.status.containerStatuses[0].restartCount}" equal to "0"
    And endpoints "web" has "{.subsets[0].addresses[0].targetRef.name}" equal to "web" within 15 seconds

  @B-NODE-010 @needs:workloads
  Scenario: Until its startup probe passes a container is neither started nor ready
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: slow
      spec:
        containers:
        - name: app
          image: nginx:1.26
          # The startup probe first runs, and passes, 4 s after the container starts.
          startupProbe:
            exec:
              command: ["true"]
            initialDelaySeconds: 4
            periodSeconds: 1
            failureThreshold: 30
          readinessProbe:
            exec:
              command: ["true"]
            periodSeconds: 1
      """
    Then pod "slow" matches within 30 seconds:
      """
      status:
        phase: Running
        containerStatuses:
        - name: app
          started: false
          ready: false
          state:
            running: {}
      """
    And pod "slow" matches within 20 seconds:
      """
      status:
        conditions:
        - type: Ready
          status: "True"
        containerStatuses:
        - name: app
          started: true
          ready: true
          restartCount: 0
      """

  @B-NODE-008 @needs:workloads @needs:sim-nodes
  Scenario: A failing liveness probe gets the container killed and restarted
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: sick
        annotations:
          sim.kubeproof.dev/liveness-fail-after: 2s
      spec:
        containers:
        - name: app
          image: nginx:1.26
          livenessProbe:
            httpGet:
              path: /healthz
              port: 80
            periodSeconds: 1
            failureThreshold: 2
      """
    Then pod "sick" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds
    And pod "sick" matches:
      """
      status:
        containerStatuses:
        - name: app
          lastState:
            terminated:
              exitCode: 137
              reason: Error
      """

  @B-NODE-008 @B-FAIL-007 @needs:workloads
  Scenario: The kubelet records each liveness failure and the kill it leads to as Events
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: flaky
        annotations:
          sim.kubeproof.dev/liveness-fail-after: 1s
      spec:
        containers:
        - name: app
          image: nginx:1.26
          livenessProbe:
            httpGet:
              path: /healthz
              port: 80
            periodSeconds: 1
            failureThreshold: 2
      """
    Then an Event with reason "Unhealthy" and message containing "Liveness probe failed: " exists for pod "flaky" within 60 seconds
    And an Event with reason "Killing" and message containing "Container app failed liveness probe, will be restarted" exists for pod "flaky" within 60 seconds
    And pod "flaky" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds

  @B-NODE-009 @needs:workloads
  Scenario: A failing readiness probe is recorded as an Unhealthy Event and kills nothing
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: aloof
        annotations:
          sim.kubeproof.dev/ready: "false"
      spec:
        containers:
        - name: app
          image: nginx:1.26
          readinessProbe:
            httpGet:
              path: /ready
              port: 80
            periodSeconds: 1
      """
    Then an Event with reason "Unhealthy" and message containing "Readiness probe failed: " exists for pod "aloof" within 60 seconds
    And pod "aloof" matches for 5 seconds:
      """
      status:
        phase: Running
        containerStatuses:
        - name: app
          ready: false
          restartCount: 0
      """
