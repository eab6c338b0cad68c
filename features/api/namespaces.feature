Feature: Namespaces
  Namespaces scope names, and deleting one deletes what it holds.

  Scenario: Deleting a namespace deletes its objects and then the namespace
    Given another namespace as "doomed"
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: inside
        namespace: {{ doomed }}
      """
    And I delete namespace "{{ doomed }}"
    Then namespace "{{ doomed }}" has "{.status.phase}" equal to "Terminating"
    And configmap "inside" in namespace "{{ doomed }}" does not exist within 30 seconds
    And namespace "{{ doomed }}" does not exist within 30 seconds

  Scenario: Nothing can be created in a terminating namespace
    Given another namespace as "closing"
    When I create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: blocker
        namespace: {{ closing }}
        finalizers: [example.com/hold]
      """
    And I delete namespace "{{ closing }}"
    And I try to create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: latecomer
        namespace: {{ closing }}
      """
    Then the last request failed with code 403 and reason "Forbidden" and message containing "being terminated"
    When I patch configmap "blocker" in namespace "{{ closing }}" with merge patch:
      """
      metadata:
        finalizers: null
      """
    Then namespace "{{ closing }}" does not exist within 30 seconds

  Scenario: Objects in a missing namespace cannot be created
    When I try to create:
      """
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: lost
        namespace: kp-no-such-namespace
      """
    Then the last request failed with code 404 and reason "NotFound"
