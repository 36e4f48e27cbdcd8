"""Components of ``skiff up`` that run as processes of their own.

Python runs one thread of Python code at a time per process, so a cluster in one
process uses one core however many the machine has.  ``skiff up`` therefore runs
the two components that do the most work per pod in child processes, as
Kubernetes runs ``kube-scheduler`` and the ``kubelet`` as binaries of their own:

* the scheduler: ``python -m skiff.scheduler --kubeconfig DIR/kubeconfig``
* the node agent (kubelet, proxy, DNS, or the simulated nodes):
  ``python -m skiff.cli.main agent --kubeconfig DIR/kubeconfig ...``

They reach the API server through the kubeconfig, exactly as in-process components
do through their client.  A :class:`ComponentProcess`:

* starts its child in a session of its own with ``$SKIFF_LIFELINE`` set, so the child
  dies with ``skiff up`` (see :mod:`skiff.cli.lifeline`) and only with it;
* passes it the write end of a pipe as ``--ready-fd N`` when the caller waits for
  readiness: the child writes a line there once it is ready (the node agent: once its
  nodes registered);
* reports the child's exit (:attr:`exited`): a component that stops on its own is a
  failure of the cluster;
* stops it with SIGTERM, then SIGKILL after a grace period.

The children inherit ``skiff up``'s stderr: their logs appear with its own.  For
profiling, ``$SKIFF_CPROFILE_DIR`` runs each child under cProfile, writing
``DIR/<component>.prof`` when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from ..pipes import read_line
from .lifeline import ENV as LIFELINE_ENV

log = logging.getLogger(__name__)
CPROFILE_ENV = "SKIFF_CPROFILE_DIR"


class ComponentExited(Exception):
    """A component process ended on its own (the message says with which code)."""


class ComponentProcess:
    """One child process running a component (``python -m <module> <args>``)."""

    def __init__(self, name: str, module: str, args: Sequence[str], *,
                 signals_ready: bool = False) -> None:
        self.name = name
        self.module = module
        self.args = list(args)
        self.signals_ready = signals_ready
        self.process: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._ready_reader: asyncio.Task[None] | None = None
        #: Set to the exit code once the child ended (on its own or stopped).
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        args = list(self.args)
        read_fd = write_fd = -1
        if self.signals_ready:
            read_fd, write_fd = os.pipe()
            args += ["--ready-fd", str(write_fd)]
        else:
            self.ready.set()
        env = dict(os.environ, **{LIFELINE_ENV: str(os.getpid())})
        python = [sys.executable]
        if profile_dir := os.environ.get(CPROFILE_ENV):
            python += ["-m", "cProfile", "-o", os.path.join(profile_dir, f"{self.name}.prof")]
        try:
            self.process = await asyncio.create_subprocess_exec(
                *python, "-m", self.module, *args, env=env,
                pass_fds=(write_fd,) if write_fd >= 0 else (), stdin=asyncio.subprocess.DEVNULL,
                # A session of its own: a Ctrl-C in the terminal reaches ``skiff up`` only,
                # which then stops its children in order (and they die with it, see above).
                start_new_session=True)
        finally:
            if write_fd >= 0:
                os.close(write_fd)  # the child holds its own copy
        log.info("%s started (pid %d)", self.name, self.process.pid)
        if read_fd >= 0:
            self._ready_reader = asyncio.create_task(self._await_ready_line(read_fd),
                                                     name=f"{self.name}-ready")
        self._watcher = asyncio.create_task(self._watch(), name=f"{self.name}-exit")

    async def _await_ready_line(self, read_fd: int) -> None:
        """Set :attr:`ready` when the child writes its line (EOF without one: not ready)."""
        if await read_line(read_fd):     # (closes read_fd)
            self.ready.set()

    async def _watch(self) -> None:
        assert self.process is not None
        code = await self.process.wait()
        if not self.exited.done():
            self.exited.set_result(code)

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL if the child is still there after ``grace`` seconds."""
        process = self.process
        if process is None or process.returncode is not None:
            await self._join()
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), grace)
        except asyncio.TimeoutError:
            log.warning("%s did not stop within %.0fs; killing it", self.name, grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await self._join()

    async def _join(self) -> None:
        """Wait for the exit watcher; drop the readiness reader (a ready line no longer matters)."""
        if self._ready_reader is not None:
            self._ready_reader.cancel()
        for task in (self._watcher, self._ready_reader):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
