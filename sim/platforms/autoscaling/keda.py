"""KEDA: the ScaledObject spec (KEDA's own field names) and KEDA's part of the scaling (no SimPy).

KEDA does two jobs (kedacore/keda-docs concepts/scaling-deployments.md):
- **Activation (0 <-> 1) is KEDA's**, at every `pollingInterval`: `KedaScaler.poll`, following
  kedacore/keda `pkg/scaling/executor/scale_scaledobjects.go` (RequestScale, scaleFromZeroOrIdle,
  scaleToZeroOrIdle, getIdleOrMinimumReplicaCount):
  - a trigger is active iff its metric > its activation threshold (strictly; default 0);
  - active and (replicas == 0, or idleReplicaCount set and replicas < minReplicaCount)
    -> scale to max(minReplicaCount, 1) and record lastActiveTime; active otherwise -> record
    lastActiveTime (unless a trigger errored), the HPA does the rest;
  - inactive and (idleReplicaCount set and replicas > idleReplicaCount, or replicas > 0 and
    minReplicaCount == 0) -> to idleReplicaCount (or minReplicaCount) once lastActiveTime +
    cooldownPeriod < now, or, never active yet, once creation + initialCooldownPeriod < now;
  - inactive, no idleReplicaCount and replicas < minReplicaCount -> minReplicaCount;
  - a trigger error with no active trigger changes nothing (fallback is the HPA's business).
  With minReplicaCount >= 1 (and no idleReplicaCount) activation never changes the replicas.
- **Scaling (1 <-> N) is the HPA's**: KEDA creates an HPA with minReplicas =
  max(minReplicaCount, 1), maxReplicas = maxReplicaCount, `advanced.horizontalPodAutoscalerConfig.
  behavior`, and one External metric per trigger (AverageValue by default: desired =
  ceil(metric / threshold)); several triggers -> the HPA takes the largest. `KedaAutoscaler`
  combines the two for the platform model.
- **Fallback** (`pkg/fallback/fallback.go`, v2.20.2): every read of a trigger, KEDA's polls and
  the HPA's alike, counts a failure or resets the count; after more than failureThreshold
  consecutive failures KEDA serves the HPA threshold x fallback replicas (behavior static |
  currentReplicas | currentReplicasIfHigher | currentReplicasIfLower; over the ready replicas for
  a Value target) and the poll counts the trigger as active. Valid as in KEDA >= 2.18: any
  metric type, at least one trigger that is not cpu. A failed read is a None metric (the platform
  model's `metric_failures` setting makes them happen).

Trigger metrics come from the simulation; `TriggerInfo.measure` says what to measure for each:
`request_rate` (requests/s arriving at the service, averaged over `window`), `completion_rate`
(requests/s the pods finished, over `window`: an app-side counter), `concurrency`
(requests in flight in pods + waiting), `backlog` (requests waiting), `backlog_inflight` (waiting +
in flight), `cpu_utilization` (mean over ready pods of CPU used / CPU request), `cpu_cores` (mean
CPU cores used per ready pod). Supported trigger types: prometheus, http (KEDA HTTP add-on;
simulation type, see manifests.py for HTTPScaledObject), kafka, queue (generic backlog),
aws-sqs-queue, cpu. Metadata values may be strings, as in real manifests ("100").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, PrivateAttr, Tag, model_validator

import sim.platforms.autoscaling as D
from sim import units
from sim.config import Duration, Strict
from sim.platforms.autoscaling.hpa import (
    EPS_S,
    ControllerFlags,
    Decision,
    HorizontalPodAutoscaler,
    HPABehavior,
    MetricTarget,
    MetricType,
)

Measure = Literal[
    "request_rate",
    "completion_rate",
    "concurrency",
    "backlog",
    "backlog_inflight",
    "cpu_utilization",
    "cpu_cores",
]

# A metadata key that real manifests carry and the simulation does not need (connection details,
# auth, TLS): accepted so a pasted manifest loads, ignored by the model.
Ignored = Any


def _ignored() -> Any:
    return Field(None, description="accepted for compatibility with real manifests; not simulated")


@dataclass(frozen=True)
class TriggerInfo:
    """What the platform model measures for one trigger, and how KEDA reads it."""

    name: str  # the HPA metric name, KEDA style: `s{index}-{type}` unless the trigger has a name
    type: str
    measure: Measure
    window: float | None  # seconds, for request_rate
    target: float
    activation: float | None  # None: takes no part in activation (cpu)
    metric_type: MetricType


# --- trigger metadata -----------------------------------------------------------------------------

_RANGE_RE = re.compile(r"\[\s*(\d+(?:\.\d+)?(?:ms|s|m|h|d|w))\s*\]")


class PrometheusMetadata(Strict):
    """kedacore/keda-docs scalers/prometheus.md; the query is simulated as a request rate.

    `counts` (sim) says what the query's counter counts: `completions` for the app's own
    counter (the docs' query, `sum(rate(http_requests_total{...}[2m]))`: client libraries count
    a request when its response is written, so the rate saturates at the pods' capacity while a
    backlog grows), `arrivals` for a counter at the ingress or load balancer (e.g.
    nginx_ingress_controller_requests). Unset: `completions`, except for a ScaledObject that
    rests at 0 replicas, which only works when the counter is outside the pods (with no pod an
    app-side counter reads 0 and KEDA never activates), so there `arrivals`.
    """

    threshold: float = Field(gt=0, description="value per replica to scale for")
    activationThreshold: float = D.KEDA_ACTIVATION_THRESHOLD
    window: Duration | None = Field(
        None, gt=0, description="sim: rate window (default: the query's [range], else 2m)"
    )
    counts: Literal["completions", "arrivals"] | None = Field(
        None,
        description="sim: what the queried counter counts (app-side: completions; ingress: "
        "arrivals)",
    )
    serverAddress: Ignored = _ignored()
    query: Ignored = _ignored()
    queryParameters: Ignored = _ignored()
    namespace: Ignored = _ignored()
    customHeaders: Ignored = _ignored()
    ignoreNullValues: Ignored = _ignored()
    unsafeSsl: Ignored = _ignored()
    timeout: Ignored = _ignored()
    authModes: Ignored = _ignored()
    cortexOrgID: Ignored = _ignored()
    metricName: Ignored = _ignored()
    awsRegion: Ignored = _ignored()
    identityOwner: Ignored = _ignored()

    @model_validator(mode="after")
    def _window(self) -> PrometheusMetadata:
        if self.window is None:
            m = _RANGE_RE.search(str(self.query or ""))
            self.window = units.parse_duration(m.group(1)) if m else D.KEDA_PROMETHEUS_WINDOW_S
        return self


class HttpMetadata(Strict):
    """KEDA HTTP add-on scaling metric (operator/apis/http/v1alpha1/httpscaledobject_types.go)."""

    scalingMetric: Literal["concurrency", "requestRate"] = "concurrency"
    targetValue: float = Field(D.HTTP_TARGET_VALUE, gt=0)
    window: Duration = Field(D.HTTP_RATE_WINDOW_S, gt=0, description="requestRate window")
    granularity: Duration = Field(D.HTTP_RATE_GRANULARITY_S, gt=0)
    hosts: Ignored = _ignored()
    pathPrefixes: Ignored = _ignored()
    service: Ignored = _ignored()
    port: Ignored = _ignored()
    scalerAddress: Ignored = _ignored()
    httpScaledObject: Ignored = _ignored()


class KafkaMetadata(Strict):
    """kedacore/keda-docs scalers/apache-kafka.md; the lag is the simulated backlog + in flight.

    The thresholds are integers as in KEDA (`LagThreshold int64`, pkg/scalers/kafka_scaler.go).
    """

    lagThreshold: int = Field(int(D.KEDA_KAFKA_LAG_THRESHOLD), gt=0)
    activationLagThreshold: int = int(D.KEDA_ACTIVATION_THRESHOLD)
    allowIdleConsumers: bool = False
    partitions: int | None = Field(
        None, ge=1, description="sim: topic partitions; caps replicas unless allowIdleConsumers"
    )
    limitToPartitionsWithLag: bool = Field(
        False, description="sim: in a system's Kafka topic (kafka_scaler.go getTotalLag)"
    )
    bootstrapServers: Ignored = _ignored()
    consumerGroup: Ignored = _ignored()
    topic: Ignored = _ignored()
    offsetResetPolicy: Ignored = _ignored()
    scaleToZeroOnInvalidOffset: Ignored = _ignored()
    excludePersistentLag: bool = Field(
        False, description="sim: in a system's Kafka topic (kafka_scaler.go getLagForPartition)"
    )
    version: Ignored = _ignored()
    partitionLimitation: Ignored = _ignored()
    sasl: Ignored = _ignored()
    tls: Ignored = _ignored()
    unsafeSsl: Ignored = _ignored()


class QueueMetadata(Strict):
    """Simulation type `queue`: a generic backlog, with Kafka's threshold names (platforms.md)."""

    lagThreshold: float = Field(D.KEDA_KAFKA_LAG_THRESHOLD, gt=0)
    activationLagThreshold: float = D.KEDA_ACTIVATION_THRESHOLD


