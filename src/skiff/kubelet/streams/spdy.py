"""SPDY/3.1 frames: bytes <-> frame objects, with compressed header blocks.

SPDY is the older multiplexing protocol Kubernetes still uses for streaming
(``kubectl exec`` falls back to it, ``kubectl port-forward`` carries it inside
websocket messages).  Every frame starts with 8 bytes::

    control frame   |1| version (15) = 3 | type (16) |  flags (8) | length (24) | payload
    data frame      |0|      stream id (31)          |  flags (8) | length (24) | data

Control frames (payload layouts, big-endian)::

    SYN_STREAM  1   stream id, associated stream id, priority (3 bits) + slot, header block
    SYN_REPLY   2   stream id, header block
    RST_STREAM  3   stream id, status code
    SETTINGS    4   count, then (flags 8 | id 24, value 32) entries
    PING        6   ping id
    GOAWAY      7   last good stream id, status code
    HEADERS     8   stream id, header block
    WINDOW_UPDATE 9 stream id, delta window size

Flags: ``FIN`` (0x01) ends the sender's half of a stream, on data frames and
on SYN_STREAM/SYN_REPLY/HEADERS; ``UNIDIRECTIONAL`` (0x02) on SYN_STREAM.

A header block is ``count, (name length, name, value length, value)…`` (32-bit
lengths, lowercase names, several values joined by NUL), compressed with zlib
using the SPDY/3 dictionary below.  Each direction of a connection has **one**
zlib stream for all its header blocks, flushed (Z_SYNC_FLUSH) after each
block, so :class:`FrameEncoder` and :class:`FrameDecoder` are stateful and must
see every frame of their direction in order.  Unknown control frame types are
skipped, as the specification asks.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from typing import Union

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
MAX_FRAME_LENGTH = (1 << 24) - 1
MAX_HEADER_BLOCK = 1 << 20      # decompressed; more is treated as an attack


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1."""


# -- the header compression dictionary (from the SPDY/3 specification) -------------------

_DICTIONARY_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
    "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
)
_DICTIONARY_TEXT = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,"
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0."
)
#: Every word as a length-prefixed string, then the text: 1423 bytes, adler32 0xe3c6a7c2.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICTIONARY_WORDS) \
    + _DICTIONARY_TEXT.encode()

Headers = dict[str, str]   # lowercase name -> value (several values joined by "\0")


# -- frames -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_to: int = 0
    priority: int = 0
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()   # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = Union[DataFrame, SynStream, SynReply, RstStream, Settings, Ping, GoAway, HeadersFrame,
              WindowUpdate]


# -- header blocks --------------------------------------------------------------------------


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed block: count, then length-prefixed names and values."""
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        parts += [struct.pack(">I", len(raw_name)), raw_name,
                  struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(parts)


def decode_header_block(block: bytes) -> Headers:
    try:
        (count,), offset = struct.unpack_from(">I", block), 4
        headers: Headers = {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, offset)
            name = block[offset + 4:offset + 4 + size]
            offset += 4 + size
            (size,) = struct.unpack_from(">I", block, offset)
            value = block[offset + 4:offset + 4 + size]
            offset += 4 + size
            if len(value) != size:
                raise ProtocolError("truncated header block")
            key = name.decode("latin-1").lower()
            if key in headers:
                raise ProtocolError(f"duplicate header {key!r}")
            headers[key] = value.decode("latin-1")
    except struct.error:
        raise ProtocolError("truncated header block") from None
    if offset != len(block):
        raise ProtocolError("trailing bytes after the header block")
    return headers


class HeaderCompressor:
    """One direction's zlib stream for header blocks."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                      zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        block = encode_header_block(headers)
        return self._zlib.compress(block) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, data: bytes) -> Headers:
        try:
            block = self._zlib.decompress(data, MAX_HEADER_BLOCK)
        except zlib.error as err:
            raise ProtocolError(f"bad compressed header block: {err}") from None
        if self._zlib.unconsumed_tail:
            raise ProtocolError("header block too large")
        return decode_header_block(block)


# -- encoding -----------------------------------------------------------------------------


