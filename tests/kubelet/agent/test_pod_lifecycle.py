"""A pod's life on a real node: start, logs, completion, restarts, init containers,
sidecars, OOM kills, graceful deletion and adoption by a restarted kubelet."""

from __future__ import annotations

import asyncio

from kubelet_support import (Node, condition, container, events_of, pod, running, state, wait_event,
                             wait_gone, wait_pod)

from skiff.client.resources import LEASES, NODES, PODS
from skiff.kubelet.runtime.interface import ContainerState


def cid(status: dict) -> str:
    return str(status["containerID"]).removeprefix("runc://")


async def logs(node: Node, container_id: str) -> list[str]:
    assert node.kubelet is not None
    return [r.content.decode() async for r in node.kubelet.runtime.logs(container_id)]


def logged_pods(node: Node) -> list[str]:
    """The pods with a log directory on the node (``<namespace>_<name>_<uid>``), by name."""
    assert node.kubelet is not None
    return sorted(path.name.split("_")[1] for path in node.kubelet.config.logs_dir.iterdir())


async def test_pod_runs_ready_with_an_ip_and_logs(node: Node) -> None:
    client = node.client
    registered = await client.get(NODES, "node-1")
    assert registered["status"]["capacity"]["pods"] == "110"
    assert int(registered["status"]["capacity"]["cpu"]) >= 1
    assert {c["type"]: c["status"] for c in registered["status"]["conditions"]}["Ready"] == "True"
    assert registered["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("runc://")
    lease = await client.get(LEASES, "node-1", namespace="kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "node-1"

    await client.create(PODS, pod("web", container("web", "echo hi; sleep 3600")), namespace="default")
    web = await wait_pod(client, "web", lambda p: running()(p) and condition(p, "Ready") == "True")
    status = web["status"]
    assert status["podIP"].startswith("10.244.0.") and status["hostIP"] == "127.0.0.1"
    assert {c["type"] for c in status["conditions"]} == {
        "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"}
    web_status = state(web, "web")
    assert web_status["ready"] and web_status["started"] and web_status["restartCount"] == 0
    assert web_status["image"] == "docker.io/library/busybox:test"
    assert web_status["imageID"].startswith("sha256:")
    assert web_status["containerID"].startswith("runc://")
    for _ in range(50):
        if "hi" in await logs(node, cid(web_status)):
            break
        await asyncio.sleep(0.05)
    assert await logs(node, cid(web_status)) == ["hi"]
    await wait_event(client, "web", "Started", contains="Started container web")
    reasons = [e["reason"] for e in await events_of(client, "web")]
    assert "Pulled" in reasons and "Created" in reasons
    pulled = next(e for e in await events_of(client, "web") if e["reason"] == "Pulled")
    assert pulled["message"] == 'Container image "busybox:test" already present on machine'
    assert pulled["source"]["component"] == "kubelet"
    assert node.kubelet is not None
    result = await node.kubelet.runtime.exec_sync(cid(web_status), ["cat", "/etc/hosts"])
    assert f"{status['podIP']}\tweb" in result.stdout.decode()


async def test_exit_zero_with_restart_never_succeeds(node: Node) -> None:
    client = node.client
    await client.create(PODS, pod("job", container("main", "echo done"), restartPolicy="Never"),
                        namespace="default")
    done = await wait_pod(client, "job", lambda p: p["status"].get("phase") == "Succeeded")
    terminated = state(done, "main")["state"]["terminated"]
    assert terminated["reason"] == "Completed" and terminated["exitCode"] == 0
    assert condition(done, "Ready") == "False" and condition(done, "PodReadyToStartContainers") == "False"
    ready = next(c for c in done["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PodCompleted"


async def test_exit_one_with_restart_always_backs_off(node: Node) -> None:
    client = node.client
    await client.create(PODS, pod("crash", container("main", "exit 1")), namespace="default")
    looping = await wait_pod(client, "crash", lambda p: state(p, "main").get("restartCount", 0) >= 3
                             and "waiting" in state(p, "main")["state"])
    main = state(looping, "main")
    assert main["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert "restarting failed container=main pod=crash_default(" in main["state"]["waiting"]["message"]
    assert main["lastState"]["terminated"]["exitCode"] == 1
    assert main["lastState"]["terminated"]["reason"] == "Error"
    assert looping["status"]["phase"] == "Running"
    await wait_event(client, "crash", "BackOff", contains="Back-off restarting failed container main")
    assert node.kubelet is not None
    # the waits grow: 0.25 s, 0.5 s, 1 s, then the 2 s cap
    assert node.kubelet.ctx.restarts.delay(f"{looping['metadata']['uid']}/regular/main") >= 1.0


async def test_init_containers_run_in_order_then_the_app_and_a_sidecar_keeps_running(node: Node) -> None:
    client = node.client
    shared = {"name": "work", "mountPath": "/work"}
    spec = pod("init", container("app", "cat /work/order; sleep 3600", volumeMounts=[shared]),
               initContainers=[
                   container("first", "echo first >> /work/order", volumeMounts=[shared]),
                   dict(container("side", "echo side >> /work/order; sleep 3600", volumeMounts=[shared]),
                        restartPolicy="Always"),
                   container("second", "echo second >> /work/order", volumeMounts=[shared])],
               volumes=[{"name": "work", "emptyDir": {}}])
    await client.create(PODS, spec, namespace="default")
    up = await wait_pod(client, "init", running("app"))
    assert condition(up, "Initialized") == "True"
    assert state(up, "first", init=True)["state"]["terminated"]["reason"] == "Completed"
    assert state(up, "second", init=True)["state"]["terminated"]["exitCode"] == 0
    side = state(up, "side", init=True)
    assert "running" in side["state"] and side["started"] and side["ready"]
    for _ in range(50):
        lines = await logs(node, cid(state(up, "app")))
        if lines:
            break
        await asyncio.sleep(0.05)
    assert lines == ["first", "side", "second"]


async def test_init_failure_with_restart_never_fails_the_pod(node: Node) -> None:
    client = node.client
    await client.create(PODS, pod("badinit", container("app", "sleep 3600"), restartPolicy="Never",
                                  initContainers=[container("setup", "exit 3")]), namespace="default")
    failed = await wait_pod(client, "badinit", lambda p: p["status"].get("phase") == "Failed")
    assert state(failed, "setup", init=True)["state"]["terminated"]["exitCode"] == 3
    assert state(failed, "app")["state"]["waiting"]["reason"] == "PodInitializing"
    assert condition(failed, "Initialized") == "False"


async def test_over_its_memory_limit_a_container_is_oom_killed_and_restarted(node: Node) -> None:
    client = node.client
    hog = container("hog", "sleep 0.2; x=$(head -c 100000000 /dev/zero | tr '\\0' 'x'); sleep 3600",
                    resources={"limits": {"memory": "32Mi"}})
    await client.create(PODS, pod("oom", hog, restartPolicy="OnFailure"), namespace="default")
    killed = await wait_pod(client, "oom", lambda p: state(p, "hog").get("restartCount", 0) >= 1)
    last = state(killed, "hog")["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)


async def test_deletion_sends_sigterm_then_removes_the_pod(node: Node) -> None:
    client = node.client
    script = "trap 'echo got TERM > /out/term; exit 0' TERM; while true; do sleep 0.1; done"
    await client.create(PODS, pod("graceful", container("main", script,
                                                        volumeMounts=[{"name": "out", "mountPath": "/out"}]),
                                  volumes=[{"name": "out", "hostPath": {"path": str(node.root / "out"),
                                                                        "type": "DirectoryOrCreate"}}]),
                        namespace="default")
    await wait_pod(client, "graceful", running())
    await client.delete(PODS, "graceful", namespace="default")
    await wait_gone(client, "graceful")
    assert (node.root / "out" / "term").read_text() == "got TERM\n"
    await wait_event(client, "graceful", "Killing", contains="Stopping container main")
    assert node.kubelet is not None
    assert await node.kubelet.runtime.list_sandboxes() == []
    assert logged_pods(node) == []          # its logs went with it


async def test_a_restarted_kubelet_adopts_running_pods(node: Node) -> None:
    client = node.client
    await client.create(PODS, pod("steady", container("main", "sleep 3600")), namespace="default")
    before = await wait_pod(client, "steady", lambda p: running()(p) and condition(p, "Ready") == "True")
    await client.create(PODS, pod("doomed", container("main", "sleep 3600")), namespace="default")
    await wait_pod(client, "doomed", running())
    await node.stop()
    await client.delete(PODS, "doomed", namespace="default", grace_period_seconds=0)
    kubelet = await node.start()
    after = await wait_pod(client, "steady", lambda p: running()(p) and condition(p, "Ready") == "True")
    assert state(after, "main")["containerID"] == state(before, "main")["containerID"]
    assert state(after, "main")["restartCount"] == 0
    containers = await kubelet.runtime.list()
    assert [c.labels["io.kubernetes.pod.name"] for c in containers
            if c.state == ContainerState.RUNNING] == ["steady"]
    assert len(await kubelet.runtime.list_sandboxes()) == 1
    assert logged_pods(node) == ["steady"]  # the pod deleted while it was down: logs gone too


async def test_a_pod_bound_later_by_the_scheduler_is_run(node: Node) -> None:
    client = node.client
    unbound = pod("bound", container("main", "sleep 3600"))
    del unbound["spec"]["nodeName"]
    await client.create(PODS, unbound, namespace="default")
    await client.create(PODS, {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
                               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}},
                        namespace="default", name="bound", subresource="binding")
    up = await wait_pod(client, "bound", running())
    assert up["spec"]["nodeName"] == "node-1"


async def test_a_status_changed_by_another_component_is_reported_again(node: Node) -> None:
    """The node lifecycle controller marks an unreachable node's pods not ready; once the
    kubelet sees that change it reports its own status again (it is the authority)."""
    client = node.client
    await client.create(PODS, pod("steady", container("steady", "sleep 3600")), namespace="default")
    ready = await wait_pod(client, "steady", lambda p: condition(p, "Ready") == "True")
    marked = [dict(c, status="False") if c["type"] == "Ready" else c for c in ready["status"]["conditions"]]
    changed = await client.patch(PODS, "steady", {"status": {"conditions": marked}}, namespace="default",
                                 subresource="status")
    assert condition(changed, "Ready") == "False"
    again = await wait_pod(client, "steady", lambda p: condition(p, "Ready") == "True")
    assert int(again["metadata"]["resourceVersion"]) > int(changed["metadata"]["resourceVersion"])


async def test_a_readiness_gate_condition_set_by_another_component_is_kept(node: Node) -> None:
    """Conditions the kubelet does not own (a readiness gate's) are not undone by its status writes."""
    client = node.client
    gated = pod("gated", container("gated", "sleep 3600"))
    gated["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}]
    await client.create(PODS, gated, namespace="default")
    waiting = await wait_pod(client, "gated", lambda p: running()(p) and condition(p, "ContainersReady") == "True")
    assert condition(waiting, "Ready") == "False"
    gate = {"type": "example.com/lb", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    await client.patch(PODS, "gated", {"status": {"conditions": [*waiting["status"]["conditions"], gate]}},
                       namespace="default", subresource="status")
    ready = await wait_pod(client, "gated", lambda p: condition(p, "Ready") == "True")
    assert condition(ready, "example.com/lb") == "True"
