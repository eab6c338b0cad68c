Feature: Service types and the addresses and ports the API server allocates
  A ClusterIP Service gets a stable virtual IP from the cluster's service range; NodePort and
  LoadBalancer Services also get a node port from 30000-32767; an ExternalName Service is only a
  DNS alias and gets neither an IP nor endpoints. Requests for an IP or a port outside the
  ranges, or already taken, are refused by the allocator with 422 Invalid.
  The service range differs between clusters (10.96.0.0/12 for kubeadm, 127.96.0.0/16 for the
  bundled one), so the scenarios use 203.0.113.10 (TEST-NET-3, never a service range) as an
  address outside it. The LoadBalancer scenario describes a cluster without a cloud provider.

  @B-NET-001
  Scenario: A ClusterIP Service gets a virtual IP that does not change when the Service is updated
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
      """
    Then service "web" matches:
      """
      spec:
        type: ClusterIP
        ipFamilyPolicy: SingleStack
        sessionAffinity: None
        ports:
        - name: http
          port: 80
          protocol: TCP
          targetPort: 8080
      """
    And service "web" has "{.spec.clusterIP}" matching "^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"
    And service "web" has "{.spec.ports[0].nodePort}" equal to ""
    When I remember "{.spec.clusterIP}" of service "web" as "ip"
    Then service "web" has "{.spec.clusterIPs[*]}" equal to "{{ ip }}"
    When I patch service "web" with merge patch:
      """
      metadata:
        labels:
          tier: frontend
      spec:
        ports:
        - name: http
          port: 80
          targetPort: 8080
        - name: metrics
          port: 9090
      """
    Then service "web" has "{.spec.clusterIP}" equal to "{{ ip }}"
    When I try to patch service "web" with merge patch:
      """
      spec:
        clusterIP: 203.0.113.10
        clusterIPs: [203.0.113.10]
      """
    Then the last request failed with code 422 and reason "Invalid"
    And service "web" has "{.spec.clusterIP}" equal to "{{ ip }}"

  @B-NET-001
  Scenario: A ClusterIP outside the service range, or already in use, is refused
    Given a namespace
    When I try to create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: outside
      spec:
        clusterIP: 203.0.113.10
        selector:
          app: web
        ports:
        - port: 80
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "Service \"outside\" is invalid: spec.clusterIPs: Invalid value"
    And the last request failed with code 422 and reason "Invalid" and message containing "failed to allocate IP 203.0.113.10: the provided IP (203.0.113.10) is not in the valid range. The range of valid IPs is "
    And service "outside" does not exist
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: first
      spec:
        selector:
          app: web
        ports:
        - port: 80
      """
    And I remember "{.spec.clusterIP}" of service "first" as "taken"
    And I try to create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: second
      spec:
        clusterIP: "{{ taken }}"
        selector:
          app: web
        ports:
        - port: 80
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "failed to allocate IP {{ taken }}: provided IP is already allocated"
    And service "second" does not exist

  @B-NET-002
  Scenario: A NodePort Service gets a port in 30000-32767; ports outside the range or taken are refused
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        type: NodePort
        selector:
          app: web
        ports:
        - port: 80
          targetPort: 8080
      """
    Then service "web" has "{.spec.ports[0].nodePort}" matching "^(3[01][0-9]{3}|32[0-6][0-9]{2}|327[0-5][0-9]|3276[0-7])$"
    And service "web" has "{.spec.clusterIP}" matching "^[0-9.]+$"
    And service "web" matches:
      """
      spec:
        externalTrafficPolicy: Cluster
        internalTrafficPolicy: Cluster
      """
    When I remember "{.spec.ports[0].nodePort}" of service "web" as "port"
    And I try to create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: low
      spec:
        type: NodePort
        selector:
          app: web
        ports:
        - port: 80
          nodePort: 29999
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "Service \"low\" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767"
    And service "low" does not exist
    When I try to create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: same
      spec:
        type: NodePort
        selector:
          app: web
        ports:
        - port: 80
          nodePort: {{ port }}
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.ports[0].nodePort: Invalid value: {{ port }}: provided port is already allocated"
    And service "same" does not exist

  @B-NET-002
  Scenario: Turning a ClusterIP Service into a NodePort Service allocates its node port
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
      """
    And I remember "{.spec.clusterIP}" of service "web" as "ip"
    And I patch service "web" with merge patch:
      """
      spec:
        type: NodePort
      """
    Then service "web" has "{.spec.ports[0].nodePort}" matching "^(3[01][0-9]{3}|32[0-6][0-9]{2}|327[0-5][0-9]|3276[0-7])$"
    And service "web" has "{.spec.clusterIP}" equal to "{{ ip }}"

  @B-NET-003
  Scenario: Without a cloud provider a LoadBalancer Service stays pending but has its ClusterIP and node port
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: public
      spec:
        type: LoadBalancer
        selector:
          app: web
        ports:
        - port: 80
          targetPort: 8080
      """
    Then service "public" has "{.spec.clusterIP}" matching "^[0-9.]+$"
    And service "public" has "{.spec.ports[0].nodePort}" matching "^(3[01][0-9]{3}|32[0-6][0-9]{2}|327[0-5][0-9]|3276[0-7])$"
    And service "public" matches:
      """
      spec:
        allocateLoadBalancerNodePorts: true
        externalTrafficPolicy: Cluster
      """
    And service "public" has "{.status.loadBalancer.ingress}" equal to "" for 3 seconds

  @B-NET-004
  Scenario: An ExternalName Service is a DNS alias with no cluster IP and no endpoints
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: upstream
      spec:
        type: ExternalName
        externalName: example.org
      """
    Then service "upstream" matches:
      """
      spec:
        type: ExternalName
        externalName: example.org
        clusterIP: null
        clusterIPs: null
      """
    And endpoints "upstream" does not exist for 3 seconds
    And 0 endpointslices exist with label "kubernetes.io/service-name=upstream"
    When I try to create:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: bad-alias
      spec:
        type: ExternalName
        externalName: "not a hostname"
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.externalName"
