"""What a pod spec says, on real containers, seen through kubectl (issue 4's must-shows).

Runs on the session's runc cluster (conftest.py ``runc_node``).  Each test uses its own
pod names; waits are ``kubectl wait`` or a polled API condition with a deadline.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from typing import Any, Iterator

import pytest
import yaml

from e2e_support import LineReader, SkiffProcess, await_condition
from registry_support import LocalRegistry, start_registry

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]


@pytest.fixture
def node(runc_node: SkiffProcess) -> SkiffProcess:
    return runc_node


def apply(node: SkiffProcess, *docs: Obj) -> None:
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def busybox(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox", "imagePullPolicy": "Never",
            "command": ["sh", "-c", script], **extra}


def pod(name: str, *containers: Obj, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 1, **spec}}


def status_of(node: SkiffProcess, name: str, container: str) -> Obj:
    statuses = node.get_json("pod", name).get("status", {}).get("containerStatuses", [])
    return next((s for s in statuses if s["name"] == container), {})


def wait_ready(node: SkiffProcess, *pods: str) -> None:
    node.kubectl("wait", "--for=condition=Ready", *[f"pod/{p}" for p in pods], "--timeout=60s")


def events_of(node: SkiffProcess, name: str) -> list[Obj]:
    return list(node.get_json("events", "--field-selector", f"involvedObject.name={name}")["items"])


def test_exec_it_gives_an_interactive_shell(node: SkiffProcess) -> None:
    node.kubectl("apply", "-f", "-", input=json.dumps(pod("shell", busybox("sh", "sleep 3600"))))
    wait_ready(node, "shell")
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(node.kubectl_argv("exec", "-it", "shell", "--", "sh"),
                            env=node.kubectl_env(), stdin=terminal, stdout=terminal,
                            stderr=terminal, start_new_session=True)
    os.close(terminal)
    try:
        os.write(controller, b"echo answer=$((6*7)); tty; exit 7\n")
        seen = b""
        deadline = time.monotonic() + 30
        while b"answer=42" not in seen or proc.poll() is None:
            assert time.monotonic() < deadline, f"no answer from the shell: {seen!r}"
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    seen += os.read(controller, 4096)
                except OSError:  # the terminal closed: kubectl is done
                    proc.wait(timeout=10)
        assert b"/dev/pts/" in seen  # a real terminal inside the container
        assert proc.wait(timeout=10) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)


def test_two_containers_share_an_empty_dir_and_localhost(node: SkiffProcess) -> None:
    shared = [{"name": "shared", "mountPath": "/shared"}]
    apply(node, pod(
        "pair",
        busybox("server", "exec httpd -f -p 8080 -h /shared", volumeMounts=shared),
        busybox("writer", "while true; do date > /shared/index.html; echo written > /shared/ok; "
                "sleep 1; done", volumeMounts=shared),
        volumes=[{"name": "shared", "emptyDir": {}}]))
    wait_ready(node, "pair")
    await_condition(lambda: node.kubectl("exec", "pair", "-c", "writer", "--", "wget", "-q", "-O-",
                                         "http://localhost:8080/ok", check=False).stdout == "written\n",
                    "the server to serve what the other container wrote")


def test_liveness_restarts_readiness_only_unreadies_and_crashes_back_off(node: SkiffProcess) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    apply(node,
          pod("live", busybox("app", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600",
                              livenessProbe=probe)),
          pod("ready", busybox("app", "touch /tmp/healthy; sleep 3600", readinessProbe=probe)),
          pod("crash", busybox("app", "echo dying; exit 1")))
    await_condition(lambda: status_of(node, "live", "app").get("restartCount", 0) >= 1,
                    "the liveness probe to restart the container", timeout=60)
    unhealthy = [e for e in events_of(node, "live") if e["reason"] == "Unhealthy"]
    assert unhealthy and unhealthy[0]["message"].startswith("Liveness probe failed")
    assert any(e["reason"] == "Killing" for e in events_of(node, "live"))

    wait_ready(node, "ready")
    node.kubectl("exec", "ready", "--", "rm", "/tmp/healthy")
    node.kubectl("wait", "--for=condition=Ready=false", "pod/ready", "--timeout=30s")
    assert status_of(node, "ready", "app")["restartCount"] == 0
    assert status_of(node, "ready", "app")["ready"] is False
    assert "running" in status_of(node, "ready", "app")["state"]
    node.kubectl("exec", "ready", "--", "touch", "/tmp/healthy")
    wait_ready(node, "ready")

    node.kubectl("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}"
                 "=CrashLoopBackOff", "pod/crash", "--timeout=60s")
    crashed = status_of(node, "crash", "app")
    assert crashed["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off" in crashed["state"]["waiting"]["message"]
    backoffs = [e for e in events_of(node, "crash") if e["reason"] == "BackOff"]
    assert backoffs and backoffs[0]["message"].startswith("Back-off restarting failed container")
    assert node.kubectl("logs", "crash", "--previous").stdout == "dying\n"


def test_a_container_over_its_memory_limit_is_oom_killed(node: SkiffProcess) -> None:
    hog = busybox("hog", "x=$(head -c 100000000 /dev/zero | tr '\\0' 'x'); sleep 3600",
                  resources={"limits": {"memory": "32Mi"}})
    apply(node, pod("oom", hog, restartPolicy="Never"))
    node.kubectl("wait", "--for=jsonpath={.status.phase}=Failed", "pod/oom", "--timeout=60s")
    terminated = status_of(node, "oom", "hog")["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    assert "OOMKilled" in node.kubectl("get", "pod", "oom").stdout


def test_config_maps_and_secrets_as_env_and_files_follow_updates(node: SkiffProcess) -> None:
    node.kubectl("create", "configmap", "settings", "--from-literal=color=blue")
    node.kubectl("create", "secret", "generic", "creds", "--from-literal=password=s3cr3t")
    mounts = [{"name": "settings", "mountPath": "/etc/settings"},
              {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}]
    env = [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
           {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]
    apply(node, pod("configured", busybox("app", "sleep 3600", env=env, volumeMounts=mounts),
                    volumes=[{"name": "settings", "configMap": {"name": "settings"}},
                             {"name": "creds", "secret": {"secretName": "creds"}}]))
    wait_ready(node, "configured")
    out = node.kubectl("exec", "configured", "--", "sh", "-c",
                       'echo "$COLOR $PASSWORD"; cat /etc/settings/color; echo; '
                       "cat /etc/creds/password; echo; grep ' /etc/creds ' /proc/mounts").stdout
    lines = out.splitlines()
    assert lines[:3] == ["blue s3cr3t", "blue", "s3cr3t"]
    assert lines[3].split()[2] == "tmpfs"  # secrets never touch the node's disk

    node.kubectl("patch", "configmap", "settings", "-p", '{"data":{"color":"green"}}')
    await_condition(lambda: node.kubectl("exec", "configured", "--", "cat",
                                         "/etc/settings/color").stdout == "green",
                    "the mounted file to follow the ConfigMap", timeout=60)
    # Environment variables are read once, at container start, as in Kubernetes.
    assert node.kubectl("exec", "configured", "--", "sh", "-c", 'echo "$COLOR"').stdout == "blue\n"


ROBOT = ("robot", "hunter2")


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory,
                     runc_node: SkiffProcess) -> Iterator[LocalRegistry]:
    local = start_registry(tmp_path_factory.mktemp("registry"), creds=ROBOT)
    try:
        local.push(f"docker-archive:{runc_node.base / 'busybox.tar'}", "private/busybox:1")
        yield local
    finally:
        local.stop()


def test_a_private_image_pulls_with_an_image_pull_secret(node: SkiffProcess,
                                                          private_registry: LocalRegistry) -> None:
    host = private_registry.host
    node.kubectl("create", "secret", "docker-registry", "robot", f"--docker-server={host}",
                 f"--docker-username={ROBOT[0]}", f"--docker-password={ROBOT[1]}")
    app = {"name": "app", "image": f"{host}/private/busybox:1", "command": ["sleep", "3600"]}
    apply(node, pod("private", app, imagePullSecrets=[{"name": "robot"}]))
    wait_ready(node, "private")
    assert any(e["reason"] == "Pulled" for e in events_of(node, "private"))

    apply(node, pod("typo", {"name": "app", "image": f"{host}/private/busybx:1"},
                    imagePullSecrets=[{"name": "robot"}]))
    watch = LineReader(node.kubectl_popen(
        "get", "pod", "typo", "--watch", "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}{'\\n'}"))
    try:  # every status write is seen: first the pull error, then the back-off
        watch.wait_for(lambda line: line == "ErrImagePull", timeout=60)
        watch.wait_for(lambda line: line == "ImagePullBackOff", timeout=60)
    finally:
        watch.stop()
    assert any(e["reason"] == "Failed" and "busybx" in e["message"] for e in events_of(node, "typo"))


def test_a_killed_agent_leaves_containers_running_and_adopts_them(node: SkiffProcess) -> None:
    apply(node, pod("survivor", busybox("app", "echo started; exec sleep 86399")))
    wait_ready(node, "survivor")
    before = status_of(node, "survivor", "app")
    ip = node.get_json("pod", "survivor")["status"]["podIP"]

    node.crash()  # SIGKILL the skiff process itself, as a crash would
    alive = subprocess.run(["pgrep", "-f", "^sleep 86399$"], capture_output=True, text=True).stdout
    assert alive.split(), "the container died with its agent"
    node.start()
    wait_ready(node, "survivor")
    after = node.get_json("pod", "survivor")
    status = status_of(node, "survivor", "app")
    assert status["containerID"] == before["containerID"]  # adopted, not recreated
    assert status["restartCount"] == before["restartCount"]
    assert after["status"]["podIP"] == ip
    assert node.kubectl("logs", "survivor").stdout == "started\n"
    assert node.kubectl("exec", "survivor", "--", "cat", "/proc/1/cmdline").stdout == "sleep\x0086399\x00"


def test_run_interactive_attaches_and_rm_removes_the_pod(node: SkiffProcess) -> None:
    """`kubectl run -i --rm`: kubectl attaches to the container's stdin and output (through
    `skiff up`'s node agent, which runs on uvloop) and deletes the pod when it ends."""
    result = node.kubectl("run", "talk", "--image=busybox", "--image-pull-policy=Never", "--restart=Never",
                          "-i", "--rm", "--", "sh", "-c", "read line; echo got $line", input="hello\n")
    assert "got hello" in result.stdout, result.stdout + result.stderr
    assert 'pod "talk" deleted' in result.stdout + result.stderr
    gone = node.kubectl("get", "pod", "talk", check=False)
    assert gone.returncode == 1 and 'pods "talk" not found' in gone.stderr


