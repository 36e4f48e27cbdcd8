"""The ``admissionregistration.k8s.io/v1`` group: Mutating- and ValidatingWebhookConfiguration.

    kubectl get validatingwebhookconfigurations
    NAME                  WEBHOOKS   AGE
    policy.example.com    2          5m

Both kinds are cluster-scoped lists of ``webhooks``.  Each webhook names an endpoint
(``clientConfig``: an https ``url`` or an in-cluster ``service``), the requests it wants
(``rules``: operations x apiGroups x apiVersions x resources x scope, narrowed by
``namespaceSelector``, ``objectSelector`` and CEL ``matchConditions``) and what happens
when it fails.  Contract of this module:

* ``default(obj)``: Kubernetes' v1 defaults per webhook (failurePolicy Fail, matchPolicy
  Equivalent, empty selectors, timeoutSeconds 10, reinvocationPolicy Never for mutating
  hooks, rule scope ``*``, service port 443).  ``sideEffects`` and
  ``admissionReviewVersions`` have no default in v1: they are required.
* ``validate(obj, old)``: kube-apiserver's field errors (paths and messages).  On update
  the relaxations Kubernetes grants to objects that were stored before a rule existed
  apply (Unknown/Some side effects, unrecognised review versions, duplicate names and
  unchanged match conditions stay accepted when the old object already had them).
  CEL expressions are not compiled; label-value leniency for old selectors is not modelled.
* :func:`webhooks_of` and :func:`rule_matches`: what the API server's admission chain
  needs to decide whether a webhook is called for a request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from ..errors import Cause
from ..resource import Column, ResourceInfo
from . import meta as m
from .apps import selector as sel
from .meta.webhookclient import validate_webhook_service, validate_webhook_url

Obj = dict[str, Any]

GROUP = "admissionregistration.k8s.io"
FAILURE_POLICIES = ("Fail", "Ignore")
MATCH_POLICIES = ("Equivalent", "Exact")
REINVOCATION_POLICIES = ("IfNeeded", "Never")
#: v1 accepts only these on create; Unknown and Some survive updates of old objects.
NO_SIDE_EFFECT_CLASSES = ("None", "NoneOnDryRun")
SIDE_EFFECT_CLASSES = ("None", "NoneOnDryRun", "Some", "Unknown")
OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
SCOPES = ("*", "Cluster", "Namespaced")
#: AdmissionReview versions the API server speaks.
ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
MAX_MATCH_CONDITIONS = 64


def webhooks_of(obj: Obj) -> list[Obj]:
    """The configuration's webhooks (``[]`` when absent or null)."""
    hooks = obj.get("webhooks")
    return list(hooks) if isinstance(hooks, list) else []


# --- defaults ------------------------------------------------------------------------

def _defaulter(mutating: bool) -> Callable[[Obj], None]:
    def default(obj: Obj) -> None:
        for hook in webhooks_of(obj):
            if not isinstance(hook, dict):
                continue
            for name, value in (("failurePolicy", "Fail"), ("matchPolicy", "Equivalent"),
                                ("timeoutSeconds", 10)):
                if hook.get(name) is None:
                    hook[name] = value
            for name in ("namespaceSelector", "objectSelector"):
                if hook.get(name) is None:
                    hook[name] = {}
            if mutating and hook.get("reinvocationPolicy") is None:
                hook["reinvocationPolicy"] = "Never"
            for rule in hook.get("rules") or []:
                if isinstance(rule, dict) and rule.get("scope") is None:
                    rule["scope"] = "*"
            service = (hook.get("clientConfig") or {}).get("service")
            if isinstance(service, dict) and service.get("port") is None:
                service["port"] = 443
    return default


# --- rules ---------------------------------------------------------------------------

