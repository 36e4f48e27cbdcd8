"""Pods on the process runtime through the kubelet (user namespaces, in-process): run and
log in their own root, exit codes and restarts, exec, probes and hooks, graceful
deletion, adoption by a restarted kubelet.  The ``marker`` fixture checks that no
container process is left afterwards."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from process_support import (Node, condition, container, pod, running, state, wait_event,
                             wait_gone, wait_pod)

from skiff.client.resources import CONFIGMAPS, NODES, PODS
from skiff.kubelet.runtime.interface import ContainerState

#: A main process that ends on SIGTERM (a bare ``sleep`` as pid 1 ignores it, as in runc).
SERVE = "trap 'echo terminating; exit 0' TERM; sleep 3600 & wait"
FAST = {"periodSeconds": 1, "failureThreshold": 1}


def cid(status: dict) -> str:
    return str(status["containerID"]).removeprefix("process://")


async def log_lines(node: Node, container_id: str, until: str) -> list[str]:
    """The container's log lines up to the first one containing ``until``."""
    assert node.kubelet is not None
    lines = []
    async for record in node.kubelet.runtime.logs(container_id, follow=True):
        lines.append(f"{record.stream} {record.content.decode()}")
        if until in lines[-1]:
            return lines
    raise AssertionError(f"{until!r} never logged: {lines}")


async def test_a_pod_runs_in_its_own_root_and_logs(node: Node, marker: str) -> None:
    client = node.client
    registered = await client.get(NODES, "node-1")
    assert registered["status"]["nodeInfo"]["containerRuntimeVersion"].endswith("+userns")
    await client.create(CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"greeting": "hi there"}},
                        namespace="default")
    script = ("echo host $(hostname); echo cwd $(pwd); cat /config/greeting; echo; "
              "echo pid1 $(cat /proc/1/comm); echo oops >&2; echo x > /scratch/f; echo done; " + SERVE)
    main = container("main", script, marker, workingDir="/work",
                     volumeMounts=[{"name": "cfg", "mountPath": "/config"},
                                   {"name": "scratch", "mountPath": "/scratch"}])
    await client.create(PODS, pod("hello", main, volumes=[{"name": "cfg", "configMap": {"name": "cfg"}},
                                                          {"name": "scratch", "emptyDir": {}}]),
                        namespace="default")
    up = await wait_pod(client, "hello", lambda p: running(p) and condition(p, "Ready") == "True")
    assert up["status"]["podIP"] == "127.0.0.1" and up["status"]["hostIP"] == "127.0.0.1"
    status = state(up, "main")
    assert status["containerID"].startswith("process://") and status["restartCount"] == 0
    lines = await log_lines(node, cid(status), "done")
    assert [line for line in lines if line.startswith("stdout")] == [
        "stdout host hello", "stdout cwd /work", "stdout hi there", "stdout pid1 sh", "stdout done"]
    assert "stderr oops" in await log_lines(node, cid(status), "oops")   # another pipe: any order
    uid = up["metadata"]["uid"]
    scratch = node.root / "kubelet" / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    assert (scratch / "f").read_text() == "x\n"      # the volume is the same directory


