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

The checks are spread over sibling modules; this one holds the top level (metadata,
group, scope, names, the version list, API approval, update rules):

* :mod:`.schemarules`      a version's ``openAPIV3Schema``: OpenAPI rules, extensions, defaults
* :mod:`.structuralrules`  the structural-schema rules and Go ``pattern`` errors
* :mod:`.versionparts`     deprecation warnings, subresources, printer columns, selectable fields
* :mod:`.conversion`       ``spec.conversion`` and its webhook
* :mod:`.fieldpath`, :mod:`.common`  schema field paths; shared accessors and options

``validate_names`` (the format rules of ``spec.names``) lives here; ``validate_webhook_url``,
``validate_webhook_service``, ``resolve_field_path`` and ``go_regexp_error`` are re-exported
from the modules above so existing imports keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterator
from urllib.parse import urlsplit

from ...errors import Cause
from .. import meta as m
from .common import Obj, ValidationOptions, as_dict, as_list, as_schema, as_str, validate_enum
from ..meta.webhookclient import validate_webhook_service, validate_webhook_url
from .conversion import ACCEPTED_REVIEW_VERSIONS, validate_conversion
from .fieldpath import resolve_field_path
from .schemarules import (has_invalid_type, has_kubernetes_extension, has_non_atomic_set, map_list_key_errors,
                          schema_has, validate_schema)
from .structuralrules import go_regexp_error, is_non_structural
from .versionparts import validate_column, validate_selectable_fields, validate_subresources, validate_version

__all__ = ["default_crd", "validate_crd", "validate_names", "validate_webhook_url", "validate_webhook_service",
           "resolve_field_path", "go_regexp_error", "API_APPROVAL_ANNOTATION", "SCOPES"]

SCOPES = ("Cluster", "Namespaced")
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_API_APPROVAL_HELP = "see https://github.com/kubernetes/enhancements/pull/1111"


# --- semantic equality (decides which per-version fields are lifted) -----------------------

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
            else c for c in as_list(value)]


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
        kind = as_str(names.get("kind"))
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    service = as_dict(as_dict(as_dict(spec.get("conversion")).get("webhook")).get("clientConfig")).get("service")
    if isinstance(service, dict) and service.get("port") is None:
        service["port"] = 443
    status = obj.get("status")
    if isinstance(status, dict) and not status.get("storedVersions"):
        storage = [v.get("name") for v in as_list(spec.get("versions")) if isinstance(v, dict) and v.get("storage")]
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
    versions = [dict(v) if isinstance(v, dict) else {} for v in as_list(spec.get("versions"))]
    out = _Spec(raw=spec, versions=versions)
    if not versions:
        return out
    for key, norm in (("schema", _semantic), ("subresources", _semantic),
                      ("additionalPrinterColumns", _semantic_columns),
                      ("selectableFields", lambda x: _semantic(as_list(x)))):
        first = norm(versions[0].get(key))
        if all(norm(v.get(key)) == first for v in versions):
            lifted = versions[0].get(key)
            for v in versions:
                v.pop(key, None)
            if key == "schema":
                out.validation = as_schema(lifted)
            elif key == "subresources":
                out.subresources = as_schema(lifted)
            elif key == "additionalPrinterColumns":
                out.columns = as_list(lifted)
            else:
                out.selectable_fields = as_list(lifted)
    return out


def _root_schemas(spec: _Spec) -> Iterator[Obj]:
    for validation in [spec.validation] + [as_schema(v.get("schema")) for v in spec.versions]:
        schema = as_schema(as_dict(validation).get("openAPIV3Schema"))
        if schema is not None:
            yield schema


def _is_established(crd: Obj) -> bool:
    return any(as_dict(c).get("type") == "Established" and as_dict(c).get("status") == "True"
               for c in as_list(as_dict(crd.get("status")).get("conditions")))


def _update_options(old: Obj, prev: _Spec) -> ValidationOptions:
    """Options for an update: rules the stored definition already breaks are not enforced."""
    webhook = as_dict(as_dict(prev.raw.get("conversion")).get("webhook"))
    review_versions = as_list(webhook.get("conversionReviewVersions"))
    all_have_schema = (as_dict(prev.validation).get("openAPIV3Schema") is not None or all(
        as_dict(v.get("schema")).get("openAPIV3Schema") is not None for v in prev.versions))
    schemas = list(_root_schemas(prev))
    return ValidationOptions(
        require_recognized_review_version=(not review_versions
                                           or any(v in ACCEPTED_REVIEW_VERSIONS for v in review_versions)),
        require_immutable_names=_is_established(old),
        require_openapi_schema=all_have_schema,
        require_valid_property_type=not any(schema_has(s, has_invalid_type) for s in schemas),
        require_structural=not any(is_non_structural(s) for s in schemas),
        require_atomic_set_type=not any(schema_has(s, has_non_atomic_set) for s in schemas),
        require_map_list_keys_validation=not any(
            schema_has(s, lambda x: bool(map_list_key_errors(x, ""))) for s in schemas),
    )


