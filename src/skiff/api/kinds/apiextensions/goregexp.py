"""CRD ``pattern``s as Kubernetes runs them: Go regular expressions, i.e. RE2.

kube-apiserver compiles a schema's ``pattern`` with Go's ``regexp`` package, whose
syntax and semantics are RE2's: no backreferences or lookaround, ``\\pL`` and
``[[:alpha:]]`` classes, ``$`` only at the end of the text, ``\\d``/``\\w``/``\\s``
ASCII-only, and matching in linear time.  Python's ``re`` differs on each point and
backtracks: ``^(a+)+$`` against 24 ``a``s and a ``b`` takes 0.5 s there (doubling
with each character) and 0.1 ms in RE2, and one such object would stall the API
server.  So patterns go through the ``google-re2`` binding::

    compile_pattern(pattern) -> compiled regexp (``.search(text)``), or None if invalid
    pattern_error(pattern)   -> RE2's reason it is invalid, or None
"""

from __future__ import annotations

import functools
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

#: RE2 would log every refused pattern to stderr; the callers report them instead
_QUIET = re2.Options()
_QUIET.log_errors = False


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> tuple[Any, str | None]:
    try:
        return re2.compile(pattern, options=_QUIET), None
    except re2.error as err:
        reason = err.args[0] if err.args else "invalid pattern"
        return None, reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (``.search(text)`` -> a match or None); None when invalid."""
    return _compiled(pattern)[0]


def pattern_error(pattern: str) -> str | None:
    """RE2's reason for refusing ``pattern`` (e.g. ``missing ): (abc``); None when valid."""
    return _compiled(pattern)[1]
