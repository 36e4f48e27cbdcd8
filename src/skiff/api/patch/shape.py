"""What the schema says about one place in an object, for the patch and apply algorithms.

Both strategic merge patch and server-side apply walk a JSON object and a patch
side by side and, at every key, need to know: is this a struct with declared
fields, a ``map<string, X>``, a list (and how its items are identified), or a
scalar?  :class:`Shapes` answers that from the generated type table
(:mod:`skiff.api.schema`), and :class:`Node` is the answer for one value.

Where the schema knows nothing (no schema at all, a type missing from the table, ``RawExtension``,
``JSON`` and ``FieldsV1`` payloads, or a key a struct does not declare), the
node is :data:`UNKNOWN`; callers then fall back to plain JSON semantics (maps
merge key by key, lists are replaced whole).

Inline fields (``Volume.volumeSource``, ``Probe.handler`` ...) do not appear in
JSON: their own fields sit directly in the parent object.  :meth:`Shapes.field`
looks through them, so callers only ever see real JSON keys.

A few facts Kubernetes records as ``+structType=atomic`` / ``+mapType=atomic``
markers are not (yet) in the generated table; the ones server-side apply needs
for realistic objects are listed here in :data:`ATOMIC_STRUCTS` and
:data:`ATOMIC_MAP_FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import SCALARS, FieldDef, Schema, TypeDef

# Types whose JSON value is arbitrary: no schema below them.
_OPAQUE_SPECIALS = frozenset({"raw", "fieldsv1"})

# ``+structType=atomic`` types of Kubernetes v1.32 (core, meta, apps, rbac ...):
# applied and owned as one value, never field by field.
ATOMIC_STRUCTS = frozenset({
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.Variable",
})

# ``+mapType=atomic`` map fields: (owning type, JSON field name).
ATOMIC_MAP_FIELDS = frozenset({
    ("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
    ("io.k8s.api.core.v1.ServiceSpec", "selector"),
    ("io.k8s.api.core.v1.ReplicationControllerSpec", "selector"),
    ("io.k8s.api.node.v1.Scheduling", "nodeSelector"),
})


@dataclass(frozen=True)
class Node:
    """What the schema knows about one JSON value.

    ``type`` is a scalar name, a full type name, or ``None`` when unknown.
    ``map_of`` marks a ``map<string, type>`` (a JSON object whose values all
    have ``type``).
    """

    type: str | None = None
    map_of: bool = False


UNKNOWN = Node()


def patch_strategy(fd: FieldDef | None) -> str:
    """The field's list/map strategy without ``retainKeys``: ``merge``, ``replace`` or ``""``."""
    if fd is None or not fd.patch_strategy:
        return ""
    parts = [p for p in fd.patch_strategy.split(",") if p and p != "retainKeys"]
    return parts[0] if parts else ""


class Shapes:
    """Schema lookups for one patch or apply call (caches inline lookups)."""

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema if schema is not None else Schema({})
        self._fields: dict[tuple[str, str], FieldDef | None] = {}

    def root(self, type_name: str | None) -> Node:
        """The node of a whole object; unknown when the type is (or no schema is given)."""
        if type_name is None or self.schema.type(type_name) is None:
            return UNKNOWN
        return Node(type_name)

    def struct(self, node: Node) -> TypeDef | None:
        """The struct definition behind ``node``, or None (scalar, map, opaque or unknown)."""
        if node.type is None or node.map_of:
            return None
        t = self.schema.type(node.type)
        if t is None or t.special is not None:
            return None
        return t

    def is_scalar(self, node: Node) -> bool:
        if node.type is None or node.map_of:
            return False
        if node.type in SCALARS:
            return True
        t = self.schema.type(node.type)
        return t is not None and t.special is not None and t.special not in _OPAQUE_SPECIALS

    def is_atomic_struct(self, node: Node) -> bool:
        return not node.map_of and node.type in ATOMIC_STRUCTS

    def field(self, type_name: str, key: str) -> FieldDef | None:
        """The field a JSON key names in a struct, looking through inline members."""
        cache_key = (type_name, key)
        if cache_key not in self._fields:
            self._fields[cache_key] = self._find_field(type_name, key, depth=0)
        return self._fields[cache_key]

    def _find_field(self, type_name: str, key: str, depth: int) -> FieldDef | None:
        t = self.schema.type(type_name)
        if t is None or depth > 8:
            return None
        direct = t.fields.get(key)
        if direct is not None and not direct.inline:
            return direct
        for fd in t.fields.values():
            if fd.inline:
                found = self._find_field(fd.type, key, depth + 1)
                if found is not None:
                    return found
        return None

    def child(self, node: Node, key: str) -> tuple[FieldDef | None, Node]:
        """The field (if declared) and the node of the value under ``key``.

        For a list field the node describes each item; for a map field it is
        the map itself (``map_of`` set).
        """
        if node.map_of:
            return None, Node(node.type)
        struct = self.struct(node)
        if struct is None:
            return None, UNKNOWN
        fd = self.field(struct.name, key)
        if fd is None:
            return None, UNKNOWN
        return fd, value_node(fd)


def value_node(fd: FieldDef) -> Node:
    """The node of a field's value (of each item, for a list field)."""
    return Node(fd.type, map_of=fd.map_value is not None)
