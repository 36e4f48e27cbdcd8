"""Control-plane figures (issue: control plane).  Prints, each the median of several runs:

* cold start: ``skiff up --runtime fake`` spawned -> ``/readyz`` ok          goal <= 1 s
* idle RSS with one fake node                                                goal <= 100 MB
  (of the ``skiff up`` process; of it and its scheduler and node agent processes,
  summed as RSS and as PSS; and of ``skiff up --single-process``)
* single-object GET rate over HTTPS (keep-alive, concurrent clients)        goal >= 3,000/s
* create rate (ConfigMaps, concurrent clients)                              goal >= 1,000/s
* p99 create latency at a paced 200 creates/s                               goal <= 50 ms
* one event delivered to 1,000 open watches, p99 delivery latency          goal <= 100 ms

and, for the GET and create rates, the *server process's* CPU time per request
(``utime + stime`` of every thread, from ``/proc/<pid>/stat``; the process is the
whole ``skiff up``, so its controllers' share is in it) next to the load
generator's, and the load average: on a shared machine the rates depend on what
else runs, ``1 / server CPU per request`` is the rate one free core would give.

Run: ``.venv/bin/python bench/apiserver.py [--runs N] [--load-processes N]``.
Bounded: about two minutes (each fan-out run opens 1,000 TLS connections).

The load generator runs on the same 2 cores as the server, so it is kept cheap:
worker processes (this file run with ``--worker``; ``LOAD_PROCESSES`` by default)
with raw HTTP/1.1 keep-alive connections (no pipelining) over TLS on uvloop,
requests pre-built as bytes, responses read by status line and Content-Length
only, watch streams scanned for a marker without decoding JSON.  Connections
(TLS handshakes) are made before the clock starts.  About 60 us of load
generator CPU per request (``ab -k`` with a client certificate costs ~40 us per
GET here, and ApacheBench cannot vary the names of creates).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import percentile, skiff_up  # noqa: E402

import uvloop  # noqa: E402

CM = "/api/v1/namespaces/default/configmaps"
LOAD_PROCESSES = 1  # the server is one thread: one load process on the other core disturbs it least
CONCURRENCY = 32  # connections over all load processes
GET_SECONDS = 4.0
CREATES = 4000
WATCHERS = 1000
WATCH_EVENTS = 5


# -- the load generator (runs in worker processes) -------------------------------------


class RawHttp(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection.

    ``request(data)`` sends pre-built bytes and returns the response status once
    the whole body (by Content-Length) is in; the body is discarded.  With
    ``watch_marker`` set, the response is a watch stream instead: the headers
    complete ``ready`` and each arrival of ``watch_marker(n)`` (n = 1, 2 ...) in
    the stream is timestamped into ``seen``.
    """

    def __init__(self, watch_marker: Callable[[int], bytes] | None = None) -> None:
        self.transport: Any = None  # uvloop's TLS transport is not an asyncio.Transport subclass
        self.buf = bytearray()
        self.pending: asyncio.Future[int] | None = None
        self.watch_marker = watch_marker
        self.ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.seen: list[float] = []
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.set_exception(ConnectionError("connection lost"))
        if self.watch_marker is not None and not self.ready.done():
            self.ready.set_exception(ConnectionError("connection lost"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.pending = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.pending

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.streaming:
            self._scan_watch()
            return
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        status = int(buf[9:12])
        if self.watch_marker is not None:
            self.streaming = True
            del buf[:end + 4]
            self.ready.set_result(status)
            self._scan_watch()
            return
        at = buf.find(b"Content-Length: ", 0, end)
        length = int(buf[at + 16:buf.index(b"\r\n", at)]) if at >= 0 else 0
        if len(buf) < end + 4 + length:
            return
        del buf[:end + 4 + length]
        fut, self.pending = self.pending, None
        if fut is not None:
            fut.set_result(status)

    def _scan_watch(self) -> None:
        assert self.watch_marker is not None
        while True:
            at = self.buf.find(self.watch_marker(len(self.seen) + 1))
            if at < 0:
                return
            self.seen.append(time.monotonic())
            del self.buf[:at]


def _client_context(data_dir: Path) -> ssl.SSLContext:
    pki = data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    return ctx


async def _connect(url: str, ctx: ssl.SSLContext, n: int,
                   marker: Callable[[int], bytes] | None = None) -> list[RawHttp]:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(n):
        _, proto = await loop.create_connection(lambda: RawHttp(marker), parts.hostname or "",
                                                parts.port or 443, ssl=ctx)
        conns.append(proto)
    return conns


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """One load process: connect, say ``ready``, wait for ``go`` on stdin, run, report."""
    ctx = _client_context(Path(cfg["data_dir"]))
    loop = asyncio.get_running_loop()
    mode = cfg["mode"]
    host = urlsplit(cfg["url"]).netloc.encode()
    if mode == "watch":
        name = cfg["name"]
        conns = await _connect(cfg["url"], ctx, cfg["connections"],
                               lambda n: b'"data":{"i":"%d"}' % n)
        path = f'{CM}?watch=true&resourceVersion={cfg["rv"]}&fieldSelector=metadata.name%3D{name}'
        for c in conns:
            assert c.transport is not None
            c.transport.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host))
        statuses = await asyncio.gather(*(c.ready for c in conns))
        assert set(statuses) == {200}, statuses
        print("ready", flush=True)
        events = cfg["events"]
        while any(len(c.seen) < events for c in conns):
            await asyncio.sleep(0.05)
        return {"seen": [c.seen for c in conns]}
    conns = await _connect(cfg["url"], ctx, cfg["connections"])
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    cpu0, t0 = _cpu_self(), time.monotonic()
    count = 0
    if mode == "get":
        request = b"GET %s/%s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n\r\n" % (
            CM.encode(), cfg["name"].encode(), host)
        stop = t0 + cfg["seconds"]

        async def getter(c: RawHttp) -> None:
            nonlocal count
            while time.monotonic() < stop:
                status = await c.request(request)
                assert status == 200, status
                count += 1

        await asyncio.gather(*(getter(c) for c in conns))
    else:
        head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %%d\r\n\r\n" % (
            CM.encode(), host)
        names = iter(range(cfg["count"]))
        prefix = cfg["prefix"].encode()

        async def creator(c: RawHttp) -> None:
            nonlocal count
            for i in names:
                body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s%d"},"data":{"k":"v"}}' % (
                    prefix, i)
                status = await c.request(head % len(body) + body)
                assert status == 201, status
                count += 1

        await asyncio.gather(*(creator(c) for c in conns))
    return {"count": count, "start": t0, "end": time.monotonic(), "cpu": _cpu_self() - cpu0}


