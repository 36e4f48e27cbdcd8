"""The official ``kubernetes`` Python client against the in-process API server.

The client is synchronous, so it runs in a worker thread while the server
runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch


def _api(port: int) -> k8s.ApiClient:
    cfg = k8s.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    return k8s.ApiClient(cfg)


def _scenario(port: int) -> dict[str, Any]:
    api = _api(port)
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    out: dict[str, Any] = {}
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="py")))
    dep = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=k8s.V1DeploymentSpec(
            replicas=1, selector=k8s.V1LabelSelector(match_labels={"app": "web"}),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels={"app": "web"}),
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="nginx")]))))
    created = apps.create_namespaced_deployment("py", dep)
    out["generation"] = created.metadata.generation
    listed = apps.list_namespaced_deployment("py", label_selector="app=web")
    out["listed"] = [d.metadata.name for d in listed.items]
    apps.patch_namespaced_deployment("web", "py", {"spec": {"replicas": 3}})
    out["scale"] = apps.read_namespaced_deployment_scale("web", "py").spec.replicas
    core.create_namespaced_config_map("py", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="c1")))
    rv = core.list_namespaced_config_map("py").metadata.resource_version
    core.create_namespaced_config_map("py", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="c2")))
    core.delete_namespaced_config_map("c1", "py", body=k8s.V1DeleteOptions(propagation_policy="Background"))
    w = k8s_watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=2,
                       allow_watch_bookmarks=True):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 2:
            w.stop()
    out["events"] = events
    try:
        core.read_namespaced_config_map("c1", "py")
    except k8s.ApiException as exc:
        out["missing"] = exc.status
    out["groups"] = sorted(g.name for g in k8s.ApisApi(api).get_api_versions().groups)
    out["version"] = k8s.VersionApi(api).get_code().git_version
    return out


async def test_official_python_client(make_client: Any) -> None:
    from skiff.api.kinds import builtin_registry

    client = await make_client(registry=builtin_registry())
    out = await asyncio.to_thread(_scenario, client.port)
    assert out["generation"] == 1
    assert out["listed"] == ["web"]
    assert out["scale"] == 3
    assert out["events"] == [("ADDED", "c2"), ("DELETED", "c1")]
    assert out["missing"] == 404
    assert "apps" in out["groups"] and out["version"] == "v1.32.4"
