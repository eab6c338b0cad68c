Feature: The cluster recovers from failures of pods, nodes and control-plane components
  Kubernetes is level-triggered: a component that was down acts on the state it finds when it
  comes back, and the rest of the cluster carries on without it meanwhile. Stopping components
  needs a cluster the runner started itself (`@needs:component-control`); silencing a node needs
  kubeproof's simulated nodes (`@needs:sim-nodes`, `sim.kubeproof.dev/silent` in SIM.md).

  @B-CHAOS-001 @needs:workloads
  Scenario: A killed pod of a Deployment is replaced while its Service keeps ready endpoints
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 3
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
      ---
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
    Then there are 3 ready pods with label "app=web" within 60 seconds
    And endpoints "web" has "{.subsets[0].addresses[*].ip}" matching "^\S+ \S+ \S+$" within 30 seconds
    When I track pods with label "app=web"
    And I remember the name of a ready pod with label "app=web" as "victim"
    And I delete pod "{{ victim }}"
    Then pod "{{ victim }}" does not exist within 60 seconds
    And there are 3 ready pods with label "app=web" within 60 seconds
    And at every moment the tracked pods had at least 2 ready
    And endpoints "web" has "{.subsets[0].addresses[*].ip}" matching "^\S+ \S+ \S+$" within 30 seconds

  @B-CHAOS-012 @serial @needs:component-control @needs:workloads
  Scenario: Without a scheduler new pods stay Pending with no events, and are bound once it is back
    Given a namespace
    When I stop the kube-scheduler
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: waiting
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then pod "waiting" has "{.status.phase}" equal to "Pending" for 5 seconds
    And pod "waiting" has "{.spec.nodeName}" equal to ""
    And there are no events for pod "waiting"
    When I start the kube-scheduler again
    Then pod "waiting" has "{.status.phase}" equal to "Running" within 60 seconds
    And an event with reason "Scheduled" exists for pod "waiting" within 10 seconds

  @B-CHAOS-013 @serial @needs:component-control @needs:workloads
  Scenario: Without the controller-manager nothing is reconciled; once back it converges to the spec
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            terminationGracePeriodSeconds: 1
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
      """
    Then there are 2 ready pods with label "app=web" within 60 seconds
    And deployment "web" has "{.status.observedGeneration}" equal to "1" within 30 seconds
    When I stop the kube-controller-manager
    And I remember the name of a ready pod with label "app=web" as "victim"
    And I delete pod "{{ victim }}"
    And I scale deployment "web" to 3
    Then pod "{{ victim }}" does not exist within 30 seconds
    And there is 1 pod with label "app=web" for 5 seconds
    And deployment "web" has "{.status.observedGeneration}" equal to "1"
    When I start the kube-controller-manager again
    Then there are 3 ready pods with label "app=web" within 60 seconds
    And deployment "web" has "{.status.observedGeneration}" equal to "2" within 30 seconds

  @B-NODE-003 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: A node whose agent stops heartbeating turns Ready=Unknown and is tainted unreachable
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/silent=true"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "Unknown" within 90 seconds
    And node "{{ node }}" matches within 30 seconds:
      """
      spec:
        taints:
        - key: node.kubernetes.io/unreachable
          effect: NoSchedule
        - key: node.kubernetes.io/unreachable
          effect: NoExecute
      status:
        conditions:
        - type: Ready
          status: Unknown
          reason: NodeStatusUnknown
          message: Kubelet stopped posting node status.
      """
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/silent-"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 60 seconds
    And node "{{ node }}" has "{.spec.taints[?(@.key=='node.kubernetes.io/unreachable')].effect}" equal to "" within 30 seconds

  @B-CHAOS-004 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: The pods of a node that went silent are replaced on healthy nodes
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            terminationGracePeriodSeconds: 1
            tolerations:
            - key: node.kubernetes.io/unreachable
              operator: Exists
              effect: NoExecute
              tolerationSeconds: 2
            - key: node.kubernetes.io/not-ready
              operator: Exists
              effect: NoExecute
              tolerationSeconds: 2
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
      """
    Then there are 2 ready pods with label "app=web" within 60 seconds
    When I remember the name of a ready pod with label "app=web" as "victim"
    And I remember "{.spec.nodeName}" of pod "{{ victim }}" as "node"
    And I annotate node "{{ node }}" with "sim.kubeproof.dev/silent=true"
    Then pod "{{ victim }}" has "{.metadata.deletionTimestamp}" matching "." within 120 seconds
    And there are 2 ready pods with label "app=web" within 60 seconds
    And an event with reason "TaintManagerEviction" exists for pod "{{ victim }}" within 10 seconds
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/silent-"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 60 seconds
    And pod "{{ victim }}" does not exist within 60 seconds

  @B-CHAOS-014 @serial @needs:component-control @needs:workloads
  Scenario: After the API server restarts, the controllers, the scheduler and the nodes carry on from their watches
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            containers:
            - name: app
              image: registry.k8s.io/pause:3.10
      """
    Then there are 2 ready pods with label "app=web" within 60 seconds
    When I restart the kube-apiserver
    And I scale deployment "web" to 4
    Then there are 4 ready pods with label "app=web" within 60 seconds
    And deployment "web" has "{.status.availableReplicas}" equal to "4" within 30 seconds
    When I restart the kube-apiserver
    And I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: after-restart
      spec:
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
      """
    Then pod "after-restart" has "{.status.phase}" equal to "Running" within 60 seconds
    And an event with reason "Scheduled" exists for pod "after-restart" within 10 seconds
