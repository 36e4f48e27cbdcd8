"""The gRPC health check (``grpc.health.v1.Health/Check``) over plain-text HTTP/2, by hand.

A ``grpc`` probe asks the container's server one question. The exchange needs
only a sliver of HTTP/2, so it is written here rather than pulling in a gRPC stack::

    client                                        server
    preface "PRI * HTTP/2.0..." + SETTINGS  ──▶
    HEADERS (stream 1: POST /grpc.health.v1.Health/Check,
             content-type application/grpc, te trailers)  ──▶
    DATA (stream 1, END_STREAM): 0x00 | length | HealthCheckRequest{service}  ──▶
                                               ◀── SETTINGS (acknowledged), HEADERS
                                               ◀── DATA: HealthCheckResponse{status}
                                               ◀── HEADERS (trailers, END_STREAM)

Headers are sent as HPACK literals (no table, no Huffman); response headers are not
decoded — the answer is in the DATA frame: ``status`` 1 is SERVING. A response
with no message (a trailers-only error, e.g. an unknown service) is a failure.
"""

from __future__ import annotations

import asyncio
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


class GrpcHealthError(Exception):
    """The health RPC did not produce an answer."""


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _length(value: int, prefix_bits: int = 7) -> bytes:
    """An HPACK integer with a ``prefix_bits`` prefix (the H bit left 0)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out = [limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name."""
    raw_name, raw_value = name.encode(), value.encode()
    return b"\x00" + _length(len(raw_name)) + raw_name + _length(len(raw_value)) + raw_value


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def request_frames(authority: str, service: str) -> bytes:
    headers = b"".join(_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
        (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers"),
        ("user-agent", "kube-probe/1.32")))
    message = (b"\x0a" + _varint(len(service.encode())) + service.encode()) if service else b""
    body = b"\x00" + struct.pack(">I", len(message)) + message
    return (PREFACE + _frame(SETTINGS, 0, 0, b"") + _frame(HEADERS, END_HEADERS, 1, headers)
            + _frame(DATA, END_STREAM, 1, body))


def parse_status(message: bytes) -> int:
    """``status`` (field 1, varint) of a HealthCheckResponse; 0 (UNKNOWN) if absent."""
    i = 0
    while i < len(message):
        key = message[i]
        i += 1
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, shift = 0, 0
            while True:
                byte = message[i]
                i += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if field == 1:
                return value
        elif wire == 2:
            length = message[i]
            i += 1 + length
        else:
            break
    return 0


async def check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str,
                service: str) -> int:
    """Run one health check on an open connection; the serving status (1 = SERVING)."""
    writer.write(request_frames(authority, service))
    await writer.drain()
    data = b""
    while True:
        header = await reader.readexactly(9)
        length = int.from_bytes(header[:3], "big")
        kind, flags = header[3], header[4]
        stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        payload = await reader.readexactly(length)
        if kind == SETTINGS and not flags & ACK:
            writer.write(_frame(SETTINGS, ACK, 0, b""))
        elif kind == PING and not flags & ACK:
            writer.write(_frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            raise GrpcHealthError("the server closed the connection (GOAWAY)")
        elif kind == RST_STREAM and stream == 1:
            raise GrpcHealthError("the server reset the health RPC")
        elif kind == DATA and stream == 1:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            data += payload
        if stream == 1 and kind in (DATA, HEADERS, CONTINUATION) and flags & END_STREAM:
            break
    if len(data) < 5:
        raise GrpcHealthError("the server answered without a health status")
    size = int.from_bytes(data[1:5], "big")
    return parse_status(data[5:5 + size])
