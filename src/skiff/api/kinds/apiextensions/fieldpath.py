"""Field paths into an OpenAPI schema, as kube-apiserver resolves them.

    resolve_field_path(path, schema, allow_array) -> (steps, schema found)

Used for ``x-kubernetes-validations[*].fieldPath`` (``.a.b`` and ``['a']`` steps) and for
``selectableFields[*].jsonPath`` (``.a.b`` only).  An invalid path raises ValueError whose
text is kube-apiserver's reason ("does not refer to a valid field", ...).
"""

from __future__ import annotations

from typing import Iterator

from .common import Obj, as_dict, as_schema


def _path_tokens(path: str) -> Iterator[str]:
    i = 0
    while i < len(path):
        if path[i] in ".[]":
            yield path[i]
            i += 1
        elif path[i] == "'":
            j = i + 1
            while j < len(path) and not (path[j] == "'" and path[j - 1] != "\\"):
                j += 1
            yield path[i:j + 1]
            i = j + 1
        else:
            j = i
            while j < len(path) and path[j] not in ".[]":
                j += 1
            yield path[i:j]
            i = j


def resolve_field_path(path: str, schema: Obj | None, allow_array: bool) -> tuple[list[str], Obj | None]:
    """Follow a ``.a.b`` / ``['a']`` path through a schema: the path's steps and the schema
    found.  Raises ValueError with kube-apiserver's reason when the path is not valid."""
    steps: list[str] = []
    tokens = _path_tokens(path)
    for token in tokens:
        if token == "[":
            if not allow_array:
                raise ValueError("array notation is not allowed")
            quoted = next(tokens, None)
            if quoted is None:
                raise ValueError("unexpected end of JSON path")
            if len(quoted) < 2 or quoted[0] != "'" or quoted[-1] != "'":
                raise ValueError(f"expected single quoted string but got {quoted}")
            name = quoted[1:-1].replace("\\'", "'").replace("\\\\", "\\")
            schema = _step(schema, name)
            closing = next(tokens, None)
            if closing is None:
                raise ValueError("unexpected end of JSON path")
            if closing != "]":
                raise ValueError(f"expected ] but got {closing}")
        elif token == ".":
            field = next(tokens, None)
            if field is None:
                raise ValueError("unexpected end of JSON path")
            name = field
            schema = _step(schema, name)
        else:
            raise ValueError(f"expected [ or . but got: {token}")
        steps.append(name)
    return steps, schema


def _step(schema: Obj | None, name: str) -> Obj | None:
    if schema is None:
        raise ValueError("does not refer to a valid field")
    properties = as_dict(schema.get("properties"))
    if properties:
        if name not in properties:
            raise ValueError("does not refer to a valid field")
        return as_dict(properties[name])
    if schema.get("additionalProperties") is not None:
        return as_schema(schema.get("additionalProperties"))
    raise ValueError("does not refer to a valid field")
