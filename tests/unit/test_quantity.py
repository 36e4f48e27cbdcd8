"""resource.Quantity: parsing, canonical form, rounding, arithmetic, comparison."""

from fractions import Fraction

import pytest

from skiff.api.quantity import (Format, Quantity, QuantityError, canonical, int_value, milli_value,
                                parse_quantity)


@pytest.mark.parametrize("text,canon", [
    ("0", "0"),
    ("100m", "100m"),
    ("1.5", "1500m"),
    ("1000m", "1"),
    ("0.5", "500m"),
    ("128Mi", "128Mi"),
    ("1.5Gi", "1536Mi"),
    ("1024Ki", "1Mi"),
    ("0.5Ki", "512"),        # binary below 1024 prints decimal
    ("1.5Ki", "1536"),       # 1536 is not a multiple of 1024
    ("1G", "1G"),
    ("1000k", "1M"),
    ("1e3", "1e3"),
    ("1E3", "1e3"),
    ("12e2", "1200"),
    ("1e-3", "1e-3"),
    ("2048", "2048"),
    ("0.1n", "1n"),          # finer than a nano-unit rounds up
    ("1.23456789123", "1234567892n"),
    ("0.0015", "1500u"),
    ("-1.5", "-1500m"),
    ("+2", "2"),
    ("1E", "1E"),            # E alone is the exa suffix
    (".5", "500m"),
    ("5.", "5"),
    ("0Mi", "0"),
])
def test_canonical_form(text: str, canon: str) -> None:
    assert str(parse_quantity(text)) == canon
    assert canonical(text) == canon
    # canonical text parses back to the same value
    assert parse_quantity(canon) == parse_quantity(text)


@pytest.mark.parametrize("text,fmt", [
    ("1", Format.DECIMAL_SI), ("1k", Format.DECIMAL_SI), ("1Ki", Format.BINARY_SI),
    ("1e3", Format.DECIMAL_EXPONENT),
])
def test_format_follows_suffix(text: str, fmt: Format) -> None:
    assert parse_quantity(text).format is fmt


@pytest.mark.parametrize("text,millis,units", [
    ("100m", 100, 1),
    ("1", 1000, 1),
    ("1.5", 1500, 2),
    ("0.1m", 1, 1),
    ("128Mi", 134217728000, 134217728),
    ("1G", 10**12, 10**9),
    ("250u", 1, 1),
    ("-100m", -100, -1),
])
def test_integer_views_round_up(text: str, millis: int, units: int) -> None:
    q = parse_quantity(text)
    assert q.milli_value() == millis
    assert q.value() == units
    assert milli_value(text) == millis
    assert int_value(text) == units


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1Zi", "1e", "1ee3", "m", "1 Mi", "--1", "1.5x"])
def test_malformed_is_rejected(bad: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(bad)


def test_non_string_inputs() -> None:
    assert str(parse_quantity(3)) == "3"
    assert parse_quantity(0.5).amount == Fraction(1, 2)
    with pytest.raises(QuantityError):
        parse_quantity(True)
    with pytest.raises(QuantityError):
        parse_quantity(None)


def test_arithmetic_keeps_left_format() -> None:
    total = parse_quantity("1Gi") + parse_quantity("512Mi")
    assert str(total) == "1536Mi"
    assert str(parse_quantity("1") - parse_quantity("250m")) == "750m"
    assert str(-parse_quantity("2Ki")) == "-2Ki"
    assert str(Quantity.from_milli(1500)) == "1500m"


def test_comparison() -> None:
    assert parse_quantity("1") == parse_quantity("1000m")
    assert parse_quantity("1Ki") > parse_quantity("1k")
    assert parse_quantity("999m") < parse_quantity("1")
    assert parse_quantity("1Gi").cmp(parse_quantity("1G")) == 1
    assert parse_quantity("1G").cmp(parse_quantity("1Gi")) == -1
    assert parse_quantity("1e3").cmp(parse_quantity("1k")) == 0
    assert sorted([parse_quantity(x) for x in ["1Gi", "100Mi", "2G"]]) == [
        parse_quantity("100Mi"), parse_quantity("1Gi"), parse_quantity("2G")]
    assert len({parse_quantity("1"), parse_quantity("1000m")}) == 1
