"""The horizontal pod autoscaler (kube-controller-manager's podautoscaler).

    replicas.py       the replica count one metric asks for (pure)
    behavior.py       stabilization windows and scaling policies (pure)
    metricsclient.py  the target's scale and the pods' usage, through the API
    controller.py     the controller: evaluate every HPA each sync period
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from .controller import HorizontalPodAutoscalerController

Factory = Callable[[Any], Any]


def with_hpa_settings(known: Sequence[tuple[str, Factory]], *, sync_period: float,
                      downscale_stabilization: float) -> tuple[tuple[str, Factory], ...]:
    """``known`` (e.g. the manager's CONTROLLERS) with the autoscaler's timing flags applied."""
    configured: Factory = functools.partial(HorizontalPodAutoscalerController, sync_period=sync_period,
                                            downscale_stabilization=downscale_stabilization)
    return tuple((name, configured if name == HorizontalPodAutoscalerController.name else factory)
                 for name, factory in known)


__all__ = ["HorizontalPodAutoscalerController", "with_hpa_settings"]
