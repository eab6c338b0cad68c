Feature: Service endpoints follow the selector and pod readiness
  The endpoints and EndpointSlice controllers keep, for every Service with a selector, the list
  of pods it selects: the Endpoints object of the Service's name and EndpointSlices labelled
  kubernetes.io/service-name. Pods that are not Ready stay listed but not as ready addresses, so
  they get no traffic.

  @B-NET-007 @B-NET-009 @needs:workloads
  Scenario: Endpoints and EndpointSlices list exactly the pods the selector matches
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
          targetPort: 8080
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: web-a
        labels:
          app: web
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: web-b
        labels:
          app: web
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: other
        labels:
          app: other
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then there are 2 ready pods with label "app=web" within 60 seconds
    And the Endpoints of service "web" list ready pods "web-a, web-b" within 30 seconds
    And the EndpointSlices of service "web" list ready pods "web-a, web-b" within 30 seconds
    When I remember "{.status.podIP}" of pod "web-a" as "ip_a"
    Then endpoints "web" matches:
      """
      subsets:
      - addresses:
        - ip: "{{ ip_a }}"
          targetRef:
            kind: Pod
            name: web-a
            namespace: "{{ namespace }}"
        ports:
        - name: http
          port: 8080
          protocol: TCP
      """
    And 1 endpointslices exist with label "kubernetes.io/service-name=web"
    When I patch pod "web-b" with merge patch:
      """
      metadata:
        labels:
          app: retired
      """
    Then the Endpoints of service "web" list pods "web-a" within 30 seconds
    And the EndpointSlices of service "web" list pods "web-a" within 30 seconds
    When I patch pod "other" with merge patch:
      """
      metadata:
        labels:
          app: web
      """
    Then the Endpoints of service "web" list ready pods "web-a, other" within 30 seconds
    And the EndpointSlices of service "web" list ready pods "web-a, other" within 30 seconds

  @B-NET-009
  Scenario: The EndpointSlice of a Service is labelled with its name, owned by it and managed by the controller
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: api
      spec:
        selector:
          app: api
        ports:
        - name: http
          port: 80
      """
    Then 1 endpointslices exist with label "kubernetes.io/service-name=api,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io" within 30 seconds
    When I list endpointslices with label selector "kubernetes.io/service-name=api"
    Then the last response has "{.items[0].addressType}" equal to "IPv4"
    And the last response has "{.items[0].metadata.ownerReferences[0].kind}" equal to "Service"
    And the last response has "{.items[0].metadata.ownerReferences[0].name}" equal to "api"
    And the last response has "{.items[0].metadata.ownerReferences[0].controller}" equal to "true"
    And the last response has "{.items[0].metadata.generateName}" equal to "api-"

  @B-NET-008 @needs:workloads
  Scenario: A pod that is not Ready is listed as not ready and comes back once it is
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
        name: steady
        labels:
          app: web
      spec:
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: warming
        labels:
          app: web
      spec:
        containers:
        - name: app
          image: nginx:1.26
          readinessProbe:
            httpGet:
              path: /
              port: 80
            # Long enough for the Endpoints to be seen listing it as not ready on a busy
            # machine (12 scenarios at once on two cores).
            initialDelaySeconds: 20
            periodSeconds: 1
      """
    Then pod "warming" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "warming" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "False"
    And the Endpoints of service "web" list not-ready pods "warming" within 30 seconds
    And the Endpoints of service "web" list ready pods "steady" within 30 seconds
    And the EndpointSlices of service "web" list not-ready pods "warming" within 30 seconds
    And the EndpointSlices of service "web" list ready pods "steady"
    When I list endpointslices with label selector "kubernetes.io/service-name=web"
    Then the last response has "{.items[*].endpoints[?(@.targetRef.name=='warming')].conditions.ready}" equal to "false"
    And the Endpoints of service "web" list ready pods "steady, warming" within 30 seconds
    And the EndpointSlices of service "web" list ready pods "steady, warming" within 30 seconds
    And the Endpoints of service "web" list not-ready pods ""
