"""The official Kubernetes Python client against a kubeproof cluster, unchanged.

Usage: python3 python_client.py KUBECONFIG. Exits non-zero on the first failed expectation.
"""
import sys
import uuid

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    version = client.VersionApi().get_code()
    assert (version.major, version.minor) == ("1", "32"), version

    core = client.CoreV1Api()
    ns = "py-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"app": "py"}), data={"a": "1"})
    created = core.create_namespaced_config_map(ns, cm)
    assert created.metadata.uid and created.metadata.resource_version

    try:
        core.create_namespaced_config_map(ns, cm)
        raise AssertionError("a duplicate create must fail")
    except ApiException as e:
        assert e.status == 409, e.status

    listed = core.list_namespaced_config_map(ns, label_selector="app=py")
    assert [i.metadata.name for i in listed.items] == ["cfg"], listed.items

    patched = core.patch_namespaced_config_map("cfg", ns, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}, patched.data

    stale = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", resource_version=created.metadata.resource_version), data={})
    try:
        core.replace_namespaced_config_map("cfg", ns, stale)
        raise AssertionError("a stale update must fail")
    except ApiException as e:
        assert e.status == 409, e.status

    apps = client.AppsV1Api()
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.27")]),
            ),
        ),
    )
    d = apps.create_namespaced_deployment(ns, dep)
    assert d.spec.strategy.rolling_update.max_surge == "25%", d.spec.strategy
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 2

    events = []
    w = watch.Watch()
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.delete_namespaced_config_map("cfg", ns)
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
        events.append(ev["type"])
        if ev["type"] == "DELETED":
            w.stop()
    assert events == ["DELETED"], events

    core.delete_namespace(ns)
    print("python client: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
