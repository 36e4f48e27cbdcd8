"""A pod's sandbox as the kubelet builds it: runtime sandbox, network, /etc/hosts, resolv.conf.

::

    create(pod)
      runtime.run_sandbox(SandboxSpec)        net/ipc/uts namespaces, hostname, /dev/shm,
                                              resolv.conf (dnsPolicy + dnsConfig)
      network.add_pod(uid, netns_path=        the runtime's namespace, plugged CNI-style;
                      sandbox's ns/net)       hostPorts forwarded
      pods/<uid>/etc-hosts                    localhost lines, "<podIP> <hostname>",
                                              hostAliases; bind-mounted at /etc/hosts in
                                              every container (as the kubelet does; the
                                              IP is known only after the network is up)
    destroy(uid, sandbox)
      stop + remove the sandbox (and its containers), remove the pod's network

resolv.conf: ``ClusterFirst`` (and ``ClusterFirstWithHostNet`` on the host network)
use the cluster DNS servers with ``search <ns>.svc.<domain> svc.<domain> <domain>``
and ``options ndots:5``; without cluster DNS configured they fall back to
``Default`` (the node's own resolv.conf), as Kubernetes does. ``dnsConfig`` adds
nameservers, searches and options; ``None`` uses dnsConfig alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context import KubeletConfig, NodeContext
from .network import HostPort, PodNetwork
from .runtime.interface import NotFound, RuntimeFailure, SandboxSpec

Obj = dict[str, Any]
log = logging.getLogger(__name__)

HOSTS_HEADER = ("# Kubernetes-managed hosts file.\n"
                "127.0.0.1\tlocalhost\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\n"
                "fe00::0\tip6-mcastprefix\n"
                "fe00::1\tip6-allnodes\n"
                "fe00::2\tip6-allrouters\n")
POD_UID_LABEL = "io.kubernetes.pod.uid"
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"


@dataclass(frozen=True)
class Sandbox:
    id: str
    network: PodNetwork
    hosts_file: Path | None       # None: hostNetwork (the node's /etc/hosts is used)


def pod_hostname(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("hostname") or pod["metadata"]["name"])[:63].rstrip("-.")


def hosts_content(pod: Obj, ip: str, cluster_domain: str) -> str:
    spec = pod.get("spec") or {}
    hostname = pod_hostname(pod)
    text = HOSTS_HEADER
    if spec.get("subdomain"):
        fqdn = f"{hostname}.{spec['subdomain']}.{pod['metadata'].get('namespace', '')}.svc.{cluster_domain}"
        text += f"{ip}\t{fqdn}\t{hostname}\n"
    else:
        text += f"{ip}\t{hostname}\n"
    aliases = spec.get("hostAliases") or []
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            text += f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []) + "\n"
    return text


def _host_resolv() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""


def dns_policy(pod: Obj, config: KubeletConfig) -> str:
    """The pod's dnsPolicy as it applies on this node (``Default`` when it has no cluster DNS)."""
    spec = pod.get("spec") or {}
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    if spec.get("hostNetwork") and policy == "ClusterFirst":
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and not config.cluster_dns:
        policy = "Default"
    return policy


def resolv_content(pod: Obj, config: KubeletConfig, host_resolv: str) -> str:
    spec = pod.get("spec") or {}
    policy = dns_policy(pod, config)
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    if policy == "Default":
        for line in host_resolv.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith(("#", ";")):
                continue
            if fields[0] == "nameserver" and len(fields) > 1:
                nameservers.append(fields[1])
            elif fields[0] in ("search", "domain"):
                searches = fields[1:]
            elif fields[0] == "options":
                for option in fields[1:]:
                    name, _, value = option.partition(":")
                    options[name] = value or None
    elif policy != "None":
        namespace = pod["metadata"].get("namespace", "")
        domain = config.cluster_domain
        nameservers = list(config.cluster_dns)
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
        options = {"ndots": "5"}
    dns = spec.get("dnsConfig") or {}
    nameservers += [n for n in dns.get("nameservers") or [] if n not in nameservers]
    searches += [s for s in dns.get("searches") or [] if s not in searches]
    for option in dns.get("options") or []:
        options[str(option.get("name", ""))] = option.get("value")
    lines = []
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    lines += [f"nameserver {n}" for n in nameservers[:3]]
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in options.items()))
    return "\n".join(lines) + "\n"


def host_ports(pod: Obj) -> list[HostPort]:
    ports = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                ports.append(HostPort(int(port["hostPort"]), int(port["containerPort"]),
                                      str(port.get("protocol") or "TCP"), str(port.get("hostIP") or "")))
    return ports


def _sysctls(pod: Obj) -> dict[str, str]:
    context = (pod.get("spec") or {}).get("securityContext") or {}
    return {str(s.get("name", "")): str(s.get("value", "")) for s in context.get("sysctls") or []}


async def create(ctx: NodeContext, pod: Obj) -> Sandbox:
    """Sandbox, network and hosts file for ``pod`` (everything undone on failure)."""
    meta = pod["metadata"]
    spec = pod.get("spec") or {}
    uid, name, namespace = str(meta["uid"]), str(meta["name"]), str(meta.get("namespace", ""))
    host_network = bool(spec.get("hostNetwork"))
    labels = {POD_UID_LABEL: uid, POD_NAME_LABEL: name, POD_NAMESPACE_LABEL: namespace}
    host_resolv = await asyncio.to_thread(_host_resolv) if dns_policy(pod, ctx.config) == "Default" else ""
    resolv = resolv_content(pod, ctx.config, host_resolv)
    sandbox_id = await ctx.runtime.run_sandbox(SandboxSpec(
        name=name, namespace=namespace, uid=uid, hostname=pod_hostname(pod),
        host_network=host_network, host_ipc=bool(spec.get("hostIPC")),
        host_pid=bool(spec.get("hostPID")),
        share_process_namespace=bool(spec.get("shareProcessNamespace")),
        resolv_conf=resolv, sysctls=_sysctls(pod), labels=labels))
    try:
        status = await ctx.runtime.sandbox_status(sandbox_id)
        network = await ctx.network.add_pod(uid, name, namespace, netns_path=status.netns_path,
                                            host_network=host_network, host_ports=host_ports(pod))
        hosts = None
        if not host_network:
            hosts = ctx.config.pods_dir / uid / "etc-hosts"
            text = hosts_content(pod, network.ip, ctx.config.cluster_domain)
            await asyncio.to_thread(_write, hosts, text)
        return Sandbox(sandbox_id, network, hosts)
    except BaseException:
        await asyncio.shield(destroy(ctx, uid, sandbox_id))
        raise


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def stop(ctx: NodeContext, uid: str, sandbox_id: str | None) -> None:
    """Stop a sandbox's processes and take its network down (containers stay for logs)."""
    if sandbox_id is not None:
        try:
            await ctx.runtime.stop_sandbox(sandbox_id, timeout=ctx.config.minimum_grace)
        except NotFound:
            pass
        except RuntimeFailure as err:
            log.warning("stopping sandbox %s: %s", sandbox_id[:12], err)
    await ctx.network.remove_pod(uid)


async def destroy(ctx: NodeContext, uid: str, sandbox_id: str | None) -> None:
    """Everything of the sandbox gone: containers, namespaces, network."""
    await stop(ctx, uid, sandbox_id)
    if sandbox_id is not None:
        try:
            await ctx.runtime.remove_sandbox(sandbox_id)
        except NotFound:
            pass