def _control(frame_type: FrameType, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise ValueError("frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def encode_data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    if len(data) > MAX_FRAME_LENGTH:
        raise ValueError("frame too large")
    flags = FLAG_FIN if fin else 0
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class FrameEncoder:
    """Frames -> bytes for one direction of a connection (owns its header compressor)."""

    def __init__(self) -> None:
        self.headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, DataFrame):
            return encode_data(frame.stream_id, frame.data, frame.fin)
        if isinstance(frame, SynStream):
            flags = (FLAG_FIN if frame.fin else 0) | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
            head = struct.pack(">IIBB", frame.stream_id & 0x7FFFFFFF, frame.associated_to & 0x7FFFFFFF,
                               (frame.priority & 0x7) << 5, frame.slot)
            return _control(FrameType.SYN_STREAM, flags, head + self.headers.compress(frame.headers))
        if isinstance(frame, SynReply):
            head = struct.pack(">I", frame.stream_id & 0x7FFFFFFF)
            return _control(FrameType.SYN_REPLY, FLAG_FIN if frame.fin else 0,
                            head + self.headers.compress(frame.headers))
        if isinstance(frame, HeadersFrame):
            head = struct.pack(">I", frame.stream_id & 0x7FFFFFFF)
            return _control(FrameType.HEADERS, FLAG_FIN if frame.fin else 0,
                            head + self.headers.compress(frame.headers))
        if isinstance(frame, RstStream):
            return _control(FrameType.RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (flags << 24) | ident, value) for flags, ident, value in frame.entries)
            return _control(FrameType.SETTINGS, 0x01 if frame.clear else 0, body)
        if isinstance(frame, Ping):
            return _control(FrameType.PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            return _control(FrameType.GOAWAY, 0,
                            struct.pack(">II", frame.last_good_stream_id, frame.status))
        if isinstance(frame, WindowUpdate):
            return _control(FrameType.WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")


# -- decoding -----------------------------------------------------------------------------


class FrameDecoder:
    """Bytes -> frames for one direction: feed what arrives, get the complete frames."""

    def __init__(self) -> None:
        self.headers = HeaderDecompressor()
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            word, flags_length = struct.unpack_from(">II", self._buffer)
            length = flags_length & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = flags_length >> 24
            if word & 0x80000000:
                frame = self._control(word, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(DataFrame(word & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN)))
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buffer)

    def _control(self, word: int, flags: int, payload: bytes) -> Frame | None:
        version, kind = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        fin = bool(flags & FLAG_FIN)
        try:
            if kind == FrameType.SYN_STREAM:
                stream_id, associated, priority, slot = struct.unpack_from(">IIBB", payload)
                return SynStream(stream_id & 0x7FFFFFFF, self.headers.decompress(payload[10:]),
                                 associated & 0x7FFFFFFF, priority >> 5, slot, fin,
                                 bool(flags & FLAG_UNIDIRECTIONAL))
            if kind in (FrameType.SYN_REPLY, FrameType.HEADERS):
                (stream_id,) = struct.unpack_from(">I", payload)
                headers = self.headers.decompress(payload[4:])
                if kind == FrameType.SYN_REPLY:
                    return SynReply(stream_id & 0x7FFFFFFF, headers, fin)
                return HeadersFrame(stream_id & 0x7FFFFFFF, headers, fin)
            if kind == FrameType.RST_STREAM:
                stream_id, status = struct.unpack(">II", payload)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if kind == FrameType.SETTINGS:
                (count,) = struct.unpack_from(">I", payload)
                entries = []
                for index in range(count):
                    flags_id, value = struct.unpack_from(">II", payload, 4 + 8 * index)
                    entries.append((flags_id >> 24, flags_id & 0xFFFFFF, value))
                return Settings(tuple(entries), clear=bool(flags & 0x01))
            if kind == FrameType.PING:
                (ping_id,) = struct.unpack(">I", payload)
                return Ping(ping_id)
            if kind == FrameType.GOAWAY:
                last, status = struct.unpack(">II", payload)
                return GoAway(last & 0x7FFFFFFF, status)
            if kind == FrameType.WINDOW_UPDATE:
                stream_id, delta = struct.unpack(">II", payload)
                return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise ProtocolError(f"malformed control frame of type {kind}") from None
        return None   # an unknown control frame: ignored
