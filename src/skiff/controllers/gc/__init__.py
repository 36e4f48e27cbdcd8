"""Garbage collection of owned objects: the dependency graph and the collector.

See :mod:`.graph` (ownerReferences as a graph of UIDs) and :mod:`.collector`
(background, foreground and orphan propagation, as Kubernetes does it).
"""

from .collector import GarbageCollector
from .graph import DependencyGraph, GraphNode, Identity, Work

__all__ = ["DependencyGraph", "GarbageCollector", "GraphNode", "Identity", "Work"]
