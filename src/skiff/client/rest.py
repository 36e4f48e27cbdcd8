"""The REST client every skiff component uses to talk to the API server.

Components never touch each other or the store: they list, watch and write
through this client, exactly as client-go users do against kube-apiserver::

    async with ApiClient.from_kubeconfig("~/.kube/config") as api:
        pod = await api.get(PODS, "web-0", namespace="default")
        listing = await api.list(PODS, namespace="default", label_selector="app=web")
        async with api.watch(PODS, namespace="default",
                             resource_version=listing.resource_version) as events:
            async for type_, obj in events:      # ("ADDED", {...}), ("MODIFIED", ...), ...
                ...

Contract:

* One shared :class:`aiohttp.ClientSession` (created on first use, inside the
  running loop) carries every request; :meth:`ApiClient.close` ends it and any
  open watch.
* Bodies are JSON (orjson).  Objects are plain ``dict``s, as on the wire.
* A non-2xx answer raises :class:`~skiff.api.errors.StatusError` built from the
  server's ``Status`` body (code, reason, message, details).  A failure to reach
  the server at all raises :class:`TransportError`.  Nothing else escapes.
* ``list()`` follows ``metadata.continue`` to the end and returns every item plus
  the list's ``resourceVersion`` (the point to start a watch from).
* ``watch()`` yields :class:`WatchEvent` ``(type, object)`` tuples; a BOOKMARK
  only advances :attr:`WatchStream.resource_version` unless ``bookmarks=True`` asks
  to see them; an ERROR event is raised as a ``StatusError`` (410 Expired means
  "re-list").  The stream ends when the server closes it (``timeoutSeconds``).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, AsyncIterator, Mapping, NamedTuple

import aiohttp
import orjson

from ..api.errors import Cause, StatusError
from .kubeconfig import ConnectionConfig, load_kubeconfig
from .resources import ResourceLike, resource_path

Obj = dict[str, Any]

#: How long an idle connection is kept for the next request.  Below the API server's
#: own idle limit (``IDLE_CONNECTION_SECONDS`` in skiff.apiserver.server), so the server
#: never closes one the client is about to use; long enough that the scheduler's and
#: node agent's work for a user's next command, minutes later, does not start with new
#: TLS handshakes (aiohttp's default keeps them 15 s).  Kubernetes' components get the
#: same from HTTP/2: one connection each, kept open by their watches.
KEEPALIVE_SECONDS = 570.0

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}

_REASONS: Mapping[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class TransportError(Exception):
    """The API server could not be reached, or the connection broke mid-request."""


class ObjectList(NamedTuple):
    items: list[Obj]
    resource_version: str


class WatchEvent(NamedTuple):
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: Obj


def status_error_from_body(code: int, body: Any, fallback: str = "") -> StatusError:
    """Rebuild the server's ``Status`` as a :class:`StatusError` (or synthesize one)."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        details = body.get("details") or {}
        causes = [Cause(str(c.get("reason", "")), str(c.get("message", "")), str(c.get("field", "")))
                  for c in details.get("causes") or [] if isinstance(c, dict)]
        return StatusError(
            int(body.get("code") or code),
            str(body.get("reason") or _REASONS.get(code, "Unknown")),
            str(body.get("message") or fallback),
            name=str(details.get("name", "")), group=str(details.get("group", "")),
            kind=str(details.get("kind", "")), causes=causes,
            retry_after_seconds=int(details.get("retryAfterSeconds") or 0))
    return StatusError(code, _REASONS.get(code, "Unknown"),
                       fallback or f"the server responded with status {code}")


def _default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


