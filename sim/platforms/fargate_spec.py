"""`type: fargate` in a scenario: an ECS service on AWS Fargate behind an ALB (issue 19 item 1).

Keys: `task` (size from the allowed CPU/memory combinations, architecture, start-up, concurrency),
either `tasks: N` (a fixed desired count) or `target_tracking:` / `step_scaling:` (Application
Auto Scaling, min/max tasks), `spot:` (FARGATE_SPOT with interruptions), the serving path
(routing, queue_limit, request_timeout, ingress_latency), `load_balancer` and `cost`.
The model is sim.platforms.fargate; the controller sim.platforms.autoscaling.target_tracking.
Defaults and their sources: docs/model.md "AWS Fargate (`type: fargate`)".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

import sim.platforms.autoscaling.target_tracking as T
from sim.config import Cpu, Duration, MemoryMB, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.platforms.kubernetes_spec import _routing
from sim.pricing.fargate import Architecture, FargateCostSettings, FargateLoadBalancerSettings
from sim.pricing.ops import OpsCosts, OpsProfile

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]

# Task sizes Fargate accepts (docs.aws.amazon.com/AmazonECS/latest/developerguide/
# task-cpu-memory-error.html and the ECS API's TaskDefinition `memory`, read 2026-12-01):
# vCPU -> (lowest MiB, highest MiB, step MiB); 8 and 16 vCPU need Linux platform 1.4.0.
TASK_SIZES: dict[float, tuple[int, int, int]] = {
    0.25: (512, 2048, 0),  # 512, 1024, 2048 only
    0.5: (1024, 4096, 1024),
    1.0: (2048, 8192, 1024),
    2.0: (4096, 16384, 1024),
    4.0: (8192, 30720, 1024),
    8.0: (16384, 61440, 4096),
    16.0: (32768, 122880, 8192),
}
_QUARTER_VCPU_MIB = (512, 1024, 2048)


def allowed_memory_mib(vcpu: float) -> list[int]:
    """The memory values (MiB) Fargate accepts with `vcpu`; [] for an unsupported vCPU."""
    if vcpu not in TASK_SIZES:
        return []
    lo, hi, step = TASK_SIZES[vcpu]
    return list(_QUARTER_VCPU_MIB) if step == 0 else list(range(lo, hi + 1, step))


# Defaults (sources in docs/model.md "AWS Fargate"):
# ASSUMPTION: 0.5 vCPU (the Kubernetes pod default's CPU, so the two compare like for like) with
# the least memory Fargate allows at that size, 1 GB.
TASK_CPU = 0.5
TASK_MEMORY_MB = 1024.0
# ASSUMPTION (no AWS-published distribution): "ECS on Fargate starts scaling after 30 seconds"
# from the scale-out request to the first running containers (Vlad Ionescu, "Scaling containers on
# AWS in 2022", vladionescu.me [S]); Fargate has no image cache, so every start pulls the image.
# Lognormal median 30 s, p99 90 s (ALB health checks and larger images make the tail).
TASK_STARTUP: dict[str, Any] = {"dist": "lognormal", "median": "30s", "p99": "90s"}
# ECS stopTimeout: "If you don't specify any value ... the default value of 30 seconds is used",
# at most 120 s (repost.aws/knowledge-center/fargate-spot-termination-notice).
STOP_TIMEOUT_S = 30.0
SPOT_MAX_STOP_TIMEOUT_S = 120.0
# ASSUMPTION: AWS publishes no Fargate Spot interruption rate. EC2 Spot Instance Advisor's lowest
# frequency band is "<5%" of instances interrupted per month: 0.05 / 730 per task-hour.
SPOT_INTERRUPTIONS_PER_TASK_HOUR = 0.05 / 730.0
# ASSUMPTION: as the Kubernetes model (1 ms for the ALB hop; `ingress_latency: 0s` turns it off).
INGRESS_LATENCY_S = 0.001
# The ALB's connection idle timeout, "60 seconds" by default (docs.aws.amazon.com/
# elasticloadbalancing/latest/application/application-load-balancers.html): a request that gets
# no byte back for 60 s is answered 504 by the ALB.
REQUEST_TIMEOUT_S = 60.0


Metric = Literal["alb_request_count_per_target", "cpu", "memory"]


class TaskSpec(Strict):
    cpu: Cpu = Field(TASK_CPU, gt=0, description="task vCPU: 0.25, 0.5, 1, 2, 4, 8 or 16")
    memory: MemoryMB = Field(TASK_MEMORY_MB, gt=0, description="task memory (MiB)")
    architecture: Architecture = Field("x86_64", description="x86_64 or arm64 (Graviton)")
    concurrency: int = Field(1, ge=1, description="requests one task serves at once")
    startup: Dist = Field(  # type: ignore[assignment]
        default_factory=lambda: dict(TASK_STARTUP),
        description="image pull + container start + ALB health check",
    )
    ephemeral_storage: float = Field(20.0, ge=20, le=200, description="GB per task (20 included)")
    # Memory in use, for `metric: memory` only. ASSUMPTION (nothing to source: it is your app's):
    # a quarter of the task's memory at rest, nothing per request.
    memory_base: MemoryMB | None = Field(
        None, ge=0, description="memory a running task uses at rest (default: a quarter)"
    )
    memory_per_request: MemoryMB = Field(
        0.0, ge=0, description="memory each request held by the task adds (MiB)"
    )

    @model_validator(mode="after")
    def _size(self) -> TaskSpec:
        allowed = allowed_memory_mib(float(self.cpu))
        if not allowed:
            sizes = ", ".join(f"{c:g}" for c in TASK_SIZES)
            raise ValueError(f"task.cpu {self.cpu:g} vCPU is not a Fargate size; use {sizes}")
        if not any(abs(self.memory - m) < 1e-6 for m in allowed):
            lo, hi, step = TASK_SIZES[float(self.cpu)]
            what = "512, 1024 or 2048" if step == 0 else f"{lo}-{hi} in steps of {step}"
            raise ValueError(
                f"task.memory {self.memory:g} MiB is not allowed with {self.cpu:g} vCPU on "
                f"Fargate; use {what} MiB"
            )
        if self.memory_base is None:
            self.memory_base = self.memory / 4.0
        return self


class TargetTrackingSpec(Strict):
    """Application Auto Scaling target tracking on the ECS service's desired count."""

    metric: Metric = Field(
        "alb_request_count_per_target",
        description="ALBRequestCountPerTarget (requests per task per minute), "
        "ECSServiceAverageCPUUtilization or ECSServiceAverageMemoryUtilization (percent)",
    )
    target: float = Field(gt=0, description="requests/target/minute, or CPU percent")
    min_tasks: int = Field(1, ge=1, description="MinCapacity (target tracking never reaches 0)")
    max_tasks: int = Field(10, ge=1, description="MaxCapacity")
    scale_out_cooldown: Duration = Field(T.SCALE_OUT_COOLDOWN_S, ge=0)
    scale_in_cooldown: Duration = Field(T.SCALE_IN_COOLDOWN_S, ge=0)
    disable_scale_in: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> TargetTrackingSpec:
        if self.min_tasks > self.max_tasks:
            raise ValueError(f"min_tasks ({self.min_tasks}) exceeds max_tasks ({self.max_tasks})")
        return self


