Feature: Pod topology spread constraints
  DoNotSchedule constraints are hard: a pod that would raise the skew above maxSkew waits.
  ScheduleAnyway constraints are soft: pods are always placed, as evenly as possible.

  @B-SCHED-009 @serial @needs:workloads @needs:node-control
  Scenario: maxSkew 1 over zones places 2/2/2 and keeps a pod Pending rather than break the skew
    Given a namespace
    And I remember the name of a Ready node as "a"
    And I remember the name of a Ready node other than "{{ a }}" as "b"
    And I remember the name of a Ready node other than "{{ a }},{{ b }}" as "c"
    When I label node "{{ a }}" with "zone-{{ suffix }}=a"
    And I label node "{{ b }}" with "zone-{{ suffix }}=b"
    And I label node "{{ c }}" with "zone-{{ suffix }}=c"
    And I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 6
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: web
          spec:
            topologySpreadConstraints:
            - maxSkew: 1
              topologyKey: zone-{{ suffix }}
              whenUnsatisfiable: DoNotSchedule
              labelSelector:
                matchLabels:
                  app: web
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there are 6 pods with label "app=web" in phase Running within 60 seconds
    And the pods with label "app=web" are spread over "zone-{{ suffix }}" as "2, 2, 2"
    # Zone c takes no more pods: the others may reach 3 each (skew 1), the ninth must wait.
    When I cordon node "{{ c }}"
    And I scale deployment "web" to 9
    Then there are 8 pods with label "app=web" in phase Running within 60 seconds
    And there is 1 pod with label "app=web" in phase Pending within 30 seconds
    And the pods with label "app=web" are spread over "zone-{{ suffix }}" as "3, 3, 2"
    When I remember the name of a pod with label "app=web" in phase Pending as "pending"
    Then an Event with reason "FailedScheduling" and message containing "1 node(s) were unschedulable, 2 node(s) didn't match pod topology spread constraints." exists for pod "{{ pending }}" within 30 seconds

  @B-SCHED-010 @serial @needs:workloads
  Scenario: A ScheduleAnyway constraint on the hostname places every pod, as evenly as it can
    Given a namespace
    When I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: soft
      spec:
        replicas: 7
        selector:
          matchLabels:
            app: soft
        template:
          metadata:
            labels:
              app: soft
          spec:
            topologySpreadConstraints:
            - maxSkew: 1
              topologyKey: kubernetes.io/hostname
              whenUnsatisfiable: ScheduleAnyway
              labelSelector:
                matchLabels:
                  app: soft
            containers:
            - name: app
              image: nginx:1.26
      """
    Then there are 7 pods with label "app=soft" in phase Running within 60 seconds
    And the pods with label "app=soft" are spread over "kubernetes.io/hostname" as "3, 2, 2"
