"""The API's error vocabulary: one exception type that *is* a Kubernetes Status.

Every layer raises :class:`StatusError` (or one of the helpers below) for an
outcome the client should see; the HTTP edge turns it into the JSON body

    {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
     "message":..., "reason":..., "details":{...}, "code":N}

exactly as kube-apiserver does.  Anything else that escapes a handler is a bug
and becomes a 500 InternalError (logged), never a traceback on the wire.

Messages follow Kubernetes' wording because clients compare them, e.g.
``deployments.apps "web" already exists``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One field-level reason inside ``details.causes``."""

    reason: str  # e.g. FieldValueRequired, FieldValueInvalid, FieldValueNotSupported
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class StatusError(Exception):
    """An API outcome that is reported to the client as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        causes: list[Cause] | None = None,
        retry_after_seconds: int = 0,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = list(causes or [])
        self.retry_after_seconds = retry_after_seconds

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds:
            details["retryAfterSeconds"] = self.retry_after_seconds
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


def qualified(resource: str, group: str) -> str:
    """``deployments`` + ``apps`` -> ``deployments.apps``; core group stays bare."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                       name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                       name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, why: str) -> StatusError:
    return StatusError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        name=name, group=group, kind=resource)


def stale_conflict(resource: str, group: str, name: str) -> StatusError:
    return conflict(resource, group, name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again")


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> StatusError:
    """422 Invalid: ``Deployment.apps "web" is invalid: spec.replicas: Invalid value: ...``."""
    what = f'{kind}.{group}' if group else kind
    summary = ", ".join(_cause_text(c) for c in causes)
    message = f'{what} "{name}" is invalid: {summary}' if summary else f'{what} "{name}" is invalid'
    if len(causes) > 1:
        message = f'{what} "{name}" is invalid: [{summary}]'
    return StatusError(422, "Invalid", message, name=name, group=group, kind=kind, causes=causes)


def _cause_text(c: Cause) -> str:
    return f"{c.field}: {c.message}" if c.field else c.message


def bad_request(message: str, causes: list[Cause] | None = None) -> StatusError:
    return StatusError(400, "BadRequest", message, causes=causes)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media types include: '
                       f'application/json, application/yaml, application/vnd.kubernetes.protobuf '
                       f'(got "{content_type}")')


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def expired(message: str) -> StatusError:
    """410 Gone/Expired: a resourceVersion older than the compacted history."""
    return StatusError(410, "Expired", message)


def forbidden(resource: str, group: str, name: str, why: str) -> StatusError:
    what = qualified(resource, group)
    subject = f'{what} "{name}"' if name else what
    return StatusError(403, "Forbidden", f"{subject} is forbidden: {why}",
                       name=name, group=group, kind=resource)


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
