"""Probes (exec, httpGet, tcpSocket, startup gating) and lifecycle hooks on a real node."""

from __future__ import annotations

from kubelet_support import (Node, condition, container, pod, running, state, wait_event, wait_gone,
                             wait_pod)

from skiff.client.resources import PODS

FAST = {"periodSeconds": 1, "failureThreshold": 1}
#: A long-running main process that ends on SIGTERM (a plain ``sleep`` as PID 1 ignores it).
SERVE = "trap 'exit 0' TERM; sleep 3600 & wait"


async def test_failing_liveness_probe_restarts_the_container(node: Node) -> None:
    client = node.client
    probe = {"exec": {"command": ["sh", "-c", "echo not alive; exit 1"]}, "initialDelaySeconds": 0, **FAST}
    main = container("main", SERVE, livenessProbe=probe)
    await client.create(PODS, pod("live", main),
                        namespace="default")
    restarted = await wait_pod(client, "live", lambda p: state(p, "main").get("restartCount", 0) >= 1)
    last = state(restarted, "main")["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (0, "Completed")   # it took the SIGTERM
    await wait_event(client, "live", "Unhealthy", contains="Liveness probe failed: not alive")
    await wait_event(client, "live", "Killing",
                     contains="Container main failed liveness probe, will be restarted")


async def test_failing_readiness_probe_makes_the_pod_unready_without_restarts(node: Node) -> None:
    client = node.client
    probe = {"exec": {"command": ["test", "-e", "/tmp/ready"]}, **FAST}
    await client.create(PODS, pod("ready", container("main", "touch /tmp/ready; sleep 3600",
                                                     readinessProbe=probe)), namespace="default")
    up = await wait_pod(client, "ready", lambda p: condition(p, "Ready") == "True")
    assert state(up, "main")["ready"]
    assert node.kubelet is not None
    container_id = state(up, "main")["containerID"].removeprefix("runc://")
    await node.kubelet.runtime.exec_sync(container_id, ["rm", "/tmp/ready"])
    down = await wait_pod(client, "ready", lambda p: condition(p, "Ready") == "False")
    assert not state(down, "main")["ready"] and state(down, "main")["restartCount"] == 0
    assert "running" in state(down, "main")["state"]
    ready_condition = next(c for c in down["status"]["conditions"] if c["type"] == "ContainersReady")
    assert ready_condition["message"] == "containers with unready status: [main]"
    await wait_event(client, "ready", "Unhealthy", contains="Readiness probe failed")


async def test_http_and_tcp_probes_reach_the_pod(node: Node) -> None:
    client = node.client
    server = ("mkdir -p /www/healthz && echo ok > /www/healthz/index.html && "
              "httpd -f -p 8080 -h /www")
    web = container("web", server, ports=[{"name": "http", "containerPort": 8080}],
                    readinessProbe={"httpGet": {"path": "/healthz/", "port": "http"}, **FAST},
                    startupProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 10})
    await client.create(PODS, pod("http", web), namespace="default")
    up = await wait_pod(client, "http", lambda p: condition(p, "Ready") == "True")
    assert state(up, "web")["started"]

    broken = container("broken", "sleep 3600",
                       readinessProbe={"httpGet": {"path": "/", "port": 9999}, **FAST})
    await client.create(PODS, pod("nohttp", broken), namespace="default")
    await wait_pod(client, "nohttp", running())
    event = await wait_event(client, "nohttp", "Unhealthy", contains="Readiness probe failed")
    assert "connection refused" in event["message"]


async def test_startup_probe_gates_liveness_and_readiness(node: Node) -> None:
    client = node.client
    main = container("main", "sleep 3600",
                     startupProbe={"exec": {"command": ["test", "-e", "/tmp/started"]},
                                   "periodSeconds": 1, "failureThreshold": 30},
                     livenessProbe={"exec": {"command": ["false"]}, **FAST})
    await client.create(PODS, pod("startup", main), namespace="default")
    up = await wait_pod(client, "startup", running())
    assert not state(up, "main")["started"] and not state(up, "main")["ready"]
    assert state(up, "main")["restartCount"] == 0


async def test_post_start_and_pre_stop_hooks_run(node: Node) -> None:
    client = node.client
    out = {"name": "out", "mountPath": "/out"}
    main = container("main", SERVE, volumeMounts=[out], lifecycle={
        "postStart": {"exec": {"command": ["sh", "-c", "echo started > /out/post"]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /out/pre"]}}})
    await client.create(PODS, pod("hooks", main, volumes=[{"name": "out", "hostPath": {
        "path": str(node.root / "hooks"), "type": "DirectoryOrCreate"}}]), namespace="default")
    await wait_pod(client, "hooks", running())
    assert (node.root / "hooks" / "post").read_text() == "started\n"
    await client.delete(PODS, "hooks", namespace="default")
    await wait_gone(client, "hooks")
    assert (node.root / "hooks" / "pre").read_text() == "stopping\n"


async def test_failing_post_start_hook_kills_the_container(node: Node) -> None:
    client = node.client
    main = container("main", SERVE, lifecycle={"postStart": {"exec": {"command": ["false"]}}})
    await client.create(PODS, pod("badhook", main), namespace="default")
    event = await wait_event(client, "badhook", "FailedPostStartHook")
    assert 'for Container "main" in Pod "badhook_default(' in event["message"]
    await wait_pod(client, "badhook", lambda p: state(p, "main").get("restartCount", 0) >= 1)
