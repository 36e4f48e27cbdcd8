"""One whole cluster: what ``skiff up`` runs (like k3s).

Start order (stop is the reverse)::

    store (sqlite, data-dir/state.db)
      └─ API server (HTTPS, data-dir/pki) ─ kubeconfig written (readyz answers from here)
           └─ components, each a client of the API over loopback HTTPS as admin:
              scheduler, controller manager, load balancer, and either simulated
              nodes (--runtime fake) or one real node (--runtime runc, see node.py;
              or --runtime process without root, see process_node.py)
                └─ node(s) registered ─ "export KUBECONFIG=..." printed

Components only talk to the API server, exactly as they would across machines.
The store, the API server and the controllers are asyncio tasks of this process;
with ``processes`` (the ``skiff up`` default on a machine with more than one
core) the scheduler and the node agent are child processes (``python -m
skiff.scheduler``, ``skiff agent``: see children.py), so that they, the API server
and the containers' setup use more than one core.  Without it they are tasks here
too.  :class:`Cluster` is also usable from tests (``async with Cluster(cfg)``).

Cold start: the API server answers as soon as it listens; each component's
modules are imported on a worker thread by the component's own task, so the
loop keeps serving (``/readyz`` first of all) while they load.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Coroutine

from ..apiserver.app import CONTEXT, make_app
from ..apiserver.auth.gate import AuthOptions
from ..apiserver.pki import ClusterPKI, ensure_pki
from ..apiserver.proxy import install_proxy
from ..apiserver.server import ServingHandle, serve
from ..apiserver.streaming import install_streaming
from ..storage.sqlite import SqliteBackend
from .children import ComponentExited, ComponentProcess
from .eventloop import freeze_long_lived
from .kubeconfig import write_admin_kubeconfig

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..apiserver.context import ServerContext
    from ..client.factory import InformerFactory
    from ..client.rest import ApiClient
    from ..kubelet.eviction import EvictionConfig
    from ..kubelet.fakeconfig import FakeNodesConfig

log = logging.getLogger("skiff")
#: How long `skiff up` waits for its simulated nodes to register before giving up.
NODES_REGISTER_TIMEOUT = 60.0
#: ... plus this much per simulated node.
NODE_REGISTER_SECONDS = 0.1
#: Seconds a node agent process gets to take its node down before it is killed
#: (its containers get node.STOP_GRACE each, all at once).
AGENT_STOP_GRACE = 30.0
SCHEDULER_STOP_GRACE = 5.0


@dataclass(frozen=True)
class ClusterConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    runtime: str | None = "fake"  # None: control plane only (skiff server)
    nodes: int = 1
    compact_retain: int = 10_000
    extra_sans: tuple[str, ...] = field(default_factory=tuple)
    scheduler_config: Path | None = None  # a KubeSchedulerConfiguration file
    controllers: tuple[str, ...] | None = None  # --controllers semantics; None = all
    node_name: str = "skiff-node-0"  # the real node's name (--runtime runc)
    fake_nodes: "FakeNodesConfig | None" = None  # --runtime fake: the nodes' shapes (None: `nodes` default nodes)
    eviction: "EvictionConfig | None" = None  # the real node's node-pressure eviction (None: defaults)
    ingress_http_port: int | None = None   # the built-in ingress controller (None: not run)
    ingress_https_port: int | None = None
    #: The scheduler and the node agent as child processes (else tasks of this process).
    processes: bool = False
    #: ``skiff agent``'s node flags (``--runtime`` ...) when ``processes`` is on.
    agent_args: tuple[str, ...] = ()
    #: Seconds between the metrics server's scrapes of the kubelets (metrics-server's
    #: ``--metric-resolution``).
    metric_resolution: float = 15.0
    #: The horizontal pod autoscaler (kube-controller-manager's
    #: ``--horizontal-pod-autoscaler-sync-period`` / ``-downscale-stabilization``).
    hpa_sync_period: float = 15.0
    hpa_downscale_stabilization: float = 300.0

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"


class Cluster:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.pki: ClusterPKI | None = None
        self.backend: SqliteBackend | None = None
        self.serving: ServingHandle | None = None
        self._components: list[asyncio.Task[None]] = []
        self._client: ApiClient | None = None  # the in-process components' client
        #: the informers of the in-process components (controllers, metrics server): one
        #: pod watch for all of them; run by the controller manager
        self._informers: InformerFactory | None = None
        #: Set when a component ends on its own (a crash): ``skiff up`` then stops, exit 1.
        self.failed = asyncio.Event()
        self._stopping = False
        self._optional: set[str] = set()  # components whose clean end is not a failure
        #: The ingress controller's listeners once bound: (http URL, https URL).
        self.ingress_urls: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        assert self.serving is not None
        return self.serving.url

    async def start(self) -> None:
        cfg = self.config
        started = time.perf_counter()
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.pki = ensure_pki(cfg.data_dir / "pki", hosts=(cfg.host, *cfg.extra_sans))
        compact_interval = 1.0 if cfg.compact_retain < 1000 else 60.0
        self.backend = SqliteBackend(str(cfg.data_dir / "state.db"),
                                     retain_revisions=cfg.compact_retain,
                                     compact_interval=compact_interval)
        await self.backend.start()
        # Authentication (client certificates, ServiceAccount tokens) and RBAC, as Kubernetes.
        app = make_app(self.backend, auth=AuthOptions.from_pki(self.pki))
        install_streaming(app, kubelet_scheme="http")  # kubelets listen on loopback
        install_proxy(app)                             # pods/, services/, nodes/ proxy
        self.serving = await serve(app, host=cfg.host, port=cfg.port,
                                   ssl_context=self.pki.server_ssl_context())
        write_admin_kubeconfig(cfg.kubeconfig, self.url, self.pki)
        log.info("API server listening on %s (ready in %.0f ms)", self.url,
                 (time.perf_counter() - started) * 1000)
        self._start_control_plane_components()
        self._start_component("metrics-server", self._metrics_server(app[CONTEXT]))
        self._serve_component_statuses(app[CONTEXT])
        if cfg.runtime != "runc":      # a runc node points it at its relay instead (node.py)
            self._start_component("api-endpoints", self._publish_api_endpoints(), optional=True)
        if cfg.runtime is not None and cfg.processes and (cfg.runtime != "fake" or cfg.nodes > 0):
            await self._start_agent_process()
        elif cfg.runtime == "fake" and cfg.nodes > 0:
            registered = asyncio.Event()
            self._start_component("fake-nodes", self._fake_nodes(registered))
            # Announce the cluster once `kubectl get nodes` lists every node.
            # (A thousand simulated nodes take a while: a Node, its status and a Lease each.)
            await self._await_component(self._components[-1], registered, self._register_timeout())
        elif cfg.runtime == "runc":
            from .node import run_runc_node

            node_started = asyncio.Event()
            self._start_component("node", run_runc_node(
                self._api_client(), data_dir=cfg.data_dir, node_name=cfg.node_name,
                started=node_started, eviction=cfg.eviction))
            # The node has registered (and adopted what survived a crash) before users come.
            await self._await_component(self._components[-1], node_started, NODES_REGISTER_TIMEOUT)
        elif cfg.runtime == "process":
            from .process_node import run_process_node

            node_started = asyncio.Event()
            self._start_component("node", run_process_node(
                self._api_client(), data_dir=cfg.data_dir, node_name=cfg.node_name,
                started=node_started))
            await self._await_component(self._components[-1], node_started, NODES_REGISTER_TIMEOUT)
        if cfg.runtime in ("runc", "process"):
            await self._label_control_plane_node()
        if cfg.ingress_http_port is not None and cfg.runtime is not None:
            await self._start_ingress()

    async def _label_control_plane_node(self) -> None:
        """The one real node runs beside the control plane: ``kubectl get nodes`` shows its
        role as ``control-plane``, as on a kind, minikube or k3s node (no taint: pods run there)."""
        from ..api.errors import StatusError
        from ..client.resources import NODES
        from ..client.rest import TransportError

        try:
            await self._api_client().patch(NODES, self.config.node_name, {"metadata": {"labels": {
                "node-role.kubernetes.io/control-plane": ""}}})
        except (StatusError, TransportError) as e:
            log.warning("could not label node %s: %s", self.config.node_name, e)

    def _register_timeout(self) -> float:
        if self.config.runtime == "fake":
            return NODES_REGISTER_TIMEOUT + NODE_REGISTER_SECONDS * self.config.nodes
        return NODES_REGISTER_TIMEOUT

    async def _start_agent_process(self) -> None:
        """``skiff agent`` as a child process; the cluster is announced once it registered."""
        cfg = self.config
        agent = ComponentProcess(
            "node-agent", "skiff.cli.main",
            ("agent", "--kubeconfig", str(cfg.kubeconfig), "--node-name", cfg.node_name,
             *cfg.agent_args), signals_ready=True)
        # Stopping a real node removes its containers (each with a grace period) and network.
        self._start_component("node-agent", self._supervise(agent, stop_grace=AGENT_STOP_GRACE))
        await self._await_component(self._components[-1], agent.ready, self._register_timeout())

    async def _supervise(self, child: ComponentProcess, *, stop_grace: float) -> None:
        """Run ``child`` until cancelled (then stop it); its exit on its own is a failure."""
        await child.start()
        try:
            code = await asyncio.shield(child.exited)
        except asyncio.CancelledError:
            await child.stop(stop_grace)
            raise
        raise ComponentExited(f"exited with code {code}")

    def _api_client(self) -> "ApiClient":
        from ..client.rest import ApiClient

        if self._client is None:
            assert self.pki is not None
            self._client = ApiClient(self.url, ssl_context=self.pki.admin_ssl_context(),
                                     user_agent="skiff-up")
        return self._client

    def _shared_informers(self) -> "InformerFactory":
        from ..client.factory import InformerFactory

        if self._informers is None:
            self._informers = InformerFactory(self._api_client())
        return self._informers

    def _start_component(self, name: str, coro: "Coroutine[Any, Any, None]", *,
                          optional: bool = False) -> None:
        if optional:
            self._optional.add(name)
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._component_ended)
        self._components.append(task)

    def _component_ended(self, task: "asyncio.Task[None]") -> None:
        """A component that stops on its own has failed: say why at once and stop the cluster."""
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if isinstance(error, ComponentExited):
            log.error("component %s %s", task.get_name(), error)
        elif error is not None:
            log.error("component %s failed", task.get_name(), exc_info=error)
        elif task.get_name() in self._optional:
            return
        else:
            log.error("component %s stopped", task.get_name())
        self.failed.set()

    def _start_control_plane_components(self) -> None:
        profiles = None
        if self.config.scheduler_config:  # a bad file fails the start, here and now
            from ..scheduler.profile import load_config

            profiles = load_config(self.config.scheduler_config)
        client = self._api_client()
        if self.config.processes:
            args = ["--kubeconfig", str(self.config.kubeconfig),
                    "--log-level", logging.getLevelName(logging.getLogger().level)]
            if self.config.scheduler_config:
                args += ["--config", str(self.config.scheduler_config.resolve())]
            self._start_component("scheduler", self._supervise(
                ComponentProcess("scheduler", "skiff.scheduler", args), stop_grace=SCHEDULER_STOP_GRACE))
        else:
            self._start_component("scheduler", self._scheduler(client, profiles))
        self._start_component("controller-manager", self._controller_manager(client))
        self._start_component("load-balancer", self._load_balancer(client))

    async def _start_ingress(self) -> None:
        """The built-in ingress controller (like k3s's Traefik), announced once listening."""
        ready = asyncio.Event()
        self._start_component("ingress", self._ingress(self._api_client(), ready), optional=True)
        await self._await_component(self._components[-1], ready, NODES_REGISTER_TIMEOUT)

    async def _ingress(self, client: "ApiClient", ready: asyncio.Event) -> None:
        run_ingress = await _load("skiff.proxy.ingress", "run_ingress_controller")
        cfg = self.config
        assert cfg.ingress_http_port is not None and cfg.ingress_https_port is not None

        def listening(http: int, https: int) -> None:
            self.ingress_urls = (f"http://{cfg.host}:{http}", f"https://{cfg.host}:{https}")

        try:
            await run_ingress(client, host=cfg.host, http_port=cfg.ingress_http_port,
                              https_port=cfg.ingress_https_port, ready=ready,
                              on_listening=listening)
        except OSError as e:  # a port taken by another server must not take the cluster down
            log.warning("ingress controller not started: %s (choose other ports with "
                        "--ingress-http-port/--ingress-https-port)", e)
            ready.set()

    async def _scheduler(self, client: "ApiClient", profiles: Any) -> None:
        run_scheduler = await _load("skiff.scheduler.scheduler", "run_scheduler")
        await run_scheduler(client, profiles=profiles)

    async def _controller_manager(self, client: "ApiClient") -> None:
        run_controllers = await _load("skiff.controllers.manager", "run_controllers")
        controllers = await _load("skiff.controllers.manager", "CONTROLLERS")
        publisher = await _load("skiff.controllers.serviceaccount", "RootCACertPublisher")
        assert self.pki is not None
        ca_pem = self.pki.ca_cert.read_text()
        # kube-root-ca.crt in every namespace needs the CA, which only the cluster knows.
        with_volumes_dir = await _load("skiff.controllers.persistentvolume", "with_volumes_dir")
        # Provisioned volumes live in the data dir, like the rest of the cluster's state.
        known = (*with_volumes_dir(controllers, self.config.data_dir / "volumes"),
                 ("root-ca-cert-publisher", functools.partial(publisher, ca_pem=ca_pem)))
        with_hpa_settings = await _load("skiff.controllers.podautoscaler", "with_hpa_settings")
        known = with_hpa_settings(known, sync_period=self.config.hpa_sync_period,
                                  downscale_stabilization=self.config.hpa_downscale_stabilization)
        await run_controllers(client, enabled=self.config.controllers, known=known,
                              informers=self._shared_informers())

    async def _publish_api_endpoints(self) -> None:
        """``default/kubernetes`` Endpoints: this API server's own address, as kube-apiserver does."""
        import ipaddress

        from ..api.errors import StatusError
        from ..client.rest import TransportError
        from .apirelay import publish_api_endpoints

        host = self.config.host
        try:
            if ipaddress.ip_address(host).is_unspecified:    # bound to every address
                host = "127.0.0.1"
        except ValueError:
            return                                           # a name, not an address
        try:
            await publish_api_endpoints(self._api_client(), host, int(self.url.rsplit(":", 1)[1]))
        except (StatusError, TransportError) as e:
            log.warning("could not publish the kubernetes Service's endpoints: %s", e)

    def _serve_component_statuses(self, ctx: "ServerContext") -> None:
        """``kubectl get componentstatuses``: this cluster's scheduler, controllers and store."""
        from .componentstatus import ComponentStatuses

        def running(name: str) -> "Callable[[], Awaitable[str | None]]":
            async def check() -> str | None:
                task = next((t for t in self._components if t.get_name() == name), None)
                return None if task is not None and not task.done() else f"{name} is not running"
            return check

        async def store() -> str | None:
            assert self.backend is not None
            await self.backend.get("/registry/namespaces/default")   # answers a read
            return None

        ctx.read_only[("", "componentstatuses")] = ComponentStatuses({
            "scheduler": running("scheduler"), "controller-manager": running("controller-manager"),
            "etcd-0": store})

    async def _metrics_server(self, ctx: "ServerContext") -> None:
        """Scrapes the kubelets; the API server serves metrics.k8s.io from it (kubectl top, HPA)."""
        metrics_server = await _load("skiff.metrics.server", "MetricsServer")
        server = metrics_server(self._api_client(), resolution=self.config.metric_resolution,
                                kubelet_scheme="http",  # kubelets listen on loopback
                                informers=self._shared_informers())
        sources = {("metrics.k8s.io", "nodes"): server.nodes, ("metrics.k8s.io", "pods"): server.pods}
        ctx.read_only.update(sources)
        try:
            await server.run()
        finally:
            for key in sources:
                ctx.read_only.pop(key, None)

    async def _load_balancer(self, client: "ApiClient") -> None:
        """Like k3s's ServiceLB: LoadBalancer Services get the nodes' addresses."""
        run_lb = await _load("skiff.proxy.loadbalancer", "run_load_balancer_controller")
        await run_lb(client)

    async def _await_component(self, task: "asyncio.Task[None]", ready: asyncio.Event,
                               timeout: float) -> None:
        """Wait until ``ready`` is set; raise if ``task`` ends first or ``timeout`` passes."""
        waiter = asyncio.ensure_future(ready.wait())
        try:
            done, _ = await asyncio.wait({waiter, task}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if ready.is_set():
            return
        if task in done:
            task.result()  # re-raises the component's failure
            raise RuntimeError(f"{task.get_name()} stopped before it was ready")
        raise RuntimeError(f"{task.get_name()} not ready after {timeout:.0f}s")

    async def _fake_nodes(self, registered: asyncio.Event) -> None:
        run_fake_nodes = await _load("skiff.kubelet.fake", "run_fake_nodes")
        default_node_config = await _load("skiff.kubelet.fakeconfig", "default_node_config")
        nodes = self.config.fake_nodes or default_node_config(self.config.nodes)
        await run_fake_nodes(self._api_client(), nodes.count, specs=nodes.specs,
                             failing_images=nodes.failing_images, registered=registered)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._components:
            task.cancel()
        for task in self._components:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a component that crashed already logged; keep shutting down
                pass
        self._components.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self.serving is not None:
            await self.serving.close()
            self.serving = None
        if self.backend is not None:
            await self.backend.close()
            self.backend = None

    async def __aenter__(self) -> "Cluster":
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _load(module: str, name: str) -> Any:
    """``module.name``, imported on a worker thread (the event loop keeps serving meanwhile)."""
    loaded = await asyncio.to_thread(importlib.import_module, module)
    return getattr(loaded, name)


async def run_until_signalled(config: ClusterConfig) -> int:
    """Run the cluster until SIGINT/SIGTERM; return the process exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Cluster(config) as cluster:
        print(f"skiff is up: {cluster.url}", flush=True)
        if cluster.ingress_urls is not None:
            print(f"ingress: {cluster.ingress_urls[0]} {cluster.ingress_urls[1]}", flush=True)
        print(f"export KUBECONFIG={config.kubeconfig}", flush=True)
        freeze_long_lived()
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(cluster.failed.wait())
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        failed.cancel()
        log.info("stopping")
    return 1 if cluster.failed.is_set() else 0
