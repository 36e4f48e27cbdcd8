"""The OpenAPI string ``format``s Kubernetes keeps in custom resource schemas, and their checks.

When it builds a CRD's validator, kube-apiserver strips every ``format`` not in its
supported list (``int32``, ``int64``, ``float``, ``double``, anything unknown ...), so
those constrain nothing.  The ones it keeps
(:data:`SUPPORTED_FORMATS`, compared with dashes removed: ``date-time`` is ``datetime``)
are checked against string values as go-openapi's ``strfmt`` does:

* checked: ``bsonobjectid``, ``hostname``, ``ipv4``, ``ipv6``, ``cidr``, ``mac``,
  ``uuid``, ``uuid3``, ``uuid4``, ``uuid5``, ``ssn``, ``hexcolor``, ``rgbcolor``,
  ``byte`` (standard base64), ``date``, ``datetime`` (RFC 3339), ``duration`` (Go's
  ``time.ParseDuration`` or go-openapi's looser ``"3 days"`` forms);
* accepted unchecked: ``uri``, ``email``, ``isbn``, ``isbn10``, ``isbn13``,
  ``creditcard``, ``password``.

``hostname`` knows Unicode letters but only the ASCII symbols of ``\\p{S}``; IP
addresses are parsed like Kubernetes' ``ParseIPSloppy`` (IPv4 parts may have leading
zeros, IPv6 zones are refused).

    is_kept_format("int32")            -> False
    matches_format("ipv4", "10.0.0.1") -> True
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from typing import Callable

__all__ = ["SUPPORTED_FORMATS", "is_kept_format", "matches_format"]

SUPPORTED_FORMATS = frozenset((
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
    "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
    "byte", "password", "date", "duration", "datetime"))


def _normalized(fmt: str) -> str:
    return fmt.replace("-", "")


def is_kept_format(fmt: str) -> bool:
    """Whether Kubernetes keeps ``fmt`` in a custom resource schema (else it is stripped)."""
    return _normalized(fmt) in SUPPORTED_FORMATS


def matches_format(fmt: str, value: str) -> bool:
    """Whether ``value`` is a valid ``fmt``; True for formats that are not checked."""
    check = _FORMAT_CHECKS.get(_normalized(fmt))
    return check is None or check(value)


_HEX = "[0-9a-fA-F]"
_OCTET_MAX = 255
_RGB_PART = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"
_HN_ASCII = r"a-zA-Z0-9$+<=>^`|~"  # letters, digits and the ASCII symbols of \p{S}
_HN_CHAR = rf"(?:[{_HN_ASCII}]|[^\W\d_])"
_HN_CHAR_DASH = rf"(?:[-{_HN_ASCII}]|[^\W\d_])"
# go-openapi's hostname pattern, applied a label at a time (the whole-name pattern
# backtracks exponentially on a long invalid name): a single label, or labels then a
# top-level label of letters.
_HOSTNAME_SINGLE = re.compile(rf"{_HN_CHAR}(-?{_HN_CHAR}{{0,62}})?")
_HOSTNAME_LABEL = re.compile(rf"{_HN_CHAR}({_HN_CHAR_DASH}{{0,61}}{_HN_CHAR})?")
_HOSTNAME_TOP = re.compile(r"([a-zA-Z]|[^\W\d_]){2,63}")
_DURATION_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"),
                   ("m", "min"), ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))


def _regex_check(pattern: str, flags: int = re.ASCII) -> Callable[[str], bool]:
    compiled = re.compile(pattern, flags)
    return lambda s: compiled.fullmatch(s) is not None


def _is_date(s: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s, re.ASCII):
        return False
    year, month, day = int(s[:4]), int(s[5:7]), int(s[8:])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 2000, month)[1]


def _is_datetime(s: str) -> bool:
    parts = s.lower().split("t")
    if len(s) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = re.fullmatch(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))",
                     parts[1], re.ASCII | re.DOTALL)
    return m is not None and m[1] <= "23" and m[2] <= "59" and m[3] <= "59"


def _is_duration(s: str) -> bool:
    # Go's time.ParseDuration first, then go-openapi's looser "3 days 4 hours" forms.
    if re.fullmatch(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)", s, re.ASCII):
        return True
    for _, unit in re.findall(r"(\d+)\s*([A-Za-zµ]+)", s, re.ASCII):
        unit = unit.lower()
        for variants in _DURATION_UNITS:
            if any(unit == v or (i == len(variants) - 1 and unit.startswith(v))
                   for i, v in enumerate(variants)):
                return True
    return False


def _parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Like Kubernetes' ParseIPSloppy: IPv4 parts may have leading zeros; no zones."""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", s, re.ASCII)
    if m:
        parts = [int(p) for p in m.groups()]
        return ipaddress.IPv4Address(".".join(map(str, parts))) if max(parts) <= _OCTET_MAX else None
    if "%" in s or ":" not in s:
        return None
    try:
        return ipaddress.IPv6Address(s)
    except ValueError:
        return None


def _is_cidr(s: str) -> bool:
    address, slash, prefix = s.partition("/")
    ip = _parse_ip(address)
    return (ip is not None and bool(slash) and prefix.isascii() and prefix.isdigit()
            and int(prefix) <= (32 if ":" not in address else 128))


def _is_mac(s: str) -> bool:
    for groups in (6, 8, 20):
        if re.fullmatch(rf"{_HEX}{{2}}([:-]){_HEX}{{2}}(\1{_HEX}{{2}}){{{groups - 2}}}", s) or \
                re.fullmatch(rf"{_HEX}{{4}}(\.{_HEX}{{4}}){{{groups // 2 - 1}}}", s):
            return True
    return False


def _is_hostname(s: str) -> bool:
    labels = s.split(".")
    if len(s.encode()) > 255 or any(len(p.encode()) > 63 for p in labels):
        return False
    if len(labels) == 1:
        return _HOSTNAME_SINGLE.fullmatch(s) is not None
    return (all(_HOSTNAME_LABEL.fullmatch(p) is not None for p in labels[:-1])
            and _HOSTNAME_TOP.fullmatch(labels[-1]) is not None)


# 8-4-4-4-12 hex digits, dashes optional; %s: the third group, then the fourth's first digit
_UUID = rf"{_HEX}{{8}}-?{_HEX}{{4}}-?%s-?%s{_HEX}{{3}}-?{_HEX}{{12}}"

_FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "byte": _regex_check(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"),
    "date": _is_date,
    "datetime": _is_datetime,
    "duration": _is_duration,
    "uuid": _regex_check(_UUID % (f"{_HEX}{{4}}", _HEX)),
    "uuid3": _regex_check(_UUID % (f"3{_HEX}{{3}}", _HEX)),
    "uuid4": _regex_check(_UUID % (f"4{_HEX}{{3}}", "[89abAB]")),
    "uuid5": _regex_check(_UUID % (f"5{_HEX}{{3}}", "[89abAB]")),
    "ipv4": lambda s: _parse_ip(s) is not None and "." in s,
    "ipv6": lambda s: _parse_ip(s) is not None and ":" in s,
    "cidr": _is_cidr,
    "mac": _is_mac,
    "hostname": _is_hostname,
    "hexcolor": _regex_check(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})"),
    "rgbcolor": _regex_check(rf"rgb\({_RGB_PART},{_RGB_PART},{_RGB_PART}\)"),
    "ssn": lambda s: len(s) == 11 and re.fullmatch(r"\d{3}[- ]?\d{2}[- ]?\d{4}", s, re.ASCII) is not None,
    "bsonobjectid": _regex_check(rf"{_HEX}{{24}}"),
    "password": lambda s: True,
}
