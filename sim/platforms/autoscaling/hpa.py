"""The Kubernetes Horizontal Pod Autoscaler, computed as its controller computes it (no SimPy).

Every `sync_period` the platform model calls `HorizontalPodAutoscaler.recommend(now,
current_replicas, ready_replicas, metric)` and applies `Decision.desired`. The steps follow
kubernetes/kubernetes `pkg/controller/podautoscaler`:

1. `horizontal.go` reconcileAutoscaler: replicas 0 -> scaling disabled (KEDA's 0 <-> 1);
   replicas outside [min, max] -> straight to the bound; otherwise compute from the metrics.
2. `replica_calculator.go`, one proposal per metric, the largest wins (computeReplicasForMetrics):
   - a CPU metric given as PodMetrics (GetResourceReplicas / GetRawResourceReplicas): groupPods
     (Pending pods and, within the CPU initialisation period, pods whose sample does not cover a
     window after readiness are unready; pods without a sample are missing), the utilisation in
     integer arithmetic (a whole percent), missing pods at 0 (scale-up) or their request x
     max(100%, target) (scale-down), unready pods at 0 on a scale-up, then the same direction
     checks as below (_resource_proposal).
   - per-pod metrics given as a mean (Pods AverageValue: calcPlainMetricReplicas): ratio = mean
     over ready pods / target; within tolerance -> current; else ceil(ratio x ready). Pending
     pods are set aside; on a scale-up (ratio > 1) they count as 0 and the ratio is recomputed
     over ready + pending pods, keeping the current count if that lands in the tolerance band or
     flips the direction. On a scale-down they are ignored.
   - External AverageValue (KEDA's default; GetExternalPerPodMetricReplicas): tolerance on
     total / (target x current); desired = ceil(total / target).
   - External Value (GetExternalMetricReplicas): ratio = total / target, ceil(ratio x ready).
   Tolerances.isWithin: 1 - down <= ratio <= 1 + up (per-direction `behavior.*.tolerance`,
   Kubernetes 1.33 alpha, else the controller's 0.1).
3. Normalisation.
   - Without `behavior` (normalizeDesiredReplicas): stabilised = max of the recommendations in
     the last 300 s (inclusive) and this one; then at most max(2 x current, 4), min/maxReplicas.
   - With `behavior` (normalizeDesiredReplicasWithBehaviors): stabilizeRecommendationWithBehaviors
     bounds the current count by the min of the recommendations in the scale-up window and the max
     of those in the scale-down window (a recommendation counts when strictly newer than now -
     window); convertDesiredReplicasWithBehaviorRate then applies
     calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors: for each
     policy, the count at the start of its period = current - added + removed by this HPA within
     the last periodSeconds (getReplicasChangePerPeriod, strictly newer), Pods -> start +/- value,
     Percent -> ceil(start x (1 + v/100)) up, int(start x (1 - v/100)) down; selectPolicy Max
     takes the largest change, Min the smallest, Disabled none; then min/maxReplicas.
   The controller records its own rescales only (storeScaleEvent); KEDA's 0 -> 1 is not one.
4. Defaults filled into a given `behavior` as the API server does
   (`pkg/apis/autoscaling/v2/defaults.go`); values in sim.platforms.autoscaling.

Times are floats in seconds; two times within EPS_S count as equal, so a sync exactly one period
after an event sees that event as outside the period, as Kubernetes does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, ValidationInfo, model_validator

import sim.platforms.autoscaling as D
from sim import units
from sim.config import Duration, Fraction, Strict, context_month_s

EPS_S = 1e-6

SelectPolicy = Literal["Max", "Min", "Disabled"]


# --- the `behavior` API, with Kubernetes' field names ---------------------------------------------


class HPAScalingPolicy(Strict):
    """One rate limit: change by at most `value` pods (or percent) per `periodSeconds`."""

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    periodSeconds: int = Field(gt=0, le=1800)

    def label(self) -> str:
        return f"{self.type}={self.value}/{self.periodSeconds}s"


class HPAScalingRules(Strict):
    """`scaleUp` / `scaleDown`. Unset fields take Kubernetes' defaults (see HPABehavior)."""

    stabilizationWindowSeconds: int | None = Field(None, ge=0, le=3600)
    selectPolicy: SelectPolicy | None = None
    policies: list[HPAScalingPolicy] | None = Field(None, min_length=1)
    tolerance: Fraction | None = Field(
        None, ge=0, description="per-direction tolerance (Kubernetes 1.33 alpha)"
    )

    @property
    def window(self) -> float:
        return float(self.stabilizationWindowSeconds or 0)

    @property
    def longest_period(self) -> int:
        return max((p.periodSeconds for p in self.policies or ()), default=0)


