"""HPA replica normalization: stabilization windows, scale rate limits (the plain
max(2x, 4) rule and spec.behavior policies), min/max clamps and their conditions."""

from __future__ import annotations

from typing import Any

from skiff.controllers.podautoscaler.behavior import Decision, History, normalize, record_scale

Obj = dict[str, Any]
NOW = 1_700_000_000.0

READY = ("ReadyForNewScale", "recommended size matches current size")
DOWN_STABILIZED = ("ScaleDownStabilized",
                   "recent recommendations were higher than current one, applying the highest recent "
                   "recommendation")
UP_STABILIZED = ("ScaleUpStabilized",
                 "recent recommendations were lower than current one, applying the lowest recent "
                 "recommendation")
WITHIN = (False, "DesiredWithinRange", "the desired count is within the acceptable range")
UP_LIMIT = (True, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = (True, "ScaleDownLimit",
              "the desired replica count is decreasing faster than the maximum scale rate")
TOO_MANY = (True, "TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = (True, "TooFewReplicas", "the desired replica count is less than the minimum replica count")


def spec(min_replicas: int | None = 1, max_replicas: int = 50, behavior: Obj | None = None) -> Obj:
    s: Obj = {"maxReplicas": max_replicas}
    if min_replicas is not None:
        s["minReplicas"] = min_replicas
    if behavior is not None:
        s["behavior"] = behavior
    return s


def old_history() -> History:
    """A history whose only recommendation is long out of every window."""
    return History(recommendations=[(NOW - 10_000, 1)])


# --- without behavior ---------------------------------------------------------------------

def test_scale_up_is_limited_to_double_or_four() -> None:
    assert normalize(spec(), old_history(), 3, 20, NOW) == Decision(6, READY, UP_LIMIT)
    assert normalize(spec(), old_history(), 1, 20, NOW) == Decision(4, READY, UP_LIMIT)
    assert normalize(spec(), old_history(), 5, 7, NOW) == Decision(7, READY, WITHIN)


def test_max_replicas_clamps_when_below_the_rate_limit() -> None:
    assert normalize(spec(max_replicas=8), old_history(), 5, 12, NOW) == Decision(8, READY, TOO_MANY)


def test_min_replicas_clamps() -> None:
    history = History(recommendations=[(NOW - 1000, 5)])
    assert normalize(spec(min_replicas=2), history, 5, 1, NOW) == Decision(2, READY, TOO_FEW)
    assert history.recommendations == [(NOW, 1)]  # the stale one is forgotten, the new one kept


def test_absent_min_replicas_means_one() -> None:
    assert normalize(spec(min_replicas=None), old_history(), 3, 0, NOW) == Decision(1, READY, TOO_FEW)


def test_stabilization_keeps_the_highest_recommendation_of_the_last_five_minutes() -> None:
    history = History(recommendations=[(NOW - 310, 9), (NOW - 290, 8), (NOW - 100, 6)])
    assert normalize(spec(), history, 8, 3, NOW) == Decision(8, DOWN_STABILIZED, WITHIN)
    assert history.recommendations == [(NOW - 290, 8), (NOW - 100, 6), (NOW, 3)]
    # 11 s later the 8 has left the window; the 6 is now the highest
    assert normalize(spec(), history, 8, 3, NOW + 11) == Decision(6, DOWN_STABILIZED, WITHIN)
    # a recommendation exactly a window old still counts
    history = History(recommendations=[(NOW - 300, 9)])
    assert normalize(spec(), history, 9, 3, NOW) == Decision(9, DOWN_STABILIZED, WITHIN)
    # the window is the controller's --horizontal-pod-autoscaler-downscale-stabilization
    history = History(recommendations=[(NOW - 100, 10)])
    assert normalize(spec(), history, 10, 2, NOW, downscale_stabilization=60) == Decision(2, READY, WITHIN)


def test_scale_up_is_not_stabilized() -> None:
    history = History(recommendations=[(NOW - 60, 2), (NOW - 30, 3)])
    assert normalize(spec(), history, 3, 5, NOW) == Decision(5, READY, WITHIN)


def test_first_sync_holds_the_current_count_for_a_window() -> None:
    history = History()
    assert normalize(spec(), history, 10, 2, NOW) == Decision(10, DOWN_STABILIZED, WITHIN)
    assert history.recommendations == [(NOW, 10), (NOW, 2)]


def test_scale_events_are_not_kept_without_behavior() -> None:
    history = History()
    record_scale(history, spec(), 3, 6, NOW)
    assert history == History()


# --- with behavior: rate policies ---------------------------------------------------------

ONE_POD_A_MINUTE = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}


def test_pods_policy_of_one_per_minute() -> None:
    s = spec(max_replicas=20, behavior=ONE_POD_A_MINUTE)
    history = History()
    assert normalize(s, history, 3, 10, NOW) == Decision(4, READY, UP_LIMIT)
    record_scale(history, s, 3, 4, NOW)
    assert history.scale_up_events == [(NOW, 1)]
    # 30 s later the minute's pod is spent: the period started at 3, so 4 is the limit
    assert normalize(s, history, 4, 10, NOW + 30) == Decision(4, READY, UP_LIMIT)
    # a minute after the scale, one more
    assert normalize(s, history, 4, 10, NOW + 60) == Decision(5, READY, UP_LIMIT)


def test_select_policy_max_and_min() -> None:
    policies = [{"type": "Pods", "value": 4, "periodSeconds": 60},
                {"type": "Percent", "value": 100, "periodSeconds": 60}]
    biggest = spec(max_replicas=100, behavior={"scaleUp": {"policies": policies}})
    smallest = spec(max_replicas=100, behavior={"scaleUp": {"policies": policies, "selectPolicy": "Min"}})
    # from 10: Pods allows 14, Percent allows 20
    assert normalize(biggest, History(), 10, 40, NOW) == Decision(20, READY, UP_LIMIT)
    assert normalize(smallest, History(), 10, 40, NOW) == Decision(14, READY, UP_LIMIT)


def test_select_policy_disabled() -> None:
    no_down = spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}})
    assert normalize(no_down, History(), 10, 2, NOW) == Decision(10, READY, DOWN_LIMIT)
    no_up = spec(behavior={"scaleUp": {"selectPolicy": "Disabled"}})
    assert normalize(no_up, History(), 3, 10, NOW) == Decision(3, READY, UP_LIMIT)


