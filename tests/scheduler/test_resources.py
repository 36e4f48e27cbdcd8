"""Effective pod requests: containers, init containers, sidecars, overhead, non-zero defaults."""

import pytest

from skiff.scheduler.resources import (DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST, Resources,
                                       is_scalar_resource, pod_non_zero_requests, pod_requests)


def c(name, cpu=None, mem=None, sidecar=False, **extra):
    req = {}
    if cpu:
        req["cpu"] = cpu
    if mem:
        req["memory"] = mem
    req.update(extra)
    out = {"name": name, "image": "x", "resources": {"requests": req}}
    if sidecar:
        out["restartPolicy"] = "Always"
    return out


def p(containers, init=(), overhead=None):
    spec = {"containers": list(containers), "initContainers": list(init)}
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": "p"}, "spec": spec}


@pytest.mark.parametrize("pod,cpu,mem", [
    (p([c("a", "100m", "1Mi"), c("b", "200m", "2Mi")]), 300, 3 * 2**20),
    # a regular init container bigger than the app containers dominates
    (p([c("a", "100m")], init=[c("i", "500m")]), 500, 0),
    # smaller init containers do not add up
    (p([c("a", "1")], init=[c("i1", "500m"), c("i2", "700m")]), 1000, 0),
    # a sidecar runs alongside the app containers: it adds
    (p([c("a", "1")], init=[c("s", "250m", sidecar=True)]), 1250, 0),
    # an init container after a sidecar runs beside it: 200m + 900m = 1100m < app + sidecar = 1200m
    (p([c("a", "1")], init=[c("s", "200m", sidecar=True), c("i", "900m")]), 1200, 0),
    (p([c("a", "100m")], init=[c("s", "200m", sidecar=True), c("i", "2")]), 2200, 0),
    # overhead is added on top
    (p([c("a", "100m", "10Mi")], overhead={"cpu": "50m", "memory": "1Mi"}), 150, 11 * 2**20),
])
def test_pod_requests(pod, cpu, mem):
    r = pod_requests(pod)
    assert (r.milli_cpu, r.memory) == (cpu, mem)


def test_extended_and_ephemeral():
    r = pod_requests(p([c("a", **{"nvidia.com/gpu": "2", "ephemeral-storage": "1Gi", "hugepages-2Mi": "4Mi"})]))
    assert r.scalars == {"nvidia.com/gpu": 2, "hugepages-2Mi": 4 * 2**20}
    assert r.ephemeral_storage == 2**30


def test_non_zero_defaults_only_fill_missing_requests():
    assert pod_non_zero_requests(p([c("a")])) == (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST)
    assert pod_non_zero_requests(p([c("a", "1"), c("b", mem="1Mi")])) == (1000 + 100, DEFAULT_MEMORY_REQUEST + 2**20)


@pytest.mark.parametrize("name,scalar", [
    ("nvidia.com/gpu", True), ("example.com/foo", True), ("hugepages-1Gi", True),
    ("attachable-volumes-csi-x", True), ("cpu", False), ("memory", False),
    ("kubernetes.io/something", False), ("node.kubernetes.io/x", False), ("requests.nvidia.com/gpu", False),
])
def test_scalar_resource_names(name, scalar):
    assert is_scalar_resource(name) is scalar


def test_resources_arithmetic():
    a = Resources.from_list({"cpu": "1", "memory": "1Gi", "pods": "10", "example.com/x": "3"})
    b = a.clone()
    b.add(Resources.from_list({"cpu": "500m", "example.com/x": "1"}))
    assert b.milli_cpu == 1500 and b.scalars["example.com/x"] == 4
    assert a.milli_cpu == 1000 and a.scalars["example.com/x"] == 3
    b.add(Resources.from_list({"cpu": "500m", "example.com/x": "1"}), -1)
    assert b == a