class SqsMetadata(Strict):
    """kedacore/keda-docs scalers/aws-sqs.md."""

    queueLength: float = Field(D.KEDA_SQS_QUEUE_LENGTH, gt=0)
    activationQueueLength: float = D.KEDA_ACTIVATION_THRESHOLD
    scaleOnInFlight: bool = True
    scaleOnDelayed: bool = Field(False, description="accepted; no delayed messages are simulated")
    queueURL: Ignored = _ignored()
    queueURLFromEnv: Ignored = _ignored()
    awsRegion: Ignored = _ignored()
    awsEndpoint: Ignored = _ignored()
    identityOwner: Ignored = _ignored()
    awsRoleArn: Ignored = _ignored()
    awsAccessKeyID: Ignored = _ignored()
    awsSecretAccessKey: Ignored = _ignored()


class CpuMetadata(Strict):
    """kedacore/keda-docs scalers/cpu.md: `value` is a percentage (Utilization) or cores."""

    value: float | str
    type: Literal["Utilization", "AverageValue"] | None = Field(
        None, description="deprecated: use the trigger's metricType"
    )
    containerName: Ignored = _ignored()


# --- triggers -------------------------------------------------------------------------------------


class _Trigger(Strict):
    name: str | None = Field(None, min_length=1)
    metricType: MetricType | None = None
    authenticationRef: Ignored = _ignored()
    useCachedMetrics: bool = False

    def resolved_metric_type(self) -> MetricType:
        return self.metricType or "AverageValue"

    @model_validator(mode="after")
    def _external_types(self) -> _Trigger:
        if self.metricType == "Utilization" and getattr(self, "type", "") != "cpu":
            raise ValueError("metricType Utilization is only for cpu (and memory) triggers")
        return self

    # Overridden per type.
    def target(self) -> float:
        raise NotImplementedError

    def activation(self) -> float | None:
        raise NotImplementedError

    def measure(self) -> tuple[Measure, float | None]:
        raise NotImplementedError

    def hpa_value(self, raw: float) -> float:
        """The value KEDA's metrics adapter serves the HPA for a measured raw value."""
        return raw

    def activity_value(self, raw: float) -> float:
        """The value compared with the activation threshold (uncapped, e.g. Kafka's full lag)."""
        return raw

    def metric_target(self, name: str) -> MetricTarget:
        return MetricTarget(name, "external", self.resolved_metric_type(), self.target())


