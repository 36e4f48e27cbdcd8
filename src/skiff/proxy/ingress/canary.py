"""Canary Ingresses, as ingress-nginx defines them through annotations.

A canary Ingress carries ``nginx.ingress.kubernetes.io/canary: "true"`` and
repeats a host + path (same path, same pathType) of a main Ingress. It makes no
route of its own: it gives that route a second backend and a policy saying which
requests go there. Per request, the first rule that decides wins::

    canary-by-header: H        request header H present?
      + canary-by-header-value V    H == V            ─▶ canary   (else: next rule)
      + canary-by-header-pattern P  H matches regex P ─▶ canary   (else: next rule)
      (neither)                     H == "always"     ─▶ canary
                                    H == "never"      ─▶ main
    canary-by-cookie: C        cookie C == "always" ─▶ canary, == "never" ─▶ main
    canary-weight: W           a roll of 1..T (T = canary-weight-total, at least 100)
                               is <= W                 ─▶ canary
    otherwise                                          ─▶ main

So ``canary-weight: "0"`` with a header gives A/B testing by header, ``"100"``
is a blue/green switch, ``"20"`` sends one request in five. Only one canary
applies to a route (the oldest canary Ingress for it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = PREFIX + "canary"
WEIGHT = PREFIX + "canary-weight"
WEIGHT_TOTAL = PREFIX + "canary-weight-total"
BY_HEADER = PREFIX + "canary-by-header"
BY_HEADER_VALUE = PREFIX + "canary-by-header-value"
BY_HEADER_PATTERN = PREFIX + "canary-by-header-pattern"
BY_COOKIE = PREFIX + "canary-by-cookie"

#: Roll a number in 1..n (inclusive); random.randint(1, n) in production, fixed in tests.
Roll = Callable[[int], int]


def parse_bool(value: Any) -> bool | None:
    """A boolean annotation as Go's strconv.ParseBool reads it; None when it is not one."""
    text = str(value).strip()
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    return None


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def pcre_to_python(pattern: str) -> str:
    """Named groups the PCRE way (``(?<name>``) spelled the Python way (``(?P<name>``)."""
    return re.sub(r"\(\?<(?![=!])", "(?P<", pattern)


@dataclass(frozen=True)
class CanaryPolicy:
    """Which requests a canary backend takes (see module docstring)."""

    weight: int = 0
    weight_total: int = 100
    header: str = ""
    header_value: str = ""
    header_pattern: str = ""
    cookie: str = ""

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, Any]) -> "CanaryPolicy | None":
        """The policy of a canary Ingress; None when the Ingress is not a canary."""
        if not parse_bool(annotations.get(CANARY, "")):
            return None
        total = max(100, _int(annotations.get(WEIGHT_TOTAL, 100), 100))
        weight = min(max(0, _int(annotations.get(WEIGHT, 0), 0)), total)
        return cls(weight=weight, weight_total=total,
                   header=str(annotations.get(BY_HEADER, "")).strip(),
                   header_value=str(annotations.get(BY_HEADER_VALUE, "")),
                   header_pattern=str(annotations.get(BY_HEADER_PATTERN, "")),
                   cookie=str(annotations.get(BY_COOKIE, "")).strip())

    def selects(self, headers: Mapping[str, str], cookies: Mapping[str, str], roll: Roll) -> bool:
        """Whether this request goes to the canary. ``headers`` must be case-insensitive."""
        value = headers.get(self.header) if self.header else None
        if value is not None:
            if self.header_value:
                if value == self.header_value:
                    return True
            elif self.header_pattern:
                try:
                    if re.search(pcre_to_python(self.header_pattern), value):
                        return True
                except re.error:
                    return False            # ingress-nginx: a broken pattern routes to main
            elif value == "always":
                return True
            elif value == "never":
                return False
        cookie = cookies.get(self.cookie) if self.cookie else None
        if cookie == "always":
            return True
        if cookie == "never":
            return False
        return self.weight > 0 and roll(self.weight_total) <= self.weight
