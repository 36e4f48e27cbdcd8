"""Quantities (``"100m"``, ``"1.5Gi"``, ``"2e3"``): exact values of resource.Quantity strings.

Values are :class:`fractions.Fraction` so comparisons (requests <= limits, quota
sums) are exact; :func:`canonical_quantity` re-spells a value the way the API
server prints it (``1000m`` -> ``1``, ``1.5Gi`` -> ``1536Mi``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")


def parse_quantity(value: Any) -> Fraction | None:
    """The exact value of a quantity (``"100m"`` -> 1/10); ``None`` when it is malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value).limit_denominator(10**9)
    if not isinstance(value, str):
        return None
    m = _QUANTITY_RE.match(value.strip())
    if not m:
        return None
    number = Fraction(m.group(1))
    suffix = m.group(2) or ""
    if suffix in _BINARY_SUFFIXES:
        return number * Fraction(1024 ** _BINARY_SUFFIXES[suffix])
    exponent = _DECIMAL_SUFFIXES[suffix] if suffix in _DECIMAL_SUFFIXES else int(suffix[1:])
    return number * Fraction(10) ** exponent


def is_valid_quantity(value: Any) -> bool:
    return parse_quantity(value) is not None


def quantity_is_binary(value: Any) -> bool:
    return isinstance(value, str) and value.strip()[-2:] in _BINARY_SUFFIXES


def format_quantity(amount: Fraction | int, binary: bool = False) -> str:
    """Canonical text: the largest suffix that keeps an integer (``1500m`` -> ``1500m``,
    ``1000m`` -> ``1``, ``1048576`` binary -> ``1Mi``); fractions below 1n round up."""
    q = Fraction(amount)
    sign = "-" if q < 0 else ""
    q = abs(q)
    if binary and q.denominator == 1 and q >= 1024:
        n, exp = q.numerator, 0
        while exp < 6 and n % 1024 == 0:
            n, exp = n // 1024, exp + 1
        if exp:
            suffix = {v: k for k, v in _BINARY_SUFFIXES.items()}[exp]
            return f"{sign}{n}{suffix}"
    if q == 0:
        return "0"
    # smallest unit: nano; round up like Kubernetes does
    nanos = -((-q * 10**9) // 1)
    exp = -9
    n = int(nanos)
    while exp < 18 and n % 1000 == 0:
        n, exp = n // 1000, exp + 3
    suffix = {v: k for k, v in _DECIMAL_SUFFIXES.items()}[exp]
    return f"{sign}{n}{suffix}"


def canonical_quantity(value: Any) -> str:
    """Re-spell a quantity the way the API server stores it (``"1000m"`` -> ``"1"``)."""
    amount = parse_quantity(value)
    if amount is None:
        return str(value)
    return format_quantity(amount, binary=quantity_is_binary(value))
