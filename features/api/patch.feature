Feature: Patch types
  JSON patch, JSON merge patch and strategic merge patch differ in how they treat lists.

  Background:
    Given I create:
      """
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: patched
        labels: {app: patched}
      spec:
        replicas: 1
        selector:
          matchLabels: {app: patched}
        template:
          metadata:
            labels: {app: patched}
          spec:
            schedulerName: kubeproof-none
            containers:
            - name: main
              image: registry.k8s.io/pause:3.10
      """

  Scenario: A strategic merge patch merges containers by name
    When I patch deployment "patched" with strategic patch:
      """
      spec:
        template:
          spec:
            containers:
            - name: sidecar
              image: registry.k8s.io/pause:3.10
      """
    Then deployment "patched" matches:
      """
      spec:
        template:
          spec:
            containers:
            - name: main
            - name: sidecar
      """

  Scenario: A merge patch replaces lists and deletes keys set to null
    When I patch deployment "patched" with merge patch:
      """
      metadata:
        labels:
          app: null
          team: blue
      spec:
        template:
          spec:
            containers:
            - name: only
              image: registry.k8s.io/pause:3.10
      """
    Then deployment "patched" has "{.spec.template.spec.containers[*].name}" equal to "only"
    And deployment "patched" matches:
      """
      metadata:
        labels:
          app: null
          team: blue
      """

  Scenario: A JSON patch applies operations in order and fails atomically
    When I patch deployment "patched" with json patch:
      """
      - op: replace
        path: /spec/replicas
        value: 3
      - op: add
        path: /metadata/annotations
        value: {note: patched}
      """
    Then deployment "patched" has "{.spec.replicas}" equal to "3"
    And deployment "patched" has "{.metadata.annotations.note}" equal to "patched"
    When I try to patch deployment "patched" with json patch:
      """
      - op: replace
        path: /spec/replicas
        value: 7
      - op: test
        path: /metadata/annotations/note
        value: something-else
      """
    Then the last request failed with code 422
    And deployment "patched" has "{.spec.replicas}" equal to "3"