def worker_main(cfg_json: str) -> None:
    print(json.dumps(uvloop.run(_worker(json.loads(cfg_json)))), flush=True)


# -- the driver -------------------------------------------------------------------------


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Workers:
    """``LOAD_PROCESSES`` load processes sharing one job; connected once started."""

    def __init__(self, url: str, data_dir: Path, processes: int = LOAD_PROCESSES, **cfg: Any) -> None:
        per = max(1, cfg.pop("connections") // processes)
        self.procs = []
        for n in range(processes):
            job = {"url": url, "data_dir": str(data_dir), "connections": per, **cfg}
            if "count" in job:
                job["count"] //= processes
            if "prefix" in job:
                job["prefix"] += f"{n}-"
            self.procs.append(subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(job)],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in self.procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a load process failed to connect")

    def go(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()

    def results(self) -> list[dict[str, Any]]:
        out = []
        for p in self.procs:
            assert p.stdout is not None
            out.append(json.loads(p.stdout.readline()))
            p.wait(timeout=30)
        return out

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@dataclass
class Rate:
    rate: float  # requests per second, wall clock
    server_us: float  # server process CPU per request
    client_us: float  # load processes' CPU per request


def _run_load(c: Any, **cfg: Any) -> Rate:
    workers = Workers(c.url, c.data, **cfg)
    try:
        cpu0 = server_cpu(c.proc.pid)
        workers.go()
        results = workers.results()
        cpu1 = server_cpu(c.proc.pid)
    finally:
        workers.kill()
    count = sum(r["count"] for r in results)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return Rate(count / seconds, (cpu1 - cpu0) / count * 1e6, sum(r["cpu"] for r in results) / count * 1e6)


def _post(c: Any, ctx: ssl.SSLContext, path: str, body: dict[str, Any], method: str = "POST",
          content_type: str = "application/json") -> dict[str, Any]:
    req = urllib.request.Request(c.url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


def get_rate(c: Any, ctx: ssl.SSLContext, processes: int = LOAD_PROCESSES) -> Rate:
    try:
        _post(c, ctx, CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench-get"},
                           "data": {"k": "v"}})
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
    return _run_load(c, mode="get", name="bench-get", seconds=GET_SECONDS, connections=CONCURRENCY,
                     processes=processes)


def create_rate(c: Any, processes: int = LOAD_PROCESSES) -> Rate:
    return _run_load(c, mode="create", count=CREATES, prefix=f"c{time.monotonic_ns()}-", processes=processes,
                     connections=CONCURRENCY)


async def _paced_p99(url: str, ctx: ssl.SSLContext, rate: float = 200.0, seconds: float = 5.0) -> float:
    """p99 create latency at a fixed arrival rate (open loop: each request is sent on
    time on a free connection, whatever the earlier ones are doing; when all are busy
    a new one is opened, its TLS handshake counted in that request's latency)."""
    conns = await _connect(url, ctx, 32)
    free = list(conns)
    host = urlsplit(url).netloc.encode()
    prefix = f"p{time.monotonic_ns()}-".encode()
    latencies: list[float] = []

    async def one(i: int) -> None:
        body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s%d"}}' % (prefix, i)
        t = time.perf_counter()
        if not free:
            free.extend(await _connect(url, ctx, 1))
            conns.append(free[-1])
        c = free.pop()
        status = await c.request(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (CM.encode(), host, len(body), body))
        latencies.append(time.perf_counter() - t)
        free.append(c)
        assert status == 201, status

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for c in conns:
        c.transport.close()
    return percentile(latencies, 99) * 1000


def watch_fanout(c: Any, ctx: ssl.SSLContext) -> float:
    """p99 delay from sending a PATCH to each of WATCHERS watches reading the event.

    The watches are read by one load process: the server writes the event to each
    socket in turn, and a second reader process would only take CPU from it.  The
    PATCH goes over a connection opened beforehand (no TLS handshake in the figure).
    """
    name = f"w{time.monotonic_ns()}"
    created = _post(c, ctx, CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                 "data": {"i": "0"}})
    workers = Workers(c.url, c.data, mode="watch", name=name, rv=created["metadata"]["resourceVersion"],
                      events=WATCH_EVENTS, connections=WATCHERS, processes=1)
    parts = urlsplit(c.url)
    patcher = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=ctx, timeout=10)
    try:
        patcher.connect()
        sent = []
        for i in range(1, WATCH_EVENTS + 1):
            time.sleep(0.3)
            body = json.dumps({"data": {"i": str(i)}})
            sent.append(time.monotonic())
            patcher.request("PATCH", f"{CM}/{name}", body=body,
                            headers={"Content-Type": "application/merge-patch+json"})
            with patcher.getresponse() as r:
                r.read()
                assert r.status == 200, r.status
        results = workers.results()
    finally:
        patcher.close()
        workers.kill()
    latencies = [seen[i] - sent[i] for r in results for seen in r["seen"] for i in range(WATCH_EVENTS)]
    assert len(latencies) == WATCHERS * WATCH_EVENTS
    return percentile(latencies, 99) * 1000


