"""Persistent storage: binding claims to volumes, local-path provisioning, in-use protection.

::

    PersistentVolumeController  "persistentvolume-binder"  binder.py
    LocalPathProvisioner        "local-path-provisioner"   provisioner.py (+ the default class)
    PVCProtectionController     "pvc-protection"           protection.py
    PVProtectionController      "pv-protection"            protection.py

:mod:`.matching` holds the pure rules (which volume may serve which claim) that
the scheduler's VolumeBinding plugin shares.  :func:`with_volumes_dir` points the
provisioner of a controller list at a directory (``skiff up``: ``<data-dir>/volumes``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from ..reconciler import Controller, ControllerContext
from .binder import PersistentVolumeController
from .protection import PVCProtectionController, PVProtectionController
from .provisioner import PROVISIONER, LocalPathProvisioner

__all__ = ["PersistentVolumeController", "LocalPathProvisioner", "PVCProtectionController",
           "PVProtectionController", "PROVISIONER", "with_volumes_dir"]

Factory = Callable[[ControllerContext], Controller]


def with_volumes_dir(known: Sequence[tuple[str, Factory]],
                     volumes_dir: Path | str) -> tuple[tuple[str, Factory], ...]:
    """``known`` (e.g. the manager's CONTROLLERS) with the provisioner writing under ``volumes_dir``."""
    provisioner: Factory = functools.partial(LocalPathProvisioner, volumes_dir=volumes_dir)
    return tuple((name, provisioner if name == LocalPathProvisioner.name else factory) for name, factory in known)
