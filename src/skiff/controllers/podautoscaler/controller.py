"""The horizontal pod autoscaler: scale a workload to keep its pods' usage at a target.

Every sync period (15 s, kube-controller-manager's ``--horizontal-pod-autoscaler-sync-period``)
each HorizontalPodAutoscaler is evaluated::

    scale = GET <target>/scale                      (Deployment, ReplicaSet, StatefulSet, RC,
                                                      anything with a scale subresource)
    current = scale.spec.replicas
    current == 0 (and minReplicas > 0)  -> autoscaling is off (ScalingActive=False ScalingDisabled)
    current > maxReplicas / < minReplicas -> that bound, no metrics needed
    otherwise, per spec.metrics entry:
        pods  = the pods matching scale.status.selector (from the cache)
        usage = metrics.k8s.io PodMetrics of those pods           (.metricsclient)
        proposal = replicas.resource_replicas(...)                 (.replicas: tolerance 10 %,
                                                                    unready and missing pods)
      desired = the largest proposal            (ScalingActive=True ValidMetricFound)
      desired = behavior.normalize(...)         (stabilization window, scale-up/down
                                                 policies, min/max: AbleToScale, ScalingLimited)
    desired != current -> PUT <target>/scale; event SuccessfulRescale "New size: N; reason: ..."
    status: currentReplicas, desiredReplicas, currentMetrics, lastScaleTime, conditions

Only Resource and ContainerResource metrics (cpu, memory) have a source here: skiff serves
the resource metrics API (skiff.metrics) but no custom or external metrics API, so Pods,
Object and External metrics report ScalingActive=False with FailedGet<Type>Metric, as a
Kubernetes cluster without a custom metrics adapter does.  A metric that cannot be read
never lets the others scale down (Kubernetes' rule).  The recommendations and scale
events the behavior needs live in memory, as in kube-controller-manager: after a restart
the stabilization window starts again from the current size.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...api.kinds.meta.cells import format_time
from ...api.kinds.meta.conditions import set_condition
from ...api.quantity import canonical, milli_value
from ...api.selectors import SelectorError, parse_label_selector
from ...client.informer import Informer, split_key
from ...client.resources import PODS, Resource
from ..reconciler import Controller, ControllerContext
from .behavior import Decision, History, normalize, record_initial_recommendation, record_scale
from .metricsclient import ScaleTargets, get_scale, pod_usage, update_scale
from .replicas import MetricError, Proposal, resource_replicas

Obj = dict[str, Any]
log = logging.getLogger(__name__)

HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", kind="HorizontalPodAutoscaler")
DEFAULT_SYNC_PERIOD = 15.0
DEFAULT_DOWNSCALE_STABILIZATION = 300.0
DEFAULT_TOLERANCE = 0.1
DEFAULT_CPU_INITIALIZATION_PERIOD = 300.0
DEFAULT_INITIAL_READINESS_DELAY = 30.0
_UNSOURCED = {"Pods": "pods", "Object": "object", "External": "external"}


def metric_name(spec: Obj) -> str:
    """How Kubernetes names a metric in conditions and events."""
    kind = spec.get("type", "")
    if kind in ("Resource", "ContainerResource"):
        source = spec.get("resource" if kind == "Resource" else "containerResource") or {}
        prefix = f"{source.get('name', '')} {'resource' if kind == 'Resource' else 'container resource'}"
        if (source.get("target") or {}).get("type") == "Utilization":
            return f"{prefix} utilization (percentage of request)"
        return prefix
    source = spec.get(_UNSOURCED.get(kind, ""), {}) or {}
    return f"{kind.lower()} metric {(source.get('metric') or {}).get('name', '')}"


class HorizontalPodAutoscalerController(Controller):
    """Evaluates every HorizontalPodAutoscaler each sync period (see module docstring)."""

    name: ClassVar[str] = "horizontalpodautoscaling"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "horizontal-pod-autoscaler"

    def __init__(self, ctx: ControllerContext, *, sync_period: float = DEFAULT_SYNC_PERIOD,
                 downscale_stabilization: float = DEFAULT_DOWNSCALE_STABILIZATION,
                 tolerance: float = DEFAULT_TOLERANCE,
                 cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD,
                 initial_readiness_delay: float = DEFAULT_INITIAL_READINESS_DELAY) -> None:
        super().__init__(ctx)
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self.tolerance = tolerance
        self.cpu_initialization_period = cpu_initialization_period
        self.initial_readiness_delay = initial_readiness_delay
        self.hpas: Informer = self.informer(HPAS)
        self.pods: Informer = self.informer(PODS)
        self.targets = ScaleTargets(self.client)
        self.histories: dict[str, History] = {}
        self.hpas.add_handler(on_add=self.enqueue, on_update=self._changed, on_delete=self._forget)

    def _changed(self, old: Obj, new: Obj) -> None:
        # Its own status writes must not bring an evaluation forward (the pods just added
        # have no metrics yet): only a changed spec does; otherwise every sync period.
        if old["metadata"].get("generation") != new["metadata"].get("generation"):
            self.enqueue(new)

    def _forget(self, hpa: Obj) -> None:
        key = f"{hpa['metadata'].get('namespace', '')}/{hpa['metadata']['name']}"
        self.histories.pop(key, None)

    async def reconcile(self, key: str) -> float | None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self.histories.pop(key, None)
            return None
        await self.evaluate(key, hpa)
        return self.sync_period

    # -- one evaluation ----------------------------------------------------------------

    async def evaluate(self, key: str, hpa: Obj) -> None:
        namespace, _ = split_key(key)
        spec = hpa.get("spec") or {}
        old_status = hpa.get("status") or {}
        status: Obj = {"currentReplicas": old_status.get("currentReplicas", 0),
                       "desiredReplicas": old_status.get("desiredReplicas", 0),
                       "conditions": [dict(c) for c in old_status.get("conditions") or []]}
        for field in ("lastScaleTime", "currentMetrics"):
            if old_status.get(field) is not None:
                status[field] = old_status[field]
        now = self.clock.time()
        stamp = format_time(datetime.fromtimestamp(now, timezone.utc))
        conditions = status["conditions"]
        try:
            target = await self.targets.resolve(spec.get("scaleTargetRef") or {})
            scale = await get_scale(self.client, target, namespace)
        except MetricError as e:
            set_condition(conditions, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {e.message}", stamp)
            self.record_event(hpa, "Warning", "FailedGetScale", e.message)
            await self._write_status(hpa, status)
            return
        set_condition(conditions, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", stamp)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        status["currentReplicas"] = current    # the target's spec.replicas, as Kubernetes reports it
        minimum = int(spec.get("minReplicas") or 1)
        maximum = int(spec.get("maxReplicas") or 0)
        history = self.histories.get(key)
        if history is None:   # the current size counts as a recommendation from the start
            history = self.histories[key] = History()
            record_initial_recommendation(history, current, now)
        rescale_reason = ""
        if current == 0 and minimum != 0 or not minimum <= current <= maximum:
            status.pop("currentMetrics", None)     # not measured: no figures to show
        if current == 0 and minimum != 0:
            desired = 0
            set_condition(conditions, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", stamp)
        elif current > maximum:
            desired, rescale_reason = maximum, "Current number of replicas above Spec.MaxReplicas"
        elif current < minimum:
            desired, rescale_reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            computed = await self._from_metrics(hpa, namespace, scale, current, now, status, stamp)
            if computed is None:    # desiredReplicas stays what it was
                await self._write_status(hpa, status)
                return
            proposed, name = computed
            decision = normalize(spec, history, current, proposed, now,
                                 downscale_stabilization=self.downscale_stabilization)
            self._decision_conditions(conditions, decision, stamp)
            desired = decision.replicas
            if desired > current:
                rescale_reason = f"{name} above target"
            elif desired < current:
                rescale_reason = "All metrics below target"
        if desired != current:
            try:
                await update_scale(self.client, target, namespace, scale, desired)
            except MetricError as e:
                set_condition(conditions, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {e.message}", stamp)
                self.record_event(hpa, "Warning", "FailedRescale",
                                  f"New size: {desired}; reason: {rescale_reason}; error: {e.message}")
                await self._write_status(hpa, status)
                return
            set_condition(conditions, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", stamp)
            self.record_event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            record_scale(history, spec, current, desired, now)
            status["lastScaleTime"] = stamp
            log.info("%s: scaled %s from %d to %d (%s)", key, target.name, current, desired, rescale_reason)
        status["desiredReplicas"] = desired
        await self._write_status(hpa, status)

    async def _from_metrics(self, hpa: Obj, namespace: str, scale: Obj, current: int, now: float,
                            status: Obj, stamp: str) -> tuple[int, str] | None:
        """The largest proposal over spec.metrics and its metric's name; None when none can be used."""
        conditions = status["conditions"]
        metrics = (hpa.get("spec") or {}).get("metrics") or []
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        try:
            if not selector_text:
                raise SelectorError("selector is required")
            selector = parse_label_selector(selector_text)
        except SelectorError as e:
            set_condition(conditions, "ScalingActive", "False", "InvalidSelector",
                          f"the HPA target's scale is missing a selector: {e}" if not selector_text
                          else f"couldn't convert selector into a corresponding internal selector object: {e}",
                          stamp)
            self.record_event(hpa, "Warning", "SelectorRequired" if not selector_text else "InvalidSelector", str(e))
            return None
        pods = [p for p in self.pods.list()
                if p["metadata"].get("namespace") == namespace and selector.matches_object(p)]
        statuses: list[Obj] = []
        best: tuple[int, str] | None = None
        first_error: MetricError | None = None
        invalid = 0
        for spec in metrics:
            try:
                proposal, current_status = await self._one_metric(spec, namespace, selector_text, pods,
                                                                  current, now)
            except MetricError as e:
                invalid += 1
                first_error = first_error or e
                statuses.append({"type": ""})
                self.record_event(hpa, "Warning", e.reason, e.message)
                continue
            statuses.append(current_status)
            if best is None or proposal.replicas > best[0]:
                best = (proposal.replicas, metric_name(spec))
        status["currentMetrics"] = statuses or None
        if status["currentMetrics"] is None:
            del status["currentMetrics"]
        if first_error is not None and (best is None or best[0] < current):
            set_condition(conditions, "ScalingActive", "False", first_error.reason,
                          f"the HPA was unable to compute the replica count: {first_error.message}", stamp)
            self.record_event(hpa, "Warning", "FailedComputeMetricsReplicas",
                              f"invalid metrics ({invalid} invalid out of {len(metrics)}), first error is: "
                              f"{first_error.message}")
            return None
        if best is None:
            return None
        set_condition(conditions, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {best[1]}", stamp)
        return best

    async def _one_metric(self, spec: Obj, namespace: str, selector: str, pods: list[Obj],
                          current: int, now: float) -> tuple[Proposal, Obj]:
        kind = spec.get("type", "")
        if kind not in ("Resource", "ContainerResource"):
            field = _UNSOURCED.get(kind, "")
            raise MetricError(f"FailedGet{kind}Metric",
                              f"unable to get {metric_name(spec)}: no custom or external metrics API "
                              f"(custom.metrics.k8s.io, external.metrics.k8s.io) is served by this cluster"
                              if field else f"unknown metric source type {kind!r}")
        field = "resource" if kind == "Resource" else "containerResource"
        source = spec.get(field) or {}
        resource = str(source.get("name", ""))
        container = str(source["container"]) if kind == "ContainerResource" else None
        target = source.get("target") or {}
        reason = f"FailedGet{kind}Metric"
        try:
            usage = await pod_usage(self.client, namespace, selector, resource, container)
            utilization_target = average_target = None
            if target.get("type") == "Utilization":
                utilization_target = int(target.get("averageUtilization") or 0)
            else:
                average_target = milli_value(target.get("averageValue", "0"))
            proposal = resource_replicas(
                current, pods, usage, resource, target_utilization=utilization_target,
                target_average_value=average_target, container=container, now=now,
                tolerance=self.tolerance, cpu_initialization_period=self.cpu_initialization_period,
                initial_readiness_delay=self.initial_readiness_delay)
        except MetricError as e:
            what = "utilization" if target.get("type") == "Utilization" else "usage"
            raise MetricError(reason, f"failed to get {resource} {what}: {e.message}") from None
        current_value: Obj = {"averageValue": canonical(f"{proposal.average_value}m")}
        if proposal.utilization is not None:
            current_value["averageUtilization"] = proposal.utilization
        entry = {"name": resource, "current": current_value}
        if container is not None:
            entry["container"] = container
        return proposal, {"type": kind, field: entry}

    @staticmethod
    def _decision_conditions(conditions: list[Obj], decision: Decision, stamp: str) -> None:
        reason, message = decision.able_to_scale
        set_condition(conditions, "AbleToScale", "True", reason, message, stamp)
        limited, reason, message = decision.limited
        set_condition(conditions, "ScalingLimited", "True" if limited else "False", reason, message, stamp)

    async def _write_status(self, hpa: Obj, status: Obj) -> None:
        old = hpa.get("status") or {}
        if status == {k: v for k, v in old.items() if k != "observedGeneration"} \
                and old.get("observedGeneration") == hpa["metadata"].get("generation"):
            return
        if hpa["metadata"].get("generation") is not None:
            status["observedGeneration"] = hpa["metadata"]["generation"]
        body = {**hpa, "status": status}
        try:
            await self.client.update(HPAS, body, subresource="status")
        except StatusError as e:
            if e.code not in (404, 409):   # 409: it changed meanwhile, and its update queues it again
                raise
