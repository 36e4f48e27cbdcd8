"""The API server's front door: authenticate, impersonate, authorize - then serve.

::

    request ─▶ user = client certificate | bearer token (401 if invalid) | anonymous
            ─▶ Impersonate-* headers?  user = the impersonated one (403 unless allowed)
            ─▶ current_user = user          (reviews, escalation checks, TokenRequest)
            ─▶ system:masters?  done        (the admin: no further lookup)
            ─▶ RBAC decision per request attributes (403 with Kubernetes' message)

:class:`AuthGate` also installs what authentication brings to the API:
TokenRequest (``serviceaccounts/token``), TokenReview and SelfSubjectReview,
truthful access reviews, escalation checks on RBAC writes, the token volume
on pods, the default policy (reconciled on start) and ClusterRole aggregation.
:class:`AuthOptions` is how ``make_app`` is told to turn all of this on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from ...api.kinds import Registry
from ..context import ServerContext
from ..objects import decode, object_key
from ..paths import ApiPath, ResourcePath
from ..reviews import authorizer_reviews
from ..writes import Writer
from .aggregation import ClusterRoleAggregator
from .attributes import UNAUTHORIZED, request_attributes
from .authn import Authenticator
from .escalation import BindingEscalationCheck, RoleEscalationCheck
from .impersonation import impersonate, wants_impersonation
from .podtokens import ServiceAccountAdmission
from .policy import GROUP as RBAC_GROUP
from .policy import PolicyCache
from .rbac import Authorizer
from .reconcile import reconcile_default_policy
from .tokenapi import GROUP as AUTHN_GROUP
from .tokenapi import RESOURCES as AUTHN_RESOURCES
from .tokenapi import TokenAPI
from .tokens import ISSUER, TokenInvalid, TokenSigner
from .user import ANONYMOUS, UserInfo, current_user

Obj = dict[str, Any]


@dataclass(frozen=True)
class AuthOptions:
    """Authentication and RBAC for one API server (``make_app(..., auth=AuthOptions(...))``)."""

    service_account_key: Path | None = None  # signs and verifies ServiceAccount tokens
    issuer: str = ISSUER
    api_audiences: tuple[str, ...] = (ISSUER,)
    anonymous: bool = True  # requests without credentials are system:anonymous (else 401)

    @classmethod
    def from_pki(cls, pki: Any) -> "AuthOptions":
        """From a :class:`~skiff.apiserver.pki.ClusterPKI` (its ``sa.key``)."""
        return cls(service_account_key=Path(pki.service_account_key))


def with_authentication_kinds(registry: Registry) -> Registry:
    """``registry`` plus TokenReview and SelfSubjectReview (when not there already)."""
    have = {(r.group, r.plural) for r in registry}
    extra = [r for r in AUTHN_RESOURCES if (r.group, r.plural) not in have]
    return Registry([*registry, *extra]) if extra else registry


class AuthGate:
    def __init__(self, ctx: ServerContext, writer: Writer, options: AuthOptions,
                 clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.writer = writer
        self.options = options
        self.policy = PolicyCache()
        self.authorizer = Authorizer(self.policy)
        signer = None
        if options.service_account_key is not None:
            signer = TokenSigner.from_file(options.service_account_key, issuer=options.issuer,
                                           api_audiences=options.api_audiences, clock=clock)
        self.signer = signer
        self.authenticator = Authenticator(signer, self.lookup, clock)
        self.tokens = TokenAPI(ctx, signer, self.authenticator, self.lookup, clock) if signer else None
        self.aggregator = ClusterRoleAggregator(ctx, writer, self.policy)

    # -- wiring -------------------------------------------------------------------------

    def install(self, subresource_handlers: dict[tuple[str, str, str], Any]) -> None:
        ctx = self.ctx
        ctx.reviews.update(authorizer_reviews(self.authorizer))
        for plural in ("roles", "clusterroles"):
            ctx.hooks[(RBAC_GROUP, plural)] = RoleEscalationCheck(self.authorizer, plural)
        for plural in ("rolebindings", "clusterrolebindings"):
            ctx.hooks[(RBAC_GROUP, plural)] = BindingEscalationCheck(self.authorizer, self.policy, plural)
        pods = ctx.registry.get("", "v1", "pods")
        if pods is not None:
            ctx.hooks[("", "pods")] = ServiceAccountAdmission(ctx.hooks_for(pods))
        if self.tokens is not None:
            subresource_handlers[("", "serviceaccounts", "token")] = self.tokens.token_request

    async def start(self) -> None:
        """Load the policy, put the default roles in place, start aggregating (server start-up)."""
        await self.policy.start(self.ctx.backend, self.ctx.watch_cache)
        await reconcile_default_policy(self.ctx, self.writer)
        self.aggregator.start()

    async def stop(self) -> None:
        await self.aggregator.stop()
        await self.policy.stop()

    async def lookup(self, plural: str, namespace: str, name: str) -> Obj | None:
        info = self.ctx.registry.get("", "v1", plural)
        if info is None:
            return None
        kv = await self.ctx.backend.get(object_key(info, namespace, name))
        return decode(kv) if kv is not None else None

    # -- per request ----------------------------------------------------------------------

    async def admit(self, request: web.BaseRequest, target: ResourcePath | ApiPath) -> UserInfo:
        """Authenticate and authorize ``request``; raises 401/403 StatusErrors."""
        headers = request.headers
        user = self.authenticator.certificate_user(request)
        if user is None:
            user = await self._credentials(headers.get("Authorization"))
        if wants_impersonation(headers):
            user = impersonate(user, headers, self.authorizer)
        current_user.set(user)
        if user.is_master:
            return user
        resource = target if type(target) is ResourcePath else None
        for attrs in request_attributes(user, request.method, resource, request.path, request.query):
            self.authorizer.check(attrs)
        return user

    async def _credentials(self, authorization: str | None) -> UserInfo:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                try:
                    return await self.authenticator.token_user(token)
                except TokenInvalid:
                    raise UNAUTHORIZED from None
        if not self.options.anonymous:
            raise UNAUTHORIZED
        return ANONYMOUS

    async def serve_authentication(self, request: web.Request, target: ResourcePath) -> web.StreamResponse:
        """The ``authentication.k8s.io`` endpoints (TokenReview, SelfSubjectReview)."""
        if self.tokens is None:
            from ..handlers import NO_RESOURCE

            raise NO_RESOURCE
        return await self.tokens.serve(request, target)


__all__ = ["AUTHN_GROUP", "AuthGate", "AuthOptions", "with_authentication_kinds"]
