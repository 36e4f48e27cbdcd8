"""Authentication: client certificates, ServiceAccount tokens (TokenRequest), anonymous, impersonation."""

from __future__ import annotations

import time

from test_auth_helpers import RBAC, AuthServer, auth_server, binding, role  # noqa: F401

from skiff.apiserver.auth.tokens import TokenInvalid, TokenSigner

SSR = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SA = "/api/v1/namespaces/default/serviceaccounts"


def token_request(**spec: object) -> dict[str, object]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


async def new_token(server: AuthServer, name: str = "foo", **spec: object) -> str:
    admin = server.client("admin")
    await admin.post(SA, {"metadata": {"name": name}})
    reply = await admin.post(f"{SA}/{name}/token", token_request(**spec))
    assert reply.status == 201, reply
    return str(reply.body["status"]["token"])


async def test_admin_certificate_is_system_masters(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    reply = await admin.post(WHOAMI, SSR)
    assert reply.status == 201
    assert reply.body["status"]["userInfo"] == {
        "username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    assert (await admin.get("/api/v1/namespaces/default/secrets")).status == 200


async def test_certificate_user_and_groups_come_from_cn_and_o(auth_server: AuthServer) -> None:
    jane = auth_server.client("jane", groups=("devs", "ops"))
    reply = await jane.post(WHOAMI, SSR)
    assert reply.body["status"]["userInfo"] == {
        "username": "jane", "groups": ["devs", "ops", "system:authenticated"]}
    denied = await jane.get("/api/v1/namespaces/default/pods")
    assert denied.status == 403
    admin = auth_server.client("admin")
    await auth_server.settled(await admin.post(f"{RBAC}/clusterrolebindings", binding(
        "devs-view", "ClusterRole", "view", [{"kind": "Group", "name": "devs"}], namespace="")))
    assert (await jane.get("/api/v1/namespaces/default/pods")).status == 200


async def test_anonymous_sees_only_public_info(auth_server: AuthServer) -> None:
    anon = auth_server.client()
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert (await anon.get(path)).status == 200, path
    reply = await anon.get("/api/v1/namespaces/default/pods")
    assert reply.status == 403
    assert reply.body["message"] == ('pods is forbidden: User "system:anonymous" cannot list resource '
                                     '"pods" in API group "" in the namespace "default"')
    discovery = await anon.get("/apis")
    assert discovery.status == 403
    assert discovery.body["message"] == 'forbidden: User "system:anonymous" cannot get path "/apis"'


async def test_service_account_token_identity(auth_server: AuthServer) -> None:
    token = await new_token(auth_server)
    sa = (await auth_server.client("admin").get(f"{SA}/foo")).body
    who = (await auth_server.client(token=token).post(WHOAMI, SSR)).body["status"]["userInfo"]
    assert who["username"] == "system:serviceaccount:default:foo"
    assert who["uid"] == sa["metadata"]["uid"]
    assert who["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                             "system:authenticated"]
    assert who["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    # discovery is open to every authenticated user (system:discovery)
    assert (await auth_server.client(token=token).get("/apis")).status == 200


async def test_token_request_defaults_and_validation(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await admin.post(SA, {"metadata": {"name": "foo"}})
    before = time.time()
    reply = await admin.post(f"{SA}/foo/token", token_request())
    assert reply.body["spec"]["expirationSeconds"] == 3600
    assert reply.body["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    expires = time.mktime(time.strptime(reply.body["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expires - time.timezone - (before + 3600)) < 5
    short = await admin.post(f"{SA}/foo/token", token_request(expirationSeconds=60))
    assert short.status == 422
    assert "may not specify a duration less than 10 minutes" in short.body["message"]
    missing = await admin.post(f"{SA}/nobody/token", token_request())
    assert missing.status == 404 and missing.body["message"] == 'serviceaccounts "nobody" not found'


async def test_invalid_token_is_401(auth_server: AuthServer) -> None:
    reply = await auth_server.client(token="not-a-token").get("/api/v1/namespaces/default/pods")
    assert reply.status == 401
    assert reply.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def test_token_of_deleted_service_account_is_rejected(auth_server: AuthServer) -> None:
    token = await new_token(auth_server)
    assert (await auth_server.client("admin").request("DELETE", f"{SA}/foo")).status == 200
    assert (await auth_server.client(token=token).post(WHOAMI, SSR)).status == 401
    # a new ServiceAccount of the same name has another uid: the old token stays invalid
    await auth_server.client("admin").post(SA, {"metadata": {"name": "foo"}})
    assert (await auth_server.client(token=token).post(WHOAMI, SSR)).status == 401


async def test_pod_bound_token_dies_with_its_pod(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    await admin.post(SA, {"metadata": {"name": "foo"}})
    created = await admin.post("/api/v1/namespaces/default/pods", {
        "metadata": {"name": "web"}, "spec": {"serviceAccountName": "foo",
                                              "containers": [{"name": "c", "image": "busybox"}]}})
    uid = created.body["metadata"]["uid"]
    wrong = await admin.post(f"{SA}/foo/token", token_request(
        boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "other"}))
    assert wrong.status == 409
    reply = await admin.post(f"{SA}/foo/token", token_request(
        boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": uid}))
    token = reply.body["status"]["token"]
    who = (await auth_server.client(token=token).post(WHOAMI, SSR)).body["status"]["userInfo"]
    assert who["extra"]["authentication.kubernetes.io/pod-name"] == ["web"]
    assert who["extra"]["authentication.kubernetes.io/pod-uid"] == [uid]
    other_sa = await admin.post(f"{SA}/default/token", token_request(
        boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"}))
    assert other_sa.status in (400, 404)
    unused = (await admin.post(f"{SA}/foo/token", token_request(
        boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"}))).body["status"]["token"]
    await admin.request("DELETE", "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0")
    assert (await admin.get("/api/v1/namespaces/default/pods/web")).status == 404
    # (a verified token is cached for a few seconds, so check one never used before)
    assert (await auth_server.client(token=unused).post(WHOAMI, SSR)).status == 401
    gone = await admin.post(f"{SA}/foo/token", token_request(
        boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"}))
    assert gone.status == 404


async def test_audiences_and_token_review(auth_server: AuthServer) -> None:
    vault_token = await new_token(auth_server, audiences=["vault"])
    assert (await auth_server.client(token=vault_token).post(WHOAMI, SSR)).status == 401
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": vault_token, "audiences": ["vault"]}}
    reply = await auth_server.client("admin").post("/apis/authentication.k8s.io/v1/tokenreviews", review)
    assert reply.status == 201
    assert reply.body["status"]["authenticated"] is True
    assert reply.body["status"]["user"]["username"] == "system:serviceaccount:default:foo"
    assert reply.body["status"]["audiences"] == ["vault"]
    review["spec"] = {"token": vault_token}  # the API's own audience: not for this token
    reply = await auth_server.client("admin").post("/apis/authentication.k8s.io/v1/tokenreviews", review)
    assert not reply.body["status"].get("authenticated")
    assert "audience" in reply.body["status"]["error"]


async def test_impersonation_needs_the_impersonate_verb(auth_server: AuthServer) -> None:
    admin = auth_server.client("admin")
    as_foo = {"Impersonate-User": "system:serviceaccount:default:foo"}
    who = (await admin.post(WHOAMI, SSR, headers=as_foo)).body["status"]["userInfo"]
    assert who == {"username": "system:serviceaccount:default:foo",
                   "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                              "system:authenticated"]}
    reply = await admin.get("/api/v1/namespaces/default/pods", headers=as_foo)
    assert reply.status == 403
    jane = auth_server.client("jane")
    reply = await jane.get("/api/v1/namespaces/default/pods", headers={"Impersonate-User": "bob"})
    assert reply.status == 403
    assert reply.body["message"] == ('users "bob" is forbidden: User "jane" cannot impersonate resource '
                                     '"users" in API group "" at the cluster scope')
    grant = role("impersonator", [{"apiGroups": [""], "resources": ["users", "groups"],
                                   "verbs": ["impersonate"], "resourceNames": ["bob", "devs"]}], namespace="")
    await admin.post(f"{RBAC}/clusterroles", grant)
    await auth_server.settled(await admin.post(f"{RBAC}/clusterrolebindings", binding(
        "jane-impersonates", "ClusterRole", "impersonator", [{"kind": "User", "name": "jane"}], namespace="")))
    headers = [("Impersonate-User", "bob"), ("Impersonate-Group", "devs")]
    who = (await jane.post(WHOAMI, SSR, headers=headers)).body["status"]["userInfo"]
    assert who == {"username": "bob", "groups": ["devs", "system:authenticated"]}
    headers.append(("Impersonate-Group", "admins"))
    denied = await jane.post(WHOAMI, SSR, headers=headers)
    assert denied.status == 403 and 'groups "admins" is forbidden' in denied.body["message"]


def test_signer_rejects_expired_foreign_and_tampered_tokens() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    now = [1000.0]
    signer = TokenSigner(ec.generate_private_key(ec.SECP256R1()), clock=lambda: now[0])
    token, exp = signer.issue("default", "foo", "uid-1", expiration_seconds=600)
    assert exp == 1600
    claims = signer.verify(token)
    assert (claims.namespace, claims.name, claims.uid) == ("default", "foo", "uid-1")
    other = TokenSigner(ec.generate_private_key(ec.SECP256R1()), clock=lambda: now[0])
    for bad in (other.issue("default", "foo", "uid-1")[0], token[:-4] + "AAAA", "a.b.c"):
        try:
            signer.verify(bad)
        except TokenInvalid:
            continue
        raise AssertionError(f"accepted {bad[:20]}")
    now[0] = 1600.0
    try:
        signer.verify(token)
    except TokenInvalid as err:
        assert "expired" in str(err)
    else:
        raise AssertionError("accepted an expired token")
