"""``imagePullPolicy``: when the kubelet pulls, as Kubernetes decides it.

Default policy (API defaulting): ``Always`` when the image has the tag ``latest``
or no tag and no digest; otherwise ``IfNotPresent``.  Then::

    policy          image present   image absent
    ------------    -------------   -----------------------------------------
    Always          pull            pull
    IfNotPresent    use it          pull
    Never           use it          fail: ErrImageNeverPull
"""

from __future__ import annotations

import enum

from .reference import InvalidReference, parse_reference

ALWAYS = "Always"
IF_NOT_PRESENT = "IfNotPresent"
NEVER = "Never"


class PullDecision(enum.Enum):
    USE_LOCAL = "use-local"
    PULL = "pull"
    NEVER_PULL = "never-pull"      # absent and not allowed to pull: ErrImageNeverPull


def default_pull_policy(image: str) -> str:
    """The policy the API server fills in when a container leaves it empty."""
    try:
        ref = parse_reference(image, default_tag=False)
    except InvalidReference:
        return IF_NOT_PRESENT
    if ref.digest is None and ref.tag in (None, "latest"):
        return ALWAYS
    return IF_NOT_PRESENT


def pull_decision(policy: str | None, image: str, present: bool) -> PullDecision:
    policy = policy or default_pull_policy(image)
    if policy == ALWAYS:
        return PullDecision.PULL
    if present:
        return PullDecision.USE_LOCAL
    if policy == NEVER:
        return PullDecision.NEVER_PULL
    return PullDecision.PULL
