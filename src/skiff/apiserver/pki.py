"""The cluster's certificates: one CA, the API server's serving certificate, the admin client.

Created on first start under ``<data-dir>/pki/`` and reused afterwards::

    ca.crt / ca.key            self-signed cluster CA (10 years)
    apiserver.crt / .key       serving cert; SANs: localhost, 127.0.0.1, ::1, the
                               ``kubernetes`` Service names and its ClusterIP, extra hosts
    admin.crt / admin.key      client cert CN=kubernetes-admin, O=system:masters
    sa.key / sa.pub            the key pair that signs and verifies ServiceAccount tokens

Keys are ECDSA P-256: generating all of them takes milliseconds, which matters for
the one-second cold start.  Private keys are written mode 0600.  A serving
certificate whose SANs no longer cover the requested hosts is re-issued (same CA).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365

SERVICE_NAMES = (
    "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class ClusterPKI:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.directory / "sa.pub"

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS for the API server; client certificates signed by the CA are verified when sent."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.serving_cert, self.serving_key)
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def admin_ssl_context(self) -> ssl.SSLContext:
        """TLS for in-process components talking to the API server as the admin."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_cert))
        ctx.load_cert_chain(self.admin_cert, self.admin_key)
        return ctx


def ensure_pki(directory: Path, *, hosts: tuple[str, ...] = (), service_ip: str = "10.96.0.1") -> ClusterPKI:
    """Load the PKI in ``directory``, creating whatever is missing."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = ClusterPKI(directory)
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skiff-ca")])
        cert = (
            _builder(name, name, key.public_key(), CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write(pki.ca_key, pki.ca_cert, key, cert)
        for stale in (pki.serving_cert, pki.admin_cert):
            stale.unlink(missing_ok=True)
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)

    dns = ["localhost", *SERVICE_NAMES, *(h for h in hosts if not _is_ip(h))]
    ips = ["127.0.0.1", "::1", service_ip, *(h for h in hosts if _is_ip(h))]
    if not _covers(pki.serving_cert, dns, ips):
        _issue(pki.serving_key, pki.serving_cert, ca_key, ca_cert, "kube-apiserver", [],
               ExtendedKeyUsageOID.SERVER_AUTH, dns, ips)
    if not pki.admin_cert.exists():
        _issue(pki.admin_key, pki.admin_cert, ca_key, ca_cert, "kubernetes-admin",
               ["system:masters"], ExtendedKeyUsageOID.CLIENT_AUTH, [], [])
    if not (pki.service_account_key.exists() and pki.service_account_pub.exists()):
        _write_key_pair(pki.service_account_key, pki.service_account_pub, _new_key())
    return pki


def issue_client_cert(pki: ClusterPKI, key_path: Path, cert_path: Path, user: str,
                      groups: list[str]) -> None:
    """A client certificate signed by the cluster CA: CN = user name, O = groups."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    _issue(key_path, cert_path, ca_key, ca_cert, user, groups, ExtendedKeyUsageOID.CLIENT_AUTH, [], [])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _issue(key_path: Path, cert_path: Path, ca_key: ec.EllipticCurvePrivateKey,
           ca_cert: x509.Certificate, common_name: str, organizations: list[str],
           usage: x509.ObjectIdentifier, dns: list[str], ips: list[str]) -> None:
    key = _new_key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = (
        _builder(x509.Name(attrs), ca_cert.subject, key.public_key(), LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if dns or ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write(key_path, cert_path, key, builder.sign(ca_key, hashes.SHA256()))


def _covers(cert_path: Path, dns: list[str], ips: list[str]) -> bool:
    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    return set(dns) <= have_dns and {str(ipaddress.ip_address(i)) for i in ips} <= have_ips


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _write(key_path: Path, cert_path: Path, key: ec.EllipticCurvePrivateKey,
           cert: x509.Certificate) -> None:
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key_pair(key_path: Path, pub_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
