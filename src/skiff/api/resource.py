"""What the API server needs to know about one kind: a plain, immutable record.

Kinds are data, not classes: a built-in kind and (later) a CustomResource are
both a :class:`ResourceInfo`, and the generic machinery in ``apiserver/`` serves
every one of them the same way.  Behaviour that differs per kind is given as
small functions:

* ``default(obj)``          fill Kubernetes' defaults in place (on create and update)
* ``validate(obj, old)``    field errors as :class:`~skiff.api.errors.Cause` (old is None on create)
* ``columns`` / ``row(obj)``  the Table kubectl prints (``row`` returns the cells)
* ``field_labels``          extra field-selector labels -> value getter
* ``prune(obj)``            kinds without a built-in type (custom resources): drop the
  fields the kind's schema does not specify, in place, and return their paths
* ``prepare_create(obj)`` / ``prepare_update(obj, old)``  kind-specific resets
  (e.g. a Pod starts Pending), run before defaulting and validation

Kinds are assembled in :mod:`skiff.api.kinds` into a :class:`~skiff.api.kinds.Registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Cause

Obj = dict[str, Any]

ALL_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
)


@dataclass(frozen=True)
class Column:
    """A Table column definition (``columnDefinitions`` entry)."""

    name: str
    type: str = "string"  # string | integer | number | boolean | date
    format: str = ""  # e.g. "name" for the NAME column
    description: str = ""
    priority: int = 0  # > 0: shown only with -o wide

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


@dataclass(frozen=True)
class Subresource:
    """``deployments/scale``, ``pods/status`` ... as discovery lists them."""

    name: str
    kind: str  # response kind, e.g. "Scale"
    group: str = ""  # response group when it differs (autoscaling for scale)
    version: str = ""
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True)
class ScalePaths:
    """Where the scale subresource reads and writes (dotted JSON paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str = "status.selector"  # a string selector for Scale.status.selector


def _no_defaults(obj: Obj) -> None:
    return None


def _no_validation(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


def _name_age_row(obj: Obj) -> list[Any]:  # replaced by kinds with real columns
    return [obj.get("metadata", {}).get("name", "")]


def _noop_create(obj: Obj) -> None:
    return None


def _noop_update(obj: Obj, old: Obj) -> None:
    return None


@dataclass(frozen=True)
class ResourceInfo:
    group: str  # "" for core
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    schema_type: str = ""  # e.g. "io.k8s.api.apps.v1.Deployment" (see skiff.api.schema)
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    has_status: bool = False  # a status subresource: main-resource writes keep status, status writes keep spec
    scale: ScalePaths | None = None
    columns: tuple[Column, ...] = (Column("Name", format="name"),)
    row: Callable[[Obj], list[Any]] = _name_age_row
    default: Callable[[Obj], None] = _no_defaults
    validate: Callable[[Obj, Obj | None], list[Cause]] = _no_validation
    prepare_create: Callable[[Obj], None] = _noop_create
    prepare_update: Callable[[Obj, Obj], None] = _noop_update
    field_labels: dict[str, Callable[[Obj], str]] = field(default_factory=dict)
    #: custom resources (no ``schema_type``): drops unspecified fields in place and returns
    #: their paths ("spec.colour") for fieldValidation (see skiff.apiserver.customresources)
    prune: Callable[[Obj], list[str]] | None = None
    #: custom resources: the version's openAPIV3Schema as JSON text, for /openapi/v3
    openapi_schema: str = ""
    #: False: nothing is stored; a component's read-only source answers get and list
    #: (metrics.k8s.io, see skiff.apiserver.readonly)
    stored: bool = True
    #: a Warning header on every answer of a kind that is not stored (a deprecated one,
    #: e.g. ComponentStatus; see skiff.apiserver.readonly)
    warning: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified_plural(self) -> str:
        """``deployments.apps`` as used in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural
