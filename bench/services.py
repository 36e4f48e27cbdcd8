"""Service proxy figures (issue 6). Prints:

* endpoint change -> rules in place: p50 / p99, from the API write (an
  EndpointSlice update making one endpoint not ready, or ready again) to the
  proxy's transaction being committed, with the full table loaded    goal p99 <= 100 ms
* full sync of 1,000 Services x 10 endpoints: the whole table in one
  transaction (rules built + ``nft -f``), and a proxy start from the
  API (list + sync)                                                   goal <= 2 s
* throughput through a ClusterIP vs pod IP direct: one TCP stream of
  --megabytes from one pod to another, median of --runs each; ratio   goal >= 0.9

Needs root. Everything runs in network namespaces made for the run (a node
namespace with skiff's NodeNetwork: bridge, routes for the pod and service CIDRs;
two pods); the API server is in-process on 127.0.0.1. Nothing is sent anywhere
else, and all of it is removed at the end. Bounded: about a minute.

The 10,000 endpoints are spread over 20 nodes (a node runs at most a few hundred
pods); the proxy under test is node-a's, so its hairpin set holds 500 pod IPs.

Run: ``.venv/bin/python bench/services.py [--services N] [--endpoints N] [--changes N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from _cluster import percentile  # noqa: E402

from aiohttp import web  # noqa: E402

from skiff.apiserver.app import make_app  # noqa: E402
from skiff.client.resources import ENDPOINTSLICES, SERVICES  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from skiff.kubelet.network import NodeNetwork  # noqa: E402
from skiff.kubelet.network.netns import run_inside  # noqa: E402
from skiff.proxy.proxier import ServiceProxy  # noqa: E402
from skiff.storage.sqlite import SqliteBackend  # noqa: E402

Obj = dict[str, Any]
CLUSTER_CIDR, SERVICE_CIDR, POD_CIDR = "10.244.0.0/16", "10.96.0.0/12", "10.244.0.0/24"
SINK_PORT = 9000


@contextlib.asynccontextmanager
async def api_server(directory: Path) -> AsyncIterator[ApiClient]:
    backend = SqliteBackend(str(directory / "db"))
    await backend.start()
    runner = web.AppRunner(make_app(backend), handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()
        await backend.close()


@contextlib.asynccontextmanager
async def running(proxy: ServiceProxy, client: ApiClient) -> AsyncIterator[ServiceProxy]:
    task = asyncio.create_task(proxy.run(client))
    try:
        started = asyncio.create_task(proxy.started.wait())
        await asyncio.wait({started, task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            task.result() if task.done() else None
            raise RuntimeError("the proxy did not start")
        yield proxy
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def service(i: int, cluster_ip: str | None = None) -> Obj:
    spec: Obj = {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"metadata": {"name": f"svc-{i}", "namespace": "default"}, "spec": spec}


def endpoint_slice(i: int, endpoints: int, ready_mask: int = -1) -> Obj:
    return {"metadata": {"name": f"svc-{i}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.244.{1 + (i * endpoints + e) // 250}.{(i * endpoints + e) % 250 + 2}"],
                           "nodeName": f"node-{'abcdefghijklmnopqrst'[(i * endpoints + e) % 20]}",
                           "conditions": {"ready": bool(ready_mask >> e & 1)}} for e in range(endpoints)]}


async def populate(client: ApiClient, services: int, endpoints: int) -> None:
    async def one(i: int) -> None:
        await client.create(SERVICES, service(i), namespace="default")
        await client.create(ENDPOINTSLICES, endpoint_slice(i, endpoints), namespace="default")
    for start in range(0, services, 50):
        await asyncio.gather(*(one(i) for i in range(start, min(services, start + 50))))


async def bench_rules(client: ApiClient, node_ns: Path, services: int, endpoints: int,
                      changes: int) -> None:
    started = time.perf_counter()
    await populate(client, services, endpoints)
    print(f"(created {services} Services + {services} EndpointSlices in "
          f"{time.perf_counter() - started:.1f} s)")

    # Rules only in this namespace: no traffic, no routes at all (nothing could leave).
    proxy = ServiceProxy(node_name="node-a", cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR,
                         node_netns=node_ns, table="skiff-proxy-bench", require_routes=False)
    begun = time.perf_counter()
    async with running(proxy, client):
        start_seconds = time.perf_counter() - begun
        full = proxy.syncs[0]
        chains = sum(len(p.chains) for p in proxy.programs.values())
        print(f"full sync, {services} Services x {endpoints} endpoints ({chains} chains): "
              f"{full.seconds * 1000:.0f} ms    proxy start incl. list: {start_seconds * 1000:.0f} ms"
              f"    (goal <= 2000 ms; via {proxy.nft.via})")
        # Endpoint changes, one at a time, each waited for.
        samples: list[float] = []
        for n in range(changes):
            i = (n * 7919) % services
            key = f"default/svc-{i}"
            mask = (1 << endpoints) - 1 if n % 2 else ((1 << endpoints) - 1) & ~(1 << (n % endpoints))
            wanted = bin(mask).count("1")
            current = await client.get(ENDPOINTSLICES, f"svc-{i}-1", namespace="default")
            body = endpoint_slice(i, endpoints, mask)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            t0 = time.perf_counter()
            await client.update(ENDPOINTSLICES, body, namespace="default")
            await proxy.wait_for(lambda: sum(len(a) for a in proxy.endpoints(key).values()) == wanted)
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"endpoint change -> rules in place: p50 {percentile(samples, 50):.1f} ms   "
              f"p99 {percentile(samples, 99):.1f} ms   max {max(samples):.1f} ms   (n={changes}, "
              f"goal p99 <= 100 ms)")
        await proxy.delete_rules()


# -- throughput -----------------------------------------------------------------------

def sink(server: socket.socket, done: dict[str, float]) -> None:
    """Accept one connection and read until EOF (runs on its own thread)."""
    conn, _ = server.accept()
    buffer = bytearray(1 << 20)
    total = 0
    with conn:
        while True:
            n = conn.recv_into(buffer)
            if not n:
                break
            total += n
    done["bytes"] = total
    done["at"] = time.perf_counter()


def send(client: socket.socket, address: tuple[str, int], size: int) -> float:
    block = b"\0" * (1 << 20)
    client.connect(address)
    started = time.perf_counter()
    sent = 0
    while sent < size:
        client.sendall(block)
        sent += len(block)
    client.shutdown(socket.SHUT_WR)
    return started


async def stream(server_ns: Path, client_ns: Path, address: tuple[str, int], megabytes: int) -> float:
    """Throughput (MB/s) of one TCP stream from ``client_ns`` to ``address``."""
    server = await run_inside(server_ns, lambda: socket.socket())
    client = await run_inside(client_ns, lambda: socket.socket())
    with server, client:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", SINK_PORT))
        server.listen(1)
        done: dict[str, float] = {}
        reader = threading.Thread(target=sink, args=(server, done))
        reader.start()
        started = await asyncio.to_thread(send, client, address, megabytes << 20)
        await asyncio.to_thread(reader.join)
    assert done["bytes"] == megabytes << 20
    return megabytes / (done["at"] - started)


async def bench_throughput(client: ApiClient, state: Path, megabytes: int, runs: int) -> None:
    node_ns = add_namespace()
    network = NodeNetwork(state_dir=state, pod_cidr=POD_CIDR, cluster_cidr=CLUSTER_CIDR,
                          service_cidr=SERVICE_CIDR, node_netns=node_ns)
    try:
        await network.setup()
        server = await network.add_pod(str(uuid.uuid4()), "sink", "default")
        sender = await network.add_pod(str(uuid.uuid4()), "source", "default")
        assert server.netns_path is not None and sender.netns_path is not None
        svc = await client.create(SERVICES, {
            "metadata": {"name": "sink", "namespace": "default"},
            "spec": {"ports": [{"name": "tcp", "port": 80, "targetPort": SINK_PORT, "protocol": "TCP"}]}},
            namespace="default")
        await client.create(ENDPOINTSLICES, {
            "metadata": {"name": "sink-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "sink"}},
            "addressType": "IPv4", "ports": [{"name": "tcp", "port": SINK_PORT, "protocol": "TCP"}],
            "endpoints": [{"addresses": [server.ip], "conditions": {"ready": True}}]},
            namespace="default")
        proxy = ServiceProxy(node_name="node-a", cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR,
                             node_netns=node_ns, table="skiff-proxy-bench")
        async with running(proxy, client):
            await proxy.wait_for(lambda: bool(proxy.endpoints("default/sink")))
            direct, via = [], []
            await stream(server.netns_path, sender.netns_path, (server.ip, SINK_PORT), 64)  # warm up
            for _ in range(runs):
                direct.append(await stream(server.netns_path, sender.netns_path,
                                           (server.ip, SINK_PORT), megabytes))
                via.append(await stream(server.netns_path, sender.netns_path,
                                        (svc["spec"]["clusterIP"], 80), megabytes))
        d, v = statistics.median(direct), statistics.median(via)
        print(f"throughput, one TCP stream pod -> pod ({megabytes} MB, median of {runs}): "
              f"pod IP {d:.0f} MB/s   ClusterIP {v:.0f} MB/s   ratio {v / d:.2f}   (goal >= 0.90)")
    finally:
        try:
            await network.teardown()
        finally:
            delete_namespace(node_ns)


# -- namespaces -----------------------------------------------------------------------

def add_namespace() -> Path:
    name = f"skiffb-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return Path("/run/netns") / name


def delete_namespace(path: Path) -> None:
    if path.exists():
        subprocess.run(["ip", "netns", "del", path.name], check=False)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="skiff-bench-services-"))
    node_ns = add_namespace()
    try:
        async with api_server(directory) as client:
            await bench_rules(client, node_ns, args.services, args.endpoints, args.changes)
        (directory / "throughput").mkdir()
        async with api_server(directory / "throughput") as client:
            await bench_throughput(client, directory / "network", args.megabytes, args.runs)
    finally:
        delete_namespace(node_ns)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
