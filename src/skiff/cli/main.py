"""The ``skiff`` command.

    skiff up      [--data-dir DIR] [--port N] [--runtime runc|process|fake] [--nodes N]
                  [--node-config FILE] [--single-process]
                  the whole cluster, in the foreground
    skiff server  [--data-dir DIR] [--port N] [--single-process]
                  the control plane only (API server, store, scheduler, controllers)
    skiff agent   --kubeconfig FILE [--data-dir DIR] [--runtime ...] [--nodes N] ...
                  the node half only (what `skiff up` runs as its node process)
    skiff image   import FILE [--name REF] | ls | rm REF   [--data-dir DIR]
                  the node's local image store

``up`` and ``server`` write ``DIR/kubeconfig`` (admin) once the API answers and print
the line ``export KUBECONFIG=DIR/kubeconfig``.  SIGINT/SIGTERM stop them cleanly.

On a machine with more than one core, ``up`` and ``server`` run the scheduler and the
node agent as child processes, each with a core of its own (see children.py);
``--single-process`` keeps everything in one process (the smallest footprint).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


from .. import __version__
from .eventloop import start_event_loop
from .image import add_image_commands

RUNTIMES = ("runc", "process", "fake")
AVAILABLE_RUNTIMES = ("runc", "process", "fake")


def _common(p: argparse.ArgumentParser) -> None:
    _data_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="address the API server binds (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="API server port; 0 picks a free one")
    p.add_argument("--compact-retain", type=int, default=10_000, metavar="N",
                   help="keep the last N revisions of history for watches (default 10000)")
    p.add_argument("--scheduler-config", type=Path, default=None, metavar="FILE",
                   help="a KubeSchedulerConfiguration file (profiles, plugins, weights)")
    p.add_argument("--controllers", default=None, metavar="LIST",
                   help="controllers to run, comma-separated: '*' all (default), '-name' disables one")
    p.add_argument("--single-process", action="store_true",
                   help="run the scheduler and the node agent inside this process instead of "
                        "in processes of their own (less memory, one core)")
    p.add_argument("--metric-resolution", type=_duration, default="15s", metavar="DURATION",
                   help="how often the metrics server scrapes the kubelets (kubectl top, HPA; "
                        "default 15s)")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=_duration, default="15s",
                   metavar="DURATION", help="how often each HorizontalPodAutoscaler is evaluated "
                                            "(default 15s)")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=_duration,
                   default="5m", metavar="DURATION",
                   help="an HPA scales down only to the highest recommendation of this long "
                        "(default 5m)")
    _log_level(p)


def _duration(text: str) -> float:
    """A Go duration flag (``15s``, ``1m30s``) in seconds."""
    from ..api.protobuf import parse_duration
    try:
        seconds = parse_duration(text) / 1e9
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return seconds


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=Path(".data"),
                   help="where state, certificates and the kubeconfig live (default: .data)")


def _log_level(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-level", default="INFO")


def _node_flags(p: argparse.ArgumentParser) -> None:
    """How the node(s) run pods: flags ``skiff up`` passes on to its ``skiff agent``."""
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="how nodes run pods: 'runc' (real containers; the default as root "
                        "with runc installed), 'process' (pods as processes of this user, no "
                        "root needed; the default otherwise) or 'fake' (simulated nodes, like KWOK)")
    p.add_argument("--nodes", type=int, default=None,
                   help="number of nodes (default 1, or as many as --node-config describes; "
                        "more than one needs --runtime fake)")
    p.add_argument("--node-config", type=Path, default=None, metavar="FILE",
                   help="simulated nodes (--runtime fake): groups with count, capacity, labels, "
                        "taints, zones (YAML; see skiff.kubelet.fakeconfig)")
    p.add_argument("--eviction-hard", default=None, metavar="LIST",
                   help="the real node's hard eviction thresholds, as the kubelet's flag "
                        "(default memory.available<100Mi,nodefs.available<10%%,"
                        "imagefs.available<15%%,nodefs.inodesFree<5%%)")
    p.add_argument("--eviction-soft", default="", metavar="LIST",
                   help="soft thresholds, e.g. memory.available<500Mi")
    p.add_argument("--eviction-soft-grace-period", default="", metavar="LIST",
                   help="how long each soft threshold must hold, e.g. memory.available=1m30s")
    p.add_argument("--eviction-pressure-transition-period", default="5m", metavar="DURATION",
                   help="how long a pressure condition stays after its threshold clears")


def _agent_args(args: argparse.Namespace, runtime: str) -> tuple[str, ...]:
    """The command line of the ``skiff agent`` that ``skiff up`` starts for its node(s)."""
    out = ["--runtime", runtime, "--data-dir", str(args.data_dir.resolve()),
           "--log-level", args.log_level]
    if args.nodes is not None:
        out += ["--nodes", str(args.nodes)]
    if args.node_config is not None:
        out += ["--node-config", str(args.node_config.resolve())]
    if args.eviction_hard is not None:
        out += ["--eviction-hard", args.eviction_hard]
    out += ["--eviction-soft", args.eviction_soft,
            "--eviction-soft-grace-period", args.eviction_soft_grace_period,
            "--eviction-pressure-transition-period", args.eviction_pressure_transition_period]
    return tuple(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skiff", description="Kubernetes, rebuilt in Python.")
    parser.add_argument("--version", action="version", version=f"skiff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run a whole cluster in the foreground")
    _common(up)
    _node_flags(up)
    up.add_argument("--ingress-http-port", type=int, default=None, metavar="N",
                    help="port of the built-in ingress controller's HTTP listener (default 80 "
                         "as root, else 8080; 0 picks a free one; -1 turns the controller off)")
    up.add_argument("--ingress-https-port", type=int, default=None, metavar="N",
                    help="its HTTPS listener (default 443 as root, else 8443; 0 picks a free one)")

    server = sub.add_parser("server", help="run the control plane only")
    _common(server)

    from .agent import add_agent_arguments

    agent = sub.add_parser("agent", help="run the node half only, against an API server")
    _data_dir(agent)
    _node_flags(agent)
    add_agent_arguments(agent)
    _log_level(agent)

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
    if args.command in ("up", "agent") and runtime is None:
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
        from ..kubelet.fakeconfig import NodeConfigError
        from .agent import fake_nodes_config
        try:
            fake_nodes = fake_nodes_config(args)
        except NodeConfigError as e:
            print(f"skiff: {e}", file=sys.stderr)
            return 2
    eviction = None
    if runtime == "runc":
        from .agent import eviction_config
        try:
            eviction = eviction_config(args)
        except ValueError as e:
            print(f"skiff: {e}", file=sys.stderr)
            return 2
    if args.command == "agent":
        from .agent import agent_main

        assert runtime is not None
        return agent_main(args, runtime=runtime)

    from .cluster import ClusterConfig, run_until_signalled

    ingress = _ingress_ports(args)
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
        processes=not args.single_process and (os.cpu_count() or 1) > 1,
        agent_args=_agent_args(args, runtime) if runtime else (),
        ingress_http_port=ingress["ingress_http_port"],
        ingress_https_port=ingress["ingress_https_port"],
        metric_resolution=args.metric_resolution,
        hpa_sync_period=args.horizontal_pod_autoscaler_sync_period,
        hpa_downscale_stabilization=args.horizontal_pod_autoscaler_downscale_stabilization,
    )
    return start_event_loop(run_until_signalled(config))


if __name__ == "__main__":
    sys.exit(main())