class HPABehavior(Strict):
    """`behavior`: every unset field is filled with Kubernetes' default at validation, except
    scaleDown.stabilizationWindowSeconds, which the controller takes from its flag."""

    scaleUp: HPAScalingRules | None = None
    scaleDown: HPAScalingRules | None = None

    @model_validator(mode="after")
    def _defaults(self) -> HPABehavior:
        up = self.scaleUp or HPAScalingRules()
        if up.stabilizationWindowSeconds is None:
            up.stabilizationWindowSeconds = D.HPA_SCALE_UP_WINDOW_S
        if up.selectPolicy is None:
            up.selectPolicy = D.HPA_SELECT_POLICY
        if up.policies is None:
            up.policies = [HPAScalingPolicy(**p) for p in D.HPA_SCALE_UP_POLICIES]
        down = self.scaleDown or HPAScalingRules()
        # scaleDown.stabilizationWindowSeconds stays unset: defaults.go leaves it nil ("Use nil
        # to use the controller's default") and the controller fills in its
        # --horizontal-pod-autoscaler-downscale-stabilization (HorizontalPodAutoscaler below).
        if down.selectPolicy is None:
            down.selectPolicy = D.HPA_SELECT_POLICY
        if down.policies is None:
            down.policies = [HPAScalingPolicy(**p) for p in D.HPA_SCALE_DOWN_POLICIES]
        self.scaleUp, self.scaleDown = up, down
        return self


# --- the controller's flags -------------------------------------------------------------------


class ControllerFlags(Strict):
    """kube-controller-manager flags of the HPA controller (a cluster-level setting); defaults
    from pkg/controller/podautoscaler/config/v1alpha1/defaults.go."""

    sync_period: Duration = Field(
        D.HPA_SYNC_PERIOD_S, gt=0, description="--horizontal-pod-autoscaler-sync-period"
    )
    tolerance: Fraction = Field(
        D.HPA_TOLERANCE, ge=0, lt=1, description="--horizontal-pod-autoscaler-tolerance"
    )
    downscale_stabilization: Duration = Field(
        D.HPA_DOWNSCALE_STABILIZATION_S,
        ge=0,
        description="--horizontal-pod-autoscaler-downscale-stabilization",
    )
    cpu_initialization_period: Duration = Field(
        D.HPA_CPU_INITIALIZATION_PERIOD_S,
        ge=0,
        description="--horizontal-pod-autoscaler-cpu-initialization-period",
    )
    initial_readiness_delay: Duration = Field(
        D.HPA_INITIAL_READINESS_DELAY_S,
        ge=0,
        description="--horizontal-pod-autoscaler-initial-readiness-delay",
    )


# --- what the HPA sees of the pods for a CPU metric -----------------------------------------------


@dataclass(frozen=True)
class PodView:
    """One pod as the HPA's pod lister and metrics-server show it.

    pending: phase Pending (no node yet, or its containers not started); start_time:
    pod.Status.StartTime; ready / ready_since: the PodReady condition and its
    LastTransitionTime; metric: CPU millicores from metrics-server (None: no sample yet),
    stamped metric_time and averaged over metric_window seconds.
    """

    pending: bool
    start_time: float = 0.0
    ready: bool = False
    ready_since: float = 0.0
    metric: int | None = None
    metric_time: float = 0.0
    metric_window: float = 0.0


@dataclass(frozen=True)
class PodMetrics:
    """The value of a CPU (Resource) metric for `recommend`: every pod of the target (deleted
    ones excluded) with its sample, and the CPU request per pod in millicores."""

    pods: tuple[PodView, ...]
    request_milli: int


