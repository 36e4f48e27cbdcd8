"""Defaulting and validation of CustomResourceDefinition objects (``apiextensions.k8s.io/v1``).

    default_crd(obj)           fill in what kube-apiserver's v1 defaulter fills in (in place)
    validate_crd(obj, old)     -> [Cause]; ``old`` is None on create, the stored object on update

The rules and messages are kube-apiserver 1.32's (apiextensions-apiserver
``pkg/apis/apiextensions/validation`` and the structural-schema checks of
``pkg/apiserver/schema``).  Two of its habits show in the field paths and are kept:

* It validates the *internal* form of a CRD, in which a schema, subresources, printer
  columns or selectable fields that are the same in every version are lifted to the
  top of the spec.  Such errors therefore read ``spec.validation.openAPIV3Schema...``,
  ``spec.subresources...``, ``spec.additionalPrinterColumns[0].JSONPath`` when all
  versions agree, and ``spec.versions[1].schema.openAPIV3Schema...`` otherwise.
  A version's name also shows up as ``spec.version`` (the internal copy of the first one).
* The conversion webhook lives at ``spec.conversion.webhookClientConfig`` and
  ``spec.conversion.conversionReviewVersions`` (internal names) in errors.

On update the checks are relaxed where the stored definition already broke a rule
that was added later (kube-apiserver's "ratcheting"); ``scope`` and ``names.kind``
become immutable once the definition is Established, ``group`` and
``names.plural`` are always immutable.  ``status`` is server-owned and not checked.

Not reproduced (they need CEL or Go's regexp engine): compiling and costing
``x-kubernetes-validations`` rules, checking ``default`` values against their
schema, the PEM check of a webhook ``caBundle``; regular-expression errors in
``pattern`` are worded like Go's for the common cases only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from ...errors import Cause
from .. import meta as m

Obj = dict[str, Any]
SchemaPredicate = Callable[[Obj], bool]

SCOPES = ("Cluster", "Namespaced")
CONVERSION_STRATEGIES = ("None", "Webhook")
ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
VALIDATION_RULE_REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")
MAX_SELECTABLE_FIELDS = 8
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_API_APPROVAL_HELP = "see https://github.com/kubernetes/enhancements/pull/1111"
_URL_FORM = "; desired format: https://host[/path]"
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
# Value validations of a structural schema (everything that is not type, shape or extension).
_VALUE_VALIDATION_FIELDS = (
    "format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required",
    "allOf", "oneOf", "anyOf", "not")


# --- small accessors ------------------------------------------------------------------

def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _schema_or_none(value: Any) -> Obj | None:
    return value if isinstance(value, dict) else None


def _is_set(schema: Obj, key: str, kind: str = "ptr") -> bool:
    value = schema.get(key)
    if kind == "str":
        return value not in (None, "")
    if kind == "bool":
        return value is True
    return value is not None


def _semantic(value: Any) -> Any:
    """A value with empty and unset fields dropped, for Kubernetes' "semantic" equality."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != "" and v is not False and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _semantic_columns(value: Any) -> Any:
    return [{k: v for k, v in _semantic(c).items() if not (k == "priority" and v == 0)} if isinstance(c, dict)
            else c for c in _list(value)]


# --- defaults -------------------------------------------------------------------------

