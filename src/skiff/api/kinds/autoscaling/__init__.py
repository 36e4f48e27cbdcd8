"""The ``autoscaling`` group: HorizontalPodAutoscaler served as ``v2`` (preferred) and ``v1``.

Both versions are views of the same objects.  Store them in one version (``v2``)
and convert at the edge with :func:`hpa_v1_to_v2` / :func:`hpa_v2_to_v1`.
"""

from __future__ import annotations

from ...resource import ResourceInfo
from .conversion import hpa_v1_to_v2, hpa_v2_to_v1
from .hpa import HPA_V1, HPA_V2

RESOURCES: tuple[ResourceInfo, ...] = (HPA_V2, HPA_V1)

__all__ = ["RESOURCES", "HPA_V1", "HPA_V2", "hpa_v1_to_v2", "hpa_v2_to_v1"]
