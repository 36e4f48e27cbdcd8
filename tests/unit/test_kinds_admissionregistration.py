"""admissionregistration.k8s.io/v1 webhook configurations: defaults, validation, rule matching."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.admissionregistration import (
    MUTATINGWEBHOOKCONFIGURATIONS as MWC,
    RESOURCES,
    VALIDATINGWEBHOOKCONFIGURATIONS as VWC,
    rule_matches,
    webhooks_of,
)

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
Obj = dict[str, Any]


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def hook(**fields: Any) -> Obj:
    base: Obj = {"name": "policy.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                 "clientConfig": {"service": {"namespace": "default", "name": "webhook"}},
                 "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                            "resources": ["pods"]}]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def config(*hooks: Obj, kind: str = "ValidatingWebhookConfiguration") -> Obj:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": "policy", "creationTimestamp": "2024-01-01T00:55:00Z"},
            "webhooks": list(hooks)}


def errors(obj: Obj, info: Any = VWC, old: Obj | None = None) -> list[str]:
    info.default(obj)
    return messages(info.validate(obj, old))


def test_resource_infos() -> None:
    assert [r.kind for r in RESOURCES] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    for r in RESOURCES:
        assert r.group == "admissionregistration.k8s.io" and r.version == "v1" and not r.namespaced
        assert r.categories == ("api-extensions",)
        assert r.schema_type == f"io.k8s.api.admissionregistration.v1.{r.kind}"
        assert [(c.name, c.type) for c in r.columns] == [("Name", "string"), ("Webhooks", "integer"),
                                                         ("Age", "string")]
    assert MWC.plural == "mutatingwebhookconfigurations" and VWC.plural == "validatingwebhookconfigurations"


def test_row_and_webhooks_of() -> None:
    obj = config(hook(), hook(name="other.example.com"))
    assert VWC.row(obj, NOW) == ["policy", 2, "5m"]
    assert webhooks_of({"webhooks": None}) == [] and webhooks_of({}) == []
    assert VWC.row({"metadata": {"name": "x", "creationTimestamp": "2024-01-01T00:00:00Z"}}, NOW)[1] == 0


def test_defaults_mutating() -> None:
    obj = config(hook(clientConfig={"service": {"namespace": "d", "name": "w", "path": "/m"}}),
                 kind="MutatingWebhookConfiguration")
    MWC.default(obj)
    h = obj["webhooks"][0]
    assert h["failurePolicy"] == "Fail" and h["matchPolicy"] == "Equivalent"
    assert h["namespaceSelector"] == {} and h["objectSelector"] == {}
    assert h["timeoutSeconds"] == 10 and h["reinvocationPolicy"] == "Never"
    assert h["rules"][0]["scope"] == "*"
    assert h["clientConfig"]["service"]["port"] == 443
    assert h["sideEffects"] == "None"  # given, never defaulted
    assert MWC.validate(obj, None) == []


def test_defaults_validating_keep_given_values_and_skip_required_fields() -> None:
    h = hook(failurePolicy="Ignore", timeoutSeconds=5, sideEffects=None, admissionReviewVersions=None,
             clientConfig={"url": "https://hooks.example.com/v"})
    obj = config(h)
    VWC.default(obj)
    h = obj["webhooks"][0]
    assert h["failurePolicy"] == "Ignore" and h["timeoutSeconds"] == 5
    assert "reinvocationPolicy" not in h and "sideEffects" not in h and "admissionReviewVersions" not in h
    assert messages(VWC.validate(obj, None)) == [
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
        "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
    ]


def test_valid_configs_pass() -> None:
    full = hook(
        clientConfig={"url": "https://hooks.example.com:8443/validate", "caBundle": "Zm9v"},
        rules=[{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"],
                "scope": "Namespaced"},
               {"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
                "resources": ["deployments", "deployments/scale", "*/status"]}],
        namespaceSelector={"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
        objectSelector={"matchLabels": {"app": "web"}},
        matchConditions=[{"name": "not-system", "expression": "!request.userInfo.username.startsWith('system:')"}],
        admissionReviewVersions=["v1", "v1beta1"], sideEffects="NoneOnDryRun", failurePolicy="Ignore",
        matchPolicy="Exact", timeoutSeconds=30)
    assert errors(config(full, hook(name="second.example.com"))) == []
    assert errors(config(full, kind="MutatingWebhookConfiguration"), MWC) == []
    assert errors(config()) == []  # no webhooks at all is fine


W = "webhooks[0]"


@pytest.mark.parametrize("h, expected", [
    (hook(name=""), [f"{W}.name: Required value"]),
    (hook(name="example.com"),
     [f'{W}.name: Invalid value: "example.com": should be a domain with at least three segments separated by dots']),
    (hook(name="Bad.Example.com"),
     [f'{W}.name: Invalid value: "Bad.Example.com": a lowercase RFC 1123 subdomain must consist of lower case '
      "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
      "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    (hook(sideEffects="Unknown"),
     [f'{W}.sideEffects: Unsupported value: "Unknown": supported values: "None", "NoneOnDryRun"']),
    (hook(failurePolicy="Sometimes"),
     [f'{W}.failurePolicy: Unsupported value: "Sometimes": supported values: "Fail", "Ignore"']),
    (hook(matchPolicy="Loose"),
     [f'{W}.matchPolicy: Unsupported value: "Loose": supported values: "Equivalent", "Exact"']),
    (hook(timeoutSeconds=31), [f"{W}.timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"]),
    (hook(timeoutSeconds=0), [f"{W}.timeoutSeconds: Invalid value: 0: the timeout value must be between 1 and 30 seconds"]),
    (hook(admissionReviewVersions=["v2"]),
     [f'{W}.admissionReviewVersions: Invalid value: []string{{"v2"}}: must include at least one of v1, v1beta1']),
    (hook(admissionReviewVersions=["v1", "v1"]),
     [f'{W}.admissionReviewVersions[1]: Invalid value: "v1": duplicate version']),
    (hook(admissionReviewVersions=["v1", "V2"]),
     [f'{W}.admissionReviewVersions[1]: Invalid value: "V2": a DNS-1035 label must consist of lower case '
      "alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character "
      "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]),
])
def test_webhook_field_errors(h: Obj, expected: list[str]) -> None:
    assert errors(config(h)) == expected


def test_duplicate_webhook_names() -> None:
    assert errors(config(hook(), hook())) == ['webhooks[1].name: Duplicate value: "policy.example.com"']


def test_reinvocation_policy_only_on_mutating() -> None:
    obj = config(hook(reinvocationPolicy="Always"), kind="MutatingWebhookConfiguration")
    assert errors(obj, MWC) == [
        f'{W}.reinvocationPolicy: Unsupported value: "Always": supported values: "IfNeeded", "Never"']


R = f"{W}.rules[0]"


def rule(**fields: Any) -> Obj:
    base: Obj = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
    base.update(fields)
    return base


@pytest.mark.parametrize("r, expected", [
    (rule(operations=[]), [f"{R}.operations: Required value"]),
    (rule(operations=["GET"]), [f'{R}.operations[0]: Unsupported value: "GET": supported values: '
                                '"*", "CONNECT", "CREATE", "DELETE", "UPDATE"']),
    (rule(operations=["*", "CREATE"]), [f'{R}.operations: Invalid value: []admissionregistration.OperationType'
                                        '{"*", "CREATE"}: if \'*\' is present, must not specify other operations']),
    (rule(apiGroups=[]), [f"{R}.apiGroups: Required value"]),
    (rule(apiGroups=["*", "apps"]),
     [f'{R}.apiGroups: Invalid value: []string{{"*", "apps"}}: if \'*\' is present, must not specify other API groups']),
    (rule(apiVersions=[]), [f"{R}.apiVersions: Required value"]),
    (rule(apiVersions=["v1", ""]), [f"{R}.apiVersions[1]: Required value"]),
    (rule(apiVersions=["*", "v1"]), [f'{R}.apiVersions: Invalid value: []string{{"*", "v1"}}: '
                                     "if '*' is present, must not specify other API versions"]),
    (rule(resources=[]), [f"{R}.resources: Required value"]),
    (rule(resources=["pods", ""]), [f"{R}.resources[1]: Required value"]),
    (rule(resources=["*/*", "pods"]),
     [f'{R}.resources: Invalid value: []string{{"*/*", "pods"}}: if \'*/*\' is present, must not specify other resources']),
    (rule(resources=["*", "pods"]),
     [f'{R}.resources: Invalid value: []string{{"*", "pods"}}: '
      "if '*' is present, must not specify other resources without subresources"]),
    (rule(resources=["pods", "*"]), []),  # Kubernetes only remembers the last plain entry
    (rule(resources=["pods/*", "pods/status"]),
     [f'{R}.resources[1]: Invalid value: "pods/status": if \'pods/*\' is present, must not specify pods/status']),
    (rule(resources=["*/status", "pods/status"]),
     [f'{R}.resources[1]: Invalid value: "pods/status": if \'*/status\' is present, must not specify pods/status']),
    (rule(scope="Global"),
     [f'{R}.scope: Unsupported value: "Global": supported values: "*", "Cluster", "Namespaced"']),
])
def test_rule_errors(r: Obj, expected: list[str]) -> None:
    assert errors(config(hook(rules=[r]))) == expected


C = f"{W}.clientConfig"


@pytest.mark.parametrize("cc, expected", [
    ({}, [f"{C}: Required value: exactly one of url or service is required"]),
    ({"url": "https://a.example.com", "service": {"namespace": "d", "name": "w"}},
     [f"{C}: Required value: exactly one of url or service is required"]),
    ({"url": "http://a.example.com/x"},
     [f'{C}.url: Invalid value: "http": \'https\' is the only allowed URL scheme; desired format: https://host[/path]']),
    ({"url": "https:///x"}, [f'{C}.url: Invalid value: "": host must be specified; desired format: https://host[/path]']),
    ({"url": "https://me:pw@a.example.com"},
     [f'{C}.url: Invalid value: "me:pw": user information is not permitted in the URL']),
    ({"url": "https://a.example.com/x#frag"},
     [f'{C}.url: Invalid value: "frag": fragments are not permitted in the URL']),
    ({"url": "https://a.example.com/x?a=b"},
     [f'{C}.url: Invalid value: "a=b": query parameters are not permitted in the URL']),
    ({"service": {}}, [f"{C}.service.name: Required value: service name is required",
                       f"{C}.service.namespace: Required value: service namespace is required"]),
    ({"service": {"namespace": "d", "name": "w", "port": 70000}},
     [f"{C}.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive"]),
    ({"service": {"namespace": "d", "name": "w", "path": "validate"}},
     [f'{C}.service.path: Invalid value: "validate": must start with a \'/\'']),
    ({"service": {"namespace": "d", "name": "w", "path": "/a//b"}},
     [f'{C}.service.path: Invalid value: "/a//b": segment[1] may not be empty']),
    ({"service": {"namespace": "d", "name": "w", "path": "/validate/pods/"}}, []),
])
def test_client_config_errors(cc: Obj, expected: list[str]) -> None:
    assert errors(config(hook(clientConfig=cc))) == expected


def test_selector_and_match_condition_errors() -> None:
    h = hook(namespaceSelector={"matchExpressions": [{"key": "env", "operator": "Maybe"}]},
             objectSelector={"matchExpressions": [{"key": "env", "operator": "In"}]},
             matchConditions=[{"name": "a", "expression": "true"}, {"name": "a", "expression": " "},
                              {"expression": "true"}, {"name": "bad name!", "expression": "true"}])
    got = errors(config(h))
    assert f'{W}.namespaceSelector.matchExpressions[0].operator: Invalid value: "Maybe": ' \
           "not a valid selector operator" in got
    assert f"{W}.objectSelector.matchExpressions[0].values: Required value: " \
           "must be specified when `operator` is 'In' or 'NotIn'" in got
    assert f"{W}.matchConditions[1].expression: Required value" in got
    assert f'{W}.matchConditions[1].name: Duplicate value: "a"' in got
    assert f"{W}.matchConditions[2].name: Required value" in got
    assert any(m.startswith(f'{W}.matchConditions[3].name: Invalid value: "bad name!": name part must consist')
               for m in got)
    assert len(got) == 6


def test_too_many_match_conditions() -> None:
    conds = [{"name": f"c{i}", "expression": "true"} for i in range(65)]
    assert errors(config(hook(matchConditions=conds))) == [
        f"{W}.matchConditions: Too many: 65: must have at most 64 items"]


def test_metadata_is_cluster_scoped() -> None:
    obj = config(hook())
    obj["metadata"]["namespace"] = "default"
    assert errors(obj) == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_update_keeps_what_the_stored_object_already_had() -> None:
    old = config(hook(sideEffects="Unknown", admissionReviewVersions=["v0"]), hook(sideEffects="Unknown"),
                 hook(matchConditions=[{"name": "x", "expression": " "}]))
    VWC.default(old)
    new = copy.deepcopy(old)
    new["webhooks"][0]["timeoutSeconds"] = 20
    assert messages(VWC.validate(new, old)) == []
    # a stored object without those quirks gets the strict rules
    good = config(hook())
    VWC.default(good)
    bad = copy.deepcopy(good)
    bad["webhooks"][0]["sideEffects"] = "Some"
    assert messages(VWC.validate(bad, good)) == [
        f'{W}.sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"']
    renamed = copy.deepcopy(good)
    renamed["metadata"]["name"] = "other"
    assert messages(VWC.validate(renamed, good)) == ['metadata.name: Invalid value: "other": field is immutable']


# --- rule_matches --------------------------------------------------------------------

def mrule(resources: list[str], scope: str | None = None, ops: list[str] | None = None,
          groups: list[str] | None = None, versions: list[str] | None = None) -> Obj:
    r: Obj = {"operations": ["*"] if ops is None else ops, "apiGroups": groups or ["*"],
              "apiVersions": versions or ["*"],
              "resources": resources}
    if scope is not None:
        r["scope"] = scope
    return r


POD = ("CREATE", "", "v1", "pods", "", True)
POD_STATUS = ("UPDATE", "", "v1", "pods", "status", True)
POD_EXEC = ("CONNECT", "", "v1", "pods", "exec", True)
DEPLOY_SCALE = ("UPDATE", "apps", "v1", "deployments", "scale", True)
NODE = ("CREATE", "", "v1", "nodes", "", False)
NAMESPACE = ("DELETE", "", "v1", "namespaces", "", True)  # its requests carry its own name as namespace


@pytest.mark.parametrize("r, request_, expected", [
    (mrule(["pods"]), POD, True),
    (mrule(["pods"]), POD_STATUS, False),
    (mrule(["pods/status"]), POD_STATUS, True),
    (mrule(["pods/status"]), POD, False),
    (mrule(["pods/*"]), POD, True),
    (mrule(["pods/*"]), POD_EXEC, True),
    (mrule(["pods/*"]), DEPLOY_SCALE, False),
    (mrule(["*"]), NODE, True),
    (mrule(["*"]), POD_STATUS, False),
    (mrule(["*/*"]), POD_EXEC, True),
    (mrule(["*/*"]), NODE, True),
    (mrule(["*/status"]), POD_STATUS, True),
    (mrule(["*/status"]), POD, False),
    (mrule(["*/scale"]), DEPLOY_SCALE, True),
    (mrule(["deployments"], groups=["apps"]), ("CREATE", "apps", "v1", "deployments", "", True), True),
    (mrule(["deployments"], groups=["apps"]), ("CREATE", "extensions", "v1beta1", "deployments", "", True), False),
    (mrule(["deployments"], versions=["v1beta1"]), ("CREATE", "apps", "v1", "deployments", "", True), False),
    (mrule(["pods"], ops=["CREATE", "UPDATE"]), POD, True),
    (mrule(["pods"], ops=["DELETE"]), POD, False),
    (mrule(["pods"], ops=[]), POD, False),
    (mrule([]), POD, False),
    (mrule(["*"], scope="Cluster"), NODE, True),
    (mrule(["*"], scope="Cluster"), POD, False),
    (mrule(["*"], scope="Cluster"), NAMESPACE, True),
    (mrule(["*"], scope="Namespaced"), POD, True),
    (mrule(["*"], scope="Namespaced"), NODE, False),
    (mrule(["*"], scope="Namespaced"), NAMESPACE, False),
    (mrule(["*"], scope="*"), NODE, True),
    (mrule(["*"], scope="*"), POD, True),
])
def test_rule_matches(r: Obj, request_: tuple[str, str, str, str, str, bool], expected: bool) -> None:
    assert rule_matches(r, *request_) is expected