def test_containers_sharing_a_process_namespace_see_and_signal_each_other(node: SkiffProcess) -> None:
    """shareProcessNamespace: true -- the pod's head process is pid 1; a sidecar sees the
    app's processes and can signal them; the app restarts, the sidecar keeps running."""
    node.kubectl("apply", "-f", "-", input=json.dumps(pod(
        "shared", busybox("app", "exec sleep 3601"), busybox("sidecar", "exec sleep 3602"),
        shareProcessNamespace=True)))
    try:
        wait_ready(node, "shared")
        listing = node.kubectl("exec", "shared", "-c", "sidecar", "--", "ps", "-o", "pid,args").stdout
        rows = [line.split(None, 1) for line in listing.splitlines()[1:]]
        assert any(pid == "1" and "pause.py" in args for pid, args in rows), listing
        app = next(pid for pid, args in rows if args.strip() == "sleep 3601")
        assert any(args.strip() == "sleep 3602" for _, args in rows), listing
        node.kubectl("exec", "shared", "-c", "sidecar", "--", "kill", app)
        await_condition(lambda: status_of(node, "shared", "app").get("restartCount") == 1,
                        "the app container to restart after the sidecar killed it")
        assert status_of(node, "shared", "sidecar")["restartCount"] == 0
    finally:
        node.kubectl("delete", "pod", "shared", "--wait=true", check=False)