def test_default_policies_double_or_add_four_every_15_seconds() -> None:
    s = spec(max_replicas=100, behavior={})
    assert normalize(s, History(), 2, 50, NOW) == Decision(6, READY, UP_LIMIT)
    assert normalize(s, History(), 10, 50, NOW) == Decision(20, READY, UP_LIMIT)


def test_percent_scale_up_rounds_up() -> None:
    s = spec(max_replicas=100, behavior={"scaleUp": {
        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}})
    assert normalize(s, History(), 3, 10, NOW).replicas == 4   # ceil(3.3)
    assert normalize(s, History(), 10, 50, NOW).replicas == 11  # exactly 11: no extra pod


def test_percent_scale_down_truncates() -> None:
    s = spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0,
                                     "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}})
    assert normalize(s, History(), 5, 1, NOW) == Decision(2, READY, DOWN_LIMIT)  # 2.5 -> 2
    assert normalize(s, History(), 3, 1, NOW) == Decision(1, READY, WITHIN)      # 1.5 -> 1


def test_scale_downs_in_the_period_give_room_to_scale_up_again() -> None:
    s = spec(behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}})
    history = History(scale_down_events=[(NOW - 30, 2)])
    # the period started at 6 (4 now, 2 removed since): up to 8
    assert normalize(s, history, 4, 10, NOW) == Decision(8, READY, UP_LIMIT)


def test_clamps_with_behavior() -> None:
    assert normalize(spec(max_replicas=6, behavior={}), History(), 4, 10, NOW) == Decision(6, READY, TOO_MANY)
    fast_down = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    assert normalize(spec(min_replicas=3, behavior=fast_down), History(), 5, 1, NOW) == Decision(3, READY, TOO_FEW)


# --- with behavior: stabilization ---------------------------------------------------------

def test_scale_down_window_defaults_to_the_controllers_setting() -> None:
    history = History(recommendations=[(NOW - 100, 10)])
    assert normalize(spec(behavior={}), history, 10, 2, NOW) == Decision(10, DOWN_STABILIZED, WITHIN)
    history = History(recommendations=[(NOW - 100, 10)])
    assert normalize(spec(behavior={}), history, 10, 2, NOW,
                     downscale_stabilization=60) == Decision(2, READY, WITHIN)
    # an explicit window wins over the controller's setting
    history = History(recommendations=[(NOW - 100, 10)])
    explicit = spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    assert normalize(explicit, history, 10, 2, NOW) == Decision(2, READY, WITHIN)


def test_scale_up_window_applies_the_lowest_recent_recommendation() -> None:
    s = spec(behavior={"scaleUp": {"stabilizationWindowSeconds": 60}})
    history = History(recommendations=[(NOW - 30, 5)])
    assert normalize(s, history, 4, 9, NOW) == Decision(5, UP_STABILIZED, WITHIN)


def test_between_the_two_windows_the_count_stays() -> None:
    # recent recommendations 3 and 8 around a current 6: scale-up held by the 3,
    # scale-down held by the 8
    s = spec(behavior={"scaleUp": {"stabilizationWindowSeconds": 120}})
    history = History(recommendations=[(NOW - 90, 3), (NOW - 60, 8)])
    assert normalize(s, history, 6, 10, NOW) == Decision(6, UP_STABILIZED, WITHIN)
    assert normalize(s, history, 6, 1, NOW) == Decision(6, DOWN_STABILIZED, WITHIN)


def test_recommendations_older_than_every_window_are_forgotten() -> None:
    s = spec(behavior={"scaleUp": {"stabilizationWindowSeconds": 60},
                       "scaleDown": {"stabilizationWindowSeconds": 120}})
    history = History(recommendations=[(NOW - 200, 1), (NOW - 100, 2), (NOW - 30, 3)])
    normalize(s, history, 3, 3, NOW)
    assert history.recommendations == [(NOW - 100, 2), (NOW - 30, 3), (NOW, 3)]


# --- record_scale -------------------------------------------------------------------------

def test_record_scale_keeps_events_for_the_longest_period() -> None:
    s = spec(behavior=ONE_POD_A_MINUTE)
    history = History(scale_up_events=[(NOW - 100, 1), (NOW - 30, 2)],
                      scale_down_events=[(NOW - 20, 1)])
    record_scale(history, s, 5, 7, NOW)
    assert history.scale_up_events == [(NOW - 30, 2), (NOW, 2)]
    record_scale(history, s, 7, 4, NOW)  # default scale-down policy: Percent 100 per 15 s
    assert history.scale_down_events == [(NOW, 3)]
    record_scale(history, s, 4, 4, NOW)  # no change, no event
    assert history.scale_up_events == [(NOW - 30, 2), (NOW, 2)]
    assert history.scale_down_events == [(NOW, 3)]
