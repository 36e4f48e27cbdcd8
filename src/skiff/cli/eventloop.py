"""How every skiff process runs: uvloop, a garbage collector tuned for a server, and a
Python traceback on stderr should the process die of a fatal signal.

``skiff up`` / ``skiff server``, ``skiff agent`` and ``python -m skiff.scheduler``
all start their main coroutine with :func:`start_event_loop`; those that import
their components lazily (to answer sooner) call :func:`freeze_long_lived` once
the components are up.  A crash in C code (SIGSEGV, SIGABRT, ...) still ends the
process, but its log then says where every thread was (``faulthandler``): ``skiff
up`` reports only "component node-agent exited with code -6" otherwise.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
from typing import Any, Coroutine

#: Allocations between two young-generation passes of the cyclic garbage collector.
#: Python's default, 700, means a pass every few dozen API writes (each allocates
#: hundreds of dicts and lists); measured under a create load, 10,000 cuts the
#: collector's share of a write from ~30 us to ~7 us.
GC_YOUNG_THRESHOLD = 10_000


def start_event_loop(main_coroutine: "Coroutine[Any, Any, int]") -> int:
    """Run a skiff process's main coroutine on uvloop, with the collector tuned for a server."""
    faulthandler.enable()
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio also works
        pass
    tune_gc()
    return asyncio.run(main_coroutine)


def tune_gc() -> None:
    """Set the cyclic garbage collector up for a long-running server.

    Everything imported so far (modules, classes, functions: ~85% of the objects
    a started cluster holds) lives as long as the process, so it is frozen out of
    the collector's full passes, which otherwise walk it all (~40 ms each here) in
    the middle of serving.  Young collections run less often (``GC_YOUNG_THRESHOLD``).
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def freeze_long_lived() -> None:
    """Freeze again once the process's components have started: the modules, schemas
    and classes they imported after :func:`tune_gc` live as long as the process too,
    and a full pass walking them costs tens of milliseconds -- in the middle of a
    burst of writes, otherwise.  A full collection first, so that no garbage is frozen."""
    gc.collect()
    gc.freeze()
