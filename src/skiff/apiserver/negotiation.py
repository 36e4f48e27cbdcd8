"""Content negotiation: request bodies in, response bodies out.

Requests may carry JSON, YAML or Kubernetes protobuf (``k8s\\x00`` + a
``runtime.Unknown`` envelope, sent by kubectl's typed commands); patches name
their strategy in the Content-Type.  Responses are always JSON
(``application/json``); what *shape* of JSON is chosen from the Accept header:

==========================================================  =====================
Accept contains                                             answer
==========================================================  =====================
``as=Table`` (``g=meta.k8s.io``, v1 or v1beta1)             ``meta.k8s.io/v1`` Table
``as=PartialObjectMetadata[List]``                          metadata only
``as=APIGroupDiscoveryList`` with ``v=v2`` / ``v=v2beta1``  aggregated discovery
anything else                                               the object itself
==========================================================  =====================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

import orjson
import yaml  # type: ignore[import-untyped]
from aiohttp import web

from ..api.errors import StatusError, bad_request, unsupported_media_type

Obj = dict[str, Any]

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Accept:
    """What representation the client asked for."""

    table: bool = False
    partial_metadata: bool = False
    discovery: str = ""  # "v2" | "v2beta1" | "" (legacy)


_PLAIN = Accept()


def parse_accept(header: str) -> Accept:
    """Read the representation wanted from an Accept header."""
    if not header or "as=" not in header:
        return _PLAIN
    return _parse_accept(header)


@lru_cache(maxsize=256)  # clients repeat the same few headers
def _parse_accept(header: str) -> Accept:
    table = partial = False
    discovery = ""
    for clause in header.split(","):
        params = {}
        for piece in clause.split(";")[1:]:
            k, _, v = piece.strip().partition("=")
            params[k] = v
        kind = params.get("as", "")
        if kind == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io" and not (table or partial):
            table = True
        elif kind in ("PartialObjectMetadata", "PartialObjectMetadataList") and not (table or partial):
            partial = True
        elif kind == "APIGroupDiscoveryList" and not discovery and params.get("v") in ("v2", "v2beta1"):
            discovery = params["v"]
    return Accept(table=table, partial_metadata=partial, discovery=discovery)


def query_flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends "True")."""
    return query.get(name, "") in ("true", "1", "True", "TRUE", "t", "T")


def media_type(request: web.Request) -> str:
    """The Content-Type without parameters, lower-cased ("" when absent)."""
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


def describe_data(body: bytes, limit: int = 30) -> str:
    """A short hex summary of a body for decode errors (as Kubernetes prints)."""
    head = body[:limit]
    text = " ".join(f"{b:02x}" for b in head)
    return text + (" ..." if len(body) > limit else "")


def decode_body(body: bytes, content_type: str, *, expected_kind: str,
                protobuf_decoder: Callable[[bytes], Obj] | None) -> Obj:
    """Decode a create/update body into an object dict.

    Raises 415 for an unknown content type and 400 (with Kubernetes' wording)
    for a body that is not a JSON object.
    """
    if content_type in ("", JSON, "*/*"):
        try:
            obj = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            raise bad_request(
                f"the object provided is unrecognized (must be of type {expected_kind}): "
                f"couldn't get version/kind; json parse error: {exc} ({describe_data(body)})") from None
    elif content_type in (YAML, "application/x-yaml", "text/yaml"):
        try:
            obj = yaml.load(body, Loader=_YamlLoader) if body else None
        except yaml.YAMLError as exc:
            raise bad_request(f"the object provided is unrecognized (must be of type {expected_kind}): "
                              f"yaml: {exc}") from None
    elif content_type == PROTOBUF:
        if protobuf_decoder is None:
            raise unsupported_media_type(content_type)
        try:
            obj = protobuf_decoder(body)
        except StatusError:
            raise
        except Exception as exc:  # a malformed message: the client's fault
            raise bad_request(f"the object provided is unrecognized (must be of type {expected_kind}): "
                              f"protobuf: {exc}") from None
    else:
        raise unsupported_media_type(content_type)
    if not isinstance(obj, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {expected_kind}): "
                          f"couldn't get version/kind; json parse error: expected an object "
                          f"({describe_data(body)})")
    return obj


def decode_patch(body: bytes, content_type: str) -> Any:
    """Decode a PATCH body (JSON for every patch type; apply patches may be YAML)."""
    if content_type not in PATCH_TYPES:
        raise unsupported_media_type(content_type)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if content_type == APPLY_PATCH:
            try:
                return yaml.load(body, Loader=_YamlLoader)
            except yaml.YAMLError as yexc:
                raise bad_request(f"error decoding YAML: {yexc}") from None
        raise bad_request(f"error decoding patch: {exc}") from None


GZIP_THRESHOLD = 128 * 1024  # kube-apiserver compresses responses larger than this


def compressed(request: web.Request, resp: web.Response) -> web.Response:
    """Gzip a large response when the client accepts it (kubectl does, for big lists)."""
    body = resp.body
    if isinstance(body, bytes) and len(body) > GZIP_THRESHOLD \
            and "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression(web.ContentCoding.gzip)
    return resp


def json_response(body: Any, status: int = 200, *, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=data, status=status, content_type=JSON, headers=headers)


def status_response(err: StatusError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(err.to_status(), status=err.code, headers=headers)
