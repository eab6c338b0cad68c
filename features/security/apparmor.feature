Feature: AppArmor profiles in the pod API
  securityContext.appArmorProfile (GA in 1.31) is part of the pod API: RuntimeDefault,
  Localhost (naming a profile) and Unconfined are accepted and kept, and a Localhost profile
  must name the profile.

  @B-SEC-016
  Scenario: AppArmor profiles are accepted at pod and container level, and Localhost needs a profile name
    When I create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: confined
      spec:
        schedulerName: kubeproof-no-such-scheduler
        securityContext:
          appArmorProfile:
            type: RuntimeDefault
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          securityContext:
            appArmorProfile:
              type: Localhost
              localhostProfile: kubeproof-deny-write
        - name: helper
          image: registry.k8s.io/pause:3.10
          securityContext:
            appArmorProfile:
              type: Unconfined
      """
    Then the last request succeeded with code 201
    And pod "confined" matches:
      """
      spec:
        securityContext:
          appArmorProfile:
            type: RuntimeDefault
        containers:
        - name: app
          securityContext:
            appArmorProfile:
              type: Localhost
              localhostProfile: kubeproof-deny-write
        - name: helper
          securityContext:
            appArmorProfile:
              type: Unconfined
      """
    When I try to create:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: unnamed-profile
      spec:
        schedulerName: kubeproof-no-such-scheduler
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          securityContext:
            appArmorProfile:
              type: Localhost
      """
    Then the last request failed with code 422 and reason "Invalid" and message containing "spec.containers[0].securityContext.appArmorProfile.localhostProfile: Required value"
    And pod "unnamed-profile" does not exist
