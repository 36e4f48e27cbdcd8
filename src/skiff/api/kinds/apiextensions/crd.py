"""The CustomResourceDefinition kind, as ``kubectl get crd`` lists it.

    kubectl get crd
    NAME                          CREATED AT
    crontabs.stable.example.com   2026-11-23T21:40:00Z

Cluster-scoped, with a status subresource the API server's own controllers
write (``acceptedNames``, ``storedVersions``, the ``NamesAccepted`` /
``Established`` / ``Terminating`` conditions).  Deleting a definition gives it the
``customresourcecleanup.apiextensions.k8s.io`` finalizer: every object of the kind
goes first, then the definition.
"""

from __future__ import annotations

from typing import Any

from ...resource import ResourceInfo, Subresource
from .. import meta as m
from .definition import default_crd, validate_crd

Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
VERSION = "v1"
#: removed by the API server once every custom object of the kind is gone
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _record_storage_version(obj: Obj) -> None:
    """The storage version joins ``status.storedVersions`` (objects may now be stored in it)."""
    status = obj["status"] = dict(obj.get("status") or {})  # it may be the stored object's
    stored = status["storedVersions"] = list(status.get("storedVersions") or [])
    for version in (obj.get("spec") or {}).get("versions") or []:
        if isinstance(version, dict) and version.get("storage"):
            if version.get("name") not in stored:
                stored.append(version.get("name"))
            break


def prepare_create(obj: Obj) -> None:
    """A new definition starts with no status but its storage version (as kube-apiserver's
    CRD strategy does); the server's controllers fill in names and conditions."""
    obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""},
                     "storedVersions": []}
    _record_storage_version(obj)


def prepare_update(obj: Obj, old: Obj) -> None:
    _record_storage_version(obj)


CUSTOM_RESOURCE_DEFINITIONS = ResourceInfo(
    group=GROUP, version=VERSION, kind="CustomResourceDefinition",
    plural="customresourcedefinitions", singular="customresourcedefinition", namespaced=False,
    schema_type="io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    short_names=("crd", "crds"), categories=("api-extensions",),
    subresources=(Subresource("status", "CustomResourceDefinition"),), has_status=True,
    columns=m.DEFAULT_COLUMNS, row=m.name_created_row,
    prepare_create=prepare_create, prepare_update=prepare_update, default=default_crd,
    validate=validate_crd,
)

RESOURCES: tuple[ResourceInfo, ...] = (CUSTOM_RESOURCE_DEFINITIONS,)
