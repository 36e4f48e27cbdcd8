"""Admission webhooks, as a user sets them up: an HTTPS server (here in the test, on
loopback, with its own CA) named by a ValidatingWebhookConfiguration or a
MutatingWebhookConfiguration, then the real kubectl's writes are allowed, denied or
changed by it.

Each configuration's ``namespaceSelector`` names the test's own namespace, so the
shared cluster's other tests never reach these webhooks.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from e2e_support import SkiffProcess, table, unique

pytestmark = pytest.mark.e2e


class WebhookServer:
    """An HTTPS admission webhook server on 127.0.0.1 whose answers the test chooses by path:

    /deny        denies ConfigMaps holding a key "forbidden"
    /label       adds the label mutated-by=webhook (a JSON patch) and a warning
    /deny-all    denies everything it is asked about
    /slow        answers after 3 s
    """

    def __init__(self, tmp: Path) -> None:
        self.reviews: list[dict[str, Any]] = []
        self.ca_pem, cert_pem, key_pem = _certificates()
        (tmp / "cert.pem").write_bytes(cert_pem)
        (tmp / "key.pem").write_bytes(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.reviews.append({"path": self.path, **review})
                response = server.answer(self.path.split("?")[0], review["request"])
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": {"uid": review["request"]["uid"], **response}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # /slow's caller (the API server) hangs up at its timeout: writing the answer then fails
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, request: dict[str, Any]) -> dict[str, Any]:
        obj = request.get("object") or {}
        if path == "/deny" and "forbidden" in (obj.get("data") or {}):
            return {"allowed": False, "status": {"code": 403, "reason": "Forbidden",
                                                 "message": "no forbidden keys"}}
        if path == "/label":
            labels = (obj.get("metadata") or {}).get("labels")
            patch = ([{"op": "add", "path": "/metadata/labels/mutated-by", "value": "webhook"}] if labels
                     else [{"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "webhook"}}])
            return {"allowed": True, "patchType": "JSONPatch", "warnings": ["labelled by the test webhook"],
                    "patch": base64.b64encode(json.dumps(patch).encode()).decode()}
        if path == "/deny-all":
            return {"allowed": False, "status": {"message": f"{request['operation']} of protected objects"}}
        if path == "/slow":
            time.sleep(3)
        return {"allowed": True}

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _certificates() -> tuple[bytes, bytes, bytes]:
    """(CA PEM, server certificate PEM for 127.0.0.1, server key PEM)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (ca.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def configuration(kind: str, name: str, ns: str, url: str, ca: bytes, **webhook: Any) -> dict[str, Any]:
    """A webhook configuration for ConfigMaps in namespace ``ns`` only."""
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": [{"name": f"{name}.skiff.test", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "clientConfig": {"url": url, "caBundle": base64.b64encode(ca).decode()},
                          "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                     "resources": ["configmaps"]}],
                          "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                          **webhook}]}


@pytest.fixture
def configure(cluster: SkiffProcess) -> Iterator[Any]:
    """``configure(config)`` creates a webhook configuration, deleted when the test ends."""
    made: list[tuple[str, str]] = []

    def create(config: dict[str, Any]) -> None:
        cluster.kubectl("create", "-f", "-", input=json.dumps(config))
        made.append((config["kind"].lower(), config["metadata"]["name"]))

    try:
        yield create
    finally:
        for kind, name in made:
            cluster.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def test_a_validating_webhook_denies_and_allows(cluster: SkiffProcess, ns: str, webhook_server: WebhookServer,
                                               configure: Any) -> None:
    name = unique("deny")
    configure(configuration("ValidatingWebhookConfiguration", name, ns, webhook_server.url("/deny"),
                            webhook_server.ca_pem))
    denied = cluster.kubectl("create", "configmap", "bad", "-n", ns, "--from-literal=forbidden=1", check=False)
    assert denied.returncode != 0
    assert f'admission webhook "{name}.skiff.test" denied the request: no forbidden keys' in denied.stderr
    cluster.kubectl("create", "configmap", "good", "-n", ns, "--from-literal=fine=1")

    request = next(r["request"] for r in webhook_server.reviews if r["request"]["name"] == "good")
    assert webhook_server.reviews[0]["path"] == "/deny?timeout=10s"
    assert (request["operation"], request["kind"], request["resource"], request["namespace"]) == (
        "CREATE", {"group": "", "version": "v1", "kind": "ConfigMap"},
        {"group": "", "version": "v1", "resource": "configmaps"}, ns)
    assert request["userInfo"]["username"] == "kubernetes-admin"
    assert request["object"]["data"] == {"fine": "1"} and request["oldObject"] is None

    cluster.kubectl("label", "configmap", "good", "-n", ns, "tier=a")
    update = webhook_server.reviews[-1]["request"]
    assert update["operation"] == "UPDATE" and update["oldObject"]["metadata"].get("labels") is None

    header, rows = table(cluster.kubectl("get", "validatingwebhookconfigurations", name).stdout)
    assert header == ["NAME", "WEBHOOKS", "AGE"] and rows[0][:2] == [name, "1"]


def test_a_mutating_webhook_patches_the_object_and_warns(cluster: SkiffProcess, ns: str,
                                                        webhook_server: WebhookServer, configure: Any) -> None:
    configure(configuration("MutatingWebhookConfiguration", unique("label"), ns, webhook_server.url("/label"),
                            webhook_server.ca_pem))
    res = cluster.kubectl("create", "configmap", "c", "-n", ns, "--from-literal=a=1")
    assert "Warning: labelled by the test webhook" in res.stderr
    assert cluster.get_json("configmap", "c", "-n", ns)["metadata"]["labels"] == {"mutated-by": "webhook"}
    assert "mutated-by" not in (cluster.get_json("configmaps", "-n", "default")["items"][0]["metadata"]
                                .get("labels") or {})  # other namespaces are not selected


def test_failure_policy_decides_when_a_webhook_cannot_be_reached(cluster: SkiffProcess, ns: str,
                                                                webhook_server: WebhookServer,
                                                                configure: Any) -> None:
    closed = webhook_server.url("/deny").replace(str(webhook_server.port), "1")  # nothing listens on port 1
    configure(configuration("ValidatingWebhookConfiguration", unique("ignored"), ns, closed,
                            webhook_server.ca_pem, failurePolicy="Ignore"))
    cluster.kubectl("create", "configmap", "a", "-n", ns)
    name = unique("down")
    configure(configuration("ValidatingWebhookConfiguration", name, ns, closed, webhook_server.ca_pem))
    res = cluster.kubectl("create", "configmap", "b", "-n", ns, check=False)
    assert res.returncode != 0
    assert (f'Internal error occurred: failed calling webhook "{name}.skiff.test": failed to call webhook: '
            f'Post "{closed}?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused') in res.stderr


def test_a_slow_webhook_times_out(cluster: SkiffProcess, ns: str, webhook_server: WebhookServer,
                                  configure: Any) -> None:
    configure(configuration("ValidatingWebhookConfiguration", unique("slow"), ns, webhook_server.url("/slow"),
                            webhook_server.ca_pem, timeoutSeconds=1))
    res = cluster.kubectl("create", "configmap", "late", "-n", ns, check=False)
    assert res.returncode != 0 and "context deadline exceeded" in res.stderr


def test_a_webhook_outside_the_machine_is_not_called(cluster: SkiffProcess, ns: str,
                                                     webhook_server: WebhookServer, configure: Any) -> None:
    # 192.0.2.1 is TEST-NET-1 (never routed); the API server refuses before connecting
    configure(configuration("ValidatingWebhookConfiguration", unique("far"), ns, "https://192.0.2.1/check",
                            webhook_server.ca_pem))
    res = cluster.kubectl("create", "configmap", "x", "-n", ns, check=False)
    assert "address not allowed: 192.0.2.1" in res.stderr


def test_an_invalid_configuration_is_refused(cluster: SkiffProcess) -> None:
    config = configuration("ValidatingWebhookConfiguration", "broken", "default", "http://127.0.0.1/x", b"")
    config["webhooks"][0]["name"] = "broken"
    del config["webhooks"][0]["sideEffects"]
    res = cluster.kubectl("create", "-f", "-", input=json.dumps(config), check=False)
    assert res.returncode != 0
    assert 'webhooks[0].name: Invalid value: "broken": should be a domain with at least three segments ' \
           "separated by dots" in res.stderr
    assert "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun" in res.stderr
    assert "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme" \
        in res.stderr


def test_deletes_reach_validating_webhooks_for_the_selected_objects(cluster: SkiffProcess, ns: str,
                                                                   webhook_server: WebhookServer,
                                                                   configure: Any) -> None:
    config = configuration("ValidatingWebhookConfiguration", unique("protect"), ns,
                           webhook_server.url("/deny-all"), webhook_server.ca_pem,
                           objectSelector={"matchLabels": {"protected": "yes"}})
    config["webhooks"][0]["rules"][0]["operations"] = ["DELETE"]
    configure(config)
    cluster.kubectl("create", "configmap", "keep", "-n", ns)
    cluster.kubectl("label", "configmap", "keep", "-n", ns, "protected=yes")
    cluster.kubectl("create", "configmap", "scratch", "-n", ns)
    refused = cluster.kubectl("delete", "configmap", "keep", "-n", ns, check=False)
    assert refused.returncode != 0
    assert "denied the request: DELETE of protected objects" in refused.stderr
    cluster.kubectl("delete", "configmap", "scratch", "-n", ns)
    request = webhook_server.reviews[-1]["request"]
    assert (request["operation"], request["object"], request["oldObject"]["metadata"]["name"]) == (
        "DELETE", None, "keep")
    assert [r["request"]["name"] for r in webhook_server.reviews] == ["keep"]  # one call: the selected object


def test_a_mutating_webhook_can_refuse_a_delete(cluster: SkiffProcess, ns: str, webhook_server: WebhookServer,
                                                configure: Any) -> None:
    config = configuration("MutatingWebhookConfiguration", unique("keep"), ns, webhook_server.url("/deny-all"),
                           webhook_server.ca_pem)
    config["webhooks"][0]["rules"][0]["operations"] = ["DELETE"]
    configure(config)
    cluster.kubectl("create", "configmap", "stays", "-n", ns)
    refused = cluster.kubectl("delete", "configmap", "stays", "-n", ns, check=False)
    assert "denied the request: DELETE of protected objects" in refused.stderr
    assert webhook_server.reviews[-1]["request"]["object"] is None
    cluster.get_json("configmap", "stays", "-n", ns)  # still there
