"""Kubernetes' default RBAC policy, as data: the roles and bindings every cluster starts with.

Rules are written compactly as ``(apiGroups, resources, verbs)`` tuples (and
``URLS(paths, verbs)`` for non-resource rules); :func:`cluster_roles` and
:func:`cluster_role_bindings` expand them into API objects carrying
``kubernetes.io/bootstrapping: rbac-defaults`` and the autoupdate annotation.

``admin``, ``edit`` and ``view`` are aggregated: their rules are collected from
ClusterRoles labelled ``rbac.authorization.k8s.io/aggregate-to-<role>: "true"``
(the ``system:aggregate-to-*`` roles below, and any a user adds).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAPPING = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"

RW = ("create", "delete", "deletecollection", "patch", "update")
READ = ("get", "list", "watch")
ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
Rule = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def URLS(paths: tuple[str, ...], verbs: tuple[str, ...]) -> Obj:
    return {"nonResourceURLs": list(paths), "verbs": list(verbs)}


def _rule(r: Rule | Obj) -> Obj:
    if isinstance(r, dict):
        return r
    return {"apiGroups": list(r[0]), "resources": list(r[1]), "verbs": list(r[2])}


AGGREGATE_TO_ADMIN: list[Rule] = [
    (("authorization.k8s.io",), ("localsubjectaccessreviews",), ("create",)),
    ((GROUP,), ("rolebindings", "roles"), ALL),
]

AGGREGATE_TO_EDIT: list[Rule] = [
    (("",), ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"), READ),
    (("",), ("serviceaccounts",), ("impersonate",)),
    (("",), ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"), RW),
    (("",), ("pods/eviction",), ("create",)),
    (("",), ("configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
             "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"), RW),
    (("",), ("serviceaccounts/token",), ("create",)),
    (("apps",), ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                 "replicasets/scale", "statefulsets", "statefulsets/scale"), RW),
    (("autoscaling",), ("horizontalpodautoscalers",), RW),
    (("batch",), ("cronjobs", "jobs"), RW),
    (("extensions",), ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                       "networkpolicies", "replicasets", "replicasets/scale",
                       "replicationcontrollers/scale"), RW),
    (("policy",), ("poddisruptionbudgets",), RW),
    (("networking.k8s.io",), ("ingresses", "networkpolicies"), RW),
    (("coordination.k8s.io",), ("leases",), ALL),
]

AGGREGATE_TO_VIEW: list[Rule] = [
    (("",), ("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
             "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
             "services/status"), READ),
    (("",), ("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
             "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"), READ),
    (("",), ("namespaces",), READ),
    (("discovery.k8s.io",), ("endpointslices",), READ),
    (("apps",), ("controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                 "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
                 "statefulsets", "statefulsets/scale", "statefulsets/status"), READ),
    (("autoscaling",), ("horizontalpodautoscalers", "horizontalpodautoscalers/status"), READ),
    (("batch",), ("cronjobs", "cronjobs/status", "jobs", "jobs/status"), READ),
    (("extensions",), ("daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                       "deployments/status", "ingresses", "ingresses/status", "networkpolicies", "replicasets",
                       "replicasets/scale", "replicasets/status", "replicationcontrollers/scale"), READ),
    (("policy",), ("poddisruptionbudgets", "poddisruptionbudgets/status"), READ),
    (("networking.k8s.io",), ("ingresses", "ingresses/status", "networkpolicies"), READ),
]

HEALTH = ("/healthz", "/livez", "/readyz", "/version", "/version/")


def _role(name: str, rules: list[Any] | None, *, labels: dict[str, str] | None = None,
          aggregate_from: str = "") -> Obj:
    obj: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {**BOOTSTRAPPING, **(labels or {})},
                             "annotations": {AUTOUPDATE: "true"}}}
    if aggregate_from:
        obj["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {AGGREGATE + aggregate_from: "true"}}]}
    if rules is not None:
        obj["rules"] = [_rule(r) for r in rules]
    return obj


def cluster_roles() -> list[Obj]:
    return [
        _role("cluster-admin", [(("*",), ("*",), ("*",)), URLS(("*",), ("*",))]),
        _role("admin", None, aggregate_from="admin"),
        _role("edit", None, aggregate_from="edit", labels={AGGREGATE + "admin": "true"}),
        _role("view", None, aggregate_from="view", labels={AGGREGATE + "edit": "true"}),
        _role("system:aggregate-to-admin", AGGREGATE_TO_ADMIN, labels={AGGREGATE + "admin": "true"}),
        _role("system:aggregate-to-edit", AGGREGATE_TO_EDIT, labels={AGGREGATE + "edit": "true"}),
        _role("system:aggregate-to-view", AGGREGATE_TO_VIEW, labels={AGGREGATE + "view": "true"}),
        # what metrics-server's manifest (and k3s) install: kubectl top for viewers, editors, admins
        _role("system:aggregated-metrics-reader",
              [(("metrics.k8s.io",), ("pods", "nodes"), ("get", "list", "watch"))],
              labels={AGGREGATE + "view": "true", AGGREGATE + "edit": "true", AGGREGATE + "admin": "true"}),
        _role("system:discovery", [URLS(("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                         "/openapi/*", "/readyz", "/version", "/version/"), ("get",))]),
        _role("system:basic-user", [
            (("authorization.k8s.io",), ("selfsubjectaccessreviews", "selfsubjectrulesreviews"), ("create",)),
            (("authentication.k8s.io",), ("selfsubjectreviews",), ("create",))]),
        _role("system:public-info-viewer", [URLS(HEALTH, ("get",))]),
        _role("system:auth-delegator", [
            (("authentication.k8s.io",), ("tokenreviews",), ("create",)),
            (("authorization.k8s.io",), ("subjectaccessreviews",), ("create",))]),
        _role("system:monitoring", [URLS(("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics",
                                          "/metrics/slis", "/readyz", "/readyz/*"), ("get",))]),
        _role("system:service-account-issuer-discovery", [
            URLS(("/.well-known/openid-configuration", "/openid/v1/jwks"), ("get",))]),
    ]


def _binding(name: str, role: str, groups: tuple[str, ...]) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(BOOTSTRAPPING), "annotations": {AUTOUPDATE: "true"}},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups]}


def cluster_role_bindings() -> list[Obj]:
    return [
        _binding("cluster-admin", "cluster-admin", ("system:masters",)),
        _binding("system:discovery", "system:discovery", ("system:authenticated",)),
        _binding("system:basic-user", "system:basic-user", ("system:authenticated",)),
        _binding("system:public-info-viewer", "system:public-info-viewer",
                 ("system:authenticated", "system:unauthenticated")),
        _binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                 ("system:serviceaccounts",)),
    ]
