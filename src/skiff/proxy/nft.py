"""Running ``nft`` inside the node's network namespace, without blocking the loop.

Every change is one ``nft -f -`` (one atomic transaction: all of it or none of
it). For a node namespace other than the proxy's own, the command is started
through ``nsenter --net=<path>``; nothing here enters a namespace itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

NFT = "nft"
NSENTER = "nsenter"


class NftError(Exception):
    """``nft`` refused a transaction (nothing of it was applied)."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()[:2000]}")


class Nft:
    """``nft`` for one network namespace (None: the one this process is in)."""

    def __init__(self, netns: Path | None = None) -> None:
        self.netns = netns

    def _argv(self, *args: str) -> list[str]:
        prefix = [NSENTER, f"--net={self.netns}"] if self.netns is not None else []
        return [*prefix, NFT, *args]

    async def run(self, *args: str, stdin: str | None = None) -> str:
        argv = self._argv(*args)
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await process.communicate(stdin.encode() if stdin is not None else None)
        except BaseException:
            if process.returncode is None:
                # Cancelled: let the transaction finish (it is atomic either way) so
                # that whatever runs next sees a settled table.
                await asyncio.shield(process.wait())
            raise
        assert process.returncode is not None
        if process.returncode != 0:
            raise NftError(argv, process.returncode, err.decode(errors="replace"))
        return out.decode()

    async def apply(self, text: str) -> None:
        """Run ``text`` as one transaction."""
        if text.strip():
            await self.run("-f", "-", stdin=text)

    async def list_table(self, table: str) -> list[dict[str, Any]]:
        """``nft -j list table ip <table>``: the JSON objects (chains, rules, maps...)."""
        listing = json.loads(await self.run("-j", "list", "table", "ip", table))
        entries: list[dict[str, Any]] = listing.get("nftables", [])
        return entries

    async def tables(self) -> set[str]:
        """``family name`` of every table in the namespace."""
        listing = json.loads(await self.run("-j", "list", "tables"))
        return {f"{entry['table']['family']} {entry['table']['name']}"
                for entry in listing.get("nftables", []) if "table" in entry}