def _validate_resources(resources: list[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not resources:
        causes.append(m.required(path))
    wildcard_sub_of: set[str] = set()  # "x/*" seen
    wildcard_res_for: set[str] = set()  # "*/x" seen
    single = plain = False
    for i, item in enumerate(resources):
        if not item:
            causes.append(m.required(m.index(path, i)))
            continue
        if "/" not in item:
            single = single or item == "*"
            plain = item != "*"  # Kubernetes remembers only the latest plain entry
            continue
        res, sub = item.split("/", 1)
        if res in wildcard_sub_of:
            causes.append(m.invalid(m.index(path, i), item, f"if '{res}/*' is present, must not specify {item}"))
        if sub in wildcard_res_for:
            causes.append(m.invalid(m.index(path, i), item, f"if '*/{sub}' is present, must not specify {item}"))
        if sub == "*":
            wildcard_sub_of.add(res)
        if res == "*":
            wildcard_res_for.add(sub)
    if len(resources) > 1 and "*/*" in resources:
        causes.append(m.invalid(path, resources, "if '*/*' is present, must not specify other resources"))
    if single and plain:
        causes.append(m.invalid(path, resources,
                                "if '*' is present, must not specify other resources without subresources"))
    return causes


def _validate_rule(rule: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    ops = list(rule.get("operations") or [])
    ops_path = m.child(path, "operations")
    if not ops:
        causes.append(m.required(ops_path))
    if len(ops) > 1 and "*" in ops:
        rendered = "[]admissionregistration.OperationType{" + ", ".join(m.format_value(o) for o in ops) + "}"
        causes.append(m.invalid(ops_path, m.Verbatim(rendered), "if '*' is present, must not specify other operations"))
    for i, op in enumerate(ops):
        if op not in OPERATIONS:
            causes.append(m.not_supported(m.index(ops_path, i), op, OPERATIONS))
    for name, noun in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        values = list(rule.get(name) or [])
        if not values:
            causes.append(m.required(m.child(path, name)))
        if len(values) > 1 and "*" in values:
            causes.append(m.invalid(m.child(path, name), values, f"if '*' is present, must not specify other {noun}"))
    for i, version in enumerate(rule.get("apiVersions") or []):
        if not version:
            causes.append(m.required(m.index(m.child(path, "apiVersions"), i)))
    causes += _validate_resources(list(rule.get("resources") or []), m.child(path, "resources"))
    scope = rule.get("scope")
    if scope is not None and scope not in SCOPES:
        causes.append(m.not_supported(m.child(path, "scope"), scope, SCOPES))
    return causes


# --- client config -------------------------------------------------------------------

def _validate_client_config(config: Obj, path: str) -> list[Cause]:
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        return [m.required(path, "exactly one of url or service is required")]
    if url is not None:
        return validate_webhook_url(m.child(path, "url"), str(url))
    return validate_webhook_service(m.child(path, "service"), service or {})


# --- one webhook ---------------------------------------------------------------------

def _fully_qualified_name(name: str, path: str) -> list[Cause]:
    if not name:
        return [m.required(path)]
    problems = m.is_dns1123_subdomain(name)
    if problems:
        return [m.invalid(path, name, ",".join(problems))]
    if len(name.split(".")) < 3:
        return [m.invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def _validate_match_conditions(conditions: list[Obj], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(conditions) > MAX_MATCH_CONDITIONS:
        causes.append(m.too_many(path, len(conditions), MAX_MATCH_CONDITIONS))
    seen: set[str] = set()
    for i, cond in enumerate(conditions):
        p = m.index(path, i)
        if not str(cond.get("expression") or "").strip():
            causes.append(m.required(m.child(p, "expression")))
        name = str(cond.get("name") or "")
        if not name:
            causes.append(m.required(m.child(p, "name")))
        else:
            causes += m.invalid_each(m.child(p, "name"), name, m.is_qualified_name(name))
            if name in seen:
                causes.append(m.duplicate(m.child(p, "name"), name))
            seen.add(name)
    return causes


def _validate_review_versions(versions: list[str], require_recognized: bool, path: str) -> list[Cause]:
    accepted = ", ".join(ACCEPTED_REVIEW_VERSIONS)
    if not versions:
        return [m.required(path, f"must specify one of {accepted}")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, v in enumerate(versions):
        if v in seen:
            causes.append(m.invalid(m.index(path, i), v, "duplicate version"))
            continue
        seen.add(v)
        causes += m.invalid_each(m.index(path, i), v, m.is_dns1035_label(v))
    if require_recognized and not any(v in ACCEPTED_REVIEW_VERSIONS for v in versions):
        causes.append(m.invalid(path, versions, f"must include at least one of {accepted}"))
    return causes


class _Options:
    """What an update may keep from the stored object (Kubernetes' validationOptions)."""

    def __init__(self, old_hooks: list[Obj] | None, new_hooks: list[Obj]) -> None:
        old = old_hooks or []
        creating = old_hooks is None
        self.side_effects: tuple[str, ...] = NO_SIDE_EFFECT_CLASSES if creating or all(
            h.get("sideEffects") in NO_SIDE_EFFECT_CLASSES for h in old) else SIDE_EFFECT_CLASSES
        self.require_recognized = creating or all(
            not h.get("admissionReviewVersions")
            or any(v in ACCEPTED_REVIEW_VERSIONS for v in h["admissionReviewVersions"]) for h in old)
        names = [h.get("name") or "" for h in old]
        self.unique_names = creating or len(names) == len(set(names))
        self.skip_conditions = not creating and len(old) == len(new_hooks) and all(
            (a.get("matchConditions") or None) == (b.get("matchConditions") or None) for a, b in zip(old, new_hooks))


def _validate_webhook(hook: Obj, mutating: bool, opts: _Options, path: str) -> list[Cause]:
    causes = _fully_qualified_name(str(hook.get("name") or ""), m.child(path, "name"))
    for i, rule in enumerate(hook.get("rules") or []):
        causes += _validate_rule(rule or {}, m.index(m.child(path, "rules"), i))
    for name, allowed in (("failurePolicy", FAILURE_POLICIES), ("matchPolicy", MATCH_POLICIES)):
        value = hook.get(name)
        if value is not None and value not in allowed:
            causes.append(m.not_supported(m.child(path, name), value, allowed))
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        causes.append(m.required(m.child(path, "sideEffects"), "must specify one of " + ", ".join(opts.side_effects)))
    elif side_effects not in opts.side_effects:
        causes.append(m.not_supported(m.child(path, "sideEffects"), side_effects, opts.side_effects))
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and not 1 <= timeout <= 30:
        causes.append(m.invalid(m.child(path, "timeoutSeconds"), timeout,
                                "the timeout value must be between 1 and 30 seconds"))
    for name in ("namespaceSelector", "objectSelector"):
        causes += sel.validate_label_selector(hook.get(name), m.child(path, name))
    if mutating:
        policy = hook.get("reinvocationPolicy")
        if policy is not None and policy not in REINVOCATION_POLICIES:
            causes.append(m.not_supported(m.child(path, "reinvocationPolicy"), policy, REINVOCATION_POLICIES))
    causes += _validate_client_config(hook.get("clientConfig") or {}, m.child(path, "clientConfig"))
    if not opts.skip_conditions:
        causes += _validate_match_conditions(list(hook.get("matchConditions") or []),
                                             m.child(path, "matchConditions"))
    return causes


def _validator(mutating: bool) -> Callable[[Obj, Obj | None], list[Cause]]:
    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        if old is None:
            causes = m.validate_object_meta(obj.get("metadata"), False)
        else:
            causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        hooks = [h if isinstance(h, dict) else {} for h in webhooks_of(obj)]
        opts = _Options(None if old is None else webhooks_of(old), hooks)
        names: set[str] = set()
        for i, hook in enumerate(hooks):
            path = m.index("webhooks", i)
            causes += _validate_webhook(hook, mutating, opts, path)
            causes += _validate_review_versions(list(hook.get("admissionReviewVersions") or []),
                                                opts.require_recognized, m.child(path, "admissionReviewVersions"))
            name = str(hook.get("name") or "")
            if opts.unique_names and name:
                if name in names:
                    causes.append(m.duplicate(m.child(path, "name"), name))
                names.add(name)
        return causes
    return validate


# --- matching ------------------------------------------------------------------------

def _listed(values: list[str] | None, value: str) -> bool:
    return any(v == "*" or v == value for v in values or [])


def rule_matches(rule: Obj, operation: str, group: str, version: str, resource: str,
                 subresource: str, namespaced: bool) -> bool:
    """Whether a RuleWithOperations selects a request.

    ``resources`` entries: ``pods`` (the main resource only), ``pods/status`` (that
    subresource), ``pods/*`` (pods and all its subresources), ``*`` (every main resource),
    ``*/status`` (that subresource of every resource), ``*/*`` (everything).  ``scope``:
    ``Cluster`` selects cluster-scoped resources, ``Namespaced`` namespaced ones, ``*`` (or
    absent) both; a core ``namespaces`` object counts as cluster-scoped whatever
    ``namespaced`` says (its requests carry the namespace's own name).
    """
    scope = rule.get("scope") or "*"
    is_namespace = group == "" and resource == "namespaces"
    in_namespace = namespaced and not is_namespace
    if (scope == "Cluster" and in_namespace) or (scope == "Namespaced" and not in_namespace):
        return False
    if not (_listed(rule.get("operations"), operation) and _listed(rule.get("apiGroups"), group)
            and _listed(rule.get("apiVersions"), version)):
        return False
    for entry in rule.get("resources") or []:
        res, _, sub = str(entry).partition("/")
        if res in ("*", resource) and sub in ("*", subresource):
            return True
    return False


# --- table and kinds -----------------------------------------------------------------

COLUMNS = (
    m.NAME_COLUMN,
    Column("Webhooks", type="integer",
           description="Webhooks indicates the number of webhooks registered in this configuration."),
    m.AGE_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), len(webhooks_of(obj)), m.object_age(obj, now)]


MUTATINGWEBHOOKCONFIGURATIONS = ResourceInfo(
    group=GROUP, version="v1", kind="MutatingWebhookConfiguration", plural="mutatingwebhookconfigurations",
    singular="mutatingwebhookconfiguration", namespaced=False,
    schema_type="io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
    categories=("api-extensions",), columns=COLUMNS, row=row,
    default=_defaulter(True), validate=_validator(True),
)

VALIDATINGWEBHOOKCONFIGURATIONS = ResourceInfo(
    group=GROUP, version="v1", kind="ValidatingWebhookConfiguration", plural="validatingwebhookconfigurations",
    singular="validatingwebhookconfiguration", namespaced=False,
    schema_type="io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
    categories=("api-extensions",), columns=COLUMNS, row=row,
    default=_defaulter(False), validate=_validator(False),
)

RESOURCES: tuple[ResourceInfo, ...] = (MUTATINGWEBHOOKCONFIGURATIONS, VALIDATINGWEBHOOKCONFIGURATIONS)
