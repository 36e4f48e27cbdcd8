"""HTTPS through the ingress controller: Secrets chosen by SNI, the default certificate, redirects."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from apiserver_support import ApiServer
from skiff.client.resources import SECRETS
from skiff.proxy.ingress import IngressController
from skiff.proxy.ingress.certs import FAKE_CERTIFICATE_NAME, self_signed_certificate
from test_ingress_support import (Backend, create_ingress, expose, get, http_path, ingress,
                                  running_controller, wait_for)


def tls_secret(name: str, cert: bytes, key: bytes) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}


async def served_certificate(controller: IngressController, server_name: str | None) -> x509.Certificate:
    """The certificate the HTTPS port presents for ``server_name`` (None: no SNI)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", controller.https_port, ssl=context,
                                                   server_hostname=server_name or "")
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return x509.load_der_x509_certificate(der)


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


async def test_tls_secret_by_sni_default_certificate_and_redirect(api: ApiServer) -> None:
    cert, key = self_signed_certificate("secure.test", ("secure.test",))
    wild_cert, wild_key = self_signed_certificate("*.wild.test", ("*.wild.test",))
    await api.client.create(SECRETS, tls_secret("secure-tls", cert, key), namespace="default")
    await api.client.create(SECRETS, tls_secret("wild-tls", wild_cert, wild_key), namespace="default")
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(Backend("a"))
        b = await stack.enter_async_context(Backend("b"))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await expose(api.client, "svc-a", a)
        await expose(api.client, "svc-b", b)
        controller = await stack.enter_async_context(running_controller(api.client))
        await create_ingress(api.client, controller, ingress("secure", [
            {"host": "secure.test", "http": {"paths": [http_path("/", "svc-a")]}},
            {"host": "*.wild.test", "http": {"paths": [http_path("/", "svc-a")]}},
            {"host": "nosecret.test", "http": {"paths": [http_path("/", "svc-a")]}},
            {"host": "plain.test", "http": {"paths": [http_path("/", "svc-b")]}}],
            tls=[{"hosts": ["secure.test"], "secretName": "secure-tls"},
                 {"hosts": ["*.wild.test"], "secretName": "wild-tls"},
                 {"hosts": ["nosecret.test"], "secretName": "does-not-exist"}]))

        # HTTPS with SNI: the Secret's certificate, verified for the host name.
        url = f"https://127.0.0.1:{controller.https_port}/x?q=1"
        async with session.get(url, ssl=ssl.create_default_context(cadata=cert.decode()),
                               server_hostname="secure.test", headers={"Host": "secure.test"}) as response:
            assert response.status == 200
            echo = await response.json()
        assert echo["backend"] == "a" and echo["path"] == "/x?q=1"
        assert echo["headers"]["X-Forwarded-Proto"] == "https"
        assert echo["headers"]["X-Forwarded-Port"] == str(controller.https_port)
        async with session.get(url, ssl=ssl.create_default_context(cadata=wild_cert.decode()),
                               server_hostname="api.wild.test", headers={"Host": "api.wild.test"}) as response:
            assert response.status == 200

        assert (await served_certificate(controller, "secure.test")).public_bytes(
            Encoding.PEM) == cert
        for other in ("plain.test", "nosecret.test", "a.b.wild.test", None):
            assert common_name(await served_certificate(controller, other)) == FAKE_CERTIFICATE_NAME, other

        # Plain HTTP to a TLS host is redirected; a host without TLS is served.
        async with session.get(f"http://127.0.0.1:{controller.http_port}/x?q=1",
                               headers={"Host": "secure.test"}, allow_redirects=False) as response:
            assert response.status == 308
            assert response.headers["Location"] == f"https://secure.test:{controller.https_port}/x?q=1"
        status, echo = await get(session, controller, "/", host="plain.test")
        assert status == 200 and echo["backend"] == "b"

        # A rotated Secret is served from the next handshake on.
        old = controller.proxy.certificates.context_for("secure.test") if controller.proxy else None
        new_cert, new_key = self_signed_certificate("secure.test", ("secure.test",))
        await api.client.patch(SECRETS, "secure-tls", {"data": {
            "tls.crt": base64.b64encode(new_cert).decode(), "tls.key": base64.b64encode(new_key).decode()}},
            namespace="default")
        await wait_for(controller, lambda: controller.proxy is not None
                       and controller.proxy.certificates.context_for("secure.test") is not old)
        assert (await served_certificate(controller, "secure.test")).public_bytes(
            Encoding.PEM) == new_cert


async def test_ssl_redirect_can_be_turned_off(api: ApiServer) -> None:
    cert, key = self_signed_certificate("secure.test", ("secure.test",))
    await api.client.create(SECRETS, tls_secret("secure-tls", cert, key), namespace="default")
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(Backend("a"))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await expose(api.client, "svc-a", a)
        controller = await stack.enter_async_context(running_controller(api.client))
        await create_ingress(api.client, controller, ingress("secure", [
            {"host": "secure.test", "http": {"paths": [http_path("/", "svc-a")]}}],
            tls=[{"hosts": ["secure.test"], "secretName": "secure-tls"}],
            annotations={"nginx.ingress.kubernetes.io/ssl-redirect": "false"}))
        status, echo = await get(session, controller, "/", host="secure.test")
        assert status == 200 and echo["backend"] == "a"
