"""The node half of a cluster: ``skiff agent``, what ``skiff up`` runs as its node process.

::

    skiff agent --kubeconfig FILE [--data-dir DIR] [--runtime runc|process|fake]
                [--node-name NAME] [--nodes N] [--node-config FILE] [--eviction-* ...]

It connects to the API server named by the kubeconfig and runs, until SIGINT or
SIGTERM:

* ``--runtime runc``: one real node (kubelet, kubelet server, service proxy,
  NetworkPolicy agent, DNS, API relay; see :mod:`skiff.cli.node`);
* ``--runtime process``: one rootless node (see :mod:`skiff.cli.process_node`);
* ``--runtime fake``: simulated nodes (``--nodes``/``--node-config``, see
  :mod:`skiff.kubelet.fakeconfig`).

On SIGINT/SIGTERM the node takes down what it made (containers, pod networks, the
bridge, the proxy's tables) and the process exits 0.  ``--ready-fd N`` (used by
``skiff up``) names a pipe on which the agent writes one line once its node(s)
registered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from .eventloop import freeze_long_lived, start_event_loop
from .lifeline import hold_lifeline

if TYPE_CHECKING:
    from ..client.rest import ApiClient
    from ..kubelet.eviction import EvictionConfig
    from ..kubelet.fakeconfig import FakeNodesConfig

log = logging.getLogger("skiff.agent")


def add_agent_arguments(p: argparse.ArgumentParser) -> None:
    """``skiff agent``'s own flags (the node flags it shares with ``skiff up`` come from main)."""
    p.add_argument("--kubeconfig", type=Path, required=True, help="how to reach the API server")
    p.add_argument("--node-name", default="skiff-node-0",
                   help="the real node's name (--runtime runc|process; default skiff-node-0)")
    p.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)


async def run_agent(args: argparse.Namespace, *, runtime: str) -> int:
    """Run the node(s) ``args`` describe until SIGINT/SIGTERM; return the exit code."""
    from ..client.rest import ApiClient

    client = ApiClient.from_kubeconfig(args.kubeconfig, user_agent=f"skiff-agent/{runtime}")
    started = asyncio.Event()
    node = asyncio.create_task(_run_node(client, args, runtime, started), name="node")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    announced = asyncio.create_task(_announce_when(started, args.ready_fd))
    try:
        await asyncio.wait({node, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopping, announced, node):
            task.cancel()
        code = 0
        try:
            await node
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the node failed")
            code = 1
        if not stop.is_set() and code == 0:
            log.error("the node stopped on its own")
            code = 1
        with contextlib.suppress(asyncio.CancelledError):
            await announced
        await client.close()
    return code


async def _announce_when(started: asyncio.Event, ready_fd: int | None) -> None:
    await started.wait()
    log.info("node(s) registered")
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    freeze_long_lived()


async def _run_node(client: ApiClient, args: argparse.Namespace, runtime: str,
                    started: asyncio.Event) -> None:
    data_dir: Path = args.data_dir.resolve()
    if runtime == "runc":
        from .node import run_runc_node

        await run_runc_node(client, data_dir=data_dir, node_name=args.node_name,
                            started=started, eviction=eviction_config(args))
    elif runtime == "process":
        from .process_node import run_process_node

        await run_process_node(client, data_dir=data_dir, node_name=args.node_name,
                               started=started)
    else:
        from ..kubelet.fake import run_fake_nodes

        nodes = fake_nodes_config(args)
        await run_fake_nodes(client, nodes.count, specs=nodes.specs,
                             failing_images=nodes.failing_images, registered=started)


def eviction_config(args: argparse.Namespace) -> EvictionConfig:
    """The real node's eviction thresholds from the ``--eviction-*`` flags (ValueError if bad)."""
    from ..kubelet.eviction import EvictionConfig

    return EvictionConfig.from_flags(
        eviction_hard=args.eviction_hard, eviction_soft=args.eviction_soft,
        eviction_soft_grace_period=args.eviction_soft_grace_period,
        eviction_pressure_transition_period=args.eviction_pressure_transition_period)


def fake_nodes_config(args: argparse.Namespace) -> FakeNodesConfig:
    """The simulated nodes of ``--nodes``/``--node-config`` (NodeConfigError if bad)."""
    from ..kubelet.fakeconfig import default_node_config, load_node_config

    if args.node_config:
        return load_node_config(args.node_config, nodes=args.nodes)
    return default_node_config(1 if args.nodes is None else args.nodes)


def agent_main(args: argparse.Namespace, *, runtime: str) -> int:
    """``skiff agent``: the process's entry point (after argument checks)."""
    hold_lifeline()
    return start_event_loop(run_agent(args, runtime=runtime))