# --- entry point ----------------------------------------------------------------------

def validate_crd(obj: Obj, old: Obj | None) -> list[Cause]:
    """Static validation of a CustomResourceDefinition on create (``old`` None) or update."""
    raw_spec = as_dict(obj.get("spec"))
    spec = _internal(raw_spec)
    if old is None:
        required_name = f"{as_str(as_dict(raw_spec.get('names')).get('plural'))}.{as_str(raw_spec.get('group'))}"

        def name_fn(name: str, prefix: bool) -> list[str]:
            problems = m.name_is_dns_subdomain(name, prefix)
            if name != required_name:
                problems.append('must be spec.names.plural+"."+spec.group')
            return problems

        causes = m.validate_object_meta(obj.get("metadata"), False, name_fn=name_fn)
        causes += _validate_spec(spec, ValidationOptions())
    else:
        old_spec = as_dict(old.get("spec"))
        opts = _update_options(old, _internal(old_spec))
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        causes += _validate_spec(spec, opts)
        names, old_names = as_dict(raw_spec.get("names")), as_dict(old_spec.get("names"))
        if opts.require_immutable_names:
            causes += m.validate_immutable(as_str(raw_spec.get("scope")), as_str(old_spec.get("scope")), "spec.scope")
            causes += m.validate_immutable(as_str(names.get("kind")), as_str(old_names.get("kind")), "spec.names.kind")
        causes += m.validate_immutable(as_str(raw_spec.get("group")), as_str(old_spec.get("group")), "spec.group")
        causes += m.validate_immutable(as_str(names.get("plural")), as_str(old_names.get("plural")),
                                       "spec.names.plural")
    causes += _validate_api_approval(obj, old)
    if old is None or as_dict(old.get("spec")).get("preserveUnknownFields") is not True:
        if spec.preserve_unknown_fields:
            causes.append(m.invalid("spec.preserveUnknownFields", True,
                                    "cannot set to true, set x-kubernetes-preserve-unknown-fields to true "
                                    "in spec.versions[*].schema instead"))
    return causes


def _validate_spec(spec: _Spec, opts: ValidationOptions) -> list[Cause]:
    raw = spec.raw
    causes: list[Cause] = []
    group = as_str(raw.get("group"))
    if not group:
        causes.append(m.required("spec.group"))
    elif problems := m.is_dns1123_subdomain(group):
        causes.append(m.invalid("spec.group", group, ",".join(problems)))
    elif len(group.split(".")) < 2:
        causes.append(m.invalid("spec.group", group, "should be a domain with at least one dot"))
    causes += validate_enum("spec.scope", as_str(raw.get("scope")), SCOPES)

    if not spec.preserve_unknown_fields:
        opts = replace(opts, require_structural=True)
    if as_dict(spec.validation).get("openAPIV3Schema") is None:
        for i, version in enumerate(spec.versions):
            if as_dict(version.get("schema")).get("openAPIV3Schema") is not None:
                continue
            path = f"spec.versions[{i}].schema.openAPIV3Schema"
            if opts.require_openapi_schema:
                causes.append(m.required(path, "schemas are required"))
            elif not spec.preserve_unknown_fields and version.get("served") is True:
                causes.append(m.required(path, "because otherwise all fields are pruned"))
    schemas = list(_root_schemas(spec))
    if any(schema_has(s, lambda x: x.get("default") is not None) for s in schemas):
        opts = replace(opts, require_structural=True)
        if spec.preserve_unknown_fields:
            causes.append(m.invalid("spec.preserveUnknownFields", True,
                                    "must be false in order to use defaults in the schema"))
    if any(schema_has(s, has_kubernetes_extension) for s in schemas):
        opts = replace(opts, require_structural=True)

    per_version_subresources = any(v.get("subresources") is not None for v in spec.versions)
    seen: set[str] = set()
    unique = True
    storage_count = 0
    for i, version in enumerate(spec.versions):
        name = as_str(version.get("name"))
        storage_count += version.get("storage") is True
        unique = unique and name not in seen
        seen.add(name)
        if problems := m.is_dns1035_label(name):
            causes.append(m.invalid(f"spec.versions[{i}].name", name, ",".join(problems)))
        subresources = as_dict(version.get("subresources") if per_version_subresources else spec.subresources)
        causes += validate_version(version, f"spec.versions[{i}]", subresources.get("status") is not None, opts)
    versions_value = _versions_value(raw.get("versions"))
    if not unique:
        causes.append(m.invalid("spec.versions", versions_value, "must contain unique version names"))
    if storage_count != 1:
        causes.append(m.invalid("spec.versions", versions_value,
                                "must have exactly one version marked as storage version"))
    first_name = as_str(spec.versions[0].get("name")) if spec.versions else ""
    if first_name and (problems := m.is_dns1035_label(first_name)):
        causes.append(m.invalid("spec.version", first_name, ",".join(problems)))

    names = as_dict(raw.get("names"))
    for field in ("plural", "singular", "kind", "listKind"):
        if not as_str(names.get(field)):
            causes.append(m.required(f"spec.names.{field}"))
    causes += validate_names(names, "spec.names")

    any_status = (as_dict(spec.subresources).get("status") is not None
                  or any(as_dict(v.get("subresources")).get("status") is not None for v in spec.versions))
    causes += validate_schema(spec.validation, any_status, opts, "spec.validation")
    causes += validate_subresources(spec.subresources, "spec.subresources")
    for i, column in enumerate(spec.columns or []):
        causes += validate_column(as_dict(column), f"spec.additionalPrinterColumns[{i}]")
    if spec.selectable_fields:
        if spec.validation is None:
            causes.append(m.invalid("spec.selectableFields", "",
                                    "selectableFields may only be set when validations.schema is included"))
        else:
            causes += validate_selectable_fields(spec.selectable_fields, spec.validation, "spec")

    conversion = raw.get("conversion")
    if isinstance(conversion, dict):
        strategy = as_str(conversion.get("strategy"))
        if strategy != "None" and spec.preserve_unknown_fields:
            causes.append(m.invalid("spec.conversion.strategy", strategy,
                                    "must be None if spec.preserveUnknownFields is true"))
        causes += validate_conversion(conversion, opts.require_recognized_review_version)
    return causes


