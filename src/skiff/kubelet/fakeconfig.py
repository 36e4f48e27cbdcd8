"""The shape of simulated nodes: ``skiff up --runtime fake [--nodes N] [--node-config FILE]``.

Without a file, ``--nodes N`` gives N alike nodes ``skiff-node-0`` ... with the
default capacity (4 CPUs, 8Gi memory, 110 pods) spread round-robin over three
zones: label ``topology.kubernetes.io/zone`` = ``zone-a``, ``zone-b``,
``zone-c``, ``zone-a`` ... (node ``i`` gets zone ``i mod 3``), so zone-aware
spreading works out of the box.

A node-config file (YAML) describes groups of nodes::

    zones: [zone-a, zone-b, zone-c]     # round-robin zone labels (default); [] for none
    failingImages:                      # images that never pull (shell patterns), in
    - example.com/broken/*              #   addition to any image on a *.invalid host
    nodeGroups:                         # (the file may also be just this list)
    - count: 3                          # default 1
      namePrefix: skiff-node            # default; numbering goes on across groups
      capacity: {cpu: "4", memory: 8Gi, pods: 110}    # over the defaults
    - namePrefix: gpu
      capacity: {cpu: "8", memory: 32Gi, nvidia.com/gpu: 2}
      allocatable: {cpu: 7500m}         # default: the capacity
      labels: {gpu: nvidia}
      taints: ["nvidia.com/gpu=present:NoSchedule"]   # or {key, value, effect}
      zones: [zone-b]                   # this group's zones (overrides the file's)

gives ``skiff-node-0..2`` and ``gpu-0``.  Zones are dealt by the node's
position in the whole file (node ``i`` of the cluster gets ``zones[i mod
len]``), unless the group's labels name a zone themselves.  Capacity keys are
resource names (``cpu``, ``memory``, ``pods``, ``ephemeral-storage``,
``hugepages-<size>``, or a domain-prefixed extended resource such as
``nvidia.com/gpu``, whose amount must be a whole number); values are
quantities.  When ``--nodes N`` is given with a file, N must equal the file's
total (a mismatch is an error, not a guess).

:func:`load_node_config` / :func:`parse_node_config` read a file and raise
:class:`NodeConfigError` with the offending path (``nodeGroups[1].capacity.cpu``)
and what would be right; :func:`default_node_config` is the no-file case.  The
result, :class:`FakeNodesConfig`, carries exactly what
:func:`skiff.kubelet.fake.run_fake_nodes` takes (``specs``, ``failing_images``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from ..api.kinds.meta.names import is_dns1123_subdomain, is_qualified_name, is_valid_label_value
from ..api.quantity import QuantityError, parse_quantity
from .node_status import DEFAULT_CAPACITY, MAX_FAKE_NODES, NodeSpec

ZONE_LABEL = "topology.kubernetes.io/zone"
DEFAULT_ZONES = ("zone-a", "zone-b", "zone-c")
DEFAULT_NAME_PREFIX = "skiff-node"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
STANDARD_RESOURCES = ("cpu", "memory", "pods", "ephemeral-storage")

_FILE_KEYS = ("nodeGroups", "zones", "failingImages")
_GROUP_KEYS = ("count", "namePrefix", "capacity", "allocatable", "labels", "taints", "zones")
_TAINT_KEYS = ("key", "value", "effect")
_TAINT_TEXT = re.compile(r"^(?P<key>[^=:]+)(=(?P<value>[^:]*))?:(?P<effect>[A-Za-z]+)$")


class NodeConfigError(ValueError):
    """A node-config file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class FakeNodesConfig:
    """Everything :func:`~skiff.kubelet.fake.run_fake_nodes` needs beyond the client."""

    specs: tuple[NodeSpec, ...]
    failing_images: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.specs)


def default_node_config(count: int) -> FakeNodesConfig:
    """``count`` default nodes, zones dealt round-robin (what ``--nodes N`` alone gives)."""
    if not 0 <= count <= MAX_FAKE_NODES:
        raise NodeConfigError(f"--nodes must be between 0 and {MAX_FAKE_NODES}, not {count}")
    return FakeNodesConfig(tuple(
        NodeSpec(name=f"{DEFAULT_NAME_PREFIX}-{i}", index=i, capacity=dict(DEFAULT_CAPACITY),
                 labels={ZONE_LABEL: DEFAULT_ZONES[i % len(DEFAULT_ZONES)]})
        for i in range(count)))


