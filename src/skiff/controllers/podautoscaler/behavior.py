"""From the metrics' proposal to the replica count written to the scale subresource.

The metrics propose a count (the highest over all of an HPA's metrics); this module
damps it over time and clamps it to ``spec.minReplicas`` / ``spec.maxReplicas``.  It is
pure: the caller passes the time and the per-HPA :class:`History` it keeps in memory
(Kubernetes keeps the same in memory, so a controller restart forgets it)::

    proposed ─▶ stabilize (recent recommendations) ─▶ limit the rate ─▶ clamp ─▶ replicas
                      │                                   │
                      └─ AbleToScale=True reason          └─ ScalingLimited status/reason

:func:`normalize` assumes ``minReplicas <= current_replicas <= maxReplicas`` and
``current_replicas > 0``: the controller handles the other cases itself, without
normalizing (it scales straight to the bound, or stops at zero).

Without ``spec.behavior`` (the original HPA algorithm):

- stabilization: the highest recommendation of the last ``downscale_stabilization``
  seconds (kube-controller-manager's ``--horizontal-pod-autoscaler-downscale-stabilization``,
  5 minutes) wins, so scale-down waits until load has stayed low for the whole window
  while scale-up is immediate;
- rate: at most ``max(2 * current, 4)`` replicas in one step;
- clamp: to ``[minReplicas, maxReplicas]`` (``minReplicas`` absent means 1).

With ``spec.behavior`` (autoscaling/v2), per direction (``scaleUp`` / ``scaleDown``):

- stabilization: the proposal is held between the *lowest* recommendation of the
  scale-up window and the *highest* of the scale-down window; a count between the two
  stays where it is;
- rate: each policy allows a count relative to the replicas at the start of its period
  (``current - added + removed`` by the scale events within the last ``periodSeconds``):
  ``Pods`` allows ``start +/- value``, ``Percent`` allows ``ceil(start * (1 + value%))`` up
  or ``floor(start * (1 - value%))`` down.  ``selectPolicy: Max`` takes the policy allowing the
  biggest change, ``Min`` the smallest, ``Disabled`` forbids that direction;
- clamp: to ``[minReplicas, maxReplicas]``.

The API server fills the gaps of a behavior (``scaleUp``: window 0, Pods 4 and Percent 100
per 15 s, Max; ``scaleDown``: Percent 100 per 15 s, Max); the same defaults apply here to
any field still absent, and an absent ``scaleDown.stabilizationWindowSeconds`` is
``downscale_stabilization``, as in Kubernetes.

Conditions (``Decision.able_to_scale`` is the AbleToScale=True reason and message;
``Decision.limited`` is the ScalingLimited status, reason and message)::

    AbleToScale   ReadyForNewScale     recommended size matches current size
                  ScaleDownStabilized  recent recommendations were higher than current one,
                                       applying the highest recent recommendation
                  ScaleUpStabilized    recent recommendations were lower than current one,
                                       applying the lowest recent recommendation
    ScalingLimited False DesiredWithinRange the desired count is within the acceptable range
                   True  TooFewReplicas     the desired replica count is less than the minimum
                                            replica count
                   True  TooManyReplicas    the desired replica count is more than the maximum
                                            replica count
                   True  ScaleUpLimit       the desired replica count is increasing faster than
                                            the maximum scale rate
                   True  ScaleDownLimit     the desired replica count is decreasing faster than
                                            the maximum scale rate

ScalingLimited is True exactly when the rate limit or a bound changed the stabilized count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Decision", "History", "normalize", "record_initial_recommendation", "record_scale"]

Obj = dict[str, Any]

READY_FOR_NEW_SCALE = ("ReadyForNewScale", "recommended size matches current size")
SCALE_DOWN_STABILIZED = ("ScaleDownStabilized", "recent recommendations were higher than current "
                         "one, applying the highest recent recommendation")
SCALE_UP_STABILIZED = ("ScaleUpStabilized", "recent recommendations were lower than current one, "
                       "applying the lowest recent recommendation")
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
SCALE_UP_LIMIT = ("ScaleUpLimit",
                  "the desired replica count is increasing faster than the maximum scale rate")
SCALE_DOWN_LIMIT = ("ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate")

_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)


@dataclass
class History:
    """What the controller remembers per HPA between syncs (Kubernetes keeps this in memory too)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)   # (time, recommended)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)   # (time, added)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)  # (time, removed)