def _versions_value(versions: Any) -> Any:
    """``spec.versions`` as an error shows it (Go prints the struct slice; JSON is kept for items)."""
    if not versions:
        return m.Verbatim("[]apiextensions.CustomResourceDefinitionVersion" + ("{}" if versions == [] else "(nil)"))
    return m.Verbatim(json.dumps(versions, sort_keys=True, default=str))


def validate_names(names: Obj, path: str) -> list[Cause]:
    """The format rules for ``spec.names`` (and ``status.acceptedNames``)."""
    causes: list[Cause] = []
    for field in ("plural", "singular"):
        value = as_str(names.get(field))
        if value and (problems := m.is_dns1035_label(value)):
            causes.append(m.invalid(f"{path}.{field}", value, ",".join(problems)))
    for field in ("kind", "listKind"):
        value = as_str(names.get(field))
        if value and (problems := m.is_dns1035_label(value.lower())):
            causes.append(m.invalid(f"{path}.{field}", value,
                                    "may have mixed case, but should otherwise match: " + ",".join(problems)))
    for i, short in enumerate(as_list(names.get("shortNames"))):
        if problems := m.is_dns1035_label(as_str(short)):
            causes.append(m.invalid(f"{path}.shortNames[{i}]", short, ",".join(problems)))
    kind = as_str(names.get("kind"))
    if kind and kind == names.get("listKind"):
        causes.append(m.invalid(f"{path}.listKind", kind, "kind and listKind may not be the same"))
    for i, category in enumerate(as_list(names.get("categories"))):
        if problems := m.is_dns1035_label(as_str(category)):
            causes.append(m.invalid(f"{path}.categories[{i}]", category, ",".join(problems)))
    return causes


# --- API approval for *.k8s.io and *.kubernetes.io groups -------------------------------

def _approval_state(annotations: Obj) -> tuple[str, str]:
    value = as_str(annotations.get(API_APPROVAL_ANNOTATION))
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
    group = as_str(as_dict(obj.get("spec")).get("group"))
    if not any(group == g or group.endswith("." + g) for g in ("k8s.io", "kubernetes.io")):
        return []
    annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
    state, reason = _approval_state(annotations)
    if old is not None and _approval_state(as_dict(as_dict(old.get("metadata")).get("annotations")))[0] == state:
        return []
    path = f"metadata.annotations[{API_APPROVAL_ANNOTATION}]"
    if state == "missing":
        return [m.required(path, reason)]
    if state == "invalid":
        return [m.invalid(path, annotations.get(API_APPROVAL_ANNOTATION), reason)]
    return []
