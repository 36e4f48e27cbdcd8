"""The OpenAPI rules of a CRD's ``openAPIV3Schema`` (apiextensions-apiserver
``ValidateCustomResourceDefinitionOpenAPISchema`` and friends).

    validate_schema(validation, status_enabled, opts, path) -> [Cause]
        a version's ``schema`` (or the lifted ``spec.validation``): the root rules when the
        status subresource is on, unsupported keywords, where ``default`` may appear,
        list/map extensions, the static checks of ``x-kubernetes-validations``, then the
        structural rules of :mod:`.structuralrules` when ``opts.require_structural``
    schema_has(schema, predicate) -> bool
        whether any schema nested in ``schema`` (itself included) satisfies ``predicate``;
        with has_invalid_type, has_kubernetes_extension, has_non_atomic_set and
        map_list_key_errors it decides which rules an update may relax

Pure functions; ``x-kubernetes-validations`` rules are not compiled and defaults are not
checked against their schema (that needs CEL).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator

from ...errors import Cause
from .. import meta as m
from .common import Obj, ValidationOptions, as_dict, as_list, as_schema, as_str, is_set, type_must_be
from .fieldpath import resolve_field_path
from .structuralrules import structural_errors, structural_init_error

SchemaPredicate = Callable[[Obj], bool]

OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
VALIDATION_RULE_REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")
_META_FIELDS = ("metadata", "kind", "apiVersion")

# Schema fields in the order of the internal Go struct, with what counts as "unset":
# "str" -> "" , "bool" -> false, "ptr" -> absent.  Used by the root-of-schema check below.
_SCHEMA_FIELDS = (
    ("id", "ID", "str"), ("$schema", "Schema", "str"), ("$ref", "Ref", "ptr"),
    ("description", "Description", "str"), ("type", "Type", "str"), ("nullable", "Nullable", "bool"),
    ("format", "Format", "str"), ("title", "Title", "str"), ("default", "Default", "ptr"),
    ("maximum", "Maximum", "ptr"), ("exclusiveMaximum", "ExclusiveMaximum", "bool"),
    ("minimum", "Minimum", "ptr"), ("exclusiveMinimum", "ExclusiveMinimum", "bool"),
    ("maxLength", "MaxLength", "ptr"), ("minLength", "MinLength", "ptr"), ("pattern", "Pattern", "str"),
    ("maxItems", "MaxItems", "ptr"), ("minItems", "MinItems", "ptr"), ("uniqueItems", "UniqueItems", "bool"),
    ("multipleOf", "MultipleOf", "ptr"), ("enum", "Enum", "ptr"), ("maxProperties", "MaxProperties", "ptr"),
    ("minProperties", "MinProperties", "ptr"), ("required", "Required", "ptr"), ("items", "Items", "ptr"),
    ("allOf", "AllOf", "ptr"), ("oneOf", "OneOf", "ptr"), ("anyOf", "AnyOf", "ptr"), ("not", "Not", "ptr"),
    ("properties", "Properties", "ptr"), ("additionalProperties", "AdditionalProperties", "ptr"),
    ("patternProperties", "PatternProperties", "ptr"), ("dependencies", "Dependencies", "ptr"),
    ("additionalItems", "AdditionalItems", "ptr"), ("definitions", "Definitions", "ptr"),
    ("externalDocs", "ExternalDocs", "ptr"), ("example", "Example", "ptr"),
    ("x-kubernetes-preserve-unknown-fields", "XPreserveUnknownFields", "ptr"),
    ("x-kubernetes-embedded-resource", "XEmbeddedResource", "bool"),
    ("x-kubernetes-int-or-string", "XIntOrString", "bool"),
    ("x-kubernetes-list-map-keys", "XListMapKeys", "ptr"), ("x-kubernetes-list-type", "XListType", "ptr"),
    ("x-kubernetes-map-type", "XMapType", "ptr"), ("x-kubernetes-validations", "XValidations", "ptr"),
)
_ROOT_ALLOWED_WITH_STATUS = (
    "Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum", "ExclusiveMinimum",
    "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems", "UniqueItems", "MultipleOf", "Required",
    "Items", "Properties", "ExternalDocs", "Example", "XPreserveUnknownFields", "XValidations")


# --- the walk shared by several predicates ------------------------------------------------

def _subschemas(schema: Obj) -> Iterator[Obj]:
    """Every schema directly nested in ``schema`` (items, junctors, properties, ...)."""
    items = schema.get("items")
    for item in (items if isinstance(items, list) else [items]):
        if isinstance(item, dict):
            yield item
    for key in ("allOf", "anyOf", "oneOf"):
        yield from (s for s in as_list(schema.get(key)) if isinstance(s, dict))
    for key in ("not", "additionalProperties", "additionalItems"):
        if isinstance(schema.get(key), dict):
            yield schema[key]
    for key in ("properties", "patternProperties", "definitions", "dependencies"):
        yield from (s for s in as_dict(schema.get(key)).values() if isinstance(s, dict))


def schema_has(schema: Obj, predicate: SchemaPredicate) -> bool:
    return predicate(schema) or any(schema_has(s, predicate) for s in _subschemas(schema))


def has_invalid_type(schema: Obj) -> bool:
    return is_set(schema, "type", "str") and schema.get("type") not in OPENAPI_TYPES


def has_kubernetes_extension(schema: Obj) -> bool:
    return (schema.get("x-kubernetes-embedded-resource") is True
            or schema.get("x-kubernetes-preserve-unknown-fields") is not None
            or schema.get("x-kubernetes-int-or-string") is True
            or bool(as_list(schema.get("x-kubernetes-list-map-keys")))
            or schema.get("x-kubernetes-list-type") is not None
            or bool(as_list(schema.get("x-kubernetes-validations"))))


def has_non_atomic_set(schema: Obj) -> bool:
    items = schema.get("items")
    if schema.get("x-kubernetes-list-type") != "set" or not isinstance(items, dict):
        return False
    if items.get("type") == "array":
        return items.get("x-kubernetes-list-type") not in (None, "atomic")
    if items.get("type") == "object":
        return items.get("x-kubernetes-map-type") != "atomic"
    return False


# --- the OpenAPI rules ---------------------------------------------------------------------

@dataclass(frozen=True)
class _SchemaContext:
    """Where in the schema we are: may defaults be set here, are we inside object metadata."""

    require_valid_type: bool = True
    allow_defaults: bool = True
    disallow_reason: str = ""
    inside_meta: bool = False

    def without_defaults(self, reason: str) -> _SchemaContext:
        return replace(self, allow_defaults=False, disallow_reason=reason)


def validate_schema(validation: Obj | None, status_enabled: bool, opts: ValidationOptions, path: str) -> list[Cause]:
    """A version's (or the lifted) ``schema``: OpenAPI rules, then structural rules."""
    schema = as_schema(as_dict(validation).get("openAPIV3Schema"))
    if schema is None:
        return []
    root = f"{path}.openAPIV3Schema"
    causes: list[Cause] = []
    if status_enabled:
        for key, go_name, kind in _SCHEMA_FIELDS:
            if not is_set(schema, key, kind):
                continue
            if go_name == "Type":
                if schema.get("type") != "object":
                    causes.append(m.invalid(f"{root}.type", schema.get("type"), 'only "object" is allowed as the '
                                            "type at the root of the schema if the status subresource is enabled"))
                    break
                continue
            if go_name not in _ROOT_ALLOWED_WITH_STATUS:
                causes.append(m.invalid(root, schema, f"only [{' '.join(_ROOT_ALLOWED_WITH_STATUS)}] fields are "
                                        "allowed at the root of the schema if the status subresource is enabled"))
                break
    if schema.get("nullable") is True:
        causes.append(m.forbidden(f"{root}.nullable", "nullable cannot be true at the root"))
    deferred: list[Cause] = []
    if opts.require_structural:
        if (error := structural_init_error(schema)) is not None:
            deferred.append(m.invalid(root, "", error))
        else:
            causes += structural_errors(schema, root)
    causes += _openapi_errors(schema, root, _SchemaContext(require_valid_type=opts.require_valid_property_type),
                              True, opts)
    return causes or deferred


def _check_schema_fields(schema: Obj, path: str, ctx: _SchemaContext) -> list[Cause]:
    causes: list[Cause] = []
    schema_type = schema.get("type")
    if ctx.require_valid_type and is_set(schema, "type", "str") and schema_type not in OPENAPI_TYPES:
        causes.append(m.not_supported(f"{path}.type", schema_type, OPENAPI_TYPES))
    if schema.get("default") is not None and not ctx.allow_defaults:
        detail = "must not be set" + (f" {ctx.disallow_reason}" if ctx.disallow_reason else "")
        causes.append(m.forbidden(f"{path}.default", detail))
    if is_set(schema, "id", "str"):
        causes.append(m.forbidden(f"{path}.id", "id is not supported"))
    for key in ("additionalItems", "patternProperties", "definitions", "dependencies"):
        present = schema.get(key) is not None if key in ("additionalItems", "dependencies") else bool(schema.get(key))
        if present:
            causes.append(m.forbidden(f"{path}.{key}", f"{key} is not supported"))
    if schema.get("$ref") is not None:
        causes.append(m.forbidden(f"{path}.$ref", "$ref is not supported"))
    if schema_type == "null":
        causes.append(m.forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    if isinstance(schema.get("items"), list) and schema["items"]:
        causes.append(m.forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if ctx.inside_meta and schema.get("x-kubernetes-embedded-resource") is True:
        causes.append(m.forbidden(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta"))
    return causes


def _openapi_errors(schema: Obj, path: str, ctx: _SchemaContext, is_root: bool, opts: ValidationOptions) -> list[Cause]:
    causes = _check_schema_fields(schema, path, ctx)
    if schema.get("uniqueItems") is True:
        causes.append(m.forbidden(f"{path}.uniqueItems",
                                  "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    properties = as_dict(schema.get("properties"))
    additional = schema.get("additionalProperties")
    if additional is not None:
        if properties and additional is not True:
            causes.append(m.forbidden(f"{path}.additionalProperties",
                                      "additionalProperties and properties are mutual exclusive"))
        if isinstance(additional, dict):
            sub = ctx.without_defaults("inside additionalProperties applying to object metadata") \
                if ctx.inside_meta else ctx
            causes += _openapi_errors(additional, f"{path}.additionalProperties", sub, False, opts)
    for name, prop in properties.items():
        sub = ctx
        if (is_root or schema.get("x-kubernetes-embedded-resource") is True) and name in _META_FIELDS:
            sub = replace(sub, inside_meta=True)
            if is_root:
                sub = sub.without_defaults(f"in top-level {name}")
        causes += _openapi_errors(as_dict(prop), f"{path}.properties[{name}]", sub, False, opts)
    if isinstance(schema.get("not"), dict):
        causes += _openapi_errors(schema["not"], f"{path}.not", ctx, False, opts)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub_schema in enumerate(as_list(schema.get(key))):
            causes += _openapi_errors(as_dict(sub_schema), f"{path}.{key}[{i}]", ctx, False, opts)
    for name, sub_schema in as_dict(schema.get("definitions")).items():
        causes += _openapi_errors(as_dict(sub_schema), f"{path}.definitions[{name}]", ctx, False, opts)
    items = schema.get("items")
    if isinstance(items, dict):
        causes += _openapi_errors(items, f"{path}.items", ctx, False, opts)
    elif isinstance(items, list):
        for i, item in enumerate(items):
            causes += _openapi_errors(as_dict(item), f"{path}.items[{i}]", ctx, False, opts)
    for name, dependency in as_dict(schema.get("dependencies")).items():
        if isinstance(dependency, dict):
            causes += _openapi_errors(dependency, f"{path}.dependencies[{name}]", ctx, False, opts)
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        causes.append(m.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    causes += _list_and_map_type_errors(schema, path, opts)
    if opts.require_map_list_keys_validation:
        causes += map_list_key_errors(schema, path)
    causes += _validation_rule_errors(schema, path)
    return causes


def _list_and_map_type_errors(schema: Obj, path: str, opts: ValidationOptions) -> list[Cause]:
    causes: list[Cause] = []
    map_type, list_type = schema.get("x-kubernetes-map-type"), schema.get("x-kubernetes-list-type")
    map_keys = as_list(schema.get("x-kubernetes-list-map-keys"))
    items = schema.get("items")
    if map_type is not None and schema.get("type") != "object":
        causes += type_must_be(schema, path, "object", "must be object if x-kubernetes-map-type is specified")
    if map_type is not None and map_type not in ("atomic", "granular"):
        causes.append(m.not_supported(f"{path}.x-kubernetes-map-type", map_type, ("atomic", "granular")))
    if list_type is not None and schema.get("type") != "array":
        causes += type_must_be(schema, path, "array", "must be array if x-kubernetes-list-type is specified")
    elif opts.require_atomic_set_type and list_type == "set" and isinstance(items, dict):
        detail = "must be atomic as item of a list with x-kubernetes-list-type=set"
        item_list_type = items.get("x-kubernetes-list-type")
        if items.get("type") == "array" and item_list_type not in (None, "atomic"):
            causes.append(m.invalid(f"{path}.items.x-kubernetes-list-type", item_list_type, detail))
        elif items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            causes.append(m.invalid(f"{path}.items.x-kubernetes-map-type", item_list_type, detail))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        causes.append(m.not_supported(f"{path}.x-kubernetes-list-type", list_type, ("atomic", "set", "map")))
    if map_keys:
        if list_type is None:
            causes.append(m.required(f"{path}.x-kubernetes-list-type",
                                     "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            causes.append(m.invalid(f"{path}.x-kubernetes-list-type", list_type,
                                    "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type != "map":
        return causes
    if not map_keys:
        causes.append(m.required(f"{path}.x-kubernetes-list-map-keys",
                                 "must not be empty if x-kubernetes-list-type is map"))
    if items is None:
        causes.append(m.required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
    elif not isinstance(items, dict):
        causes.append(m.invalid(f"{path}.items", items, "must only have a single schema if x-kubernetes-list-type is map"))
    elif items.get("type") != "object":
        causes.append(m.invalid(f"{path}.items.type", as_str(items.get("type")),
                                "must be object if parent array's x-kubernetes-list-type is map"))
    else:
        item_props = as_dict(items.get("properties"))
        seen: set[str] = set()
        for k in map_keys:
            if k in item_props:
                if as_dict(item_props[k]).get("type") in ("array", "object"):
                    causes.append(m.invalid(f"{path}.items.properties[{k}].type", "object",
                                            "must be a scalar type if parent array's x-kubernetes-list-type is map"))
            else:
                causes.append(m.invalid(f"{path}.x-kubernetes-list-map-keys", map_keys,
                                        "entries must all be names of item properties"))
            if k in seen:
                causes.append(m.invalid(f"{path}.x-kubernetes-list-map-keys", map_keys,
                                        "must not contain duplicate entries"))
            seen.add(k)
    return causes


def map_list_key_errors(schema: Obj, path: str) -> list[Cause]:
    """Items of set and map lists may not be null; map keys must be required or defaulted."""
    items, list_type = schema.get("items"), schema.get("x-kubernetes-list-type")
    if not isinstance(items, dict) or list_type not in ("set", "map"):
        return []
    causes: list[Cause] = []
    if items.get("nullable") is True:
        causes.append(m.forbidden(f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
    if list_type == "map":
        required = set(as_list(items.get("required")))
        item_props = as_dict(items.get("properties"))
        for k in as_list(schema.get("x-kubernetes-list-map-keys")):
            if k not in item_props:
                continue
            prop = as_dict(item_props[k])
            if k not in required and prop.get("default") is None:
                causes.append(m.required(f"{path}.items.properties[{k}].default", "this property is in "
                                         "x-kubernetes-list-map-keys, so it must have a default or be a required property"))
            if prop.get("nullable") is True:
                causes.append(m.forbidden(f"{path}.items.properties[{k}].nullable",
                                          "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
    return causes


def _validation_rule_errors(schema: Obj, path: str) -> list[Cause]:
    """The static checks of ``x-kubernetes-validations`` (rules are not compiled)."""
    causes: list[Cause] = []
    for i, rule in enumerate(as_list(schema.get("x-kubernetes-validations"))):
        rule = as_dict(rule)
        base = f"{path}.x-kubernetes-validations[{i}]"
        text, message = as_str(rule.get("rule")), as_str(rule.get("message"))
        message_expression, field_path = as_str(rule.get("messageExpression")), as_str(rule.get("fieldPath"))
        if not text.strip():
            causes.append(m.required(f"{base}.rule", "rule is not specified"))
        elif message and not message.strip():
            causes.append(m.invalid(f"{base}.message", message, "message must be non-empty if specified"))
        elif _has_newlines(message.strip()):
            causes.append(m.invalid(f"{base}.message", message, "message must not contain line breaks"))
        elif _has_newlines(text.strip()) and not message.strip():
            causes.append(m.required(f"{base}.message", "message must be specified if rule contains line breaks"))
        if message_expression and not message_expression.strip():
            causes.append(m.required(f"{base}.messageExpression", "messageExpression must be non-empty if specified"))
        reason = rule.get("reason")
        if reason is not None and reason not in VALIDATION_RULE_REASONS:
            causes.append(m.not_supported(f"{base}.reason", reason, VALIDATION_RULE_REASONS))
        if field_path and not field_path.strip():
            causes.append(m.invalid(f"{base}.fieldPath", field_path, "fieldPath must be non-empty if specified"))
        if _has_newlines(field_path):
            causes.append(m.invalid(f"{base}.fieldPath", field_path, "fieldPath must not contain line breaks"))
        if field_path and structural_init_error(schema) is None:
            try:
                resolve_field_path(field_path, schema, allow_array=True)
            except ValueError:
                causes.append(m.invalid(f"{base}.fieldPath", field_path, "fieldPath must be a valid path"))
    return causes


def _has_newlines(text: str) -> bool:
    return "\n" in text or "\r" in text
