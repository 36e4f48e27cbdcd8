"""Status conditions as controllers keep them (``metav1.Condition``-style lists).

    set_condition(conditions, type, status, reason, message, now)
        one condition per type; ``lastTransitionTime`` moves only when ``status`` changes
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                  now: str) -> None:
    """Set the condition of ``type_`` in ``conditions`` (in place; appended when new)."""
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update(status=status, reason=reason, message=message)
            return
    conditions.append({"type": type_, "status": status, "lastTransitionTime": now,
                       "reason": reason, "message": message})
