"""Kubernetes protobuf bodies <-> JSON-shaped objects, driven by the type schema.

Typed kubectl commands (``create deployment``, ``auth can-i``, ``drain`` ...)
send ``Content-Type: application/vnd.kubernetes.protobuf``.  Such a body is::

    b"k8s\\x00"  +  runtime.Unknown {
                      1: TypeMeta {1: apiVersion, 2: kind}
                      2: raw bytes of the typed message (e.g. apps/v1 Deployment)
                      3: contentEncoding ("")
                      4: contentType ("")
                   }

The typed message follows the field numbers of Kubernetes' ``generated.proto``
(proto2), which :mod:`skiff.api.schema` carries as data.  :func:`decode_object`
returns exactly the object kubectl would have sent as JSON (Go ``encoding/json``
rules applied to the decoded Go struct):

* inlined structs (``Volume.volumeSource``, ``Probe.handler``) are flattened;
* maps become objects, named slices (``ExtraValue``) arrays, special types take
  their JSON form (Time -> RFC 3339, IntOrString -> int|string, Quantity -> string);
* the Kubernetes protobuf encoder writes every non-pointer field, zero or not, so
  a zero scalar is dropped again when its JSON tag says ``omitempty``; pointer
  fields are written only when set, so a present zero (``replicas: 0``) is kept;
* a value Go would print as ``null`` (an unset Time, a nil list) is left out:
  to the API server ``null`` and absent mean the same.

:func:`encode_object` is the inverse and writes the bytes kubectl writes (fields
in number order, map keys sorted, non-pointer fields always present), so tests
can build request bodies and the API server can answer in protobuf.

Malformed input never raises anything but a 400 :class:`StatusError`.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import orjson

from .errors import bad_request
from .schema import FieldDef, Schema, TypeDef

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_VARINT_TYPES = {"int32", "int64", "bool"}


class _Malformed(Exception):
    """Internal: the bytes do not match the schema (becomes a 400 at the edge)."""


class WireValueError(ValueError):
    """A special type's JSON form cannot be read (bad time or duration text)."""


# --------------------------------------------------------------------------- public


def decode_object(body: bytes, schema: Schema, type_name: str | None = None) -> dict[str, Any]:
    """Decode a ``k8s\\x00`` protobuf body into its JSON form.

    The type comes from the envelope's apiVersion/kind (``type_name`` overrides
    it).  Raises a 400 BadRequest :class:`StatusError` on anything malformed.
    """
    try:
        if not body.startswith(MAGIC):
            raise _Malformed("missing the k8s protobuf prefix")
        envelope = _fields_by_number(body[len(MAGIC):])
        type_meta = _fields_by_number(_last_bytes(envelope, 1))
        api_version = _text(_last_bytes(type_meta, 1))
        kind = _text(_last_bytes(type_meta, 2))
        encoding = _text(_last_bytes(envelope, 3))
        content_type = _text(_last_bytes(envelope, 4))
        if encoding or content_type not in ("", CONTENT_TYPE):
            raise _Malformed(f"unsupported content {content_type!r} (encoding {encoding!r})")
        typedef = schema.type(type_name) if type_name else _type_for(schema, api_version, kind)
        if typedef is None:
            raise _Malformed(f"no kind {kind!r} is registered for version {api_version!r}")
        obj: dict[str, Any] = {}
        if api_version:
            obj["apiVersion"] = api_version
        if kind:
            obj["kind"] = kind
        obj.update(_decode_struct(_last_bytes(envelope, 2), typedef, schema))
        return obj
    except (_Malformed, WireValueError) as e:
        raise bad_request(f"the object provided is unrecognized (protobuf): {e}") from None
    except RecursionError:
        raise bad_request("the object provided is unrecognized (protobuf): nested too deeply") from None