def test_kubectl_debug_runs_an_ephemeral_container_in_the_targets_process_namespace(node: SkiffProcess) -> None:
    """`kubectl debug --target`: an ephemeral container joins the app container's process
    namespace (it sees the app's processes), reports its status, and is never restarted."""
    node.kubectl("apply", "-f", "-", input=json.dumps(pod("debugged", busybox("app", "exec sleep 3603"))))
    try:
        wait_ready(node, "debugged")
        node.kubectl("debug", "debugged", "--image=busybox", "--image-pull-policy=Never", "-c", "dbg",
                     "--target=app", "--", "sleep", "3604")

        def running() -> bool:
            statuses = node.get_json("pod", "debugged")["status"].get("ephemeralContainerStatuses") or []
            return bool(statuses) and "running" in statuses[0]["state"]

        await_condition(running, "the ephemeral container to run")
        listing = node.kubectl("exec", "debugged", "-c", "dbg", "--", "ps", "-o", "args").stdout.split("\n")
        assert "sleep 3603" in [line.strip() for line in listing], listing        # the app's process
        assert [e["message"] for e in events_of(node, "debugged") if e["reason"] == "Started"][-1] \
            == "Started container dbg"

        # interactive: stdin attached, the shell's output back, its end ends kubectl
        result = node.kubectl("debug", "-i", "debugged", "--image=busybox", "--image-pull-policy=Never",
                              "-c", "shell", "--target=app", "--", "sh", input="ps -o args | grep -c '^sleep 3603'\n")
        assert result.stdout.strip().splitlines()[-1] == "1", result.stdout + result.stderr   # 0 if not joined
        statuses = {s["name"]: s for s in node.get_json("pod", "debugged")["status"]["ephemeralContainerStatuses"]}
        assert set(statuses) == {"dbg", "shell"}
        assert statuses["dbg"]["restartCount"] == 0 and statuses["dbg"]["ready"] is False
    finally:
        node.kubectl("delete", "pod", "debugged", "--wait=true", check=False)
