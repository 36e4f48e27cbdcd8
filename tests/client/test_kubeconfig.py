"""Kubeconfig parsing, and a real mutual-TLS connection built from one."""

from __future__ import annotations

import base64
import ssl
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import yaml
from aiohttp import web

from apistub import StubApi
from skiff.apiserver.pki import ClusterPKI, ensure_pki
from skiff.client.kubeconfig import KubeconfigError, load_kubeconfig, parse_kubeconfig
from skiff.client.resources import PODS
from skiff.client.rest import ApiClient, TransportError


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [
            {"name": "prod", "cluster": {"server": "https://prod.example:6443"}},
            {"name": "dev", "cluster": {"server": "https://127.0.0.1:6443/",
                                        "certificate-authority-data": base64.b64encode(b"CA").decode()}},
        ],
        "users": [
            {"name": "me", "user": {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                    "client-key-data": base64.b64encode(b"KEY").decode()}},
            {"name": "bot", "user": {"token": "t0k"}},
        ],
        "contexts": [
            {"name": "dev", "context": {"cluster": "dev", "user": "me"}},
            {"name": "ops", "context": {"cluster": "prod", "user": "bot", "namespace": "ops"}},
        ],
    }
    doc.update(overrides)
    return doc


def test_current_context_is_resolved() -> None:
    cfg = parse_kubeconfig(_doc())
    assert cfg.server == "https://127.0.0.1:6443"
    assert (cfg.ca_pem, cfg.client_cert_pem, cfg.client_key_pem) == (b"CA", b"CERT", b"KEY")
    assert cfg.token is None and cfg.namespace == "default"


def test_explicit_context_wins() -> None:
    cfg = parse_kubeconfig(_doc(), context="ops")
    assert (cfg.server, cfg.token, cfg.namespace, cfg.ca_pem) == \
        ("https://prod.example:6443", "t0k", "ops", None)


def test_file_references_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"FILE-CA")
    (tmp_path / "token").write_text("from-file\n")
    doc = _doc(clusters=[{"name": "dev", "cluster": {"server": "https://h:1",
                                                     "certificate-authority": "ca.crt"}}],
               users=[{"name": "me", "user": {"tokenFile": "token"}}])
    (tmp_path / "config").write_text(yaml.safe_dump(doc))
    cfg = load_kubeconfig(tmp_path / "config")
    assert cfg.ca_pem == b"FILE-CA" and cfg.token == "from-file"


@pytest.mark.parametrize("change, message", [
    ({"current-context": ""}, "no context"),
    ({"current-context": "nope"}, "context 'nope' not found"),
    ({"contexts": [{"name": "dev", "context": {"cluster": "gone", "user": "me"}}]}, "cluster 'gone'"),
    ({"clusters": [{"name": "dev", "cluster": {}}]}, "has no server"),
    ({"clusters": [{"name": "dev", "cluster": {"server": "https://h",
                                               "certificate-authority-data": "!!"}}]}, "base64"),
])
def test_broken_kubeconfigs_are_reported(change: dict[str, Any], message: str) -> None:
    with pytest.raises(KubeconfigError, match=message):
        parse_kubeconfig(_doc(**change))


def test_plain_http_has_no_tls_context() -> None:
    cfg = parse_kubeconfig(_doc(clusters=[{"name": "dev", "cluster": {"server": "http://127.0.0.1:8080"}}]),
                           context="dev")
    assert cfg.ssl_context() is None


@pytest.fixture
async def mtls_server(tmp_path: Path) -> AsyncIterator[tuple[ClusterPKI, str]]:
    pki = ensure_pki(tmp_path / "pki", hosts=("127.0.0.1",))
    ctx = pki.server_ssl_context()
    ctx.verify_mode = ssl.CERT_REQUIRED  # refuse clients without a certificate
    runner = web.AppRunner(StubApi().app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield pki, f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _write_kubeconfig(path: Path, server: str, pki: ClusterPKI, *, with_cert: bool) -> None:
    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    user = {"client-certificate-data": b64(pki.admin_cert),
            "client-key-data": b64(pki.admin_key)} if with_cert else {"token": "x"}
    path.write_text(yaml.safe_dump({
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server,
                                               "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))


async def test_client_certificate_from_kubeconfig_data(tmp_path: Path,
                                                       mtls_server: tuple[ClusterPKI, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pki, url = mtls_server
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the key pair briefly lands
    good, bad = tmp_path / "good", tmp_path / "bad"
    _write_kubeconfig(good, url, pki, with_cert=True)
    _write_kubeconfig(bad, url, pki, with_cert=False)
    async with ApiClient.from_kubeconfig(good) as api:
        listing = await api.list(PODS)
        assert listing.items == []
    async with ApiClient.from_kubeconfig(bad) as api:
        with pytest.raises(TransportError):
            await api.list(PODS)
    assert list(scratch.iterdir()) == []  # the private copy of the key is gone
