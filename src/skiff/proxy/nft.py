"""Running nftables transactions in the node's network namespace, off the event loop.

Every change is one transaction (``nft -f`` semantics: all of it or none of it).
Two ways to run one, the first one available is used::

    libnftables   the library ``nft`` is built on, loaded with ctypes and driven
                  by one thread of this process that entered the namespace once
                  (a thread's namespace is its own): no exec per change. Measured
                  with 1,000 Services loaded: ~5-20 ms per small change, against
                  30-60 ms for the same text through ``nsenter … nft -f -``
    nft command   ``nft -f -``, through ``nsenter --net=<path>`` for another
                  namespace (when the library is missing)

Either way nft reads the tables back before each change (its cache), so a change
costs more the more rules and set elements the namespace holds; .rules keeps
those few.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import queue
import threading
from pathlib import Path
from typing import Any

from ..nsfs import CLONE_NEWNET, enter

NFT = "nft"
NSENTER = "nsenter"


class NftError(Exception):
    """nftables refused a transaction (nothing of it was applied)."""

    def __init__(self, what: str, detail: str) -> None:
        self.detail = detail
        super().__init__(f"{what}: {detail.strip()[:2000]}")


class _Library:
    """One libnftables context on a dedicated thread inside ``netns``."""

    def __init__(self, lib: ctypes.CDLL, netns: Path | None) -> None:
        self._lib = lib
        self._requests: queue.SimpleQueue[tuple[str, asyncio.AbstractEventLoop,
                                                asyncio.Future[None]] | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, args=(netns,),
                                        name=f"nft:{netns or 'self'}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    @staticmethod
    def load() -> ctypes.CDLL | None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            return None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        return lib

    def _serve(self, netns: Path | None) -> None:
        try:
            if netns is not None:
                enter(netns, CLONE_NEWNET)
            context = self._lib.nft_ctx_new(0)
            if not context:
                raise NftError("libnftables", "nft_ctx_new failed")
            self._lib.nft_ctx_buffer_output(context)
            self._lib.nft_ctx_buffer_error(context)
        except BaseException as error:
            self._failure = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while (request := self._requests.get()) is not None:
                text, loop, future = request
                code = self._lib.nft_run_cmd_from_buffer(context, text.encode())
                refused = None
                if code != 0:
                    detail = (self._lib.nft_ctx_get_error_buffer(context) or b"").decode(errors="replace")
                    refused = NftError("libnftables", detail or f"error {code}")
                loop.call_soon_threadsafe(_settle, future, refused)
        finally:
            self._lib.nft_ctx_free(context)

    async def apply(self, text: str) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._requests.put((text, loop, future))
        # Cancelled or not, the transaction runs to its end (it is atomic anyway):
        # whoever comes next must see a settled table.
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                await asyncio.wait([future])
            raise

    def close(self) -> None:
        self._requests.put(None)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Nft:
    """nftables for one network namespace (None: the one this process is in)."""

    def __init__(self, netns: Path | None = None, *, use_library: bool = True) -> None:
        self.netns = netns
        self._use_library = use_library
        self._library: _Library | None = None

    @property
    def via(self) -> str:
        """``libnftables`` or ``nft`` (which one the last transaction used)."""
        return "libnftables" if self._library is not None else NFT

    async def apply(self, text: str) -> None:
        """Run ``text`` as one transaction."""
        if not text.strip():
            return
        if self._use_library and self._library is None:
            lib = _Library.load()
            if lib is None:
                self._use_library = False
            else:
                self._library = await asyncio.to_thread(_Library, lib, self.netns)
        if self._library is not None:
            await self._library.apply(text)
        else:
            await self.run("-f", "-", stdin=text)

    def close(self) -> None:
        """Let the library thread end (the next apply starts a new one)."""
        if self._library is not None:
            self._library.close()
            self._library = None

    async def run(self, *args: str, stdin: str | None = None) -> str:
        """The ``nft`` command with ``args`` in the namespace; its output."""
        prefix = [NSENTER, f"--net={self.netns}"] if self.netns is not None else []
        argv = [*prefix, NFT, *args]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await process.communicate(stdin.encode() if stdin is not None else None)
        except BaseException:
            if process.returncode is None:
                await asyncio.shield(process.wait())    # see _Library.apply
            raise
        if process.returncode != 0:
            raise NftError(" ".join(argv), f"exit {process.returncode}: {err.decode(errors='replace')}")
        return out.decode()

    async def list_table(self, table: str) -> list[dict[str, Any]]:
        """``nft -j list table ip <table>``: the JSON objects (chains, rules, maps...)."""
        listing = json.loads(await self.run("-j", "list", "table", "ip", table))
        entries: list[dict[str, Any]] = listing.get("nftables", [])
        return entries
