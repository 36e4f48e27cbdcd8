"""The small pure pieces: channel framing, resize decoding, statuses, log options and output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from skiff.kubelet.runtime.logs import LogRecord
from skiff.kubelet.streams import channels
from skiff.kubelet.streams.logs import (LogOptions, format_record, parse_rfc3339, render,
                                        rfc3339_nano, validate)
from skiff.kubelet.streams.portforward import parse_ports
from skiff.kubelet.streams.remotecommand import (ResizeDecoder, StreamOptions, exit_status,
                                                 internal_status)


def test_channel_frames() -> None:
    assert channels.frame(channels.STDERR, b"oops") == b"\x02oops"
    assert channels.unframe(b"\xff\x00") == (channels.CLOSE, b"\x00")
    with pytest.raises(ValueError):
        channels.unframe(b"")


def test_the_clients_preference_picks_the_protocol() -> None:
    assert channels.choose(["v5.channel.k8s.io", "v4.channel.k8s.io"], channels.EXEC_PROTOCOLS) == channels.V5
    assert channels.choose(["v4.channel.k8s.io", "v5.channel.k8s.io"], channels.EXEC_PROTOCOLS) == channels.V4
    assert channels.choose(["v5.channel.k8s.io", "v4.channel.k8s.io"],
                           channels.PORT_FORWARD_PROTOCOLS) == channels.V4
    assert channels.choose(["base64.channel.k8s.io"], channels.EXEC_PROTOCOLS) is None


def test_resize_stream_is_a_sequence_of_json_objects() -> None:
    decoder = ResizeDecoder()
    assert decoder.feed(b'{"Width":80,"Height":24}\n{"Width":1') == [(80, 24)]
    assert decoder.feed(b'00,"Height":50}\n') == [(100, 50)]
    assert decoder.feed(b'{"Width":0,"Height":0}  {"Width":3,"Height":4}') == [(3, 4)]


def test_stream_options_from_kubelet_and_api_names() -> None:
    assert StreamOptions.from_query({"input": "1", "output": "1", "error": "1"}) == \
        StreamOptions(stdin=True, stdout=True, stderr=True, tty=False)
    tty = StreamOptions.from_query({"stdin": "true", "stdout": "true", "stderr": "true", "tty": "true"})
    assert tty == StreamOptions(stdin=True, stdout=True, stderr=False, tty=True)
    assert tty.stream_types() == {"error", "stdin", "stdout", "resize"}


def test_exit_statuses() -> None:
    assert exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failed = exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert "sh -c 'exit 3'" in failed["message"]
    assert exit_status(-9, ["sleep"])["details"]["causes"][0]["message"] == "137"   # SIGKILL
    assert internal_status("boom")["message"] == "Internal error occurred: boom"
    json.dumps(failed)


def test_log_options_parse_and_validate() -> None:
    opts = LogOptions.from_query({"follow": "true", "tailLines": "3", "timestamps": "1",
                                  "sinceTime": "2024-05-01T12:00:00.123456789Z", "limitBytes": "10"})
    assert (opts.follow, opts.tail_lines, opts.timestamps, opts.limit_bytes) == (True, 3, True, 10)
    assert opts.since_time == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert LogOptions(since_seconds=60).since(now) == now - timedelta(seconds=60)
    assert validate(opts) == []
    assert validate(LogOptions(tail_lines=-1, limit_bytes=0)) == [
        "tailLines: Invalid value: -1: must be greater than or equal to 0",
        "limitBytes: Invalid value: 0: must be greater than 0"]
    assert validate(LogOptions(since_seconds=5, since_time=now))[0].startswith("sinceSeconds: Forbidden")
    with pytest.raises(ValueError, match="tailLines"):
        LogOptions.from_query({"tailLines": "many"})
    with pytest.raises(ValueError, match="sinceTime"):
        LogOptions.from_query({"sinceTime": "yesterday"})
    assert parse_rfc3339("2024-05-01T14:00:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def test_timestamps_print_as_go_rfc3339nano() -> None:
    assert rfc3339_nano("2024-05-01T12:00:00.123456789Z") == "2024-05-01T12:00:00.123456789Z"
    assert rfc3339_nano("2024-05-01T12:00:00.120000000Z") == "2024-05-01T12:00:00.12Z"
    assert rfc3339_nano("2024-05-01T12:00:00.000000000Z") == "2024-05-01T12:00:00Z"
    record = LogRecord("2024-05-01T12:00:00.500000000Z", "stderr", False, b"hello")
    assert format_record(record, timestamps=False) == b"hello\n"
    assert format_record(record, timestamps=True) == b"2024-05-01T12:00:00.5Z hello\n"


async def _records(*lines: bytes) -> AsyncIterator[LogRecord]:
    for i, line in enumerate(lines):
        yield LogRecord(f"2024-05-01T12:00:0{i}.000000000Z", "stdout", False, line)


async def test_render_cuts_at_limit_bytes_including_prefixes() -> None:
    chunks = [c async for c in render(_records(b"one", b"two", b"three"), LogOptions(limit_bytes=6))]
    assert b"".join(chunks) == b"one\ntw"
    stamped = [c async for c in render(_records(b"one"), LogOptions(timestamps=True, limit_bytes=12))]
    assert b"".join(stamped) == b"2024-05-01T1"
    everything = [c async for c in render(_records(b"a", b"b"), LogOptions())]
    assert everything == [b"a\n", b"b\n"]


def test_port_lists() -> None:
    assert parse_ports(["80,443", "8080"]) == [80, 443, 8080]
    with pytest.raises(ValueError):
        parse_ports(["0"])
    with pytest.raises(ValueError):
        parse_ports(["http"])
