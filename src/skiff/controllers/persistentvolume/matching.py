"""Which PersistentVolume may serve which PersistentVolumeClaim: pure rules, no I/O.

Shared by the volume binder, the local-path provisioner, the protection
controllers and the scheduler's VolumeBinding plugin (as Kubernetes shares its
``persistentvolume/util``).  A volume *matches* a claim when::

    claimRef empty or naming this claim, capacity >= request, not being deleted,
    volumeMode equal (unset = Filesystem)
    pre-bound to this claim (claimRef namespace/name, uid empty or equal) ──▶ it
    otherwise: phase Available, class equal ("" = no class), labels match the
               claim's spec.selector, every claim access mode offered, nodeAffinity
               matches the node (when one is given)
    several match ──▶ the smallest capacity wins

With ``delay_binding`` (the claim's class is WaitForFirstConsumer) and no node,
only a volume pre-bound to the claim counts: the scheduler picks the rest once a
pod using the claim has a node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from ...api.kinds.core.volumes import STORAGE_CLASS_ANNOTATION
from ...api.quantity import QuantityError, parse_quantity
from ...api.selectors import SelectorError, label_selector_from_object
from ...client.resources import Resource

Obj = dict[str, Any]

# Annotations, as Kubernetes writes them.
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
YES = "yes"

# Phases.
VOLUME_PENDING, VOLUME_AVAILABLE, VOLUME_BOUND = "Pending", "Available", "Bound"
VOLUME_RELEASED, VOLUME_FAILED = "Released", "Failed"
CLAIM_PENDING, CLAIM_BOUND, CLAIM_LOST = "Pending", "Bound", "Lost"

WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
#: The client's handle on StorageClasses (storage.k8s.io/v1, cluster-scoped).
STORAGE_CLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False, kind="StorageClass")
#: Index name of "pods by the claims they mount" on a pod informer.
PODS_BY_CLAIM = "persistentvolume/claims"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def key_of(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def claim_key(claim: Obj) -> str:
    meta = _meta(claim)
    return key_of(str(meta.get("namespace", "")), str(meta.get("name", "")))


def annotations_of(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def claim_class(obj: Obj) -> str:
    """The class of a claim or a volume: the beta annotation, else spec.storageClassName ("" = none)."""
    ann = annotations_of(obj)
    if STORAGE_CLASS_ANNOTATION in ann:
        return str(ann[STORAGE_CLASS_ANNOTATION])
    return str(_spec(obj).get("storageClassName") or "")


def volume_mode(obj: Obj) -> str:
    return str(_spec(obj).get("volumeMode") or "Filesystem")


def _amount(value: Any) -> Fraction | None:
    if value is None:
        return None
    try:
        return parse_quantity(value).amount
    except QuantityError:
        return None


def requested(claim: Obj) -> Fraction:
    """The claim's storage request in bytes (0 when missing)."""
    requests = (_spec(claim).get("resources") or {}).get("requests") or {}
    return _amount(requests.get("storage")) or Fraction(0)


def capacity(volume: Obj) -> Fraction:
    return _amount((_spec(volume).get("capacity") or {}).get("storage")) or Fraction(0)


def phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def offers_access_modes(volume: Obj, claim: Obj) -> bool:
    """Every access mode the claim asks for is one the volume offers."""
    return set(_spec(claim).get("accessModes") or ()) <= set(_spec(volume).get("accessModes") or ())


def selector_matches(claim: Obj, volume: Obj) -> bool:
    selector = _spec(claim).get("selector")
    if selector is None:
        return True
    try:
        return label_selector_from_object(selector).matches(_meta(volume).get("labels") or {})
    except SelectorError:
        return False


