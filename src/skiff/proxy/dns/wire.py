"""DNS wire format: exactly what the cluster DNS needs, built for speed (RFC 1035/2782/6891).

A general DNS library spends ~100-200 µs decoding or encoding one message in
Python; at 5,000 queries/s that alone would eat a core.  The cluster DNS
avoids both on the hot path:

* a query is not decoded, only *scanned*: the ID, flags, the question name
  (lower-cased wire bytes are the lookup key), type, class, and the EDNS UDP
  size if an OPT record follows;
* answers are encoded ahead of time (:class:`Answer`: counts + the bytes after
  the question).  Every record whose owner is the question name starts with
  the compression pointer ``0xC00C`` (offset 12, where the question name
  always sits), so a precomputed body fits any spelling of the question and
  the reply is ``header + the client's own question bytes + body``::

      ┌ header 12 B ┐┌ question (copied) ┐┌ answer / authority / additional ┐[OPT]
       id flags counts  name type class      precomputed Answer.body

Other names in a body (SRV targets, SOA names, additional records) are written
uncompressed, so bodies never depend on where they are placed.

:func:`parse_records` is the one full decoder here (names with compression
pointers): the forwarder uses it to splice an upstream answer into an
ExternalName reply.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

# -- numbers -----------------------------------------------------------------------------

A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
OPCODE_MASK = 0x7800

#: The compression pointer to the question name (RFC 1035 4.1.4).
QNAME = b"\xc0\x0c"
#: Largest UDP reply without EDNS; EDNS replies are capped at what we advertise.
UDP_PLAIN = 512
UDP_EDNS = 1232
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_OPT = b"\x00" + _RR.pack(OPT, UDP_EDNS, 0, 0)


class WireError(ValueError):
    """A name or record that cannot be encoded."""


# -- names ---------------------------------------------------------------------------------

def encode_name(name: str) -> bytes:
    """``"web.default.svc.cluster.local"`` -> length-prefixed labels ending in a zero byte."""
    name = name.rstrip(".")
    out = bytearray()
    for label in name.split(".") if name else []:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise WireError(f"bad label {label!r} in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise WireError(f"name too long: {name!r}")
    return bytes(out)


def decode_name(wire: bytes) -> str:
    """Uncompressed wire name -> dotted text (no trailing dot; ``""`` for the root)."""
    labels = []
    i = 0
    while wire[i]:
        labels.append(wire[i + 1:i + 1 + wire[i]].decode("ascii", "replace"))
        i += 1 + wire[i]
    return ".".join(labels)


def labels_of(wire: bytes) -> list[bytes]:
    out = []
    i = 0
    while wire[i]:
        out.append(wire[i + 1:i + 1 + wire[i]])
        i += 1 + wire[i]
    return out


def is_subdomain(wire: bytes, zone: bytes) -> bool:
    """Whether name ``wire`` equals or lies under ``zone`` (both lower-cased wire names)."""
    if not wire.endswith(zone):
        return False
    cut = len(wire) - len(zone)
    i = 0
    while i < cut:
        i += 1 + wire[i]
    return i == cut


# -- queries --------------------------------------------------------------------------------

@dataclass(slots=True)
class Query:
    id: int
    flags: int
    #: The question name, lower-cased, in wire format: the lookup key.
    key: bytes
    qtype: int
    qclass: int
    #: The question section exactly as the client sent it.
    question: bytes
    #: The EDNS UDP payload size the client offered, or ``None`` without EDNS.
    edns: int | None


def parse_query(data: bytes) -> Query | None:
    """Scan a query; ``None`` when it is not one we can answer (see :func:`format_error`)."""
    if len(data) < 17:
        return None
    ident, flags, qdcount, _, _, arcount = _HEADER.unpack_from(data)
    if flags & QR or qdcount != 1:
        return None
    i, n = 12, len(data)
    while True:
        if i >= n:
            return None
        length = data[i]
        if length == 0:
            break
        if length > 63:
            return None  # compression in a question: nobody sends it
        i += length + 1
    end = i + 1
    if end + 4 > n:
        return None
    qtype = (data[end] << 8) | data[end + 1]
    qclass = (data[end + 2] << 8) | data[end + 3]
    qend = end + 4
    edns = None
    if arcount and qend + 11 <= n and data[qend] == 0 and data[qend + 1] == 0 \
            and data[qend + 2] == OPT:
        edns = max(UDP_PLAIN, (data[qend + 3] << 8) | data[qend + 4])
    return Query(ident, flags, data[12:end].lower(), qtype, qclass, data[12:qend], edns)


def format_error(data: bytes) -> bytes | None:
    """A FORMERR reply to an unparseable query (``None`` if not even the header is there)."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    ident, flags = struct.unpack_from("!HH", data)
    return _HEADER.pack(ident, QR | (flags & (OPCODE_MASK | RD)) | RA | FORMERR, 0, 0, 0, 0)


