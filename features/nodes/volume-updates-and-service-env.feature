Feature: Running containers see ConfigMap updates; containers get service variables
  The kubelet publishes a new version of a ConfigMap volume while the pod runs (within its
  periodic pod sync, a minute upstream), and gives every container Docker-link style variables
  for the Services of its namespace and the API server's `kubernetes` Service. These scenarios
  read files and the environment inside real containers, so they need nodes that run processes
  (a real cluster, or `kubeproof conformance --runtime process`).

  @needs:workloads @needs:process-runtime
  Scenario: A running container reads the new content of an updated ConfigMap volume
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: settings
      data:
        mode: fast
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: reader
      spec:
        terminationGracePeriodSeconds: 1
        volumes:
        - name: settings
          configMap:
            name: settings
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "while true; do echo \"mode=$(cat /etc/settings/mode)\"; sleep 1; done"]
          volumeMounts:
          - name: settings
            mountPath: /etc/settings
            readOnly: true
      """
    Then the logs of pod "reader" contain "mode=fast" within 60 seconds
    When I patch configmap "settings" with merge patch:
      """
      data:
        mode: slow
      """
    Then the logs of pod "reader" contain "mode=slow" within 180 seconds
    And pod "reader" has "{.status.containerStatuses[0].restartCount}" equal to "0"

  @needs:workloads @needs:process-runtime
  Scenario: Containers get service variables, explicit env wins, and links can be turned off
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: backend
      spec:
        selector:
          app: backend
        ports:
        - name: http
          port: 80
          protocol: TCP
      """
    And I remember "{.spec.clusterIP}" of service "backend" as "ip"
    # The kubelet reads Services from its cache: a container that started before the new
    # Service reached it exits and is restarted until it sees the variables.
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: linked
      spec:
        restartPolicy: OnFailure
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "[ -n \"$BACKEND_SERVICE_HOST\" ] || exit 1; echo \"host=$BACKEND_SERVICE_HOST port=$BACKEND_SERVICE_PORT named=$BACKEND_SERVICE_PORT_HTTP link=$BACKEND_PORT proto=$BACKEND_PORT_80_TCP_PROTO addr=$BACKEND_PORT_80_TCP_ADDR api=$KUBERNETES_SERVICE_PORT\""]
          env:
          - name: BACKEND_SERVICE_PORT
            value: mine
      """
    Then pod "linked" has "{.status.phase}" equal to "Succeeded" within 120 seconds
    And the logs of pod "linked" contain "host={{ ip }} port=mine named=80 link=tcp://{{ ip }}:80 proto=tcp addr={{ ip }} api=443"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: unlinked
      spec:
        restartPolicy: Never
        enableServiceLinks: false
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo \"backend=[$BACKEND_SERVICE_HOST] api=$KUBERNETES_SERVICE_PORT\""]
      """
    Then pod "unlinked" has "{.status.phase}" equal to "Succeeded" within 60 seconds
    And the logs of pod "unlinked" contain "backend=[] api=443"
