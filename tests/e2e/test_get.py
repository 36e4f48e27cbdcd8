"""`kubectl get`: the columns Kubernetes v1.32 prints for every served kind, wide
columns, -A, label and field selectors, output formats, `get all`, short names and
`get -w`.

The expected headers are facts of Kubernetes' table printers (v1.32); kubectl prints
the server's column names upper-cased.  Kinds without a printer of their own (Role,
ClusterRole, LimitRange) get the default "NAME  CREATED AT".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterator

import pytest
import yaml

from e2e_support import LineReader, SkiffProcess, await_condition, render, table, unique

TEMPLATE_WIDE = ["CONTAINERS", "IMAGES", "SELECTOR"]
EVENT_HEADER = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
EVENT_WIDE = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE",
              "FIRST SEEN", "COUNT", "NAME"]


@dataclass(frozen=True)
class Kind:
    resource: str  # what the user types after `kubectl get`
    name: str  # object name; {ns}, {sfx} and {node} are filled in
    header: list[str]
    wide_extra: list[str]  # columns -o wide adds (priority > 0)
    namespaced: bool = True
    short: str = ""  # a short name from discovery
    as_name: str = ""  # `-o name` prefix, e.g. deployment.apps

    @property
    def wide(self) -> list[str]:
        if self.header == EVENT_HEADER:
            return EVENT_WIDE
        return self.header + self.wide_extra


KINDS = [
    Kind("namespaces", "{ns}", ["NAME", "STATUS", "AGE"], [], False, "ns", "namespace"),
    Kind("pods", "pod1", ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
         ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"], True, "po", "pod"),
    Kind("services", "svc1", ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
         ["SELECTOR"], True, "svc", "service"),
    Kind("endpoints", "ep1", ["NAME", "ENDPOINTS", "AGE"], [], True, "ep", "endpoints"),
    Kind("configmaps", "cm1", ["NAME", "DATA", "AGE"], [], True, "cm", "configmap"),
    Kind("secrets", "secret1", ["NAME", "TYPE", "DATA", "AGE"], [], True, "", "secret"),
    Kind("serviceaccounts", "sa1", ["NAME", "SECRETS", "AGE"], [], True, "sa", "serviceaccount"),
    Kind("events", "ev1", EVENT_HEADER, [], True, "ev", "event"),
    Kind("nodes", "{node}", ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
         ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
         False, "no", "node"),
    Kind("replicationcontrollers", "rc1", ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
         TEMPLATE_WIDE, True, "rc", "replicationcontroller"),
    Kind("persistentvolumes", "pv-{sfx}",
         ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM",
          "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"],
         ["VOLUMEMODE"], False, "pv", "persistentvolume"),
    Kind("persistentvolumeclaims", "pvc1",
         ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
          "VOLUMEATTRIBUTESCLASS", "AGE"],
         ["VOLUMEMODE"], True, "pvc", "persistentvolumeclaim"),
    Kind("limitranges", "lr1", ["NAME", "CREATED AT"], [], True, "limits", "limitrange"),
    Kind("resourcequotas", "rq1", ["NAME", "AGE", "REQUEST", "LIMIT"], [], True, "quota",
         "resourcequota"),
    Kind("deployments", "deploy1", ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
         TEMPLATE_WIDE, True, "deploy", "deployment.apps"),
    Kind("replicasets", "rs1", ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
         TEMPLATE_WIDE, True, "rs", "replicaset.apps"),
    Kind("statefulsets", "sts1", ["NAME", "READY", "AGE"], ["CONTAINERS", "IMAGES"],
         True, "sts", "statefulset.apps"),
    Kind("daemonsets", "ds1",
         ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
         TEMPLATE_WIDE, True, "ds", "daemonset.apps"),
    Kind("controllerrevisions", "cr1", ["NAME", "CONTROLLER", "REVISION", "AGE"], [], True, "",
         "controllerrevision.apps"),
    Kind("jobs", "job1", ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], TEMPLATE_WIDE,
         True, "", "job.batch"),
    Kind("cronjobs", "cj1",
         ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
         TEMPLATE_WIDE, True, "cj", "cronjob.batch"),
    Kind("ingresses", "ing1", ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], [],
         True, "ing", "ingress.networking.k8s.io"),
    Kind("ingressclasses", "ic-{sfx}", ["NAME", "CONTROLLER", "PARAMETERS", "AGE"], [],
         False, "", "ingressclass.networking.k8s.io"),
    Kind("networkpolicies", "np1", ["NAME", "POD-SELECTOR", "AGE"], [], True, "netpol",
         "networkpolicy.networking.k8s.io"),
    Kind("endpointslices", "eps1", ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], [],
         True, "", "endpointslice.discovery.k8s.io"),
    Kind("leases", "lease1", ["NAME", "HOLDER", "AGE"], [], True, "", "lease.coordination.k8s.io"),
    Kind("events.events.k8s.io", "evk1", EVENT_HEADER, [], True, "", "event.events.k8s.io"),
    Kind("storageclasses", "sc-{sfx}",
         ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"],
         [], False, "sc", "storageclass.storage.k8s.io"),
    Kind("horizontalpodautoscalers.v1.autoscaling", "hpa1",
         ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], [], True,
         "hpa", "horizontalpodautoscaler.autoscaling"),
    Kind("horizontalpodautoscalers.v2.autoscaling", "hpa2",
         ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], [], True,
         "hpa", "horizontalpodautoscaler.autoscaling"),
    Kind("poddisruptionbudgets", "pdb1",
         ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"], [], True,
         "pdb", "poddisruptionbudget.policy"),
    Kind("roles", "role1", ["NAME", "CREATED AT"], [], True, "", "role.rbac.authorization.k8s.io"),
    Kind("clusterroles", "cr-{sfx}", ["NAME", "CREATED AT"], [], False, "",
         "clusterrole.rbac.authorization.k8s.io"),
    Kind("rolebindings", "rb1", ["NAME", "ROLE", "AGE"], ["USERS", "GROUPS", "SERVICEACCOUNTS"],
         True, "", "rolebinding.rbac.authorization.k8s.io"),
    Kind("clusterrolebindings", "crb-{sfx}", ["NAME", "ROLE", "AGE"],
         ["USERS", "GROUPS", "SERVICEACCOUNTS"], False, "",
         "clusterrolebinding.rbac.authorization.k8s.io"),
    Kind("priorityclasses", "pc-{sfx}", ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
         [], False, "pc", "priorityclass.scheduling.k8s.io"),
]


@dataclass(frozen=True)
class World:
    ns: str
    sfx: str
    node: str
    failed: dict[str, str]  # object name -> why `kubectl create` refused it

    def name(self, kind: Kind) -> str:
        return kind.name.format(ns=self.ns, sfx=self.sfx, node=self.node)

    def args(self, kind: Kind, resource: str | None = None) -> list[str]:
        name = self.name(kind)
        if name in self.failed:
            pytest.fail(f"creating {kind.resource}/{name} failed: {self.failed[name]}")
        args = [resource or kind.resource, name]
        return args + (["-n", self.ns] if kind.namespaced else [])


def _create_all(cluster: SkiffProcess, manifest: str) -> dict[str, str]:
    """`kubectl create -f` the whole file; if that fails, create each document on its
    own so that only the tests of the refused kinds fail.  Returns name -> error."""
    docs = list(yaml.safe_load_all(manifest))
    res = cluster.kubectl("create", "-f", "-", input=manifest, check=False)
    if res.returncode == 0:
        assert len(res.stdout.splitlines()) == len(docs)
        return {}
    created = {line.split()[0].split("/", 1)[1] for line in res.stdout.splitlines()
               if line.endswith(" created")}
    failed = {}
    for doc in docs:
        name = doc["metadata"]["name"]
        if name in created:
            continue
        one = cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(doc), check=False)
        if one.returncode != 0:
            failed[name] = one.stderr.strip()
    return failed


@pytest.fixture(scope="module")
def world(cluster: SkiffProcess) -> Iterator[World]:
    """One object of every kind, created once with `kubectl create -f`."""
    ns, sfx = unique("e2e-kinds"), unique("k")
    manifest = render("all-kinds.yaml", ns=ns, sfx=sfx)
    cluster.kubectl("create", "namespace", ns)
    try:
        failed = _create_all(cluster, manifest)
        node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}",
                               check=False).stdout
        if not node:
            failed["{node}"] = "no Node is registered (the fake node should be)"
        yield World(ns, sfx, node or "{node}", failed)
    finally:
        cluster.kubectl("delete", "-f", "-", "--wait=false", "--ignore-not-found",
                        input=manifest, check=False)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.resource)
def test_columns(cluster: SkiffProcess, world: World, kind: Kind) -> None:
    header, rows = table(cluster.kubectl("get", *world.args(kind)).stdout)
    assert header == kind.header
    assert len(rows) == 1
    if kind.header[0] == "NAME":
        assert rows[0][0] == world.name(kind)

    header, rows = table(cluster.kubectl("get", *world.args(kind), "-o", "wide").stdout)
    assert header == kind.wide
    assert len(rows) == 1


@pytest.mark.parametrize("kind", [k for k in KINDS if k.short], ids=lambda k: k.short)
def test_short_names(cluster: SkiffProcess, world: World, kind: Kind) -> None:
    res = cluster.kubectl("get", *world.args(kind, kind.short), "-o", "name")
    assert res.stdout.strip() == f"{kind.as_name}/{world.name(kind)}"


def test_cell_values(cluster: SkiffProcess, world: World) -> None:
    """A few cells whose values are plain facts of the objects created."""
    def row(*args: str) -> list[str]:
        header, rows = table(cluster.kubectl("get", *args, "-n", world.ns).stdout)
        return rows[0]

    assert row("configmap", "cm1")[:2] == ["cm1", "1"]
    assert row("secret", "secret1")[:3] == ["secret1", "Opaque", "1"]
    assert row("deployment", "deploy1")[:4] == ["deploy1", "0/0", "0", "0"]
    assert row("replicaset", "rs1")[:4] == ["rs1", "0", "0", "0"]
    assert row("statefulset", "sts1")[:2] == ["sts1", "0/0"]
    assert row("cronjob", "cj1")[:4] == ["cj1", "0 0 1 1 *", "<none>", "True"]
    assert row("lease", "lease1")[:2] == ["lease1", "holder-1"]
    assert row("endpoints", "ep1")[:2] == ["ep1", "10.244.0.10:8080"]
    assert row("endpointslice", "eps1")[:4] == ["eps1", "IPv4", "8080", "10.244.0.10"]
    assert row("ingress", "ing1")[:4] == ["ing1", f"ic-{world.sfx}", "web.example.test", "80"]
    assert row("rolebinding", "rb1")[:2] == ["rb1", "Role/role1"]
    assert row("hpa", "hpa1")[:2] == ["hpa1", "Deployment/deploy1"]
    assert row("pdb", "pdb1")[:3] == ["pdb1", "1", "N/A"]
    svc = row("service", "svc1")
    assert svc[0] == "svc1" and svc[1] == "ClusterIP" and svc[4] == "80/TCP"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", svc[2]), svc
    event = cluster.kubectl("get", "events", "ev1", "-n", world.ns).stdout
    assert "pod/pod1" in event and "Testing" in event and "an event from the e2e suite" in event


def test_hpa_is_served_in_both_versions(cluster: SkiffProcess, world: World) -> None:
    """An HPA created as autoscaling/v1 reads as v2 with its target converted."""
    v2 = cluster.get_json("horizontalpodautoscalers.v2.autoscaling", "hpa1", "-n", world.ns)
    assert v2["apiVersion"] == "autoscaling/v2"
    metric = v2["spec"]["metrics"][0]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}
    v1 = cluster.get_json("horizontalpodautoscalers.v1.autoscaling", "hpa2", "-n", world.ns)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60


def test_all_namespaces_adds_namespace_column(cluster: SkiffProcess, world: World) -> None:
    header, rows = table(cluster.kubectl("get", "configmaps", "-A").stdout)
    assert header == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert [world.ns, "cm1", "1"] in [r[:3] for r in rows]
    header, _ = table(cluster.kubectl("get", "deployments", "--all-namespaces", "-o", "wide").stdout)
    assert header == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", *TEMPLATE_WIDE]


def test_empty_namespace_says_no_resources(cluster: SkiffProcess, ns: str) -> None:
    res = cluster.kubectl("get", "deployments", "-n", ns)
    assert res.stdout == ""
    assert res.stderr.strip() == f"No resources found in {ns} namespace."


# -- selectors and output formats ------------------------------------------------------

SELECTOR_CMS = [
    ("a", {"app": "sel", "tier": "web", "env": "prod"}),
    ("b", {"app": "sel", "tier": "db", "env": "prod"}),
    ("c", {"app": "sel", "tier": "web", "env": "dev"}),
    ("d", {"app": "sel", "tier": "cache"}),
]


@pytest.fixture
def labelled(cluster: SkiffProcess, ns: str) -> str:
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": name, "labels": labels}, "data": {"id": name}}
             for name, labels in SELECTOR_CMS]
    cluster.kubectl("create", "-n", ns, "-f", "-", input=yaml.safe_dump_all(items))
    return ns


def _names(cluster: SkiffProcess, ns: str, *args: str) -> set[str]:
    out = cluster.kubectl("get", "configmaps", "-n", ns, "-o", "name", *args).stdout
    return {line.removeprefix("configmap/") for line in out.split()}


@pytest.mark.parametrize("selector, expected", [
    ("tier=web", {"a", "c"}),
    ("tier==web,env!=dev", {"a"}),
    ("env in (prod,staging)", {"a", "b"}),
    ("app=sel,tier notin (web,db)", {"d"}),
    ("app=sel,!env", {"d"}),
    ("app=sel,env", {"a", "b", "c"}),
])
def test_label_selector(cluster: SkiffProcess, labelled: str, selector: str,
                        expected: set[str]) -> None:
    assert _names(cluster, labelled, "-l", selector) == expected


def test_field_selector(cluster: SkiffProcess, labelled: str) -> None:
    assert _names(cluster, labelled, "--field-selector", "metadata.name=b") == {"b"}
    assert _names(cluster, labelled, "-l", "app=sel",
                  "--field-selector", "metadata.name!=b") == {"a", "c", "d"}
    cluster.kubectl("create", "secret", "generic", "plain", "-n", labelled, "--from-literal=k=v")
    cluster.kubectl("create", "secret", "generic", "custom", "-n", labelled, "--from-literal=k=v",
                    "--type=example.test/custom")
    out = cluster.kubectl("get", "secrets", "-n", labelled, "-o", "name",
                          "--field-selector", "type=example.test/custom").stdout
    assert out.split() == ["secret/custom"]


def test_unsupported_field_selector_is_rejected(cluster: SkiffProcess, labelled: str) -> None:
    res = cluster.kubectl("get", "configmaps", "-n", labelled, "--field-selector", "data.n=a",
                          check=False)
    assert res.returncode == 1
    assert "Error from server (BadRequest)" in res.stderr
    assert 'field label not supported: data.n' in res.stderr


def test_output_formats(cluster: SkiffProcess, labelled: str) -> None:
    ns = labelled
    doc = yaml.safe_load(cluster.kubectl("get", "configmap", "a", "-n", ns, "-o", "yaml").stdout)
    assert doc["apiVersion"] == "v1" and doc["kind"] == "ConfigMap"
    assert doc["metadata"]["name"] == "a" and doc["metadata"]["namespace"] == ns
    assert doc["metadata"]["labels"] == dict(SELECTOR_CMS[0][1])
    assert doc["data"] == {"id": "a"}
    assert doc["metadata"]["uid"] and doc["metadata"]["resourceVersion"]

    lst = json.loads(cluster.kubectl("get", "configmaps", "-n", ns, "-l", "app=sel",
                                     "-o", "json").stdout)
    assert lst["kind"] == "List" and lst["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a", "b", "c", "d"]
    assert all(i["kind"] == "ConfigMap" for i in lst["items"])

    out = cluster.kubectl("get", "configmaps", "-n", ns, "-l", "app=sel",
                          "-o", "jsonpath={.items[*].metadata.name}").stdout
    assert out == "a b c d"

    out = cluster.kubectl("get", "configmaps", "-n", ns, "-l", "app=sel",
                          "-o", "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier").stdout
    header, rows = table(out)
    assert header == ["NAME", "TIER"]
    assert rows == [["a", "web"], ["b", "db"], ["c", "web"], ["d", "cache"]]


def test_show_labels_and_label_columns(cluster: SkiffProcess, labelled: str) -> None:
    header, rows = table(cluster.kubectl("get", "configmaps", "-n", labelled, "-l", "app=sel",
                                         "--show-labels").stdout)
    assert header == ["NAME", "DATA", "AGE", "LABELS"]
    assert rows[0][0] == "a" and rows[0][-1] == "app=sel,env=prod,tier=web"
    header, rows = table(cluster.kubectl("get", "configmaps", "-n", labelled, "-l", "app=sel",
                                         "-L", "tier,env").stdout)
    assert header == ["NAME", "DATA", "AGE", "TIER", "ENV"]
    assert [(r[0], r[-2], r[-1]) for r in rows[:3]] == [
        ("a", "web", "prod"), ("b", "db", "prod"), ("c", "web", "dev")]


# -- several kinds at once ---------------------------------------------------------------

@pytest.fixture
def web(cluster: SkiffProcess, ns: str) -> str:
    cluster.kubectl("create", "deployment", "web", "-n", ns, "--image=busybox:1.36", "--replicas=1")
    cluster.kubectl("create", "service", "clusterip", "web", "-n", ns, "--tcp=80:8080")
    cluster.kubectl("create", "configmap", "web-config", "-n", ns, "--from-literal=a=b")
    return ns


def test_get_all(cluster: SkiffProcess, web: str) -> None:
    out = cluster.kubectl("get", "all", "-n", web).stdout
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert "service/web" in names
    assert "deployment.apps/web" in names
    assert "configmap/web-config" not in names  # ConfigMaps are not in the "all" category
    header_lines = [line for line in out.splitlines() if line.startswith("NAME")]
    assert any(re.split(r" {2,}", h) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
               for h in header_lines)
    assert any(re.split(r" {2,}", h) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
               for h in header_lines)


def test_comma_separated_short_names(cluster: SkiffProcess, web: str) -> None:
    out = cluster.kubectl("get", "deploy,svc,cm", "-n", web, "-o", "name").stdout.split()
    assert "deployment.apps/web" in out
    assert "service/web" in out
    assert "configmap/web-config" in out
    # Kinds come out in the order asked for.
    assert out.index("deployment.apps/web") < out.index("service/web") < out.index("configmap/web-config")


# -- watch ---------------------------------------------------------------------------------

def test_get_watch_prints_updates(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("create", "configmap", "watched", "-n", ns, "--from-literal=a=1")
    reader = LineReader(cluster.kubectl_popen("get", "configmap", "watched", "-n", ns, "-w"))
    try:
        first = reader.wait_for(lambda line: line.startswith("watched"))
        assert re.split(r" {2,}", first)[:2] == ["watched", "1"]
        assert re.split(r" {2,}", reader.lines[0]) == ["NAME", "DATA", "AGE"]
        cluster.kubectl("patch", "configmap", "watched", "-n", ns, "--type=merge",
                        "-p", '{"data":{"b":"2","c":"3"}}')
        update = reader.wait_for(lambda line: line.startswith("watched") and line != first
                                 and re.split(r" {2,}", line)[1] == "3")
        assert re.split(r" {2,}", update)[:2] == ["watched", "3"]
    finally:
        reader.stop()


def test_component_statuses_show_the_control_plane_healthy(cluster: SkiffProcess) -> None:
    """`kubectl get cs`: deprecated in Kubernetes but still what tutorials type first."""
    result = cluster.kubectl("get", "componentstatuses")
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in result.stderr
    header, rows = table(result.stdout)
    assert header == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("scheduler", "Healthy", "ok"), ("controller-manager", "Healthy", "ok"), ("etcd-0", "Healthy", "ok")]
    one = json.loads(cluster.kubectl("get", "cs", "etcd-0", "-o", "json").stdout)
    assert one["conditions"] == [{"type": "Healthy", "status": "True", "message": "ok"}]
    missing = cluster.kubectl("get", "cs", "kube-proxy", check=False)
    assert missing.returncode == 1 and 'componentstatuses "kube-proxy" not found' in missing.stderr


def test_the_kubernetes_service_has_the_api_servers_endpoint(cluster: SkiffProcess) -> None:
    """kube-apiserver publishes its own address; without a runc node (its relay) that is
    the loopback address and port it listens on."""
    port = cluster.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
                           ).stdout.rsplit(":", 1)[1]
    expected = [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": int(port), "protocol": "TCP"}]}]
    await_condition(lambda: cluster.get_json("endpoints", "kubernetes", "-n", "default").get("subsets") == expected,
                    "the kubernetes Endpoints to name the API server")


def test_kubectl_top_on_simulated_nodes_reads_the_pods_usage_annotations(cluster: SkiffProcess, ns: str) -> None:
    """Simulated pods run nothing; their usage is simulated too (docs/autoscaling.md)."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "busy", "annotations": {"skiff.dev/fake-cpu-usage": "250m",
                                                        "skiff.dev/fake-memory-usage": "64Mi"}},
           "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/busy", "--timeout=30s")
    rows: list[list[str]] = []

    def shown() -> bool:
        nonlocal rows
        result = cluster.kubectl("top", "pod", "-n", ns, "--containers", "--no-headers", check=False)
        rows = [line.split() for line in result.stdout.splitlines()] if result.returncode == 0 else []
        return len(rows) == 2

    await_condition(shown, "simulated usage of pod busy")
    assert sorted((r[1], r[2], r[3]) for r in rows) == [("a", "250m", "64Mi"), ("b", "250m", "64Mi")]
    node = cluster.get_json("pod", "busy", "-n", ns)["spec"]["nodeName"]
    [row] = [line.split() for line in cluster.kubectl("top", "node", node, "--no-headers").stdout.splitlines()]
    assert int(row[1].rstrip("m")) >= 500                       # the node sums its pods