class StepSpec(Strict):
    lower: float | None = Field(None, description="MetricIntervalLowerBound (None: -inf)")
    upper: float | None = Field(None, description="MetricIntervalUpperBound (None: +inf)")
    adjustment: float = Field(description="ScalingAdjustment")


class StepPolicySpec(Strict):
    threshold: float
    comparison: Literal["above", "below"] = "above"
    evaluation_periods: int = Field(1, ge=1)
    datapoints: int = Field(1, ge=1)
    adjustment_type: T.AdjustmentType = "ChangeInCapacity"
    steps: list[StepSpec] = Field(min_length=1)
    cooldown: Duration = Field(T.STEP_COOLDOWN_S, ge=0)

    @model_validator(mode="after")
    def _m_of_n(self) -> StepPolicySpec:
        if self.datapoints > self.evaluation_periods:
            raise ValueError("datapoints must not exceed evaluation_periods")
        return self


class StepScalingSpec(Strict):
    """Step scaling policies on one metric (their alarms are yours to define)."""

    metric: Metric = "cpu"
    min_tasks: int = Field(1, ge=0)
    max_tasks: int = Field(10, ge=1)
    scale_out: StepPolicySpec | None = None
    scale_in: StepPolicySpec | None = None

    @model_validator(mode="after")
    def _bounds(self) -> StepScalingSpec:
        if self.min_tasks > self.max_tasks:
            raise ValueError(f"min_tasks ({self.min_tasks}) exceeds max_tasks ({self.max_tasks})")
        if self.scale_out is None and self.scale_in is None:
            raise ValueError("give scale_out and/or scale_in")
        return self