class PrometheusTrigger(_Trigger):
    type: Literal["prometheus"]
    metadata: PrometheusMetadata

    def target(self) -> float:
        return self.metadata.threshold

    def activation(self) -> float | None:
        return self.metadata.activationThreshold

    def measure(self) -> tuple[Measure, float | None]:
        kind: Measure = (
            "completion_rate" if self.metadata.counts == "completions" else "request_rate"
        )
        return kind, self.metadata.window


class HttpTrigger(_Trigger):
    type: Literal["http"]
    metadata: HttpMetadata = Field(default_factory=HttpMetadata)

    def target(self) -> float:
        return self.metadata.targetValue

    def activation(self) -> float | None:
        return 0.0  # the add-on's scaler: active = metric > 0 (scaler/handlers.go IsActive)

    def measure(self) -> tuple[Measure, float | None]:
        if self.metadata.scalingMetric == "requestRate":
            return "request_rate", self.metadata.window
        return "concurrency", None

    def hpa_value(self, raw: float) -> float:
        # The add-on reports int(math.Ceil(count.RPS)) for requestRate (scaler/handlers.go).
        return float(math.ceil(raw)) if self.metadata.scalingMetric == "requestRate" else raw

    def activity_value(self, raw: float) -> float:
        return self.hpa_value(raw)  # IsActive compares the reported value with 0


