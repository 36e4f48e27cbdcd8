"""Quantities for validation and Table cells, on top of :mod:`skiff.api.quantity`.

Validation wants "the exact value, or None when malformed" (so it can report a field
error instead of raising); cells want the canonical spelling the API server prints
(``1000m`` -> ``1``, ``1.5Gi`` -> ``1536Mi``).  Parsing and formatting themselves live
in :mod:`skiff.api.quantity`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ...quantity import Format, Quantity, QuantityError
from ...quantity import parse_quantity as _parse


def parse_quantity(value: Any) -> Fraction | None:
    """The exact value of a quantity (``"100m"`` -> 1/10); ``None`` when it is malformed."""
    try:
        return _parse(value).amount
    except QuantityError:
        return None


def is_valid_quantity(value: Any) -> bool:
    return parse_quantity(value) is not None


def quantity_is_binary(value: Any) -> bool:
    try:
        return _parse(value).format is Format.BINARY_SI
    except QuantityError:
        return False


def format_quantity(amount: Fraction | int, binary: bool = False) -> str:
    """Canonical text of an amount (binary suffixes when ``binary``)."""
    return str(Quantity(amount, Format.BINARY_SI if binary else Format.DECIMAL_SI))


def canonical_quantity(value: Any) -> str:
    """Re-spell a quantity the way the API server stores it; malformed input is returned as is."""
    try:
        return str(_parse(value))
    except QuantityError:
        return str(value)