def encode_object(obj: dict[str, Any], schema: Schema, type_name: str | None = None) -> bytes:
    """Encode a JSON-shaped object as a ``k8s\\x00`` protobuf body, as kubectl does.

    Raises ``ValueError`` when the object does not fit its schema type.
    """
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    typedef = schema.type(type_name) if type_name else _type_for(schema, api_version, kind)
    if typedef is None:
        raise ValueError(f"no schema type for {api_version}/{kind}")
    type_meta = _bytes_field(1, api_version.encode()) + _bytes_field(2, kind.encode())
    try:
        raw = _encode_struct(obj, typedef, schema)
    except WireValueError as e:
        raise ValueError(str(e)) from None
    envelope = (_bytes_field(1, type_meta) + _bytes_field(2, raw)
                + _bytes_field(3, b"") + _bytes_field(4, b""))
    return MAGIC + envelope


def _type_for(schema: Schema, api_version: str, kind: str) -> TypeDef | None:
    group, _, version = api_version.rpartition("/")
    found = schema.for_kind(group, version, kind)
    if found is None:  # options kinds (DeleteOptions ...) are registered in every group
        meta = schema.type(f"{META}.{kind}")
        if meta is not None and meta.gvk is not None:
            found = meta
    return found


# --------------------------------------------------------------------------- wire reading

Wire = tuple[int, int, "int | bytes"]  # (field number, wire type, value)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Malformed("truncated varint")
        if shift >= 70:
            raise _Malformed("varint too long")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _iter_fields(data: bytes) -> Iterator[Wire]:
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == VARINT:
            value, pos = _read_varint(data, pos)
            yield number, wire, value
        elif wire == LENGTH:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise _Malformed("length-delimited field runs past the end")
            yield number, wire, data[pos:pos + size]
            pos += size
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if pos + width > end:
                raise _Malformed("truncated fixed-width field")
            yield number, wire, int.from_bytes(data[pos:pos + width], "little")
            pos += width
        else:
            raise _Malformed(f"unsupported wire type {wire}")


def _fields_by_number(data: bytes) -> dict[int, list[tuple[int, int | bytes]]]:
    out: dict[int, list[tuple[int, int | bytes]]] = {}
    for number, wire, value in _iter_fields(data):
        out.setdefault(number, []).append((wire, value))
    return out


def _last_bytes(fields: dict[int, list[tuple[int, int | bytes]]], number: int) -> bytes:
    values = fields.get(number)
    if not values:
        return b""
    wire, value = values[-1]
    if wire != LENGTH or not isinstance(value, bytes):
        raise _Malformed(f"field {number} is not length-delimited")
    return value


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("string is not valid UTF-8") from None


# --------------------------------------------------------------------------- decoding


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(kind: str, wire: int, value: int | bytes) -> Any:
    if kind in _VARINT_TYPES:
        if wire != VARINT or not isinstance(value, int):
            raise _Malformed(f"expected a varint for {kind}")
        if kind == "bool":
            return value != 0
        return _signed(value, 32 if kind == "int32" else 64)
    if kind in ("double", "float"):
        if wire != (FIXED64 if kind == "double" else FIXED32) or not isinstance(value, int):
            raise _Malformed(f"expected a fixed-width {kind}")
        fmt = "<d" if kind == "double" else "<f"
        return struct.unpack(fmt, value.to_bytes(struct.calcsize(fmt), "little"))[0]
    if wire != LENGTH or not isinstance(value, bytes):
        raise _Malformed(f"expected length-delimited {kind}")
    if kind == "string":
        return _text(value)
    return base64.b64encode(value).decode("ascii")  # bytes: base64 in JSON


def _repeated_scalars(kind: str, values: list[tuple[int, int | bytes]]) -> list[Any]:
    out: list[Any] = []
    for wire, value in values:
        if wire == LENGTH and kind in _VARINT_TYPES | {"double", "float"}:
            assert isinstance(value, bytes)
            packed_wire = VARINT if kind in _VARINT_TYPES else (FIXED64 if kind == "double" else FIXED32)
            out.extend(_scalar(kind, packed_wire, v) for _, w, v in _iter_packed(value, packed_wire))
        else:
            out.append(_scalar(kind, wire, value))
    return out


