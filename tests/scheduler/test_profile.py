"""Profiles and KubeSchedulerConfiguration files; custom plugins through a registry."""

import random

import pytest

from skiff.scheduler.framework import Framework
from skiff.scheduler.interface import SUCCESS, unresolvable
from skiff.scheduler.plugins import default_registry
from skiff.scheduler.profile import ConfigError, bin_packing_profile, default_profile, load_config, load_config_text
from skiff.scheduler.snapshot import Snapshot

from .builders import node, pod


def test_default_profile_weights_and_points():
    fw = Framework(default_profile())
    assert [(p.name, w) for p, w in fw.score_plugins] == [
        ("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1), ("PodTopologySpread", 2),
        ("InterPodAffinity", 2), ("NodeResourcesBalancedAllocation", 1), ("ImageLocality", 1)]
    assert [p.name for p in fw.filter_plugins] == [
        "NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit",
        "VolumeRestrictions", "VolumeBinding", "PodTopologySpread", "InterPodAffinity"]
    assert [p.name for p in fw.post_filter_plugins] == ["DefaultPreemption"]
    assert [p.name for p in fw.bind_plugins] == ["DefaultBinder"]
    assert fw.queue_sort.name == "PrioritySort"


CONFIG = """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
  plugins:
    multiPoint:
      disabled: [{name: ImageLocality}]
    score:
      enabled: [{name: NodeResourcesBalancedAllocation, weight: 5}]
      disabled: [{name: TaintToleration}]
- schedulerName: packer
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 2}, {name: memory, weight: 1}]
"""


def test_config_file(tmp_path):
    path = tmp_path / "sched.yaml"
    path.write_text(CONFIG)
    first, packer = load_config(path)
    fw = Framework(first)
    weights = {p.name: w for p, w in fw.score_plugins}
    assert "ImageLocality" not in weights and "TaintToleration" not in weights
    assert weights["NodeResourcesBalancedAllocation"] == 5
    assert "TaintToleration" in [p.name for p in fw.filter_plugins]   # only its scoring was disabled
    assert fw.percentage_of_nodes_to_score == 30
    assert packer.scheduler_name == "packer"
    fit = Framework(packer).plugins["NodeResourcesFit"]
    assert fit.strategy == "MostAllocated" and fit.resources == (("cpu", 2), ("memory", 1))


@pytest.mark.parametrize("text", [
    "kind: Deployment",
    "profiles: [{schedulerName: a}, {schedulerName: a}]",
    "percentageOfNodesToScore: 101",
    "profiles: [{plugins: {score: {enabled: [{weight: 1}]}}}]",
    "{not yaml",
])
def test_bad_configs(text):
    with pytest.raises(ConfigError):
        load_config_text(text)


def test_unknown_plugin_is_an_error():
    profile = load_config_text("profiles: [{plugins: {multiPoint: {enabled: [{name: Nope}]}}}]")[0]
    with pytest.raises(ValueError, match="Nope"):
        Framework(profile)


class OddNodesOnly:
    """A custom Filter plugin registered under its own name."""

    name = "OddNodesOnly"

    def filter(self, state, pod, node):
        return SUCCESS if int(node.name[1:]) % 2 else unresolvable("node(s) are even")


def test_custom_plugin_via_registry_and_config():
    registry = default_registry()
    registry.register("OddNodesOnly", lambda args, handle: OddNodesOnly())
    with pytest.raises(ValueError):
        registry.register("OddNodesOnly", lambda args, handle: OddNodesOnly())
    profile = load_config_text("profiles: [{plugins: {filter: {enabled: [{name: OddNodesOnly}]}}}]")[0]
    fw = Framework(profile, registry, rng=random.Random(0))
    snap = Snapshot([node(f"n{i}") for i in range(4)])
    for i in range(6):
        r = fw.schedule_one(snap, pod(f"p{i}"))
        assert r.node_name in ("n1", "n3")
    snap = Snapshot([node("n0"), node("n2")])
    assert fw.schedule_one(snap, pod("p")).message.startswith("0/2 nodes are available: 2 node(s) are even.")
    # a fresh default registry does not know the custom plugin
    assert "OddNodesOnly" not in default_registry().names()


def test_bin_packing_profile_args():
    assert Framework(bin_packing_profile()).plugins["NodeResourcesFit"].strategy == "MostAllocated"
