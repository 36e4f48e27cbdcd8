"""Who is asking: the authenticated user, as every authorizer and review sees it.

A :class:`UserInfo` is what authentication produces (Kubernetes' ``user.Info``):
a name, a uid, groups and "extra" string lists.  Well-known names::

    system:masters            group that is always allowed everything (short-circuit)
    system:authenticated      added to every authenticated user
    system:anonymous          the user of a request with no credentials,
    system:unauthenticated       ... and its group
    system:serviceaccount:<ns>:<name>   a ServiceAccount; groups system:serviceaccounts,
                              system:serviceaccounts:<ns>

:data:`current_user` holds the user of the request being served (set by the
gate before the request is handled), so code deep in the write path (RBAC
escalation checks, access reviews, TokenRequest) can ask who is asking
without threading it through every signature.  ``None`` means an internal
write of the API server itself (bootstrap, aggregation), which is trusted.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Mapping

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_NAME = "system:anonymous"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SA_PREFIX = "system:serviceaccount:"


class UserInfo:
    """An authenticated identity (immutable by convention; shared between requests)."""

    __slots__ = ("name", "uid", "groups", "extra", "is_master", "key")

    def __init__(self, name: str, uid: str = "", groups: tuple[str, ...] = (),
                 extra: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.name = name
        self.uid = uid
        self.groups = groups
        self.extra: dict[str, tuple[str, ...]] = dict(extra or {})
        self.is_master = MASTERS in groups
        #: one hashable string for caches keyed by identity (name and groups decide RBAC)
        self.key = "\x00".join((name, *groups))

    def __repr__(self) -> str:
        return f"UserInfo({self.name!r}, groups={list(self.groups)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, UserInfo) and self.key == other.key and self.uid == other.uid
                and self.extra == other.extra)

    def __hash__(self) -> int:
        return hash(self.key)

    def to_api(self) -> dict[str, object]:
        """The ``authentication.k8s.io/v1`` UserInfo shape (TokenReview, SelfSubjectReview)."""
        out: dict[str, object] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS = UserInfo(ANONYMOUS_NAME, groups=(UNAUTHENTICATED,))


def service_account_user_name(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_service_account(user_name: str) -> tuple[str, str] | None:
    """``system:serviceaccount:ns:name`` -> (ns, name); None for other user names."""
    if not user_name.startswith(SA_PREFIX):
        return None
    parts = user_name[len(SA_PREFIX):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED)


#: The user of the request being served; None inside the API server's own writes.
current_user: ContextVar[UserInfo | None] = ContextVar("skiff_current_user", default=None)
