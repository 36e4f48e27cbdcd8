"""A small real cluster for the streaming tests: API server + kubelet streaming server + runc.

Until the kubelet's pod workers exist, the tests play the kubelet themselves: they
create the Pod object (bound to a Node whose kubeletEndpoint is our server), start
the pod's sandbox and containers in the runc runtime directly, report the pod
Running, and map pod/container -> runtime container through :class:`StaticLocator`::

    kubectl ──HTTPS──▶ API server (in-process) ──HTTPS, client cert──▶ KubeletServer
                                                                         │
                                                     StaticLocator ──────┤
                                                                         ▼
                                                                  RuncRuntime (busybox)

Everything lives in a temp dir; :meth:`StreamCluster.stop` removes containers,
sandboxes (and their network namespaces), mounts and the test's cgroup parent,
also after a failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import secrets
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from busybox_image import write_busybox_archive  # noqa: E402

from skiff.apiserver.app import make_app  # noqa: E402
from skiff.apiserver.pki import ensure_pki  # noqa: E402
from skiff.apiserver.server import ServingHandle, serve  # noqa: E402
from skiff.apiserver.streaming import install_streaming  # noqa: E402
from skiff.cli.kubeconfig import write_admin_kubeconfig  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from skiff.kubelet.images.store import Image, ImageStore  # noqa: E402
from skiff.kubelet.runtime import cgroups  # noqa: E402
from skiff.kubelet.runtime.interface import ContainerSpec, SandboxSpec  # noqa: E402
from skiff.kubelet.runtime.mounts import mount_points_under, unmount  # noqa: E402
from skiff.kubelet.runtime.runc import RuncRuntime  # noqa: E402
from skiff.kubelet.server import KubeletServer  # noqa: E402
from skiff.storage.sqlite import SqliteBackend  # noqa: E402

IMAGE = "busybox:test"
NODE = "stream-node"
KUBECTL_TIMEOUT = 60.0


def busybox_store(root: Path) -> tuple[ImageStore, Image]:
    write_busybox_archive(root / "busybox.tar", IMAGE)
    store = ImageStore(root / "store")
    store.import_archive(root / "busybox.tar")
    return store, store.resolve(IMAGE)


# -- certificates: kubelet serving cert + the API server's kubelet client cert -----------


@dataclass
class KubeletPKI:
    directory: Path

    def _paths(self, name: str) -> tuple[str, str]:
        return str(self.directory / f"{name}.crt"), str(self.directory / f"{name}.key")

    def server_context(self) -> ssl.SSLContext:
        """The kubelet: serves its certificate, accepts only clients the CA signed."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.directory / "ca.crt"))
        ctx.load_cert_chain(*self._paths("kubelet"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """The API server as the kubelet's client: verifies the kubelet, shows its cert."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.directory / "ca.crt"))
        ctx.load_cert_chain(*self._paths("apiserver-kubelet-client"))
        return ctx


def make_kubelet_pki(directory: Path) -> KubeletPKI:
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-kubelet-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(name: str, usage: x509.ObjectIdentifier, ips: list[str]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if ips:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    issue("kubelet", ExtendedKeyUsageOID.SERVER_AUTH, ["127.0.0.1"])
    issue("apiserver-kubelet-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return KubeletPKI(directory)


# -- the locator the pod workers will provide ---------------------------------------------


@dataclass
class StaticLocator:
    current: dict[tuple[str, str, str], str] = field(default_factory=dict)
    previous: dict[tuple[str, str, str], str] = field(default_factory=dict)
    netns: dict[tuple[str, str], Path] = field(default_factory=dict)

    async def find(self, namespace: str, pod: str, container: str, *,
                   previous: bool = False) -> str | None:
        return (self.previous if previous else self.current).get((namespace, pod, container))

    async def pod_netns(self, namespace: str, pod: str) -> Path | None:
        return self.netns.get((namespace, pod))


@dataclass
class Container:
    name: str
    command: list[str]
    stdin: bool = False
    tty: bool = False


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


class StreamCluster:
    def __init__(self, base: Path, store: ImageStore, image: Image, *,
                 log_max_size: int = 10 << 20, log_max_files: int = 5) -> None:
        self.base = base
        self.log_limits = (log_max_size, log_max_files)
        self.store = store
        self.image = image
        self.kubeconfig = base / "kubeconfig"
        self.home = base / "home"
        self.cache_dir = base / "kube-cache"
        self.cgroup_parent = f"skiff-test-{secrets.token_hex(4)}"
        self.locator = StaticLocator()
        self.backend: SqliteBackend | None = None
        self.serving: ServingHandle | None = None
        self.client: ApiClient | None = None
        self.runtime: RuncRuntime | None = None
        self.kubelet: KubeletServer | None = None
        self.sandboxes: dict[tuple[str, str], str] = {}

    async def start(self) -> None:
        for d in (self.home, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        pki = ensure_pki(self.base / "pki")
        kubelet_pki = make_kubelet_pki(self.base / "kubelet-pki")
        self.backend = SqliteBackend(str(self.base / "state.db"), compact_interval=0)
        app = make_app(self.backend)
        install_streaming(app, kubelet_tls=kubelet_pki.client_context())
        self.serving = await serve(app, host="127.0.0.1", port=0, ssl_context=pki.server_ssl_context())
        write_admin_kubeconfig(self.kubeconfig, self.serving.url, pki)
        self.client = ApiClient(self.serving.url, ssl_context=pki.admin_ssl_context())
        self.runtime = RuncRuntime(self.base / "runtime", cgroup_parent=self.cgroup_parent,
                                   log_max_size=self.log_limits[0], log_max_files=self.log_limits[1])
        self.kubelet = KubeletServer(self.runtime, self.locator)
        port = await self.kubelet.start("127.0.0.1", 0, kubelet_pki.server_context())
        await self.client.request("POST", "/api/v1/nodes", body={
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                     {"type": "Hostname", "address": NODE}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                       "nodeInfo": {"containerRuntimeVersion": "runc://1.1"}}})
        node = await self.client.request("GET", f"/api/v1/nodes/{NODE}")
        if node.get("status", {}).get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port") != port:
            node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                              "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                              "nodeInfo": {"containerRuntimeVersion": "runc://1.1"}}
            await self.client.request("PUT", f"/api/v1/nodes/{NODE}/status", body=node)

    async def stop(self) -> None:
        try:
            if self.kubelet is not None:
                await self.kubelet.close()
            if self.runtime is not None:
                rt = self.runtime
                try:
                    for sandbox in await rt.list_sandboxes():
                        await rt.remove_sandbox(sandbox.id)
                    for container in await rt.list():
                        await rt.remove(container.id)
                finally:
                    await rt.close()
                    self._force_cleanup(rt)
        finally:
            if self.client is not None:
                await self.client.close()
            if self.serving is not None:
                await self.serving.close()
            if self.backend is not None:
                await self.backend.close()

    def _force_cleanup(self, rt: RuncRuntime) -> None:
        listing = subprocess.run(["runc", "--root", str(rt.runc_root), "list", "-q"],
                                 capture_output=True, text=True)
        for container_id in listing.stdout.split():
            subprocess.run(["runc", "--root", str(rt.runc_root), "delete", "--force", container_id],
                           capture_output=True)
        for point in mount_points_under(rt.root):
            unmount(point, detach=True)
        cgroups.remove(f"/{self.cgroup_parent}")

    # -- pods -----------------------------------------------------------------------------

    def spec(self, sandbox_id: str, container: Container, attempt: int = 0) -> ContainerSpec:
        return ContainerSpec(
            sandbox_id=sandbox_id, name=container.name, image=IMAGE, image_id=self.image.id,
            layers=tuple(self.store.layer_dirs(self.image)), command=tuple(container.command),
            env=tuple(self.image.config.env_for([])), stdin=container.stdin, tty=container.tty,
            attempt=attempt)

    async def run_pod(self, name: str, *containers: Container, namespace: str = "default",
                      labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Create the Pod (bound to our node), run its containers, report it Running."""
        assert self.client is not None and self.runtime is not None
        pod = await self.client.request("POST", f"/api/v1/namespaces/{namespace}/pods", body={
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"nodeName": NODE, "containers": [
                {"name": c.name, "image": IMAGE, "command": c.command, "stdin": c.stdin,
                 "tty": c.tty} for c in containers]}})
        sandbox = await self.runtime.run_sandbox(SandboxSpec(name=name, namespace=namespace,
                                                             uid=pod["metadata"]["uid"]))
        self.sandboxes[(namespace, name)] = sandbox
        status = await self.runtime.sandbox_status(sandbox)
        assert status.netns_path is not None
        self.locator.netns[(namespace, name)] = status.netns_path
        for container in containers:
            cid = await self.runtime.create(self.spec(sandbox, container))
            await self.runtime.start(cid)
            self.locator.current[(namespace, name, container.name)] = cid
        return await self.set_running(namespace, name)

    async def set_running(self, namespace: str, name: str,
                          restarted: dict[str, int] | None = None) -> dict[str, Any]:
        assert self.client is not None
        pod = await self.client.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        statuses = []
        for c in pod["spec"]["containers"]:
            entry: dict[str, Any] = {"name": c["name"], "image": IMAGE, "imageID": self.image.id,
                                     "ready": True, "restartCount": (restarted or {}).get(c["name"], 0),
                                     "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}
            if (restarted or {}).get(c["name"]):
                entry["lastState"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                                     "startedAt": "2024-01-01T00:00:00Z",
                                                     "finishedAt": "2024-01-01T00:00:00Z"}}
            statuses.append(entry)
        pod["status"] = {"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": statuses,
                         "conditions": [{"type": "Ready", "status": "True"}]}
        updated: dict[str, Any] = await self.client.request(
            "PUT", f"/api/v1/namespaces/{namespace}/pods/{name}/status", body=pod)
        return updated

    async def restart(self, namespace: str, name: str, container: Container) -> str:
        """A new instance of ``container``; the current one becomes the previous."""
        assert self.runtime is not None
        key = (namespace, name, container.name)
        old = self.locator.current[key]
        await self.runtime.wait(old)
        cid = await self.runtime.create(self.spec(self.sandboxes[(namespace, name)], container, 1))
        await self.runtime.start(cid)
        self.locator.previous[key], self.locator.current[key] = old, cid
        await self.set_running(namespace, name, {container.name: 1})
        return cid

    # -- kubectl --------------------------------------------------------------------------

    def kubectl_argv(self, *args: str, kubectl: str = "kubectl") -> list[str]:
        return [kubectl, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]

    def kubectl_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["HOME"] = str(self.home)
        env.update(extra or {})
        return env

    async def kubectl(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
                      timeout: float = KUBECTL_TIMEOUT, kubectl: str = "kubectl") -> Completed:
        proc = await asyncio.create_subprocess_exec(
            *self.kubectl_argv(*args, kubectl=kubectl), stdin=asyncio.subprocess.PIPE if input is not None
            else asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.kubectl_env(env))
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        assert proc.returncode is not None
        return Completed(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    async def kubectl_ok(self, *args: str, **kwargs: Any) -> str:
        result = await self.kubectl(*args, **kwargs)
        assert result.returncode == 0, (f"kubectl {' '.join(args)} exited {result.returncode}\n"
                                        f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result.stdout
