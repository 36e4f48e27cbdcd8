"""The scheduler as its own process, like the ``kube-scheduler`` binary.

::

    python -m skiff.scheduler --kubeconfig DIR/kubeconfig [--config FILE]

It connects to the API server named by the kubeconfig, runs the profiles of
``--config`` (a KubeSchedulerConfiguration, the same file ``skiff up
--scheduler-config`` takes; default: the default profile) until SIGINT or
SIGTERM, then stops cleanly and exits 0.  ``skiff up`` starts it as its scheduler
process (a core of its own, see skiff/cli/children.py; it dies with ``skiff up``);
with ``--single-process`` it runs the same
:func:`~skiff.scheduler.scheduler.run_scheduler` as a task instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from ..cli.lifeline import hold_lifeline
from ..cli.eventloop import start_event_loop
from ..client.rest import ApiClient
from .profile import ConfigError, load_config
from .scheduler import run_scheduler


async def _run(kubeconfig: Path, config: Path | None) -> int:
    profiles = load_config(config) if config is not None else None
    client = ApiClient.from_kubeconfig(kubeconfig, user_agent="skiff-scheduler")
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    scheduler = asyncio.create_task(run_scheduler(client, profiles=profiles), name="scheduler")
    waiter = asyncio.create_task(stopped.wait())
    try:
        await asyncio.wait({scheduler, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    hold_lifeline()  # started by `skiff up`: die with it
    ap = argparse.ArgumentParser(prog="python -m skiff.scheduler",
                                 description="Run the skiff scheduler against an API server.")
    ap.add_argument("--kubeconfig", type=Path, required=True, help="how to reach the API server")
    ap.add_argument("--config", type=Path, default=None, metavar="FILE",
                    help="a KubeSchedulerConfiguration file (profiles, plugins, weights)")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return start_event_loop(_run(args.kubeconfig, args.config))
    except ConfigError as e:
        print(f"skiff scheduler: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
