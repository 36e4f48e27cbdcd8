"""A pod's containers share its sandbox: localhost, /dev/shm, hostname, /etc files."""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path

from runtime_support import SpecFactory, run_to_exit, start

from skiff.kubelet.runtime.interface import ContainerState, Mount, SandboxSpec, SandboxState
from skiff.kubelet.runtime.runc import RuncRuntime


async def test_containers_of_a_pod_share_localhost(runtime: RuncRuntime, sandbox: str,
                                                   spec: SpecFactory, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hello from the web container\n")
    server = await start(runtime, spec(sandbox, "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www",
                                       name="web", mounts=(Mount(tmp_path, "/www", read_only=True),)))
    fetch = ("for i in $(seq 100); do wget -q -O - http://127.0.0.1:8080/index.html && exit 0; "
             "sleep 0.05; done; exit 1")
    status, lines = await run_to_exit(runtime, spec(sandbox, "sh", "-c", fetch, name="client"))
    assert status.exit_code == 0
    assert "stdout hello from the web container" in lines
    assert (await runtime.status(server)).state == ContainerState.RUNNING


async def test_pods_do_not_share_localhost(runtime: RuncRuntime, sandbox: str,
                                           spec: SpecFactory, tmp_path: Path) -> None:
    other = await runtime.run_sandbox(SandboxSpec(name="other", namespace="default",
                                                  uid=secrets.token_hex(8)))
    (tmp_path / "index.html").write_text("private\n")
    await start(runtime, spec(sandbox, "httpd", "-f", "-p", "127.0.0.1:8081", "-h", "/www",
                              mounts=(Mount(tmp_path, "/www"),)))
    # the server answers in its own pod, then not from the other pod
    probe = "for i in $(seq 100); do wget -q -O - http://127.0.0.1:8081/index.html && exit 0; sleep 0.05; done; exit 1"
    status, _ = await run_to_exit(runtime, spec(sandbox, "sh", "-c", probe))
    assert status.exit_code == 0
    status, _ = await run_to_exit(runtime, spec(other, "wget", "-q", "-O", "-",
                                                "http://127.0.0.1:8081/index.html"))
    assert status.exit_code != 0


async def test_network_namespace_has_only_loopback(runtime: RuncRuntime, sandbox: str,
                                                   spec: SpecFactory) -> None:
    status, lines = await run_to_exit(runtime, spec(sandbox, "ls", "/sys/class/net"))
    assert (status.exit_code, lines) == (0, ["stdout lo"])


async def test_pod_hostname_etc_files_and_shared_shm(tmp_path: Path, runtime: RuncRuntime,
                                                     spec: SpecFactory) -> None:
    resolv = "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\n"
    hosts = "127.0.0.1\tlocalhost\n10.244.0.7\tdb-0\n"
    sandbox = await runtime.run_sandbox(SandboxSpec(
        name="db-0", namespace="default", uid=secrets.token_hex(8), hostname="db-0",
        resolv_conf=resolv, hosts_file=hosts))
    status, lines = await run_to_exit(runtime, spec(
        sandbox, "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME; echo token > /dev/shm/t"))
    assert status.exit_code == 0 and lines == ["stdout db-0"] * 3
    status, lines = await run_to_exit(runtime, spec(
        sandbox, "sh", "-c", "cat /dev/shm/t /etc/resolv.conf /etc/hosts"))
    expected = ["token", *resolv.splitlines(), *hosts.splitlines()]
    assert [line.split(" ", 1)[1] for line in lines] == expected


async def test_working_dir_and_environment(runtime: RuncRuntime, sandbox: str,
                                           spec: SpecFactory) -> None:
    status, lines = await run_to_exit(runtime, spec(
        sandbox, "sh", "-c", "pwd; echo $GREETING; echo $PATH",
        working_dir="/srv/app", env=(("GREETING", "hi there"),)))
    assert lines == ["stdout /srv/app", "stdout hi there",
                     "stdout /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


async def test_containers_get_private_writable_layers(runtime: RuncRuntime, sandbox: str,
                                                      spec: SpecFactory) -> None:
    status, _ = await run_to_exit(runtime, spec(sandbox, "sh", "-c", "echo mine > /etc/motd"))
    assert status.exit_code == 0
    status, lines = await run_to_exit(runtime, spec(sandbox, "sh", "-c", "cat /etc/motd 2>/dev/null || echo absent"))
    assert lines == ["stdout absent"]


async def test_stop_sandbox_stops_its_containers(runtime: RuncRuntime, sandbox: str,
                                                 spec: SpecFactory) -> None:
    first = await start(runtime, spec(sandbox, "sleep", "1000"))
    second = await start(runtime, spec(sandbox, "sleep", "1000"))
    await runtime.stop_sandbox(sandbox, timeout=0.2)
    assert {(await runtime.status(c)).state for c in (first, second)} == {ContainerState.EXITED}
    assert (await runtime.sandbox_status(sandbox)).state == SandboxState.NOT_READY


async def test_host_network_pod_sees_the_host_network(runtime: RuncRuntime,
                                                      spec: SpecFactory) -> None:
    sandbox = await runtime.run_sandbox(SandboxSpec(name="node-agent", namespace="kube-system",
                                                    uid=secrets.token_hex(8), host_network=True))
    assert (await runtime.sandbox_status(sandbox)).netns_path is None
    status, lines = await run_to_exit(runtime, spec(sandbox, "sh", "-c", "hostname; ls /sys/class/net"))
    assert status.exit_code == 0
    assert lines[0] == f"stdout {socket.gethostname()}"
    assert sorted(line.split(" ", 1)[1] for line in lines[1:]) == sorted(os.listdir("/sys/class/net"))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_a_shared_process_namespace_has_a_head_and_outlives_its_containers(
        runtime: RuncRuntime, spec: SpecFactory) -> None:
    """shareProcessNamespace: every container sees (and can signal) the others' processes;
    pid 1 is the pod's head process, so one container ending leaves the others running."""
    sandbox = await runtime.run_sandbox(SandboxSpec(name="shared", namespace="default",
                                                    uid=secrets.token_hex(8), share_process_namespace=True))
    head = json.loads((runtime.sandboxes.directory(sandbox) / "sandbox.json").read_text())["pidNamespaceHead"]
    first = await start(runtime, spec(sandbox, "sleep", "3601", name="first"))
    second = await start(runtime, spec(sandbox, "sleep", "3602", name="second"))
    status, lines = await run_to_exit(runtime, spec(sandbox, "ps", "-o", "pid,args", name="look"))
    assert status.exit_code == 0
    processes = {line.split(None, 2)[2] for line in lines[1:]}      # "stdout <pid> <args>"
    assert {"sleep 3601", "sleep 3602"} <= processes, lines
    assert any(line.split()[1] == "1" and "pause.py" in line for line in lines), lines

    target = next(line.split()[1] for line in lines if line.endswith("sleep 3601"))
    status, _ = await run_to_exit(runtime, spec(sandbox, "kill", target, name="signal"))
    assert status.exit_code == 0
    assert (await runtime.wait(first)).state == ContainerState.EXITED      # killed across containers
    assert (await runtime.status(second)).state == ContainerState.RUNNING  # the pod's head kept it
    await runtime.remove_sandbox(sandbox)
    assert not _alive(head["pid"])
