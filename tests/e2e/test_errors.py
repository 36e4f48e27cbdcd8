"""What a user sees when the API server says no: kubectl's `Error from server (Reason)`
lines, exit code 1, and nothing written."""

from __future__ import annotations

import json

import yaml

from e2e_support import SkiffProcess


def test_already_exists(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("create", "deployment", "web", "-n", ns, "--image=busybox")
    res = cluster.kubectl("create", "deployment", "web", "-n", ns, "--image=busybox", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == \
        'error: failed to create deployment: deployments.apps "web" already exists'

    cluster.kubectl("create", "configmap", "c", "-n", ns)
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}}
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(doc), check=False)
    assert res.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "STDIN": ' \
           'configmaps "c" already exists' in res.stderr

    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
           "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
               "metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(doc), check=False)
    assert res.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "STDIN": ' \
           'deployments.apps "web" already exists' in res.stderr


def test_not_found(cluster: SkiffProcess, ns: str) -> None:
    res = cluster.kubectl("get", "pod", "nope", "-n", ns, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'

    res = cluster.kubectl("get", "deployment", "nope", "-n", ns, check=False)
    assert res.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'

    res = cluster.kubectl("delete", "configmap", "nope", "-n", ns, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): configmaps "nope" not found'

    # The GET itself answers `configmaps "x" not found`; kubectl 1.32 then asks for the
    # namespace and, finding none, reports that instead (as against any cluster).
    res = cluster.kubectl("get", "configmap", "x", "-n", "no-such-namespace-e2e", "-v=6", check=False)
    assert "/api/v1/namespaces/no-such-namespace-e2e/configmaps/x 404 Not Found" in res.stderr
    assert res.stderr.strip().splitlines()[-1] == \
        'Error from server (NotFound): namespaces "no-such-namespace-e2e" not found'


def test_create_in_a_missing_namespace(cluster: SkiffProcess) -> None:
    res = cluster.kubectl("create", "configmap", "x", "-n", "no-such-namespace-e2e", check=False)
    assert res.returncode == 1
    assert 'namespaces "no-such-namespace-e2e" not found' in res.stderr


def _deployment(name: str, ns: str, selector: dict, labels: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def test_invalid_deployment_selector(cluster: SkiffProcess, ns: str) -> None:
    doc = _deployment("bad", ns, {"app": "web"}, {"app": "other"})
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(doc), check=False)
    assert res.returncode == 1
    assert 'The Deployment "bad" is invalid: ' in res.stderr
    assert "spec.template.metadata.labels: Invalid value: " in res.stderr
    assert "`selector` does not match template `labels`" in res.stderr
    res = cluster.kubectl("get", "deployment", "bad", "-n", ns, check=False)
    assert res.returncode == 1


def test_invalid_pod_without_image(cluster: SkiffProcess, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": ns},
           "spec": {"containers": [{"name": "c"}]}}
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(pod), check=False)
    assert res.returncode == 1
    assert 'The Pod "x" is invalid: spec.containers[0].image: Required value' in res.stderr


def test_invalid_lists_every_cause(cluster: SkiffProcess, ns: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name", "namespace": ns},
           "spec": {"containers": [{"name": "c"}], "restartPolicy": "Sometimes"}}
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(pod), check=False)
    assert res.returncode == 1
    err = res.stderr
    assert 'The Pod "Bad_Name" is invalid: ' in err
    assert 'metadata.name: Invalid value: "Bad_Name"' in err
    assert "spec.containers[0].image: Required value" in err
    assert 'spec.restartPolicy: Unsupported value: "Sometimes"' in err


def test_conflict_on_a_stale_resource_version(cluster: SkiffProcess, ns: str, tmp_path) -> None:
    cluster.kubectl("create", "configmap", "x", "-n", ns, "--from-literal=v=1")
    stale = cluster.get_json("configmap", "x", "-n", ns)
    cluster.kubectl("patch", "configmap", "x", "-n", ns, "--type=merge", "-p", '{"data":{"v":"2"}}')

    stale["data"] = {"v": "from-stale-copy"}
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(stale))
    res = cluster.kubectl("replace", "-f", str(path), check=False)
    assert res.returncode == 1
    assert "Error from server (Conflict): " in res.stderr
    assert ('Operation cannot be fulfilled on configmaps "x": the object has been modified; '
            "please apply your changes to the latest version and try again") in res.stderr
    assert cluster.get_json("configmap", "x", "-n", ns)["data"] == {"v": "2"}

    # Without a resourceVersion, replace is unconditional.
    del stale["metadata"]["resourceVersion"]
    path.write_text(json.dumps(stale))
    assert cluster.kubectl("replace", "-f", str(path)).stdout.strip() == "configmap/x replaced"
    assert cluster.get_json("configmap", "x", "-n", ns)["data"] == {"v": "from-stale-copy"}


def _misspelled(ns: str, name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicass": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})


def test_unknown_field_is_rejected_under_strict_validation(cluster: SkiffProcess, ns: str) -> None:
    res = cluster.kubectl("apply", "-f", "-", input=_misspelled(ns, "typo"), check=False)
    assert res.returncode == 1
    assert 'strict decoding error: unknown field "spec.replicass"' in res.stderr
    assert "Error from server (BadRequest)" in res.stderr
    assert cluster.kubectl("get", "deployment", "typo", "-n", ns, check=False).returncode == 1


def test_unknown_field_with_validate_warn_succeeds_with_a_warning(cluster: SkiffProcess,
                                                                  ns: str) -> None:
    res = cluster.kubectl("apply", "--validate=warn", "-f", "-", input=_misspelled(ns, "typo"))
    assert res.stdout.strip() == "deployment.apps/typo created"
    assert 'Warning: unknown field "spec.replicass"' in res.stderr
    d = cluster.get_json("deployment", "typo", "-n", ns)
    assert d["spec"]["replicas"] == 1  # the misspelled field was dropped; the default applies
    assert "replicass" not in d["spec"]


def test_unknown_field_ignored_with_validate_false(cluster: SkiffProcess, ns: str) -> None:
    res = cluster.kubectl("apply", "--validate=false", "-f", "-", input=_misspelled(ns, "quiet"))
    assert res.stdout.strip() == "deployment.apps/quiet created"
    assert "unknown field" not in res.stderr