@dataclass(frozen=True)
class Decision:
    """The count to write, and the conditions that explain it."""

    replicas: int
    able_to_scale: tuple[str, str]    # AbleToScale=True: (reason, message)
    limited: tuple[bool, str, str]    # ScalingLimited: (status, reason, message)


@dataclass(frozen=True)
class _Policy:
    type: str       # "Pods" | "Percent"
    value: int
    period: float   # seconds


@dataclass(frozen=True)
class _Rules:
    window: float
    select: str     # "Max" | "Min" | "Disabled"
    policies: tuple[_Policy, ...]


def record_initial_recommendation(history: History, current_replicas: int, now: float) -> None:
    """Seed an empty history with the current count, as Kubernetes does at an HPA's first sync.

    This is why a freshly started controller does not scale down at once: the current
    count sits in the stabilization window.  :func:`normalize` calls it too; a controller
    that wants Kubernetes' exact timing calls it at the start of every sync, right after
    reading the scale (it does nothing once the history has a recommendation).
    """
    if not history.recommendations:
        history.recommendations.append((now, current_replicas))


def normalize(spec: Obj, history: History, current_replicas: int, proposed: int, now: float, *,
              downscale_stabilization: float = 300.0) -> Decision:
    """Turn the metrics' ``proposed`` count into the count to scale to (see the module doc).

    Records ``proposed`` in ``history.recommendations`` and forgets recommendations older
    than every stabilization window.
    """
    record_initial_recommendation(history, current_replicas, now)
    min_replicas = _int(spec.get("minReplicas"), 1)
    max_replicas = _int(spec.get("maxReplicas"), 0)
    behavior = spec.get("behavior")
    if not isinstance(behavior, dict):
        return _normalize_plain(history, current_replicas, proposed, now, min_replicas,
                                max_replicas, downscale_stabilization)
    up = _scale_up_rules(behavior.get("scaleUp"))
    down = _scale_down_rules(behavior.get("scaleDown"), downscale_stabilization)
    return _normalize_with_behavior(history, current_replicas, proposed, now, min_replicas,
                                    max_replicas, up, down)


def record_scale(history: History, spec: Obj, old_replicas: int, new_replicas: int,
                 now: float) -> None:
    """Remember a scale the controller made, for the rate policies of ``spec.behavior``.

    Only HPAs with a behavior keep events (the plain algorithm does not use them).  Events
    older than the direction's longest policy period are forgotten.
    """
    behavior = spec.get("behavior")
    if not isinstance(behavior, dict) or new_replicas == old_replicas:
        return
    if new_replicas > old_replicas:
        events = history.scale_up_events
        rules = _scale_up_rules(behavior.get("scaleUp"))
    else:
        events = history.scale_down_events
        rules = _scale_down_rules(behavior.get("scaleDown"), 0.0)
    cutoff = now - max((p.period for p in rules.policies), default=0.0)
    events[:] = [(t, n) for t, n in events if t >= cutoff]
    events.append((now, abs(new_replicas - old_replicas)))


# --- without spec.behavior ----------------------------------------------------------------

def _normalize_plain(history: History, current: int, proposed: int, now: float, min_replicas: int,
                     max_replicas: int, window: float) -> Decision:
    cutoff = now - window
    recent = [(t, n) for t, n in history.recommendations if t >= cutoff]
    stabilized = max([proposed, *(n for _, n in recent)])
    history.recommendations[:] = [*recent, (now, proposed)]
    able = SCALE_DOWN_STABILIZED if stabilized != proposed else READY_FOR_NEW_SCALE

    scale_up_limit = max(2 * current, 4)
    if max_replicas > scale_up_limit:
        maximum, over = scale_up_limit, SCALE_UP_LIMIT
    else:
        maximum, over = max_replicas, TOO_MANY
    if stabilized < min_replicas:
        desired, why = min_replicas, TOO_FEW
    elif stabilized > maximum:
        desired, why = maximum, over
    else:
        desired, why = stabilized, WITHIN_RANGE
    return Decision(desired, able, (desired != stabilized, *why))


# --- with spec.behavior -------------------------------------------------------------------

