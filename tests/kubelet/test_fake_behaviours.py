"""Simulated nodes, the knobs for demos and tests: failing image pulls, never-ready pods,
stopped nodes, Not Ready recovery, and Nodes added at run time (real API server, fake clock)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from fake_fleet_support import Fleet, wait_for
from skiff.client.resources import EVENTS, LEASES, NODES, PODS
from skiff.client.rest import ApiClient
from skiff.kubelet.fake import STATUS_UPDATE_INTERVAL

Obj = dict[str, Any]


def pod(name: str, node: str, image: str = "nginx", **annotations: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": image}]}}


def waiting_reason(obj: Obj) -> str | None:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason") if statuses else None


def condition(obj: Obj, type_: str) -> Obj:
    return next(c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_)


def ready_is(node_or_pod: Obj, status: str) -> bool:
    return any(c["type"] == "Ready" and c["status"] == status
               for c in (node_or_pod.get("status") or {}).get("conditions") or ())


async def test_invalid_registry_gives_err_image_pull_then_back_off_with_events(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True) as f:
        await client.create(PODS, pod("broken", "skiff-node-0", "registry.invalid/app:1"), namespace="default")
        first = await wait_for(client, PODS, "broken", "default", lambda _t, o: waiting_reason(o) == "ErrImagePull")
        status = first["status"]
        assert status["phase"] == "Pending" and status["podIP"]
        assert "lookup registry.invalid: no such host" in status["containerStatuses"][0]["state"]["waiting"]["message"]
        assert status["containerStatuses"][0]["ready"] is False
        assert condition(first, "Ready")["reason"] == "ContainersNotReady"
        assert condition(first, "Ready")["message"] == "containers with unready status: [app]"
        f.clock.advance(1.0)
        backoff = await wait_for(client, PODS, "broken", "default",
                                 lambda _t, o: waiting_reason(o) == "ImagePullBackOff")
        message = backoff["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        assert message.startswith('Back-off pulling image "registry.invalid/app:1": ErrImagePull: ')
        f.clock.advance(9.5)  # the first back-off is 10 s after the failed pull
        again = await wait_for(client, PODS, "broken", "default",
                               lambda _t, o: waiting_reason(o) == "ErrImagePull")
        assert again["status"]["phase"] == "Pending"
        await f.fleet.recorder.flush()
        events = (await client.list(EVENTS, namespace="default")).items
        seen = {(e["reason"], e["message"]) for e in events if e["involvedObject"]["name"] == "broken"}
        assert ("Pulling", 'Pulling image "registry.invalid/app:1"') in seen
        assert ("Failed", "Error: ErrImagePull") in seen
        assert ("BackOff", 'Back-off pulling image "registry.invalid/app:1"') in seen
        assert ("Failed", "Error: ImagePullBackOff") in seen
        assert any(r == "Failed" and m.startswith('Failed to pull image "registry.invalid/app:1": ')
                   for r, m in seen)
        assert all(e["involvedObject"]["kind"] == "Pod" and e["source"]["component"] == "kubelet"
                   for e in events if e["involvedObject"]["name"] == "broken")


async def test_failing_image_patterns_and_a_fixed_image(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True, failing_images=["example.com/broken/*"]):
        await client.create(PODS, pod("p", "skiff-node-0", "example.com/broken/app:2"), namespace="default")
        failing = await wait_for(client, PODS, "p", "default", lambda _t, o: waiting_reason(o) == "ErrImagePull")
        assert failing["status"]["containerStatuses"][0]["state"]["waiting"]["message"].endswith(": not found")
        # The image is fixed: the container starts.
        await client.patch(PODS, "p", {"spec": {"containers": [{"name": "app", "image": "example.com/ok/app:2"}]}},
                           namespace="default", patch_type="strategic")
        running = await wait_for(client, PODS, "p", "default",
                                 lambda _t, o: (o.get("status") or {}).get("phase") == "Running")
        assert running["status"]["podIP"] == failing["status"]["podIP"]


async def test_init_container_that_cannot_pull_holds_the_pod(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True):
        body = pod("init", "skiff-node-0")
        body["spec"]["initContainers"] = [{"name": "setup", "image": "fake.invalid/setup"}]
        await client.create(PODS, body, namespace="default")

        def init_waiting(_t: str, o: Obj) -> bool:
            inits = (o.get("status") or {}).get("initContainerStatuses") or []
            return bool(inits) and (inits[0]["state"].get("waiting") or {}).get("reason") == "ErrImagePull"
        held = await wait_for(client, PODS, "init", "default", init_waiting)
        assert waiting_reason(held) == "PodInitializing"
        assert condition(held, "Initialized")["status"] == "False"
        assert condition(held, "Initialized")["message"] == "containers with incomplete status: [setup]"


async def test_never_ready_pod_runs_unready_until_the_annotation_changes(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True):
        await client.create(PODS, pod("lazy", "skiff-node-0", **{"skiff.dev/fake-ready": "false"}),
                            namespace="default")
        unready = await wait_for(client, PODS, "lazy", "default",
                                 lambda _t, o: (o.get("status") or {}).get("phase") == "Running")
        assert ready_is(unready, "False") and condition(unready, "ContainersReady")["status"] == "False"
        container = unready["status"]["containerStatuses"][0]
        assert container["started"] is True and container["ready"] is False and "running" in container["state"]
        await client.patch(PODS, "lazy", {"metadata": {"annotations": {"skiff.dev/fake-ready": "true"}}},
                           namespace="default")
        ready = await wait_for(client, PODS, "lazy", "default", lambda _t, o: ready_is(o, "True"))
        assert ready["status"]["podIP"] == unready["status"]["podIP"]


async def test_stopped_node_goes_silent_and_resumes(client: ApiClient) -> None:
    async with Fleet(client, 2, adopt=True) as f:
        await client.patch(NODES, "skiff-node-1", {"metadata": {"annotations": {"skiff.dev/fake-stopped": "true"}}})
        agent = f.fleet.agents["skiff-node-1"]
        await asyncio.wait_for(_until(lambda: agent.stopped), 10)
        before = (await client.get(LEASES, "skiff-node-1", namespace="kube-node-lease"))["spec"]["renewTime"]
        await client.create(PODS, pod("orphan", "skiff-node-1"), namespace="default")
        await client.create(PODS, pod("fine", "skiff-node-0"), namespace="default")
        await wait_for(client, PODS, "fine", "default",
                       lambda _t, o: (o.get("status") or {}).get("phase") == "Running")
        f.clock.advance(25.0)  # two lease intervals: node 0 renews, node 1 does not
        await wait_for(client, LEASES, "skiff-node-0", "kube-node-lease",
                       lambda _t, o: o["spec"]["renewTime"] > before)
        await asyncio.sleep(0.2)  # a stopped node produces no event to await: give it time to misbehave
        assert (await client.get(LEASES, "skiff-node-1", namespace="kube-node-lease"))["spec"]["renewTime"] == before
        assert not (await client.get(PODS, "orphan", namespace="default")).get("status", {}).get("phase") == "Running"
        await client.patch(NODES, "skiff-node-1",
                           {"metadata": {"annotations": {"skiff.dev/fake-stopped": None}}})
        await wait_for(client, LEASES, "skiff-node-1", "kube-node-lease",
                       lambda _t, o: o["spec"]["renewTime"] > before)
        await wait_for(client, PODS, "orphan", "default",
                       lambda _t, o: (o.get("status") or {}).get("phase") == "Running")


async def test_node_marked_unknown_posts_ready_at_once(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True):
        node = await client.get(NODES, "skiff-node-0")
        conditions = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c
                      for c in node["status"]["conditions"]]
        await client.patch(NODES, "skiff-node-0", {"status": {"conditions": conditions}}, subresource="status")
        # No clock movement: the agent reacts to the Node it sees, not to its 60 s heartbeat.
        back = await wait_for(client, NODES, "skiff-node-0", None, lambda _t, o: ready_is(o, "True"))
        assert condition(back, "Ready")["reason"] == "KubeletReady"


async def test_a_node_created_with_the_fake_label_is_adopted_and_retired(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True) as f:
        await client.create(NODES, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "big", "labels": {"skiff.dev/fake": "true", "size": "xl"}},
            "spec": {"taints": [{"key": "big", "effect": "PreferNoSchedule"}]},
            "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "200"}}})
        node = await wait_for(client, NODES, "big", None, lambda _t, o: ready_is(o, "True"))
        assert node["status"]["allocatable"]["cpu"] == "64" and node["status"]["capacity"]["pods"] == "200"
        assert node["metadata"]["labels"]["size"] == "xl"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "big"
        assert node["spec"]["taints"] == [{"key": "big", "effect": "PreferNoSchedule"}]
        assert node["spec"]["podCIDR"] == "10.244.1.0/24"
        await client.get(LEASES, "big", namespace="kube-node-lease")
        await client.create(PODS, pod("there", "big"), namespace="default")
        running = await wait_for(client, PODS, "there", "default",
                                 lambda _t, o: (o.get("status") or {}).get("phase") == "Running")
        assert running["status"]["podIP"].startswith("10.244.1.")
        await client.delete(NODES, "big")
        await asyncio.wait_for(_until(lambda: "big" not in f.fleet.agents), 10)
        beat = condition(await client.get(NODES, "skiff-node-0"), "Ready")["lastHeartbeatTime"]
        f.clock.advance(STATUS_UPDATE_INTERVAL + 1)  # a heartbeat round: the retired node is not registered again
        await wait_for(client, NODES, "skiff-node-0", None,
                       lambda _t, o: condition(o, "Ready")["lastHeartbeatTime"] != beat)
        assert "big" not in {n["metadata"]["name"] for n in (await client.list(NODES)).items}


async def test_unlabelled_nodes_are_not_adopted(client: ApiClient) -> None:
    async with Fleet(client, 1, adopt=True) as f:
        await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "someone-elses"}})
        await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                    "metadata": {"name": "mine", "labels": {"skiff.dev/fake": "true"}}})
        await wait_for(client, NODES, "mine", None, lambda _t, o: ready_is(o, "True"))
        assert "someone-elses" not in f.fleet.agents
        assert not (await client.get(NODES, "someone-elses")).get("status", {}).get("conditions")


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_a_pod_marked_not_ready_by_another_component_is_reported_ready_again(client: ApiClient) -> None:
    """What the node lifecycle controller does to an unreachable node's pods; the node's
    agent, once it sees that, reports the pod as it knows it (ready)."""
    async with Fleet(client, 1, adopt=True):
        await client.create(PODS, pod("steady", "skiff-node-0"), namespace="default")
        ready = await wait_for(client, PODS, "steady", "default", lambda _t, o: ready_is(o, "True"))
        marked = [dict(c, status="False") if c["type"] == "Ready" else c for c in ready["status"]["conditions"]]
        changed = await client.patch(PODS, "steady", {"status": {"conditions": marked}}, namespace="default",
                                     subresource="status")
        assert ready_is(changed, "False")
        again = await wait_for(client, PODS, "steady", "default",
                               lambda _t, o: ready_is(o, "True")
                               and int(o["metadata"]["resourceVersion"]) > int(changed["metadata"]["resourceVersion"]))
        assert again["status"]["podIP"] == ready["status"]["podIP"]


async def test_an_ephemeral_container_added_to_a_simulated_pod_is_reported_running(client: ApiClient) -> None:
    """`kubectl debug` against a simulated node: the ephemeral container shows as running
    (never ready), so kubectl does not wait forever."""
    async with Fleet(client, 1, adopt=True):
        await client.create(PODS, pod("target", "skiff-node-0"), namespace="default")
        running = await wait_for(client, PODS, "target", "default", lambda _t, o: ready_is(o, "True"))
        spec = dict(running["spec"], ephemeralContainers=[{"name": "dbg", "image": "busybox", "stdin": True,
                                                           "targetContainerName": "app"}])
        await client.update(PODS, dict(running, spec=spec), namespace="default", subresource="ephemeralcontainers")
        debugged = await wait_for(client, PODS, "target", "default",
                                  lambda _t, o: bool((o.get("status") or {}).get("ephemeralContainerStatuses")))
        [status] = debugged["status"]["ephemeralContainerStatuses"]
        assert status["name"] == "dbg" and "running" in status["state"] and status["ready"] is False
        assert ready_is(debugged, "True")