def _iter_packed(data: bytes, wire: int) -> Iterator[Wire]:
    pos = 0
    while pos < len(data):
        if wire == VARINT:
            value, pos = _read_varint(data, pos)
        else:
            width = 8 if wire == FIXED64 else 4
            if pos + width > len(data):
                raise _Malformed("truncated packed field")
            value, pos = int.from_bytes(data[pos:pos + width], "little"), pos + width
        yield 0, wire, value


def _message_bytes(wire: int, value: int | bytes) -> bytes:
    if wire != LENGTH or not isinstance(value, bytes):
        raise _Malformed("expected an embedded message")
    return value


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def _decode_struct(data: bytes, typedef: TypeDef, schema: Schema) -> dict[str, Any]:
    """A message as the JSON object Go would print for it."""
    if typedef.special is not None:
        raise _Malformed(f"{typedef.name} is not a plain message")
    wire_fields = _fields_by_number(data)
    out: dict[str, Any] = {}
    for f in typedef.fields.values():
        if f.number == 0:
            continue
        values = wire_fields.get(f.number)
        if f.inline:
            inner = _require_type(schema, f.type)
            out.update(_decode_struct(_message_bytes(*values[-1]) if values else b"", inner, schema))
            continue
        present, value = _decode_field(f, values, schema)
        if not present or value is None:
            continue
        if f.omitempty and not f.pointer and _is_zero(value) and _zero_is_omitted(f, schema):
            continue
        out[f.name] = value
    return out


def _zero_is_omitted(f: FieldDef, schema: Schema) -> bool:
    """Go's omitempty never drops a struct (``"status": {}``, IntOrString ``0``)."""
    if f.repeated or f.map_value is not None or f.type in _SCALAR_KINDS:
        return True
    inner = schema.type(f.type)
    return inner is not None and inner.special == "list"


_SCALAR_KINDS = frozenset({"string", "int32", "int64", "bool", "double", "float", "bytes"})


def _decode_field(f: FieldDef, values: list[tuple[int, int | bytes]] | None,
                  schema: Schema) -> tuple[bool, Any]:
    """(present in JSON?, value).  Absent non-pointer fields take Go's zero value."""
    if f.map_value is not None:
        if not values:
            return False, None
        return True, {k: v for k, v in (_decode_map_entry(f, w, v, schema) for w, v in values)}
    if f.repeated:
        if not values:
            return False, None
        if f.type in _SCALAR_KINDS:
            return True, _repeated_scalars(f.type, values)
        return True, [_decode_value(f.type, _message_bytes(w, v), schema) for w, v in values]
    if f.type in _SCALAR_KINDS:
        if values:
            return True, _scalar(f.type, *values[-1])
        if f.pointer or f.type == "bytes":
            return False, None
        return True, _zero_scalar(f.type)
    if not values:
        if f.pointer:
            return False, None
        return True, _decode_value(f.type, b"", schema)
    return True, _decode_value(f.type, _message_bytes(*values[-1]), schema)


def _zero_scalar(kind: str) -> Any:
    return {"string": "", "bool": False, "double": 0.0, "float": 0.0}.get(kind, 0)


def _decode_map_entry(f: FieldDef, wire: int, value: int | bytes,
                      schema: Schema) -> tuple[str, Any]:
    entry = _fields_by_number(_message_bytes(wire, value))
    key = _text(_last_bytes(entry, 1))
    kind = f.map_value or f.type
    raw = entry.get(2)
    if kind in _SCALAR_KINDS:
        return key, _scalar(kind, *raw[-1]) if raw else _zero_scalar(kind)
    return key, _decode_value(kind, _message_bytes(*raw[-1]) if raw else b"", schema)


