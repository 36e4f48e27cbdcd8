"""How patch failures reach the client: the Status shapes kube-apiserver uses.

kube-apiserver reports a failed patch in one of three ways, and clients (kubectl
prints ``Error from server (Reason): message``) see the difference:

==========================  ==========================================================
400 ``BadRequest``          the patch document itself is malformed (not an object,
                            a badly formed ``$setElementOrder`` / ``$retainKeys`` /
                            ``$deleteFromPrimitiveList`` directive, a JSON patch
                            that is not a list of operations)
422 ``Invalid``             a well-formed patch that cannot be applied: a JSON
                            patch ``test`` that fails or a path that does not
                            exist.  The message is the generic "the server
                            rejected our request due to an error in our request";
                            the precise reason is the one cause, of type
                            ``UnexpectedServerResponse`` (:func:`rejected`)
500 (no reason)             any other strategic-merge error, e.g. a list item
                            missing its merge key.  Kubernetes returns these as a
                            plain error, so the Status carries code 500 and an
                            empty reason (kubectl: ``Error from server: map: ...``)
==========================  ==========================================================

The messages embed values the way Go's ``%v`` prints them
(``map[image:nginx name:web]``), which :func:`go_format` reproduces.
"""

from __future__ import annotations

from typing import Any

from ..errors import Cause, StatusError
from ..gofmt import go_type

REJECTED = "the server rejected our request due to an error in our request"


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def rejected(message: str) -> StatusError:
    """422 as kube-apiserver builds it for a patch it cannot apply."""
    return StatusError(422, "Invalid", REJECTED,
                       causes=[Cause("UnexpectedServerResponse", message)])


def server_error(message: str) -> StatusError:
    """A plain (non-Status) error inside kube-apiserver: code 500, empty reason."""
    return StatusError(500, "", message)


def go_format(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for a decoded JSON value."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def json_kind(value: Any) -> str:
    """The word Go's ``encoding/json`` uses for a value's JSON type in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def bad_arg_type(expected: Any, actual: Any) -> StatusError:
    return server_error(f"expected a {go_type(expected)}, but received a {go_type(actual)}")


def no_merge_key(item: Any, merge_key: str) -> StatusError:
    return server_error(f"map: {go_format(item)} does not contain declared merge key: {merge_key}")
