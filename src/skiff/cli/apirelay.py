"""The API server, reachable from pods: ``https://kubernetes.default.svc`` (10.96.0.1:443).

In Kubernetes the ``default/kubernetes`` Service's Endpoints list the API servers'
addresses, and pods reach them through the service proxy with their ServiceAccount
token (in-cluster config).  skiff's API server listens on the host's loopback, which a
pod's network namespace cannot reach, so the node relays TCP from its bridge gateway
(the node's address as pods see it) to the API server, and publishes that address::

    pod ──▶ 10.96.0.1:443 ──(proxy DNAT)──▶ 10.244.0.1:6443 ──(relay, bytes only)──▶ 127.0.0.1:<api>

The relay copies bytes: TLS is between the pod and the API server (whose certificate
names 10.96.0.1 and kubernetes.default.svc), and the pod authenticates itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from ..api.errors import StatusError
from ..client.resources import Resource
from ..client.rest import ApiClient

log = logging.getLogger(__name__)

ENDPOINTS = Resource("", "v1", "endpoints", kind="Endpoints")
#: The ``kubernetes`` Service's targetPort (apiserver/bootstrap.py).
API_PORT = 6443
CHUNK = 1 << 16


async def relay_api_server(client: ApiClient, address: str) -> asyncio.Server:
    """Listen on ``address``:6443 and relay every connection to the API server."""
    target = urlsplit(client.base_url)
    host, port = target.hostname or "127.0.0.1", target.port or 443

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError as e:
            log.warning("API relay: cannot reach the API server at %s:%d: %s", host, port, e)
            writer.close()
            return
        await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))

    return await asyncio.start_server(connection, address, API_PORT)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the half-close on."""
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if source.at_eof():
                sink.close()


async def publish_api_endpoints(client: ApiClient, address: str, port: int = API_PORT) -> None:
    """Point ``default/kubernetes`` at the relay (what kube-apiserver's endpoint reconciler
    does with its own address); the EndpointSlice mirroring controller does the rest.
    Without a runc node there is no relay: the cluster publishes the API server's own
    loopback address, where the process runtime's pods (host network) reach it."""
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": "kubernetes", "namespace": "default"},
                 "subsets": [{"addresses": [{"ip": address}],
                              "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    await publish(client, ENDPOINTS, endpoints)


async def publish(client: ApiClient, resource: Resource, body: dict[str, object]) -> None:
    """Create ``body``, or merge it into what an earlier start left (creating it again
    would be refused: its name, and for a Service its clusterIP, are taken)."""
    meta = body["metadata"]
    assert isinstance(meta, dict)
    try:
        await client.patch(resource, meta["name"], body, namespace=meta["namespace"], patch_type="merge")
    except StatusError as e:
        if e.code != 404:
            raise
        await client.create(resource, body, namespace=meta["namespace"])
