"""The ``skiff`` command.

    skiff up      [--data-dir DIR] [--port N] [--runtime runc|process|fake] [--nodes N]
                  [--node-config FILE]
                  the whole cluster in one process, in the foreground
    skiff server  [--data-dir DIR] [--port N]
                  the control plane only (API server, store, scheduler, controllers)
    skiff image   import FILE [--name REF] | ls | rm REF   [--data-dir DIR]
                  the node's local image store

Both write ``DIR/kubeconfig`` (admin) once the API answers and print the line
``export KUBECONFIG=DIR/kubeconfig``.  SIGINT/SIGTERM stop them cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from pathlib import Path

from .. import __version__
from .cluster import ClusterConfig, run_until_signalled
from .image import add_image_commands

RUNTIMES = ("runc", "process", "fake")
AVAILABLE_RUNTIMES = ("runc", "process", "fake")
#: Allocations between two young-generation passes of the cyclic garbage collector.
#: Python's default, 700, means a pass every few dozen API writes (each allocates
#: hundreds of dicts and lists); measured under a create load, 10,000 cuts the
#: collector's share of a write from ~30 us to ~7 us.
GC_YOUNG_THRESHOLD = 10_000


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=Path(".data"),
                   help="where state, certificates and the kubeconfig live (default: .data)")
    p.add_argument("--host", default="127.0.0.1", help="address the API server binds (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="API server port; 0 picks a free one")
    p.add_argument("--compact-retain", type=int, default=10_000, metavar="N",
                   help="keep the last N revisions of history for watches (default 10000)")
    p.add_argument("--scheduler-config", type=Path, default=None, metavar="FILE",
                   help="a KubeSchedulerConfiguration file (profiles, plugins, weights)")
    p.add_argument("--controllers", default=None, metavar="LIST",
                   help="controllers to run, comma-separated: '*' all (default), '-name' disables one")
    p.add_argument("--log-level", default="INFO")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skiff", description="Kubernetes, rebuilt in Python.")
    parser.add_argument("--version", action="version", version=f"skiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run a whole cluster in the foreground")
    _common(up)
    up.add_argument("--runtime", choices=RUNTIMES, default=None,
                    help="how nodes run pods: 'runc' (real containers; the default as root "
                         "with runc installed), 'process' (pods as processes of this user, no "
                         "root needed; the default otherwise) or 'fake' (simulated nodes, like KWOK)")
    up.add_argument("--nodes", type=int, default=None,
                    help="number of nodes (default 1, or as many as --node-config describes; "
                         "more than one needs --runtime fake)")
    up.add_argument("--node-config", type=Path, default=None, metavar="FILE",
                    help="simulated nodes (--runtime fake): groups with count, capacity, labels, "
                         "taints, zones (YAML; see skiff.kubelet.fakeconfig)")
    up.add_argument("--eviction-hard", default=None, metavar="LIST",
                    help="the real node's hard eviction thresholds, as the kubelet's flag "
                         "(default memory.available<100Mi,nodefs.available<10%%,"
                         "imagefs.available<15%%,nodefs.inodesFree<5%%)")
    up.add_argument("--eviction-soft", default="", metavar="LIST",
                    help="soft thresholds, e.g. memory.available<500Mi")
    up.add_argument("--eviction-soft-grace-period", default="", metavar="LIST",
                    help="how long each soft threshold must hold, e.g. memory.available=1m30s")
    up.add_argument("--eviction-pressure-transition-period", default="5m", metavar="DURATION",
                    help="how long a pressure condition stays after its threshold clears")
    up.add_argument("--ingress-http-port", type=int, default=None, metavar="N",
                    help="port of the built-in ingress controller's HTTP listener (default 80 "
                         "as root, else 8080; 0 picks a free one; -1 turns the controller off)")
    up.add_argument("--ingress-https-port", type=int, default=None, metavar="N",
                    help="its HTTPS listener (default 443 as root, else 8443; 0 picks a free one)")

    server = sub.add_parser("server", help="run the control plane only")
    _common(server)

    add_image_commands(sub)
    return parser


def _ingress_ports(args: argparse.Namespace) -> dict[str, int | None]:
    """``skiff up``'s ingress listeners: privileged ports only for root (like k3s's Traefik)."""
    if args.command != "up" or getattr(args, "ingress_http_port", None) == -1:
        return {"ingress_http_port": None, "ingress_https_port": None}
    root = os.geteuid() == 0
    http = args.ingress_http_port
    https = args.ingress_https_port
    return {"ingress_http_port": (80 if root else 8080) if http is None else http,
            "ingress_https_port": (443 if root else 8443) if https is None else https}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "image":
        return int(args.handler(args))
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = getattr(args, "runtime", None)
    if args.command == "up" and runtime is None:
        from .node import runc_available

        runtime = "runc" if runc_available() else "process"
    if runtime in ("runc", "process") and (args.nodes not in (None, 1) or args.node_config):
        print(f"skiff: --runtime {runtime} runs one node for now; use --runtime fake for more",
              file=sys.stderr)
        return 2
    if runtime is not None and runtime not in AVAILABLE_RUNTIMES:
        print(f"skiff: runtime {runtime!r} is not available yet (available: "
              f"{', '.join(AVAILABLE_RUNTIMES)})", file=sys.stderr)
        return 2
    fake_nodes = None
    if runtime == "fake":
        from ..kubelet.fakeconfig import NodeConfigError, default_node_config, load_node_config
        try:
            fake_nodes = (load_node_config(args.node_config, nodes=args.nodes) if args.node_config
                          else default_node_config(1 if args.nodes is None else args.nodes))
        except NodeConfigError as e:
            print(f"skiff: {e}", file=sys.stderr)
            return 2
    eviction = None
    if runtime == "runc":
        from ..kubelet.eviction import EvictionConfig
        try:
            eviction = EvictionConfig.from_flags(
                eviction_hard=args.eviction_hard, eviction_soft=args.eviction_soft,
                eviction_soft_grace_period=args.eviction_soft_grace_period,
                eviction_pressure_transition_period=args.eviction_pressure_transition_period)
        except ValueError as e:
            print(f"skiff: {e}", file=sys.stderr)
            return 2
    config = ClusterConfig(
        data_dir=args.data_dir.resolve(),
        host=args.host,
        port=args.port,
        runtime=runtime,
        nodes=(fake_nodes.count if fake_nodes is not None else 1) if runtime else 0,
        fake_nodes=fake_nodes,
        compact_retain=args.compact_retain,
        scheduler_config=args.scheduler_config,
        controllers=tuple(args.controllers.split(",")) if args.controllers else None,
        eviction=eviction,
        **_ingress_ports(args),
    )
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio also works
        pass
    tune_gc()
    return asyncio.run(run_until_signalled(config))


def tune_gc() -> None:
    """Set the cyclic garbage collector up for a long-running server.

    Everything imported so far (modules, classes, functions: ~85% of the objects
    a started cluster holds) lives as long as the process, so it is frozen out of
    the collector's full passes, which otherwise walk it all (~40 ms each here) in
    the middle of serving.  Young collections run less often (``GC_YOUNG_THRESHOLD``).
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


if __name__ == "__main__":
    sys.exit(main())
