"""Hand-written kinds for the API server tests: they exercise the generic machinery
independently of the built-in kind modules."""

from __future__ import annotations

from typing import Any

from skiff.api.errors import Cause
from skiff.api.kinds import Registry
from skiff.api.resource import Column, ResourceInfo, ScalePaths, Subresource

Obj = dict[str, Any]


def _namespace_create(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def _deployment_default(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)


def _deployment_validate(obj: Obj, old: Obj | None) -> list[Cause]:
    replicas = obj.get("spec", {}).get("replicas", 0)
    if isinstance(replicas, int) and replicas < 0:
        return [Cause("FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0",
                      "spec.replicas")]
    return []


def _pod_create(obj: Obj) -> None:
    obj["status"] = {"phase": "Pending"}


def _service_default(obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("type", "ClusterIP")


def kinds_registry() -> Registry:
    return Registry([
        ResourceInfo(group="", version="v1", kind="Namespace", plural="namespaces", singular="namespace",
                     namespaced=False, short_names=("ns",), has_status=True,
                     subresources=(Subresource("finalize", "Namespace", verbs=("update",)),),
                     prepare_create=_namespace_create,
                     columns=(Column("Name", format="name"), Column("Status")),
                     row=lambda o: [o["metadata"]["name"], o.get("status", {}).get("phase", "")]),
        ResourceInfo(group="", version="v1", kind="ConfigMap", plural="configmaps", singular="configmap",
                     namespaced=True, short_names=("cm",),
                     schema_type="io.k8s.api.core.v1.ConfigMap",
                     columns=(Column("Name", format="name"), Column("Data", type="integer")),
                     row=lambda o: [o["metadata"]["name"], len(o.get("data") or {})]),
        ResourceInfo(group="", version="v1", kind="Pod", plural="pods", singular="pod", namespaced=True,
                     short_names=("po",), categories=("all",), has_status=True,
                     schema_type="io.k8s.api.core.v1.Pod",
                     subresources=(Subresource("binding", "Binding", verbs=("create",)),
                                   Subresource("exec", "PodExecOptions", verbs=("create", "get"))),
                     prepare_create=_pod_create,
                     field_labels={"spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
                                   "status.phase": lambda o: o.get("status", {}).get("phase", "")}),
        ResourceInfo(group="", version="v1", kind="Service", plural="services", singular="service",
                     namespaced=True, short_names=("svc",), has_status=True,
                     schema_type="io.k8s.api.core.v1.Service", default=_service_default),
        ResourceInfo(group="", version="v1", kind="Node", plural="nodes", singular="node", namespaced=False,
                     has_status=True, short_names=("no",)),
        ResourceInfo(group="", version="v1", kind="Event", plural="events", singular="event", namespaced=True,
                     field_labels={"involvedObject.name": lambda o: o.get("involvedObject", {}).get("name", ""),
                                   "type": lambda o: o.get("type", "")}),
        ResourceInfo(group="apps", version="v1", kind="Deployment", plural="deployments",
                     singular="deployment", namespaced=True, short_names=("deploy",), categories=("all",),
                     has_status=True, scale=ScalePaths(label_selector="spec.selector"),
                     schema_type="io.k8s.api.apps.v1.Deployment",
                     default=_deployment_default, validate=_deployment_validate),
    ])


def cm(name: str, ns: str = "default", **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": dict(data)}
