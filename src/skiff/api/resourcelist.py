"""Resource lists (``{"cpu": "500m", "pods": "3"}``) as quota arithmetic sees them.

A :data:`ResourceList` maps resource names to :class:`~skiff.api.quantity.Quantity`.
The operations follow Kubernetes' quota helpers, which every quota and limit
check is written in terms of::

    add(a, b)                 key-wise sum; a key of only one side is kept
    subtract_floor(a, b)      a - b per key of either side, never below zero
    mask(a, names)            only the keys in ``names``
    exceeded(used, hard)      the keys of ``hard`` that ``used`` goes over
    remove_zeros(a)           drop zero amounts
    pretty(a)                 ``cpu=500m,pods=1`` (sorted by name)

A sum keeps the suffix style of its left side unless that side is zero, as
``resource.Quantity.Add`` does: ``0 + 256Mi`` prints ``256Mi``, ``1 + 500m``
prints ``1500m``.

:func:`pod_requests` and :func:`pod_limits` total a pod's containers the way the
scheduler, quota and LimitRanger all do: regular containers and restartable
(sidecar) init containers add up; each ordinary init container runs alone, next
to the sidecars started before it, so the pod needs the larger of the two.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .quantity import Quantity, QuantityError, parse_quantity

Obj = dict[str, Any]
ResourceList = dict[str, Quantity]

ZERO = Quantity(0)


def parse_list(values: Mapping[str, Any] | None) -> ResourceList:
    """A ``{name: quantity string}`` map as quantities (malformed entries are skipped)."""
    out: ResourceList = {}
    for name, value in (values or {}).items():
        try:
            out[name] = parse_quantity(value)
        except QuantityError:
            continue
    return out


def format_list(values: ResourceList) -> dict[str, str]:
    """The canonical strings an object stores (``{"cpu": "1500m"}``)."""
    return {name: str(q) for name, q in sorted(values.items())}


def plus(a: Quantity, b: Quantity) -> Quantity:
    """``a + b`` in ``a``'s suffix style (``b``'s when ``a`` is zero)."""
    return Quantity(a.amount + b.amount, b.format if a.is_zero() else a.format)


def minus(a: Quantity, b: Quantity) -> Quantity:
    return Quantity(a.amount - b.amount, b.format if a.is_zero() else a.format)


def add(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        out[name] = plus(out[name], q) if name in out else q
    return out


def subtract_floor(a: ResourceList, b: ResourceList) -> ResourceList:
    """``a - b`` per key of either list, zero where it would go negative."""
    out: ResourceList = {}
    for name, q in a.items():
        diff = minus(q, b[name]) if name in b else q
        out[name] = diff if diff.amount > 0 else ZERO
    for name in b:
        out.setdefault(name, ZERO)
    return out


def mask(a: ResourceList, names: Iterable[str]) -> ResourceList:
    wanted = set(names)
    return {name: q for name, q in a.items() if name in wanted}


def remove_zeros(a: ResourceList) -> ResourceList:
    return {name: q for name, q in a.items() if not q.is_zero()}


def negative(a: ResourceList) -> list[str]:
    return sorted(name for name, q in a.items() if q.amount < 0)


def exceeded(used: ResourceList, hard: ResourceList) -> list[str]:
    """Names whose ``used`` amount is above ``hard`` (names missing from ``used`` pass)."""
    return sorted(name for name, limit in hard.items() if name in used and used[name] > limit)


def equal(a: ResourceList, b: ResourceList) -> bool:
    """Same names with the same amounts (``1000m`` equals ``1``)."""
    return a.keys() == b.keys() and all(a[name] == b[name] for name in a)


def pretty(a: ResourceList) -> str:
    return ",".join(f"{name}={a[name]}" for name in sorted(a))


# -- pod totals ----------------------------------------------------------------------


def _accumulate(total: ResourceList, more: ResourceList) -> None:
    for name, q in more.items():
        total[name] = plus(total[name], q) if name in total else q


def _take_max(total: ResourceList, other: ResourceList) -> None:
    for name, q in other.items():
        if name not in total or q > total[name]:
            total[name] = q


def _pod_total(spec: Obj, section: str, overhead: bool) -> ResourceList:
    total: ResourceList = {}
    for container in spec.get("containers") or []:
        _accumulate(total, parse_list((container.get("resources") or {}).get(section)))
    sidecars: ResourceList = {}
    init_peak: ResourceList = {}
    for container in spec.get("initContainers") or []:
        own = parse_list((container.get("resources") or {}).get(section))
        if container.get("restartPolicy") == "Always":
            _accumulate(total, own)
            _accumulate(sidecars, own)
            running = dict(sidecars)
        else:
            running = dict(own)
            _accumulate(running, sidecars)
        _take_max(init_peak, running)
    _take_max(total, init_peak)
    if overhead:
        extra = parse_list(spec.get("overhead"))
        if section == "limits":  # overhead raises the limits a pod has, it adds none
            extra = mask(extra, total)
        _accumulate(total, extra)
    return total


def pod_requests(spec: Obj, *, overhead: bool = True) -> ResourceList:
    """What the pod requests in all (``spec.overhead`` included unless ``overhead=False``)."""
    return _pod_total(spec, "requests", overhead)


def pod_limits(spec: Obj, *, overhead: bool = True) -> ResourceList:
    """The pod's limits in all (see :func:`pod_requests`)."""
    return _pod_total(spec, "limits", overhead)
