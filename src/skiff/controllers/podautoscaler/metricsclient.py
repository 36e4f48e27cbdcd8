"""What the autoscaler reads: the target's scale and its pods' usage from ``metrics.k8s.io``.

::

    spec.scaleTargetRef {apiVersion, kind, name}
      └─ discovery of apiVersion (cached) ─▶ the plural that serves kind with a scale
         subresource ─▶ GET <plural>/<name>/scale ─▶ spec.replicas, status.selector
    GET /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods?labelSelector=<selector>
      └─ per pod: the sum of its containers' usage of the resource (or one container's,
         for a ContainerResource metric), in milli-units, with the sample's time and window

Failures become :class:`~.replicas.MetricError` s with the reasons Kubernetes' HPA
puts on its conditions and events (FailedGetScale, FailedGetResourceMetric ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...api.errors import StatusError
from ...api.kinds.meta.cells import parse_time
from ...api.protobuf import parse_duration
from ...api.quantity import QuantityError, milli_value
from ...client.resources import Resource
from ...client.rest import ApiClient, TransportError
from .replicas import MetricError, PodMetric

Obj = dict[str, Any]

POD_METRICS = Resource("metrics.k8s.io", "v1beta1", "pods")


@dataclass(frozen=True)
class Target:
    resource: Resource     # what serves the target kind (its scale subresource is used)
    name: str


class ScaleTargets:
    """Finds the resource behind a ``scaleTargetRef`` through discovery (cached per group version)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._kinds: dict[str, dict[str, Resource]] = {}

    async def resolve(self, ref: Obj) -> Target:
        api_version, kind, name = str(ref.get("apiVersion", "")), str(ref.get("kind", "")), str(ref.get("name", ""))
        kinds = self._kinds.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = self._kinds[api_version] = await self._discover(api_version)
        resource = kinds.get(kind)
        if resource is None:
            raise MetricError("FailedGetScale", f"unable to determine resource for scale target reference: "
                                                f"no matches for kind \"{kind}\" in version \"{api_version}\"")
        return Target(resource, name)

    async def _discover(self, api_version: str) -> dict[str, Resource]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            listing = await self.client.request("GET", path)
        except (StatusError, TransportError):
            return {}
        names = {str(r.get("name", "")) for r in listing.get("resources") or []}
        out: dict[str, Resource] = {}
        for r in listing.get("resources") or []:
            plural = str(r.get("name", ""))
            if "/" not in plural and f"{plural}/scale" in names:
                out[str(r.get("kind", ""))] = Resource(group, version, plural, bool(r.get("namespaced")))
        return out


async def get_scale(client: ApiClient, target: Target, namespace: str) -> Obj:
    try:
        return await client.get(target.resource, target.name, namespace=namespace, subresource="scale")
    except (StatusError, TransportError) as e:
        raise MetricError("FailedGetScale", str(e)) from None


async def update_scale(client: ApiClient, target: Target, namespace: str, scale: Obj, replicas: int) -> Obj:
    body = {**scale, "spec": {**(scale.get("spec") or {}), "replicas": replicas}}
    try:
        return await client.update(target.resource, body, namespace=namespace, subresource="scale")
    except (StatusError, TransportError) as e:
        raise MetricError("FailedRescale", str(e)) from None


async def pod_usage(client: ApiClient, namespace: str, selector: str, resource: str,
                    container: str | None = None) -> dict[str, PodMetric]:
    """Pod name -> usage of ``resource`` (milli-units), for the pods ``selector`` matches."""
    what = f"unable to get metrics for resource {resource}"
    try:
        listing = await client.list(POD_METRICS, namespace=namespace, label_selector=selector)
    except (StatusError, TransportError) as e:
        raise MetricError("FailedGetResourceMetric",
                          f"{what}: unable to fetch metrics from resource metrics API: {e}") from None
    if not listing.items:
        raise MetricError("FailedGetResourceMetric", f"{what}: no metrics returned from resource metrics API")
    out: dict[str, PodMetric] = {}
    for item in listing.items:
        total, measured = 0, False
        for c in item.get("containers") or []:
            if container is not None and c.get("name") != container:
                continue
            usage = (c.get("usage") or {}).get(resource)
            if usage is None:
                measured = False
                break
            try:
                total += milli_value(usage)
            except QuantityError:
                measured = False
                break
            measured = True
        stamp = parse_time(item.get("timestamp"))
        if not measured or stamp is None:
            continue   # a pod missing the container or the resource counts as without metrics
        try:
            window = parse_duration(str(item.get("window") or "0s")) / 1e9
        except ValueError:
            window = 0.0
        out[item["metadata"]["name"]] = PodMetric(total, stamp.timestamp(), window)
    return out
