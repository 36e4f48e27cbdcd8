"""Node-config files for simulated nodes: what they produce, and how they are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.kubelet.fakeconfig import (
    NodeConfigError, default_node_config, load_node_config, parse_node_config,
)

ZONE = "topology.kubernetes.io/zone"

EXAMPLE = """
zones: [zone-a, zone-b, zone-c]
failingImages: ["example.com/broken/*"]
nodeGroups:
- count: 3
  capacity: {cpu: "4", memory: 8Gi, pods: 110}
- namePrefix: gpu
  capacity: {cpu: 8, memory: 32Gi, nvidia.com/gpu: 2}
  allocatable: {cpu: 7500m}
  labels: {gpu: nvidia}
  taints: ["nvidia.com/gpu=present:NoSchedule", {key: dedicated, effect: PreferNoSchedule}]
  zones: [zone-b]
- count: 1
"""


def test_default_nodes_are_spread_over_three_zones() -> None:
    config = default_node_config(4)
    assert [s.name for s in config.specs] == ["skiff-node-0", "skiff-node-1", "skiff-node-2", "skiff-node-3"]
    assert [s.labels[ZONE] for s in config.specs] == ["zone-a", "zone-b", "zone-c", "zone-a"]
    assert [s.index for s in config.specs] == [0, 1, 2, 3]
    assert config.specs[0].capacity["cpu"] == "4" and config.failing_images == ()


def test_groups_make_named_indexed_nodes(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text(EXAMPLE)
    config = load_node_config(path)
    names = [s.name for s in config.specs]
    assert names == ["skiff-node-0", "skiff-node-1", "skiff-node-2", "gpu-0", "skiff-node-3"]
    assert [s.index for s in config.specs] == [0, 1, 2, 3, 4]  # pod CIDRs and IPs never collide
    assert [s.labels[ZONE] for s in config.specs] == ["zone-a", "zone-b", "zone-c", "zone-b", "zone-b"]
    gpu = config.specs[3]
    assert gpu.capacity["nvidia.com/gpu"] == "2" and gpu.capacity["cpu"] == "8"
    assert gpu.capacity["memory"] == "32Gi" and gpu.capacity["pods"] == "110"  # defaults fill in
    assert gpu.allocatable is not None and gpu.allocatable["cpu"] == "7500m"
    assert gpu.allocatable["nvidia.com/gpu"] == "2"
    assert gpu.labels["gpu"] == "nvidia"
    assert list(gpu.taints) == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
                                {"key": "dedicated", "effect": "PreferNoSchedule"}]
    assert config.specs[0].allocatable is None and not config.specs[0].taints
    assert config.failing_images == ("example.com/broken/*",)
    assert load_node_config(path, nodes=5).count == 5


def test_a_bare_list_an_explicit_zone_and_no_zones() -> None:
    config = parse_node_config([{"count": 2, "labels": {ZONE: "here"}}])
    assert [s.labels[ZONE] for s in config.specs] == ["here", "here"]
    plain = parse_node_config({"zones": [], "nodeGroups": [{"count": 1}]})
    assert ZONE not in plain.specs[0].labels


@pytest.mark.parametrize("data, message", [
    ({"nodeGroups": [{"count": 2, "capacty": {}}]}, "nodeGroups[0]: unknown field 'capacty'; did you mean 'capacity'?"),
    ({"nodegroups": []}, "unknown field 'nodegroups'; did you mean 'nodeGroups'?"),
    ({"nodeGroups": []}, "nodeGroups must be a non-empty list"),
    ([{"capacity": {"cpu": "four"}}], "nodeGroups[0].capacity.cpu: 'four' is not a quantity"),
    ([{"capacity": {"gpu": 1}}], "unknown resource 'gpu'; extended resources need a domain, e.g. nvidia.com/gpu"),
    ([{"capacity": {"fpga": 1}}], "unknown resource 'fpga'; extended resources need a domain, e.g. example.com/fpga"),
    ([{"capacity": {"cpus": 1}}], "unknown resource 'cpus'; did you mean 'cpu'?"),
    ([{"capacity": {"nvidia.com/gpu": "500m"}}], "counted in whole units"),
    ([{"labels": {"gpu": True}}], 'label values are strings; quote it: gpu: "true"'),
    ([{"labels": {"bad key!": "x"}}], "nodeGroups[0].labels.bad key!"),
    ([{"taints": ["gpu:NoExecuteNow"]}], "effect: 'NoExecuteNow' is not one of NoSchedule, PreferNoSchedule, NoExecute"),
    ([{"taints": ["no-effect"]}], "is not a taint; write key[=value]:Effect"),
    ([{"count": -1}], "nodeGroups[0].count: must be a whole number >= 0"),
    ([{"namePrefix": "GPU_nodes"}], "namePrefix: 'GPU_nodes' does not make valid node names"),
    ("3 nodes", "expected a mapping with nodeGroups (or a list of node groups), got a string"),
])
def test_mistakes_are_explained(data: object, message: str) -> None:
    with pytest.raises(NodeConfigError) as err:
        parse_node_config(data, source="nodes.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("nodes.yaml: ") or str(err.value).startswith("--nodes")


def test_nodes_flag_must_match_the_file(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("- count: 3\n")
    with pytest.raises(NodeConfigError, match=r"--nodes 1 but .*n.yaml describes 3 node\(s\)"):
        load_node_config(path, nodes=1)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(NodeConfigError, match="cannot read the node config"):
        load_node_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodeGroups: [count: 3\n")
    with pytest.raises(NodeConfigError, match="not valid YAML"):
        load_node_config(bad)
