"""The ``networking.k8s.io/v1`` group: Ingress, IngressClass and NetworkPolicy."""

from __future__ import annotations

from ...resource import ResourceInfo
from .ingress import INGRESSCLASSES, INGRESSES
from .networkpolicy import NETWORKPOLICIES

RESOURCES: tuple[ResourceInfo, ...] = (INGRESSES, INGRESSCLASSES, NETWORKPOLICIES)

__all__ = ["RESOURCES", "INGRESSES", "INGRESSCLASSES", "NETWORKPOLICIES"]
