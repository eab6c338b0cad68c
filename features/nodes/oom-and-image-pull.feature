Feature: OOM kills and image pull failures
  A container that goes over its memory limit is OOM-killed and restarted by its restart
  policy; an image that cannot be pulled leaves the container waiting, backing off between
  pulls.

  @B-NODE-014 @needs:workloads @needs:sim-nodes
  Scenario: A container above its memory limit is OOMKilled and restarted
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: hog
        annotations:
          sim.kubeproof.dev/memory-usage: 512Mi
      spec:
        containers:
        - name: app
          image: busybox:1.36
          resources:
            limits:
              memory: 256Mi
      """
    Then pod "hog" has "{.status.containerStatuses[0].restartCount}" matching "^[1-9][0-9]*$" within 60 seconds
    And pod "hog" matches:
      """
      status:
        containerStatuses:
        - name: app
          lastState:
            terminated:
              exitCode: 137
              reason: OOMKilled
      """

  @B-NODE-014 @needs:workloads @needs:sim-nodes
  Scenario: An OOMKilled container under restartPolicy Never fails the pod
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: hog
        annotations:
          sim.kubeproof.dev/memory-usage: 512Mi
      spec:
        restartPolicy: Never
        containers:
        - name: app
          image: busybox:1.36
          resources:
            limits:
              memory: 256Mi
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: modest
        annotations:
          sim.kubeproof.dev/memory-usage: 128Mi
      spec:
        restartPolicy: Never
        containers:
        - name: app
          image: busybox:1.36
          resources:
            limits:
              memory: 256Mi
      """
    Then pod "hog" matches within 30 seconds:
      """
      status:
        phase: Failed
        containerStatuses:
        - name: app
          restartCount: 0
          state:
            terminated:
              exitCode: 137
              reason: OOMKilled
      """
    And pod "modest" has "{.status.phase}" equal to "Running" for 3 seconds

  @B-NODE-013 @needs:workloads
  Scenario: An image that cannot be pulled leaves the container in ErrImagePull then ImagePullBackOff
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: missing
      spec:
        containers:
        - name: app
          image: registry.example/nonexistent-{{ suffix }}:1.0
      """
    Then pod "missing" matches within 30 seconds:
      """
      status:
        phase: Pending
        containerStatuses:
        - name: app
          ready: false
          state:
            waiting:
              reason: ErrImagePull
      """
    And pod "missing" has "{.status.containerStatuses[0].state.waiting.message}" containing "Failed to pull image \"registry.example/nonexistent-{{ suffix }}:1.0\""
    And pod "missing" matches within 30 seconds:
      """
      status:
        phase: Pending
        containerStatuses:
        - name: app
          state:
            waiting:
              reason: ImagePullBackOff
              message: Back-off pulling image "registry.example/nonexistent-{{ suffix }}:1.0"
      """
    And pod "missing" has "{.status.containerStatuses[0].restartCount}" equal to "0"

  @B-NODE-015 @needs:workloads @needs:sim-nodes
  Scenario: A container using more CPU than its limit keeps running
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: burner
        annotations:
          sim.kubeproof.dev/cpu-usage: "2"
      spec:
        containers:
        - name: app
          image: busybox:1.36
          resources:
            limits:
              cpu: 500m
      """
    Then pod "burner" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "burner" matches for 5 seconds:
      """
      status:
        phase: Running
        containerStatuses:
        - name: app
          restartCount: 0
          state:
            running: {}
      """