_ONE_VALUE = (int, float, PodMetrics)  # `recommend`'s metric given as one value (a tuple: an
# `int | float | PodMetrics` union is built at each call, ~1 us of a sync)


def group_pods(
    pods: Sequence[PodView], now: float, cpu_initialization_period: float, readiness_delay: float
) -> tuple[list[int], list[int], list[int]]:
    """(ready, unready, missing) pod indices for a CPU metric, as groupPods in
    kubernetes/kubernetes pkg/controller/podautoscaler/replica_calculator.go (v1.33+; the
    unready/ignored split). Deleted and failed pods are not passed in (the caller drops them)."""
    ready: list[int] = []
    unready: list[int] = []
    missing: list[int] = []
    for i, p in enumerate(pods):
        if p.pending:  # "Pending pods are ignored" -> unready
            unready.append(i)
            continue
        if p.metric is None:  # "Pods missing metrics"
            missing.append(i)
            continue
        if p.start_time + cpu_initialization_period > now + EPS_S:
            # Within the initialisation period: unready if not ready, or if one metric window
            # was not collected since the last readiness transition (metric.Timestamp.Before(
            # condition.LastTransitionTime + metric.Window)).
            bad = not p.ready or p.metric_time < p.ready_since + p.metric_window - EPS_S
        else:
            # Later: only a pod that is unready and has never been ready.
            bad = not p.ready and p.start_time + readiness_delay > p.ready_since + EPS_S
        (unready if bad else ready).append(i)
    return ready, unready, missing


# --- the scenario's `hpa:` key --------------------------------------------------------------------

MetricType = Literal["Utilization", "AverageValue", "Value"]


@dataclass(frozen=True)
class MetricTarget:
    """One metric the HPA scales on.

    `source` says what value `recommend` expects for it:
    - "pods": the mean over *ready* pods (CPU used / CPU request for Utilization; e.g. in-flight
      requests per pod for AverageValue), as metrics-server / a custom-metrics adapter reports;
    - "external": the total (a queue length, a request rate), as KEDA's metrics adapter reports.
    """

    name: str
    source: Literal["pods", "external"]
    target_type: MetricType
    target: float

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"metric {self.name!r}: target must be > 0, got {self.target!r}")
        if self.source == "pods" and self.target_type == "Value":
            raise ValueError(f"metric {self.name!r}: a per-pod metric cannot use a Value target")


class HPASpec(Strict):
    """`hpa:` of a Kubernetes platform: one metric with a per-pod target, and the bounds.

    metric `cpu`: target = utilisation of the pod's CPU request ("70%" or 0.7; default 80%);
    `concurrency`: requests in flight per ready pod; `rps`: requests per second per ready pod.
    """

    min_replicas: int = Field(D.HPA_MIN_REPLICAS, ge=1)
    max_replicas: int = Field(ge=1)
    metric: Literal["cpu", "concurrency", "rps"] = "cpu"
    target: float | str | None = Field(None, description="per-pod target (see metric)")
    window: Duration = Field(
        D.HPA_SYNC_PERIOD_S,
        gt=0,
        description="averaging window of concurrency / rps (ASSUMPTION: one sync period); cpu "
        "comes from metrics-server (cluster.metric_resolution)",
    )
    # Controller flags, settable per HPA here; unset, they come from `cluster.controller`.
    sync_period: Duration = Field(D.HPA_SYNC_PERIOD_S, gt=0)
    tolerance: Fraction = Field(D.HPA_TOLERANCE, ge=0, lt=1)
    downscale_stabilization: Duration = Field(
        D.HPA_DOWNSCALE_STABILIZATION_S,
        ge=0,
        description="the controller's scale-down stabilisation (also an unset behavior window)",
    )
    behavior: HPABehavior | None = Field(
        None, description="Kubernetes `behavior`; absent = the controller's no-behavior rules"
    )

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> HPASpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas "
                f"({self.max_replicas})"
            )
        raw = self.target
        if self.metric == "cpu":
            value = D.HPA_DEFAULT_CPU_UTILIZATION if raw is None else units.parse_fraction(raw)
            if value > 10:
                raise ValueError(
                    f"cpu target {raw!r} reads as {value:.0%} of the CPU request; "
                    "write a percentage such as '70%' (or 0.7)"
                )
        elif raw is None:
            raise ValueError(f"`target` is required for metric {self.metric!r} (per pod)")
        elif self.metric == "rps":
            value = units.parse_rate(raw, context_month_s(info))  # `/month`: the billing month
        else:
            value = units.parse_count(raw)
        if not value > 0:
            raise ValueError(f"`target` must be > 0, got {raw!r}")
        self.target = value
        return self

    def metric_target(self) -> MetricTarget:
        kind: MetricType = "Utilization" if self.metric == "cpu" else "AverageValue"
        assert isinstance(self.target, float)
        return MetricTarget(self.metric, "pods", kind, self.target)


