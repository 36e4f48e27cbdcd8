"""apiextensions.k8s.io/v1 CustomResourceDefinition: defaults and validation (kube-apiserver 1.32 rules)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.kinds.apiextensions.definition import default_crd, go_regexp_error, validate_crd

Obj = dict[str, Any]

DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
           "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
           "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def schema() -> Obj:
    return {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
            "image": {"type": "string"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}


def crontab(**spec: Any) -> Obj:
    """The CronTab of the Kubernetes docs, served as v1 (storage) and v1beta1."""
    crd: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
                 "versions": [
                     {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema()},
                      "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                               "statusReplicasPath": ".status.replicas"}},
                      "additionalPrinterColumns": [
                          {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                          {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
                          {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]},
                     {"name": "v1beta1", "served": True, "storage": False, "deprecated": True,
                      "deprecationWarning": "stable.example.com/v1beta1 CronTab is deprecated",
                      "schema": {"openAPIV3Schema": schema()}}]}}
    crd["spec"].update(spec)
    default_crd(crd)
    return crd


def version(crd: Obj, i: int) -> Obj:
    return crd["spec"]["versions"][i]  # type: ignore[no-any-return]


def root_schema(crd: Obj, i: int = 0) -> Obj:
    return version(crd, i)["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def with_schema(root: Obj) -> Obj:
    """A one-version CRD with the given schema (errors then read ``spec.validation...``)."""
    crd = crontab()
    crd["spec"]["versions"] = [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": root}}]
    return crd


def errors(crd: Obj, old: Obj | None = None) -> list[str]:
    return messages(validate_crd(crd, old))


# --- defaults ------------------------------------------------------------------------------

def test_defaults_fill_names_conversion_and_port() -> None:
    crd: Obj = {"metadata": {"name": "crontabs.stable.example.com"},
                "spec": {"group": "stable.example.com", "names": {"plural": "crontabs", "kind": "CronTab"},
                         "versions": [{"name": "v1", "served": True, "storage": True}]},
                "status": {}}
    default_crd(crd)
    assert crd["spec"]["names"] == {"plural": "crontabs", "kind": "CronTab", "singular": "crontab",
                                    "listKind": "CronTabList"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["status"]["storedVersions"] == ["v1"]
    assert "preserveUnknownFields" not in crd["spec"]

    webhook: Obj = {"spec": {"names": {"plural": "a", "kind": "A", "singular": "one", "listKind": "Many"},
                             "conversion": {"strategy": "Webhook", "webhook": {
                                 "conversionReviewVersions": ["v1"],
                                 "clientConfig": {"service": {"name": "conv", "namespace": "default"}}}}}}
    default_crd(webhook)
    assert webhook["spec"]["names"]["singular"] == "one" and webhook["spec"]["names"]["listKind"] == "Many"
    assert webhook["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443
    assert "status" not in webhook


def test_listkind_not_defaulted_without_kind() -> None:
    crd: Obj = {"spec": {"names": {"plural": "things"}}}
    default_crd(crd)
    assert crd["spec"]["names"] == {"plural": "things", "singular": ""}


# --- a valid definition --------------------------------------------------------------------

def test_valid_crontab_passes_create_and_update() -> None:
    crd = crontab()
    assert errors(crd) == []
    updated = copy.deepcopy(crd)
    version(updated, 1)["served"] = False
    assert errors(updated, crd) == []


def test_valid_cluster_scoped_with_webhook_conversion() -> None:
    crd = crontab(scope="Cluster", conversion={"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {"service": {"name": "conv", "namespace": "default", "path": "/convert"}}}})
    assert errors(crd) == []


# --- metadata, group, scope, names -------------------------------------------------------------

def test_name_must_be_plural_dot_group() -> None:
    crd = crontab()
    crd["metadata"]["name"] = "crontab.stable.example.com"
    assert errors(crd) == [
        'metadata.name: Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group']


def test_group_rules() -> None:
    crd = crontab(group="")
    crd["metadata"]["name"] = "crontabs."
    assert "spec.group: Required value" in errors(crd)
    crd = crontab(group="example")
    crd["metadata"]["name"] = "crontabs.example"
    assert errors(crd) == ['spec.group: Invalid value: "example": should be a domain with at least one dot']
    crd = crontab(group="Stable.example.com")
    crd["metadata"]["name"] = "crontabs.Stable.example.com"
    assert "spec.group: Invalid value: \"Stable.example.com\": a lowercase RFC 1123 subdomain" in errors(crd)[-1]


def test_scope_required_and_supported() -> None:
    assert errors(crontab(scope="")) == ["spec.scope: Required value"]
    assert errors(crontab(scope="Global")) == [
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']


def test_names_rules() -> None:
    crd = crontab(names={"plural": "crontabs", "singular": "CronTab", "kind": "Cron_Tab", "listKind": "Cron_Tab",
                         "shortNames": ["ct", "C T"], "categories": ["all", "Bad"]})
    assert errors(crd) == [
        f'spec.names.singular: Invalid value: "CronTab": {DNS1035}',
        f'spec.names.kind: Invalid value: "Cron_Tab": may have mixed case, but should otherwise match: {DNS1035}',
        f'spec.names.listKind: Invalid value: "Cron_Tab": may have mixed case, but should otherwise match: {DNS1035}',
        f'spec.names.shortNames[1]: Invalid value: "C T": {DNS1035}',
        'spec.names.listKind: Invalid value: "Cron_Tab": kind and listKind may not be the same',
        f'spec.names.categories[1]: Invalid value: "Bad": {DNS1035}',
    ]


def test_names_required() -> None:
    crd = crontab(names={"plural": ""})
    crd["metadata"]["name"] = ".stable.example.com"
    assert errors(crd)[-4:] == ["spec.names.plural: Required value", "spec.names.singular: Required value",
                                "spec.names.kind: Required value", "spec.names.listKind: Required value"]


# --- versions -------------------------------------------------------------------------------

def test_versions_need_exactly_one_storage_and_unique_names() -> None:
    crd = crontab()
    version(crd, 1)["storage"] = True
    version(crd, 1)["name"] = "v1"
    assert [e.split(":")[0] + ": " + e.rsplit(": ", 1)[1] for e in errors(crd)] == [
        "spec.versions: must contain unique version names",
        "spec.versions: must have exactly one version marked as storage version"]
    crd = crontab(versions=[])
    assert errors(crd) == ["spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{}: "
                           "must have exactly one version marked as storage version"]


def test_version_name_is_a_dns1035_label_reported_twice() -> None:
    crd = crontab()
    version(crd, 0)["name"] = "V1"
    assert errors(crd) == [f'spec.versions[0].name: Invalid value: "V1": {DNS1035}',
                           f'spec.version: Invalid value: "V1": {DNS1035}']


def test_every_version_needs_a_schema() -> None:
    crd = crontab()
    del version(crd, 1)["schema"]
    assert errors(crd) == ["spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required"]


def test_deprecation_warning_only_for_deprecated_versions() -> None:
    crd = crontab()
    version(crd, 1)["deprecated"] = False
    assert errors(crd) == ['spec.versions[1].deprecationWarning: Invalid value: '
                           '"stable.example.com/v1beta1 CronTab is deprecated": can only be set for deprecated versions']


def test_preserve_unknown_fields_true_is_refused() -> None:
    assert errors(crontab(preserveUnknownFields=True)) == [
        "spec.preserveUnknownFields: Invalid value: true: cannot set to true, "
        "set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"]


# --- schemas ----------------------------------------------------------------------------------

def test_missing_type_path_depends_on_whether_versions_share_the_schema() -> None:
    crd = crontab()
    for i in (0, 1):
        del root_schema(crd, i)["properties"]["spec"]["properties"]["image"]["type"]
    assert errors(crd) == ["spec.validation.openAPIV3Schema.properties[spec].properties[image].type: "
                           "Required value: must not be empty for specified object fields"]
    del root_schema(crd, 1)["properties"]["spec"]["properties"]["image"]
    assert errors(crd) == ["spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[image].type: "
                           "Required value: must not be empty for specified object fields"]


def test_type_exemptions_and_array_items() -> None:
    ok = with_schema({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "raw": {"x-kubernetes-preserve-unknown-fields": True},
        "list": {"type": "array", "items": {"type": "string"}}}})
    assert errors(ok) == []
    bad = with_schema({"type": "object", "properties": {"list": {"type": "array"}, "tags": {"type": "array",
                                                                                            "items": {}}}})
    assert errors(bad) == [
        "spec.validation.openAPIV3Schema.properties[list].items: Required value: must be specified",
        "spec.validation.openAPIV3Schema.properties[tags].items.type: Required value: "
        "must not be empty for specified array items"]


def test_root_must_be_an_object_without_additional_properties() -> None:
    assert errors(with_schema({"type": "string"})) == [
        'spec.validation.openAPIV3Schema.type: Invalid value: "string": must be object at the root']
    assert errors(with_schema({"type": "object", "additionalProperties": {"type": "string"}})) == [
        "spec.validation.openAPIV3Schema.additionalProperties: Forbidden: must not be used at the root"]
    assert errors(with_schema({"properties": {"spec": {"type": "object"}}})) == [
        "spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root"]


def test_root_metadata_may_only_restrict_name_and_generate_name() -> None:
    fine = with_schema({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 20}}}}})
    assert errors(fine) == []
    crd = with_schema({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "labels": {"type": "object"}}}}})
    assert errors(crd) == ["spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify "
                           "anything other than name and generateName, but metadata is implicitly specified"]
    crd = with_schema({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})
    assert errors(crd) == ["spec.validation.openAPIV3Schema.properties[metadata].default: Forbidden: "
                           "must not be set in top-level metadata"]
    crd = with_schema({"type": "object", "properties": {"kind": {"type": "integer"}}})
    assert errors(crd) == [
        'spec.validation.openAPIV3Schema.properties[kind].type: Invalid value: "integer": must be string']


def test_properties_and_additional_properties_are_mutually_exclusive() -> None:
    crd = with_schema({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}})
    assert errors(crd) == ["spec.validation.openAPIV3Schema.properties[spec].additionalProperties: Forbidden: "
                           "additionalProperties and properties are mutual exclusive"]
    crd = with_schema({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True}}})
    assert errors(crd) == []


def test_openapi_keywords_that_crds_refuse() -> None:
    crd = with_schema({"type": "object", "properties": {
        "a": {"type": "null"}, "b": {"type": "string", "uniqueItems": True},
        "c": {"type": "array", "items": [{"type": "string"}]}, "d": {"$ref": "#/definitions/x"}}})
    path = "spec.validation.openAPIV3Schema.properties"
    assert errors(crd) == [
        f'{path}[a].type: Unsupported value: "null": supported values: "array", "boolean", "integer", '
        '"number", "object", "string"',
        f"{path}[a].type: Forbidden: type cannot be set to null, use nullable as an alternative",
        f"{path}[b].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity "
        "becomes quadratic",
        f"{path}[c].items: Forbidden: items must be a schema object and not an array",
        f"{path}[d].$ref: Forbidden: $ref is not supported"]
    assert errors(with_schema({"type": "object", "$schema": "http://json-schema.org/draft-04/schema#"})) == [
        "spec.validation.openAPIV3Schema: Invalid value: \"\": OpenAPIV3Schema 'schema' is not supported"]


def test_list_and_map_extensions() -> None:
    path = "spec.validation.openAPIV3Schema.properties"
    crd = with_schema({"type": "object", "properties": {
        "a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"},
        "b": {"type": "string", "x-kubernetes-list-type": "set"},
        "c": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {
            "name": {"type": "string"}}}},
        "d": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
        "e": {"type": "object", "x-kubernetes-map-type": "loose"}}})
    assert errors(crd) == [
        f'{path}[a].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"',
        f'{path}[b].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified',
        f"{path}[c].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
        f'{path}[e].x-kubernetes-map-type: Unsupported value: "loose": supported values: "atomic", "granular"']
    crd = with_schema({"type": "object", "properties": {"d": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}})
    assert errors(crd) == [f"{path}[d].items.properties[name].default: Required value: this property is in "
                           "x-kubernetes-list-map-keys, so it must have a default or be a required property"]


def test_value_validations_must_not_declare_structure() -> None:
    crd = with_schema({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string"}}, "anyOf": [{"type": "object", "properties": {"b": {"description": "x"}}}]}}})
    path = "spec.validation.openAPIV3Schema.properties[spec]"
    assert errors(crd) == [
        f"{path}.anyOf[0].properties[b].description: Forbidden: must be empty to be structural",
        f"{path}.anyOf[0].type: Forbidden: must be empty to be structural"]
    crd = with_schema({"type": "object", "properties": {"spec": {"type": "object"}},
                       "anyOf": [{"properties": {"spec": {"properties": {"x": {}}}}}]})
    assert errors(crd) == ["spec.validation.openAPIV3Schema.properties[spec].properties[x]: Required value: "
                           "because it is defined in spec.validation.openAPIV3Schema.anyOf[0].properties[spec]"
                           ".properties[x]"]


def test_pattern_must_compile() -> None:
    crd = with_schema({"type": "object", "properties": {"a": {"type": "string", "pattern": "(abc"}}})
    assert errors(crd) == ['spec.validation.openAPIV3Schema.properties[a].pattern: Invalid value: "(abc": '
                           "must be a valid regular expression, but isn't: error parsing regexp: "
                           "missing closing ): `(abc`"]
    assert go_regexp_error(r"^\pL+$") is None
    assert go_regexp_error("a(?=b)") == "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"


def test_status_subresource_restricts_the_root_schema() -> None:
    crd = crontab()
    for i in (0, 1):
        root_schema(crd, i)["additionalProperties"] = False
    assert "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength " \
           "MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs " \
           "Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the " \
           "status subresource is enabled" in errors(crd)[0]
    assert errors(crd)[0].startswith("spec.validation.openAPIV3Schema: Invalid value: ")


def test_nullable_root_and_validation_rules() -> None:
    crd = with_schema({"type": "object", "nullable": True, "x-kubernetes-validations": [
        {"rule": " "}, {"rule": "self.a > 0", "message": "two\nlines"},
        {"rule": "self.a > 0", "reason": "Bad"}, {"rule": "true", "fieldPath": ".nope"}],
        "properties": {"a": {"type": "integer"}}})
    root = "spec.validation.openAPIV3Schema"
    assert errors(crd) == [
        f"{root}.nullable: Forbidden: nullable cannot be true at the root",
        f"{root}.x-kubernetes-validations[0].rule: Required value: rule is not specified",
        f'{root}.x-kubernetes-validations[1].message: Invalid value: "two\\nlines": '
        "message must not contain line breaks",
        f'{root}.x-kubernetes-validations[2].reason: Unsupported value: "Bad": supported values: '
        '"FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
        f'{root}.x-kubernetes-validations[3].fieldPath: Invalid value: ".nope": fieldPath must be a valid path']


# --- subresources, columns, selectable fields ---------------------------------------------

def test_scale_subresource_paths() -> None:
    crd = crontab()
    version(crd, 0)["subresources"]["scale"] = {"specReplicasPath": "spec.replicas",
                                                "statusReplicasPath": ".spec.replicas",
                                                "labelSelectorPath": ".metadata.labels"}
    path = "spec.versions[0].subresources.scale"
    assert errors(crd) == [
        f'{path}.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with .',
        f'{path}.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status',
        f'{path}.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either '
        ".spec or .status"]
    version(crd, 0)["subresources"]["scale"] = {}
    assert errors(crd) == [f"{path}.specReplicasPath: Required value", f"{path}.statusReplicasPath: Required value"]


def test_printer_columns() -> None:
    crd = crontab()
    version(crd, 0)["additionalPrinterColumns"] = [
        {"type": "string", "jsonPath": ".spec.image"},
        {"name": "A", "jsonPath": ".spec.image"},
        {"name": "B", "type": "text", "format": "uuid", "jsonPath": "spec.image"},
        {"name": "C", "type": "integer"}]
    path = "spec.versions[0].additionalPrinterColumns"
    assert errors(crd) == [
        f"{path}[0].name: Required value",
        f"{path}[1].type: Required value: must be one of boolean,date,integer,number,string",
        f'{path}[2].type: Invalid value: "text": must be one of boolean,date,integer,number,string',
        f'{path}[2].format: Invalid value: "uuid": must be one of byte,date,date-time,double,float,int32,int64,password',
        f'{path}[2].JSONPath: Invalid value: "spec.image": must be a simple json path starting with .',
        f"{path}[3].JSONPath: Required value"]


def test_shared_columns_are_reported_at_the_top() -> None:
    crd = crontab()
    columns = [{"name": "Bad", "type": "string", "jsonPath": "x"}]
    version(crd, 0)["additionalPrinterColumns"] = columns
    version(crd, 1)["additionalPrinterColumns"] = copy.deepcopy(columns)
    assert errors(crd) == ['spec.additionalPrinterColumns[0].JSONPath: Invalid value: "x": '
                           "must be a simple json path starting with ."]


def test_selectable_fields() -> None:
    crd = crontab()
    root_schema(crd, 1)["properties"]["spec"]["properties"]["legacy"] = {"type": "string"}
    version(crd, 0)["selectableFields"] = [{"jsonPath": ".spec.image"}, {"jsonPath": ".spec.image"},
                                           {"jsonPath": ".spec.nope"}, {"jsonPath": ".spec"}, {"jsonPath": ""}]
    path = "spec.versions[0].selectableFields"
    assert errors(crd) == [
        f'{path}[1].jsonPath: Duplicate value: ".spec.image"',
        f'{path}[2].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not refer to a valid field',
        f'{path}[3].jsonPath: Invalid value: ".spec": must point to a field of type string, boolean or integer. '
        "Enum string fields and strings with formats are allowed.",
        f"{path}[4].jsonPath: Required value"]


def test_selectable_fields_of_one_version_when_all_share_the_schema() -> None:
    # kube-apiserver checks a version's selectableFields against that version's own schema,
    # which its internal form has lifted to spec.validation when every version has the same one.
    crd = crontab()
    version(crd, 0)["selectableFields"] = [{"jsonPath": ".spec.image"}]
    assert errors(crd) == ['spec.versions[0].selectableFields: Invalid value: "": selectableFields may only be '
                           "set when version.schema.openAPIV3Schema is not included"]


# --- conversion ---------------------------------------------------------------------------------

@pytest.mark.parametrize("conversion, expected", [
    ({"strategy": "Webhook"}, [
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
        "spec.conversion.conversionReviewVersions: Required value"]),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2"], "clientConfig": {
        "url": "http://user@conv.example.com/x?y=1"}}}, [
        'spec.conversion.webhookClientConfig.url: Invalid value: "http": \'https\' is the only allowed URL '
        "scheme; desired format: https://host[/path]",
        'spec.conversion.webhookClientConfig.url: Invalid value: "user": user information is not permitted '
        "in the URL",
        'spec.conversion.webhookClientConfig.url: Invalid value: "y=1": query parameters are not permitted '
        "in the URL",
        'spec.conversion.conversionReviewVersions: Invalid value: []string{"v2"}: must include at least one '
        "of v1, v1beta1"]),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1", "v1"], "clientConfig": {
        "url": "https://conv.example.com", "service": {"name": "s", "namespace": "n"}}}}, [
        "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
        'spec.conversion.conversionReviewVersions[1]: Invalid value: "v1": duplicate version']),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
        "service": {"namespace": "n", "port": 0, "path": "convert"}}}}, [
        "spec.conversion.webhookClientConfig.service.name: Required value: service name is required",
        "spec.conversion.webhookClientConfig.service.port: Invalid value: 0: port is not valid: "
        "must be between 1 and 65535, inclusive",
        'spec.conversion.webhookClientConfig.service.path: Invalid value: "convert": must start with a \'/\'']),
    ({"strategy": "None", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://x"}}}, [
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
        "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook"]),
    ({"strategy": "Magic"}, [
        'spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook"']),
])
def test_conversion(conversion: Obj, expected: list[str]) -> None:
    assert errors(crontab(conversion=conversion)) == expected


# --- API approval for protected groups --------------------------------------------------------------

def test_protected_groups_need_api_approval() -> None:
    crd = crontab(group="widgets.k8s.io")
    crd["metadata"]["name"] = "crontabs.widgets.k8s.io"
    assert errors(crd) == [
        'metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval '
        'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111']
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "yes"}
    assert errors(crd)[0].startswith('metadata.annotations[api-approved.kubernetes.io]: Invalid value: "yes": '
                                     "protected groups must have approval annotation")
    for value in ("https://github.com/kubernetes/kubernetes/pull/78458", "unapproved, experimental"):
        crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": value}
        assert errors(crd) == []


# --- updates --------------------------------------------------------------------------------------

def test_group_and_plural_are_immutable() -> None:
    old = crontab()
    new = copy.deepcopy(old)
    new["spec"]["group"] = "other.example.com"
    new["spec"]["names"]["plural"] = "crontabz"
    assert errors(new, old) == ['spec.group: Invalid value: "other.example.com": field is immutable',
                                'spec.names.plural: Invalid value: "crontabz": field is immutable']


def test_scope_and_kind_become_immutable_once_established() -> None:
    old = crontab()
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    new["spec"]["names"].update(kind="Crontab", listKind="CrontabList")
    assert errors(new, old) == []
    old["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    assert errors(new, old) == ['spec.scope: Invalid value: "Cluster": field is immutable',
                                'spec.names.kind: Invalid value: "Crontab": field is immutable']


def test_update_keeps_status_and_checks_metadata() -> None:
    old = crontab()
    old["metadata"].update(uid="u1", resourceVersion="5")
    old["status"] = {"storedVersions": ["v1"], "conditions": [], "acceptedNames": {"plural": "", "kind": ""}}
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "u2"
    assert errors(new, old) == ['metadata.uid: Invalid value: "u2": field is immutable']
    assert new["status"] == old["status"]


def test_update_ratchets_rules_the_stored_definition_already_broke() -> None:
    loose = {"type": "object", "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set",
                                                       "items": {"type": "object", "properties": {
                                                           "a": {"type": "string"}}}}}}
    old = with_schema(loose)
    assert errors(old) == ["spec.validation.openAPIV3Schema.properties[tags].items.x-kubernetes-map-type: "
                           "Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set"]
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    assert errors(new, old) == []