def _decode_value(type_name: str, data: bytes, schema: Schema) -> Any:
    """A message-typed value: a plain struct, or a special type in its JSON form."""
    typedef = _require_type(schema, type_name)
    special = typedef.special
    if special is None:
        return _decode_struct(data, typedef, schema)
    fields = _fields_by_number(data)
    if special in ("time", "microtime"):
        seconds = _last_int(fields, 1, 64)
        nanos = _last_int(fields, 2, 32)
        if not data:
            return None  # Go's zero time prints as null
        return format_time(seconds, nanos, micro=special == "microtime")
    if special == "duration":
        return format_duration(_last_int(fields, 1, 64))
    if special == "quantity":
        return _text(_last_bytes(fields, 1)) or "0"
    if special == "intorstring":
        if _last_int(fields, 1, 64) == 1:
            return _text(_last_bytes(fields, 3))
        return _last_int(fields, 2, 32)
    if special in ("raw", "fieldsv1"):
        raw = _last_bytes(fields, 1)
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Malformed(f"{type_name} does not hold JSON") from None
    if special == "list":
        items = typedef.fields["items"]
        return _decode_field(items, fields.get(items.number), schema)[1] or None
    raise _Malformed(f"unknown special type {special}")


def _last_int(fields: dict[int, list[tuple[int, int | bytes]]], number: int, bits: int) -> int:
    values = fields.get(number)
    if not values:
        return 0
    wire, value = values[-1]
    if wire != VARINT or not isinstance(value, int):
        raise _Malformed(f"field {number} is not a varint")
    return _signed(value, bits)


def _require_type(schema: Schema, name: str) -> TypeDef:
    typedef = schema.type(name)
    if typedef is None:
        raise _Malformed(f"schema has no type {name}")
    return typedef


# --------------------------------------------------------------------------- encoding


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # negative ints are ten-byte two's complement varints
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, LENGTH) + _varint(len(data)) + data


def _encode_scalar(number: int, kind: str, value: Any, path: str) -> bytes:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{path}: expected a boolean")
        return _key(number, VARINT) + _varint(int(value))
    if kind in ("int32", "int64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError(f"{path}: expected an integer")
        return _key(number, VARINT) + _varint(int(value))
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path}: expected a number")
        if kind == "double":
            return _key(number, FIXED64) + struct.pack("<d", value)
        return _key(number, FIXED32) + struct.pack("<f", value)
    if not isinstance(value, str):
        raise ValueError(f"{path}: expected a string")
    if kind == "string":
        return _bytes_field(number, value.encode())
    try:
        return _bytes_field(number, base64.b64decode(value, validate=True))
    except binascii.Error:
        raise ValueError(f"{path}: expected base64 data") from None


def _encode_struct(obj: Any, typedef: TypeDef, schema: Schema, path: str = "") -> bytes:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise ValueError(f"{path or '.'}: expected an object for {typedef.name}")
    parts: list[bytes] = []
    for f in sorted(typedef.fields.values(), key=lambda fd: fd.number):
        if f.number == 0:
            continue
        if f.inline:
            parts.append(_bytes_field(f.number, _encode_struct(
                obj, _type(schema, f.type), schema, path)))
            continue
        parts.append(_encode_field(f, obj.get(f.name), schema, f"{path}.{f.name}"))
    return b"".join(parts)


def _encode_field(f: FieldDef, value: Any, schema: Schema, path: str) -> bytes:
    if f.map_value is not None:
        if not value:
            return b""
        if not isinstance(value, dict):
            raise ValueError(f"{path}: expected an object")
        return b"".join(
            _bytes_field(f.number, _bytes_field(1, str(k).encode())
                         + _encode_one(2, f.map_value, value[k], schema, f"{path}.{k}"))
            for k in sorted(value))
    if f.repeated:
        if not value:
            return b""
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected an array")
        return b"".join(_encode_one(f.number, f.type, item, schema, f"{path}[{i}]")
                        for i, item in enumerate(value))
    if value is None:
        if f.pointer or f.type == "bytes":
            return b""
        if f.type in _SCALAR_KINDS:
            value = _zero_scalar(f.type)
    return _encode_one(f.number, f.type, value, schema, path)


def _encode_one(number: int, type_name: str, value: Any, schema: Schema, path: str) -> bytes:
    """One value of a field: a scalar, a plain message, or a special type."""
    if type_name in _SCALAR_KINDS:
        return _encode_scalar(number, type_name, value, path)
    typedef = _type(schema, type_name)
    if typedef.special is None:
        return _bytes_field(number, _encode_struct(value, typedef, schema, path))
    return _bytes_field(number, _encode_special(typedef, value, schema, path))


