Feature: The cluster DNS
  Installers (kubeadm, kind, k3s, …) deploy CoreDNS as pods labelled k8s-app=kube-dns in
  kube-system, behind a Service named kube-dns (its ClusterIP is the nameserver pods get). The
  scenario needs such a cluster (`@needs:cluster-dns`, probed from the kube-dns Service); the
  bundled cluster runs no DNS server, so there it is skipped.

  @B-NET-022 @needs:cluster-dns
  Scenario: CoreDNS pods labelled k8s-app=kube-dns run behind the kube-dns Service
    Given a namespace
    Then service "kube-dns" in namespace "kube-system" matches:
      """
      metadata:
        labels:
          k8s-app: kube-dns
      spec:
        type: ClusterIP
        selector:
          k8s-app: kube-dns
        ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
      """
    And service "kube-dns" in namespace "kube-system" has "{.spec.clusterIP}" matching "^[0-9a-f.:]+$"
    When I list pods in namespace "kube-system" with label selector "k8s-app=kube-dns"
    Then the last response has "{.items[*].status.phase}" matching "^Running( Running)*$"
    And the last response has "{.items[*].spec.containers[*].image}" containing "coredns"
    And endpoints "kube-dns" in namespace "kube-system" has "{.subsets[0].addresses[*].targetRef.kind}" matching "^Pod( Pod)*$"
