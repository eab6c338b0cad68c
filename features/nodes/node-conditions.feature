Feature: Node conditions and the taints they bring
  A node reporting pressure or NotReady gets a matching taint from the control plane, so new
  pods stay away; NoExecute not-ready taints evict pods after their tolerationSeconds. Pods get
  default not-ready/unreachable tolerations of 300 s at admission.

  @B-NODE-020 @B-NODE-021 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: Memory pressure taints the node and keeps new BestEffort pods off it until it clears
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/memory-pressure=true"
    Then node "{{ node }}" matches within 30 seconds:
      """
      spec:
        taints:
        - key: node.kubernetes.io/memory-pressure
          effect: NoSchedule
      status:
        conditions:
        - type: MemoryPressure
          status: "True"
          reason: KubeletHasInsufficientMemory
        - type: Ready
          status: "True"
      """
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: besteffort
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "besteffort" has "{.status.qosClass}" equal to "BestEffort"
    And an Event with reason "FailedScheduling" and message containing "1 node(s) had untolerated taint {node.kubernetes.io/memory-pressure: }" exists for pod "besteffort" within 30 seconds
    And pod "besteffort" has "{.spec.nodeName}" equal to ""
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/memory-pressure-"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='MemoryPressure')].status}" equal to "False" within 30 seconds
    And node "{{ node }}" has "{.spec.taints[?(@.key=='node.kubernetes.io/memory-pressure')].effect}" equal to "" within 30 seconds
    And pod "besteffort" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds

  @B-NODE-020 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: Disk and PID pressure are reported as node conditions and tainted
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/disk-pressure=true"
    And I annotate node "{{ node }}" with "sim.kubeproof.dev/pid-pressure=true"
    Then node "{{ node }}" matches within 30 seconds:
      """
      spec:
        taints:
        - key: node.kubernetes.io/disk-pressure
          effect: NoSchedule
        - key: node.kubernetes.io/pid-pressure
          effect: NoSchedule
      status:
        conditions:
        - type: DiskPressure
          status: "True"
          reason: KubeletHasDiskPressure
        - type: PIDPressure
          status: "True"
          reason: KubeletHasInsufficientPID
      """
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/disk-pressure-"
    And I annotate node "{{ node }}" with "sim.kubeproof.dev/pid-pressure-"
    Then node "{{ node }}" matches within 30 seconds:
      """
      status:
        conditions:
        - type: DiskPressure
          status: "False"
        - type: PIDPressure
          status: "False"
      """
    And node "{{ node }}" has "{.spec.taints[?(@.key=='node.kubernetes.io/disk-pressure')].effect}" equal to "" within 30 seconds
    And node "{{ node }}" has "{.spec.taints[?(@.key=='node.kubernetes.io/pid-pressure')].effect}" equal to "" within 30 seconds

  @B-NODE-004
  Scenario: Pods get default not-ready and unreachable tolerations of 300 seconds at admission
    Given a namespace
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: plain
      spec:
        schedulerName: does-not-exist
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "plain" matches:
      """
      spec:
        tolerations:
        - key: node.kubernetes.io/not-ready
          operator: Exists
          effect: NoExecute
          tolerationSeconds: 300
        - key: node.kubernetes.io/unreachable
          operator: Exists
          effect: NoExecute
          tolerationSeconds: 300
      """

  @B-NODE-004 @B-NODE-005 @serial @needs:workloads @needs:node-control @needs:sim-nodes
  Scenario: A NotReady node takes no new pods and evicts pods once their toleration runs out
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: short
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        tolerations:
        - key: node.kubernetes.io/not-ready
          operator: Exists
          effect: NoExecute
          tolerationSeconds: 2
        containers:
        - name: app
          image: nginx:1.26
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: patient
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      """
    Then pod "short" has "{.status.phase}" equal to "Running" within 30 seconds
    And pod "patient" has "{.status.phase}" equal to "Running" within 30 seconds
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/not-ready=true"
    Then node "{{ node }}" matches within 30 seconds:
      """
      spec:
        taints:
        - key: node.kubernetes.io/not-ready
          effect: NoSchedule
        - key: node.kubernetes.io/not-ready
          effect: NoExecute
      status:
        conditions:
        - type: Ready
          status: "False"
          reason: KubeletNotReady
      """
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: newcomer
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      """
    Then an Event with reason "FailedScheduling" and message containing "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }" exists for pod "newcomer" within 30 seconds
    And pod "short" does not exist within 30 seconds
    And an Event with reason "TaintManagerEviction" exists for pod "short" within 10 seconds
    # The default 300 s toleration keeps the other pod for now.
    And pod "patient" exists
    And pod "patient" has "{.metadata.deletionTimestamp}" equal to ""
    When I annotate node "{{ node }}" with "sim.kubeproof.dev/not-ready-"
    Then node "{{ node }}" has "{.status.conditions[?(@.type=='Ready')].status}" equal to "True" within 30 seconds
    And node "{{ node }}" has "{.spec.taints[?(@.key=='node.kubernetes.io/not-ready')].effect}" equal to "" within 30 seconds
    And pod "newcomer" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds
