Feature: Init containers and sidecars
  Regular init containers run one at a time, in order, before the app containers; an init
  container with restartPolicy Always is a sidecar that starts first, keeps running beside the
  app, is restarted when it exits, and is stopped only after the app containers.

  @B-WL-027 @needs:workloads
  Scenario: Init containers run one at a time in order before the app container starts
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: ordered
      spec:
        initContainers:
        - name: first
          image: busybox:1.36
          command: ["sh", "-c", "sleep 3"]
        - name: second
          image: busybox:1.36
          command: ["sh", "-c", "sleep 3"]
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "ordered" matches within 30 seconds:
      """
      status:
        phase: Pending
        conditions:
        - type: Initialized
          status: "False"
        initContainerStatuses:
        - name: first
          state:
            running: {}
        - name: second
          state:
            waiting:
              reason: PodInitializing
        containerStatuses:
        - name: app
          state:
            waiting:
              reason: PodInitializing
      """
    And pod "ordered" matches within 30 seconds:
      """
      status:
        phase: Pending
        initContainerStatuses:
        - name: first
          state:
            terminated:
              exitCode: 0
              reason: Completed
        - name: second
          state:
            running: {}
        containerStatuses:
        - name: app
          state:
            waiting:
              reason: PodInitializing
      """
    And pod "ordered" matches within 30 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: Initialized
          status: "True"
        initContainerStatuses:
        - name: first
          restartCount: 0
          state:
            terminated:
              exitCode: 0
        - name: second
          restartCount: 0
          state:
            terminated:
              exitCode: 0
        containerStatuses:
        - name: app
          state:
            running: {}
      """

  @B-WL-028 @needs:workloads
  Scenario: A failing init container keeps the pod initialising and the app container never starts
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: blocked
      spec:
        initContainers:
        - name: setup
          image: busybox:1.36
          command: ["sh", "-c", "echo cannot reach the database; exit 1"]
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "blocked" has "{.status.initContainerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds
    And pod "blocked" matches within 30 seconds:
      """
      status:
        phase: Pending
        conditions:
        - type: Initialized
          status: "False"
        initContainerStatuses:
        - name: setup
          state:
            waiting:
              reason: CrashLoopBackOff
          lastState:
            terminated:
              exitCode: 1
              reason: Error
        containerStatuses:
        - name: app
          restartCount: 0
          state:
            waiting:
              reason: PodInitializing
      """
    And pod "blocked" has "{.status.containerStatuses[0].state.waiting.reason}" equal to "PodInitializing" for 3 seconds

  @B-WL-022 @B-WL-023 @needs:workloads
  Scenario: A sidecar starts first and keeps running while the next init container and the app run
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: meshed
      spec:
        terminationGracePeriodSeconds: 1
        initContainers:
        - name: proxy
          image: busybox:1.36
          command: ["sh", "-c", "sleep 3600"]
          restartPolicy: Always
          # Passes from its first run, 3 s after the sidecar starts.
          startupProbe:
            exec:
              command: ["true"]
            initialDelaySeconds: 3
            periodSeconds: 1
        - name: migrate
          image: busybox:1.36
          command: ["sh", "-c", "sleep 2"]
        containers:
        - name: app
          image: nginx:1.26
      """
    # The next init container waits until the sidecar has started.
    Then pod "meshed" matches within 30 seconds:
      """
      status:
        initContainerStatuses:
        - name: proxy
          started: false
          state:
            running: {}
        - name: migrate
          state:
            waiting:
              reason: PodInitializing
        containerStatuses:
        - name: app
          state:
            waiting:
              reason: PodInitializing
      """
    And pod "meshed" matches within 30 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: Initialized
          status: "True"
        initContainerStatuses:
        - name: proxy
          started: true
          restartCount: 0
          state:
            running: {}
        - name: migrate
          state:
            terminated:
              exitCode: 0
              reason: Completed
        containerStatuses:
        - name: app
          state:
            running: {}
      """

  @B-WL-024 @needs:workloads
  Scenario: The sidecar is stopped after the app container has finished
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: batch
      spec:
        restartPolicy: Never
        initContainers:
        - name: logger
          image: fluent/fluent-bit:3.1
          restartPolicy: Always
        containers:
        - name: work
          image: busybox:1.36
          command: ["sh", "-c", "sleep 3"]
      """
    Then pod "batch" matches within 30 seconds:
      """
      status:
        phase: Running
        initContainerStatuses:
        - name: logger
          state:
            running: {}
        containerStatuses:
        - name: work
          state:
            running: {}
      """
    And pod "batch" matches within 30 seconds:
      """
      status:
        phase: Succeeded
        initContainerStatuses:
        - name: logger
          state:
            terminated:
              exitCode: 0
        containerStatuses:
        - name: work
          state:
            terminated:
              exitCode: 0
              reason: Completed
      """

  @B-WL-025 @needs:workloads
  Scenario: A Job completes when its main container succeeds even though its sidecar never exits
    Given a namespace
    When I create:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: report
      spec:
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            initContainers:
            - name: proxy
              image: envoyproxy/envoy:v1.31
              restartPolicy: Always
            containers:
            - name: main
              image: busybox:1.36
              command: ["sh", "-c", "echo report written; sleep 2"]
      """
    Then job "report" matches within 60 seconds:
      """
      status:
        succeeded: 1
        conditions:
        - type: Complete
          status: "True"
      """

  @B-WL-026 @needs:workloads
  Scenario: A sidecar that exits is restarted even in a restartPolicy Never pod
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: flaky-sidecar
      spec:
        restartPolicy: Never
        initContainers:
        - name: helper
          image: busybox:1.36
          command: ["sh", "-c", "sleep 2"]
          restartPolicy: Always
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "flaky-sidecar" has "{.status.initContainerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds
    And pod "flaky-sidecar" matches:
      """
      status:
        phase: Running
        initContainerStatuses:
        - name: helper
          lastState:
            terminated:
              exitCode: 0
        containerStatuses:
        - name: app
          restartCount: 0
          state:
            running: {}
      """
