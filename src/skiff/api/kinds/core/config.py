"""ConfigMaps and Secrets: key/value data mounted into pods or read as env vars.

Both share key rules (``[-._a-zA-Z0-9]+``, not ``.``/``..``), a 1 MiB size limit
and ``immutable: true``, after which data can no longer change.  Secrets store
``data`` base64-encoded; ``stringData`` is a write-only convenience merged into
``data`` (and dropped) on every write, and ``type`` defaults to ``Opaque``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m

Obj = dict[str, Any]

MAX_SIZE = 1024 * 1024
IMMUTABLE_MESSAGE = "field is immutable when `immutable` is set"

# --- ConfigMap ----------------------------------------------------------------

CONFIGMAP_COLUMNS = (m.NAME_COLUMN, Column("Data", description="Number of keys."), m.AGE_COLUMN)


def configmap_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [m.object_name(obj), count, m.object_age(obj, now)]


def _validate_keys(data: dict[str, Any] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in sorted(data or {}):
        causes += m.invalid_each(m.key(path, key), key, m.is_config_map_key(key))
    return causes


def _validate_immutable(obj: Obj, old: Obj, fields: tuple[str, ...]) -> list[Cause]:
    if not old.get("immutable"):
        return []
    causes: list[Cause] = []
    if obj.get("immutable") != old.get("immutable"):
        causes.append(m.forbidden("immutable", IMMUTABLE_MESSAGE))
    for f in fields:
        if (obj.get(f) or None) != (old.get(f) or None):
            causes.append(m.forbidden(f, IMMUTABLE_MESSAGE))
    return causes


def validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    causes += _validate_keys(data, "data")
    causes += _validate_keys(binary, "binaryData")
    for key in sorted(binary):
        if key in data:
            causes.append(m.invalid(m.key("binaryData", key), key, "duplicate of key present in data"))
    size = sum(len(k) + len(str(v)) for k, v in data.items())
    size += sum(len(k) + len(_decoded(v)) for k, v in binary.items())
    if size > MAX_SIZE:
        causes.append(m.too_long("", MAX_SIZE))
    if old is not None:
        causes += _validate_immutable(obj, old, ("data", "binaryData"))
    return causes


CONFIGMAPS = ResourceInfo(
    group="", version="v1", kind="ConfigMap", plural="configmaps", singular="configmap",
    namespaced=True, schema_type="io.k8s.api.core.v1.ConfigMap", short_names=("cm",),
    columns=CONFIGMAP_COLUMNS, row=configmap_row, validate=validate_configmap,
)

# --- Secret -------------------------------------------------------------------

SECRET_COLUMNS = (
    m.NAME_COLUMN,
    Column("Type", description="The secret's type."),
    Column("Data", description="Number of keys."),
    m.AGE_COLUMN,
)

#: Secret types with required keys: type -> keys of which at least one must be present.
_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def secret_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), obj.get("type", ""), len(obj.get("data") or {}), m.object_age(obj, now)]


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return str(value).encode()


def default_secret(obj: Obj) -> None:
    """Type ``Opaque`` by default; ``stringData`` is merged into ``data`` and removed."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if string_data:
        data = dict(obj.get("data") or {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data


def _base64_problem(value: Any) -> str:
    text = str(value)
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        for i, ch in enumerate(text):
            if not (ch.isalnum() and ch.isascii() or ch in "+/="):
                return f"illegal base64 data at input byte {i}"
        return f"illegal base64 data at input byte {len(text) - len(text) % 4}"
    return ""


def validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    data = obj.get("data") or {}
    causes += _validate_keys(data, "data")
    for key in sorted(data):
        problem = _base64_problem(data[key])
        if problem:
            causes.append(m.invalid(m.key("data", key), "<value omitted>", problem))
    if sum(len(_decoded(v)) for v in data.values()) > MAX_SIZE:
        causes.append(m.too_long("data", MAX_SIZE))
    kind = obj.get("type", "")
    if kind == "kubernetes.io/service-account-token":
        if not m.get_path(obj, "metadata.annotations", {}).get("kubernetes.io/service-account.name"):
            causes.append(m.required(m.key("metadata.annotations", "kubernetes.io/service-account.name")))
    elif kind in _REQUIRED_KEYS:
        for k in _REQUIRED_KEYS[kind]:
            if k not in data:
                causes.append(m.required(m.key("data", k)))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes.append(m.required(m.key("data", "username")))
            causes.append(m.required(m.key("data", "password")))
    elif kind == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in data:
                causes.append(m.required(m.key("data", k)))
    if old is not None:
        causes += m.validate_immutable(kind, old.get("type", ""), "type")
        causes += _validate_immutable(obj, old, ("data",))
    return causes


SECRETS = ResourceInfo(
    group="", version="v1", kind="Secret", plural="secrets", singular="secret", namespaced=True,
    schema_type="io.k8s.api.core.v1.Secret", columns=SECRET_COLUMNS, row=secret_row,
    default=default_secret, validate=validate_secret,
    field_labels={"type": lambda o: o.get("type", "")},
)
