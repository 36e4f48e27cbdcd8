"""A component process dies with the ``skiff up`` that started it.

``skiff up`` runs the scheduler and the node agent as child processes (see
:mod:`skiff.cli.children`).  It stops them itself on SIGINT/SIGTERM; this module
covers the other case, ``skiff up`` itself killed (``kill -9``, an OOM kill): the
child asks the kernel to send it SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), so a crash of ``skiff up`` is a crash of the whole
cluster, exactly as when everything ran in one process (a real node's containers
stay and the next start adopts them).

The parent names itself in the environment variable ``SKIFF_LIFELINE`` (its pid);
a child started by anyone else (a user running ``skiff agent`` by hand) has no
lifeline and lives on its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

ENV = "SKIFF_LIFELINE"
_PR_SET_PDEATHSIG = 1


def hold_lifeline() -> None:
    """Die (SIGKILL) when the process named by ``$SKIFF_LIFELINE`` ends; no-op without it."""
    parent = os.environ.pop(ENV, "")
    if not parent.isdigit():
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not Linux: the parent's stop still ends the child
    if os.getppid() != int(parent):  # the parent died before the request took effect
        sys.exit(1)