class KafkaTrigger(_Trigger):
    type: Literal["kafka"]
    metadata: KafkaMetadata = Field(default_factory=KafkaMetadata)

    def target(self) -> float:
        return self.metadata.lagThreshold

    def activation(self) -> float | None:
        return self.metadata.activationLagThreshold

    def measure(self) -> tuple[Measure, float | None]:
        # lag = sum over partitions of (latest offset - committed offset) (kafka_scaler.go
        # getLagForPartition, v2.20.2): a message fetched by a consumer and not yet committed
        # (in service) is still lag, so the lag is the messages waiting + in flight.
        return "backlog_inflight", None

    def hpa_value(self, raw: float) -> float:
        # kafka_scaler.go getTotalLag (v2.20.2), in int64 arithmetic: unless allowIdleConsumers,
        # `if (totalLag / lagThreshold) > partitions { totalLag = partitions * lagThreshold }`.
        # The division truncates, so a lag of 25 with threshold 10 on 2 partitions is served
        # uncapped (25 / 10 = 2, not > 2) and the HPA asks for ceil(25 / 10) = 3 consumers.
        md = self.metadata
        lag = int(raw)
        capped = md.partitions is not None and not md.allowIdleConsumers
        if capped and lag // md.lagThreshold > md.partitions:  # type: ignore[operator]
            lag = md.partitions * md.lagThreshold  # type: ignore[operator]
        return float(lag)


class QueueTrigger(_Trigger):
    type: Literal["queue"]
    metadata: QueueMetadata = Field(default_factory=QueueMetadata)

    def target(self) -> float:
        return self.metadata.lagThreshold

    def activation(self) -> float | None:
        return self.metadata.activationLagThreshold

    def measure(self) -> tuple[Measure, float | None]:
        return "backlog", None


class SqsTrigger(_Trigger):
    type: Literal["aws-sqs-queue"]
    metadata: SqsMetadata = Field(default_factory=SqsMetadata)

    def target(self) -> float:
        return self.metadata.queueLength

    def activation(self) -> float | None:
        return self.metadata.activationQueueLength

    def measure(self) -> tuple[Measure, float | None]:
        return ("backlog_inflight" if self.metadata.scaleOnInFlight else "backlog"), None


class CpuTrigger(_Trigger):
    type: Literal["cpu"]
    metadata: CpuMetadata
    _target: float = PrivateAttr(0.0)

    @model_validator(mode="after")
    def _resolve(self) -> CpuTrigger:
        kind = self.metricType or self.metadata.type
        if kind not in ("Utilization", "AverageValue"):
            raise ValueError(
                "a cpu trigger needs metricType Utilization or AverageValue"
                + (f", got {kind}" if kind else "")
            )
        self.metricType = kind
        value = self.metadata.value
        if kind == "Utilization":  # a percentage of the CPU request, "60" (or "60%")
            v = str(value).strip()
            self._target = units.parse_fraction(v) if v.endswith("%") else float(v) / 100.0
        else:  # cores per pod, "250m" or 0.25
            self._target = units.parse_cpu(value)
        if not self._target > 0:
            raise ValueError(f"cpu trigger value must be > 0, got {value!r}")
        return self

    def resolved_metric_type(self) -> MetricType:
        assert self.metricType is not None
        return self.metricType

    def target(self) -> float:
        return self._target

    def activation(self) -> float | None:
        return None  # cpu alone cannot scale to zero (scalers/cpu.md)

    def measure(self) -> tuple[Measure, float | None]:
        return ("cpu_utilization" if self.metricType == "Utilization" else "cpu_cores"), None

    def metric_target(self, name: str) -> MetricTarget:
        return MetricTarget(name, "pods", self.resolved_metric_type(), self.target())


