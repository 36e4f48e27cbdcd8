"""RBAC: roles and bindings decide, reviews tell the truth, nobody escalates, defaults are in place."""

from __future__ import annotations

from pathlib import Path

from test_auth_helpers import RBAC, AuthServer, auth_server, binding, role  # noqa: F401

from skiff.apiserver.auth.attributes import Attributes
from skiff.apiserver.auth.rules import Rule, uncovered
from skiff.apiserver.auth.user import UserInfo

AUTHZ = "/apis/authorization.k8s.io/v1"
FOO = {"kind": "ServiceAccount", "name": "foo", "namespace": "default"}
FOO_USER = "system:serviceaccount:default:foo"


def as_foo() -> dict[str, str]:
    return {"Impersonate-User": FOO_USER}


async def grant(server: AuthServer, rules: list[dict[str, object]], namespace: str = "default",
                subject: dict[str, str] = FOO, name: str = "r") -> None:
    admin = server.client("admin")
    kind = "Role" if namespace else "ClusterRole"
    assert (await admin.post(f"{RBAC}/{'namespaces/' + namespace + '/roles' if namespace else 'clusterroles'}",
                             role(name, rules, namespace))).status == 201
    path = f"{RBAC}/namespaces/{namespace}/rolebindings" if namespace else f"{RBAC}/clusterrolebindings"
    await server.settled(await admin.post(path, binding(name, kind, name, [subject], namespace)))


async def test_role_binding_grants_within_its_namespace(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await admin.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    assert (await admin.get("/api/v1/namespaces/default/pods", headers=as_foo())).status == 403
    await grant(auth_server, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    assert (await admin.get("/api/v1/namespaces/default/pods", headers=as_foo())).status == 200
    other = await admin.get("/api/v1/namespaces/other/pods", headers=as_foo())
    assert other.status == 403
    assert other.body["message"] == (f'pods is forbidden: User "{FOO_USER}" cannot list resource "pods" '
                                     f'in API group "" in the namespace "other"')
    everywhere = await admin.get("/api/v1/pods", headers=as_foo())
    assert everywhere.body["message"].endswith('cannot list resource "pods" in API group "" at the cluster scope')
    log = await admin.get("/api/v1/namespaces/default/pods/web/log", headers=as_foo())
    assert log.status == 403
    assert log.body["message"] == (f'pods "web" is forbidden: User "{FOO_USER}" cannot get resource '
                                   f'"pods/log" in API group "" in the namespace "default"')
    assert log.body["details"] == {"name": "web", "kind": "pods"}
    watch = await admin.get("/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1", headers=as_foo())
    assert watch.status == 403 and "cannot watch resource" in watch.body["message"]


async def test_resource_names_and_field_selector(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await admin.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "app"}, "data": {}})
    await grant(auth_server, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"],
                               "resourceNames": ["app"]}])
    assert (await admin.get("/api/v1/namespaces/default/configmaps/app", headers=as_foo())).status == 200
    assert (await admin.get("/api/v1/namespaces/default/configmaps/db", headers=as_foo())).status == 403
    assert (await admin.get("/api/v1/namespaces/default/configmaps", headers=as_foo())).status == 403
    one = "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dapp"
    assert (await admin.get(one, headers=as_foo())).status == 200


async def test_api_groups_wildcards_and_non_resource_urls(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await grant(auth_server, [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["list"]},
                              {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}], namespace="")
    assert (await admin.get("/apis/apps/v1/deployments", headers=as_foo())).status == 200
    assert (await admin.get("/apis/batch/v1/jobs", headers=as_foo())).status == 403
    # allowed through to the handler (which has no such document) rather than stopped by RBAC
    assert (await admin.get("/logs/kube.log", headers=as_foo())).status == 404
    assert (await admin.get("/other", headers=as_foo())).status == 403


