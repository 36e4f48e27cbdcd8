"""Non-resource documents: ``/version``, health checks and OpenAPI v3.

OpenAPI documents are built on first request by :mod:`skiff.api.openapi`
from the registry and the schema, then served from memory (they are large
and never change while the server runs).  ``/openapi/v2`` is not served
(404): kubectl uses v3 first.
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

    def openapi_response(self, rest: str) -> web.Response:
        if rest == "v3" or rest == "v3/":
            return web.Response(body=self.openapi_index(), content_type=JSON)
        if rest.startswith("v3/"):
            body = self.openapi_group_version(rest[3:])
            if body is not None:
                return web.Response(body=body, content_type=JSON)
        raise NOT_FOUND

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