def _requirement_matches(expr: Obj, values: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key", "")), expr.get("operator")
    wanted = [str(v) for v in expr.get("values") or ()]
    have = values.get(key)
    if op == "In":
        return have is not None and have in wanted
    if op == "NotIn":
        return have is None or have not in wanted
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt") and have is not None and len(wanted) == 1:
        try:
            a, b = int(have), int(wanted[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_selector_term_matches(term: Obj, labels: Mapping[str, str], node_name: str) -> bool:
    """One NodeSelectorTerm: every matchExpression on labels, every matchField on metadata.name."""
    exprs, fields = term.get("matchExpressions") or (), term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    if not all(_requirement_matches(e, labels) for e in exprs):
        return False
    return all(e.get("key") == "metadata.name" and _requirement_matches(e, {"metadata.name": node_name})
               for e in fields)


def node_affinity_matches(volume: Obj, labels: Mapping[str, str], node_name: str) -> bool:
    """The volume's spec.nodeAffinity.required admits the node (no affinity: every node)."""
    required = (_spec(volume).get("nodeAffinity") or {}).get("required")
    if required is None:
        return True
    return any(node_selector_term_matches(t, labels, node_name)
               for t in required.get("nodeSelectorTerms") or ())


def is_bound_to(volume: Obj, claim: Obj) -> bool:
    """The volume's claimRef names the claim (and its uid, when the ref has one)."""
    ref = _spec(volume).get("claimRef")
    if not ref:
        return False
    meta = _meta(claim)
    if ref.get("name") != meta.get("name") or (ref.get("namespace") or "") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def is_fully_bound(claim: Obj) -> bool:
    """The binder finished with this claim: volumeName set and bind-completed annotated."""
    return bool(_spec(claim).get("volumeName")) and ANN_BIND_COMPLETED in annotations_of(claim)


def mismatch(volume: Obj, claim: Obj) -> str:
    """Why a volume the claim asked for by name cannot serve it ("" = it can)."""
    if capacity(volume) < requested(claim):
        return "requested PV is too small"
    if claim_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode(volume) != volume_mode(claim):
        return "incompatible volumeMode"
    if not offers_access_modes(volume, claim):
        return "incompatible accessMode"
    return ""


def find_best_match(claim: Obj, volumes: Iterable[Obj], *, delay_binding: bool = False,
                    node: Obj | None = None, excluded: Iterable[str] = ()) -> Obj | None:
    """The volume to bind ``claim`` to (see module docstring), or None.

    ``node``: only volumes whose nodeAffinity admits it (the scheduler's question).
    ``excluded``: names of volumes already promised to other claims.
    """
    skip = set(excluded)
    want, wanted_class, mode = requested(claim), claim_class(claim), volume_mode(claim)
    node_labels: Mapping[str, str] = (_meta(node).get("labels") or {}) if node else {}
    node_name = str(_meta(node).get("name", "")) if node else ""
    best: Obj | None = None
    best_size = Fraction(0)
    for volume in volumes:
        name = _meta(volume).get("name")
        if name in skip:
            continue
        bound_here = is_bound_to(volume, claim)
        size = capacity(volume)
        if (_spec(volume).get("claimRef") and not bound_here) or size < want:
            continue
        if volume_mode(volume) != mode or deleting(volume):
            continue
        fits_node = node is None or node_affinity_matches(volume, node_labels, node_name)
        if bound_here:
            return volume if fits_node else None
        if node is None and delay_binding:
            continue
        if phase(volume) != VOLUME_AVAILABLE:
            continue
        if claim_class(volume) != wanted_class or not selector_matches(claim, volume):
            continue
        if not fits_node or not offers_access_modes(volume, claim):
            continue
        if best is None or size < best_size:
            best, best_size = volume, size
    return best


def pod_claim_names(pod: Obj) -> list[str]:
    """Names of the claims a pod mounts: persistentVolumeClaim volumes and generic ephemeral ones."""
    names = []
    pod_name = str(_meta(pod).get("name", ""))
    for volume in _spec(pod).get("volumes") or ():
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, dict) and source.get("claimName"):
            names.append(str(source["claimName"]))
        elif isinstance(volume.get("ephemeral"), dict):
            names.append(f"{pod_name}-{volume.get('name', '')}")
    return names


def pod_claim_keys(pod: Obj) -> list[str]:
    """``namespace/name`` of every claim the pod mounts (an informer index function)."""
    namespace = str(_meta(pod).get("namespace", ""))
    return [key_of(namespace, n) for n in pod_claim_names(pod)]


def pod_terminated(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_delay_binding(claim: Obj, storage_class: Obj | None) -> bool:
    """The claim's class waits for the first consumer (a missing class binds immediately)."""
    return storage_class is not None and storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER
