"""API server CPU per hot write (issues 3 and 4).  Prints a table of microseconds of
*server* CPU per operation, each the median of ``--runs`` runs:

==========  ======================================================================
operation   what the cluster does ``--count`` times per run
==========  ======================================================================
create      POST a pod (the scheduler bench's plain pod; the bench client's manager)
binding     POST pods/<name>/binding (the scheduler)
status      PATCH pods/<name>/status, a merge patch to Running with conditions and
            containerStatuses, built by the simulated kubelet's own code
event       POST a core/v1 Event (``Scheduled``, as the EventRecorder writes it)
lease       PUT a node Lease with a new ``spec.renewTime`` (the object last returned,
            as the simulated kubelet sends it; same manager every time)
podstart    what starting one pod on a real node costs the server, step by step
            (each step a phase over all ``--count`` pods, printed as ``podstart:<step>``;
            ``podstart`` is their sum): create (a busybox pod as bench/podstartup.py
            makes it; admission adds the service-account volume), binding (the
            scheduler), scheduled (its ``Scheduled`` event), token (the kubelet's
            TokenRequest for the projected token; none with ``--plain``), events
            (``Pulled``, ``Created``, ``Started``), status (the merge patch to
            Running, built by the kubelet's own ``pod_status``).  The pods are
            deleted between runs (not measured).  ``--concurrency 20`` is the
            pod-startup bench's burst of 20 pods.
==========  ======================================================================

Setup: the API server (``make_app``, every built-in kind, authentication and RBAC,
HTTPS with the admin client certificate -- as ``skiff up`` serves it; ``--plain`` for
HTTP without auth; uvloop and the tuned garbage collector of every skiff process)
over SQLite in a child process of its own, so its CPU time is the
server's alone (``time.process_time`` there: every thread, nanosecond clock).  This
process is the load: aiohttp, ``--concurrency`` requests in flight, and three open
watches as the components hold them (all pods, pods with ``spec.nodeName!=`` like the
simulated node fleet, all leases), each read to the end of every event.  A phase
ends when the watches have gone quiet, so the fan-out of its events is in its figure.

With ``podstart`` the server runs the controller manager in its process, as ``skiff
up`` does (every controller, over loopback HTTPS; their informers and handlers are
in the figures; ``--no-controllers`` leaves it out), and the watches are those of a
cluster with one real node: the scheduler's (all pods), the node agent's
(``spec.nodeName=<node>``) and the pod-startup bench's (the namespace's pods), plus
all leases.  The node exists, Ready, with its lease renewed.

``--cprofile FILE`` runs the measured phases (narrow them with ``--ops``, and
podstart's with ``--profile-steps``) of the server under cProfile (timed in process
CPU time), writes the stats to FILE and prints the top functions.

Run: ``.venv/bin/python bench/writes.py`` (about 10-20 s on the 2-core machine), or
``.venv/bin/python bench/writes.py --ops podstart`` (measured only when named).  To
compare with another checkout: ``PYTHONPATH=<its src> .venv/bin/python bench/writes.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import cProfile
import io
import multiprocessing
import multiprocessing.connection
import pstats
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import orjson

NS = "bench"
LEASE_NS = "kube-node-lease"
NODES = 10
SKIFF_AGENT = "skiff/0.1"  # the in-process components' User-Agent: manager "skiff"
OPS = ("create", "binding", "status", "event", "lease", "podstart")
#: The steps of ``podstart``, in the order the cluster takes them for each pod.
PODSTART = ("create", "binding", "scheduled", "token", "events", "status")
NODE = "skiff-node-0"  # the one real node of ``podstart``
IMAGE = "busybox:latest"
QUIET = 0.05  # seconds without watch bytes that end a phase
#: The watches of the simulated node fleet's cluster (scheduler, nodes, lease readers).
WATCHES = ("/api/v1/pods", "/api/v1/pods?fieldSelector=spec.nodeName%21%3D",
           "/apis/coordination.k8s.io/v1/leases")
#: ... and of a cluster with one real node (scheduler, node agent, pod-startup bench).
PODSTART_WATCHES = ("/api/v1/pods", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}",
                    f"/api/v1/namespaces/{NS}/pods", "/apis/coordination.k8s.io/v1/leases")


# -- the server (child process) -------------------------------------------------------


def serve_child(conn: multiprocessing.connection.Connection, data: str, plain: bool,
                controllers: bool) -> None:
    """Run the API server until told to stop; answer CPU and profiler commands on ``conn``.

    On the event loop and with the garbage collector set up as every skiff process has them.
    """
    from skiff.cli.eventloop import start_event_loop

    start_event_loop(_serve(conn, Path(data), plain, controllers))


async def _controller_manager(url: str, data: Path, started: asyncio.Event) -> None:
    """Every controller, as ``skiff up`` runs them (cli/cluster.py), against ``url``."""
    import functools

    from skiff.apiserver.pki import ensure_pki
    from skiff.client.rest import ApiClient
    from skiff.controllers.manager import CONTROLLERS, ControllerFactory, run_controllers
    from skiff.controllers.persistentvolume import with_volumes_dir
    from skiff.controllers.serviceaccount import RootCACertPublisher

    pki = ensure_pki(data / "pki", hosts=("127.0.0.1",))
    client = ApiClient(url, ssl_context=pki.admin_ssl_context(), user_agent="skiff-up")
    publisher: ControllerFactory = functools.partial(RootCACertPublisher, ca_pem=pki.ca_cert.read_text())
    known = (*with_volumes_dir(CONTROLLERS, data / "volumes"), ("root-ca-cert-publisher", publisher))
    try:
        await run_controllers(client, known=known, started=started)
    finally:
        await client.close()


async def _serve(conn: multiprocessing.connection.Connection, data: Path, plain: bool,
                 controllers: bool) -> int:
    from skiff.apiserver.app import make_app
    from skiff.apiserver.server import serve
    from skiff.storage.sqlite import SqliteBackend

    backend = SqliteBackend(str(data / "state.db"))
    await backend.start()
    if plain:
        app = make_app(backend)
        handle = await serve(app, host="127.0.0.1", port=0, ssl_context=None)
        url = f"http://127.0.0.1:{handle.port}"
    else:
        from skiff.apiserver.auth.gate import AuthOptions
        from skiff.apiserver.pki import ensure_pki

        pki = ensure_pki(data / "pki", hosts=("127.0.0.1",))
        app = make_app(backend, auth=AuthOptions.from_pki(pki))
        handle = await serve(app, host="127.0.0.1", port=0, ssl_context=pki.server_ssl_context())
        url = handle.url
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    profiler: cProfile.Profile | None = None
    manager: asyncio.Task[None] | None = None
    if controllers:
        started = asyncio.Event()
        manager = asyncio.create_task(_controller_manager(url, data, started))
        synced = asyncio.create_task(started.wait())
        await asyncio.wait((manager, synced), return_when=asyncio.FIRST_COMPLETED)
        if manager.done():
            manager.result()  # its error

    def command() -> None:
        nonlocal profiler
        cmd, arg = conn.recv()
        if cmd == "cpu":
            conn.send(time.process_time())
        elif cmd == "profile":
            if profiler is None:  # CPU time: wall time would count the other processes' turns
                profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            conn.send(None)
        elif cmd == "unprofile":
            if profiler is not None:
                profiler.disable()
            conn.send(None)
        elif cmd == "dump":
            if profiler is not None:
                profiler.dump_stats(arg)
            conn.send(None)
        elif cmd == "stop" and not done.done():
            done.set_result(None)

    loop.add_reader(conn.fileno(), command)
    conn.send(url)
    try:
        await done
    finally:
        loop.remove_reader(conn.fileno())
        if manager is not None:
            manager.cancel()
            await asyncio.gather(manager, return_exceptions=True)
        await handle.close()
        await backend.close()
        conn.send("stopped")
    return 0


class Server:
    """The child process and the pipe that asks it for its CPU time."""

    def __init__(self, data: Path, plain: bool, controllers: bool = False) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve_child, args=(child, str(data), plain, controllers),
                                daemon=True)
        self.proc.start()
        if not self.conn.poll(60):
            raise RuntimeError("the API server did not start")
        self.url: str = self.conn.recv()
        self.data = data
        self.plain = plain
        self.controllers = controllers

    def ask(self, cmd: str, arg: Any = None) -> Any:
        self.conn.send((cmd, arg))
        return self.conn.recv()

    def cpu(self) -> float:
        return float(self.ask("cpu"))

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.plain:
            return None
        pki = self.data / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return ctx

    def stop(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(Exception):
                self.conn.send(("stop", None))
                self.conn.poll(10)
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# -- the load (this process) ------------------------------------------------------------


def pod_body(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS,
                                                            "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "terminationGracePeriodSeconds": 0}}


def event_body(pod: dict[str, Any], node: str, stamp: str, nanos: int) -> dict[str, Any]:
    meta = pod["metadata"]
    involved = {"kind": "Pod", "namespace": NS, "name": meta["name"], "uid": meta["uid"],
                "apiVersion": "v1", "resourceVersion": meta["resourceVersion"]}
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{nanos:x}", "namespace": NS},
            "involvedObject": involved, "reason": "Scheduled",
            "message": f"Successfully assigned {NS}/{meta['name']} to {node}",
            "type": "Normal", "source": {"component": "default-scheduler"},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": "default-scheduler", "reportingInstance": ""}


class Load:
    def __init__(self, server: Server, concurrency: int) -> None:
        self.server = server
        self.concurrency = concurrency
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=server.ssl_context() or False, limit=0))
        self.watch_bytes = 0
        self._watches: list[asyncio.Task[None]] = []
        self.pods: dict[str, dict[str, Any]] = {}
        self.leases: list[dict[str, Any]] = []

    async def request(self, method: str, path: str, body: Any = None, *, agent: str | None = None,
                      content_type: str = "application/json") -> Any:
        headers = {"Content-Type": content_type}
        if agent:
            headers["User-Agent"] = agent
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, self.server.url + path, data=data,
                                        headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
            return orjson.loads(raw)

    async def many(self, calls: list[Any]) -> list[Any]:
        """Run coroutine factories with ``concurrency`` in flight; results in order."""
        results: list[Any] = [None] * len(calls)
        it = iter(enumerate(calls))

        async def worker() -> None:
            for i, call in it:
                results[i] = await call()

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(calls)))))
        return results

    # -- watches --

    async def open_watches(self, paths: tuple[str, ...] = WATCHES) -> None:
        for path in paths:
            opened = asyncio.get_running_loop().create_future()
            self._watches.append(asyncio.create_task(self._watch(path, opened)))
            await opened

    async def _watch(self, path: str, opened: asyncio.Future[None]) -> None:
        sep = "&" if "?" in path else "?"
        url = f"{self.server.url}{path}{sep}watch=true&allowWatchBookmarks=true"
        async with self.session.get(url, headers={"User-Agent": SKIFF_AGENT},
                                    timeout=aiohttp.ClientTimeout(total=None)) as resp:
            opened.set_result(None)
            async for data in resp.content.iter_any():
                self.watch_bytes += len(data)

    async def quiet(self) -> None:
        """Return once the watches received nothing for :data:`QUIET` seconds."""
        seen = -1
        while seen != self.watch_bytes:
            seen = self.watch_bytes
            await asyncio.sleep(QUIET)

    async def close(self) -> None:
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await self.session.close()

    # -- setup --

    async def setup(self) -> None:
        await self.request("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
        with contextlib.suppress(RuntimeError):  # the server may have made it already
            await self.request("POST", "/api/v1/namespaces", {"metadata": {"name": LEASE_NS}})
        from skiff.kubelet.node_status import node_lease

        for i in range(NODES):
            lease = node_lease(f"node-{i}", "", time.time())
            self.leases.append(await self.request(
                "POST", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases", lease,
                agent=SKIFF_AGENT))

    async def setup_node(self, controllers: bool) -> None:
        """The real node of ``podstart``: registered, Ready, its lease renewed (a task)."""
        from skiff.kubelet.node_status import NodeSpec, node_lease, node_object

        spec = NodeSpec(NODE, internal_ip="10.0.0.1", container_runtime_version="runc://1.1")
        node = node_object(spec, time.time())
        created = await self.request("POST", "/api/v1/nodes", node, agent=SKIFF_AGENT)
        await self.request("PATCH", f"/api/v1/nodes/{NODE}/status", {"status": node["status"]},
                           agent=SKIFF_AGENT, content_type="application/merge-patch+json")
        lease = await self.request(
            "POST", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases",
            node_lease(NODE, created["metadata"]["uid"], time.time()), agent=SKIFF_AGENT)
        self._watches.append(asyncio.create_task(self._renew(lease)))
        # The pods' service account, made by the service-account controller (or here).
        if not controllers:
            await self.request("POST", f"/api/v1/namespaces/{NS}/serviceaccounts",
                               {"metadata": {"name": "default"}})
        path = f"/api/v1/namespaces/{NS}/serviceaccounts/default"
        for _ in range(200):
            with contextlib.suppress(RuntimeError):
                await self.request("GET", path)
                return
            await asyncio.sleep(0.05)  # a one-off wait for the controller
        raise RuntimeError("the service-account controller made no default account")

    async def _renew(self, lease: dict[str, Any]) -> None:
        """Renew the node's lease like its agent (every 10 s), so it stays Ready."""
        from skiff.kubelet.node_status import micro_timestamp

        while True:
            await asyncio.sleep(10)
            body = dict(lease, spec=dict(lease["spec"], renewTime=micro_timestamp(time.time())))
            lease = await self.request(
                "PUT", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{NODE}", body,
                agent=SKIFF_AGENT)

    # -- the operations: each returns the coroutine factories of one phase --

    def op_create(self, run: int, count: int) -> list[Any]:
        names = [f"p{run}-{i}" for i in range(count)]

        def call(name: str) -> Any:
            async def go() -> None:
                self.pods[name] = await self.request("POST", f"/api/v1/namespaces/{NS}/pods",
                                                     pod_body(name))
            return go
        return [call(n) for n in names]

    def _run_pods(self, run: int) -> list[str]:
        prefix = f"p{run}-"
        return [n for n in self.pods if n.startswith(prefix)]

    async def _bind(self, name: str, node: str) -> None:
        """POST pods/<name>/binding, as the scheduler does."""
        await self.request("POST", f"/api/v1/namespaces/{NS}/pods/{name}/binding",
                           {"apiVersion": "v1", "kind": "Binding",
                            "metadata": {"name": name, "namespace": NS},
                            "target": {"kind": "Node", "name": node}}, agent=SKIFF_AGENT)
        self.pods[name]["spec"]["nodeName"] = node

    def op_binding(self, run: int, count: int) -> list[Any]:
        return [functools.partial(self._bind, n, f"node-{i % NODES}")
                for i, n in enumerate(self._run_pods(run)[:count])]

    def op_status(self, run: int, count: int) -> list[Any]:
        from skiff.kubelet.fake_pods import running_status

        def call(i: int, name: str) -> Any:
            async def go() -> None:
                pod = self.pods[name]
                status = running_status(pod, host_ip=f"10.0.0.{i % NODES + 1}",
                                        pod_ip=f"10.244.{i // 250}.{i % 250 + 1}", started_at=time.time())
                await self.request("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}/status",
                                   {"metadata": {"uid": pod["metadata"]["uid"]}, "status": status},
                                   agent=SKIFF_AGENT, content_type="application/merge-patch+json")
            return go
        return [call(i, n) for i, n in enumerate(self._run_pods(run)[:count])]

    def op_event(self, run: int, count: int) -> list[Any]:
        from skiff.apiserver.objects import format_time

        def call(i: int, name: str) -> Any:
            async def go() -> None:
                body = event_body(self.pods[name], f"node-{i % NODES}", format_time(time.time()),
                                  time.time_ns())
                await self.request("POST", f"/api/v1/namespaces/{NS}/events", body, agent=SKIFF_AGENT)
            return go
        return [call(i, n) for i, n in enumerate(self._run_pods(run)[:count])]

    def op_lease(self, run: int, count: int) -> list[Any]:
        from skiff.kubelet.node_status import micro_timestamp

        # Each lease is renewed by one writer at a time (its node), as in the cluster.
        per_lease = [[j for j in range(count) if j % NODES == i] for i in range(NODES)]

        def renew_all(i: int, times: int) -> Any:
            async def go() -> None:
                for _ in range(times):
                    lease = self.leases[i]
                    body = dict(lease, spec=dict(lease["spec"], renewTime=micro_timestamp(time.time()),
                                                 holderIdentity=lease["metadata"]["name"]))
                    self.leases[i] = await self.request(
                        "PUT", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/"
                        f"{lease['metadata']['name']}", body, agent=SKIFF_AGENT)
            return go
        return [renew_all(i, len(js)) for i, js in enumerate(per_lease) if js]


    # -- podstart: one pod's start on the real node, a step (phase) at a time --

    def _started(self, run: int) -> list[str]:
        prefix = f"s{run}-"
        return [n for n in self.pods if n.startswith(prefix)]

    def podstart_create(self, run: int, count: int) -> list[Any]:
        def call(name: str) -> Any:
            async def go() -> None:
                self.pods[name] = await self.request("POST", f"/api/v1/namespaces/{NS}/pods",
                                                     busybox_pod(name))
            return go
        return [call(f"s{run}-{i}") for i in range(count)]

    def podstart_binding(self, run: int, count: int) -> list[Any]:
        return [functools.partial(self._bind, n, NODE) for n in self._started(run)]

    def _events(self, run: int, reasons: tuple[tuple[str, str, str], ...]) -> list[Any]:
        from skiff.apiserver.objects import format_time

        def call(name: str) -> Any:
            async def go() -> None:
                for reason, message, component in reasons:
                    now = time.time()
                    body = event_body(self.pods[name], NODE, format_time(now), time.time_ns())
                    body.update(reason=reason, message=message.format(ns=NS, name=name, node=NODE),
                                source={"component": component}, reportingComponent=component)
                    if component == "kubelet":
                        body["source"]["host"] = NODE
                        body["involvedObject"]["fieldPath"] = "spec.containers{main}"
                        body["reportingInstance"] = NODE
                    await self.request("POST", f"/api/v1/namespaces/{NS}/events", body,
                                       agent=SKIFF_AGENT)
            return go
        return [call(n) for n in self._started(run)]

    def podstart_scheduled(self, run: int, count: int) -> list[Any]:
        return self._events(run, (("Scheduled", "Successfully assigned {ns}/{name} to {node}",
                                   "default-scheduler"),))

    def podstart_token(self, run: int, count: int) -> list[Any]:
        def call(name: str) -> Any:
            async def go() -> None:
                pod = self.pods[name]
                meta, spec = pod["metadata"], pod["spec"]
                projection = next(s["serviceAccountToken"] for v in spec.get("volumes") or []
                                  for s in (v.get("projected") or {}).get("sources") or []
                                  if "serviceAccountToken" in s)
                request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
                    "audiences": [], "expirationSeconds": int(projection["expirationSeconds"]),
                    "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name,
                                       "uid": meta["uid"]}}}
                await self.request(
                    "POST", f"/api/v1/namespaces/{NS}/serviceaccounts/"
                    f"{spec['serviceAccountName']}/token", request, agent=SKIFF_AGENT)
            return go
        return [call(n) for n in self._started(run)]

    def podstart_events(self, run: int, count: int) -> list[Any]:
        return self._events(run, (
            ("Pulled", f'Container image "{IMAGE}" already present on machine', "kubelet"),
            ("Created", "Created container main", "kubelet"),
            ("Started", "Started container main", "kubelet")))

    def podstart_status(self, run: int, count: int) -> list[Any]:
        from skiff.kubelet.runtime.interface import ContainerState, ContainerStatus
        from skiff.kubelet.status import ContainerView, pod_status

        def call(i: int, name: str) -> Any:
            async def go() -> None:
                pod = self.pods[name]
                now = time.time()
                when = datetime.fromtimestamp(now, timezone.utc)
                cid = f"{i:064x}"
                current = ContainerStatus(id=cid, sandbox_id=f"{i + 1:064x}", name="main",
                                          state=ContainerState.RUNNING, image=f"docker.io/library/{IMAGE}",
                                          image_id=f"sha256:{'b' * 64}", created_at=when, started_at=when)
                view = ContainerView(name="main", image=f"docker.io/library/{IMAGE}", current=current,
                                     ready=True, started=True, image_id=f"sha256:{'b' * 64}")
                status = pod_status(pod, init=[], regular=[view], sandbox_ready=True, initialized=True,
                                    pod_ips=[f"10.244.0.{i % 250 + 2}"], host_ips=["10.0.0.1"],
                                    start_time=now, now=now)
                await self.request("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}/status",
                                   {"metadata": {"uid": pod["metadata"]["uid"]}, "status": status},
                                   agent=SKIFF_AGENT, content_type="application/merge-patch+json")
            return go
        return [call(i, n) for i, n in enumerate(self._started(run))]

    def podstart_delete(self, run: int, count: int) -> list[Any]:
        def call(name: str) -> Any:
            async def go() -> None:
                await self.request("DELETE", f"/api/v1/namespaces/{NS}/pods/{name}",
                                   {"gracePeriodSeconds": 0})
                del self.pods[name]
            return go
        return [call(n) for n in self._started(run)]


def busybox_pod(name: str) -> dict[str, Any]:
    """The pod bench/podstartup.py starts."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"bench": "podstartup"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                "command": ["sleep", "36000"]}]}}


def needed_phases(ops: list[str]) -> list[str]:
    """``ops`` and the phases before them they need: pods (create), bound ones (binding)."""
    wanted = set(ops) - {"podstart"}
    if wanted & {"binding", "status", "event"}:
        wanted.add("create")
    if "status" in wanted:
        wanted.add("binding")  # a kubelet reports on pods bound to its node
    return [op for op in OPS if op in wanted]


async def measure(server: Server, args: argparse.Namespace) -> dict[str, list[float]]:
    load = Load(server, args.concurrency)
    figures: dict[str, list[float]] = {op: [] for op in args.ops if op != "podstart"}
    if "podstart" in args.ops:
        figures["podstart"] = []
        figures.update({f"podstart:{step}": [] for step in podstart_steps(server)})
    try:
        await load.setup()
        if "podstart" in args.ops:
            await load.setup_node(controllers=server.controllers)
        await load.open_watches(PODSTART_WATCHES if "podstart" in args.ops else WATCHES)
        phases = needed_phases(args.ops)
        for run in range(args.runs):
            if "podstart" in args.ops:
                total = 0.0
                for step in (*podstart_steps(server), "delete"):
                    calls = getattr(load, f"podstart_{step}")(run, args.count)
                    profiled = bool(args.cprofile) and step in args.profile_steps
                    spent = await phase(load, server, calls, profiled)
                    if step != "delete":
                        figures[f"podstart:{step}"].append(spent / args.count * 1e6)
                        total += spent
                figures["podstart"].append(total / args.count * 1e6)
            for op in phases:  # the measured ones, and those making the pods they need
                calls = getattr(load, f"op_{op}")(run, args.count)
                measured = op in args.ops
                spent = await phase(load, server, calls, bool(measured and args.cprofile),
                                    together=op == "lease")
                if measured:
                    figures[op].append(spent / args.count * 1e6)
    finally:
        await load.close()
    return figures


def podstart_steps(server: Server) -> tuple[str, ...]:
    """The steps of ``podstart``; without authentication (``--plain``) pods get no
    service-account token, so there is no TokenRequest."""
    return tuple(step for step in PODSTART if step != "token" or not server.plain)


async def phase(load: Load, server: Server, calls: list[Any], profile: bool, *,
                together: bool = False) -> float:
    """Run one phase's calls; the server CPU seconds it took (its watches' fan-out included).
    ``together``: every call at once (a few writers each doing their share in turn)."""
    await load.quiet()
    if profile:
        server.ask("profile")
    before = server.cpu()
    if together:
        await asyncio.gather(*(c() for c in calls))
    else:
        await load.many(calls)
    await load.quiet()
    spent = server.cpu() - before
    if profile:
        server.ask("unprofile")
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="operations of each kind per run")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--ops", default=",".join(op for op in OPS if op != "podstart"),
                        help="measure these (comma-separated; podstart only when named: "
                             "it changes the server's setting)")
    parser.add_argument("--plain", action="store_true", help="HTTP without authentication")
    parser.add_argument("--no-controllers", action="store_true",
                        help="podstart: without the controller manager in the server process")
    parser.add_argument("--cprofile", metavar="FILE", help="profile the measured phases of the server")
    parser.add_argument("--top", type=int, default=30, help="functions printed with --cprofile")
    parser.add_argument("--profile-steps", default=",".join(PODSTART),
                        help="podstart: the steps --cprofile profiles (comma-separated)")
    args = parser.parse_args(argv)
    args.ops = [op for op in args.ops.split(",") if op]
    args.profile_steps = [step for step in args.profile_steps.split(",") if step]
    unknown = set(args.ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    controllers = "podstart" in args.ops and not args.no_controllers
    if controllers and args.plain:
        parser.error("podstart runs the controllers over HTTPS: add --no-controllers to --plain")
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-writes-"))
    server = None
    try:
        server = Server(data, args.plain, controllers)
        figures = asyncio.run(measure(server, args))
        if args.cprofile:
            server.ask("dump", str(Path(args.cprofile).resolve()))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)
    mode = "HTTP" if args.plain else "HTTPS+auth"
    setting = "controllers, 4 watches" if controllers else \
        ("4 watches" if "podstart" in args.ops else "3 watches")
    print(f"server CPU per operation ({mode}, {args.count} ops x {args.runs} runs, "
          f"concurrency {args.concurrency}, {setting})")
    print(f"{'operation':<18} {'median us/op':>12} {'min':>8} {'max':>8}")
    for op, values in figures.items():
        print(f"{op:<18} {statistics.median(values):12.0f} {min(values):8.0f} {max(values):8.0f}")
    if args.cprofile:
        out = io.StringIO()
        stats = pstats.Stats(args.cprofile, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
