"""Expectations hold a controller back until its own writes are observed."""

from __future__ import annotations

from skiff.client.clock import FakeClock
from skiff.client.expectations import Expectations


def test_unknown_key_is_satisfied() -> None:
    assert Expectations(clock=FakeClock()).satisfied("ns/rs")


def test_creations_must_all_be_observed() -> None:
    exp = Expectations(clock=FakeClock())
    exp.expect_creations("ns/rs", 3)
    for _ in range(2):
        exp.creation_observed("ns/rs")
        assert not exp.satisfied("ns/rs")
    assert exp.pending("ns/rs") == (1, 0)
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    assert exp.pending("ns/rs") == (0, 0)


def test_deletions_are_counted_once_per_uid() -> None:
    exp = Expectations(clock=FakeClock())
    exp.expect_deletions("ns/rs", ["u1", "u2"])
    exp.deletion_observed("ns/rs", "u1")
    exp.deletion_observed("ns/rs", "u1")  # seen again (deletionTimestamp, then DELETED)
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "u2")
    assert exp.satisfied("ns/rs")


def test_creations_and_deletions_are_kept_together() -> None:
    exp = Expectations(clock=FakeClock())
    exp.expect_creations("k", 1)
    exp.expect_deletions("k", ["u"])
    exp.creation_observed("k")
    assert not exp.satisfied("k")
    assert exp.pending("k") == (0, 1)


def test_expectations_expire_after_ttl() -> None:
    clock = FakeClock()
    exp = Expectations(clock=clock, ttl=300.0)
    exp.expect_creations("k", 5)
    clock.advance(300.0)
    assert not exp.satisfied("k")
    clock.advance(0.5)
    assert exp.satisfied("k")


def test_forget_and_keys_are_independent() -> None:
    exp = Expectations(clock=FakeClock())
    exp.expect_creations("a", 1)
    exp.expect_creations("b", 1)
    exp.forget("a")
    assert exp.satisfied("a")
    assert not exp.satisfied("b")
    exp.creation_observed("a")  # observing for an unknown key is harmless
    assert exp.satisfied("a")
