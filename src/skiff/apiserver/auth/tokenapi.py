"""The token endpoints of the API: TokenRequest, TokenReview, SelfSubjectReview.

::

    POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token     TokenRequest
         spec.audiences (default: the API server's), expirationSeconds (default
         3600, at least 600), boundObjectRef (Pod | Secret | Node, uid checked)
         -> status.token, status.expirationTimestamp          (kubectl create token)
    POST /apis/authentication.k8s.io/v1/tokenreviews        TokenReview (who is this token?)
    POST /apis/authentication.k8s.io/v1/selfsubjectreviews  SelfSubjectReview (kubectl auth whoami)

Authorization happened before (``create`` on ``serviceaccounts/token``,
``tokenreviews``, ``selfsubjectreviews``).  Nothing is stored.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from aiohttp import web

from ...api.errors import Cause, StatusError, bad_request, conflict, invalid, method_not_allowed, not_found
from ...api.kinds import meta as m
from ...api.resource import ResourceInfo
from ..context import ServerContext
from ..handlers import object_response
from ..negotiation import decode_body, media_type
from ..objects import format_time
from ..paths import ResourcePath
from .authn import Authenticator, Lookup
from .tokens import BoundObject, TokenInvalid, TokenSigner
from .user import current_user

Obj = dict[str, Any]
GROUP = "authentication.k8s.io"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def _record(kind: str) -> ResourceInfo:
    return ResourceInfo(
        group=GROUP, version="v1", kind=kind, plural=kind.lower() + "s", singular=kind.lower(),
        namespaced=False, schema_type=f"io.k8s.api.authentication.v1.{kind}", verbs=("create",),
        columns=m.DEFAULT_COLUMNS, row=m.name_created_row,
    )


#: The authentication.k8s.io kinds the API server serves when authentication is on.
RESOURCES: tuple[ResourceInfo, ...] = (_record("SelfSubjectReview"), _record("TokenReview"))


class TokenAPI:
    def __init__(self, ctx: ServerContext, signer: TokenSigner, authenticator: Authenticator,
                 lookup: Lookup, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.signer = signer
        self.authenticator = authenticator
        self.lookup = lookup
        self.clock = clock

    async def _body(self, request: web.Request, kind: str) -> Obj:
        obj = decode_body(await request.read(), media_type(request), expected_kind=kind,
                          protobuf_decoder=self.ctx.decode_protobuf)
        if obj.get("kind") not in (None, "", kind):
            raise bad_request(f"the object provided is unrecognized (must be of type {kind})")
        return obj

    # -- TokenRequest ------------------------------------------------------------------

    async def token_request(self, request: web.Request, info: ResourceInfo,
                            target: ResourcePath) -> web.StreamResponse:
        if request.method != "POST":
            raise method_not_allowed()
        ns, name = target.namespace, target.name
        body = await self._body(request, "TokenRequest")
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds")
        seconds = DEFAULT_EXPIRATION if seconds in (None, 0) else seconds
        if not isinstance(seconds, int):
            raise bad_request("spec.expirationSeconds must be an integer")
        causes: list[Cause] = []
        if seconds < MIN_EXPIRATION:
            causes.append(m.invalid("spec.expirationSeconds", seconds,
                                    "may not specify a duration less than 10 minutes"))
        elif seconds > MAX_EXPIRATION:
            causes.append(m.invalid("spec.expirationSeconds", seconds,
                                    "may not specify a duration larger than 2^32 seconds"))
        if causes:
            raise invalid("TokenRequest", GROUP, name, causes)
        sa = await self.lookup("serviceaccounts", ns, name)
        if sa is None:
            raise not_found("serviceaccounts", "", name)
        bound, node = await self._bound_object(spec.get("boundObjectRef"), ns, name)
        audiences = tuple(spec.get("audiences") or ()) or self.signer.api_audiences
        token, exp = self.signer.issue(ns, name, str(sa["metadata"].get("uid", "")), audiences=audiences,
                                       expiration_seconds=seconds, bound=bound, node=node)
        spec["audiences"] = list(audiences)
        spec["expirationSeconds"] = seconds
        spec.setdefault("boundObjectRef", None)
        out = {"kind": "TokenRequest", "apiVersion": f"{GROUP}/v1",
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
               "spec": spec, "status": {"token": token, "expirationTimestamp": format_time(exp)}}
        return object_response(out, 201)

    async def _bound_object(self, ref: Any, ns: str, account: str
                            ) -> tuple[BoundObject | None, BoundObject | None]:
        if not isinstance(ref, dict) or not ref:
            return None, None
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        plural = BINDABLE.get(kind)
        if plural is None:
            raise bad_request(f"cannot bind token to object of type {ref.get('apiVersion', 'v1')}, "
                              f"Kind={kind}")
        obj = await self.lookup(plural, "" if kind == "Node" else ns, name)
        if obj is None:
            raise not_found(plural, "", name)
        uid = str(obj["metadata"].get("uid", ""))
        if ref.get("uid") and ref["uid"] != uid:
            raise conflict(plural, "", name, f"the UID in the bound object reference ({ref['uid']}) "
                                             f"does not match the UID in record. The object might "
                                             f"have been deleted and then recreated")
        node = None
        if kind == "Pod":
            if (obj.get("spec") or {}).get("serviceAccountName", "default") != account:
                raise bad_request(f'cannot bind token for serviceaccount "{account}" to pod running '
                                  f'with different serviceaccount name.')
            node_name = (obj.get("spec") or {}).get("nodeName")
            if node_name:
                node_obj = await self.lookup("nodes", "", node_name)
                if node_obj is not None:
                    node = BoundObject("Node", node_name, str(node_obj["metadata"].get("uid", "")))
        return BoundObject(kind, name, uid), node

    # -- authentication.k8s.io ------------------------------------------------------------

    async def serve(self, request: web.Request, target: ResourcePath) -> web.StreamResponse:
        """POST tokenreviews | selfsubjectreviews (other paths of the group: 404/405)."""
        if target.version != "v1" or target.name or target.namespace \
                or target.plural not in ("tokenreviews", "selfsubjectreviews"):
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        if request.method != "POST":
            raise method_not_allowed()
        if target.plural == "selfsubjectreviews":
            body = await self._body(request, "SelfSubjectReview")
            user = current_user.get()
            body["status"] = {"userInfo": user.to_api() if user is not None else {}}
            return object_response(self._reply(body, "SelfSubjectReview"), 201)
        body = await self._body(request, "TokenReview")
        spec = body.get("spec") or {}
        token = str(spec.get("token") or "")
        audiences = tuple(spec.get("audiences") or ())
        status: Obj = {"user": {}}
        try:
            if not token:
                raise TokenInvalid("token is empty")
            who = await self.authenticator.token_user(token, audiences)
            status = {"authenticated": True, "user": who.to_api(),
                      "audiences": list(audiences or self.signer.api_audiences)}
        except TokenInvalid as err:
            status["error"] = f"[invalid bearer token, {err}]"
        body["status"] = status
        return object_response(self._reply(body, "TokenReview"), 201)

    @staticmethod
    def _reply(body: Obj, kind: str) -> Obj:
        meta = body.get("metadata") or {}
        meta.setdefault("creationTimestamp", None)
        return {"kind": kind, "apiVersion": f"{GROUP}/v1", "metadata": meta,
                "spec": body.get("spec") or {}, "status": body["status"]}