def load_node_config(path: Path, *, nodes: int | None = None) -> FakeNodesConfig:
    """Read ``path`` (see module docstring); ``nodes`` is ``--nodes`` when it was given."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise NodeConfigError(f"{path}: cannot read the node config: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise NodeConfigError(f"{path}: not valid YAML: {e}") from e
    return parse_node_config(data, source=str(path), nodes=nodes)


def parse_node_config(data: Any, *, source: str = "node config",
                      nodes: int | None = None) -> FakeNodesConfig:
    """Validate already-parsed YAML (a mapping, or a bare list of node groups)."""
    if isinstance(data, list):
        data = {"nodeGroups": data}
    if not isinstance(data, Mapping):
        raise NodeConfigError(f"{source}: expected a mapping with nodeGroups (or a list of node "
                              f"groups), got {_kind(data)}")
    _known_keys(data, _FILE_KEYS, source, "")
    zones = _zones(data.get("zones", list(DEFAULT_ZONES)), source, "zones")
    failing = _strings(data.get("failingImages", []), source, "failingImages")
    groups = data.get("nodeGroups")
    if not isinstance(groups, list) or not groups:
        raise NodeConfigError(f"{source}: nodeGroups must be a non-empty list of node groups, "
                              f"e.g. [{{count: 3}}]")
    specs: list[NodeSpec] = []
    numbering: dict[str, int] = {}
    for g, group in enumerate(groups):
        specs.extend(_group(group, source, f"nodeGroups[{g}]", zones, numbering, len(specs)))
    if len(specs) > MAX_FAKE_NODES:
        raise NodeConfigError(f"{source}: {len(specs)} nodes; at most {MAX_FAKE_NODES} fit")
    if nodes is not None and nodes != len(specs):
        raise NodeConfigError(f"--nodes {nodes} but {source} describes {len(specs)} node(s); "
                              f"drop --nodes or change the counts in the file")
    return FakeNodesConfig(tuple(specs), tuple(failing))


def _group(group: Any, source: str, where: str, file_zones: tuple[str, ...],
           numbering: dict[str, int], first_index: int) -> list[NodeSpec]:
    if not isinstance(group, Mapping):
        raise NodeConfigError(f"{source}: {where}: a node group is a mapping "
                              f"(count, namePrefix, capacity, labels, taints ...), got {_kind(group)}")
    _known_keys(group, _GROUP_KEYS, source, where)
    count = group.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise NodeConfigError(f"{source}: {where}.count: must be a whole number >= 0, got {count!r}")
    prefix = group.get("namePrefix", DEFAULT_NAME_PREFIX)
    if not isinstance(prefix, str) or is_dns1123_subdomain(f"{prefix}-0"):
        raise NodeConfigError(f"{source}: {where}.namePrefix: {prefix!r} does not make valid node "
                              f"names (lower-case letters, digits, '-' and '.'), e.g. gpu-node")
    capacity = {**DEFAULT_CAPACITY, **_resources(group.get("capacity", {}), source, f"{where}.capacity")}
    allocatable = None
    if "allocatable" in group:
        allocatable = {**capacity, **_resources(group["allocatable"], source, f"{where}.allocatable")}
    labels = _labels(group.get("labels", {}), source, f"{where}.labels")
    taints = tuple(_taint(t, source, f"{where}.taints[{i}]")
                   for i, t in enumerate(_list(group.get("taints", []), source, f"{where}.taints")))
    zones = _zones(group["zones"], source, f"{where}.zones") if "zones" in group else file_zones
    specs = []
    for i in range(count):
        number = numbering.get(prefix, 0)
        numbering[prefix] = number + 1
        index = first_index + i
        node_labels = dict(labels)
        if zones and ZONE_LABEL not in node_labels:
            node_labels[ZONE_LABEL] = zones[index % len(zones)]
        specs.append(NodeSpec(name=f"{prefix}-{number}", index=index, capacity=capacity,
                              allocatable=allocatable, labels=node_labels, taints=taints))
    return specs


def _resources(value: Any, source: str, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise NodeConfigError(f"{source}: {where}: expected a mapping of resource name to amount, "
                              f"e.g. {{cpu: \"4\", memory: 8Gi}}, got {_kind(value)}")
    out = {}
    for name, amount in value.items():
        name = str(name)
        if name not in STANDARD_RESOURCES and not name.startswith("hugepages-"):
            if "/" not in name:
                hint = difflib.get_close_matches(name, STANDARD_RESOURCES, n=1, cutoff=0.8)
                domain = "nvidia.com" if name == "gpu" else "example.com"
                suggestion = (f"did you mean {hint[0]!r}?" if hint else
                              f"extended resources need a domain, e.g. {domain}/{name}")
                raise NodeConfigError(f"{source}: {where}: unknown resource {name!r}; {suggestion}")
            if is_qualified_name(name):
                raise NodeConfigError(f"{source}: {where}: {name!r} is not a valid resource name")
        try:
            quantity = parse_quantity(amount)
        except QuantityError:
            raise NodeConfigError(f"{source}: {where}.{name}: {amount!r} is not a quantity "
                                  f"(e.g. 4, 500m, 8Gi)") from None
        if quantity.milli_value() < 0:
            raise NodeConfigError(f"{source}: {where}.{name}: must not be negative")
        if "/" in name and quantity.milli_value() % 1000:
            raise NodeConfigError(f"{source}: {where}.{name}: an extended resource is counted in "
                                  f"whole units, not {amount!r}")
        out[name] = str(quantity)
    return out


def _labels(value: Any, source: str, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise NodeConfigError(f"{source}: {where}: expected a mapping of label to value, got {_kind(value)}")
    out = {}
    for key, text in value.items():
        if not isinstance(text, str):
            raise NodeConfigError(f"{source}: {where}.{key}: label values are strings; quote it: "
                                  f"{key}: \"{_yaml_scalar(text)}\"")
        problems = is_qualified_name(str(key)) + is_valid_label_value(text)
        if problems:
            raise NodeConfigError(f"{source}: {where}.{key}: {'; '.join(problems)}")
        out[str(key)] = text
    return out


def _taint(value: Any, source: str, where: str) -> dict[str, str]:
    if isinstance(value, str):
        m = _TAINT_TEXT.match(value.strip())
        if m is None:
            raise NodeConfigError(f"{source}: {where}: {value!r} is not a taint; write key[=value]:Effect, "
                                  f"e.g. nvidia.com/gpu=present:NoSchedule")
        value = {k: v for k, v in m.groupdict().items() if v is not None}
    if not isinstance(value, Mapping):
        raise NodeConfigError(f"{source}: {where}: a taint is key[=value]:Effect or "
                              f"{{key, value, effect}}, got {_kind(value)}")
    _known_keys(value, _TAINT_KEYS, source, where)
    key, effect = str(value.get("key", "")), value.get("effect")
    if is_qualified_name(key):
        raise NodeConfigError(f"{source}: {where}.key: {key!r}: {'; '.join(is_qualified_name(key))}")
    if effect not in TAINT_EFFECTS:
        raise NodeConfigError(f"{source}: {where}.effect: {effect!r} is not one of "
                              f"{', '.join(TAINT_EFFECTS)}")
    taint = {"key": key, "effect": str(effect)}
    if value.get("value") not in (None, ""):
        text = value["value"]
        if not isinstance(text, str) or is_valid_label_value(text):
            raise NodeConfigError(f"{source}: {where}.value: {text!r} is not a valid taint value (quote it)")
        taint["value"] = text
    return taint


def _zones(value: Any, source: str, where: str) -> tuple[str, ...]:
    zones = _strings(value, source, where)
    for zone in zones:
        if is_valid_label_value(zone):
            raise NodeConfigError(f"{source}: {where}: {zone!r} is not a valid label value")
    return tuple(zones)


def _strings(value: Any, source: str, where: str) -> list[str]:
    items = _list(value, source, where)
    for item in items:
        if not isinstance(item, str) or not item:
            raise NodeConfigError(f"{source}: {where}: expected a list of strings, found {item!r}")
    return list(items)


def _list(value: Any, source: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise NodeConfigError(f"{source}: {where}: expected a list, got {_kind(value)}")
    return value


def _known_keys(value: Mapping[Any, Any], known: Sequence[str], source: str, where: str) -> None:
    for key in value:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            also = f"did you mean {hint[0]!r}? " if hint else ""
            raise NodeConfigError(f"{source}: {where + ': ' if where else ''}unknown field {key!r}; "
                                  f"{also}(known: {', '.join(known)})")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _yaml_scalar(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)