def default_crd(obj: Obj) -> None:
    """kube-apiserver's v1 defaults: singular and listKind from kind, conversion strategy
    None, webhook service port 443, and the storage version as the first stored version."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict):
        kind = _str(names.get("kind"))
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    service = _dict(_dict(_dict(spec.get("conversion")).get("webhook")).get("clientConfig")).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443
    status = obj.get("status")
    if isinstance(status, dict) and not status.get("storedVersions"):
        storage = [v.get("name") for v in _list(spec.get("versions")) if isinstance(v, dict) and v.get("storage")]
        if storage:
            status["storedVersions"] = storage[:1]


# --- the internal form and the options that depend on the stored object ------------------

@dataclass
class _Spec:
    """A CRD spec the way kube-apiserver validates it: per-version fields that are the same
    in every version are lifted to the top (``validation`` is the internal name of ``schema``)."""

    raw: Obj
    versions: list[Obj]
    validation: Obj | None = None
    subresources: Obj | None = None
    columns: list[Any] | None = None
    selectable_fields: list[Any] | None = None

    @property
    def preserve_unknown_fields(self) -> bool:
        return self.raw.get("preserveUnknownFields") is True


def _internal(spec: Obj) -> _Spec:
    versions = [dict(v) if isinstance(v, dict) else {} for v in _list(spec.get("versions"))]
    out = _Spec(raw=spec, versions=versions)
    if not versions:
        return out
    for key, norm in (("schema", _semantic), ("subresources", _semantic),
                      ("additionalPrinterColumns", _semantic_columns),
                      ("selectableFields", lambda x: _semantic(_list(x)))):
        first = norm(versions[0].get(key))
        if all(norm(v.get(key)) == first for v in versions):
            lifted = versions[0].get(key)
            for v in versions:
                v.pop(key, None)
            if key == "schema":
                out.validation = _schema_or_none(lifted)
            elif key == "subresources":
                out.subresources = _schema_or_none(lifted)
            elif key == "additionalPrinterColumns":
                out.columns = _list(lifted)
            else:
                out.selectable_fields = _list(lifted)
    return out


def _root_schemas(spec: _Spec) -> Iterator[Obj]:
    for validation in [spec.validation] + [_schema_or_none(v.get("schema")) for v in spec.versions]:
        schema = _schema_or_none(_dict(validation).get("openAPIV3Schema"))
        if schema is not None:
            yield schema


@dataclass(frozen=True)
class _Options:
    require_recognized_review_version: bool = True
    require_immutable_names: bool = False
    require_openapi_schema: bool = True
    require_valid_property_type: bool = True
    require_structural: bool = True
    require_atomic_set_type: bool = True
    require_map_list_keys_validation: bool = True


def _is_established(crd: Obj) -> bool:
    return any(_dict(c).get("type") == "Established" and _dict(c).get("status") == "True"
               for c in _list(_dict(crd.get("status")).get("conditions")))


def _update_options(old: Obj, prev: _Spec) -> _Options:
    """Options for an update: rules the stored definition already breaks are not enforced."""
    review_versions = _list(_dict(_dict(prev.raw.get("conversion")).get("webhook")).get("conversionReviewVersions"))
    all_have_schema = (_dict(prev.validation).get("openAPIV3Schema") is not None or all(
        _dict(v.get("schema")).get("openAPIV3Schema") is not None for v in prev.versions))
    schemas = list(_root_schemas(prev))
    return _Options(
        require_recognized_review_version=(not review_versions
                                           or any(v in ACCEPTED_REVIEW_VERSIONS for v in review_versions)),
        require_immutable_names=_is_established(old),
        require_openapi_schema=all_have_schema,
        require_valid_property_type=not any(_schema_has(s, _has_invalid_type) for s in schemas),
        require_structural=not any(_is_non_structural(s) for s in schemas),
        require_atomic_set_type=not any(_schema_has(s, _has_non_atomic_set) for s in schemas),
        require_map_list_keys_validation=not any(
            _schema_has(s, lambda x: bool(_map_list_key_errors(x, ""))) for s in schemas),
    )


# --- entry point ----------------------------------------------------------------------

def validate_crd(obj: Obj, old: Obj | None) -> list[Cause]:
    """Static validation of a CustomResourceDefinition on create (``old`` None) or update."""
    raw_spec = _dict(obj.get("spec"))
    spec = _internal(raw_spec)
    if old is None:
        required_name = f"{_str(_dict(raw_spec.get('names')).get('plural'))}.{_str(raw_spec.get('group'))}"

        def name_fn(name: str, prefix: bool) -> list[str]:
            problems = m.name_is_dns_subdomain(name, prefix)
            if name != required_name:
                problems.append('must be spec.names.plural+"."+spec.group')
            return problems

        causes = m.validate_object_meta(obj.get("metadata"), False, name_fn=name_fn)
        causes += _validate_spec(spec, _Options())
    else:
        old_spec = _dict(old.get("spec"))
        opts = _update_options(old, _internal(old_spec))
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        causes += _validate_spec(spec, opts)
        names, old_names = _dict(raw_spec.get("names")), _dict(old_spec.get("names"))
        if opts.require_immutable_names:
            causes += m.validate_immutable(_str(raw_spec.get("scope")), _str(old_spec.get("scope")), "spec.scope")
            causes += m.validate_immutable(_str(names.get("kind")), _str(old_names.get("kind")), "spec.names.kind")
        causes += m.validate_immutable(_str(raw_spec.get("group")), _str(old_spec.get("group")), "spec.group")
        causes += m.validate_immutable(_str(names.get("plural")), _str(old_names.get("plural")), "spec.names.plural")
    causes += _validate_api_approval(obj, old)
    if old is None or _dict(old.get("spec")).get("preserveUnknownFields") is not True:
        if spec.preserve_unknown_fields:
            causes.append(m.invalid("spec.preserveUnknownFields", True,
                                    "cannot set to true, set x-kubernetes-preserve-unknown-fields to true "
                                    "in spec.versions[*].schema instead"))
    return causes


def _validate_spec(spec: _Spec, opts: _Options) -> list[Cause]:
    raw = spec.raw
    causes: list[Cause] = []
    group = _str(raw.get("group"))
    if not group:
        causes.append(m.required("spec.group"))
    elif problems := m.is_dns1123_subdomain(group):
        causes.append(m.invalid("spec.group", group, ",".join(problems)))
    elif len(group.split(".")) < 2:
        causes.append(m.invalid("spec.group", group, "should be a domain with at least one dot"))
    causes += _validate_enum("spec.scope", _str(raw.get("scope")), SCOPES)

    if not spec.preserve_unknown_fields:
        opts = replace(opts, require_structural=True)
    if _dict(spec.validation).get("openAPIV3Schema") is None:
        for i, version in enumerate(spec.versions):
            if _dict(version.get("schema")).get("openAPIV3Schema") is not None:
                continue
            path = f"spec.versions[{i}].schema.openAPIV3Schema"
            if opts.require_openapi_schema:
                causes.append(m.required(path, "schemas are required"))
            elif not spec.preserve_unknown_fields and version.get("served") is True:
                causes.append(m.required(path, "because otherwise all fields are pruned"))
    schemas = list(_root_schemas(spec))
    if any(_schema_has(s, lambda x: x.get("default") is not None) for s in schemas):
        opts = replace(opts, require_structural=True)
        if spec.preserve_unknown_fields:
            causes.append(m.invalid("spec.preserveUnknownFields", True,
                                    "must be false in order to use defaults in the schema"))
    if any(_schema_has(s, _has_kubernetes_extension) for s in schemas):
        opts = replace(opts, require_structural=True)

    per_version_subresources = any(v.get("subresources") is not None for v in spec.versions)
    seen: set[str] = set()
    unique = True
    storage_count = 0
    for i, version in enumerate(spec.versions):
        name = _str(version.get("name"))
        storage_count += version.get("storage") is True
        unique = unique and name not in seen
        seen.add(name)
        if problems := m.is_dns1035_label(name):
            causes.append(m.invalid(f"spec.versions[{i}].name", name, ",".join(problems)))
        subresources = _dict(version.get("subresources") if per_version_subresources else spec.subresources)
        causes += _validate_version(version, f"spec.versions[{i}]", subresources.get("status") is not None, opts)
    versions_value = _versions_value(raw.get("versions"))
    if not unique:
        causes.append(m.invalid("spec.versions", versions_value, "must contain unique version names"))
    if storage_count != 1:
        causes.append(m.invalid("spec.versions", versions_value,
                                "must have exactly one version marked as storage version"))
    first_name = _str(spec.versions[0].get("name")) if spec.versions else ""
    if first_name and (problems := m.is_dns1035_label(first_name)):
        causes.append(m.invalid("spec.version", first_name, ",".join(problems)))

    names = _dict(raw.get("names"))
    for field in ("plural", "singular", "kind", "listKind"):
        if not _str(names.get(field)):
            causes.append(m.required(f"spec.names.{field}"))
    causes += validate_names(names, "spec.names")

    any_status = (_dict(spec.subresources).get("status") is not None
                  or any(_dict(v.get("subresources")).get("status") is not None for v in spec.versions))
    causes += _validate_validation(spec.validation, any_status, opts, "spec.validation")
    causes += _validate_subresources(spec.subresources, "spec.subresources")
    for i, column in enumerate(spec.columns or []):
        causes += _validate_column(_dict(column), f"spec.additionalPrinterColumns[{i}]")
    if spec.selectable_fields:
        if spec.validation is None:
            causes.append(m.invalid("spec.selectableFields", "",
                                    "selectableFields may only be set when validations.schema is included"))
        else:
            causes += _validate_selectable_fields(spec.selectable_fields, spec.validation, "spec")

    conversion = raw.get("conversion")
    if isinstance(conversion, dict):
        strategy = _str(conversion.get("strategy"))
        if strategy != "None" and spec.preserve_unknown_fields:
            causes.append(m.invalid("spec.conversion.strategy", strategy,
                                    "must be None if spec.preserveUnknownFields is true"))
        causes += _validate_conversion(conversion, opts.require_recognized_review_version)
    return causes


def _versions_value(versions: Any) -> Any:
    """``spec.versions`` as an error shows it (Go prints the struct slice; JSON is kept for items)."""
    if not versions:
        return m.Verbatim("[]apiextensions.CustomResourceDefinitionVersion" + ("{}" if versions == [] else "(nil)"))
    return m.Verbatim(json.dumps(versions, sort_keys=True, default=str))


def _validate_enum(path: str, value: str, accepted: tuple[str, ...]) -> list[Cause]:
    if not value:
        return [m.required(path)]
    return [] if value in accepted else [m.not_supported(path, value, accepted)]


def validate_names(names: Obj, path: str) -> list[Cause]:
    """The format rules for ``spec.names`` (and ``status.acceptedNames``)."""
    causes: list[Cause] = []
    for field in ("plural", "singular"):
        value = _str(names.get(field))
        if value and (problems := m.is_dns1035_label(value)):
            causes.append(m.invalid(f"{path}.{field}", value, ",".join(problems)))
    for field in ("kind", "listKind"):
        value = _str(names.get(field))
        if value and (problems := m.is_dns1035_label(value.lower())):
            causes.append(m.invalid(f"{path}.{field}", value,
                                    "may have mixed case, but should otherwise match: " + ",".join(problems)))
    for i, short in enumerate(_list(names.get("shortNames"))):
        if problems := m.is_dns1035_label(_str(short)):
            causes.append(m.invalid(f"{path}.shortNames[{i}]", short, ",".join(problems)))
    kind = _str(names.get("kind"))
    if kind and kind == names.get("listKind"):
        causes.append(m.invalid(f"{path}.listKind", kind, "kind and listKind may not be the same"))
    for i, category in enumerate(_list(names.get("categories"))):
        if problems := m.is_dns1035_label(_str(category)):
            causes.append(m.invalid(f"{path}.categories[{i}]", category, ",".join(problems)))
    return causes


def _validate_version(version: Obj, path: str, status_enabled: bool, opts: _Options) -> list[Cause]:
    causes: list[Cause] = []
    warning = version.get("deprecationWarning")
    for problem in _deprecation_warning_problems(version.get("deprecated") is True, warning):
        causes.append(m.invalid(f"{path}.deprecationWarning", warning, problem))
    causes += _validate_validation(_schema_or_none(version.get("schema")), status_enabled, opts, f"{path}.schema")
    causes += _validate_subresources(_schema_or_none(version.get("subresources")), f"{path}.subresources")
    for i, column in enumerate(_list(version.get("additionalPrinterColumns"))):
        causes += _validate_column(_dict(column), f"{path}.additionalPrinterColumns[{i}]")
    fields = _list(version.get("selectableFields"))
    if fields:
        validation = _schema_or_none(version.get("schema"))
        if _dict(validation).get("openAPIV3Schema") is None:
            causes.append(m.invalid(f"{path}.selectableFields", "", "selectableFields may only be set when "
                                    "version.schema.openAPIV3Schema is not included"))
        else:
            causes += _validate_selectable_fields(fields, _dict(validation), path)
    return causes


def _deprecation_warning_problems(deprecated: bool, warning: Any) -> list[str]:
    if not deprecated and warning is not None:
        return ["can only be set for deprecated versions"]
    if not isinstance(warning, str):
        return []
    problems: list[str] = []
    if len(warning.encode()) > 256:
        problems.append("must be <= 256 characters long")
    if not warning:
        problems.append("must not be an empty string")
    for i, char in enumerate(warning):
        if not char.isprintable():
            offset = len(warning[:i].encode())
            problems.append("must only contain printable UTF-8 characters; non-printable character found "
                            f"at index {offset}")
            break
    return problems


def _validate_column(column: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not _str(column.get("name")):
        causes.append(m.required(f"{path}.name"))
    col_type = _str(column.get("type"))
    types = "must be one of " + ",".join(PRINTER_COLUMN_TYPES)
    if not col_type:
        causes.append(m.required(f"{path}.type", types))
    elif col_type not in PRINTER_COLUMN_TYPES:
        causes.append(m.invalid(f"{path}.type", col_type, types))
    fmt = _str(column.get("format"))
    if fmt and fmt not in PRINTER_COLUMN_FORMATS:
        causes.append(m.invalid(f"{path}.format", fmt, "must be one of " + ",".join(PRINTER_COLUMN_FORMATS)))
    json_path = _str(column.get("jsonPath"))
    if not json_path:
        causes.append(m.required(f"{path}.JSONPath"))
    else:
        causes += _validate_simple_json_path(json_path, f"{path}.JSONPath")
    return causes


def _validate_simple_json_path(value: str, path: str) -> list[Cause]:
    if not value:
        return [m.invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [m.invalid(path, value, "must be a simple json path starting with .")]
    return []


def _validate_subresources(subresources: Obj | None, path: str) -> list[Cause]:
    scale = _dict(subresources).get("scale")
    if not isinstance(scale, dict):
        return []
    causes: list[Cause] = []
    for field, prefix, where in (("specReplicasPath", ".spec.", ".spec"),
                                 ("statusReplicasPath", ".status.", ".status")):
        value = _str(scale.get(field))
        if not value:
            causes.append(m.required(f"{path}.scale.{field}"))
        elif errs := _validate_simple_json_path(value, f"{path}.scale.{field}"):
            causes += errs
        elif not value.startswith(prefix):
            causes.append(m.invalid(f"{path}.scale.{field}", value, f"should be a json path under {where}"))
    selector = _str(scale.get("labelSelectorPath"))
    if selector:
        if errs := _validate_simple_json_path(selector, f"{path}.scale.labelSelectorPath"):
            causes += errs
        elif not selector.startswith((".spec.", ".status.")):
            causes.append(m.invalid(f"{path}.scale.labelSelectorPath", selector,
                                    "should be a json path under either .spec or .status"))
    return causes


# --- conversion ------------------------------------------------------------------------

def _validate_conversion(conversion: Obj, require_recognized: bool) -> list[Cause]:
    path = "spec.conversion"
    strategy = _str(conversion.get("strategy"))
    causes = _validate_enum(f"{path}.strategy", strategy, CONVERSION_STRATEGIES)
    webhook = _dict(conversion.get("webhook"))
    client = webhook.get("clientConfig")
    review_versions = webhook.get("conversionReviewVersions")
    if strategy != "Webhook":
        if client is not None:
            causes.append(m.forbidden(f"{path}.webhookClientConfig",
                                      "should not be set when strategy is not set to Webhook"))
        if _list(review_versions):
            causes.append(m.forbidden(f"{path}.conversionReviewVersions",
                                      "should not be set when strategy is not set to Webhook"))
        return causes
    cc_path = f"{path}.webhookClientConfig"
    if not isinstance(client, dict):
        causes.append(m.required(cc_path, "required when strategy is set to Webhook"))
    elif (client.get("url") is None) == (client.get("service") is None):
        causes.append(m.required(cc_path, "exactly one of url or service is required"))
    elif client.get("url") is not None:
        causes += validate_webhook_url(f"{cc_path}.url", _str(client.get("url")))
    else:
        causes += validate_webhook_service(f"{cc_path}.service", _dict(client.get("service")))
    causes += _validate_review_versions(_list(review_versions), require_recognized,
                                        f"{path}.conversionReviewVersions")
    return causes


def _validate_review_versions(versions: list[Any], require_recognized: bool, path: str) -> list[Cause]:
    if not versions:
        return [m.required(path)]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        version = _str(version)
        if version in seen:
            causes.append(m.invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        causes += m.invalid_each(f"{path}[{i}]", version, m.is_dns1035_label(version))
    if require_recognized and not any(v in ACCEPTED_REVIEW_VERSIONS for v in versions):
        causes.append(m.invalid(path, versions, "must include at least one of " + ", ".join(ACCEPTED_REVIEW_VERSIONS)))
    return causes


def validate_webhook_url(path: str, url: str) -> list[Cause]:
    """A webhook URL: https, with a host, and no user, query or fragment."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        return [m.required(path, f"url must be a valid URL: {err}{_URL_FORM}")]
    causes: list[Cause] = []
    user, _, host = parts.netloc.rpartition("@")
    if parts.scheme != "https":
        causes.append(m.invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    if not host:
        causes.append(m.invalid(path, host, "host must be specified" + _URL_FORM))
    if "@" in parts.netloc:
        causes.append(m.invalid(path, user, "user information is not permitted in the URL"))
    if parts.fragment:
        causes.append(m.invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        causes.append(m.invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return causes


def validate_webhook_service(path: str, service: Obj) -> list[Cause]:
    """A webhook Service reference: name, namespace, a valid port and a clean path."""
    causes: list[Cause] = []
    if not _str(service.get("name")):
        causes.append(m.required(f"{path}.name", "service name is required"))
    if not _str(service.get("namespace")):
        causes.append(m.required(f"{path}.namespace", "service namespace is required"))
    port = service.get("port")
    port_num = port if isinstance(port, int) and not isinstance(port, bool) else 0
    if problems := m.is_valid_port_num(port_num):
        causes.append(m.invalid(f"{path}.port", port_num, "port is not valid: " + ", ".join(problems)))
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return causes
    if url_path == "//":
        return causes + [m.invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        causes.append(m.invalid(f"{path}.path", url_path, "must start with a '/'"))
    steps = url_path[1:]
    steps = steps[:-1] if steps.endswith("/") else steps
    for i, step in enumerate(steps.split("/")):
        if not step:
            causes.append(m.invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        for problem in m.is_dns1123_subdomain(step):
            causes.append(m.invalid(f"{path}.path", url_path, f"segment[{i}]: {problem}"))
    return causes


# --- API approval for *.k8s.io and *.kubernetes.io groups -------------------------------

def _approval_state(annotations: Obj) -> tuple[str, str]:
    value = _str(annotations.get(API_APPROVAL_ANNOTATION))
    quoted = f'"{API_APPROVAL_ANNOTATION}"'
    if not value:
        return "missing", f"protected groups must have approval annotation {quoted}, {_API_APPROVAL_HELP}"
    if value.startswith("unapproved"):
        return "bypassed", f'not approved: "{value}"'
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and parts.netloc:
        return "approved", f"approved in {value}"
    return "invalid", (f"protected groups must have approval annotation {quoted} with either a URL or a reason "
                       f'starting with "unapproved", {_API_APPROVAL_HELP}')


def _validate_api_approval(obj: Obj, old: Obj | None) -> list[Cause]:
    group = _str(_dict(obj.get("spec")).get("group"))
    if not any(group == g or group.endswith("." + g) for g in ("k8s.io", "kubernetes.io")):
        return []
    annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
    state, reason = _approval_state(annotations)
    if old is not None and _approval_state(_dict(_dict(old.get("metadata")).get("annotations")))[0] == state:
        return []
    path = f"metadata.annotations[{API_APPROVAL_ANNOTATION}]"
    if state == "missing":
        return [m.required(path, reason)]
    if state == "invalid":
        return [m.invalid(path, annotations.get(API_APPROVAL_ANNOTATION), reason)]
    return []


# --- schemas: the walk shared by several predicates ---------------------------------------

def _subschemas(schema: Obj) -> Iterator[Obj]:
    """Every schema directly nested in ``schema`` (items, junctors, properties, ...)."""
    items = schema.get("items")
    for item in (items if isinstance(items, list) else [items]):
        if isinstance(item, dict):
            yield item
    for key in ("allOf", "anyOf", "oneOf"):
        yield from (s for s in _list(schema.get(key)) if isinstance(s, dict))
    for key in ("not", "additionalProperties", "additionalItems"):
        if isinstance(schema.get(key), dict):
            yield schema[key]
    for key in ("properties", "patternProperties", "definitions", "dependencies"):
        yield from (s for s in _dict(schema.get(key)).values() if isinstance(s, dict))


def _schema_has(schema: Obj, predicate: SchemaPredicate) -> bool:
    return predicate(schema) or any(_schema_has(s, predicate) for s in _subschemas(schema))


def _has_invalid_type(schema: Obj) -> bool:
    return _is_set(schema, "type", "str") and schema.get("type") not in OPENAPI_TYPES


def _has_kubernetes_extension(schema: Obj) -> bool:
    return (schema.get("x-kubernetes-embedded-resource") is True
            or schema.get("x-kubernetes-preserve-unknown-fields") is not None
            or schema.get("x-kubernetes-int-or-string") is True
            or bool(_list(schema.get("x-kubernetes-list-map-keys")))
            or schema.get("x-kubernetes-list-type") is not None
            or bool(_list(schema.get("x-kubernetes-validations"))))


def _has_non_atomic_set(schema: Obj) -> bool:
    items = schema.get("items")
    if schema.get("x-kubernetes-list-type") != "set" or not isinstance(items, dict):
        return False
    if items.get("type") == "array":
        return items.get("x-kubernetes-list-type") not in (None, "atomic")
    if items.get("type") == "object":
        return items.get("x-kubernetes-map-type") != "atomic"
    return False


def _is_non_structural(schema: Obj) -> bool:
    return _structural_init_error(schema) is not None or bool(_structural_errors(schema, ""))


# --- schemas: the OpenAPI rules -------------------------------------------------------------

@dataclass(frozen=True)
class _SchemaContext:
    """Where in the schema we are: may defaults be set here, are we inside object metadata."""

    require_valid_type: bool = True
    allow_defaults: bool = True
    disallow_reason: str = ""
    inside_meta: bool = False

    def without_defaults(self, reason: str) -> _SchemaContext:
        return replace(self, allow_defaults=False, disallow_reason=reason)


def _validate_validation(validation: Obj | None, status_enabled: bool, opts: _Options, path: str) -> list[Cause]:
    """A version's (or the lifted) ``schema``: OpenAPI rules, then structural rules."""
    schema = _schema_or_none(_dict(validation).get("openAPIV3Schema"))
    if schema is None:
        return []
    root = f"{path}.openAPIV3Schema"
    causes: list[Cause] = []
    if status_enabled:
        for key, go_name, kind in _SCHEMA_FIELDS:
            if not _is_set(schema, key, kind):
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
        if (error := _structural_init_error(schema)) is not None:
            deferred.append(m.invalid(root, "", error))
        else:
            causes += _structural_errors(schema, root)
    causes += _openapi_errors(schema, root, _SchemaContext(require_valid_type=opts.require_valid_property_type),
                              True, opts)
    return causes or deferred


def _check_schema_fields(schema: Obj, path: str, ctx: _SchemaContext) -> list[Cause]:
    causes: list[Cause] = []
    schema_type = schema.get("type")
    if ctx.require_valid_type and _is_set(schema, "type", "str") and schema_type not in OPENAPI_TYPES:
        causes.append(m.not_supported(f"{path}.type", schema_type, OPENAPI_TYPES))
    if schema.get("default") is not None and not ctx.allow_defaults:
        detail = "must not be set" + (f" {ctx.disallow_reason}" if ctx.disallow_reason else "")
        causes.append(m.forbidden(f"{path}.default", detail))
    if _is_set(schema, "id", "str"):
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


def _openapi_errors(schema: Obj, path: str, ctx: _SchemaContext, is_root: bool, opts: _Options) -> list[Cause]:
    causes = _check_schema_fields(schema, path, ctx)
    if schema.get("uniqueItems") is True:
        causes.append(m.forbidden(f"{path}.uniqueItems",
                                  "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    properties = _dict(schema.get("properties"))
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
        causes += _openapi_errors(_dict(prop), f"{path}.properties[{name}]", sub, False, opts)
    if isinstance(schema.get("not"), dict):
        causes += _openapi_errors(schema["not"], f"{path}.not", ctx, False, opts)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, sub_schema in enumerate(_list(schema.get(key))):
            causes += _openapi_errors(_dict(sub_schema), f"{path}.{key}[{i}]", ctx, False, opts)
    for name, sub_schema in _dict(schema.get("definitions")).items():
        causes += _openapi_errors(_dict(sub_schema), f"{path}.definitions[{name}]", ctx, False, opts)
    items = schema.get("items")
    if isinstance(items, dict):
        causes += _openapi_errors(items, f"{path}.items", ctx, False, opts)
    elif isinstance(items, list):
        for i, item in enumerate(items):
            causes += _openapi_errors(_dict(item), f"{path}.items[{i}]", ctx, False, opts)
    for name, dependency in _dict(schema.get("dependencies")).items():
        if isinstance(dependency, dict):
            causes += _openapi_errors(dependency, f"{path}.dependencies[{name}]", ctx, False, opts)
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        causes.append(m.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    causes += _list_and_map_type_errors(schema, path, opts)
    if opts.require_map_list_keys_validation:
        causes += _map_list_key_errors(schema, path)
    causes += _validation_rule_errors(schema, path)
    return causes


def _type_must_be(schema: Obj, path: str, wanted: str, detail: str) -> list[Cause]:
    if not _is_set(schema, "type", "str"):
        return [m.required(f"{path}.type", detail)]
    return [m.invalid(f"{path}.type", schema.get("type"), detail)]


def _list_and_map_type_errors(schema: Obj, path: str, opts: _Options) -> list[Cause]:
    causes: list[Cause] = []
    map_type, list_type = schema.get("x-kubernetes-map-type"), schema.get("x-kubernetes-list-type")
    map_keys = _list(schema.get("x-kubernetes-list-map-keys"))
    items = schema.get("items")
    if map_type is not None and schema.get("type") != "object":
        causes += _type_must_be(schema, path, "object", "must be object if x-kubernetes-map-type is specified")
    if map_type is not None and map_type not in ("atomic", "granular"):
        causes.append(m.not_supported(f"{path}.x-kubernetes-map-type", map_type, ("atomic", "granular")))
    if list_type is not None and schema.get("type") != "array":
        causes += _type_must_be(schema, path, "array", "must be array if x-kubernetes-list-type is specified")
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
        causes.append(m.invalid(f"{path}.items.type", _str(items.get("type")),
                                "must be object if parent array's x-kubernetes-list-type is map"))
    else:
        item_props = _dict(items.get("properties"))
        seen: set[str] = set()
        for k in map_keys:
            if k in item_props:
                if _dict(item_props[k]).get("type") in ("array", "object"):
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


def _map_list_key_errors(schema: Obj, path: str) -> list[Cause]:
    """Items of set and map lists may not be null; map keys must be required or defaulted."""
    items, list_type = schema.get("items"), schema.get("x-kubernetes-list-type")
    if not isinstance(items, dict) or list_type not in ("set", "map"):
        return []
    causes: list[Cause] = []
    if items.get("nullable") is True:
        causes.append(m.forbidden(f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
    if list_type == "map":
        required = set(_list(items.get("required")))
        item_props = _dict(items.get("properties"))
        for k in _list(schema.get("x-kubernetes-list-map-keys")):
            if k not in item_props:
                continue
            prop = _dict(item_props[k])
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
    for i, rule in enumerate(_list(schema.get("x-kubernetes-validations"))):
        rule = _dict(rule)
        base = f"{path}.x-kubernetes-validations[{i}]"
        text, message = _str(rule.get("rule")), _str(rule.get("message"))
        message_expression, field_path = _str(rule.get("messageExpression")), _str(rule.get("fieldPath"))
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
        if field_path and _structural_init_error(schema) is None:
            try:
                resolve_field_path(field_path, schema, allow_array=True)
            except ValueError:
                causes.append(m.invalid(f"{base}.fieldPath", field_path, "fieldPath must be a valid path"))
    return causes


def _has_newlines(text: str) -> bool:
    return "\n" in text or "\r" in text


# --- schemas: the structural rules ---------------------------------------------------------

_ROOT, _ITEMS, _FIELD = "root", "items", "field"
_UNSUPPORTED = (("id", "id", "str"), ("$schema", "schema", "str"), ("$ref", "$ref", "str"),
                ("patternProperties", "patternProperties", "map"), ("dependencies", "dependencies", "map"),
                ("additionalItems", "additionalItems", "ptr"), ("definitions", "definitions", "map"))


def _structural_init_error(schema: Obj) -> str | None:
    """Why the schema cannot even be read as a structural one (fields it may not use)."""
    for key, name, kind in _UNSUPPORTED:
        value = schema.get(key)
        if (value is not None) if kind == "ptr" else bool(value):
            return f"OpenAPIV3Schema '{name}' is not supported"
    for key in ("not", "allOf", "anyOf", "oneOf"):
        for sub in ([schema.get(key)] if key == "not" else _list(schema.get(key))):
            if isinstance(sub, dict) and (error := _structural_init_error(sub)) is not None:
                return error
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        return "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
    items = schema.get("items")
    if isinstance(items, list) and items:
        return "OpenAPIV3Schema 'items' must be a schema, but is an array"
    nested = [items] + list(_dict(schema.get("properties")).values()) + [schema.get("additionalProperties")]
    for sub in nested:
        if isinstance(sub, dict) and (error := _structural_init_error(sub)) is not None:
            return error
    return None


def _structural_errors(schema: Obj, path: str) -> list[Cause]:
    """Structural-schema rules; sorted by their text, as kube-apiserver reports them."""
    causes = _invariant_errors(schema, _ROOT, path) + _completeness_errors(schema, schema, path, path)
    return sorted(causes, key=lambda c: f"{c.field}: {c.message}")


def _is_bare_type(schema: Any, wanted: str) -> bool:
    if not isinstance(schema, dict) or schema.get("type") != wanted:
        return False
    ignored = ("type", "externalDocs", "example")
    return all(k in ignored or v in (None, "", False) or (k in ("enum", "allOf", "anyOf", "oneOf") and v == [])
               for k, v in schema.items())


def _is_int_or_string_any_of(any_of: Any) -> bool:
    any_of = _list(any_of)
    return len(any_of) == 2 and _is_bare_type(any_of[0], "integer") and _is_bare_type(any_of[1], "string")


def _invariant_errors(s: Obj, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    items, additional = s.get("items"), s.get("additionalProperties")
    properties = _dict(s.get("properties"))
    embedded = s.get("x-kubernetes-embedded-resource") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    schema_type = _str(s.get("type"))
    if schema_type == "array" and items is None:
        causes.append(m.required(f"{path}.items", "must be specified"))
    if isinstance(items, dict):
        causes += _invariant_errors(items, _ITEMS, f"{path}.items")
    for name, prop in properties.items():
        causes += _invariant_errors(_dict(prop), _FIELD, f"{path}.properties[{name}]")
    if additional is not None:
        if level == _ROOT:
            causes.append(m.forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if isinstance(additional, dict):
            causes += _invariant_errors(additional, _FIELD, f"{path}.additionalProperties")
    if int_or_string and preserve:
        causes.append(m.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                                "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        causes.append(m.invalid(f"{path}.x-kubernetes-embedded-resource", True,
                                "must be false if x-kubernetes-int-or-string is true"))
    all_of = _list(s.get("allOf"))
    causes += _value_validation_errors(s, _is_int_or_string_any_of(s.get("anyOf")),
                                       bool(all_of) and _is_int_or_string_any_of(_dict(all_of[0]).get("anyOf")),
                                       level, path)
    if embedded and schema_type != "object":
        causes += _type_must_be(s, path, "object", "must be object if x-kubernetes-embedded-resource is true")
    elif not schema_type and not int_or_string and not preserve:
        where = {_ROOT: "at the root", _ITEMS: "for specified array items", _FIELD: "for specified object fields"}
        causes.append(m.required(f"{path}.type", f"must not be empty {where[level]}"))
    if embedded and additional is not None:
        causes.append(m.forbidden(f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"))
    if level == _ROOT and schema_type and schema_type != "object":
        causes.append(m.invalid(f"{path}.type", schema_type, "must be object at the root"))
    check_metadata = level == _ROOT or embedded
    for name in ("kind", "apiVersion"):
        if name in properties and check_metadata and _dict(properties[name]).get("type") != "string":
            causes.append(m.invalid(f"{path}.properties[{name}].type", _str(_dict(properties[name]).get("type")),
                                    "must be string"))
    if "metadata" in properties:
        causes += _metadata_errors(_dict(properties["metadata"]), check_metadata, level,
                                   f"{path}.properties[metadata]")
    if embedded and not preserve and not properties:
        causes.append(m.required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is true "
                                 "without x-kubernetes-preserve-unknown-fields"))
    return causes


def _metadata_errors(s: Obj, check_metadata: bool, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if check_metadata and s.get("type") != "object":
        causes.append(m.invalid(f"{path}.type", _str(s.get("type")), "must be object"))
    if level != _ROOT:
        return causes
    keys = set(_dict(s.get("properties")))
    only_names = keys == {"name", "generateName"} or (len(keys) == 1 and keys <= {"name", "generateName"})
    extra = (bool(keys) and not only_names) or any(s.get(k) is not None for k in (
        "items", "additionalProperties", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
        "x-kubernetes-map-type", "x-kubernetes-validations", "maximum", "minimum", "maxLength", "minLength",
        "maxItems", "minItems", "multipleOf", "maxProperties", "minProperties", "required", "not"))
    extra = extra or any(_is_set(s, k, "str") for k in ("description", "title", "format", "pattern"))
    extra = extra or any(s.get(k) is True for k in (
        "nullable", "exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string"))
    extra = extra or any(bool(_list(s.get(k))) for k in ("enum", "allOf", "anyOf", "oneOf"))
    if extra:
        causes.append(m.forbidden(path, "must not specify anything other than name and generateName, "
                                  "but metadata is implicitly specified"))
    return causes


def _value_validation_errors(v: Obj, skip_any_of: bool, skip_first_all_of_any_of: bool, level: str,
                             path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not skip_any_of:
        for i, sub in enumerate(_list(v.get("anyOf"))):
            causes += _nested_errors(_dict(sub), False, False, level, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(_list(v.get("allOf"))):
        causes += _nested_errors(_dict(sub), skip_first_all_of_any_of and i == 0, False, level, f"{path}.allOf[{i}]")
    for i, sub in enumerate(_list(v.get("oneOf"))):
        causes += _nested_errors(_dict(sub), False, False, level, f"{path}.oneOf[{i}]")
    if isinstance(v.get("not"), dict):
        causes += _nested_errors(v["not"], False, False, level, f"{path}.not")
    pattern = _str(v.get("pattern"))
    if pattern and (error := go_regexp_error(pattern)) is not None:
        causes.append(m.invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {error}"))
    return causes


def _nested_errors(v: Obj, skip_any_of: bool, skip_all_of_any_of: bool, level: str, path: str) -> list[Cause]:
    """Rules for a schema under allOf/anyOf/oneOf/not: only value validations are allowed."""
    causes = _value_validation_errors(v, skip_any_of, skip_all_of_any_of, level, path)
    if isinstance(v.get("items"), dict):
        causes += _nested_errors(v["items"], False, False, level, f"{path}.items")
    for name, prop in _dict(v.get("properties")).items():
        causes += _nested_errors(_dict(prop), False, False, _FIELD, f"{path}.properties[{name}]")
    checks = (
        ("type", _is_set(v, "type", "str"), "must be empty to be structural"),
        ("additionalProperties", isinstance(v.get("additionalProperties"), dict)
         or v.get("additionalProperties") is True, "must be undefined to be structural"),
        ("default", v.get("default") is not None, "must be undefined to be structural"),
        ("title", _is_set(v, "title", "str"), "must be empty to be structural"),
        ("description", _is_set(v, "description", "str"), "must be empty to be structural"),
        ("nullable", v.get("nullable") is True, "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", v.get("x-kubernetes-preserve-unknown-fields") is True,
         "must be false to be structural"),
        ("x-kubernetes-embedded-resource", v.get("x-kubernetes-embedded-resource") is True,
         "must be false to be structural"),
        ("x-kubernetes-int-or-string", v.get("x-kubernetes-int-or-string") is True, "must be false to be structural"),
        ("x-kubernetes-list-map-keys", bool(_list(v.get("x-kubernetes-list-map-keys"))),
         "must be empty to be structural"),
        ("x-kubernetes-list-type", v.get("x-kubernetes-list-type") is not None, "must be undefined to be structural"),
        ("x-kubernetes-map-type", v.get("x-kubernetes-map-type") is not None, "must be undefined to be structural"),
        ("x-kubernetes-validations", bool(_list(v.get("x-kubernetes-validations"))), "must be empty to be structural"),
    )
    causes += [m.forbidden(f"{path}.{key}", detail) for key, bad, detail in checks if bad]
    if "metadata" in _dict(v.get("properties")):
        causes.append(m.forbidden(f"{path}.properties[metadata]", "must not be specified in a nested context"))
    return causes


def _completeness_errors(v: Obj, s: Obj | None, s_path: str, v_path: str) -> list[Cause]:
    """Each property or items named under a junctor must also be specified structurally."""
    causes: list[Cause] = []
    for key in ("not", "allOf", "anyOf", "oneOf"):
        subs = [v.get(key)] if key == "not" else _list(v.get(key))
        for i, sub in enumerate(subs):
            if isinstance(sub, dict):
                where = f"{v_path}.not" if key == "not" else f"{v_path}.{key}[{i}]"
                causes += _nested_completeness_errors(sub, s, s_path, where)
    return causes


def _nested_completeness_errors(v: Obj, s: Obj | None, s_path: str, v_path: str) -> list[Cause]:
    if s is None:
        return [m.required(s_path, f"because it is defined in {v_path}")]
    causes = _completeness_errors(v, s, s_path, v_path)
    if isinstance(v.get("items"), dict):
        causes += _nested_completeness_errors(v["items"], _schema_or_none(s.get("items")), f"{s_path}.items",
                                              f"{v_path}.items")
    s_props = _dict(s.get("properties"))
    for name, prop in _dict(v.get("properties")).items():
        if name not in s_props:
            causes.append(m.required(f"{s_path}.properties[{name}]",
                                     f"because it is defined in {v_path}.properties[{name}]"))
        else:
            causes += _nested_completeness_errors(_dict(prop), _dict(s_props[name]), f"{s_path}.properties[{name}]",
                                                  f"{v_path}.properties[{name}]")
    return causes


def go_regexp_error(pattern: str) -> str | None:
    """Why Go's regexp package would refuse ``pattern`` (None when it accepts it), worded as Go does
    for the common mistakes; RE2-only syntax (``\\pL``, ``[[:alpha:]]``, ``\\z``) is accepted."""
    for construct in ("(?=", "(?!", "(?<=", "(?<!"):
        if construct in pattern:
            return f"error parsing regexp: invalid or unsupported Perl syntax: `{construct}`"
    if (backref := re.search(r"(?<!\\)(?:\\\\)*(\\[1-9])", pattern)) is not None:
        return f"error parsing regexp: invalid escape sequence: `{backref.group(1)}`"
    try:
        re.compile(pattern)
    except re.error as err:
        if re.search(r"\\[pPzQEC]|\[:\w+:\]", pattern):
            return None
        pos = err.pos or 0
        text = str(err.msg)
        if text.startswith("missing )"):
            return f"error parsing regexp: missing closing ): `{pattern}`"
        if text.startswith("unbalanced parenthesis"):
            return f"error parsing regexp: unexpected ): `{pattern}`"
        if text.startswith("unterminated character set"):
            return f"error parsing regexp: missing closing ]: `{pattern[pos:]}`"
        if text.startswith("nothing to repeat"):
            return f"error parsing regexp: missing argument to repetition operator: `{pattern[pos:pos + 1]}`"
        if text.startswith("multiple repeat"):
            return f"error parsing regexp: invalid nested repetition operator: `{pattern[max(pos - 1, 0):pos + 1]}`"
        return f"error parsing regexp: {text}: `{pattern}`"
    return None


# --- field paths into a schema (x-kubernetes-validations fieldPath, selectableFields) -----

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
    properties = _dict(schema.get("properties"))
    if properties:
        if name not in properties:
            raise ValueError("does not refer to a valid field")
        return _dict(properties[name])
    if schema.get("additionalProperties") is not None:
        return _schema_or_none(schema.get("additionalProperties"))
    raise ValueError("does not refer to a valid field")


def _validate_selectable_fields(fields: list[Any], validation: Obj, path: str) -> list[Cause]:
    schema = _schema_or_none(validation.get("openAPIV3Schema"))
    causes: list[Cause] = []
    if schema is not None and (error := _structural_init_error(schema)) is not None:
        return [m.invalid(f"{path}.schema.openAPIV3Schema", "", error)]
    unique: set[str] = set()
    for i, field in enumerate(fields):
        field_path = f"{path}.selectableFields[{i}].jsonPath"
        json_path = _str(_dict(field).get("jsonPath"))
        if not json_path:
            causes.append(m.required(field_path))
            continue
        try:
            steps, found = resolve_field_path(json_path, schema, allow_array=False)
        except ValueError as err:
            causes.append(m.invalid(field_path, json_path, f"is an invalid path: {err}"))
            continue
        if steps and steps[0] == "metadata":
            causes.append(m.invalid(field_path, json_path, "must not point to fields in metadata"))
        if found is None or found.get("type") not in ("string", "boolean", "integer"):
            causes.append(m.invalid(field_path, json_path, "must point to a field of type string, boolean or "
                                    "integer. Enum string fields and strings with formats are allowed."))
        key = ".".join(steps)
        if key in unique:
            causes.append(m.duplicate(field_path, json_path))
        unique.add(key)
    if len(unique) > MAX_SELECTABLE_FIELDS:
        causes.append(m.too_many(f"{path}.selectableFields", len(unique), MAX_SELECTABLE_FIELDS))
    return causes
