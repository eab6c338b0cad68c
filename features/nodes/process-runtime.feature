Feature: Real processes on the node
  Containers run as real processes: what they print is their log, a crashing one is restarted
  with back-off and its previous attempt's log stays readable, a failing liveness probe gets it
  restarted, a failing readiness probe takes it out of its Service's endpoints, its environment
  comes from ConfigMaps and the downward API, and one that exceeds its memory limit is
  OOM-killed. These scenarios need nodes that run processes (a real cluster, or
  `kubeproof conformance --runtime process` where the host allows memory cgroups).

  @B-NODE-026 @needs:workloads @needs:process-runtime
  Scenario: A container's output is its log, followed while it runs
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: ticker
      spec:
        terminationGracePeriodSeconds: 2
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"]
      """
    Then pod "ticker" has "{.status.phase}" equal to "Running" within 60 seconds
    And the logs of pod "ticker" contain "tick 0" within 20 seconds
    And the logs of pod "ticker" contain "tick 3" within 20 seconds

  @B-NODE-012 @B-NODE-026 @needs:workloads @needs:process-runtime
  Scenario: A crashing container goes into CrashLoopBackOff and keeps its previous log
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: crash
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo hello from the crashing app; exit 3"]
      """
    Then pod "crash" has "{.status.containerStatuses[0].state.waiting.reason}" equal to "CrashLoopBackOff" within 60 seconds
    And pod "crash" has "{.status.containerStatuses[0].lastState.terminated.exitCode}" equal to "3"
    And pod "crash" has "{.status.containerStatuses[0].lastState.terminated.reason}" equal to "Error"
    And pod "crash" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$"
    And the logs of pod "crash" (previous) contain "hello from the crashing app"

  @B-NODE-008 @needs:workloads @needs:process-runtime
  Scenario: A failing liveness probe restarts the container
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: unwell
      spec:
        terminationGracePeriodSeconds: 2
        volumes:
        - name: state
          emptyDir: {}
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "touch /state/healthy; sleep 4; rm /state/healthy; sleep 3600"]
          volumeMounts:
          - name: state
            mountPath: /state
          livenessProbe:
            exec:
              command: ["cat", "/state/healthy"]
            periodSeconds: 1
            failureThreshold: 2
      """
    Then pod "unwell" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds
    And pod "unwell" has "{.status.containerStatuses[0].lastState.terminated.reason}" equal to "Error"
    And an Event with reason "Unhealthy" and message containing "Liveness probe failed" exists for pod "unwell" within 10 seconds

  @B-NODE-009 @needs:workloads @needs:process-runtime
  Scenario: A failing readiness probe takes the pod out of its Service's endpoints without a restart
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
      spec:
        terminationGracePeriodSeconds: 2
        volumes:
        - name: state
          emptyDir: {}
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "touch /state/ready; sleep 8; rm /state/ready; sleep 3600"]
          volumeMounts:
          - name: state
            mountPath: /state
          readinessProbe:
            exec:
              command: ["cat", "/state/ready"]
            periodSeconds: 1
            failureThreshold: 1
      """
    Then pod "web" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 60 seconds
    And endpoints "web" has "{.subsets[0].addresses[0].targetRef.name}" equal to "web" within 15 seconds
    And pod "web" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "False" within 30 seconds
    And endpoints "web" has "{.subsets[0].notReadyAddresses[0].targetRef.name}" equal to "web" within 15 seconds
    And pod "web" has "{.status.containerStatuses[0].restartCount}" equal to "0"

  @needs:workloads @needs:process-runtime
  Scenario: A container's environment comes from a ConfigMap and the downward API
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
      data:
        color: blue
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: envy
      spec:
        restartPolicy: Never
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo color=$COLOR pod=$POD_NAME ip=$POD_IP"]
          env:
          - name: COLOR
            valueFrom:
              configMapKeyRef:
                name: settings
                key: color
          - name: POD_NAME
            valueFrom:
              fieldRef:
                fieldPath: metadata.name
          - name: POD_IP
            valueFrom:
              fieldRef:
                fieldPath: status.podIP
      """
    Then pod "envy" has "{.status.phase}" equal to "Succeeded" within 60 seconds
    And pod "envy" has "{.status.containerStatuses[0].state.terminated.reason}" equal to "Completed"
    And the logs of pod "envy" contain "color=blue pod=envy ip="

  @B-NODE-014 @needs:workloads @needs:process-runtime
  Scenario: A container over its memory limit is OOM-killed and restarted
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: hog
      spec:
        terminationGracePeriodSeconds: 1
        containers:
        - name: app
          image: busybox:1.36
          # tail keeps the last lines of /dev/zero, which has no line ends: it grows until killed.
          # The address-space cap (far above the limit) stops it on a node that enforces no limit.
          command: ["sh", "-c", "ulimit -v 262144; echo allocating; tail /dev/zero"]
          resources:
            limits:
              memory: 32Mi
      """
    Then pod "hog" matches within 90 seconds:
      """
      status:
        containerStatuses:
        - name: app
          lastState:
            terminated:
              reason: OOMKilled
              exitCode: 137
      """