def cold_start(*extra: str) -> tuple[float, tuple[float, float, float]]:
    """Seconds to /readyz, and once idle (server RSS, tree RSS, tree PSS) in MB."""
    with skiff_up(*extra, announced=False) as c:
        ctx = c.ssl_context()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(c.url + "/readyz", context=ctx, timeout=1) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.005)
        ready = time.perf_counter() - c.started
        time.sleep(4)  # let the node register and the process settle: this is the idle figure
        return ready, (c.rss_mb(), *c.tree_memory_mb())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--load-processes", type=int, default=LOAD_PROCESSES,
                    help=f"load generator processes for the GET and create rates (default {LOAD_PROCESSES})")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    starts, rss, tree_rss, tree_pss = [], [], [], []
    for _ in range(args.runs):
        s, (server, tree, pss) = cold_start()
        starts.append(s)
        rss.append(server)
        tree_rss.append(tree)
        tree_pss.append(pss)
    single = statistics.median(cold_start("--single-process")[1][0] for _ in range(args.runs))
    print(f"cold start to /readyz:   {statistics.median(starts) * 1000:7.0f} ms   (goal <= 1000)")
    print(f"idle RSS, 1 fake node:   {statistics.median(rss):7.1f} MB   (goal <= 100) the skiff up process; "
          f"with its scheduler and node agent processes {statistics.median(tree_rss):.1f} MB "
          f"(PSS {statistics.median(tree_pss):.1f} MB); --single-process {single:.1f} MB")
    gets: list[Rate] = []
    creates: list[Rate] = []
    p99s, fan = [], []
    with skiff_up() as c:
        ctx = c.ssl_context()
        for _ in range(args.runs):
            gets.append(get_rate(c, ctx, args.load_processes))
            creates.append(create_rate(c, args.load_processes))
            p99s.append(uvloop.run(_paced_p99(c.url, ctx)))
            fan.append(watch_fanout(c, ctx))

    def med(rates: list[Rate], field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in rates))

    print(f"GET one object:          {med(gets, 'rate'):7.0f} /s  (goal >= 3000)   "
          f"server CPU {med(gets, 'server_us'):4.0f} us/req, load generator {med(gets, 'client_us'):3.0f} us/req")
    print(f"create:                  {med(creates, 'rate'):7.0f} /s  (goal >= 1000)   "
          f"server CPU {med(creates, 'server_us'):4.0f} us/req, load generator {med(creates, 'client_us'):3.0f} us/req")
    print(f"create p99 at 200/s:     {statistics.median(p99s):7.1f} ms  (goal <= 50)")
    print(f"watch fan-out p99, 1000: {statistics.median(fan):7.1f} ms  (goal <= 100)")
    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