_TRIGGERS: dict[str, type[_Trigger]] = {
    "prometheus": PrometheusTrigger,
    "http": HttpTrigger,
    "kafka": KafkaTrigger,
    "queue": QueueTrigger,
    "aws-sqs-queue": SqsTrigger,
    "cpu": CpuTrigger,
}
SUPPORTED_TRIGGERS = tuple(_TRIGGERS)


def _check_trigger_type(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind not in _TRIGGERS:
            what = "a trigger needs `type`" if kind is None else f"unknown trigger type {kind!r}"
            raise ValueError(f"{what}; supported: {', '.join(SUPPORTED_TRIGGERS)}")
    return value


def _trigger_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # Tags contain a hyphen so error paths show user keys only (e.g. triggers[0].metadata).
    return f"trigger-{kind}" if kind in _TRIGGERS else None


Trigger = Annotated[
    Annotated[PrometheusTrigger, Tag("trigger-prometheus")]
    | Annotated[HttpTrigger, Tag("trigger-http")]
    | Annotated[KafkaTrigger, Tag("trigger-kafka")]
    | Annotated[QueueTrigger, Tag("trigger-queue")]
    | Annotated[SqsTrigger, Tag("trigger-aws-sqs-queue")]
    | Annotated[CpuTrigger, Tag("trigger-cpu")],
    Discriminator(_trigger_tag),
    BeforeValidator(_check_trigger_type),
]


# --- the ScaledObject spec ------------------------------------------------------------------------


class FallbackSpec(Strict):
    failureThreshold: int = Field(ge=0)
    replicas: int = Field(ge=0)
    behavior: Literal[
        "static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"
    ] = "static"


class HorizontalPodAutoscalerConfig(Strict):
    name: str | None = None
    behavior: HPABehavior | None = None


class AdvancedSpec(Strict):
    horizontalPodAutoscalerConfig: HorizontalPodAutoscalerConfig | None = None
    restoreToOriginalReplicaCount: bool = Field(False, description="accepted; only on deletion")
    scalingModifiers: Any = Field(None, description="not simulated (rejected)")

    @model_validator(mode="after")
    def _no_modifiers(self) -> AdvancedSpec:
        if self.scalingModifiers is not None:
            raise ValueError(
                "scalingModifiers (a formula over the triggers) is not simulated; remove it and "
                "let the HPA take the largest of the triggers' replica counts"
            )
        return self


class ScaledObjectSpec(Strict):
    """`spec:` of a KEDA ScaledObject (keda.sh/v1alpha1), with KEDA's field names and defaults."""

    scaleTargetRef: Ignored = _ignored()
    pollingInterval: Duration = Field(D.KEDA_POLLING_INTERVAL_S, gt=0)
    cooldownPeriod: Duration = Field(D.KEDA_COOLDOWN_PERIOD_S, ge=0)
    initialCooldownPeriod: Duration = Field(D.KEDA_INITIAL_COOLDOWN_PERIOD_S, ge=0)
    idleReplicaCount: int | None = Field(None, ge=0)
    minReplicaCount: int = Field(D.KEDA_MIN_REPLICA_COUNT, ge=0)
    maxReplicaCount: int = Field(D.KEDA_MAX_REPLICA_COUNT, ge=1)
    fallback: FallbackSpec | None = None
    advanced: AdvancedSpec | None = None
    triggers: list[Trigger] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ScaledObjectSpec:
        # The checks of KEDA's admission webhook (apis/keda/v1alpha1 scaledobject_webhook.go).
        if self.minReplicaCount > self.maxReplicaCount:
            raise ValueError(
                f"minReplicaCount ({self.minReplicaCount}) must not exceed maxReplicaCount "
                f"({self.maxReplicaCount})"
            )
        if self.idleReplicaCount is not None and self.idleReplicaCount >= self.minReplicaCount:
            raise ValueError(
                f"idleReplicaCount ({self.idleReplicaCount}) must be less than minReplicaCount "
                f"({self.minReplicaCount})"
            )
        if self.minReplicaCount == 0 and all(t.type == "cpu" for t in self.triggers):
            raise ValueError(
                "only cpu triggers and minReplicaCount 0: KEDA cannot scale to zero on CPU alone; "
                "set minReplicaCount >= 1 or add another trigger"
            )
        resting = (
            self.idleReplicaCount if self.idleReplicaCount is not None else self.minReplicaCount
        )
        for t in self.triggers:
            if isinstance(t, PrometheusTrigger) and t.metadata.counts is None:
                t.metadata.counts = D.KEDA_PROMETHEUS_COUNTS if resting > 0 else "arrivals"
        names = [t.name for t in self.triggers if t.name]
        if len(names) != len(set(names)):
            raise ValueError("trigger names must be unique")
        # KEDA >= 2.18 CheckFallbackValid (apis/keda/v1alpha1/scaledobject_types.go, v2.18.0 to
        # v2.20.2): valid when at least one trigger is not cpu/memory, whatever its metric type
        # (AverageValue or Value); cpu triggers take no part in the fallback.
        if self.fallback is not None and all(t.type == "cpu" for t in self.triggers):
            raise ValueError(
                "at least one trigger (that is not cpu or memory) is needed for the fallback"
            )
        return self

    def hpa_behavior(self) -> HPABehavior | None:
        cfg = self.advanced.horizontalPodAutoscalerConfig if self.advanced else None
        return cfg.behavior if cfg else None

    def trigger_infos(self) -> tuple[TriggerInfo, ...]:
        out = []
        for i, t in enumerate(self.triggers):
            measure, window = t.measure()
            out.append(
                TriggerInfo(
                    name=t.name or f"s{i}-{t.type}",
                    type=t.type,
                    measure=measure,
                    window=window,
                    target=t.target(),
                    activation=t.activation(),
                    metric_type=t.resolved_metric_type(),
                )
            )
        return tuple(out)


# --- KEDA's scale loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KedaDecision:
    """What KEDA did at one poll.

    rule: "activate" (from 0 / idle) | "deactivate" (to 0 / idle after the cooldown) |
    "cooldown" (inactive, waiting) | "min" (raised to minReplicaCount) | "active" (HPA's job) |
    "inactive" (nothing to do) | "error" (a trigger errored; no change).
    """

    desired: int
    changed: bool
    active: bool
    active_triggers: tuple[str, ...]
    rule: str
    reason: str


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class KedaScaler:
    """KEDA's activation loop for one ScaledObject (lastActiveTime is its only state)."""

    def __init__(self, spec: ScaledObjectSpec, *, created_at: float = 0.0) -> None:
        self.spec = spec
        self.created_at = created_at
        self.triggers = spec.trigger_infos()
        self.last_active: float | None = None
        # Only cpu triggers: the ScaledObject counts as always active (scale_handler.go).
        self._only_resource = all(i.activation is None for i in self.triggers)

    def _values(self, trigger_metrics: Sequence[float | None]) -> list[float | None]:
        values = list(trigger_metrics)
        if len(values) != len(self.triggers):
            raise ValueError(f"expected {len(self.triggers)} trigger metrics, got {len(values)}")
        return values

    def activity(
        self,
        trigger_metrics: Sequence[float | None],
        fallback: Sequence[bool] | None = None,
    ) -> tuple[bool, tuple[str, ...], bool]:
        """(active, names of the active triggers, some trigger errored). `fallback[i]`: trigger
        i failed and its fallback is active, which counts as active and not as an error
        (scale_handler.go getScalerState, v2.20.2: `isActiveOrFallback := fallbackActive ||
        isMetricActive`; GetMetricsWithFallback returns no error then)."""
        values = self._values(trigger_metrics)
        active: list[str] = []
        error = False
        for i, (info, trig, v) in enumerate(
            zip(self.triggers, self.spec.triggers, values, strict=True)
        ):
            if info.activation is None:
                continue
            if fallback is not None and fallback[i]:
                active.append(info.name)
            elif v is None or not math.isfinite(v):
                error = True
            elif trig.activity_value(v) > info.activation:
                active.append(info.name)
        return bool(active) or self._only_resource, tuple(active), error

    def hpa_metric(self, trigger_metrics: Sequence[float | None]) -> list[float | None]:
        """The values KEDA's metrics adapter serves the HPA, one per trigger (None = failed)."""
        return [
            None if v is None else t.hpa_value(v)
            for t, v in zip(self.spec.triggers, self._values(trigger_metrics), strict=True)
        ]

    def quiet_poll(self, now: float, active: bool, current: int) -> bool:
        """`poll`'s state change when its decision would keep `current` replicas, for a reader
        that knows the activity and that no read failed (the HTTP add-on's 0.5 s tick, run
        ~5M times a simulated month): True when the poll was that (nothing else to do), False
        when the caller must run `poll`. Only for minReplicaCount 0 without idleReplicaCount."""
        spec = self.spec
        if spec.minReplicaCount or spec.idleReplicaCount is not None:
            return False
        if current == 0:
            return not active  # rule "inactive"; else "activate"
        if active:  # rule "active"
            self.last_active = now
            return True
        if self.last_active is None:
            due = self.created_at + spec.initialCooldownPeriod
        else:
            due = self.last_active + spec.cooldownPeriod
        return not due < now - EPS_S  # rule "cooldown"; else "deactivate"

    def poll(
        self,
        now: float,
        trigger_metrics: Sequence[float | None],
        current_replicas: int,
        fallback: Sequence[bool] | None = None,
    ) -> KedaDecision:
        spec = self.spec
        current = int(current_replicas)
        active, names, error = self.activity(trigger_metrics, fallback)
        minimum, idle = spec.minReplicaCount, spec.idleReplicaCount

        def decide(desired: int, rule: str, reason: str) -> KedaDecision:
            return KedaDecision(desired, desired != current, active, names, rule, reason)

        which = ", ".join(names) if names else "no trigger"
        if active:
            if (idle is not None and current < minimum) or current == 0:
                target = minimum if minimum > 0 else 1
                self.last_active = now
                return decide(target, "activate", f"{which} active: scale {current} -> {target}")
            if error:
                return decide(current, "error", f"{which} active but a trigger errored: no change")
            self.last_active = now
            return decide(current, "active", f"{which} active: the HPA scales 1 <-> N")
        if error and spec.fallback is not None and spec.fallback.replicas != 0:
            return decide(current, "error", "a trigger errored: fallback is left to the HPA")
        if error and spec.fallback is None:
            return decide(current, "error", "a trigger errored and no fallback is set: no change")
        if (idle is not None and current > idle) or (current > 0 and minimum == 0):
            to = idle if idle is not None else minimum
            if self.last_active is None:
                due = self.created_at + spec.initialCooldownPeriod
                since = f"never active; initialCooldownPeriod {_fmt(spec.initialCooldownPeriod)}s"
            else:
                due = self.last_active + spec.cooldownPeriod
                since = (
                    f"inactive since {_fmt(self.last_active)}s; cooldownPeriod "
                    f"{_fmt(spec.cooldownPeriod)}s"
                )
            if due < now - EPS_S:
                return decide(to, "deactivate", f"{since}: scale {current} -> {to}")
            return decide(current, "cooldown", f"{since}: waiting until after {_fmt(due)}s")
        if idle is None and current < minimum:
            return decide(minimum, "min", f"inactive; raise {current} to minReplicaCount {minimum}")
        return decide(current, "inactive", "no trigger active: no change")


class KedaAutoscaler:
    """KEDA + the HPA it creates, for the platform model.

    Call `on_poll` every `polling_interval` and `on_hpa_sync` every `hpa_sync_period`, each with
    one measured value per trigger (see `triggers` for what to measure), and apply the decision.
    """

    def __init__(
        self,
        spec: ScaledObjectSpec,
        *,
        created_at: float = 0.0,
        flags: ControllerFlags | None = None,
    ) -> None:
        self.spec = spec
        self.scaler = KedaScaler(spec, created_at=created_at)
        self.triggers = self.scaler.triggers
        flags = flags or ControllerFlags()
        self.hpa = HorizontalPodAutoscaler(
            min_replicas=max(spec.minReplicaCount, D.KEDA_HPA_MIN_REPLICAS),
            max_replicas=spec.maxReplicaCount,
            metrics=[
                t.metric_target(info.name)
                for t, info in zip(spec.triggers, self.triggers, strict=True)
            ],
            behavior=spec.hpa_behavior(),
            tolerance=flags.tolerance,
            downscale_stabilization=flags.downscale_stabilization,
            sync_period=flags.sync_period,
            cpu_initialization_period=flags.cpu_initialization_period,
            initial_readiness_delay=flags.initial_readiness_delay,
        )
        # Consecutive failed reads per trigger: status.health[metric].numberOfFailures, counted
        # by every read through GetMetricsWithFallback, KEDA's polls and the HPA's alike.
        self._failures = [0] * len(self.triggers)

    @property
    def polling_interval(self) -> float:
        return self.spec.pollingInterval

    @property
    def hpa_sync_period(self) -> float:
        return self.hpa.sync_period

    @property
    def initial_replicas(self) -> int:
        """Replicas at simulated time 0: the resting state (idleReplicaCount, else min)."""
        spec = self.spec
        return spec.idleReplicaCount if spec.idleReplicaCount is not None else spec.minReplicaCount

    def on_poll(
        self, now: float, metrics: Sequence[Any], replicas: int, ready: int = 0
    ) -> KedaDecision:
        if None not in metrics:  # every read succeeded (the usual poll): no fallback is active
            self._succeeded()
            return self.scaler.poll(now, metrics, replicas)
        values = self.scaler.hpa_metric(metrics)
        fallback = [v is not None for v in self._with_fallback(values, replicas, ready)]
        active = [f and m is None for f, m in zip(fallback, metrics, strict=True)]
        return self.scaler.poll(now, metrics, replicas, active)

    def on_hpa_sync(
        self, now: float, metrics: Sequence[Any], replicas: int, ready: int
    ) -> Decision:
        values = self.scaler.hpa_metric(metrics)
        if replicas > 0:  # with 0 replicas the HPA reads no metric
            if None in values:
                values = self._with_fallback(values, replicas, ready)
            else:
                self._succeeded()
        return self.hpa.recommend(now, replicas, ready, values)

    def _succeeded(self) -> None:
        """`_with_fallback` when every read succeeded: the failure counts reset (cpu triggers
        never fall back) and the values are served as they are."""
        failures = self._failures
        for i, info in enumerate(self.triggers):
            if info.type != "cpu":
                failures[i] = 0

    def _with_fallback(self, values: list[Any], replicas: int, ready: int) -> list[Any]:
        """One read of every trigger through KEDA's fallback (pkg/fallback/fallback.go
        GetMetricsWithFallback and doFallback, v2.20.2): a success resets the trigger's failure
        count; a failure counts, and once the count exceeds failureThreshold the trigger is served
        target x replicas (static | currentReplicas | ...IfHigher | ...IfLower), divided by the
        ready replicas for a Value target (none ready: the fallback fails). cpu triggers are
        read by the HPA from metrics-server and never fall back."""
        fb = self.spec.fallback
        out = list(values)
        for i, v in enumerate(values):
            if self.triggers[i].type == "cpu":
                continue
            if v is not None:
                self._failures[i] = 0
                continue
            if fb is None:
                continue
            self._failures[i] += 1
            if self._failures[i] <= fb.failureThreshold:
                continue
            n = float(
                {
                    "static": fb.replicas,
                    "currentReplicas": replicas,
                    "currentReplicasIfHigher": max(replicas, fb.replicas),
                    "currentReplicasIfLower": min(replicas, fb.replicas),
                }[fb.behavior]
            )
            info = self.triggers[i]
            if info.metric_type == "Value":
                if ready <= 0:
                    continue
                n /= ready
            # NewMilliQuantity(int64(target x 1000 x replicas)): truncated to a milli-unit.
            out[i] = int(info.target * 1000 * n) / 1000
        return out