async def test_exit_codes_and_crash_loop_back_off(node: Node, marker: str) -> None:
    client = node.client
    await client.create(PODS, pod("once", container("main", "exit 3", marker), restartPolicy="Never"),
                        namespace="default")
    failed = await wait_pod(client, "once", lambda p: p["status"].get("phase") == "Failed")
    terminated = state(failed, "main")["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")

    await client.create(PODS, pod("crash", container("main", "echo crashing; exit 1", marker)),
                        namespace="default")
    looping = await wait_pod(client, "crash", lambda p: state(p, "main").get("restartCount", 0) >= 2
                             and "waiting" in state(p, "main")["state"])
    main = state(looping, "main")
    assert main["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert main["lastState"]["terminated"]["exitCode"] == 1
    await wait_event(client, "crash", "BackOff", contains="Back-off restarting failed container main")


async def test_exec_runs_with_the_containers_env_and_cwd(node: Node, marker: str) -> None:
    client = node.client
    main = container("main", SERVE, marker, workingDir="/srv", env=[{"name": "GREETING", "value": "hola"}])
    await client.create(PODS, pod("execd", main), namespace="default")
    up = await wait_pod(client, "execd", running)
    assert node.kubelet is not None
    runtime = node.kubelet.runtime
    result = await runtime.exec_sync(cid(state(up, "main")), ["sh", "-c", "echo $GREETING $(pwd); exit 4"])
    assert (result.exit_code, result.stdout) == (4, b"hola /srv\n")
    missing = await runtime.exec_sync(cid(state(up, "main")), ["no-such-command"])
    assert missing.exit_code == 127 and b"executable file not found" in missing.stderr

    session = await runtime.exec(cid(state(up, "main")), ["sh"], stdin=True, tty=True)
    try:
        await session.write(b"[ -t 0 ] && echo terminal-$((40 + 2))\n")
        output = b""
        async for _, data in session.output():
            output += data
            if b"terminal-42" in output:
                break
        await session.write(b"exit 5\n")
        assert await asyncio.wait_for(session.wait(), 10) == 5
    finally:
        await session.close()


async def test_probes_and_lifecycle_hooks(node: Node, marker: str, tmp_path: Path,
                                          unused_tcp_port: int) -> None:
    client = node.client
    port = unused_tcp_port
    web = container(
        "web", "until [ -e /started ]; do sleep 0.1; done; mkdir -p /www && cat /started > /www/index.html"
               f" && exec httpd -f -p 127.0.0.1:{port} -h /www",
        marker, ports=[{"name": "http", "containerPort": port}],
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo hooked > /started"]}},
                   "preStop": {"exec": {"command": ["sh", "-c", "echo bye > /out/bye"]}}},
        readinessProbe={"exec": {"command": ["test", "-e", "/www/index.html"]}, **FAST},
        livenessProbe={"httpGet": {"path": "/", "port": "http"}, **FAST},
        startupProbe={"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 30},
        volumeMounts=[{"name": "out", "mountPath": "/out"}])
    await client.create(PODS, pod("probed", web, volumes=[{"name": "out", "hostPath": {"path": str(tmp_path)}}]),
                        namespace="default")
    up = await wait_pod(client, "probed", lambda p: condition(p, "Ready") == "True")
    assert state(up, "web")["restartCount"] == 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)   # the pod IP is the node's
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    assert (await reader.read()).endswith(b"hooked\n")
    writer.close()

    await client.delete(PODS, "probed", namespace="default")
    await wait_gone(client, "probed")
    assert (tmp_path / "bye").read_text() == "bye\n"


async def test_failing_liveness_probe_restarts_the_container(node: Node, marker: str) -> None:
    client = node.client
    probe = {"tcpSocket": {"port": 1}, **FAST}
    await client.create(PODS, pod("dead", container("main", SERVE, marker, livenessProbe=probe)),
                        namespace="default")
    restarted = await wait_pod(client, "dead", lambda p: state(p, "main").get("restartCount", 0) >= 1)
    last = state(restarted, "main")["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (0, "Completed")        # it took the SIGTERM
    await wait_event(client, "dead", "Unhealthy", contains="Liveness probe failed: dial tcp 127.0.0.1:1")


async def test_graceful_deletion_then_sigkill_after_the_grace_period(node: Node, marker: str) -> None:
    client = node.client
    await client.create(PODS, pod("polite", container("main", SERVE, marker)), namespace="default")
    await client.create(PODS, pod("stubborn", container("main", "exec sleep 3600", marker),
                                  terminationGracePeriodSeconds=1), namespace="default")
    await wait_pod(client, "polite", running)
    await wait_pod(client, "stubborn", running)

    started = time.monotonic()
    await client.delete(PODS, "polite", namespace="default")
    await wait_gone(client, "polite")
    assert time.monotonic() - started < 4         # it exits on SIGTERM, well within its 5 s

    started = time.monotonic()
    await client.delete(PODS, "stubborn", namespace="default")
    await wait_gone(client, "stubborn")
    assert time.monotonic() - started >= 1.0      # sleep as pid 1 ignores SIGTERM: SIGKILL at 1 s


async def test_a_restarted_kubelet_adopts_running_containers(node: Node, marker: str) -> None:
    client = node.client
    await client.create(PODS, pod("kept", container("main", SERVE, marker)), namespace="default")
    before = state(await wait_pod(client, "kept", running), "main")
    await node.stop()
    runtime = node.runtime()
    try:
        assert (await runtime.status(cid(before))).state == ContainerState.RUNNING
    finally:
        await runtime.close()
    await node.start()
    await client.patch(PODS, "kept", {"metadata": {"labels": {"poke": "1"}}}, namespace="default")
    after = await wait_pod(client, "kept", lambda p: p["metadata"].get("labels", {}).get("poke") == "1"
                           and running(p))
    assert state(after, "main")["containerID"] == before["containerID"]
    assert state(after, "main")["restartCount"] == 0
    await client.delete(PODS, "kept", namespace="default")
    await wait_gone(client, "kept")
