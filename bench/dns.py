"""Cluster DNS figures (issue 6).  Prints, each the median of several runs:

* throughput: queries/s answered with 64 queries in flight              goal >= 5,000/s
* latency at a paced 5,000 queries/s: p50 and p99                        goal p99 <= 5 ms

The server is skiff's DNS (uvloop) fed by a real in-process API server holding
200 ClusterIP Services and 20 headless Services with 10 ready endpoints each;
the load generator is a plain non-blocking UDP socket in a second process on
loopback.  Only cluster names are asked (A, AAAA, SRV, pod records, NXDOMAIN
search-path misses): nothing is sent to the host's upstream resolver, which
is configured as "none" here.  Bounded: about 30 s.

Run: ``.venv/bin/python bench/dns.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from _cluster import percentile  # noqa: E402

SERVICES, HEADLESS, ENDPOINTS = 200, 20, 10


def questions() -> list[tuple[str, int]]:
    qs: list[tuple[str, int]] = []
    for i in range(SERVICES):
        qs.append((f"svc-{i}.default.svc.cluster.local", 1))
        qs.append((f"svc-{i}.default.svc.cluster.local", 28))  # AAAA: NODATA
        qs.append((f"_http._tcp.svc-{i}.default.svc.cluster.local", 33))
        qs.append((f"svc-{i}.default.svc.cluster.local.default.svc.cluster.local", 1))  # NX
    for i in range(HEADLESS):
        qs.append((f"db-{i}.default.svc.cluster.local", 1))
        qs.append((f"h-0.db-{i}.default.svc.cluster.local", 1))
    qs += [(f"10-244-0-{i}.default.pod.cluster.local", 1) for i in range(1, 50)]
    return qs


# -- the load generator (second process) ---------------------------------------------

def client(port: int, mode: str, seconds: float, rate: float, window: int) -> dict[str, float]:
    from skiff.proxy.dns.wire import encode_name, question_packet

    packets = [question_packet(0, encode_name(n), t)[2:] for n, t in questions()]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    seq = 0
    start = time.perf_counter()
    end = start + seconds
    next_send = start

    def send() -> None:
        nonlocal seq
        ident = seq & 0xFFFF
        seq += 1
        if ident in sent_at:
            del sent_at[ident]  # a reply never came back within 65,536 queries
        sent_at[ident] = time.perf_counter()
        sock.send(struct.pack("!H", ident) + packets[seq % len(packets)])

    while True:
        now = time.perf_counter()
        if now >= end and (not sent_at or now >= end + 1.0):
            break
        if now < end:
            if mode == "throughput":
                while len(sent_at) < window:
                    send()
            else:
                while next_send <= now:
                    send()
                    next_send += 1.0 / rate
        timeout = max(0.0, min(next_send - time.perf_counter(), 0.01)) if mode == "paced" else 0.01
        for _ in sel.select(timeout):
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                got = time.perf_counter()
                t0 = sent_at.pop(struct.unpack_from("!H", data)[0], None)
                if t0 is not None:
                    latencies.append(got - t0)
    return {"answered": len(latencies), "lost": len(sent_at), "qps": len(latencies) / seconds,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


# -- the server (this process) --------------------------------------------------------

async def serve_and_measure(runs: int) -> None:
    from aiohttp import web

    from skiff.apiserver.app import make_app
    from skiff.client.resources import ENDPOINTSLICES, SERVICES as SVC
    from skiff.client.rest import ApiClient
    from skiff.proxy.dns import run_dns
    from skiff.proxy.dns.wire import encode_name
    from skiff.storage.sqlite import SqliteBackend

    with tempfile.TemporaryDirectory() as tmp:
        backend = SqliteBackend(str(Path(tmp) / "db"))
        await backend.start()
        runner = web.AppRunner(make_app(backend), handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        client = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
        try:
            dns = await run_dns(client, upstream=[])
            sem = asyncio.Semaphore(16)

            async def create(res, body) -> None:  # type: ignore[no-untyped-def]
                async with sem:
                    await client.create(res, body, namespace="default")

            bodies = [(SVC, {"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": f"svc-{i}"},
                             "spec": {"ports": [{"name": "http", "port": 80}]}})
                      for i in range(SERVICES)]
            for i in range(HEADLESS):
                bodies.append((SVC, {"apiVersion": "v1", "kind": "Service",
                                     "metadata": {"name": f"db-{i}"},
                                     "spec": {"clusterIP": "None",
                                              "ports": [{"name": "http", "port": 80}]}}))
                bodies.append((ENDPOINTSLICES, {
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": f"db-{i}-x",
                                 "labels": {"kubernetes.io/service-name": f"db-{i}"}},
                    "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                    "endpoints": [{"addresses": [f"10.244.{i}.{j + 1}"], "hostname": f"h-{j}",
                                   "conditions": {"ready": True}} for j in range(ENDPOINTS)]}))
            await asyncio.gather(*(create(r, b) for r, b in bodies))
            last = encode_name(f"h-0.db-{HEADLESS - 1}.default.svc.cluster.local")
            want = encode_name(f"svc-{SERVICES - 1}.default.svc.cluster.local")
            while dns.records.lookup(last, 1) is dns.records.nxdomain or \
                    dns.records.lookup(want, 1) is dns.records.nxdomain:
                await dns.wait_changed(dns.records.version, timeout=30)
            results: dict[str, list[dict[str, float]]] = {"throughput": [], "paced": []}
            for _ in range(runs):
                for mode in results:
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "--client", str(dns.port), "--mode", mode,
                        stdout=asyncio.subprocess.PIPE)
                    out, _ = await proc.communicate()
                    results[mode].append(json.loads(out))
            await dns.close()
        finally:
            await client.close()
            await runner.cleanup()
            await backend.close()
    tp = [r["qps"] for r in results["throughput"]]
    paced = results["paced"]
    print(f"dns throughput (64 in flight):   {statistics.median(tp):8.0f} queries/s"
          f"   goal >= 5000   runs {[round(x) for x in tp]}")
    print(f"dns paced 5000/s answered:       {statistics.median(r['qps'] for r in paced):8.0f}"
          f" queries/s  lost {sum(r['lost'] for r in paced)}")
    print(f"dns latency at 5000/s p50:       {statistics.median(r['p50_ms'] for r in paced):8.2f} ms")
    print(f"dns latency at 5000/s p99:       {statistics.median(r['p99_ms'] for r in paced):8.2f} ms"
          f"   goal <= 5      runs {[round(r['p99_ms'], 2) for r in paced]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="paced", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.mode, seconds=3.0, rate=5000.0, window=64)))
        return
    import uvloop
    uvloop.install()
    asyncio.run(serve_and_measure(args.runs))


if __name__ == "__main__":
    main()
