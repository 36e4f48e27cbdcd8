"""Standard cron schedules, parsed as Kubernetes' CronJob validation parses them.

A schedule is five fields or a descriptor, optionally after ``TZ=<zone>``::

    ┌──────── minute        0-59
    │ ┌────── hour          0-23
    │ │ ┌──── day of month  1-31
    │ │ │ ┌── month         1-12 or JAN-DEC
    │ │ │ │ ┌ day of week   0-6  or SUN-SAT
    */5 9-17 * * MON-FRI

    @yearly @annually @monthly @weekly @daily @midnight @hourly @every <duration>

Each field is a comma list of ``*``/``?``, ``n``, ``a-b``, each optionally ``/step``
(``n/step`` means ``n-max/step``).  Errors read exactly like the Go parser's
(``expected exactly 5 fields, found 1: [bad]``) because they reach users in
``spec.schedule: Invalid value`` messages.  When both day fields are restricted
a day matches if *either* does (classic cron), otherwise both must.

:func:`parse` returns a :class:`Schedule` whose :meth:`Schedule.next` finds the
next activation, for the CronJob controller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
DOW_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """A schedule the parser rejects; ``str(err)`` is the Go parser's message."""


@dataclass(frozen=True)
class _Bounds:
    lo: int
    hi: int
    names: dict[str, int] | None = None


_FIELDS = (_Bounds(0, 59), _Bounds(0, 23), _Bounds(1, 31), _Bounds(1, 12, MONTH_NAMES), _Bounds(0, 6, DOW_NAMES))


def load_location(name: str) -> tzinfo:
    """Go's time.LoadLocation: ``UTC``/empty, ``Local``, or an IANA zone."""
    if name in ("", "UTC"):
        return timezone.utc
    if name == "Local":
        return datetime.now().astimezone().tzinfo or timezone.utc
    if name.startswith("/") or ".." in name.split("/"):
        raise CronError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name}") from None


def _atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if value < 0:
        raise CronError(f"negative number ({value}) not allowed: {text}")
    return value


def _int_or_name(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _atoi(text)


def _parse_range(expr: str, b: _Bounds) -> tuple[set[int], bool]:
    """One ``a-b/step`` term -> (values, star) where star marks an unrestricted ``*``/``?``."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = b.lo, b.hi, True
    else:
        start = _int_or_name(low_high[0], b.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], b.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if len(low_high) == 1:
            end = b.hi
        if step > 1:
            star = False
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < b.lo:
        raise CronError(f"beginning of range ({start}) below minimum ({b.lo}): {expr}")
    if end > b.hi:
        raise CronError(f"end of range ({end}) above maximum ({b.hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _parse_field(text: str, b: _Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for term in text.split(","):
        term_values, term_star = _parse_range(term, b)
        values |= term_values
        star = star or term_star
    return frozenset(values), star


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_TERM = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")


def parse_duration(text: str) -> timedelta:
    """Go's time.ParseDuration (``1h30m``, ``90s``, ``1.5h``), with its error messages."""
    quoted = '"' + text + '"'
    body = text[1:] if text[:1] in "+-" else text
    negative = text.startswith("-")
    if body == "0":
        return timedelta(0)
    if not body:
        raise CronError(f"time: invalid duration {quoted}")
    total, pos = 0.0, 0
    while pos < len(body):
        m = _DURATION_TERM.match(body, pos)
        if not m:
            raise CronError(f"time: invalid duration {quoted}")
        number, unit = m.group(1), m.group(2)
        if not unit:
            raise CronError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _DURATION_UNITS[unit]
        pos = m.end()
    return timedelta(seconds=-total if negative else total)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``every`` is set for ``@every <duration>`` schedules."""

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    day_star: bool = False  # day-of-month or day-of-week was unrestricted
    location: tzinfo = timezone.utc
    every: timedelta | None = None

    def _day_matches(self, when: datetime) -> bool:
        dom = when.day in self.days
        dow = (when.isoweekday() % 7) in self.weekdays
        return (dom and dow) if self.day_star else (dom or dow)

    def matches(self, when: datetime) -> bool:
        """Whether the schedule fires in the minute containing ``when``."""
        local = when.astimezone(self.location)
        return (local.minute in self.minutes and local.hour in self.hours
                and local.month in self.months and self._day_matches(local))

    def next(self, after: datetime) -> datetime | None:
        """The first activation strictly after ``after`` (aware datetime), or None within 5 years."""
        if self.every is not None:
            step = max(self.every, timedelta(seconds=1))
            return after.replace(microsecond=0) + timedelta(seconds=int(step.total_seconds()))
        local = after.astimezone(self.location).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = local + timedelta(days=366 * 5)
        while local <= limit:
            if local.month not in self.months:
                year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
                local = local.replace(year=year, month=month, day=1, hour=0, minute=0)
                continue
            if not self._day_matches(local):
                local = (local + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if local.hour not in self.hours:
                local = (local + timedelta(hours=1)).replace(minute=0)
                continue
            if local.minute not in self.minutes:
                local += timedelta(minutes=1)
                continue
            # normalise across DST transitions (the wall time may not exist)
            return datetime.fromtimestamp(local.timestamp(), self.location)
        return None


def parse(spec: str) -> Schedule:
    """Parse a standard schedule; raises :class:`CronError` with the Go parser's message."""
    if not spec:
        raise CronError("empty spec string")
    location: tzinfo = timezone.utc
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        if space < 0:
            space = len(spec)
        zone = spec[spec.index("=") + 1:space]
        try:
            location = load_location(zone)
        except CronError as exc:
            raise CronError(f"provided bad location {zone}: {exc}") from None
        spec = spec[space:].strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            text = spec[len("@every "):]
            try:
                every = parse_duration(text)
            except CronError as exc:
                raise CronError(f"failed to parse duration {spec}: {exc}") from None
            return Schedule(location=location, every=every)
        if spec not in DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [_parse_field(text, b) for text, b in zip(fields, _FIELDS)]
    return Schedule(minutes=parsed[0][0], hours=parsed[1][0], days=parsed[2][0], months=parsed[3][0],
                    weekdays=parsed[4][0], day_star=parsed[2][1] or parsed[4][1], location=location)


def validate(spec: str) -> str | None:
    """The parser's error message for ``spec``, or None when it parses."""
    try:
        parse(spec)
    except CronError as exc:
        return str(exc)
    return None
