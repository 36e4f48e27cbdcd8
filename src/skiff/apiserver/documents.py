"""Non-resource documents: ``/version``, health checks and OpenAPI v3.

OpenAPI documents are built on first request by :mod:`skiff.api.openapi`
(v3) and :mod:`skiff.api.openapi_v2` (v2, JSON or gnostic protobuf by Accept;
kubectl validates ``kind: List`` files with it) from the registry and the
schema, then served from memory (they are large and never change while the
server runs).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from ..api.errors import StatusError
from ..api.kinds import Registry
from ..api.schema import Schema
from .negotiation import JSON

log = logging.getLogger(__name__)

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "skiff",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}

NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource")


class Documents:
    def __init__(self, registry: Registry, schema: Schema | None) -> None:
        self.registry = registry
        self.schema = schema
        self.version = orjson.dumps(VERSION_INFO)
        self._openapi: dict[str, bytes] = {}
        self._openapi_index: bytes | None = None

    def version_response(self) -> web.Response:
        return web.Response(body=self.version, content_type=JSON)

    @staticmethod
    def health_response() -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    def openapi_response(self, rest: str, accept: str = "", if_none_match: str = "") -> web.Response:
        if rest in ("v2", "v2/"):
            return self.openapi_v2_response(accept, if_none_match)
        if rest == "v3" or rest == "v3/":
            return web.Response(body=self.openapi_index(), content_type=JSON)
        if rest.startswith("v3/"):
            body = self.openapi_group_version(rest[3:])
            if body is not None:
                return web.Response(body=body, content_type=JSON)
        raise NOT_FOUND

    def openapi_v2_response(self, accept: str, if_none_match: str) -> web.Response:
        if self.schema is None:
            raise NOT_FOUND
        from ..api import openapi_v2

        content_type = openapi_v2.negotiate(accept)
        if content_type is None:
            raise StatusError(406, "NotAcceptable", f"only the following media types are accepted: "
                              f"{openapi_v2.JSON_CONTENT_TYPE}, {openapi_v2.PROTOBUF_CONTENT_TYPE}")
        proto, body, etag = openapi_v2.openapi_v2_document(list(self.registry), self.schema)
        headers = {"ETag": f'"{etag}"', "Vary": "Accept"}
        if if_none_match.strip('"') == etag:
            return web.Response(status=304, headers=headers)
        data = proto if content_type == openapi_v2.PROTOBUF_CONTENT_TYPE else body
        return web.Response(body=data, headers={**headers, "Content-Type": content_type})

    def openapi_index(self) -> bytes:
        if self.schema is None:
            raise NOT_FOUND
        if self._openapi_index is None:
            from ..api import openapi

            self._openapi_index = _bytes(openapi.openapi_v3_index(list(self.registry), self.schema))
        return self._openapi_index

    def openapi_group_version(self, path: str) -> bytes | None:
        """``api/v1`` or ``apis/<group>/<version>`` -> that group-version's document."""
        hit = self._openapi.get(path)
        if hit is not None:
            return hit
        parts = path.strip("/").split("/")
        if parts[:1] == ["api"] and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[:1] == ["apis"] and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            return None
        resources = self.registry.resources(group, version)
        if not resources or self.schema is None:
            return None
        from ..api import openapi

        body, _digest = openapi.openapi_v3_document(group, version, resources, self.schema)
        self._openapi[path] = body
        return body


def _bytes(doc: Any) -> bytes:
    return doc if isinstance(doc, bytes) else orjson.dumps(doc)
