Feature: Problems surface as Events on the pod
  `kubectl describe pod` and `kubectl events --for pod/<name>` show what went wrong: the
  scheduler's FailedScheduling, the kubelet's Failed and BackOff for an image it cannot pull,
  BackOff for a container that keeps crashing, Unhealthy for a failing probe, Killing when it
  stops a container. Each Event
  names the pod as its involvedObject.

  @B-OBS-014 @needs:workloads
  Scenario: Scheduling, image pull, crash and stop problems are recorded as Events of the pod
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: unplaceable
      spec:
        nodeSelector:
          no-such-label-{{ suffix }}: "true"
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: missing-image
      spec:
        containers:
        - name: app
          image: registry.example/nonexistent-{{ suffix }}:1.0
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: crasher
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo cannot read config; exit 1"]
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: unready
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
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: stopped
      spec:
        terminationGracePeriodSeconds: 1
        containers:
        - name: app
          image: nginx:1.26
      """
    Then an Event with reason "FailedScheduling" and message containing "didn't match Pod's node affinity/selector" exists for pod "unplaceable" within 30 seconds
    And an Event with reason "Failed" and message containing "Failed to pull image \"registry.example/nonexistent-{{ suffix }}:1.0\"" exists for pod "missing-image" within 60 seconds
    And an Event with reason "Failed" and message containing "ErrImagePull" exists for pod "missing-image" within 10 seconds
    And an Event with reason "BackOff" and message containing "Back-off pulling image \"registry.example/nonexistent-{{ suffix }}:1.0\"" exists for pod "missing-image" within 60 seconds
    And an Event with reason "BackOff" and message containing "Back-off restarting failed container app in pod crasher" exists for pod "crasher" within 60 seconds
    And an Event with reason "Unhealthy" and message containing "Readiness probe failed: " exists for pod "unready" within 30 seconds
    And pod "stopped" has "{.status.phase}" equal to "Running" within 30 seconds
    And an Event with reason "Started" and message containing "Started container app" exists for pod "stopped" within 10 seconds
    When I delete pod "stopped"
    Then an Event with reason "Killing" and message containing "Stopping container app" exists for pod "stopped" within 30 seconds