async def test_access_reviews_answer_truthfully(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await grant(auth_server, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    ssar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}}
    reply = await admin.post(f"{AUTHZ}/selfsubjectaccessreviews", ssar, headers=as_foo())
    assert reply.body["status"]["allowed"] is True
    assert reply.body["status"]["reason"] == ('RBAC: allowed by RoleBinding "r" of Role "r" to '
                                              'ServiceAccount "default/foo" in namespace "default"')
    ssar["spec"]["resourceAttributes"]["resource"] = "secrets"
    reply = await admin.post(f"{AUTHZ}/selfsubjectaccessreviews", ssar, headers=as_foo())
    assert reply.body["status"] == {"allowed": False}
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": FOO_USER, "groups": ["system:serviceaccounts"],
                    "resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}}}
    assert (await admin.post(f"{AUTHZ}/subjectaccessreviews", sar)).body["status"]["allowed"] is True
    lsar = {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "kube-system"},
            "spec": {"user": FOO_USER, "resourceAttributes": {"namespace": "kube-system", "verb": "get",
                                                              "resource": "pods"}}}
    reply = await admin.post(f"{AUTHZ}/namespaces/kube-system/localsubjectaccessreviews", lsar)
    assert reply.body["status"]["allowed"] is False
    # the requester itself needs the right to ask about others
    denied = await admin.post(f"{AUTHZ}/subjectaccessreviews", sar, headers=as_foo())
    assert denied.status == 403
    ssrr = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "default"}}
    status = (await admin.post(f"{AUTHZ}/selfsubjectrulesreviews", ssrr, headers=as_foo())).body["status"]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in status["resourceRules"]
    assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]} \
        in status["nonResourceRules"]
    assert status["incomplete"] is False