# -- answers ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Answer:
    """A precomputed reply: rcode, section counts and the bytes after the question."""

    rcode: int
    answers: int
    authority: int
    additional: int
    body: bytes
    authoritative: bool = True
    #: For an ExternalName: the CNAME target (wire) the server may resolve further.
    cname_target: bytes | None = None


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + _RR.pack(rtype, CLASS_IN, ttl, len(rdata)) + rdata


def ip_rdata(ip: str) -> tuple[int, bytes]:
    """(A or AAAA, the address bytes)."""
    parsed = ipaddress.ip_address(ip)
    return (AAAA if parsed.version == 6 else A), parsed.packed


def srv_rdata(priority: int, weight: int, port: int, target: bytes) -> bytes:
    return struct.pack("!HHH", priority, weight, port) + target


def txt_rdata(*texts: str) -> bytes:
    out = bytearray()
    for text in texts:
        raw = text.encode()
        out.append(len(raw))
        out += raw
    return bytes(out)


def soa_rdata(mname: bytes, rname: bytes, serial: int, refresh: int, retry: int, expire: int,
              minimum: int) -> bytes:
    return mname + rname + struct.pack("!IIIII", serial, refresh, retry, expire, minimum)


def reply(query: Query, answer: Answer, *, limit: int | None = None) -> bytes:
    """The reply to ``query``; truncated (TC, no records) if longer than ``limit`` bytes."""
    flags = QR | (query.flags & (OPCODE_MASK | RD)) | RA | answer.rcode
    if answer.authoritative:
        flags |= AA
    additional = answer.additional
    tail = answer.body
    if query.edns is not None:
        additional += 1
        tail += _OPT
    out = _HEADER.pack(query.id, flags, 1, answer.answers, answer.authority, additional) \
        + query.question + tail
    if limit is not None and len(out) > limit:
        return truncated(query)
    return out


def truncated(query: Query) -> bytes:
    flags = QR | (query.flags & (OPCODE_MASK | RD)) | RA | TC | AA
    if query.edns is not None:
        return _HEADER.pack(query.id, flags, 1, 0, 0, 1) + query.question + _OPT
    return _HEADER.pack(query.id, flags, 1, 0, 0, 0) + query.question


def error_reply(query: Query, rcode: int) -> bytes:
    return reply(query, Answer(rcode, 0, 0, 0, b"", authoritative=False))


def udp_limit(query: Query) -> int:
    return UDP_PLAIN if query.edns is None else min(query.edns, UDP_EDNS)


# -- decoding records (for upstream replies) ---------------------------------------------------

def _read_name(data: bytes, i: int) -> tuple[bytes, int]:
    """Decompress the name at ``i``: (uncompressed wire name, offset after it)."""
    out = bytearray()
    end = -1
    hops = 0
    while True:
        length = data[i]
        if length & 0xC0 == 0xC0:
            if end < 0:
                end = i + 2
            i = ((length & 0x3F) << 8) | data[i + 1]
            hops += 1
            if hops > 64:
                raise WireError("compression loop")
            continue
        if length == 0:
            out.append(0)
            return bytes(out), (end if end >= 0 else i + 1)
        out += data[i:i + 1 + length]
        i += 1 + length
        if len(out) > 255:
            raise WireError("name too long")


@dataclass(frozen=True, slots=True)
class Record:
    name: bytes  # uncompressed wire
    rtype: int
    ttl: int
    rdata: bytes  # names inside CNAME/PTR/NS rdata are decompressed

    def encode(self) -> bytes:
        return rr(self.name, self.rtype, self.ttl, self.rdata)


def parse_records(data: bytes) -> tuple[int, list[Record]]:
    """A reply's rcode and its answer-section records."""
    _, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    i = 12
    for _ in range(qdcount):
        _, i = _read_name(data, i)
        i += 4
    records = []
    for _ in range(ancount):
        name, i = _read_name(data, i)
        rtype, _, ttl, length = _RR.unpack_from(data, i)
        i += _RR.size
        rdata = data[i:i + length]
        if rtype in (CNAME, PTR, NS):
            rdata, _ = _read_name(data, i)
        i += length
        records.append(Record(name, rtype, ttl, rdata))
    return flags & 0x000F, records


def rehome(body: bytes, count: int, owner: bytes) -> bytes:
    """The first ``count`` records of a precomputed body with ``owner`` instead of ``QNAME``."""
    out = bytearray()
    i = 0
    for _ in range(count):
        if body[i:i + 2] != QNAME:
            raise WireError("record does not belong to the question name")
        length = struct.unpack_from("!H", body, i + 10)[0]
        out += owner + body[i + 2:i + 12 + length]
        i += 12 + length
    return bytes(out)


def question_packet(ident: int, name: bytes, qtype: int, *, edns: int | None = None) -> bytes:
    """A recursive query for ``name`` (wire) and ``qtype``."""
    packet = _HEADER.pack(ident, RD, 1, 0, 0, 1 if edns else 0) + name \
        + struct.pack("!HH", qtype, CLASS_IN)
    if edns:
        packet += b"\x00" + _RR.pack(OPT, edns, 0, 0)
    return packet