class SpotSpec(Strict):
    """FARGATE_SPOT: interruptions with a two-minute warning (SIGTERM), replaced by ECS."""

    interruptions_per_task_hour: float = Field(SPOT_INTERRUPTIONS_PER_TASK_HOUR, ge=0)
    stop_timeout: Duration = Field(STOP_TIMEOUT_S, ge=0, le=SPOT_MAX_STOP_TIMEOUT_S)
    queued: Literal["retry", "fail"] = Field(
        "fail",
        description="requests still queued at the task when it is killed: 502, or retried "
        "once by the client on another task",
    )
    discount: float | None = Field(None, ge=0, lt=1, description="None: the price table's")


Routing = Literal["random", "round_robin", "least_outstanding", "ideal_fifo"]


class FargateSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["fargate"]
    task: TaskSpec = Field(default_factory=TaskSpec)
    tasks: int | None = Field(None, ge=0, description="a fixed desired count")
    target_tracking: TargetTrackingSpec | None = None
    step_scaling: StepScalingSpec | None = None
    spot: SpotSpec | None = Field(None, description="FARGATE_SPOT capacity provider")
    routing: Annotated[Routing, BeforeValidator(_routing)] = Field(
        "round_robin", description="ALB: round_robin (default) or least_outstanding"
    )
    queue_limit: int | None = Field(None, ge=0, description="None: unbounded")
    request_timeout: Duration | None = Field(REQUEST_TIMEOUT_S, gt=0)
    ingress_latency: Dist = Field(default_factory=lambda: INGRESS_LATENCY_S)  # type: ignore[assignment]
    load_balancer: FargateLoadBalancerSettings = Field(default_factory=FargateLoadBalancerSettings)
    cost: FargateCostSettings = Field(default_factory=FargateCostSettings)
    ops: OpsCosts = Field(default_factory=dict, description="monthly USD per line")
    ops_profile: OpsProfile | None = None

    @model_validator(mode="after")
    def _one_scaler(self) -> FargateSpec:
        given = [
            k for k in ("tasks", "target_tracking", "step_scaling") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(
                f"give exactly one of `tasks`, `target_tracking` or `step_scaling` (got {what})"
            )
        if self.spot is not None and self.task.architecture != "x86_64":
            raise ValueError("Fargate Spot runs Linux x86_64 tasks only (no arm64)")
        return self

    @property
    def bounds(self) -> tuple[int, int]:
        """(min, max) desired count: the scalable target's, or the fixed count."""
        s = self.target_tracking or self.step_scaling
        if s is None:
            assert self.tasks is not None
            return self.tasks, self.tasks
        return s.min_tasks, s.max_tasks
