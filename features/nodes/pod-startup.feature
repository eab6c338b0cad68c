Feature: Pod start-up on the node
  Once the kubelet has set up the sandbox and started the containers, the pod reports Running
  with every start-up condition true and container statuses naming what runs.

  @B-NODE-007 @needs:workloads
  Scenario: A started pod reports its conditions, addresses and container statuses
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        containers:
        - name: app
          image: nginx:1.26
        - name: helper
          image: busybox:1.36
      """
    Then pod "web" matches within 30 seconds:
      """
      status:
        phase: Running
        conditions:
        - type: PodReadyToStartContainers
          status: "True"
        - type: Initialized
          status: "True"
        - type: ContainersReady
          status: "True"
        - type: Ready
          status: "True"
        - type: PodScheduled
          status: "True"
        containerStatuses:
        - name: app
          image: nginx:1.26
          ready: true
          started: true
          restartCount: 0
          state:
            running: {}
        - name: helper
          image: busybox:1.36
          ready: true
          started: true
          restartCount: 0
          state:
            running: {}
      """
    And pod "web" has "{.status.podIP}" matching "^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$"
    And pod "web" has "{.status.hostIP}" not equal to ""
    And pod "web" has "{.status.startTime}" not equal to ""
    And pod "web" has "{.status.containerStatuses[0].containerID}" matching "^[a-z0-9-]+://[0-9a-f]+$"
    And pod "web" has "{.status.containerStatuses[0].imageID}" not equal to ""
