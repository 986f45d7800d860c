"""`type: container_apps` in a scenario: an Azure Container Apps app (issue 18 item 3).

Scaling is KEDA's (Azure: "Azure Container Apps uses KEDA"), so `scale:` is translated into a
KEDA ScaledObject spec and run by sim.platforms.autoscaling.keda, as for `type: kubernetes`. Keys
follow the ARM/Bicep `template.scale` names. Sources (learn.microsoft.com/azure/container-apps/
scale-app, read 2026-12-01, and the azure-mgmt-appcontainers `Scale` model):
- minReplicas 0, maxReplicas 10 (at most 1000), pollingInterval 30 s, cooldownPeriod 300 s.
- An `http` rule scales on concurrent requests, default concurrentRequests 10: "Every 15 seconds,
  the number of concurrent requests is calculated as the number of requests in the past 15
  seconds divided by 15". Simulated as a KEDA http trigger on the request rate over 15 s with
  target concurrentRequests per replica (AverageValue). With no rule, that default http rule.
- A `custom` rule is any KEDA trigger sim models (prometheus, kafka, queue, aws-sqs-queue, cpu):
  `custom: {type: ..., metadata: {...}}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

import sim.platforms.autoscaling as D
from sim.config import Cpu, Duration, MemoryMB, Strict
from sim.platforms.kubernetes_spec import Dist, KubernetesSpec
from sim.pricing.container_apps import ContainerAppsPlan
from sim.pricing.ops import OpsCosts, OpsProfile

MIN_REPLICAS = 0
MAX_REPLICAS = 10
REPLICA_LIMIT = 1000
POLLING_INTERVAL_S = 30.0
COOLDOWN_PERIOD_S = 300.0
HTTP_CONCURRENT_REQUESTS = 10
HTTP_WINDOW_S = 15.0
# learn.microsoft.com/azure/container-apps/containers: 0.5 vCPU and 1 GiB per container by default
# (the Consumption profile's smallest pairs are 0.25 vCPU / 0.5 GiB steps).
CPU = 0.5
MEMORY_MB = 1024.0
# ASSUMPTION: a replica serves up to 100 requests at once (ACA sets no per-replica limit: it is the
# app server's own); set `concurrency` to your server's.
CONCURRENCY = 100
# learn.microsoft.com/azure/container-apps/ingress-overview (read 2026-12-01): HTTP ingress "Request
# timeout is 240 seconds".
REQUEST_TIMEOUT_S = 240.0
# ASSUMPTION: replica start (image pull + start + readiness), median 3 s, p99 12 s.
STARTUP: dict[str, Any] = {"dist": "lognormal", "median": "3s", "p99": "12s"}


class HttpRuleMetadata(Strict):
    concurrentRequests: Annotated[int, BeforeValidator(lambda v: int(v))] = Field(
        HTTP_CONCURRENT_REQUESTS, ge=1
    )


class HttpRule(Strict):
    metadata: HttpRuleMetadata = Field(default_factory=HttpRuleMetadata)


class CustomRule(Strict):
    type: str = Field(min_length=1, description="a KEDA scaler type sim models")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ScaleRule(Strict):
    name: str | None = None
    http: HttpRule | None = None
    custom: CustomRule | None = None

    @model_validator(mode="after")
    def _one(self) -> ScaleRule:
        if (self.http is None) == (self.custom is None):
            raise ValueError("a scale rule needs exactly one of `http` or `custom`")
        return self

    def trigger(self) -> dict[str, Any]:
        """This rule as a KEDA ScaledObject trigger."""
        out: dict[str, Any]
        if self.http is not None:
            out = {
                "type": "http",
                "metadata": {
                    "scalingMetric": "requestRate",
                    "targetValue": self.http.metadata.concurrentRequests,
                    "window": HTTP_WINDOW_S,
                    "granularity": 1.0,
                },
            }
        else:
            assert self.custom is not None
            out = {"type": self.custom.type, "metadata": dict(self.custom.metadata)}
        if self.name:
            out["name"] = self.name
        return out


class Scale(Strict):
    minReplicas: int = Field(MIN_REPLICAS, ge=0, le=REPLICA_LIMIT)
    maxReplicas: int = Field(MAX_REPLICAS, ge=1, le=REPLICA_LIMIT)
    pollingInterval: Duration = Field(POLLING_INTERVAL_S, gt=0)
    cooldownPeriod: Duration = Field(COOLDOWN_PERIOD_S, ge=0)
    rules: list[ScaleRule] = Field(default_factory=lambda: [ScaleRule(http=HttpRule())])


class WorkloadProfile(Strict):
    """A Dedicated workload profile's instance size (D4: 4 vCPU, 16 GiB; general purpose)."""

    name: str = "D4"
    vcpu: float = Field(4.0, gt=0)
    memory_gib: float = Field(16.0, gt=0)


class ContainerAppsSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["container_apps"]
    cpu: Cpu = Field(CPU, gt=0, description="vCPU per replica")
    memory: MemoryMB = Field(MEMORY_MB, gt=0, description="memory per replica (MiB)")
    concurrency: int = Field(CONCURRENCY, ge=1, description="requests a replica serves at once")
    scale: Scale = Field(default_factory=Scale)
    startup: Dist = Field(  # type: ignore[assignment]
        default_factory=lambda: dict(STARTUP), description="replica start (ASSUMPTION)"
    )
    request_timeout: Duration = Field(REQUEST_TIMEOUT_S, gt=0)
    ingress_latency: Dist = Field(default_factory=lambda: D.INGRESS_LATENCY_S)  # type: ignore[assignment]
    plan: ContainerAppsPlan = Field("consumption", description="consumption | dedicated")
    workload_profile: WorkloadProfile = Field(default_factory=WorkloadProfile)
    free_tier: bool = Field(False, description="the monthly free grant (per subscription)")
    ops: OpsCosts = Field(default_factory=dict, description="monthly USD per line")
    ops_profile: OpsProfile | None = None

    @model_validator(mode="after")
    def _check(self) -> ContainerAppsSpec:
        s = self.scale
        if s.minReplicas > s.maxReplicas:
            raise ValueError(
                f"scale.minReplicas ({s.minReplicas}) must not exceed scale.maxReplicas "
                f"({s.maxReplicas})"
            )
        if self.plan == "dedicated" and (
            self.cpu > self.workload_profile.vcpu
            or self.memory / 1024.0 > self.workload_profile.memory_gib
        ):
            raise ValueError(
                f"a replica ({self.cpu:g} vCPU, {self.memory:g} MiB) does not fit on a "
                f"{self.workload_profile.name} profile instance"
            )
        try:  # a rule KEDA rejects is reported at load time, at `scale`
            self.kubernetes_view()
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"]).replace("keda.triggers", "scale.rules")
            raise ValueError(f"{where}: {err['msg']}") from None
        return self

    def kubernetes_view(self) -> KubernetesSpec:
        """The app as the Kubernetes kernel runs it: KEDA with ACA's scale settings, replicas
        billed per second without nodes, requests spread round robin by the ingress (ASSUMPTION:
        Envoy's default policy) and held there while no replica is ready."""
        s = self.scale
        return KubernetesSpec.model_validate(
            {
                "name": self.name,
                "type": "kubernetes",
                "keda": {
                    "minReplicaCount": s.minReplicas,
                    "maxReplicaCount": s.maxReplicas,
                    "pollingInterval": s.pollingInterval,
                    "cooldownPeriod": s.cooldownPeriod,
                    "triggers": [r.trigger() for r in s.rules],
                },
                "pod": {
                    "concurrency": self.concurrency,
                    "cpu": self.cpu,
                    "memory": self.memory,
                    "startup": self.startup,
                },
                "routing": "round_robin",
                "interceptor": {"readiness_timeout": None},
                "request_timeout": self.request_timeout,
                "ingress_latency": self.ingress_latency,
                "cluster": {"mode": "autopilot", "control_plane": "gke"},
                "load_balancer": "none",
            }
        )