def _encode_special(typedef: TypeDef, value: Any, schema: Schema, path: str) -> bytes:
    special = typedef.special
    if special in ("time", "microtime"):
        if value is None:
            return b""  # the zero time is an empty message
        if not isinstance(value, str):
            raise ValueError(f"{path}: expected an RFC 3339 time")
        seconds, nanos = parse_time(value)
        return _key(1, VARINT) + _varint(seconds) + _key(2, VARINT) + _varint(nanos)
    if special == "duration":
        nanos = parse_duration(value) if isinstance(value, str) else 0
        return _key(1, VARINT) + _varint(nanos)
    if special == "quantity":
        text = "0" if value is None else value if isinstance(value, str) else _number_text(value, path)
        return _bytes_field(1, text.encode())
    if special == "intorstring":
        if isinstance(value, str):
            return (_key(1, VARINT) + _varint(1) + _key(2, VARINT) + _varint(0)
                    + _bytes_field(3, value.encode()))
        number = 0 if value is None else value
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"{path}: expected an integer or a string")
        return (_key(1, VARINT) + _varint(0) + _key(2, VARINT) + _varint(number)
                + _bytes_field(3, b""))
    if special in ("raw", "fieldsv1"):
        return b"" if value is None else _bytes_field(1, orjson.dumps(value))
    if special == "list":
        items = typedef.fields["items"]
        return _encode_field(items, value, schema, path)
    raise ValueError(f"{path}: unknown special type {special}")


def _number_text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: expected a quantity")
    return str(value)


def _type(schema: Schema, name: str) -> TypeDef:
    typedef = schema.type(name)
    if typedef is None:
        raise ValueError(f"schema has no type {name}")
    return typedef


# --------------------------------------------------------------------------- special JSON forms

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def format_time(seconds: int, nanos: int, micro: bool = False) -> str:
    """Go's RFC 3339 in UTC: ``2024-01-02T03:04:05Z`` (Time) or ``...05.000000Z`` (MicroTime)."""
    try:
        t = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise WireValueError(f"time {seconds}s is out of range") from None
    text = (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}")
    if micro:
        text += f".{nanos // 1000:06d}"
    return text + "Z"


def parse_time(text: str) -> tuple[int, int]:
    """RFC 3339 text -> (seconds since the epoch, nanoseconds)."""
    m = _RFC3339.match(text)
    if not m:
        raise WireValueError(f"{text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        t = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        raise WireValueError(f"{text!r} is not a valid time") from None
    seconds = (t - _EPOCH) // timedelta(seconds=1)
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    nanos = int((m.group(7) or "").ljust(9, "0"))
    return seconds, nanos


_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([a-z\u00b5\u03bc]+)")


def format_duration(nanos: int) -> str:
    """Go's ``time.Duration.String()``: ``1h0m0s``, ``1m30s``, ``1.5s``, ``300ms``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign, u = ("-" if nanos < 0 else ""), abs(nanos)
    if u < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if u >= scale:
                return sign + _fraction(u, scale) + unit
    text = _fraction(u % 60_000_000_000, 1_000_000_000) + "s"
    minutes = u // 60_000_000_000
    if minutes:
        text = f"{minutes % 60}m" + text
        if minutes >= 60:
            text = f"{minutes // 60}h" + text
    return sign + text


def _fraction(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0") if scale > 1 else ""
    return f"{whole}.{digits}" if digits else str(whole)


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: ``"1h2m3.5s"`` -> nanoseconds."""
    body, sign = text, 1
    if body[:1] in "+-" and body:
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    if body == "0":
        return 0
    total, pos = 0, 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if not m or not (m.group(1) or m.group(2)) or m.group(3) not in _UNITS:
            raise WireValueError(f"invalid duration {text!r}")
        scale = _UNITS[m.group(3)]
        frac = m.group(2) or ""
        total += int(m.group(1) or "0") * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
        pos = m.end()
    if not body:
        raise WireValueError(f"invalid duration {text!r}")
    return sign * total