def _params(**values: Any) -> dict[str, str]:
    """Query parameters without the unset ones; booleans spelled as Kubernetes does."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class ApiClient:
    """An async client of one API server (see module docstring)."""

    def __init__(self, base_url: str, *, ssl_context: ssl.SSLContext | None = None,
                 token: str | None = None, user_agent: str = "skiff/0.1",
                 timeout: float = 30.0, max_connections: int = 128,
                 server_hostname: str | None = None, namespace: str = "default") -> None:
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace  # the default namespace of the kubeconfig context
        self._ssl = ssl_context
        self._timeout = timeout
        self._max_connections = max_connections
        self._server_hostname = server_hostname
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session: aiohttp.ClientSession | None = None
        self._watches: set[WatchStream] = set()
        self._closed = False

    @classmethod
    def from_config(cls, config: ConnectionConfig, **kwargs: Any) -> "ApiClient":
        return cls(config.server, ssl_context=config.ssl_context(), token=config.token,
                   server_hostname=config.tls_server_name, namespace=config.namespace, **kwargs)

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, *,
                        context: str | None = None, **kwargs: Any) -> "ApiClient":
        """Connect as the kubeconfig says (default: ``$KUBECONFIG``, then ``~/.kube/config``)."""
        where = Path(path).expanduser() if path is not None else _default_kubeconfig()
        return cls.from_config(load_kubeconfig(where, context=context), **kwargs)

    # -- lifecycle ----------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise TransportError("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self._ssl if self._ssl is not None else True, limit=self._max_connections,
                keepalive_timeout=KEEPALIVE_SECONDS)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  headers=self._headers)
        return self._session

    async def close(self) -> None:
        """End every open watch and the shared session (idempotent)."""
        self._closed = True
        for stream in list(self._watches):
            await stream.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "ApiClient":
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- raw requests -------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json",
                      timeout: float | None = None) -> Any:
        """One request; the decoded JSON answer (``str`` for non-JSON answers)."""
        session = self._get_session()
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        try:
            async with session.request(
                    method, self.base_url + path, params=params, data=data, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
                    server_hostname=self._server_hostname) as resp:
                raw = await resp.read()
                decoded = _decode(raw, resp.content_type)
                if resp.status >= 400:
                    text = raw.decode(errors="replace") if isinstance(decoded, str) else ""
                    raise status_error_from_body(resp.status, decoded, text or resp.reason or "")
                return decoded
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransportError(f"{method} {path}: {e or type(e).__name__}") from e

    # -- verbs ----------------------------------------------------------------------

    async def get(self, res: ResourceLike, name: str, *, namespace: str | None = None,
                  subresource: str | None = None) -> Obj:
        path = resource_path(res, namespace=namespace, name=name, subresource=subresource)
        result: Obj = await self.request("GET", path)
        return result

    async def list_page(self, res: ResourceLike, *, namespace: str | None = None,
                        label_selector: str | None = None, field_selector: str | None = None,
                        limit: int | None = None, continue_token: str | None = None,
                        resource_version: str | None = None) -> Obj:
        """One page of a list, exactly as the server answered it."""
        params = _params(labelSelector=label_selector, fieldSelector=field_selector, limit=limit,
                         resourceVersion=resource_version, **{"continue": continue_token})
        page: Obj = await self.request("GET", resource_path(res, namespace=namespace),
                                       params=params)
        return page

    async def list(self, res: ResourceLike, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   page_size: int | None = 500, resource_version: str | None = None) -> ObjectList:
        """Every matching object, following ``continue`` tokens page by page.

        Items get ``apiVersion``/``kind`` filled in (the server omits them in lists).
        """
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.list_page(
                res, namespace=namespace, label_selector=label_selector,
                field_selector=field_selector, limit=page_size, continue_token=token,
                resource_version=None if token else resource_version)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                break
        list_kind = str(page.get("kind", ""))
        api_version = page.get("apiVersion")
        if list_kind.endswith("List") and api_version:
            kind = list_kind[:-4]
            for item in items:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
        return ObjectList(items, str(meta.get("resourceVersion", "")))

    async def create(self, res: ResourceLike, body: Obj, *, namespace: str | None = None,
                     name: str | None = None, subresource: str | None = None,
                     field_manager: str | None = None, dry_run: bool = False) -> Obj:
        """POST ``body`` to the collection (or to ``name``'s ``subresource``, e.g. binding)."""
        ns = namespace if namespace is not None else _namespace_of(body)
        path = resource_path(res, namespace=ns, name=name, subresource=subresource)
        params = _params(fieldManager=field_manager, dryRun="All" if dry_run else None)
        created: Obj = await self.request("POST", path, params=params, body=body)
        return created

    async def update(self, res: ResourceLike, body: Obj, *, namespace: str | None = None,
                     subresource: str | None = None, field_manager: str | None = None) -> Obj:
        """PUT ``body`` (its ``metadata.resourceVersion``, if set, makes it compare-and-swap)."""
        ns = namespace if namespace is not None else _namespace_of(body)
        name = (body.get("metadata") or {}).get("name") or ""
        path = resource_path(res, namespace=ns, name=name, subresource=subresource)
        updated: Obj = await self.request("PUT", path, params=_params(fieldManager=field_manager),
                                          body=body)
        return updated

    async def patch(self, res: ResourceLike, name: str, patch: Any, *,
                    namespace: str | None = None, subresource: str | None = None,
                    patch_type: str = "merge", field_manager: str | None = None,
                    force: bool | None = None) -> Obj:
        """PATCH with ``patch_type`` ``merge`` | ``json`` | ``strategic`` | ``apply``."""
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        path = resource_path(res, namespace=namespace, name=name, subresource=subresource)
        params = _params(fieldManager=field_manager, force=force)
        patched: Obj = await self.request("PATCH", path, params=params, body=patch,
                                          content_type=content_type)
        return patched

    async def delete(self, res: ResourceLike, name: str, *, namespace: str | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None,
                     preconditions: Mapping[str, str] | None = None) -> Obj:
        """DELETE one object; the answer is the object (still terminating) or a Status."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        path = resource_path(res, namespace=namespace, name=name)
        deleted: Obj = await self.request("DELETE", path, body=options)
        return deleted

    def watch(self, res: ResourceLike, *, namespace: str | None = None,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int | None = None,
              allow_bookmarks: bool = True, bookmarks: bool = False) -> "WatchStream":
        """A :class:`WatchStream` of changes after ``resource_version``.

        The connection opens on ``async with`` or on first iteration.
        """
        params = _params(watch=True, resourceVersion=resource_version,
                         labelSelector=label_selector, fieldSelector=field_selector,
                         timeoutSeconds=timeout_seconds, allowWatchBookmarks=allow_bookmarks)
        return WatchStream(self, resource_path(res, namespace=namespace), params,
                           resource_version or "", timeout_seconds, bookmarks)


class WatchStream:
    """One open watch: ``async for type_, obj in stream``; ``close()`` ends it."""

    def __init__(self, client: ApiClient, path: str, params: dict[str, str],
                 resource_version: str, timeout_seconds: int | None, bookmarks: bool) -> None:
        self._client = client
        self._path = path
        self._params = params
        self._timeout_seconds = timeout_seconds
        self._bookmarks = bookmarks
        self._response: aiohttp.ClientResponse | None = None
        self._events: AsyncIterator[WatchEvent] | None = None
        self._closed = False
        #: The resourceVersion of the last event (or bookmark) seen; resume from here.
        self.resource_version = resource_version

    async def _open(self) -> None:
        session = self._client._get_session()
        total = None if self._timeout_seconds is None else self._timeout_seconds + 30.0
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=self._client._timeout)
        try:
            resp = await session.get(self._client.base_url + self._path, params=self._params,
                                     timeout=timeout,
                                     server_hostname=self._client._server_hostname)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransportError(f"watch {self._path}: {e or type(e).__name__}") from e
        if resp.status >= 400:
            raw = await resp.read()
            resp.release()
            decoded = _decode(raw, resp.content_type)
            raise status_error_from_body(resp.status, decoded,
                                         decoded if isinstance(decoded, str) else "")
        if self._closed:  # aborted while connecting
            resp.close()
            raise StopAsyncIteration
        self._response = resp
        self._client._watches.add(self)
        self._events = self._read(resp)

    async def _read(self, resp: aiohttp.ClientResponse) -> AsyncIterator[WatchEvent]:
        buffer = b""
        try:
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1:]
                    if line.strip():
                        yield self._event(orjson.loads(line))
            if buffer.strip():
                yield self._event(orjson.loads(buffer))
        except (aiohttp.ClientError, TimeoutError) as e:
            if not self._closed:
                raise TransportError(f"watch {self._path} broke: {e or type(e).__name__}") from e
        except orjson.JSONDecodeError as e:
            raise TransportError(f"watch {self._path}: undecodable event: {e}") from e

    def _event(self, raw: Any) -> WatchEvent:
        type_ = str(raw.get("type", ""))
        obj = raw.get("object") or {}
        if type_ == "ERROR":
            raise status_error_from_body(int(obj.get("code") or 500), obj, "watch error")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = str(rv)
        return WatchEvent(type_, obj)

    def __aiter__(self) -> "WatchStream":
        return self

    async def __anext__(self) -> WatchEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._events is None:
            await self._open()
        assert self._events is not None
        while True:
            try:
                event = await self._events.__anext__()
            except StopAsyncIteration:
                await self.close()
                raise
            except BaseException:
                await self.close()
                raise
            if event.type == "BOOKMARK" and not self._bookmarks:
                continue
            return event

    def abort(self) -> None:
        """Stop watching now, from synchronous code; a pending iteration ends quietly."""
        self._closed = True
        self._client._watches.discard(self)
        if self._response is not None:
            self._response.close()
            self._response = None

    async def close(self) -> None:
        """Stop watching and release the connection (idempotent)."""
        self.abort()

    async def __aenter__(self) -> "WatchStream":
        if self._events is None and not self._closed:
            try:
                await self._open()
            except StopAsyncIteration:
                pass  # aborted while connecting: iterating yields nothing
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


def _namespace_of(body: Obj) -> str | None:
    ns = (body.get("metadata") or {}).get("namespace")
    return str(ns) if ns else None


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type or raw[:1] in (b"{", b"["):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw.decode(errors="replace")
