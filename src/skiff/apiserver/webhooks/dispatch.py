"""Mutating and validating admission webhooks in the write path, as kube-apiserver runs them.

::

    create / update / delete ─▶ defaults ─▶ mutate(): MutatingWebhookConfigurations, by
        configuration name, each webhook in order; a matching one may answer a JSON patch
        (applied at once; the next webhook sees the result); reinvocationPolicy IfNeeded:
        such a webhook is asked once more if a later one changed the object
    ─▶ the kind's validation ─▶ quota ─▶ validate(): every matching webhook of the
        ValidatingWebhookConfigurations, all at once; any denial refuses the write
    delete ─▶ mutate() (the object null: a webhook can refuse, not change) ─▶ validate()

A webhook matches when one of its ``rules`` names the operation and resource
(:func:`~skiff.api.kinds.admissionregistration.rule_matches`), its
``namespaceSelector`` matches the namespace's labels (a Namespace's own labels; other
cluster-scoped objects always pass) and its ``objectSelector`` the object's or the old
object's labels.  Webhook configurations themselves are never sent to webhooks (so a
broken webhook cannot lock its own fix out).

Outcomes, as Kubernetes words them::

    denied            400 (or the webhook's status code)
                      admission webhook "<name>" denied the request: <message>
    call failed       failurePolicy Fail:   500 InternalError
                      Internal error occurred: failed calling webhook "<name>": <why>
                      failurePolicy Ignore: the webhook is skipped
    warnings          passed on as Warning headers
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...api.errors import StatusError
from ...api.kinds.admissionregistration import rule_matches, webhooks_of
from ...api.patch.jsonpatch_ops import json_patch
from ...api.selectors import SelectorError, label_selector_from_object
from ..context import ServerContext
from ..following import PrefixFollower
from ..objects import REGISTRY_ROOT
from ..reach import Getter
from .calls import Answer, Attributes, CallFailed, WebhookClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
MUTATING = "mutatingwebhookconfigurations"
VALIDATING = "validatingwebhookconfigurations"
#: never sent to webhooks (kube-apiserver's exemption: the configurations themselves)
EXEMPT = frozenset({(GROUP, MUTATING), (GROUP, VALIDATING)})


class WebhookAdmission:
    def __init__(self, ctx: ServerContext, get: Getter) -> None:
        self.ctx = ctx
        self.client = WebhookClient(get)
        #: kind -> store key -> configuration
        self.configurations: dict[str, dict[str, Obj]] = {MUTATING: {}, VALIDATING: {}}
        self._followers = [PrefixFollower(ctx, f"{REGISTRY_ROOT}{GROUP}/{plural}/",
                                          on_load=self._loader(plural), on_change=self._changer(plural))
                           for plural in (MUTATING, VALIDATING)]

    async def start(self) -> None:
        for follower in self._followers:
            await follower.start()

    async def stop(self) -> None:
        for follower in self._followers:
            await follower.stop()
        await self.client.close()

    def _loader(self, plural: str) -> Any:
        def load(objects: dict[str, Obj]) -> None:
            self.configurations[plural] = dict(objects)
        return load

    def _changer(self, plural: str) -> Any:
        def change(key: str, obj: Obj | None) -> None:
            if obj is None:
                self.configurations[plural].pop(key, None)
            else:
                self.configurations[plural][key] = obj
        return change

    def active(self, kind: str) -> bool:
        return bool(self.configurations[kind])

    # -- matching -----------------------------------------------------------------------

    def _matching(self, kind: str, attrs: Attributes) -> list[Obj]:
        if (attrs.group, attrs.resource) in EXEMPT:
            return []
        found = []
        for config in sorted(self.configurations[kind].values(), key=lambda c: c["metadata"]["name"]):
            for webhook in webhooks_of(config):
                if self._applies(webhook, attrs):
                    found.append(webhook)
        return found

    def _applies(self, webhook: Obj, attrs: Attributes) -> bool:
        if not any(rule_matches(rule, attrs.operation, attrs.group, attrs.version, attrs.resource,
                                attrs.subresource, attrs.namespaced) for rule in webhook.get("rules") or []):
            return False
        try:
            if attrs.namespaced or (attrs.group, attrs.resource) == ("", "namespaces"):
                labels = (attrs.labels_of_namespace if attrs.namespaced
                          else _labels(attrs.obj) or _labels(attrs.old))
                if not label_selector_from_object(webhook.get("namespaceSelector") or {}).matches(labels):
                    return False
            selector = label_selector_from_object(webhook.get("objectSelector") or {})
        except SelectorError:
            return False
        return selector.matches(_labels(attrs.obj)) or selector.matches(_labels(attrs.old))

    # -- mutating -----------------------------------------------------------------------

    async def mutate(self, attrs: Attributes, obj: Obj, warnings: list[str]) -> Obj:
        """``obj`` as the matching mutating webhooks leave it."""
        webhooks = self._matching(MUTATING, attrs)
        if not webhooks:
            return obj
        changed_after: dict[str, bool] = {}
        for webhook in webhooks:
            before = obj
            obj = await self._mutate_once(webhook, attrs, obj, warnings)
            if obj != before:
                for name in changed_after:
                    changed_after[name] = True
            if webhook.get("reinvocationPolicy") == "IfNeeded":
                changed_after[str(webhook.get("name"))] = False
        for webhook in webhooks:  # reinvocation: once, for those a later webhook changed
            if changed_after.get(str(webhook.get("name"))):
                obj = await self._mutate_once(webhook, attrs, obj, warnings)
        return obj

    async def _mutate_once(self, webhook: Obj, attrs: Attributes, obj: Obj, warnings: list[str]) -> Obj:
        deleting = attrs.operation == "DELETE"  # the review's object is null; a patch changes nothing
        answer = await self._ask(webhook, attrs, None if deleting else obj, warnings)
        if answer is None:
            return obj
        if not answer.allowed:
            raise denied(str(webhook.get("name", "")), answer.status)
        if answer.patch is None or deleting:
            return obj
        try:
            return json_patch(obj, answer.patch)
        except StatusError as err:
            raise failed_call(str(webhook.get("name", "")), f"JSON Patch: {err.message}") from None

    # -- validating ---------------------------------------------------------------------

    async def validate(self, attrs: Attributes, obj: Obj | None, warnings: list[str]) -> None:
        """Raise the first denial (in configuration order) of the matching validating webhooks."""
        webhooks = self._matching(VALIDATING, attrs)
        if not webhooks:
            return
        answers = await asyncio.gather(*(self._ask(w, attrs, obj, warnings) for w in webhooks),
                                       return_exceptions=True)
        for webhook, answer in zip(webhooks, answers):
            if isinstance(answer, BaseException):
                raise answer
            if answer is not None and not answer.allowed:
                raise denied(str(webhook.get("name", "")), answer.status)

    # -- one call -------------------------------------------------------------------------

    async def _ask(self, webhook: Obj, attrs: Attributes, obj: Obj | None, warnings: list[str]) -> Answer | None:
        """The webhook's answer; None when the call failed and its failurePolicy is Ignore."""
        name = str(webhook.get("name", ""))
        try:
            answer = await self.client.call(webhook, attrs, obj)
        except CallFailed as exc:
            if webhook.get("failurePolicy") == "Ignore":
                log.warning("admission webhook %s ignored (failurePolicy Ignore): %s", name, exc)
                return None
            raise failed_call(name, str(exc)) from None
        warnings.extend(answer.warnings)
        return answer


def denied(name: str, status: Obj) -> StatusError:
    given = status.get("code")
    code = given if isinstance(given, int) else 0
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    prefix = f'admission webhook "{name}" denied the request'
    if message:
        text = f"{prefix}: {message}"
    elif reason:
        text = f"{prefix}: {reason}"
    else:
        text = f"{prefix} without explanation"
    return StatusError(max(code, 400), reason, text)


def failed_call(name: str, why: str) -> StatusError:
    return StatusError(500, "InternalError", f'Internal error occurred: failed calling webhook "{name}": {why}')


def _labels(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})
