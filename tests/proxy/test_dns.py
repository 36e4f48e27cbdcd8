"""The cluster DNS against the real API server: records per the Kubernetes DNS spec."""

from __future__ import annotations

import asyncio

from dnslib import QTYPE, RCODE

from skiff.client.resources import ENDPOINTSLICES, SERVICES
from test_dns_support import (  # noqa: F401  (cluster is a fixture)
    DnsCluster, cluster, endpoint, endpoint_slice, query, rdata, service, wait_answer,
)

SVC = "web.default.svc.cluster.local"


def soa_only(reply) -> bool:  # type: ignore[no-untyped-def]
    return not reply.rr and [QTYPE[r.rtype] for r in reply.auth] == ["SOA"]


async def test_cluster_ip_service_records(cluster: DnsCluster) -> None:
    await cluster.client.create(SERVICES, service("web", ip="10.96.0.50", ports=[
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"port": 9000, "protocol": "TCP", "name": "plain"}]))
    reply = await wait_answer(cluster.dns, SVC, lambda r: bool(r.rr))
    assert rdata(reply) == ["10.96.0.50"]
    assert reply.header.aa == 1 and reply.header.rcode == RCODE.NOERROR
    assert reply.rr[0].ttl == 5 and str(reply.rr[0].rname) == SVC + "."
    # Case does not matter; the question comes back as asked.
    upper = await query(cluster.dns.port, "WEB.Default.SVC.cluster.LOCAL")
    assert rdata(upper) == ["10.96.0.50"]
    assert str(upper.rr[0].rname) == "WEB.Default.SVC.cluster.LOCAL."
    # An IPv4-only Service has no AAAA: NOERROR, empty, SOA for negative caching.
    aaaa = await query(cluster.dns.port, SVC, "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and soa_only(aaaa)
    srv = await query(cluster.dns.port, f"_http._tcp.{SVC}", "SRV")
    assert [(r.rdata.priority, r.rdata.weight, r.rdata.port, str(r.rdata.target))
            for r in srv.rr] == [(0, 100, 80, SVC + ".")]
    assert rdata(srv, "A") == [] and [str(r.rdata) for r in srv.ar] == ["10.96.0.50"]
    udp = await query(cluster.dns.port, f"_dns._udp.{SVC}", "SRV")
    assert [r.rdata.port for r in udp.rr] == [53]
    ptr = await query(cluster.dns.port, "50.0.96.10.in-addr.arpa", "PTR")
    assert rdata(ptr) == [SVC + "."]


async def test_unknown_names_are_nxdomain_and_never_forwarded(cluster: DnsCluster) -> None:
    await cluster.client.create(SERVICES, service("web", ip="10.96.0.50"))
    await wait_answer(cluster.dns, SVC, lambda r: bool(r.rr))
    for name in ("nope.default.svc.cluster.local", "web.other.svc.cluster.local",
                 "google.com.default.svc.cluster.local", "x.y.z.cluster.local",
                 "_http._udp.web.default.svc.cluster.local"):
        reply = await query(cluster.dns.port, name)
        assert reply.header.rcode == RCODE.NXDOMAIN, name
        assert soa_only(reply) and str(reply.auth[0].rname) == "cluster.local."
    # Names on the way to a record exist (empty non-terminals): NOERROR, no data.
    for name in ("default.svc.cluster.local", "svc.cluster.local", "cluster.local"):
        reply = await query(cluster.dns.port, name)
        assert reply.header.rcode == RCODE.NOERROR and not reply.rr, name
    assert cluster.upstream.queries == []


async def test_headless_service_endpoints_and_hostnames(cluster: DnsCluster) -> None:
    client = cluster.client
    await client.create(SERVICES, service("db", headless=True))
    name = "db.default.svc.cluster.local"
    reply = await query(cluster.dns.port, name)
    assert reply.header.rcode == RCODE.NXDOMAIN  # no ready endpoints yet
    await client.create(ENDPOINTSLICES, endpoint_slice("db", [
        endpoint("10.244.0.10", hostname="db-0"), endpoint("10.244.1.11", hostname="db-1"),
        endpoint("10.244.1.12"), endpoint("10.244.0.13", ready=False, hostname="db-3")]))
    reply = await wait_answer(cluster.dns, name, lambda r: len(r.rr) == 3)
    assert rdata(reply) == ["10.244.0.10", "10.244.1.11", "10.244.1.12"]
    assert rdata(await query(cluster.dns.port, f"db-0.{name}")) == ["10.244.0.10"]
    assert rdata(await query(cluster.dns.port, f"10-244-1-12.{name}")) == ["10.244.1.12"]
    missing = await query(cluster.dns.port, f"db-3.{name}")
    assert missing.header.rcode == RCODE.NXDOMAIN
    srv = await query(cluster.dns.port, f"_http._tcp.{name}", "SRV")
    assert sorted((r.rdata.port, str(r.rdata.target)) for r in srv.rr) == [
        (8080, f"10-244-1-12.{name}."), (8080, f"db-0.{name}."), (8080, f"db-1.{name}.")]
    assert sorted((str(r.rname), str(r.rdata)) for r in srv.ar) == [
        (f"10-244-1-12.{name}.", "10.244.1.12"), (f"db-0.{name}.", "10.244.0.10"),
        (f"db-1.{name}.", "10.244.1.11")]
    ptr = await query(cluster.dns.port, "10.0.244.10.in-addr.arpa", "PTR")
    assert rdata(ptr) == [f"db-0.{name}."]


async def test_changes_reach_answers(cluster: DnsCluster) -> None:
    client = cluster.client
    await client.create(SERVICES, service("db", headless=True))
    slice_ = await client.create(ENDPOINTSLICES, endpoint_slice("db", [endpoint("10.244.0.10")]))
    name = "db.default.svc.cluster.local"
    await wait_answer(cluster.dns, name, lambda r: rdata(r) == ["10.244.0.10"])
    slice_["endpoints"].append(endpoint("10.244.0.11"))
    slice_ = await client.update(ENDPOINTSLICES, slice_)
    await wait_answer(cluster.dns, name, lambda r: rdata(r) == ["10.244.0.10", "10.244.0.11"])
    slice_["endpoints"][0]["conditions"]["ready"] = False
    await client.update(ENDPOINTSLICES, slice_)
    await wait_answer(cluster.dns, name, lambda r: rdata(r) == ["10.244.0.11"])
    await client.delete(SERVICES, "db", namespace="default")
    await wait_answer(cluster.dns, name, lambda r: r.header.rcode == RCODE.NXDOMAIN)
    await client.create(SERVICES, service("db", ip="10.96.0.77"))
    await wait_answer(cluster.dns, name, lambda r: rdata(r) == ["10.96.0.77"])
    assert rdata(await query(cluster.dns.port, "77.0.96.10.in-addr.arpa", "PTR")) == [
        name + "."]
    # The endpoint's PTR went with the headless Service; unknown reverse names are
    # forwarded, like every name outside the cluster zone.
    assert (await query(cluster.dns.port, "10.0.244.10.in-addr.arpa", "PTR")).rr == []
    assert cluster.upstream.queries == [("udp", "10.0.244.10.in-addr.arpa.", "PTR")]


async def test_external_name_is_a_cname(cluster: DnsCluster) -> None:
    client = cluster.client
    await client.create(SERVICES, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "db.example.org"}})
    await client.create(SERVICES, service("web", ip="10.96.0.50"))
    await client.create(SERVICES, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": SVC}})
    name = "ext.default.svc.cluster.local"
    cname = await wait_answer(cluster.dns, name, lambda r: bool(r.rr), qtype="CNAME")
    assert [(QTYPE[r.rtype], str(r.rdata)) for r in cname.rr] == [("CNAME", "db.example.org.")]
    # An A question gets the CNAME and the target's address (from the upstream).
    chased = await query(cluster.dns.port, name, "A")
    assert [(QTYPE[r.rtype], str(r.rname), str(r.rdata)) for r in chased.rr] == [
        ("CNAME", name + ".", "db.example.org."), ("A", "db.example.org.", "192.0.2.53")]
    assert cluster.upstream.queries == [("udp", "db.example.org.", "A")]
    # A cluster name as the target is resolved locally.
    local = await wait_answer(cluster.dns, "alias.default.svc.cluster.local",
                              lambda r: len(r.rr) == 2)
    assert [(QTYPE[r.rtype], str(r.rdata)) for r in local.rr] == [
        ("CNAME", SVC + "."), ("A", "10.96.0.50")]
    assert len(cluster.upstream.queries) == 1


async def test_pod_records_and_zone_records(cluster: DnsCluster) -> None:
    port = cluster.dns.port
    assert rdata(await query(port, "10-244-1-5.default.pod.cluster.local")) == ["10.244.1.5"]
    assert rdata(await query(port, "10-244-1-5.team.pod.cluster.local")) == ["10.244.1.5"]
    for bad in ("10-244-1-300.default.pod.cluster.local", "10-244-1.default.pod.cluster.local",
                "a.10-244-1-5.default.pod.cluster.local"):
        assert (await query(port, bad)).header.rcode == RCODE.NXDOMAIN, bad
    txt = await query(port, "dns-version.cluster.local", "TXT")
    assert rdata(txt) == ['"1.1.0"']
    soa = await query(port, "cluster.local", "SOA")
    assert [QTYPE[r.rtype] for r in soa.rr] == ["SOA"]
    assert str(soa.rr[0].rdata.mname) == "ns.dns.cluster.local."
    ns = await query(port, "cluster.local", "NS")
    assert rdata(ns) == ["ns.dns.cluster.local."]
    await cluster.client.create(SERVICES, service("kube-dns", namespace="kube-system",
                                                  ip="10.96.0.10"))
    await wait_answer(cluster.dns, "ns.dns.cluster.local", lambda r: rdata(r) == ["10.96.0.10"])
    assert cluster.upstream.queries == []


async def test_forwarding_to_the_upstream(cluster: DnsCluster) -> None:
    reply = await query(cluster.dns.port, "example.org")
    assert rdata(reply) == ["192.0.2.53"] and reply.header.aa == 0
    tcp = await query(cluster.dns.port, "example.net", tcp=True)
    assert rdata(tcp) == ["192.0.2.53"]
    assert cluster.upstream.queries == [("udp", "example.org.", "A"),
                                        ("tcp", "example.net.", "A")]


async def test_truncation_over_udp_and_full_answers_over_tcp(cluster: DnsCluster) -> None:
    client = cluster.client
    await client.create(SERVICES, service("big", headless=True))
    await client.create(ENDPOINTSLICES, endpoint_slice(
        "big", [endpoint(f"10.244.2.{i}") for i in range(1, 41)]))
    name = "big.default.svc.cluster.local"
    full = await wait_answer(cluster.dns, name, lambda r: len(r.rr) == 40 or bool(r.header.tc))
    assert full.header.tc == 1 and full.rr == []  # 40 A records do not fit 512 bytes
    over_tcp = await query(cluster.dns.port, name, tcp=True)
    assert over_tcp.header.tc == 0 and len(over_tcp.rr) == 40
    with_edns = await query(cluster.dns.port, name, edns=4096)
    assert with_edns.header.tc == 0 and len(with_edns.rr) == 40
    assert [QTYPE[r.rtype] for r in with_edns.ar] == ["OPT"]


async def test_malformed_and_unsupported_queries(cluster: DnsCluster) -> None:
    port = cluster.dns.port
    # A header with two questions: FORMERR.
    two = bytes([0x12, 0x34, 0x01, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0]) + b"\x00\x00\x01\x00\x01"
    reply = await query(port, "", raw=two)
    assert reply.header.rcode == RCODE.FORMERR and reply.header.id == 0x1234
    # Opcode STATUS (2): not implemented.
    status = bytes([0x00, 0x07, 0x10, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]) + b"\x00\x00\x01\x00\x01"
    assert (await query(port, "", raw=status)).header.rcode == RCODE.NOTIMP
    # Class CHAOS: refused.
    chaos = bytes([0x00, 0x08, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]) + b"\x00\x00\x10\x00\x03"
    assert (await query(port, "", raw=chaos)).header.rcode == RCODE.REFUSED
    # Garbage is dropped; the server keeps answering.
    await send_only(port, b"\x00\x01garbage")
    assert (await query(port, "cluster.local", "SOA")).rr


async def send_only(port: int, packet: bytes) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       remote_addr=("127.0.0.1", port))
    transport.sendto(packet)
    transport.close()