def _normalize_with_behavior(history: History, current: int, proposed: int, now: float,
                             min_replicas: int, max_replicas: int, up: _Rules,
                             down: _Rules) -> Decision:
    up_cutoff, down_cutoff = now - up.window, now - down.window
    lowest_up = min([proposed, *(n for t, n in history.recommendations if t > up_cutoff)])
    highest_down = max([proposed, *(n for t, n in history.recommendations if t > down_cutoff)])
    stabilized = min(max(current, lowest_up), highest_down)
    history.recommendations[:] = [(t, n) for t, n in history.recommendations
                                  if t >= up_cutoff or t >= down_cutoff]
    history.recommendations.append((now, proposed))
    if stabilized == proposed:
        able = READY_FOR_NEW_SCALE
    else:
        able = SCALE_UP_STABILIZED if proposed >= current else SCALE_DOWN_STABILIZED

    desired, why = stabilized, WITHIN_RANGE
    if stabilized > current:
        limit = max(_scale_up_limit(current, history, up, now), current)
        if max_replicas > limit:
            maximum, over = limit, SCALE_UP_LIMIT
        else:
            maximum, over = max_replicas, TOO_MANY
        if stabilized > maximum:
            desired, why = maximum, over
    elif stabilized < current:
        limit = min(_scale_down_limit(current, history, down, now), current)
        if min_replicas < limit:
            minimum, under = limit, SCALE_DOWN_LIMIT
        else:
            minimum, under = min_replicas, TOO_FEW
        if stabilized < minimum:
            desired, why = minimum, under
    return Decision(desired, able, (desired != stabilized, *why))


def _period_start(current: int, history: History, period: float, now: float) -> int:
    """The replica count at the start of a policy's period, undoing the scales made in it."""
    cutoff = now - period
    added = sum(n for t, n in history.scale_up_events if t > cutoff)
    removed = sum(n for t, n in history.scale_down_events if t > cutoff)
    return current - added + removed


def _scale_up_limit(current: int, history: History, rules: _Rules, now: float) -> int:
    if rules.select == "Disabled":
        return current
    pick_min = rules.select == "Min"
    result = _INT32_MAX if pick_min else _INT32_MIN
    for policy in rules.policies:
        start = _period_start(current, history, policy.period, now)
        if policy.type == "Pods":
            allowed = start + policy.value
        elif policy.type == "Percent":
            # rounded up, or a small target could never grow
            allowed = math.ceil(start * (1 + policy.value / 100))
        else:
            continue
        result = min(result, allowed) if pick_min else max(result, allowed)
    return result


def _scale_down_limit(current: int, history: History, rules: _Rules, now: float) -> int:
    if rules.select == "Disabled":
        return current
    pick_min_change = rules.select == "Min"
    result = _INT32_MIN if pick_min_change else _INT32_MAX
    for policy in rules.policies:
        start = _period_start(current, history, policy.period, now)
        if policy.type == "Pods":
            allowed = start - policy.value
        elif policy.type == "Percent":
            allowed = int(start * (1 - policy.value / 100))  # truncated, as Go's int32()
        else:
            continue
        result = max(result, allowed) if pick_min_change else min(result, allowed)
    return result


# --- reading spec.behavior ----------------------------------------------------------------

def _scale_up_rules(rules: Any) -> _Rules:
    return _rules(rules, window=0.0, policies=(_Policy("Pods", 4, 15.0), _Policy("Percent", 100, 15.0)))


def _scale_down_rules(rules: Any, default_window: float) -> _Rules:
    return _rules(rules, window=default_window, policies=(_Policy("Percent", 100, 15.0),))


def _rules(rules: Any, *, window: float, policies: tuple[_Policy, ...]) -> _Rules:
    """Scaling rules with the API server's defaults for every absent field."""
    rules = rules if isinstance(rules, dict) else {}
    if rules.get("stabilizationWindowSeconds") is not None:
        window = float(rules["stabilizationWindowSeconds"])
    select = rules.get("selectPolicy")
    given = rules.get("policies")
    if given is not None:
        policies = tuple(_Policy(str(p.get("type", "")), _int(p.get("value"), 0),
                                 float(_int(p.get("periodSeconds"), 0)))
                         for p in given if isinstance(p, dict))
    return _Rules(window, select if isinstance(select, str) else "Max", policies)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
