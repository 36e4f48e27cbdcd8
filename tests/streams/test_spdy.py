"""SPDY/3.1 framing, byte by byte: frame layouts, header blocks, the zlib dictionary."""

from __future__ import annotations

import struct
import zlib

import pytest

from skiff.kubelet.streams import spdy
from skiff.kubelet.streams.spdy import (DataFrame, FrameDecoder, FrameEncoder, GoAway, HeadersFrame,
                                        Ping, ProtocolError, RstStream, Settings, SynReply,
                                        SynStream, WindowUpdate)

#: What kubectl 1.32 sent for one forwarded connection (KUBECTL_PORT_FORWARD_WEBSOCKETS=false):
#: SYN_STREAM error, FIN on it, SYN_STREAM data, the request bytes, RST_STREAM CANCEL.
KUBECTL_PORT_FORWARD = bytes.fromhex(
    "800300010000003e0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45"
    "e01c60616061c0c0c0c0590489c64c50f2663400000000ffff0000000101000000800300010000001800000003"
    "000000000000c2aa19540e2512d60b000000ffff000000030000001c474554202f696e6465782e68746d6c2048"
    "5454502f312e300d0a0d0a80030003000000080000000300000005")


def test_the_dictionary_is_the_specified_one() -> None:
    # The zlib stream names its preset dictionary by adler32: kubectl's header blocks
    # carry 0xe3c6a7c2 right after the zlib header (bytes 0x78 0xf9).
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert bytes.fromhex("78f9e3c6a7c2") in KUBECTL_PORT_FORWARD


def test_decodes_what_kubectl_sends() -> None:
    frames = FrameDecoder().feed(KUBECTL_PORT_FORWARD)
    headers = {"streamtype": "error", "port": "8080", "requestid": "0"}
    assert frames == [
        SynStream(1, headers),
        DataFrame(1, b"", fin=True),
        SynStream(3, {**headers, "streamtype": "data"}),
        DataFrame(3, b"GET /index.html HTTP/1.0\r\n\r\n"),
        RstStream(3, spdy.RstStatus.CANCEL),
    ]


def test_frames_split_anywhere_decode_the_same() -> None:
    decoder = FrameDecoder()
    frames = []
    for i in range(len(KUBECTL_PORT_FORWARD)):
        frames += decoder.feed(KUBECTL_PORT_FORWARD[i:i + 1])
    assert len(frames) == 5 and decoder.pending == 0
    assert frames[2] == SynStream(3, {"streamtype": "data", "port": "8080", "requestid": "0"})


def test_data_frame_layout() -> None:
    assert spdy.encode_data(3, b"hi", fin=True) == b"\x00\x00\x00\x03\x01\x00\x00\x02hi"
    assert spdy.encode_data(0x7FFFFFFF, b"") == b"\x7f\xff\xff\xff\x00\x00\x00\x00"


@pytest.mark.parametrize("frame, raw", [
    (RstStream(5, 3), "80030003 00000008 00000005 00000003"),
    (Ping(7), "80030006 00000004 00000007"),
    (GoAway(9, 0), "80030007 00000008 00000009 00000000"),
    (WindowUpdate(1, 65536), "80030009 00000008 00000001 00010000"),
    (Settings(((1, 4, 100),)), "80030004 0000000c 00000001 01000004 00000064"),
])
def test_control_frame_layouts(frame: spdy.Frame, raw: str) -> None:
    data = bytes.fromhex(raw.replace(" ", ""))
    assert FrameEncoder().encode(frame) == data
    assert FrameDecoder().feed(data) == [frame]


def test_header_block_layout() -> None:
    block = spdy.encode_header_block({"streamtype": "error", "port": "80"})
    assert block == (b"\x00\x00\x00\x02" + b"\x00\x00\x00\x0astreamtype" + b"\x00\x00\x00\x05error"
                     + b"\x00\x00\x00\x04port" + b"\x00\x00\x00\x0280")
    assert spdy.decode_header_block(block) == {"streamtype": "error", "port": "80"}
    with pytest.raises(ProtocolError):
        spdy.decode_header_block(block[:-1])
    with pytest.raises(ProtocolError):
        spdy.decode_header_block(b"\x00\x00\x00\x02" + block[4:] + block[4:])   # duplicates


def test_syn_reply_layout_and_one_zlib_stream_per_direction() -> None:
    encoder, decoder = FrameEncoder(), FrameDecoder()
    first = encoder.encode(SynReply(1, {}))
    second = encoder.encode(SynReply(3, {}))
    # control bit + version 3, type 2, no flags, the length of what follows
    assert first[:4] == b"\x80\x03\x00\x02"
    assert struct.unpack(">I", first[4:8])[0] == len(first) - 8
    assert first[8:12] == b"\x00\x00\x00\x01"
    assert first[12] == 0x78 and first[13] & 0x20            # zlib header with FDICT set
    assert first[14:18] == b"\xe3\xc6\xa7\xc2"               # ... naming the dictionary
    assert first.endswith(b"\x00\x00\xff\xff")                # flushed at every block
    assert second[14:18] != b"\xe3\xc6\xa7\xc2"              # the same stream goes on: no header
    assert decoder.feed(first + second) == [SynReply(1, {}), SynReply(3, {})]
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(second)        # a fresh decoder cannot start mid-stream


def test_syn_stream_flags_priority_and_headers_frames_round_trip() -> None:
    frames = [SynStream(5, {"a": "1", "b": "x\x00y"}, associated_to=2, priority=3, slot=1, fin=True,
                        unidirectional=True),
              HeadersFrame(5, {"c": "2"}, fin=True),
              SynReply(5, {"d": "3"}, fin=True)]
    encoder, decoder = FrameEncoder(), FrameDecoder()
    raw = b"".join(encoder.encode(f) for f in frames)
    assert raw[4] == spdy.FLAG_FIN | spdy.FLAG_UNIDIRECTIONAL
    assert raw[16] == 3 << 5 and raw[17] == 1                 # priority in the top 3 bits, slot
    assert decoder.feed(raw) == frames


def test_unknown_control_frames_are_skipped_and_other_versions_refused() -> None:
    unknown = b"\x80\x03\x00\x0a\x00\x00\x00\x02ab"
    assert FrameDecoder().feed(unknown + spdy.encode_data(1, b"x")) == [DataFrame(1, b"x")]
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(b"\x80\x03\x00\x06\x00\x00\x00\x02\x00\x01")   # a PING too short
