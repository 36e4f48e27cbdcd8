"""ImageLocality: prefer nodes that already have the pod's container images.

For each container (init containers included) whose image the node reports in
``status.images``, add ``size * (nodes having the image / all nodes)`` — an
image everywhere is worth little, a rare big one a lot.  The sum is clamped to
``[23 MiB, 1000 MiB × containers]`` and mapped linearly onto 0..100.
Image names without a tag are compared as ``:latest``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SUCCESS, CycleState, Status
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot, normalize_image

NAME = "ImageLocality"
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB
_PRE_SCORE_KEY = "PreScore" + NAME


def calculate_priority(sum_scores: int, num_containers: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * num_containers
    if sum_scores < MIN_THRESHOLD:
        sum_scores = MIN_THRESHOLD
    elif sum_scores > max_threshold:
        sum_scores = max_threshold
    if max_threshold <= MIN_THRESHOLD:
        return 0
    return 100 * (sum_scores - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    name = NAME

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        spec = pod.pod.get("spec") or {}
        containers = list(spec.get("initContainers") or ()) + list(spec.get("containers") or ())
        images = [normalize_image(c.get("image") or "") for c in containers]
        total = snapshot.num_nodes or 1
        spread = {img: snapshot.image_nodes.get(img, 0) / total for img in set(images)}
        state.write(_PRE_SCORE_KEY, (images, spread))
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        images, spread = state.read(_PRE_SCORE_KEY)
        if not node.images:
            return calculate_priority(0, len(images))
        total = 0
        for img in images:
            size = node.images.get(img)
            if size is not None:
                total += int(size * spread[img])
        return calculate_priority(total, len(images))

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        images, _ = state.read(_PRE_SCORE_KEY)
        empty = calculate_priority(0, len(images))
        return [self.score(state, pod, n) if n.images else empty for n in nodes]


def new(args: Mapping[str, Any], handle: Handle) -> ImageLocality:
    return ImageLocality()
