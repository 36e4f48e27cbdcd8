"""Scheduler profiles: which plugins run, with which score weights and arguments.

A :class:`Profile` is data.  :func:`default_profile` is Kubernetes' default
plugin set (v1.32) with its score weights::

    PrioritySort, NodeUnschedulable, NodeName, TaintToleration (score weight 3),
    NodeAffinity (2), NodePorts, NodeResourcesFit (1), VolumeRestrictions,
    VolumeBinding, PodTopologySpread (2), InterPodAffinity (2), DefaultPreemption,
    NodeResourcesBalancedAllocation (1), ImageLocality (1), DefaultBinder

Every plugin takes part in every extension point it implements ("multiPoint"),
in this order.  :func:`bin_packing_profile` switches NodeResourcesFit to the
``MostAllocated`` strategy.

:func:`load_config` reads a ``KubeSchedulerConfiguration``-shaped YAML file
(``skiff up --scheduler-config FILE``)::

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    percentageOfNodesToScore: 0
    profiles:
    - schedulerName: default-scheduler
      plugins:
        multiPoint:
          enabled:  [{name: MyPlugin, weight: 2}]
          disabled: [{name: ImageLocality}]          # or [{name: "*"}]
        score:
          enabled:  [{name: NodeResourcesBalancedAllocation, weight: 5}]
          disabled: [{name: TaintToleration}]
      pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated,
                                 resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]}}

Each profile's plugins are the defaults adjusted by ``multiPoint`` and then by
the per-extension-point sections (``queueSort preFilter filter postFilter
preScore score reserve permit preBind bind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml  # type: ignore[import-untyped]

DEFAULT_SCHEDULER_NAME = "default-scheduler"

EXTENSION_POINTS = ("queueSort", "preFilter", "filter", "postFilter", "preScore", "score",
                    "reserve", "permit", "preBind", "bind")


class ConfigError(ValueError):
    """A scheduler configuration file that cannot be used."""


@dataclass(frozen=True, slots=True)
class PluginRef:
    """A plugin enabled in a profile.  ``points=None``: every point it implements."""

    name: str
    weight: int = 0          # score weight; 0 means 1
    points: frozenset[str] | None = None

    def in_point(self, point: str) -> bool:
        return self.points is None or point in self.points


@dataclass(frozen=True)
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    plugins: tuple[PluginRef, ...] = ()
    disabled: Mapping[str, frozenset[str]] = field(default_factory=dict)
    plugin_args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None

    def enabled(self, point: str) -> list[PluginRef]:
        off = self.disabled.get(point, frozenset())
        return [p for p in self.plugins if p.in_point(point) and p.name not in off and "*" not in off]

    def weight(self, name: str) -> int:
        for p in self.plugins:
            if p.name == name:
                return p.weight or 1
        return 1

    def args(self, name: str) -> Mapping[str, Any]:
        return self.plugin_args.get(name, {})


DEFAULT_PLUGINS: tuple[PluginRef, ...] = (
    PluginRef("PrioritySort"),
    PluginRef("NodeUnschedulable"),
    PluginRef("NodeName"),
    PluginRef("TaintToleration", 3),
    PluginRef("NodeAffinity", 2),
    PluginRef("NodePorts"),
    PluginRef("NodeResourcesFit", 1),
    PluginRef("VolumeRestrictions"),
    PluginRef("VolumeBinding"),
    PluginRef("PodTopologySpread", 2),
    PluginRef("InterPodAffinity", 2),
    PluginRef("DefaultPreemption"),
    PluginRef("NodeResourcesBalancedAllocation", 1),
    PluginRef("ImageLocality", 1),
    PluginRef("DefaultBinder"),
)


def default_profile(scheduler_name: str = DEFAULT_SCHEDULER_NAME) -> Profile:
    return Profile(scheduler_name=scheduler_name, plugins=DEFAULT_PLUGINS)


def bin_packing_profile(scheduler_name: str = DEFAULT_SCHEDULER_NAME) -> Profile:
    """Default plugins, but NodeResourcesFit prefers the fullest node that fits."""
    return Profile(
        scheduler_name=scheduler_name,
        plugins=DEFAULT_PLUGINS,
        plugin_args={"NodeResourcesFit": {"scoringStrategy": {
            "type": "MostAllocated",
            "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]}}},
    )


def _names(section: Mapping[str, Any] | None, key: str) -> list[Mapping[str, Any]]:
    items = (section or {}).get(key) or []
    if not isinstance(items, list):
        raise ConfigError(f"plugins.{key} must be a list")
    for item in items:
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ConfigError(f"every plugins.{key} entry needs a name")
    return items


def profile_from_config(obj: Mapping[str, Any], percentage: int | None = None) -> Profile:
    """Build one profile from a ``profiles[]`` entry of a KubeSchedulerConfiguration."""
    plugins = list(DEFAULT_PLUGINS)
    disabled: dict[str, set[str]] = {}
    sections = obj.get("plugins") or {}
    multi = sections.get("multiPoint") or {}
    for item in _names(multi, "disabled"):
        if item["name"] == "*":
            plugins = []
        else:
            plugins = [p for p in plugins if p.name != item["name"]]
    for item in _names(multi, "enabled"):
        ref = PluginRef(str(item["name"]), int(item.get("weight") or 0))
        plugins = [p for p in plugins if p.name != ref.name] + [ref]
    for point in EXTENSION_POINTS:
        section = sections.get(point)
        if not section:
            continue
        for item in _names(section, "disabled"):
            disabled.setdefault(point, set()).add(str(item["name"]))
        for item in _names(section, "enabled"):
            name, weight = str(item["name"]), int(item.get("weight") or 0)
            for i, p in enumerate(plugins):
                if p.name == name:
                    plugins[i] = replace(p, weight=weight or p.weight,
                                         points=None if p.points is None else p.points | {point})
                    disabled.get(point, set()).discard(name)
                    break
            else:
                plugins.append(PluginRef(name, weight, frozenset([point])))
    args: dict[str, Mapping[str, Any]] = {}
    for entry in obj.get("pluginConfig") or []:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise ConfigError("every pluginConfig entry needs a name")
        args[str(entry["name"])] = dict(entry.get("args") or {})
    own_percentage = obj.get("percentageOfNodesToScore")
    return Profile(
        scheduler_name=str(obj.get("schedulerName") or DEFAULT_SCHEDULER_NAME),
        plugins=tuple(plugins),
        disabled={k: frozenset(v) for k, v in disabled.items()},
        plugin_args=args,
        percentage_of_nodes_to_score=int(own_percentage) if own_percentage is not None else percentage,
    )


def load_config_text(text: str) -> list[Profile]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid scheduler configuration: {e}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError("a scheduler configuration must be a mapping")
    kind = doc.get("kind")
    if kind not in (None, "KubeSchedulerConfiguration"):
        raise ConfigError(f"unsupported kind {kind!r}, want KubeSchedulerConfiguration")
    pct = doc.get("percentageOfNodesToScore")
    percentage = int(pct) if pct is not None else None
    if percentage is not None and not 0 <= percentage <= 100:
        raise ConfigError("percentageOfNodesToScore must be between 0 and 100")
    entries = doc.get("profiles") or [{}]
    profiles = [profile_from_config(e, percentage) for e in entries]
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate schedulerName in profiles: {names}")
    return profiles


def load_config(path: str | Path) -> list[Profile]:
    """Profiles from a KubeSchedulerConfiguration YAML file."""
    return load_config_text(Path(path).read_text())
