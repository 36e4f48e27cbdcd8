"""Kubernetes ``resource.Quantity``: parse, compare, add and print resource amounts.

A quantity is a fixed-point number with a suffix::

    quantity := sign? number suffix
    number   := digits | digits "." digits? | "." digits
    suffix   := ""                                   plain number (decimal SI)
              | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"     decimal SI
              | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"                 binary SI
              | ("e" | "E") sign? digits                                decimal exponent

The value is exact (a :class:`~fractions.Fraction`); anything finer than one
nano-unit is rounded up, away from zero, as Kubernetes does (``"0.1n"`` is
``1n``).  A quantity remembers the *format* of its suffix and prints itself in
Kubernetes' canonical form:

- ``"0"`` for zero;
- the largest suffix of its format that leaves an integer mantissa
  (``"1.5"`` -> ``"1500m"``, ``"1000m"`` -> ``"1"``, ``"1.5Gi"`` -> ``"1536Mi"``,
  ``"12e2"`` -> ``"1200"``, ``"1e3"`` -> ``"1e3"``);
- binary quantities strictly between -1024 and 1024, or with a fractional
  part, print in decimal SI (``"0.5Ki"`` -> ``"512"``, ``"1.5Ki"`` -> ``"1536"``).

Consumers that need integers use :meth:`Quantity.value` (whole units, rounded
up) and :meth:`Quantity.milli_value` (thousandths, rounded up) — the scheduler
counts CPU in millicores and memory in bytes this way.

:func:`parse_quantity` caches its results (quantities are immutable), so the
same ``"100m"`` in ten thousand pod specs is parsed once.
"""

from __future__ import annotations

import enum
import functools
import re
from fractions import Fraction
from typing import Any

__all__ = [
    "Format",
    "Quantity",
    "QuantityError",
    "parse_quantity",
    "milli_value",
    "int_value",
    "canonical",
]


class QuantityError(ValueError):
    """A string that is not a valid quantity."""


class Format(enum.Enum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}

_RE = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(.*)")
_NANO = Fraction(1, 10**9)


def _away_from_zero(value: Fraction) -> int:
    """Round to an integer away from zero (Kubernetes' ``RoundUp``)."""
    return value.__ceil__() if value >= 0 else -((-value).__ceil__())


class Quantity:
    """An immutable resource amount with the suffix format it was written in."""

    __slots__ = ("_amount", "_format", "_text")

    def __init__(self, amount: Fraction | int, fmt: Format = Format.DECIMAL_SI) -> None:
        amount = Fraction(amount)
        if amount.denominator != 1 and (amount / _NANO).denominator != 1:
            amount = _away_from_zero(amount / _NANO) * _NANO
        self._amount = amount
        self._format = fmt
        self._text: str | None = None

    # -- construction -----------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Quantity:
        return parse_quantity(text)

    @classmethod
    def from_milli(cls, millis: int, fmt: Format = Format.DECIMAL_SI) -> Quantity:
        return cls(Fraction(millis, 1000), fmt)

    # -- accessors ----------------------------------------------------------------

    @property
    def amount(self) -> Fraction:
        """The exact value."""
        return self._amount

    @property
    def format(self) -> Format:
        return self._format

    def value(self) -> int:
        """Whole units, rounded up (Kubernetes' ``Value()``): bytes for memory."""
        return _away_from_zero(self._amount)

    def milli_value(self) -> int:
        """Thousandths, rounded up (Kubernetes' ``MilliValue()``): millicores for CPU."""
        return _away_from_zero(self._amount * 1000)

    def is_zero(self) -> bool:
        return self._amount == 0

    # -- arithmetic and comparison --------------------------------------------------

    def __add__(self, other: object) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        return Quantity(self._amount + other._amount, self._format)

    def __sub__(self, other: object) -> Quantity:
        if not isinstance(other, Quantity):
            return NotImplemented
        return Quantity(self._amount - other._amount, self._format)

    def __neg__(self) -> Quantity:
        return Quantity(-self._amount, self._format)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self._amount == other._amount
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._amount)

    def __lt__(self, other: Quantity) -> bool:
        return self._amount < other._amount

    def __le__(self, other: Quantity) -> bool:
        return self._amount <= other._amount

    def __gt__(self, other: Quantity) -> bool:
        return self._amount > other._amount

    def __ge__(self, other: Quantity) -> bool:
        return self._amount >= other._amount

    def cmp(self, other: Quantity) -> int:
        """-1, 0 or 1, like Kubernetes' ``Cmp``."""
        return (self._amount > other._amount) - (self._amount < other._amount)

    # -- printing -----------------------------------------------------------------

    def __str__(self) -> str:
        if self._text is None:
            self._text = _canonical_text(self._amount, self._format)
        return self._text

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"


def _canonical_text(amount: Fraction, fmt: Format) -> str:
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    magnitude = -amount if amount < 0 else amount
    if fmt is Format.BINARY_SI and magnitude >= 1024 and magnitude.denominator == 1:
        mantissa, power = magnitude.numerator, 0
        while power < 6 and mantissa % 1024 == 0:
            mantissa //= 1024
            power += 1
        return f"{sign}{mantissa}{_BINARY_BY_POWER[power]}"
    # Decimal: an integer count of nano-units, then the largest multiple-of-3 exponent.
    mantissa = (magnitude / _NANO).numerator  # exact: the constructor rounded to nanos
    exponent = -9
    limit = 18 if fmt is not Format.DECIMAL_EXPONENT else 10**9
    while exponent < limit and mantissa % 1000 == 0:
        mantissa //= 1000
        exponent += 3
    if fmt is Format.DECIMAL_EXPONENT:
        suffix = f"e{exponent}" if exponent else ""
    else:
        suffix = _DECIMAL_BY_EXPONENT[exponent]
    return f"{sign}{mantissa}{suffix}"


@functools.lru_cache(maxsize=8192)
def _parse(text: str) -> Quantity:
    m = _RE.fullmatch(text)
    if m is None:
        raise QuantityError(f"quantities must match the regular expression "
                            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")
    sign, number, suffix = m.groups()
    value = Fraction(number)
    if sign == "-":
        value = -value
    if suffix in _DECIMAL_SUFFIXES:
        return Quantity(value * Fraction(10) ** _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI)
    if suffix in _BINARY_SUFFIXES:
        return Quantity(value * (1 << _BINARY_SUFFIXES[suffix]), Format.BINARY_SI)
    if len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[+-]?\d+", suffix[1:]):
        return Quantity(value * Fraction(10) ** int(suffix[1:]), Format.DECIMAL_EXPONENT)
    raise QuantityError(f"unable to parse quantity's suffix: {text!r}")


def parse_quantity(value: Any) -> Quantity:
    """Parse a quantity string (ints and floats are accepted, as JSON numbers are).

    Raises :class:`QuantityError` for anything malformed.
    """
    if isinstance(value, Quantity):
        return value
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Quantity(value)
    if isinstance(value, float):
        return _parse(repr(value)) if "e" not in repr(value) else Quantity(Fraction(value))
    if not isinstance(value, str) or not value:
        raise QuantityError(f"not a quantity: {value!r}")
    return _parse(value.strip())


def milli_value(value: Any) -> int:
    """``parse_quantity(value).milli_value()``: the form CPU is counted in."""
    return parse_quantity(value).milli_value()


def int_value(value: Any) -> int:
    """``parse_quantity(value).value()``: the form memory, storage and counts are counted in."""
    return parse_quantity(value).value()


def canonical(value: Any) -> str:
    """Re-spell a quantity in canonical form (``"1000m"`` -> ``"1"``)."""
    return str(parse_quantity(value))
