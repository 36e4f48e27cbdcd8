"""CustomResourceDefinitions, as a user drives them with the real kubectl and the
official Python client: a definition makes the API server serve a new kind, whose
objects then behave as built-in ones do (tables, short names, `get all`, explain,
scale, status, watch, namespace deletion) and are checked against the schema.

Definitions are cluster-wide, so each test defines its own group (``unique``);
the example in examples/custom-resources is used by one test only.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
import yaml

from e2e_support import REPO, LineReader, SkiffProcess, table, unique

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples" / "custom-resources"


def definition(group: str, *, kind: str = "Gadget", plural: str = "gadgets", scope: str = "Namespaced",
               versions: list[dict] | None = None, short: list[str] | None = None) -> dict:
    schema = {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "colour": {"type": "string", "enum": ["red", "blue"], "default": "red"}}},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope,
                 "names": {"kind": kind, "plural": plural, **({"shortNames": short} if short else {})},
                 "versions": versions or [{"name": "v1", "served": True, "storage": True, "schema": schema,
                                           "subresources": {"status": {}}}]},
    }


def install(cluster: SkiffProcess, crd: dict) -> str:
    """Create ``crd`` and wait until it is established; returns its name."""
    cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
    name = crd["metadata"]["name"]
    cluster.kubectl("wait", "--for=condition=established", f"crd/{name}", "--timeout=20s")
    return name


@pytest.fixture
def gadgets(cluster: SkiffProcess) -> Iterator[str]:
    """A fresh group serving namespaced ``gadgets`` (spec.size 1..10 required, spec.colour
    red|blue defaulting to red, a status subresource); yields the group.  Other tests' groups
    serve ``gadgets`` too, so commands name the resource with its group (``gadgets.<group>``)."""
    group = unique("e2e") + ".example.com"
    name = install(cluster, definition(group))
    try:
        yield group
    finally:
        cluster.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=false", check=False)


def gadget(group: str, name: str, **spec: object) -> str:
    return json.dumps({"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": name},
                       "spec": spec})


def test_the_example_definition_serves_backups_like_a_built_in_kind(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("apply", "-f", str(EXAMPLES / "backup-crd.yaml"))
    try:
        cluster.kubectl("wait", "--for=condition=established", "crd/backups.example.com", "--timeout=20s")
        assert "backup.example.com/nightly created" in cluster.kubectl(
            "apply", "-n", ns, "-f", str(EXAMPLES / "backup.yaml")).stdout

        header, rows = table(cluster.kubectl("get", "backups", "-n", ns).stdout)
        assert header == ["NAME", "SCHEDULE", "TARGET", "KEEP", "LAST RUN", "AGE"]
        assert rows[0][:4] == ["nightly", "0 3 * * *", "db-data", "7"]  # keep: the schema's default
        header, rows = table(cluster.kubectl("get", "bk", "-n", ns, "-o", "wide").stdout)
        assert header[4] == "MODE" and rows[0][4] == "full"  # a priority-1 column
        assert "backup.example.com/nightly" in cluster.kubectl("get", "all", "-n", ns).stdout

        explained = cluster.kubectl("explain", "backup.spec").stdout
        assert "schedule\t<string> -required-" in explained
        assert "how many backups to keep" in explained

        cluster.kubectl("scale", "-n", ns, "backup/nightly", "--replicas=3")
        assert cluster.get_json("backup", "nightly", "-n", ns)["spec"]["replicas"] == 3

        crd = cluster.get_json("crd", "backups.example.com")
        conditions = {c["type"]: (c["status"], c["reason"]) for c in crd["status"]["conditions"]}
        assert conditions == {"NamesAccepted": ("True", "NoConflicts"),
                              "Established": ("True", "InitialNamesAccepted")}
        assert crd["status"]["acceptedNames"]["shortNames"] == ["bk"]
        assert crd["status"]["storedVersions"] == ["v1"]
    finally:
        cluster.kubectl("delete", "-f", str(EXAMPLES / "backup-crd.yaml"), "--ignore-not-found", check=False)


def test_the_schema_prunes_defaults_and_validates(cluster: SkiffProcess, ns: str, gadgets: str) -> None:
    strict = cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g1", size=3, shape="round"),
                             check=False)
    assert strict.returncode != 0
    assert 'Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: ' \
           'unknown field "spec.shape"' in strict.stderr

    warned = cluster.kubectl("create", "-n", ns, "--validate=warn", "-f", "-",
                             input=gadget(gadgets, "g1", size=3, shape="round"))
    assert 'unknown field "spec.shape"' in warned.stderr
    assert cluster.get_json(f"gadget.{gadgets}", "g1", "-n", ns)["spec"] == {"size": 3, "colour": "red"}

    bad = cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g2", size=11, colour="pink"),
                          check=False)
    assert bad.returncode != 0
    assert 'The Gadget "g2" is invalid:' in bad.stderr
    assert "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10" in bad.stderr
    assert 'spec.colour: Unsupported value: "pink": supported values: "red", "blue"' in bad.stderr

    missing = cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g3"), check=False)
    assert "spec.size: Required value" in missing.stderr
    wrong_type = cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g4", size="big"),
                                 check=False)
    assert 'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"' \
        in wrong_type.stderr
    assert [i["metadata"]["name"] for i in cluster.get_json(f"gadgets.{gadgets}", "-n", ns)["items"]] == ["g1"]


def test_status_is_written_through_its_subresource_only(cluster: SkiffProcess, ns: str, gadgets: str) -> None:
    cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g", size=2))
    cluster.kubectl("patch", "-n", ns, f"gadget.{gadgets}", "g", "--type=merge",
                    "-p", '{"spec":{"size":4},"status":{"phase":"Ignored"}}')
    obj = cluster.get_json(f"gadget.{gadgets}", "g", "-n", ns)
    assert obj["spec"]["size"] == 4 and "status" not in obj
    assert obj["metadata"]["generation"] == 2

    cluster.kubectl("patch", "-n", ns, f"gadget.{gadgets}", "g", "--subresource=status", "--type=merge",
                    "-p", '{"spec":{"size":9},"status":{"phase":"Ready"}}')
    obj = cluster.get_json(f"gadget.{gadgets}", "g", "-n", ns)
    assert obj["status"] == {"phase": "Ready"} and obj["spec"]["size"] == 4
    assert obj["metadata"]["generation"] == 2  # status writes do not move the generation


def test_strategic_merge_patch_is_refused_as_for_any_custom_resource(cluster: SkiffProcess, ns: str,
                                                                     gadgets: str) -> None:
    cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g", size=2))
    res = cluster.kubectl("patch", "-n", ns, f"gadget.{gadgets}", "g", "-p", '{"spec":{"size":5}}', check=False)
    assert res.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in res.stderr
    assert "accepted media types include: application/json-patch+json, application/merge-patch+json, " \
           "application/apply-patch+yaml" in res.stderr
    cluster.kubectl("label", "-n", ns, f"gadget.{gadgets}", "g", "tier=gold")  # merge patches work
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-n", ns, "-f", "-",
                    input=gadget(gadgets, "g", size=6))  # kubectl create owns spec.size: take it
    obj = cluster.get_json(f"gadget.{gadgets}", "g", "-n", ns)
    assert obj["spec"]["size"] == 6 and obj["metadata"]["labels"] == {"tier": "gold"}


def test_every_served_version_reads_the_same_objects(cluster: SkiffProcess) -> None:
    group = unique("e2e") + ".example.com"
    open_schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    scale = {"scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}
    crd = definition(group, kind="Dial", plural="dials", scope="Cluster", versions=[
        {"name": "v1beta1", "served": True, "storage": False, "schema": open_schema, "subresources": scale},
        {"name": "v1", "served": True, "storage": True, "schema": open_schema, "subresources": scale}])
    name = install(cluster, crd)
    try:
        cluster.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": f"{group}/v1beta1", "kind": "Dial", "metadata": {"name": "d"}, "spec": {"x": 1}}))
        assert cluster.get_json(f"dials.v1.{group}", "d")["apiVersion"] == f"{group}/v1"
        assert cluster.get_json(f"dials.v1beta1.{group}", "d")["apiVersion"] == f"{group}/v1beta1"
        cluster.kubectl("scale", f"dials.v1beta1.{group}", "d", "--replicas=4")  # through the older version
        assert cluster.get_json(f"dials.v1.{group}", "d")["spec"] == {"x": 1, "replicas": 4}
        group_doc = json.loads(cluster.kubectl("get", "--raw", f"/apis/{group}").stdout)
        assert group_doc["preferredVersion"]["version"] == "v1"
        assert [v["version"] for v in group_doc["versions"]] == ["v1", "v1beta1"]
    finally:
        cluster.kubectl("delete", "crd", name, "--wait=false", check=False)


def test_a_name_taken_in_the_group_is_not_accepted(cluster: SkiffProcess) -> None:
    group = unique("e2e") + ".example.com"
    first = install(cluster, definition(group, kind="Gadget", plural="gadgets", short=["gd"]))
    second = definition(group, kind="Gadget", plural="widgets")
    second["spec"]["names"]["listKind"] = "WidgetList"  # only the kind is taken
    try:
        cluster.kubectl("create", "-f", "-", input=json.dumps(second))
        cluster.kubectl("wait", "--for=condition=NamesAccepted=False", "crd/widgets." + group, "--timeout=20s")
        crd = cluster.get_json("crd", "widgets." + group)
        conditions = {c["type"]: c for c in crd["status"]["conditions"]}
        assert conditions["NamesAccepted"]["reason"] == "KindConflict"
        assert conditions["NamesAccepted"]["message"] == '"Gadget" is already in use'
        assert (conditions["Established"]["status"], conditions["Established"]["reason"]) == ("False", "NotAccepted")
        resources = cluster.kubectl("api-resources", f"--api-group={group}", "-o", "name").stdout.split()
        assert resources == [f"gadgets.{group}"]
    finally:
        cluster.kubectl("delete", "crd", first, "widgets." + group, "--wait=false", check=False)


def test_an_invalid_definition_is_refused(cluster: SkiffProcess) -> None:
    crd = definition("shop.example.com")
    crd["metadata"]["name"] = "wrong.shop.example.com"
    crd["spec"]["versions"][0]["storage"] = False
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(crd), check=False)
    assert res.returncode != 0
    assert 'The CustomResourceDefinition "wrong.shop.example.com" is invalid:' in res.stderr
    assert 'metadata.name: Invalid value: "wrong.shop.example.com": must be spec.names.plural+"."+spec.group' \
        in res.stderr
    assert "must have exactly one version marked as storage version" in res.stderr


def test_deleting_a_definition_deletes_its_objects_first(cluster: SkiffProcess, ns: str, gadgets: str) -> None:
    cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "plain", size=1))
    held = json.loads(gadget(gadgets, "held", size=1))
    held["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(held))

    cluster.kubectl("delete", "crd", f"gadgets.{gadgets}", "--wait=false")
    cluster.kubectl("wait", "--for=condition=Terminating", f"crd/gadgets.{gadgets}", "--timeout=20s")
    cluster.kubectl("wait", "--for=delete", "-n", ns, f"gadget.{gadgets}/plain", "--timeout=20s")
    refused = cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "late", size=1), check=False)
    assert "create not allowed while custom resource definition is terminating" in refused.stderr
    crd = cluster.get_json("crd", f"gadgets.{gadgets}")
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]

    cluster.kubectl("patch", "-n", ns, f"gadget.{gadgets}", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    cluster.kubectl("wait", "--for=delete", f"crd/gadgets.{gadgets}", "--timeout=20s")
    gone = cluster.kubectl("get", "--raw", f"/apis/{gadgets}/v1/gadgets", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_deleting_a_namespace_deletes_its_custom_objects(cluster: SkiffProcess, gadgets: str) -> None:
    space = unique("e2e-crd-ns")
    cluster.kubectl("create", "namespace", space)
    cluster.kubectl("create", "-n", space, "-f", "-", input=gadget(gadgets, "g", size=1))
    cluster.kubectl("delete", "namespace", space, "--timeout=60s")
    assert cluster.get_json(f"gadgets.{gadgets}", "-A")["items"] == []


def test_the_python_client_creates_lists_and_watches_custom_objects(cluster: SkiffProcess, ns: str,
                                                                   gadgets: str) -> None:
    from kubernetes import client, watch

    with cluster.api_client() as api_client:
        api = client.CustomObjectsApi(api_client)
        created = api.create_namespaced_custom_object(gadgets, "v1", ns, "gadgets",
                                                      json.loads(gadget(gadgets, "py", size=2)))
        assert created["spec"] == {"size": 2, "colour": "red"}
        listed = api.list_namespaced_custom_object(gadgets, "v1", ns, "gadgets")
        rv = listed["metadata"]["resourceVersion"]
        assert [i["metadata"]["name"] for i in listed["items"]] == ["py"]

        api.patch_namespaced_custom_object(gadgets, "v1", ns, "gadgets", "py", {"spec": {"size": 7}})
        stream = watch.Watch().stream(api.list_namespaced_custom_object, gadgets, "v1", ns, "gadgets",
                                      resource_version=rv, timeout_seconds=20)
        event = next(stream)
        assert (event["type"], event["object"]["spec"]["size"]) == ("MODIFIED", 7)

        with pytest.raises(client.ApiException) as err:
            api.create_namespaced_custom_object(gadgets, "v1", ns, "gadgets",
                                                json.loads(gadget(gadgets, "bad", size=0)))
        assert err.value.status == 422
        assert json.loads(err.value.body)["details"]["causes"][0]["field"] == "spec.size"

        names = [c.metadata.name for c in client.ApiextensionsV1Api(api_client)
                 .list_custom_resource_definition().items]
        assert f"gadgets.{gadgets}" in names


def test_kubectl_get_watch_follows_custom_objects(cluster: SkiffProcess, ns: str, gadgets: str) -> None:
    watcher = cluster.kubectl_popen("get", f"gadgets.{gadgets}", "-n", ns, "-w", "-o", "name")
    reader = LineReader(watcher)
    try:
        cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "seen", size=1))
        reader.wait_for(lambda out: "gadget." + gadgets + "/seen" in out)
    finally:
        reader.stop()


def test_definitions_and_objects_survive_a_restart(start_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = start_cluster()
    cluster.kubectl("apply", "-f", str(EXAMPLES / "backup-crd.yaml"))
    cluster.kubectl("wait", "--for=condition=established", "crd/backups.example.com", "--timeout=20s")
    cluster.kubectl("apply", "-f", str(EXAMPLES / "backup.yaml"))
    cluster.restart()
    header, rows = table(cluster.kubectl("get", "backups").stdout)
    assert [r[0] for r in rows] == ["nightly"]
    manifest = yaml.safe_load(cluster.kubectl("get", "backup", "nightly", "-o", "yaml").stdout)
    assert manifest["spec"]["keep"] == 7


def test_the_garbage_collector_deletes_what_a_custom_object_owns(cluster: SkiffProcess, ns: str,
                                                                  gadgets: str) -> None:
    owner = yaml.safe_load(cluster.kubectl("create", "-n", ns, "-f", "-", "-o", "yaml",
                                           input=gadget(gadgets, "owner", size=1)).stdout)
    owned = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned", "ownerReferences": [
        {"apiVersion": f"{gadgets}/v1", "kind": "Gadget", "name": "owner", "uid": owner["metadata"]["uid"]}]}}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(owned))
    cluster.kubectl("delete", "-n", ns, f"gadget.{gadgets}", "owner")
    cluster.kubectl("wait", "--for=delete", "-n", ns, "configmap/owned", "--timeout=20s")


def test_selectable_fields_filter_with_field_selectors(cluster: SkiffProcess, ns: str) -> None:
    group = unique("e2e") + ".example.com"
    crd = definition(group)
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.colour"}]
    name = install(cluster, crd)
    try:
        for obj, colour in (("a", "red"), ("b", "blue"), ("c", "blue")):
            cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(group, obj, size=1, colour=colour))
        out = cluster.kubectl("get", f"gadgets.{group}", "-n", ns, "--field-selector", "spec.colour=blue",
                              "-o", "name").stdout.split()
        assert out == [f"gadget.{group}/b", f"gadget.{group}/c"]
        bad = cluster.kubectl("get", f"gadgets.{group}", "-n", ns, "--field-selector", "spec.size=1",
                              check=False)
        assert bad.returncode != 0 and "field label not supported: spec.size" in bad.stderr
    finally:
        cluster.kubectl("delete", "crd", name, "--wait=false", check=False)


def test_a_changed_definition_is_served_at_once(cluster: SkiffProcess, ns: str, gadgets: str) -> None:
    crd = f"gadgets.{gadgets}"
    cluster.kubectl("patch", "crd", crd, "--type=json", "-p", json.dumps([
        {"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/shape",
         "value": {"type": "string"}},
        {"op": "add", "path": "/spec/versions/0/additionalPrinterColumns",
         "value": [{"name": "Shape", "type": "string", "jsonPath": ".spec.shape"}]}]))
    # no waiting: the request after the write finds the new schema and columns
    cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g", size=1, shape="round"))
    header, rows = table(cluster.kubectl("get", crd, "-n", ns).stdout)
    assert header == ["NAME", "SHAPE"] and rows == [["g", "round"]]


def test_watches_of_a_deleted_definitions_kind_end(cluster: SkiffProcess, ns: str, gadgets: str) -> None:
    import threading

    from kubernetes import client, watch

    cluster.kubectl("create", "-n", ns, "-f", "-", input=gadget(gadgets, "g", size=1))
    seen: list[str] = []
    with cluster.api_client() as api_client:
        api = client.CustomObjectsApi(api_client)
        rv = api.list_namespaced_custom_object(gadgets, "v1", ns, "gadgets")["metadata"]["resourceVersion"]

        def follow() -> None:
            for event in watch.Watch().stream(api.list_namespaced_custom_object, gadgets, "v1", ns, "gadgets",
                                              resource_version=rv, timeout_seconds=120):
                seen.append(event["type"])

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        cluster.kubectl("delete", "crd", f"gadgets.{gadgets}", "--timeout=30s")
        follower.join(30)
        assert not follower.is_alive(), "the watch did not end with its kind"
    assert seen == ["DELETED"]  # the object went first, then the stream ended