# --- the controller -------------------------------------------------------------------------------


class Lazy:
    """A text made only when read (most syncs change nothing: their reasons are never read, so
    the formatting is put off to the decisions file). It is a value: equal to, hashing and
    printing as the text it makes, so a Decision holding it compares by its reason's text."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make

    def __str__(self) -> str:
        return self._make()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Lazy | str):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return repr(str(self))


# A reason: its text, or a Lazy making it (built only if read: the decisions file).
Text = str | Lazy


def _text(t: Text) -> str:
    return t if isinstance(t, str) else t._make()


@dataclass(frozen=True)
class Decision:
    """What the HPA did at one sync: the replica count to set and which rule decided it.

    rule: "disabled" | "above-max" | "below-min" | "no-metrics" | "tolerance" | "scale" |
    "stabilised-up" | "stabilised-down" | "rate-limit-up" | "rate-limit-down" | "max" | "min".
    `recommendation` is the metric-based count before stabilisation and limits.
    """

    desired: int
    _reason: Text  # the text, or a Lazy making it when read (compared by its text)
    metric_value: float | None
    target: float | None
    rule: str
    recommendation: int | None = None

    @property
    def reason(self) -> str:
        return _text(self._reason)


@dataclass(frozen=True)
class _Proposal:
    replicas: int
    value: float
    target: float
    within: bool
    _text: Text

    @property
    def text(self) -> str:
        return _text(self._text)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class HorizontalPodAutoscaler:
    """One HPA object's controller state: recommendation history and its own scale events."""

    def __init__(
        self,
        *,
        min_replicas: int,
        max_replicas: int,
        metrics: Sequence[MetricTarget],
        behavior: HPABehavior | None = None,
        tolerance: float = D.HPA_TOLERANCE,
        downscale_stabilization: float = D.HPA_DOWNSCALE_STABILIZATION_S,
        sync_period: float = D.HPA_SYNC_PERIOD_S,
        cpu_initialization_period: float = D.HPA_CPU_INITIALIZATION_PERIOD_S,
        initial_readiness_delay: float = D.HPA_INITIAL_READINESS_DELAY_S,
    ) -> None:
        if min_replicas < 1 or max_replicas < min_replicas:
            raise ValueError(
                f"need 1 <= min_replicas <= max_replicas, got {min_replicas}, {max_replicas}"
            )
        if not metrics:
            raise ValueError("an HPA needs at least one metric")
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.metrics = tuple(metrics)
        self.behavior = behavior
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self.cpu_initialization_period = cpu_initialization_period
        self.initial_readiness_delay = initial_readiness_delay
        down_tol = up_tol = tolerance
        self.down_window = downscale_stabilization
        if behavior is not None:
            assert behavior.scaleUp is not None and behavior.scaleDown is not None
            w = behavior.scaleDown.stabilizationWindowSeconds
            if w is not None:  # unset: the controller's flag (horizontal.go)
                self.down_window = float(w)
            if behavior.scaleDown.tolerance is not None:
                down_tol = behavior.scaleDown.tolerance
            if behavior.scaleUp.tolerance is not None:
                up_tol = behavior.scaleUp.tolerance
        self.tolerance_down, self.tolerance_up = down_tol, up_tol
        self._recommendations: list[tuple[float, int]] = []
        self._up_events: list[tuple[float, int]] = []
        self._down_events: list[tuple[float, int]] = []
        self._started = False
        self._now = 0.0

    @classmethod
    def from_spec(
        cls, spec: HPASpec, flags: ControllerFlags | None = None
    ) -> HorizontalPodAutoscaler:
        """The HPA of `spec`; controller flags the spec leaves unset come from `flags`."""
        flags = flags or ControllerFlags()
        given = spec.model_fields_set

        def flag(name: str) -> float:
            return float(getattr(spec if name in given else flags, name))

        return cls(
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            metrics=[spec.metric_target()],
            behavior=spec.behavior,
            tolerance=flag("tolerance"),
            downscale_stabilization=flag("downscale_stabilization"),
            sync_period=flag("sync_period"),
            cpu_initialization_period=flags.cpu_initialization_period,
            initial_readiness_delay=flags.initial_readiness_delay,
        )

    # -- public --------------------------------------------------------------------------------

    def recommend(
        self,
        now: float,
        current_replicas: int,
        ready_replicas: int,
        metric: float | PodMetrics | Sequence[float | PodMetrics | None] | None,
    ) -> Decision:
        """One sync. `current_replicas`: the Deployment's replica count (pods starting included,
        draining pods not); `metric`: one value per MetricTarget (None = unavailable) — see
        MetricTarget for what each value means; a CPU metric may instead be the pods as
        metrics-server shows them (PodMetrics). The decision is assumed applied."""
        values: list[float | PodMetrics | None] = (
            [metric] if metric is None or isinstance(metric, _ONE_VALUE) else list(metric)
        )
        if len(values) != len(self.metrics):
            raise ValueError(f"expected {len(self.metrics)} metric values, got {len(values)}")
        self._now = now
        current, ready = int(current_replicas), max(0, min(int(ready_replicas), current_replicas))
        if not self._started:  # recordInitialRecommendation
            self._recommendations.append((now, current))
            self._started = True
        if current == 0:
            return Decision(
                0,
                "replicas are 0: HPA scaling is disabled (KEDA activates from 0)",
                None,
                None,
                "disabled",
            )
        if current > self.max_replicas:
            return self._apply(
                now,
                current,
                self.max_replicas,
                "above-max",
                f"current {current} above maxReplicas {self.max_replicas}",
            )
        if current < self.min_replicas:
            return self._apply(
                now,
                current,
                self.min_replicas,
                "below-min",
                f"current {current} below minReplicas {self.min_replicas}",
            )

        proposals = [
            self._proposal(m, v, current, ready) for m, v in zip(self.metrics, values, strict=True)
        ]
        valid = [p for p in proposals if isinstance(p, _Proposal)]
        if not valid or (len(valid) < len(proposals) and max(p.replicas for p in valid) < current):
            why = "; ".join(p if isinstance(p, str) else p.text for p in proposals)
            return Decision(
                current, f"no change: metrics unavailable ({why})", None, None, "no-metrics"
            )
        best = valid[0]
        for p in valid[1:]:
            if p.replicas > best.replicas:
                best = p
        raw = best.replicas
        if self.behavior is None:
            desired, rule, step = self._normalize_legacy(now, current, raw)
        else:
            desired, rule, step = self._normalize_behaviors(now, current, raw)
        if rule == "scale" and best.within and desired == current:
            rule = "tolerance"
        text = best._text
        reason = Lazy(lambda: _text(text) + f"; {step}") if step else text
        return self._apply(now, current, desired, rule, reason, best, raw)

    # -- step 2: metrics ------------------------------------------------------------------------

    def _within(self, ratio: float) -> bool:
        return (1.0 - self.tolerance_down) <= ratio <= (1.0 + self.tolerance_up)

    def _proposal(
        self, m: MetricTarget, value: float | PodMetrics | None, current: int, ready: int
    ) -> _Proposal | str:
        if isinstance(value, PodMetrics):
            return self._resource_proposal(m, value, current)
        if value is None or not math.isfinite(value):
            return f"{m.name}: metric unavailable"
        if m.source == "pods":
            return self._pods_proposal(m, value, current, ready)
        if m.target_type == "AverageValue":
            ratio = value / (m.target * current)
            if self._within(ratio):
                return _Proposal(
                    current,
                    value,
                    m.target,
                    True,
                    Lazy(
                        lambda: (
                            f"{m.name} {_fmt(value)} / ({_fmt(m.target)} x {current} pods) = "
                            f"{ratio:.3f} within tolerance -> keep {current}"
                        )
                    ),
                )
            n = math.ceil(value / m.target)
            return _Proposal(
                n,
                value,
                m.target,
                False,
                Lazy(lambda: f"{m.name} {_fmt(value)} / target {_fmt(m.target)} per pod -> {n}"),
            )
        ratio = value / m.target  # External Value
        if self._within(ratio):
            return _Proposal(
                current,
                value,
                m.target,
                True,
                Lazy(
                    lambda: (
                        f"{m.name} {_fmt(value)} vs value target {_fmt(m.target)}: ratio "
                        f"{ratio:.3f} within tolerance -> keep {current}"
                    )
                ),
            )
        n = math.ceil(ratio * ready)
        return _Proposal(
            n,
            value,
            m.target,
            False,
            Lazy(
                lambda: (
                    f"{m.name} {_fmt(value)} vs value target {_fmt(m.target)}: ratio "
                    f"{ratio:.3f} x {ready} ready -> {n}"
                )
            ),
        )

    def _pods_proposal(
        self, m: MetricTarget, mean: float, current: int, ready: int
    ) -> _Proposal | str:
        if ready == 0:
            return f"{m.name}: no ready pod reports the metric"
        unready = max(current - ready, 0)
        ratio = mean / m.target
        head = f"{m.name} {_fmt(mean)} per ready pod vs target {_fmt(m.target)}"
        if not (unready > 0 and ratio > 1.0):
            if self._within(ratio):
                return _Proposal(
                    current,
                    mean,
                    m.target,
                    True,
                    f"{head}: ratio {ratio:.3f} within tolerance -> keep {current}",
                )
            n = math.ceil(ratio * ready)
            return _Proposal(
                n, mean, m.target, False, f"{head}: ratio {ratio:.3f} x {ready} ready -> {n}"
            )
        # Scale-up with not-ready pods: they count as using 0.
        new_ratio = mean * ready / (m.target * (ready + unready))
        if self._within(new_ratio) or new_ratio < 1.0:
            return _Proposal(
                current,
                mean,
                m.target,
                True,
                f"{head}: ratio {ratio:.3f}, {new_ratio:.3f} counting {unready} "
                f"not-ready pods as 0 -> keep {current}",
            )
        n = max(math.ceil(new_ratio * (ready + unready)), current)
        return _Proposal(
            n,
            mean,
            m.target,
            False,
            f"{head}: ratio {new_ratio:.3f} counting {unready} not-ready pods as 0 -> {n}",
        )

    def _resource_proposal(self, m: MetricTarget, pm: PodMetrics, current: int) -> _Proposal | str:
        """GetResourceReplicas (Utilization) / GetRawResourceReplicas (AverageValue) for a CPU
        metric, as replica_calculator.go: groupPods, then the ratio in integer arithmetic
        (metrics.GetResourceUtilizationRatio: utilization = int32(sum usage x 100 / sum
        requests), a whole percent; GetMetricUsageRatio: int64 mean of millicores)."""
        now = self._now
        ready, unready, missing = group_pods(
            pm.pods, now, self.cpu_initialization_period, self.initial_readiness_delay
        )
        metrics = {i: int(pm.pods[i].metric or 0) for i in ready}
        if not metrics:
            return f"{m.name}: did not receive metrics for targeted pods (pods might be unready)"
        req = pm.request_milli
        if m.target_type == "Utilization":
            target = round(m.target * 100)  # targetAverageUtilization is an int32 percent

            def usage(ms: dict[int, int]) -> int:
                return (sum(ms.values()) * 100) // (req * len(ms))

            down_fill = req * max(100, target) // 100  # missing pods on a scale-down
            shown = "{}% of the CPU request"
        else:
            target = round(m.target * 1000)  # millicores per pod

            def usage(ms: dict[int, int]) -> int:
                return sum(ms.values()) // len(ms)

            down_fill = target
            shown = "{}m CPU per pod"
        u = usage(metrics)
        ratio = u / target
        head = f"{m.name} {shown.format(u)} over {len(ready)} pods vs target {shown.format(target)}"
        scale = 100.0 if m.target_type == "Utilization" else 1000.0

        def prop(n: int, within: bool, text: str) -> _Proposal:
            return _Proposal(n, u / scale, target / scale, within, f"{head}: {text}")

        up_unready = bool(unready) and ratio > 1.0
        if not up_unready and not missing:
            if self._within(ratio):
                return prop(current, True, f"ratio {ratio:.3f} within tolerance -> keep {current}")
            n = math.ceil(ratio * len(ready))
            return prop(n, False, f"ratio {ratio:.3f} x {len(ready)} -> {n}")
        if missing and ratio < 1.0:
            metrics.update((i, down_fill) for i in missing)
        elif missing and ratio > 1.0:
            metrics.update((i, 0) for i in missing)
        if up_unready:
            metrics.update((i, 0) for i in unready)
        new_ratio = usage(metrics) / target
        counted = f"counting {len(unready)} unready / {len(missing)} without metrics"
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return prop(current, True, f"ratio {new_ratio:.3f} {counted} -> keep {current}")
        n = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and n > current) or (new_ratio > 1.0 and n < current):
            return prop(current, True, f"ratio {new_ratio:.3f} {counted} -> keep {current}")
        return prop(n, False, f"ratio {new_ratio:.3f} {counted} -> {n}")

    # -- step 3: normalisation --------------------------------------------------------------------

    def _normalize_legacy(self, now: float, current: int, raw: int) -> tuple[int, str, str]:
        cutoff = now - self.downscale_stabilization
        lo = cutoff - EPS_S
        kept = [rec for rec in self._recommendations if rec[0] >= lo]
        stab = raw
        for _, r in kept:  # the max recommendation in the window (integers: order-free)
            if r > stab:
                stab = r
        kept.append((now, raw))
        self._recommendations = kept
        rule, step = "scale", ""
        if stab != raw:
            rule = "stabilised-down"
            step = (
                f"scale-down stabilised: max recommendation {stab} in last "
                f"{_fmt(self.downscale_stabilization)}s"
            )
        limit = int(max(D.HPA_LEGACY_SCALE_UP_FACTOR * current, D.HPA_LEGACY_SCALE_UP_MINIMUM))
        up_limited = self.max_replicas > limit
        max_allowed = limit if up_limited else self.max_replicas
        if stab < self.min_replicas:
            return (
                self.min_replicas,
                "min",
                _join(step, f"raised to minReplicas {self.min_replicas}"),
            )
        if stab > max_allowed:  # the limit's text only when it binds (this runs at every sync)
            if up_limited:
                return (
                    max_allowed,
                    "rate-limit-up",
                    _join(step, f"scale-up limited to max(2 x {current}, 4) = {limit}"),
                )
            return max_allowed, "max", _join(step, f"capped at maxReplicas {self.max_replicas}")
        return stab, rule, step

    def _normalize_behaviors(self, now: float, current: int, raw: int) -> tuple[int, str, str]:
        assert self.behavior is not None
        up, down = self.behavior.scaleUp, self.behavior.scaleDown
        assert up is not None and down is not None
        up_cut, down_cut = now - up.window, now - self.down_window
        up_rec = down_rec = raw
        for t, r in self._recommendations:
            if t > up_cut + EPS_S:
                up_rec = min(up_rec, r)
            if t > down_cut + EPS_S:
                down_rec = max(down_rec, r)
        stab = current
        if stab < up_rec:
            stab = up_rec
        if stab > down_rec:
            stab = down_rec
        oldest = min(up_cut, down_cut) + EPS_S
        self._recommendations = [(t, r) for t, r in self._recommendations if t > oldest]
        self._recommendations.append((now, raw))

        rule, step = "scale", ""
        if stab != raw:
            if raw >= current:
                rule = "stabilised-up"
                step = (
                    f"scale-up stabilised: min recommendation {up_rec} in last {_fmt(up.window)}s"
                )
            else:
                rule = "stabilised-down"
                step = (
                    f"scale-down stabilised: max recommendation {down_rec} in last "
                    f"{_fmt(self.down_window)}s"
                )
        if stab > current:
            limit, why = self._scale_up_limit(now, current, up)
            limit = max(limit, current)
            if self.max_replicas > limit:
                max_allowed, max_rule, max_text = limit, "rate-limit-up", why
            else:
                max_allowed, max_rule = self.max_replicas, "max"
                max_text = f"capped at maxReplicas {self.max_replicas}"
            if stab > max_allowed:
                return max_allowed, max_rule, _join(step, max_text)
        elif stab < current:
            limit, why = self._scale_down_limit(now, current, down)
            limit = min(limit, current)
            if self.min_replicas < limit:
                min_allowed, min_rule, min_text = limit, "rate-limit-down", why
            else:
                min_allowed, min_rule = self.min_replicas, "min"
                min_text = f"raised to minReplicas {self.min_replicas}"
            if stab < min_allowed:
                return min_allowed, min_rule, _join(step, min_text)
        return stab, rule, step

    def _changes_within(self, now: float, period: int) -> tuple[int, int]:
        cutoff = now - period + EPS_S
        added = sum(c for t, c in self._up_events if t > cutoff)
        removed = sum(c for t, c in self._down_events if t > cutoff)
        return added, removed

    def _scale_up_limit(self, now: float, current: int, rules: HPAScalingRules) -> tuple[int, str]:
        if rules.selectPolicy == "Disabled":
            return current, "scale-up disabled (selectPolicy Disabled)"
        best: tuple[int, HPAScalingPolicy] | None = None
        for p in rules.policies or ():
            added, removed = self._changes_within(now, p.periodSeconds)
            start = current - added + removed
            if p.type == "Pods":
                proposed = start + p.value
            else:
                proposed = math.ceil(start * (1 + p.value / 100))
            if best is None or (
                proposed > best[0] if rules.selectPolicy == "Max" else proposed < best[0]
            ):
                best = (proposed, p)
        assert best is not None
        return best[0], f"scale-up limited by {best[1].label()} (at most {max(best[0], current)})"

    def _scale_down_limit(
        self, now: float, current: int, rules: HPAScalingRules
    ) -> tuple[int, str]:
        if rules.selectPolicy == "Disabled":
            return current, "scale-down disabled (selectPolicy Disabled)"
        best: tuple[int, HPAScalingPolicy] | None = None
        for p in rules.policies or ():
            added, removed = self._changes_within(now, p.periodSeconds)
            start = current - added + removed
            # Pods: start - value; Percent: truncated like Go's int32(float64).
            proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100))
            # Max = the largest change = the lowest floor; Min = the smallest change.
            if best is None or (
                proposed < best[0] if rules.selectPolicy == "Max" else proposed > best[0]
            ):
                best = (proposed, p)
        assert best is not None
        return best[0], (
            f"scale-down limited by {best[1].label()} (at least {min(best[0], current)})"
        )

    # -- bookkeeping ---------------------------------------------------------------------------

    def _apply(
        self,
        now: float,
        current: int,
        desired: int,
        rule: str,
        reason: Text,
        best: _Proposal | None = None,
        raw: int | None = None,
    ) -> Decision:
        if desired != current and self.behavior is not None:  # storeScaleEvent
            up, down = self.behavior.scaleUp, self.behavior.scaleDown
            assert up is not None and down is not None
            if desired > current:
                keep = now - up.longest_period + EPS_S
                self._up_events = [e for e in self._up_events if e[0] > keep]
                self._up_events.append((now, desired - current))
            else:
                keep = now - down.longest_period + EPS_S
                self._down_events = [e for e in self._down_events if e[0] > keep]
                self._down_events.append((now, current - desired))
        if desired == current and rule == "scale":
            text = reason
            reason = Lazy(lambda: _text(text) + "; no change")
        return Decision(
            desired,
            reason,
            None if best is None else best.value,
            None if best is None else best.target,
            rule,
            raw,
        )


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
