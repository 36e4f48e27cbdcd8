"""Changing and removing objects: label, annotate, patch (strategic, merge, json), edit,
scale, describe (with Events), delete with each cascade policy, wait --for=delete, and
explain."""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from e2e_support import LineReader, SkiffProcess, render, table


def _cm(cluster: SkiffProcess, ns: str, name: str) -> dict:
    return cluster.get_json("configmap", name, "-n", ns)


def test_label_add_overwrite_remove(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("create", "configmap", "x", "-n", ns, "--from-literal=a=b")
    assert cluster.kubectl("label", "configmap", "x", "-n", ns, "tier=web").stdout.strip() \
        == "configmap/x labeled"
    assert _cm(cluster, ns, "x")["metadata"]["labels"] == {"tier": "web"}

    res = cluster.kubectl("label", "configmap", "x", "-n", ns, "tier=db", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == "error: 'tier' already has a value (web), and --overwrite is false"
    assert _cm(cluster, ns, "x")["metadata"]["labels"] == {"tier": "web"}

    cluster.kubectl("label", "configmap", "x", "-n", ns, "tier=db", "--overwrite")
    assert _cm(cluster, ns, "x")["metadata"]["labels"] == {"tier": "db"}

    out = cluster.kubectl("label", "configmap", "x", "-n", ns, "tier-").stdout.strip()
    assert out == "configmap/x unlabeled"
    assert not _cm(cluster, ns, "x")["metadata"].get("labels")


def test_annotate(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("create", "configmap", "x", "-n", ns)
    out = cluster.kubectl("annotate", "configmap", "x", "-n", ns, "note=hello world",
                          "example.test/owner=team-a").stdout.strip()
    assert out == "configmap/x annotated"
    annotations = _cm(cluster, ns, "x")["metadata"]["annotations"]
    assert annotations["note"] == "hello world"
    assert annotations["example.test/owner"] == "team-a"
    cluster.kubectl("annotate", "configmap", "x", "-n", ns, "note-")
    assert "note" not in _cm(cluster, ns, "x")["metadata"]["annotations"]


@pytest.fixture
def web(cluster: SkiffProcess, ns: str, tmp_path) -> str:
    """The two-container web Deployment of web-app.yaml, in the test's namespace."""
    docs = [d for d in yaml.safe_load_all(render("web-app.yaml", ns=ns)) if d["kind"] != "Namespace"]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    return ns


def _containers(cluster: SkiffProcess, ns: str) -> dict[str, dict]:
    d = cluster.get_json("deployment", "web", "-n", ns)
    return {c["name"]: c for c in d["spec"]["template"]["spec"]["containers"]}


def test_patch_strategic_is_the_default(cluster: SkiffProcess, web: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox:1.37", "env": [{"name": "ROLE", "value": "boss"}]}]}}}}
    out = cluster.kubectl("patch", "deployment", "web", "-n", web, "-p", json.dumps(patch)).stdout.strip()
    assert out == "deployment.apps/web patched"
    containers = _containers(cluster, web)
    assert list(containers) == ["app", "sidecar"]  # merged by name, not replaced
    assert containers["app"]["image"] == "busybox:1.36"
    assert containers["sidecar"]["image"] == "busybox:1.37"
    env = {e["name"]: e for e in containers["sidecar"]["env"]}
    assert list(env) == ["PASSWORD", "ROLE"] and env["ROLE"]["value"] == "boss"

    # $patch: delete removes one element of a merged list.
    delete = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    cluster.kubectl("patch", "deployment", "web", "-n", web, "--type=strategic", "-p", json.dumps(delete))
    assert list(_containers(cluster, web)) == ["app"]

    # Once the rollout has settled nothing moves the object, so patching the same
    # deletion again changes nothing and kubectl says so.
    cluster.kubectl("rollout", "status", "deployment/web", "-n", web, "--timeout=60s")
    out = cluster.kubectl("patch", "deployment", "web", "-n", web, "-p", json.dumps(delete)).stdout.strip()
    assert out == "deployment.apps/web patched (no change)"


def test_patch_merge_replaces_lists_and_deletes_with_null(cluster: SkiffProcess, web: str) -> None:
    cluster.kubectl("create", "configmap", "m", "-n", web, "--from-literal=k1=a",
                    "--from-literal=k2=b")
    cluster.kubectl("patch", "configmap", "m", "-n", web, "--type=merge",
                    "-p", '{"data":{"k2":null,"k3":"c"},"metadata":{"labels":{"x":"y"}}}')
    cm = _cm(cluster, web, "m")
    assert cm["data"] == {"k1": "a", "k3": "c"}
    assert cm["metadata"]["labels"] == {"x": "y"}

    # A JSON merge patch replaces a list as a whole: the other container goes away.
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox:1.37"}]}}}}
    cluster.kubectl("patch", "deployment", "web", "-n", web, "--type=merge", "-p", json.dumps(patch))
    containers = _containers(cluster, web)
    assert list(containers) == ["app"]
    assert containers["app"]["image"] == "busybox:1.37"
    assert "env" not in containers["app"]


def test_patch_json(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("create", "configmap", "j", "-n", ns, "--from-literal=k=old")
    ops = [{"op": "replace", "path": "/data/k", "value": "new"},
           {"op": "add", "path": "/data/added", "value": "yes"},
           {"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}}]
    out = cluster.kubectl("patch", "configmap", "j", "-n", ns, "--type=json",
                          "-p", json.dumps(ops)).stdout.strip()
    assert out == "configmap/j patched"
    cm = _cm(cluster, ns, "j")
    assert cm["data"] == {"k": "new", "added": "yes"}
    assert cm["metadata"]["labels"] == {"patched": "json"}

    # A failing test op rejects the whole patch.
    ops = [{"op": "test", "path": "/data/k", "value": "other"},
           {"op": "remove", "path": "/data/k"}]
    res = cluster.kubectl("patch", "configmap", "j", "-n", ns, "--type=json", "-p", json.dumps(ops),
                          check=False)
    assert res.returncode == 1
    assert _cm(cluster, ns, "j")["data"] == {"k": "new", "added": "yes"}


def test_edit_with_an_editor(cluster: SkiffProcess, web: str) -> None:
    out = cluster.kubectl("edit", "deployment", "web", "-n", web,
                          env={"EDITOR": "sed -i s/replicas:\\ 2/replicas:\\ 3/"}).stdout.strip()
    assert out == "deployment.apps/web edited"
    assert cluster.get_json("deployment", "web", "-n", web)["spec"]["replicas"] == 3

    # An editor that changes nothing: kubectl says so and sends nothing.
    res = cluster.kubectl("edit", "configmap", "web-config", "-n", web, env={"EDITOR": "true"})
    assert res.stderr.strip() == "Edit cancelled, no changes made."


def test_scale(cluster: SkiffProcess, web: str) -> None:
    out = cluster.kubectl("scale", "deployment", "web", "-n", web, "--replicas=3").stdout.strip()
    assert out == "deployment.apps/web scaled"
    assert cluster.get_json("deployment", "web", "-n", web)["spec"]["replicas"] == 3
    header, rows = table(cluster.kubectl("get", "deploy", "web", "-n", web).stdout)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[0][0] == "web" and rows[0][1].endswith("/3")

    res = cluster.kubectl("scale", "deployment", "web", "-n", web, "--replicas=1",
                          "--current-replicas=2", check=False)
    assert res.returncode == 1
    assert "Expected replicas to be 2, was 3" in res.stderr


def _event_for(cluster: SkiffProcess, ns: str, obj: dict, reason: str, message: str) -> None:
    """Record an Event about obj through the official client, as a controller would."""
    from kubernetes import client

    with cluster.api_client() as api:
        meta = obj["metadata"]
        client.CoreV1Api(api).create_namespaced_event(ns, client.CoreV1Event(
            # Named as client-go's event recorder names them: <object>.<hex nanoseconds>.
            metadata=client.V1ObjectMeta(name=f"{meta['name']}.{time.time_ns():x}"),
            involved_object=client.V1ObjectReference(
                api_version=obj["apiVersion"], kind=obj["kind"], name=meta["name"],
                namespace=ns, uid=meta["uid"], resource_version=meta["resourceVersion"]),
            reason=reason, message=message, type="Normal",
            source=client.V1EventSource(component="e2e-suite"),
            first_timestamp=_now(), last_timestamp=_now(), count=1))


def _now():  # type: ignore[no-untyped-def]
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


def _events_section(describe: str) -> list[str]:
    lines = describe.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Events:"))
    return lines[start:]


def test_describe_pod_shows_its_events(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("run", "p", "-n", ns, "--image=busybox:1.36", "--labels=app=p",
                    "--", "sleep", "3600")
    pod = cluster.get_json("pod", "p", "-n", ns)
    _event_for(cluster, ns, pod, "E2ECheck", "hello from the e2e suite")
    out = cluster.kubectl("describe", "pod", "p", "-n", ns).stdout
    assert re.search(r"^Name:\s+p$", out, re.M)
    assert re.search(rf"^Namespace:\s+{ns}$", out, re.M)
    assert re.search(r"^Labels:\s+app=p$", out, re.M)
    assert re.search(r"^\s+Image:\s+busybox:1.36$", out, re.M)
    events = _events_section(out)
    assert re.split(r"\s{2,}", events[1].strip()) == ["Type", "Reason", "Age", "From", "Message"]
    mine = [line for line in events if "E2ECheck" in line]
    assert len(mine) == 1
    assert re.split(r"\s{2,}", mine[0].strip())[0] == "Normal"
    assert mine[0].rstrip().endswith("hello from the e2e suite")
    assert "e2e-suite" in mine[0]


def test_describe_deployment_shows_its_events(cluster: SkiffProcess, web: str) -> None:
    deploy = cluster.get_json("deployment", "web", "-n", web)
    _event_for(cluster, web, deploy, "E2EDeploy", "deployment event from the e2e suite")
    out = cluster.kubectl("describe", "deployment", "web", "-n", web).stdout
    assert re.search(r"^Name:\s+web$", out, re.M)
    assert re.search(r"^Selector:\s+app=web$", out, re.M)
    assert re.search(r"^Replicas:\s+2 desired \|", out, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", out, re.M)
    assert re.search(r"^\s+app:$", out, re.M) and re.search(r"^\s+sidecar:$", out, re.M)
    events = _events_section(out)
    assert any("E2EDeploy" in line and "deployment event from the e2e suite" in line
               for line in events)


# -- deletion ------------------------------------------------------------------------------

def _parent_and_child(cluster: SkiffProcess, ns: str) -> None:
    """ConfigMap "child" is owned by ConfigMap "parent" (an ownerReference with its uid)."""
    cluster.kubectl("create", "configmap", "parent", "-n", ns)
    uid = _cm(cluster, ns, "parent")["metadata"]["uid"]
    child = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "child", "namespace": ns, "ownerReferences": [
                 {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": uid}]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(child))


def _exists(cluster: SkiffProcess, ns: str, name: str) -> bool:
    res = cluster.kubectl("get", "configmap", name, "-n", ns, "-o", "name", check=False)
    if res.returncode == 0:
        return True
    assert f'configmaps "{name}" not found' in res.stderr
    return False


def test_delete_cascade_orphan_keeps_the_dependent(cluster: SkiffProcess, ns: str) -> None:
    _parent_and_child(cluster, ns)
    out = cluster.kubectl("delete", "configmap", "parent", "-n", ns, "--cascade=orphan",
                          "--timeout=20s").stdout.strip()
    assert out == 'configmap "parent" deleted'
    assert not _exists(cluster, ns, "parent")
    # The garbage collector orphans the child: it stays, without the ownerReference.
    assert _exists(cluster, ns, "child")
    assert not _cm(cluster, ns, "child")["metadata"].get("ownerReferences")


def test_delete_cascade_foreground_removes_dependents_first(cluster: SkiffProcess, ns: str) -> None:
    _parent_and_child(cluster, ns)
    out = cluster.kubectl("delete", "configmap", "parent", "-n", ns, "--cascade=foreground",
                          "--timeout=20s").stdout.strip()
    assert out == 'configmap "parent" deleted'
    # kubectl waited for the parent to be gone; foreground deletion removes it last.
    assert not _exists(cluster, ns, "child")
    assert not _exists(cluster, ns, "parent")


def test_delete_cascade_background_then_wait(cluster: SkiffProcess, ns: str) -> None:
    _parent_and_child(cluster, ns)
    out = cluster.kubectl("delete", "configmap", "parent", "-n", ns, "--cascade=background",
                          "--timeout=20s").stdout.strip()
    assert out == 'configmap "parent" deleted'
    # The child goes asynchronously; `kubectl wait` watches until it is gone.
    cluster.kubectl("wait", "--for=delete", "configmap/child", "-n", ns, "--timeout=20s")
    assert not _exists(cluster, ns, "child")


def test_wait_for_delete_of_an_object_held_by_a_finalizer(cluster: SkiffProcess, ns: str) -> None:
    held = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "namespace": ns, "finalizers": ["example.test/hold"]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(held))
    out = cluster.kubectl("delete", "configmap", "held", "-n", ns, "--wait=false").stdout.strip()
    assert out == 'configmap "held" deleted'
    cm = _cm(cluster, ns, "held")  # still there, marked for deletion
    assert cm["metadata"]["deletionTimestamp"]
    assert cm["metadata"]["finalizers"] == ["example.test/hold"]

    # -v=6 makes kubectl log each request on stderr: once its watch request has been
    # answered, the finalizer goes, and the watch must deliver the deletion.
    proc = cluster.kubectl_popen("wait", "--for=delete", "configmap/held", "-n", ns,
                                 "--timeout=30s", "-v=6")
    out, log = LineReader(proc), LineReader(proc, "stderr")
    try:
        log.wait_for(lambda line: "watch=true" in line and "configmaps" in line)
        cluster.kubectl("patch", "configmap", "held", "-n", ns, "--type=json",
                        "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        line = out.wait_for(lambda line: "condition met" in line, timeout=30)
        assert line == "configmap/held condition met"
        assert proc.wait(timeout=10) == 0
    finally:
        out.stop()
    assert not _exists(cluster, ns, "held")


# -- explain -------------------------------------------------------------------------------

def test_explain_deployment_spec(cluster: SkiffProcess) -> None:
    out = cluster.kubectl("explain", "deployment.spec").stdout
    assert re.search(r"^GROUP:\s+apps$", out, re.M)
    assert re.search(r"^KIND:\s+Deployment$", out, re.M)
    assert re.search(r"^VERSION:\s+v1$", out, re.M)
    assert re.search(r"^FIELD:\s+spec\s+<DeploymentSpec>$", out, re.M)
    assert re.search(r"^DESCRIPTION:$", out, re.M)
    assert re.search(r"^FIELDS:$", out, re.M)
    assert re.search(r"^\s+replicas\s+<integer>$", out, re.M)
    assert re.search(r"^\s+selector\s+<LabelSelector> -required-$", out, re.M)
    assert re.search(r"^\s+template\s+<PodTemplateSpec> -required-$", out, re.M)
    assert re.search(r"^\s+strategy\s+<DeploymentStrategy>$", out, re.M)


def test_explain_pod_containers(cluster: SkiffProcess) -> None:
    out = cluster.kubectl("explain", "pods.spec.containers").stdout
    assert re.search(r"^KIND:\s+Pod$", out, re.M)
    assert re.search(r"^VERSION:\s+v1$", out, re.M)
    assert re.search(r"^FIELD:\s+containers\s+<\[\]Container>$", out, re.M)
    assert re.search(r"^\s+name\s+<string> -required-$", out, re.M)
    assert re.search(r"^\s+image\s+<string>$", out, re.M)
    assert re.search(r"^\s+env\s+<\[\]EnvVar>$", out, re.M)
    assert re.search(r"^\s+ports\s+<\[\]ContainerPort>$", out, re.M)
    res = cluster.kubectl("explain", "pods.spec.nosuchfield", check=False)
    assert res.returncode == 1
    assert 'field "nosuchfield" does not exist' in res.stderr
