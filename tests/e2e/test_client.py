"""The official `kubernetes` Python client against skiff: typed CRUD, paginated lists,
watches resumed from a list's resourceVersion, and 410 Gone after compaction."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from e2e_support import SkiffProcess


@pytest.fixture
def api(cluster: SkiffProcess) -> Iterator[Any]:
    with cluster.api_client() as api_client:
        yield api_client


def _status(call: Any) -> int:
    with pytest.raises(ApiException) as info:
        call()
    return int(info.value.status)


def test_configmap_crud(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="crud", labels={"e2e": "crud"}), data={"a": "1"}))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.data == {"a": "1"}

    got = core.read_namespaced_config_map("crud", ns)
    assert got.metadata.uid == created.metadata.uid and got.data == {"a": "1"}

    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("crud", ns, got)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    # The copy read before the replace is stale now.
    got.data["c"] = "3"
    assert _status(lambda: core.replace_namespaced_config_map("crud", ns, got)) == 409

    patched = core.patch_namespaced_config_map("crud", ns, {"data": {"a": "patched"}})
    assert patched.data == {"a": "patched", "b": "2"}

    listed = core.list_namespaced_config_map(ns, label_selector="e2e=crud")
    assert [i.metadata.name for i in listed.items] == ["crud"]
    assert listed.metadata.resource_version

    status = api.sanitize_for_serialization(core.delete_namespaced_config_map("crud", ns))
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "crud" and status["details"]["uid"] == created.metadata.uid
    assert _status(lambda: core.read_namespaced_config_map("crud", ns)) == 404
    assert _status(lambda: core.delete_namespaced_config_map("crud", ns)) == 404


def _deployment(name: str, image: str, replicas: int) -> Any:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name="main", image=image,
                                       env=[client.V1EnvVar(name="K", value="v")])]))))


def test_deployment_crud_and_scale(api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(ns, _deployment("web", "busybox:1.36", 1))
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert _status(lambda: apps.create_namespaced_deployment(
        ns, _deployment("web", "busybox:1.36", 1))) == 409

    # Read-modify-write, retried on 409 as clients do: the Deployment controller writes
    # the object's status concurrently, which moves its resourceVersion.
    for _ in range(10):
        dep = apps.read_namespaced_deployment("web", ns)
        dep.spec.template.spec.containers[0].image = "busybox:1.37"
        try:
            updated = apps.replace_namespaced_deployment("web", ns, dep)
            break
        except ApiException as e:
            if e.status != 409:
                raise
    else:
        raise AssertionError("replace kept conflicting")
    assert updated.spec.template.spec.containers[0].image == "busybox:1.37"
    assert updated.metadata.generation == 2

    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 4

    # A status write does not change the spec, and a spec write keeps the status.
    status_patch = {"status": {"observedGeneration": 99, "replicas": 7}}
    after = apps.patch_namespaced_deployment_status("web", ns, status_patch)
    assert after.status.observed_generation == 99
    assert after.spec.replicas == 4

    apps.delete_namespaced_deployment("web", ns)
    assert _status(lambda: apps.read_namespaced_deployment("web", ns)) == 404


def test_list_pagination_over_1000_configmaps(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    total = 1000

    def create(i: int) -> None:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"page-{i:04d}", labels={"e2e": "page"}),
            data={"i": str(i)}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(total)))

    # No selector: the server then also reports how many items remain (Kubernetes
    # leaves remainingItemCount unset for filtered lists).
    seen: list[str] = []
    pages = 0
    token = None
    first_remaining = None
    while True:
        kwargs = {"_continue": token} if token else {}
        page = core.list_namespaced_config_map(ns, limit=100, **kwargs)
        pages += 1
        assert len(page.items) <= 100
        seen.extend(i.metadata.name for i in page.items)
        if pages == 1:
            first_remaining = page.metadata.remaining_item_count
            # Objects created after the first page are not part of this list's snapshot.
            create(total + 1)
        token = page.metadata._continue
        if not token:
            break
        assert pages <= 20, "pagination does not end"
    assert len(set(seen)) == len(seen), "an item was returned twice"
    paged = [name for name in seen if name.startswith("page-")]
    assert paged == [f"page-{i:04d}" for i in range(total)]  # in key order, each once
    assert first_remaining == len(seen) - 100
    assert pages == -(-len(seen) // 100)

    # With a selector the pages hold only matching items; the snapshot rule holds too.
    token, selected, pages = None, [], 0
    while True:
        kwargs = {"_continue": token} if token else {}
        page = core.list_namespaced_config_map(ns, label_selector="e2e=page", limit=300, **kwargs)
        pages += 1
        selected.extend(i.metadata.name for i in page.items)
        if pages == 1:
            create(total + 2)
        token = page.metadata._continue
        if not token:
            break
    assert selected == [f"page-{i:04d}" for i in range(total + 2) if i != total]

    # A fresh list sees the extra object.
    fresh = core.list_namespaced_config_map(ns, label_selector="e2e=page", limit=2000)
    assert len(fresh.items) == total + 2


def test_watch_from_a_list_replays_every_change_since(api: Any, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="before", labels={"e2e": "watch"})))
    listed = core.list_namespaced_config_map(ns, label_selector="e2e=watch")
    assert [i.metadata.name for i in listed.items] == ["before"]
    rv = listed.metadata.resource_version

    def cm(name: str, data: dict[str, str]) -> Any:
        return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"e2e": "watch"}),
                                  data=data)

    core.create_namespaced_config_map(ns, cm("a", {"v": "1"}))
    core.patch_namespaced_config_map("a", ns, {"data": {"v": "2"}})
    core.create_namespaced_config_map(ns, cm("b", {"v": "1"}))
    core.delete_namespaced_config_map("a", ns)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="unlabelled")))  # filtered out by the selector

    w = watch.Watch()
    events = []
    for event in w.stream(core.list_namespaced_config_map, ns, label_selector="e2e=watch",
                          resource_version=rv, timeout_seconds=10, _request_timeout=30):
        if event["type"] == "BOOKMARK":
            continue
        events.append((event["type"], event["object"].metadata.name,
                       (event["object"].data or {}).get("v"),
                       int(event["object"].metadata.resource_version)))
        if len(events) == 4:
            w.stop()
    assert [e[:3] for e in events] == [
        ("ADDED", "a", "1"), ("MODIFIED", "a", "2"), ("ADDED", "b", "1"), ("DELETED", "a", "2")]
    rvs = [e[3] for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 4 and rvs[0] > int(rv)


def test_watch_from_a_compacted_revision_is_gone(start_cluster: Any) -> None:
    compacting = start_cluster("--compact-retain", "10")
    with compacting.api_client() as api_client:
        core = client.CoreV1Api(api_client)
        old_rv = core.list_namespaced_config_map("default").metadata.resource_version
        core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="churn"), data={"n": "0"}))
        for n in range(1, 50):
            core.patch_namespaced_config_map("churn", "default", {"data": {"n": str(n)}})

        # Compaction runs in the background about once a second after writes; there is
        # no event to await from outside, so retry (bounded) until the watch is refused.
        # While history is still there, the watch replays it: stop at the first event.
        deadline = time.monotonic() + 15
        outcome: ApiException | None = None
        while outcome is None:
            assert time.monotonic() < deadline, "a watch from a compacted revision never got 410"
            w = watch.Watch()
            try:
                for _ in w.stream(core.list_namespaced_config_map, "default",
                                  resource_version=old_rv, timeout_seconds=1,
                                  _request_timeout=10):
                    w.stop()
            except ApiException as exc:
                outcome = exc
            else:
                time.sleep(0.2)  # not yet compacted: poll again shortly
        assert outcome.status == 410
        assert "Expired" in (outcome.reason or "") or "too old" in (outcome.reason or "")

        # A list from the compacted revision is refused too; a fresh list works.
        with pytest.raises(ApiException) as info:
            core.list_namespaced_config_map("default", resource_version=old_rv,
                                            resource_version_match="Exact")
        assert info.value.status == 410
        fresh = core.list_namespaced_config_map("default")
        assert [i.metadata.name for i in fresh.items if i.metadata.name == "churn"] == ["churn"]
