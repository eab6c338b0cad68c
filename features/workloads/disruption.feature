Feature: Disruption budgets and node maintenance
  The Eviction API honours PodDisruptionBudgets; a cordoned node takes no new pods until it is
  uncordoned.

  @B-WL-037 @B-WL-038 @needs:workloads
  Scenario: A PodDisruptionBudget lets one eviction through and refuses the next with 429
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
            containers:
            - name: app
              image: nginx:1.26
              # Replacements stay unready long enough for the second eviction to meet the
              # exhausted budget.
              readinessProbe:
                exec:
                  command: ["true"]
                initialDelaySeconds: 5
                periodSeconds: 1
      ---
      apiVersion: policy/v1
      kind: PodDisruptionBudget
      metadata:
        name: web
      spec:
        minAvailable: 2
        selector:
          matchLabels:
            app: web
      """
    Then there are 3 ready pods with label "app=web" within 60 seconds
    And poddisruptionbudget "web" matches within 30 seconds:
      """
      status:
        currentHealthy: 3
        desiredHealthy: 2
        expectedPods: 3
        disruptionsAllowed: 1
      """
    When I remember the name of a ready pod with label "app=web" as "first"
    And I remember the name of a ready pod with label "app=web" other than "{{ first }}" as "second"
    And I evict pod "{{ first }}"
    Then the last request succeeded with code 201
    When I try to evict pod "{{ second }}"
    Then the last request failed with code 429 and message containing "disruption budget"
    And pod "{{ second }}" exists
    And there are 3 ready pods with label "app=web" within 60 seconds
    And poddisruptionbudget "web" has "{.status.disruptionsAllowed}" equal to "1" within 30 seconds

  @B-CHAOS-016 @serial @needs:workloads @needs:node-control
  Scenario: A cordoned node takes no new pods until it is uncordoned
    Given a namespace
    And I remember the name of a Ready node as "node"
    When I cordon node "{{ node }}"
    Then node "{{ node }}" has "{.spec.unschedulable}" equal to "true"
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: pinned
      spec:
        nodeSelector:
          kubernetes.io/hostname: "{{ node }}"
        containers:
        - name: app
          image: nginx:1.26
      """
    Then an Event with reason "FailedScheduling" exists for pod "pinned" within 30 seconds
    And pod "pinned" has "{.spec.nodeName}" equal to "" for 3 seconds
    And pod "pinned" has "{.status.phase}" equal to "Pending"
    When I uncordon node "{{ node }}"
    Then pod "pinned" has "{.spec.nodeName}" equal to "{{ node }}" within 60 seconds
    And pod "pinned" has "{.status.phase}" equal to "Running" within 60 seconds
