"""One admission webhook call: an ``admission.k8s.io/v1`` AdmissionReview over HTTPS.

::

    review(attributes, webhook) ──POST <url>?timeout=10s──▶ the webhook's server
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
         "request": {uid, kind, resource, subResource, requestKind, requestResource, name,
                     namespace, operation, userInfo, object, oldObject, dryRun, options}}
    ◀── {"response": {uid, allowed, status?, patch? (base64 JSON patch), patchType?, warnings?}}

Where to: ``clientConfig.url``, or ``clientConfig.service`` (a ready endpoint of the
Service's port, named ``<service>.<namespace>.svc`` for TLS), within the API
server's safety rules (:mod:`..reach`: loopback or a pod's IP).  The server's
certificate is checked against ``clientConfig.caBundle`` (else the system's CAs).

A call that cannot be made or answers nonsense raises :class:`CallFailed` with
Kubernetes' wording (``failed to call webhook: Post "...": ...``); the caller
applies the webhook's ``failurePolicy``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ...api.errors import StatusError
from ..reach import Getter, is_loopback, service_backend

Obj = dict[str, Any]
REVIEW_API_VERSION = "admission.k8s.io/v1"


class CallFailed(Exception):
    """The webhook could not be asked, or its answer was not a usable AdmissionReview."""


@dataclass(frozen=True)
class Attributes:
    """What is being admitted (the request part of an AdmissionReview, less uid and objects)."""

    operation: str  # CREATE | UPDATE | DELETE
    group: str
    version: str
    kind: str
    resource: str  # plural
    subresource: str
    namespace: str
    name: str
    namespaced: bool
    user: Obj  # {"username", "uid", "groups", "extra"}
    dry_run: bool
    options_kind: str  # CreateOptions | UpdateOptions | DeleteOptions
    obj: Obj | None = None
    old: Obj | None = None
    labels_of_namespace: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    allowed: bool
    status: Obj
    patch: list[Any] | None
    warnings: tuple[str, ...]


def review_request(attrs: Attributes, obj: Obj | None) -> Obj:
    gvk = {"group": attrs.group, "version": attrs.version, "kind": attrs.kind}
    gvr = {"group": attrs.group, "version": attrs.version, "resource": attrs.resource}
    request: Obj = {
        "uid": str(uuid.uuid4()), "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": attrs.name, "operation": attrs.operation, "userInfo": attrs.user,
        "object": obj, "oldObject": attrs.old, "dryRun": attrs.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": attrs.options_kind},
    }
    if attrs.subresource:
        request["subResource"] = request["requestSubResource"] = attrs.subresource
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "request": request}


class WebhookClient:
    """HTTPS to webhooks, one connection pool for the server's life."""

    def __init__(self, get: Getter) -> None:
        self.get = get
        self._session: aiohttp.ClientSession | None = None
        self._tls: dict[str, ssl.SSLContext] = {}

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def call(self, webhook: Obj, attrs: Attributes, obj: Obj | None) -> Answer:
        timeout = float(webhook.get("timeoutSeconds") or 10)
        url, server_name = await self._where(webhook.get("clientConfig") or {})
        shown = f"{url}?timeout={int(timeout)}s"
        body = review_request(attrs, obj)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(timeout):
                async with self._session.post(
                        shown, data=orjson.dumps(body), headers={"Content-Type": "application/json",
                                                                 "Accept": "application/json"},
                        ssl=self._context(webhook), server_hostname=server_name or None) as reply:
                    raw = await reply.read()
                    if reply.status != 200:
                        raise CallFailed(f"failed to call webhook: the server responded with status "
                                         f"{reply.status}: {raw[:200].decode('utf-8', 'replace')}")
        except TimeoutError:
            raise CallFailed(f'failed to call webhook: Post "{shown}": context deadline exceeded') from None
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            raise CallFailed(f'failed to call webhook: Post "{shown}": {_go_error(shown, exc)}') from None
        return parse_answer(raw, body["request"]["uid"])

    async def _where(self, config: Obj) -> tuple[str, str]:
        """(URL to POST to, TLS server name when it differs from the URL's host)."""
        if config.get("url"):
            url = str(config["url"])
            host = urlsplit(url).hostname or ""
            if not is_loopback(host):
                raise CallFailed(f'failed to call webhook: Post "{url}": address not allowed: {host} '
                                 "(skiff's API server calls webhooks on loopback or in pods only)")
            return url, ""
        service = config.get("service") or {}
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        port = str(service.get("port") or 443)
        try:
            ip, number = await service_backend(self.get, namespace, name, port)
        except StatusError as err:
            raise CallFailed(f"failed to call webhook: {err.message}") from None
        host = f"[{ip}]" if ":" in ip else ip
        return f"https://{host}:{number}{service.get('path') or ''}", f"{name}.{namespace}.svc"

    def _context(self, webhook: Obj) -> ssl.SSLContext:
        bundle = str((webhook.get("clientConfig") or {}).get("caBundle") or "")
        context = self._tls.get(bundle)
        if context is None:
            try:
                pem = base64.b64decode(bundle).decode() if bundle else None
                context = ssl.create_default_context(cadata=pem) if pem else ssl.create_default_context()
            except (ValueError, ssl.SSLError) as exc:
                raise CallFailed(f"failed to call webhook: invalid caBundle: {exc}") from None
            self._tls[bundle] = context
        return context


def parse_answer(raw: bytes, uid: str) -> Answer:
    try:
        review = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CallFailed(f"received invalid webhook response: {exc}") from None
    response = review.get("response") if isinstance(review, dict) else None
    if not isinstance(response, dict):
        raise CallFailed("received invalid webhook response: response is nil")
    if review.get("apiVersion") != REVIEW_API_VERSION or review.get("kind") != "AdmissionReview":
        raise CallFailed(f"received invalid webhook response: expected webhook response of "
                         f"{REVIEW_API_VERSION}, Kind=AdmissionReview, got "
                         f"{review.get('apiVersion')}, Kind={review.get('kind')}")
    if response.get("uid") != uid:
        raise CallFailed(f"received invalid webhook response: expected response.uid=\"{uid}\", "
                         f"got \"{response.get('uid')}\"")
    patch = None
    if response.get("patch"):
        if response.get("patchType") != "JSONPatch":
            raise CallFailed(f"received invalid webhook response: webhook returned response.patch but "
                             f"not response.patchType")
        try:
            patch = orjson.loads(base64.b64decode(str(response["patch"])))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise CallFailed(f"received invalid webhook response: {exc}") from None
        if not isinstance(patch, list):
            raise CallFailed("received invalid webhook response: the patch is not a JSON patch")
    warnings = tuple(str(w) for w in response.get("warnings") or [])
    return Answer(bool(response.get("allowed")), response.get("status") or {}, patch, warnings)


def _go_error(url: str, exc: BaseException) -> str:
    """A connection failure worded as Go's net/http words it (what kube-apiserver reports)."""
    parts = urlsplit(url)
    address = f"{parts.hostname}:{parts.port or 443}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"tls: failed to verify certificate: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        reason = os.strerror(errno) if errno else str(exc.os_error)
        return f"dial tcp {address}: connect: {reason.lower()}"
    return str(exc) or type(exc).__name__
