"""Serving an API server application over HTTPS on a real socket.

:func:`serve` binds, starts and returns a :class:`ServingHandle` whose ``port``
is the port actually bound (``port=0`` picks a free one) and whose ``close()``
stops accepting, finishes in-flight requests briefly, and releases the socket.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

#: How long the server keeps a client's idle keep-alive connection (aiohttp's default
#: is 75 s).  A burst of work -- twenty pods of a new Deployment: as many concurrent
#: creates, bindings, status writes -- opens a connection per request in flight on
#: HTTP/1.1; kept, the next burst minutes later reuses them instead of paying a TLS
#: handshake on both sides for each (measured: in a 20-pod burst four quiet minutes
#: after the last one the scheduler spent 3.5-4 ms of CPU per pod with 75 s, 1.5-2 with
#: this, as much as in a burst right after another; docs/pod-startup.md, session 8).
IDLE_CONNECTION_SECONDS = 600.0


@dataclass
class ServingHandle:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, *, host: str, port: int,
                ssl_context: ssl.SSLContext | None) -> ServingHandle:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0,
                           keepalive_timeout=IDLE_CONNECTION_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024,
                       reuse_address=True)
    await site.start()
    bound = port
    server = site._server  # aiohttp keeps the asyncio.Server here; it knows the real port
    if server is not None and getattr(server, "sockets", None):
        bound = server.sockets[0].getsockname()[1]
    return ServingHandle(runner, host, bound)
