"""ServiceAccount tokens for projected volumes: requested once, renewed at 80 % of their life.

::

    get(pod, projection)
        cached token for (pod uid, audience, expirationSeconds) still fresh?  -> it
        otherwise TokenRequest (through the kubelet's TokenSource, bound to the pod)
            -> remember it with refresh_at = iat + 80 % of (exp - iat)
               (or 24 h after iat, whichever comes first), as the kubelet's
               token manager does; if the request fails, an unexpired old token
               is kept
    next_refresh(uid)   the earliest refresh_at of the pod's tokens (the volume
                        manager rewrites the pod's projected volumes then)

The lifetime is read from the token's own ``iat``/``exp`` claims (not
verified: the API server that issued it is the one that checks it), so an
API server that shortens or extends a requested expiration is followed.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
TokenSource = Callable[[Obj, Obj], Awaitable[str | None]]   # (pod, projection) -> token

REFRESH_FRACTION = 0.8
MAX_AGE = 24 * 3600.0
DEFAULT_EXPIRATION = 3600


@dataclass(frozen=True, slots=True)
class CachedToken:
    token: str
    refresh_at: float
    expires: float


def token_times(token: str, now: float, requested: float) -> tuple[float, float]:
    """(issued at, expires) from a JWT's claims; ``now`` and ``now + requested`` when unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        iat, exp = float(claims["iat"]), float(claims["exp"])
        if exp > iat:
            return iat, exp
    except (IndexError, KeyError, TypeError, ValueError):
        pass
    return now, now + requested


class ServiceAccountTokens:
    def __init__(self, source: TokenSource, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.clock = clock
        self._tokens: dict[tuple[str, str, int], CachedToken] = {}

    @staticmethod
    def _key(pod: Obj, projection: Obj) -> tuple[str, str, int]:
        return (str(pod["metadata"]["uid"]), str(projection.get("audience") or ""),
                int(projection.get("expirationSeconds") or DEFAULT_EXPIRATION))

    async def get(self, pod: Obj, projection: Obj) -> str | None:
        key = self._key(pod, projection)
        now = self.clock()
        hit = self._tokens.get(key)
        if hit is not None and now < hit.refresh_at:
            return hit.token
        token = await self.source(pod, projection)
        if token is None:
            return hit.token if hit is not None and now < hit.expires else None
        iat, exp = token_times(token, now, key[2])
        refresh_at = min(iat + REFRESH_FRACTION * (exp - iat), iat + MAX_AGE)
        self._tokens[key] = CachedToken(token, refresh_at, exp)
        return token

    def next_refresh(self, uid: str) -> float | None:
        times = [t.refresh_at for k, t in self._tokens.items() if k[0] == uid]
        return min(times) if times else None

    def forget(self, uid: str) -> None:
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]