async def test_binding_to_a_missing_role_is_reported(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await auth_server.settled(await admin.post(f"{RBAC}/namespaces/default/rolebindings", binding(
        "dangling", "Role", "nope", [FOO])))
    reply = await admin.get("/api/v1/namespaces/default/pods", headers=as_foo())
    assert reply.body["message"].endswith(
        ': RBAC: role.rbac.authorization.k8s.io "nope" not found')


async def test_no_escalation_through_roles_or_bindings(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    # foo may manage roles and bindings in default (not "*": that would include escalate and
    # bind), and read pods there
    await grant(auth_server, [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
         "verbs": ["create", "get", "list", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}], name="manager")
    ok = await admin.post(f"{RBAC}/namespaces/default/roles", role("pods", [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]), headers=as_foo())
    assert ok.status == 201
    too_much = await admin.post(f"{RBAC}/namespaces/default/roles", role("secrets", [
        {"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get"]}]), headers=as_foo())
    assert too_much.status == 403
    assert too_much.body["message"] == (
        'roles.rbac.authorization.k8s.io "secrets" is forbidden: user "system:serviceaccount:default:foo" '
        '(groups=["system:serviceaccounts" "system:serviceaccounts:default" "system:authenticated"]) is '
        'attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
    # binding the admin ClusterRole would grant more than foo holds
    bind_admin = binding("take-over", "ClusterRole", "admin", [{"kind": "User", "name": "mallory"}])
    denied = await admin.post(f"{RBAC}/namespaces/default/rolebindings", bind_admin, headers=as_foo())
    assert denied.status == 403 and "not currently held" in denied.body["message"]
    # binding a role whose rules foo holds is fine
    bind_pods = binding("pods", "Role", "pods", [{"kind": "User", "name": "mallory"}])
    assert (await admin.post(f"{RBAC}/namespaces/default/rolebindings", bind_pods,
                             headers=as_foo())).status == 201
    # with "bind" on the admin ClusterRole (and "escalate" on roles) both are allowed
    await grant(auth_server, [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
         "resourceNames": ["admin"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}],
        name="binder")
    assert (await admin.post(f"{RBAC}/namespaces/default/rolebindings", bind_admin,
                             headers=as_foo())).status == 201
    assert (await admin.post(f"{RBAC}/namespaces/default/roles", role("secrets", [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]), headers=as_foo())).status == 201


async def test_aggregated_cluster_roles_follow_their_sources(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    extra = role("crontabs-view", [{"apiGroups": ["stable.example.com"], "resources": ["crontabs"],
                                    "verbs": ["get", "list", "watch"]}], namespace="")
    extra["metadata"]["labels"] = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    await admin.post(f"{RBAC}/clusterroles", extra)
    gate = auth_server.gate
    assert gate is not None
    await gate.aggregator.sync()  # converge now (the background sync does the same)
    for _ in range(5):
        if not await gate.aggregator.sync():
            break
    wanted = extra["rules"][0]
    for name in ("view", "edit", "admin"):
        rules = (await admin.get(f"{RBAC}/clusterroles/{name}")).body["rules"]
        assert wanted in rules, name
    view = (await admin.get(f"{RBAC}/clusterroles/view")).body["rules"]
    assert any("pods/log" in r.get("resources", []) for r in view)
    edit = (await admin.get(f"{RBAC}/clusterroles/edit")).body["rules"]
    assert any("pods/exec" in r.get("resources", []) and "create" in r["verbs"] for r in edit)
    assert not any("pods/exec" in r.get("resources", []) for r in view)


async def test_default_policy_is_reconciled_on_restart(tmp_path: Path) -> None:
    server = AuthServer(tmp_path)
    await server.start()
    try:
        admin = server.client("admin")
        basic = (await admin.get(f"{RBAC}/clusterroles/system:basic-user")).body
        assert basic["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
        assert basic["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
        basic["rules"] = basic["rules"][:1]
        assert (await admin.request("PUT", f"{RBAC}/clusterroles/system:basic-user", basic)).status == 200
        discovery = (await admin.get(f"{RBAC}/clusterroles/system:discovery")).body
        discovery["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
        discovery["rules"] = [{"nonResourceURLs": ["/version"], "verbs": ["get"]}]
        assert (await admin.request("PUT", f"{RBAC}/clusterroles/system:discovery", discovery)).status == 200
        masters = (await admin.get(f"{RBAC}/clusterrolebindings/cluster-admin")).body
        assert masters["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                        "name": "system:masters"}]
    finally:
        await server.close()
    again = AuthServer(tmp_path)
    await again.start()
    try:
        admin = again.client("admin")
        basic = (await admin.get(f"{RBAC}/clusterroles/system:basic-user")).body
        assert len(basic["rules"]) == 2  # the removed rule is back
        discovery = (await admin.get(f"{RBAC}/clusterroles/system:discovery")).body
        assert discovery["rules"] == [{"nonResourceURLs": ["/version"], "verbs": ["get"]}]  # left alone
    finally:
        await again.close()


async def test_pods_get_the_service_account_token_volume(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    pod = {"metadata": {"name": "web"}, "spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "c", "image": "busybox"},
                       {"name": "own", "image": "busybox", "volumeMounts": [
                           {"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
        "volumes": [{"name": "mine", "emptyDir": {}}]}}
    created = (await admin.post("/api/v1/namespaces/default/pods", pod)).body
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default"
    volume = spec["volumes"][-1]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
    assert volume["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": volume["name"], "readOnly": True,
             "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert mount not in spec["containers"][1]["volumeMounts"]
    pod2 = {"metadata": {"name": "quiet"}, "spec": {"automountServiceAccountToken": False,
                                                    "containers": [{"name": "c", "image": "busybox"}]}}
    quiet = (await admin.post("/api/v1/namespaces/default/pods", pod2)).body["spec"]
    assert "volumes" not in quiet and "volumeMounts" not in quiet["containers"][0]


def test_rule_matching_and_coverage() -> None:
    user = UserInfo("u")

    def attrs(verb: str, resource: str, sub: str = "", group: str = "", name: str = "") -> Attributes:
        return Attributes(user, verb, True, "default", group, "v1", resource, sub, name)
    scale = Rule({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["*"]})
    assert scale.allows(attrs("patch", "deployments", "scale", "apps"))
    assert not scale.allows(attrs("patch", "deployments", "", "apps"))
    pods = Rule({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})
    assert not pods.allows(attrs("get", "pods", "log"))  # a subresource must be named
    anything = Rule({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
    assert anything.allows(attrs("delete", "pods", "log"))
    urls = Rule({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]})
    assert urls.allows(Attributes(user, "get", False, path="/apis/apps"))
    assert not urls.allows(Attributes(user, "get", False, path="/api"))
    # coverage: "*" covers everything, names narrow, verbs must all be held
    assert not uncovered([anything], [pods, scale])
    named = Rule({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]})
    assert not uncovered([named], [Rule({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"],
                                         "resourceNames": ["a"]})])
    assert uncovered([named], [pods])
    missing = uncovered([pods], [Rule({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]})])
    assert [m.to_api() for m in missing] == [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]
