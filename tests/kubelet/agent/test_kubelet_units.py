"""The kubelet's pure parts: $(VAR) expansion, resources, back-off, phases and conditions,
init-container steps, the atomic writer, hosts/resolv.conf, durations, gRPC framing."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from skiff.kubelet import grpchealth
from skiff.kubelet.context import KubeletConfig
from skiff.kubelet.envs import EnvError, EnvSources, container_env, expand, resource_value
from skiff.kubelet.imagepull import go_duration
from skiff.kubelet.lifecycle import BackOff, InitAction, next_init_step, regular_all_done
from skiff.kubelet.podsandbox import hosts_content, resolv_content
from skiff.kubelet.runtime.interface import ContainerState, ContainerStatus
from skiff.kubelet.status import ContainerView, pod_phase, pod_status
from skiff.kubelet.volumes.atomic import FileContent, UnsafePath, write_atomically

NOW = 1_735_689_600.0


def instance(name: str, state: ContainerState, exit_code: int | None = None, attempt: int = 0) -> ContainerStatus:
    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    return ContainerStatus(id=f"{name}{attempt}", sandbox_id="s", name=name, state=state, image="i",
                           image_id="sha256:x", created_at=when, started_at=when,
                           finished_at=when if state == ContainerState.EXITED else None,
                           exit_code=exit_code, attempt=attempt,
                           reason="" if exit_code is None else ("Completed" if exit_code == 0 else "Error"))


def test_expansion_follows_kubernetes_rules() -> None:
    table = {"A": "1", "B": "$(A)"}.get
    assert expand("$(A)-$(B)", table) == "1-$(A)"              # one pass only
    assert expand("$$(A) $(MISSING) $", table) == "$(A) $(MISSING) $"
    assert expand("$(A", table) == "$(A" and expand("cost $5", table) == "cost $5"


def test_resource_field_refs_round_up_and_default_to_allocatable() -> None:
    c = {"resources": {"limits": {"cpu": "1500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}}
    assert resource_value(c, {"resource": "limits.cpu"}, {}) == "2"
    assert resource_value(c, {"resource": "requests.cpu", "divisor": "1m"}, {}) == "250"
    assert resource_value(c, {"resource": "limits.memory", "divisor": "1Mi"}, {}) == "64"
    assert resource_value({}, {"resource": "limits.memory"}, {"memory": "2Gi"}) == str(2 << 30)


def test_missing_references_are_config_errors_unless_optional() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {}}
    sources = EnvSources(config_map=lambda ns, n: {"data": {"k": "v"}} if n == "cm" else None,
                         secret=lambda ns, n: None)
    env = [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
           {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}}]
    assert container_env(pod, {"env": env}, sources).variables[:1] == [("A", "v")]
    with pytest.raises(EnvError, match="couldn't find key nope in ConfigMap ns/cm"):
        container_env(pod, {"env": [{"name": "A", "valueFrom": {
            "configMapKeyRef": {"name": "cm", "key": "nope"}}}]}, sources)
    with pytest.raises(EnvError, match='secret "s" not found'):
        container_env(pod, {"envFrom": [{"secretRef": {"name": "s"}}]}, sources)


def test_back_off_doubles_to_the_cap_and_resets_after_a_quiet_spell() -> None:
    backoff = BackOff(10, 300)
    assert backoff.remaining("k", 100, 101) == 0          # first restart: at once
    assert [backoff.step("k", t) for t in (100, 110, 130, 170)] == [10, 20, 40, 80]
    assert backoff.remaining("k", 170, 175) == 75
    assert backoff.step("k", 170 + 601) == 10             # ran 10 minutes: start over


def test_init_steps_and_completion() -> None:
    spec = {"restartPolicy": "Never", "initContainers": [
        {"name": "a"}, {"name": "side", "restartPolicy": "Always"}, {"name": "b"}],
        "containers": [{"name": "app"}]}
    exited = ContainerState.EXITED
    assert next_init_step(spec, {}, {}, set()).name == "a"
    step = next_init_step(spec, {"a": instance("a", exited, 0)}, {}, set())
    assert (step.action, step.name) == (InitAction.START, "side")
    running = {"a": instance("a", exited, 0), "side": instance("side", ContainerState.RUNNING)}
    assert next_init_step(spec, running, {"side": False}, set()).action == InitAction.WAIT
    assert next_init_step(spec, running, {"side": True}, set()).name == "b"
    failed = dict(running, b=instance("b", exited, 2))
    assert next_init_step(spec, failed, {"side": True}, set()).action == InitAction.FAILED
    assert next_init_step(spec, running, {"side": True}, {"b"}).action == InitAction.DONE
    assert regular_all_done(spec, {"app": instance("app", exited, 1)})
    assert not regular_all_done(dict(spec, restartPolicy="OnFailure"), {"app": instance("app", exited, 1)})


def view(name: str, current: ContainerStatus | None, **kw: object) -> ContainerView:
    return ContainerView(name=name, image="docker.io/library/busybox:test", current=current, **kw)  # type: ignore[arg-type]


def test_phases() -> None:
    spec = {"restartPolicy": "Never", "containers": [{"name": "app"}],
            "initContainers": [{"name": "side", "restartPolicy": "Always"}]}
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec, "status": {}}

    def phase(app: ContainerView, side: ContainerView, terminal: bool = False, policy: str = "Never") -> str:
        p = dict(pod, spec=dict(spec, restartPolicy=policy))
        return str(pod_status(p, init=[side], regular=[app], sandbox_ready=True, initialized=True,
                              pod_ips=[], host_ips=[], start_time=None, now=NOW, terminal=terminal)["phase"])

    side_up = view("side", instance("side", ContainerState.RUNNING), started=True, ready=True)
    side_down = view("side", instance("side", ContainerState.EXITED, 143))
    assert phase(view("app", None), side_up) == "Pending"
    assert phase(view("app", instance("app", ContainerState.EXITED, 0)), side_up) == "Running"
    assert phase(view("app", instance("app", ContainerState.EXITED, 0)), side_down) == "Succeeded"
    assert phase(view("app", instance("app", ContainerState.EXITED, 1)), side_down) == "Failed"
    assert phase(view("app", instance("app", ContainerState.EXITED, 1)), side_down, policy="OnFailure") == "Running"
    crashing = view("app", instance("app", ContainerState.EXITED, 1), waiting_reason="CrashLoopBackOff")
    assert phase(crashing, side_up, policy="Always") == "Running"
    assert phase(view("app", instance("app", ContainerState.EXITED, 143)), side_down, terminal=True,
                 policy="Always") == "Failed"


def test_conditions_keep_transition_times_and_readiness_gates() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
           "spec": {"containers": [{"name": "app"}], "readinessGates": [{"conditionType": "example.com/lb"}]},
           "status": {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"},
                                     {"type": "ContainersReady", "status": "True", "lastTransitionTime": "T1"}]}}
    app = view("app", instance("app", ContainerState.RUNNING), ready=True, started=True)
    status = pod_status(pod, init=[], regular=[app], sandbox_ready=True, initialized=True,
                        pod_ips=["10.0.0.2"], host_ips=["127.0.0.1"], start_time=NOW, now=NOW + 5)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ContainersReady"]["lastTransitionTime"] == "T1"
    assert conditions["PodScheduled"]["lastTransitionTime"] == "T0"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "ReadinessGatesNotReady"
    assert conditions["Ready"]["message"] == \
        'corresponding condition of pod readiness gate "example.com/lb" does not exist.'
    assert status["podIPs"] == [{"ip": "10.0.0.2"}] and status["containerStatuses"][0]["ready"]


def test_atomic_writer_swaps_versions_in_place(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    assert write_atomically(volume, {"a": FileContent(b"1"), "dir/b": FileContent(b"2", 0o600)})
    first = os.readlink(volume / "..data")
    assert (volume / "a").read_text() == "1" and os.readlink(volume / "a") == "..data/a"
    assert ((volume / "dir" / "b").stat().st_mode & 0o777) == 0o600
    assert not write_atomically(volume, {"a": FileContent(b"1"), "dir/b": FileContent(b"2", 0o600)})
    assert write_atomically(volume, {"a": FileContent(b"changed")})
    assert os.readlink(volume / "..data") != first and not (volume / first).exists()
    assert sorted(os.listdir(volume))[-1] == "a" and not (volume / "dir").exists()
    assert (volume / "a").read_text() == "changed"
    with pytest.raises(UnsafePath):
        write_atomically(volume, {"../escape": FileContent(b"x")})


def test_hosts_and_resolv_conf() -> None:
    pod = {"metadata": {"name": "web-0", "namespace": "shop"},
           "spec": {"hostname": "web-0", "subdomain": "web",
                    "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["db", "db.local"]}]}}
    hosts = hosts_content(pod, "10.244.0.9", "cluster.local")
    assert "10.244.0.9\tweb-0.web.shop.svc.cluster.local\tweb-0\n" in hosts
    assert hosts.endswith("# Entries added by HostAliases.\n10.1.2.3\tdb\tdb.local\n")
    config = KubeletConfig(node_name="n", data_dir=Path("/x"), cluster_dns=("10.96.0.10",))
    resolv = resolv_content(pod, config, "nameserver 1.1.1.1\n")
    assert resolv == ("search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                      "nameserver 10.96.0.10\noptions ndots:5\n")
    no_dns = KubeletConfig(node_name="n", data_dir=Path("/x"))
    assert resolv_content(pod, no_dns, "search lan\nnameserver 192.0.2.1\n") == \
        "search lan\nnameserver 192.0.2.1\n"
    custom = dict(pod, spec={"dnsPolicy": "None", "dnsConfig": {
        "nameservers": ["192.0.2.53"], "options": [{"name": "ndots", "value": "2"}]}})
    assert resolv_content(custom, config, "") == "nameserver 192.0.2.53\noptions ndots:2\n"


def test_durations_print_like_go() -> None:
    assert [go_duration(s) for s in (0.25, 1.2345, 10, 80, 300)] == ["250ms", "1.234s", "10s", "1m20s", "5m0s"]


def test_grpc_health_framing() -> None:
    frames = grpchealth.request_frames("10.0.0.1:50051", "svc")
    assert frames.startswith(grpchealth.PREFACE)
    rest = frames[len(grpchealth.PREFACE):]
    kinds = []
    while rest:
        length = int.from_bytes(rest[:3], "big")
        kinds.append((rest[3], rest[4], int.from_bytes(rest[5:9], "big")))
        payload, rest = rest[9:9 + length], rest[9 + length:]
    assert kinds == [(grpchealth.SETTINGS, 0, 0), (grpchealth.HEADERS, grpchealth.END_HEADERS, 1),
                     (grpchealth.DATA, grpchealth.END_STREAM, 1)]
    assert payload == b"\x00\x00\x00\x00\x05\x0a\x03svc"
    assert grpchealth.parse_status(b"\x08\x01") == 1 and grpchealth.parse_status(b"") == 0


async def test_grpc_probe_against_a_health_server_on_loopback() -> None:
    """A minimal HTTP/2 health server (answers like grpc-go: SETTINGS, headers, message,
    trailers) on 127.0.0.1; the probe must find SERVING, and NOT_SERVING for "down"."""
    import asyncio

    from skiff.kubelet.handlers import Target, grpc_check

    def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(grpchealth.PREFACE))
        writer.write(frame(grpchealth.SETTINGS, 0, 0, b""))
        body = b""
        while True:
            header = await reader.readexactly(9)
            payload = await reader.readexactly(int.from_bytes(header[:3], "big"))
            if header[3] == grpchealth.DATA:
                body += payload
                if header[4] & grpchealth.END_STREAM:
                    break
        service = body[7:].decode()
        status = 2 if service == "down" else 1
        writer.write(frame(grpchealth.HEADERS, grpchealth.END_HEADERS, 1, b"\x88")
                     + frame(grpchealth.DATA, 0, 1, b"\x00\x00\x00\x00\x02\x08" + bytes([status]))
                     + frame(grpchealth.HEADERS, grpchealth.END_HEADERS | grpchealth.END_STREAM, 1, b"\x88"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = Target(container_id="", pod_ip="127.0.0.1", netns=None)
        assert (await grpc_check(target, {"port": port}, 2)).ok
        down = await grpc_check(target, {"port": port, "service": "down"}, 2)
        assert not down.ok and down.message == 'service unhealthy (responded with "NOT_SERVING")'
    finally:
        server.close()
        await server.wait_closed()
