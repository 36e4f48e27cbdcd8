"""In-tree scheduler plugins, one module each, and the registry that names them.

:func:`default_registry` returns a fresh :class:`~skiff.scheduler.framework.Registry`
every call; add out-of-tree plugins to your own copy with ``register``.
"""

from __future__ import annotations

from ..framework import Registry
from . import (balancedallocation, defaultbinder, defaultpreemption, imagelocality, interpodaffinity,
               nodeaffinity, nodename, nodeports, noderesourcesfit, nodeunschedulable, podtopologyspread,
               queuesort, tainttoleration, volumebinding, volumerestrictions)

_MODULES = (queuesort, nodeunschedulable, nodename, tainttoleration, nodeaffinity, nodeports,
            noderesourcesfit, volumerestrictions, volumebinding, podtopologyspread, interpodaffinity,
            defaultpreemption, balancedallocation, imagelocality, defaultbinder)


def default_registry() -> Registry:
    return Registry({m.NAME: m.new for m in _MODULES})
