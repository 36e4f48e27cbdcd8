"""A Swagger 2.0 document (a JSON-shaped dict) as gnostic's ``openapi.v2.Document`` protobuf.

client-go asks for ``/openapi/v2`` in protobuf only and decodes the body with
the generated Go code of ``openapiv2/OpenAPIv2.proto`` from
github.com/google/gnostic-models (proto3, package ``openapi.v2``).  That schema
mirrors Swagger 2.0 with three kinds of adaptations, all handled here:

* **JSON objects with free keys** become repeated ``Named<X> {1: name, 2: value}``
  entries inside a wrapper message (``Definitions``, ``Properties``, ``Paths``,
  ``Responses`` ...), in the dict's key order;
* **values of several possible shapes** become ``oneof`` wrappers: a parameter
  is ``ParametersItem {1: Parameter | 2: JsonReference}`` and a ``Parameter``
  is ``{1: BodyParameter | 2: NonBodyParameter {1: header | 2: formData |
  3: query | 4: path}}``; ``type`` is ``TypeItem {1: repeated string}``,
  ``items`` is ``ItemsItem {1: repeated Schema}``, ``additionalProperties`` is
  ``{1: Schema | 2: bool}``, a response schema is ``SchemaItem {1: Schema}``;
* **arbitrary values** (``x-...`` vendor extensions, ``default``, ``enum``,
  ``example``) become ``Any {2: yaml}``: the value as YAML text.  JSON text is
  YAML, so the value is written with orjson; kubectl parses it back with a
  YAML decoder (``x-kubernetes-group-version-kind`` is how it finds kinds).

Encoding rules are proto3's, as Go's ``proto.Marshal`` applies them: fields in
field-number order, scalars left out when zero/empty, message fields written
whenever present (even empty), oneof members always written, strings UTF-8,
doubles as little-endian fixed64.

Field numbers are facts from OpenAPIv2.proto, kept below as data (one layout
per message: JSON key -> (number, kind)).  A key the layout does not know
raises :class:`ValueError`, so nothing is silently dropped; not supported are
``security``, ``securityDefinitions`` and ``xml`` (Kubernetes' clients read none).
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any, Callable, Mapping

import orjson

__all__ = ["encode_document"]

# A field kind: (field number, JSON value) -> the field's complete bytes.
Kind = Callable[[int, Any], bytes]


def encode_document(doc: Mapping[str, Any]) -> bytes:
    """The ``openapi.v2.Document`` bytes of a Swagger 2.0 document."""
    return _message("Document", doc)


# --------------------------------------------------------------------------- wire format


_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64  # negative int64: ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@lru_cache(maxsize=256)
def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _length_delimited(number: int, data: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(data)) + data


# --------------------------------------------------------------------------- field kinds
#
# Each kind turns one JSON value into the complete bytes of its field(s),
# tag included, or b"" when proto3 leaves the value out.


def _string(number: int, value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return _length_delimited(number, value.encode()) if value else b""


def _strings(number: int, value: Any) -> bytes:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return b"".join(_length_delimited(number, _text(v).encode()) for v in value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _bool(number: int, value: Any) -> bytes:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {value!r}")
    return _tag(number, 0) + b"\x01" if value else b""


def _int64(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return _tag(number, 0) + _varint(value) if value else b""


def _double(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return _tag(number, 1) + struct.pack("<d", value) if value else b""


def _any_bytes(value: Any) -> bytes:
    """``Any {2: yaml}``."""
    return _length_delimited(2, orjson.dumps(value))


def _any(number: int, value: Any) -> bytes:
    return _length_delimited(number, _any_bytes(value))


def _anys(number: int, value: Any) -> bytes:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    return b"".join(_any(number, v) for v in value)


def _named_any(name: str, value: Any) -> bytes:
    """``NamedAny {1: name, 2: Any}``."""
    return _length_delimited(1, name.encode()) + _length_delimited(2, _any_bytes(value))


def _of(message: str) -> Kind:
    """A field holding one ``message``."""
    def field(number: int, value: Any) -> bytes:
        return _length_delimited(number, _message(message, value))
    return field


def _list_of(message: str) -> Kind:
    """A repeated field of ``message``."""
    def field(number: int, value: Any) -> bytes:
        if not isinstance(value, list):
            raise ValueError(f"expected a list of {message}, got {value!r}")
        return b"".join(_length_delimited(number, _message(message, v)) for v in value)
    return field


def _named(value_kind: Kind, entry_number: int = 1,
           extension_number: int | None = None) -> Kind:
    """A JSON object of free keys: a wrapper message of ``Named<X> {1: key, 2: value}``
    entries at ``entry_number``; in ``Paths`` and ``Responses`` the ``x-`` keys are
    vendor extensions at ``extension_number`` instead."""
    def field(number: int, value: Any) -> bytes:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object, got {value!r}")
        parts: list[tuple[int, bytes]] = []
        for key, v in value.items():
            if extension_number is not None and key.startswith("x-"):
                parts.append((extension_number,
                              _length_delimited(extension_number, _named_any(key, v))))
            else:
                entry = _length_delimited(1, key.encode()) + value_kind(2, v)
                parts.append((entry_number, _length_delimited(entry_number, entry)))
        parts.sort(key=lambda part: part[0])
        return _length_delimited(number, b"".join(data for _, data in parts))
    return field


# --------------------------------------------------------------------------- oneof wrappers


def _type_item(number: int, value: Any) -> bytes:
    """``TypeItem {1: repeated string}`` from ``"string"`` or ``["string", "null"]``."""
    return _length_delimited(number, _strings(1, value if isinstance(value, list) else [value]))


def _items_item(number: int, value: Any) -> bytes:
    """``ItemsItem {1: repeated Schema}`` from one schema or a list of them."""
    return _length_delimited(number, _list_of("Schema")(1, value if isinstance(value, list) else [value]))


def _additional_properties(number: int, value: Any) -> bytes:
    """``AdditionalPropertiesItem {1: Schema | 2: bool}`` (a oneof: false is written too)."""
    if isinstance(value, bool):
        return _length_delimited(number, _tag(2, 0) + (b"\x01" if value else b"\x00"))
    return _length_delimited(number, _of("Schema")(1, value))


def _schema_item(number: int, value: Any) -> bytes:
    """``SchemaItem {1: Schema | 2: FileSchema}``."""
    inner = "FileSchema" if isinstance(value, Mapping) and value.get("type") == "file" else "Schema"
    return _length_delimited(number, _of(inner)(1 if inner == "Schema" else 2, value))


def _json_reference_or(message: str) -> Kind:
    """``{1: <message> | 2: JsonReference}``: a ``{"$ref": ...}`` is the reference."""
    def field(number: int, value: Any) -> bytes:
        if isinstance(value, Mapping) and "$ref" in value:
            return _length_delimited(number, _of("JsonReference")(2, value))
        return _length_delimited(number, _of(message)(1, value))
    return field


_NON_BODY = {"header": (1, "HeaderParameterSubSchema"),
             "formData": (2, "FormDataParameterSubSchema"),
             "query": (3, "QueryParameterSubSchema"),
             "path": (4, "PathParameterSubSchema")}


def _parameter(number: int, value: Any) -> bytes:
    """``Parameter {1: BodyParameter | 2: NonBodyParameter {by "in"}}``."""
    where = value.get("in") if isinstance(value, Mapping) else None
    if where == "body":
        return _length_delimited(number, _of("BodyParameter")(1, value))
    if where not in _NON_BODY:
        raise ValueError(f"a parameter needs in: body|header|formData|query|path, got {value!r}")
    inner_number, message = _NON_BODY[where]
    return _length_delimited(number, _length_delimited(2, _of(message)(inner_number, value)))


def _parameters_item(number: int, value: Any) -> bytes:
    """``ParametersItem {1: Parameter | 2: JsonReference}``."""
    if isinstance(value, Mapping) and "$ref" in value:
        return _length_delimited(number, _of("JsonReference")(2, value))
    return _length_delimited(number, _parameter(1, value))


def _parameters_items(number: int, value: Any) -> bytes:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of parameters, got {value!r}")
    return b"".join(_parameters_item(number, v) for v in value)


# --------------------------------------------------------------------------- layouts
#
# JSON key -> (field number, kind); "x-" keys go to the message's vendor
# extension number (None: the message has none).

Layout = tuple[dict[str, tuple[int, Kind]], int | None]


def _validations(first: int) -> dict[str, tuple[int, Kind]]:
    """The run of JSON-Schema validation keywords shared by parameters, headers, items."""
    names: list[tuple[str, Kind]] = [
        ("default", _any), ("maximum", _double), ("exclusiveMaximum", _bool),
        ("minimum", _double), ("exclusiveMinimum", _bool), ("maxLength", _int64),
        ("minLength", _int64), ("pattern", _string), ("maxItems", _int64),
        ("minItems", _int64), ("uniqueItems", _bool), ("enum", _anys), ("multipleOf", _double)]
    return {name: (first + i, kind) for i, (name, kind) in enumerate(names)}


def _simple_parameter(allow_empty: bool) -> Layout:
    """Query/formData (with allowEmptyValue) and header/path parameter sub-schemas."""
    fields: dict[str, tuple[int, Kind]] = {
        "required": (1, _bool), "in": (2, _string), "description": (3, _string),
        "name": (4, _string)}
    n = 5
    if allow_empty:
        fields["allowEmptyValue"] = (5, _bool)
        n = 6
    fields.update({"type": (n, _string), "format": (n + 1, _string),
                   "items": (n + 2, _of("PrimitivesItems")), "collectionFormat": (n + 3, _string)})
    fields.update(_validations(n + 4))
    return fields, n + 17


_LAYOUTS: dict[str, Layout] = {
    "Document": ({
        "swagger": (1, _string), "info": (2, _of("Info")), "host": (3, _string),
        "basePath": (4, _string), "schemes": (5, _strings), "consumes": (6, _strings),
        "produces": (7, _strings),
        "paths": (8, _named(_of("PathItem"), entry_number=2, extension_number=1)),
        "definitions": (9, _named(_of("Schema"))),
        "parameters": (10, _named(_parameter)),
        "responses": (11, _named(_of("Response"))),
        "tags": (14, _list_of("Tag")), "externalDocs": (15, _of("ExternalDocs")),
    }, 16),
    "Info": ({
        "title": (1, _string), "version": (2, _string), "description": (3, _string),
        "termsOfService": (4, _string), "contact": (5, _of("Contact")),
        "license": (6, _of("License")),
    }, 7),
    "Contact": ({"name": (1, _string), "url": (2, _string), "email": (3, _string)}, 4),
    "License": ({"name": (1, _string), "url": (2, _string)}, 3),
    "ExternalDocs": ({"description": (1, _string), "url": (2, _string)}, 3),
    "Tag": ({"name": (1, _string), "description": (2, _string),
             "externalDocs": (3, _of("ExternalDocs"))}, 4),
    "JsonReference": ({"$ref": (1, _string), "description": (2, _string)}, None),
    "PathItem": ({
        "$ref": (1, _string), "get": (2, _of("Operation")), "put": (3, _of("Operation")),
        "post": (4, _of("Operation")), "delete": (5, _of("Operation")),
        "options": (6, _of("Operation")), "head": (7, _of("Operation")),
        "patch": (8, _of("Operation")), "parameters": (9, _parameters_items),
    }, 10),
    "Operation": ({
        "tags": (1, _strings), "summary": (2, _string), "description": (3, _string),
        "externalDocs": (4, _of("ExternalDocs")), "operationId": (5, _string),
        "produces": (6, _strings), "consumes": (7, _strings),
        "parameters": (8, _parameters_items),
        "responses": (9, _named(_json_reference_or("Response"), 1, extension_number=2)),
        "schemes": (10, _strings), "deprecated": (11, _bool),
    }, 13),
    "BodyParameter": ({
        "description": (1, _string), "name": (2, _string), "in": (3, _string),
        "required": (4, _bool), "schema": (5, _of("Schema")),
    }, 6),
    "QueryParameterSubSchema": _simple_parameter(allow_empty=True),
    "FormDataParameterSubSchema": _simple_parameter(allow_empty=True),
    "HeaderParameterSubSchema": _simple_parameter(allow_empty=False),
    "PathParameterSubSchema": _simple_parameter(allow_empty=False),
    "PrimitivesItems": ({
        "type": (1, _string), "format": (2, _string), "items": (3, _of("PrimitivesItems")),
        "collectionFormat": (4, _string), **_validations(5),
    }, 18),
    "Header": ({
        "type": (1, _string), "format": (2, _string), "items": (3, _of("PrimitivesItems")),
        "collectionFormat": (4, _string), **_validations(5), "description": (18, _string),
    }, 19),
    "Response": ({
        "description": (1, _string), "schema": (2, _schema_item),
        "headers": (3, _named(_of("Header"))), "examples": (4, _named(_any)),
    }, 5),
    "Schema": ({
        "$ref": (1, _string), "format": (2, _string), "title": (3, _string),
        "description": (4, _string), "default": (5, _any), "multipleOf": (6, _double),
        "maximum": (7, _double), "exclusiveMaximum": (8, _bool), "minimum": (9, _double),
        "exclusiveMinimum": (10, _bool), "maxLength": (11, _int64), "minLength": (12, _int64),
        "pattern": (13, _string), "maxItems": (14, _int64), "minItems": (15, _int64),
        "uniqueItems": (16, _bool), "maxProperties": (17, _int64),
        "minProperties": (18, _int64), "required": (19, _strings), "enum": (20, _anys),
        "additionalProperties": (21, _additional_properties), "type": (22, _type_item),
        "items": (23, _items_item), "allOf": (24, _list_of("Schema")),
        "properties": (25, _named(_of("Schema"))), "discriminator": (26, _string),
        "readOnly": (27, _bool), "externalDocs": (29, _of("ExternalDocs")),
        "example": (30, _any),
    }, 31),
    "FileSchema": ({
        "format": (1, _string), "title": (2, _string), "description": (3, _string),
        "default": (4, _any), "required": (5, _strings), "type": (6, _string),
        "readOnly": (7, _bool), "externalDocs": (8, _of("ExternalDocs")), "example": (9, _any),
    }, 10),
}


def _message(name: str, obj: Any) -> bytes:
    """Encode ``obj`` (a JSON object) as the message ``name``, fields in number order."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{name}: expected an object, got {obj!r}")
    fields, extension_number = _LAYOUTS[name]
    parts: list[tuple[int, bytes]] = []
    for key, value in obj.items():
        spec = fields.get(key)
        if spec is not None:
            number, kind = spec
            try:
                parts.append((number, kind(number, value)))
            except ValueError as err:
                raise ValueError(f"{name}.{key}: {err}") from None
        elif key.startswith("x-") and extension_number is not None:
            parts.append((extension_number,
                          _length_delimited(extension_number, _named_any(key, value))))
        else:
            raise ValueError(f"{name} has no field {key!r}")
    parts.sort(key=lambda part: part[0])  # stable: repeated extensions keep their order
    return b"".join(data for _, data in parts)
