"""The DNS codec and record table on their own, checked against dnslib's decoder."""

from __future__ import annotations

from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A, CNAME, DNSRecord, EDNS0

from skiff.proxy.dns.records import ClusterRecords
from skiff.proxy.dns.wire import (
    A as TYPE_A, AAAA, NXDOMAIN, PTR, QNAME, Answer, WireError, decode_name, encode_name,
    is_subdomain, parse_query, parse_records, rehome, reply, rr,
)

Obj = dict[str, Any]
ZONE = encode_name("cluster.local")


def packet(name: str, qtype: str = "A", *, edns: int | None = None) -> bytes:
    request = DNSRecord.question(name, qtype)
    request.header.id = 0xBEEF
    if edns is not None:
        request.add_ar(EDNS0(udp_len=edns))
    return bytes(request.pack())


def test_parse_query_keys_on_the_lower_cased_name() -> None:
    query = parse_query(packet("Web.Default.SVC.cluster.local", "SRV"))
    assert query is not None
    assert query.id == 0xBEEF and query.qtype == 33 and query.qclass == 1
    assert query.key == encode_name("web.default.svc.cluster.local")
    assert query.edns is None
    assert query.question.startswith(b"\x03Web\x07Default")
    assert parse_query(packet("x.cluster.local", edns=4096)).edns == 4096  # type: ignore[union-attr]
    assert parse_query(packet("x.cluster.local", edns=100)).edns == 512  # type: ignore[union-attr]


def test_parse_query_rejects_what_it_cannot_answer() -> None:
    good = packet("a.b")
    assert parse_query(good[:15]) is None  # cut short
    assert parse_query(good[:2] + b"\x81\x00" + good[4:]) is None  # a response, not a query
    pointer = good[:12] + b"\xc0\x0c\x00\x01\x00\x01"
    assert parse_query(pointer) is None


def test_names() -> None:
    assert encode_name("a.bc.") == b"\x01a\x02bc\x00"
    assert encode_name("") == b"\x00"
    assert decode_name(b"\x01a\x02bc\x00") == "a.bc"
    with pytest.raises(WireError):
        encode_name("x" * 64 + ".local")
    with pytest.raises(WireError):
        encode_name("a..b")
    assert is_subdomain(encode_name("web.default.svc.cluster.local"), ZONE)
    assert is_subdomain(ZONE, ZONE)
    assert not is_subdomain(encode_name("xcluster.local"), ZONE)
    assert not is_subdomain(encode_name("cluster.local.example"), ZONE)


def test_reply_decodes_with_the_question_as_asked_and_truncates() -> None:
    query = parse_query(packet("WEB.x.cluster.local"))
    assert query is not None
    answer = Answer(0, 2, 0, 0, rr(QNAME, TYPE_A, 30, bytes([10, 0, 0, 1]))
                    + rr(QNAME, TYPE_A, 30, bytes([10, 0, 0, 2])))
    decoded = DNSRecord.parse(reply(query, answer))
    assert decoded.header.id == 0xBEEF and decoded.header.rd == 1 and decoded.header.aa == 1
    assert [(str(r.rname), str(r.rdata), r.ttl) for r in decoded.rr] == [
        ("WEB.x.cluster.local.", "10.0.0.1", 30), ("WEB.x.cluster.local.", "10.0.0.2", 30)]
    cut = DNSRecord.parse(reply(query, answer, limit=40))
    assert cut.header.tc == 1 and cut.rr == [] and str(cut.q.qname) == "WEB.x.cluster.local."
    nx = DNSRecord.parse(reply(query, Answer(NXDOMAIN, 0, 0, 0, b"")))
    assert nx.header.rcode == RCODE.NXDOMAIN


def test_rehome_and_parse_records_with_compression() -> None:
    body = rr(QNAME, TYPE_A, 5, bytes([1, 2, 3, 4]))
    owner = encode_name("t.example")
    assert rehome(body, 1, owner) == rr(owner, TYPE_A, 5, bytes([1, 2, 3, 4]))
    upstream = DNSRecord.question("www.example.org", "A").reply()
    upstream.add_answer(RR("www.example.org", QTYPE.CNAME, rdata=CNAME("edge.example.org"),
                           ttl=60))
    upstream.add_answer(RR("edge.example.org", QTYPE.A, rdata=A("192.0.2.7"), ttl=20))
    rcode, records = parse_records(bytes(upstream.pack()))  # dnslib compresses the names
    assert rcode == 0
    assert [(decode_name(r.name), r.rtype, r.ttl) for r in records] == [
        ("www.example.org", 5, 60), ("edge.example.org", 1, 20)]
    assert decode_name(records[0].rdata) == "edge.example.org"
    assert records[1].rdata == bytes([192, 0, 2, 7])


def svc(name: str, ns: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def slice_(service: str, ns: str, ips: list[str], name: str = "s1") -> Obj:
    return {"metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


def test_records_come_and_go_with_their_service() -> None:
    records = ClusterRecords(serial=1)
    name = encode_name("a.team.svc.cluster.local")
    namespace = encode_name("team.svc.cluster.local")
    assert records.lookup(namespace, TYPE_A) is records.nxdomain
    records.set_service(svc("a", "team", clusterIP="10.96.1.1", ports=[]))
    answer = records.lookup(name, TYPE_A)
    assert answer is not None and answer.answers == 1
    assert records.lookup(name, AAAA) is records.nodata
    assert records.lookup(namespace, TYPE_A) is records.nodata
    assert records.lookup(encode_name("example.org"), TYPE_A) is None  # not ours: forward
    records.delete_service(svc("a", "team"))
    assert records.lookup(name, TYPE_A) is records.nxdomain
    assert records.lookup(namespace, TYPE_A) is records.nxdomain
    assert records.lookup(encode_name("1.1.96.10.in-addr.arpa"), PTR) is None


def test_a_pod_ip_behind_two_headless_services_has_two_ptrs() -> None:
    records = ClusterRecords(serial=1)
    for name in ("x", "y"):
        records.set_service(svc(name, "ns", clusterIP="None", ports=[]))
        records.set_slice(slice_(name, "ns", ["10.244.0.9"], name=f"{name}-1"))
    reverse = encode_name("9.0.244.10.in-addr.arpa")
    answer = records.lookup(reverse, PTR)
    assert answer is not None and answer.answers == 2
    records.delete_slice(slice_("x", "ns", [], name="x-1"))
    answer = records.lookup(reverse, PTR)
    assert answer is not None and answer.answers == 1
    records.delete_service(svc("y", "ns"))
    assert records.lookup(reverse, PTR) is None
