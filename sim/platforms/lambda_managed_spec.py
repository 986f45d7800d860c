"""`type: lambda_managed` settings: AWS Lambda Managed Instances, a function on a capacity provider.

Its own type rather than `type: lambda` + `capacity_provider:`: the execution model is a different
one (multi-concurrent environments on EC2 instances, asynchronous scaling, throttles instead of
cold starts), so it reuses the Kubernetes kernel (environments = pods, EC2 instances = nodes) and
leaves the Lambda kernel's hot loop untouched. The model is sim.platforms.lambda_managed; this
module imports no kernel. Sources read 2026-12-01 (docs/model.md "Lambda Managed Instances");
ASSUMPTION marks what AWS does not publish.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, field_validator, model_validator

import sim.defaults as defaults
import sim.platforms.autoscaling as D
from sim.config import Duration, Fraction, MemoryMB, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.errors import InputError
from sim.pricing.commitments import Commitment, discount_rate
from sim.pricing.ops import OpsCosts, OpsProfile
from sim.pricing.tables import instance_type, known_instance_types

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]
_DIST: TypeAdapter[Any] = TypeAdapter(Dist)

# PerExecutionEnvironmentMaxConcurrency defaults per vCPU of the environment (docs.aws.amazon.com/
# lambda/latest/dg/lambda-managed-instances-{nodejs,python,dotnet}-runtime.html): Node.js 64,
# Python 16, .NET 32. ASSUMPTION: Java 32 (its runtime page was not among the pages read; .NET's
# figure, also a threaded runtime). Range 1 to 1600
# (API_LambdaManagedInstancesCapacityProviderConfig).
MI_CONCURRENCY_PER_VCPU = {"nodejs": 64, "python": 16, "dotnet": 32, "java": 32}
MI_CONCURRENCY_MAX = 1600
# "The minimum supported function size is 2GB and 1 vCPU" (lambda-managed-instances-best-
# practices.html); ExecutionEnvironmentMemoryGiBPerVCpu 2.0 to 8.0 (API reference).
# ASSUMPTION: 2 GiB per vCPU by default (the smallest ratio; AWS's default is not in the pages
# read).
MI_MEMORY_MB = 2048.0
MI_MEMORY_PER_VCPU_GIB = 2.0
# "It launches three [instances] by default for AZ resiliency and starts three execution
# environments before marking your function version ACTIVE" (lambda-managed-instances-scaling).
MI_MIN_INSTANCES = 3
MI_MIN_ENVIRONMENTS = 3
# ASSUMPTION: m7g.large (Graviton3, 2 vCPU, 8 GiB) when no type is given; by default Lambda
# chooses the types ("Let Lambda choose instance types", best practices).
MI_INSTANCE_TYPE = "m7g.large"
# Scaling "asynchronously based on CPU resource utilization and multi-concurrency saturation"; "If
# your traffic more than doubles within 5 minutes, you may see throttles" (scaling page).
# ASSUMPTIONS (AWS publishes no numbers for Auto mode): target utilisation 50% (the headroom that
# absorbs a doubling), a decision every 60 s on the last 60 s, capacity at most doubled per 5
# minutes (+100% per 300 s, as an HPA scaleUp policy), scale-in after 5 minutes of lower need.
MI_TARGET_UTILIZATION = 0.5
MI_SCALE_PERIOD_S = 60.0
MI_SCALE_UP_WINDOW_S = 300.0
MI_SCALE_UP_FACTOR = 2.0
MI_SCALE_DOWN_WINDOW_S = 300.0
# ASSUMPTION: an execution environment's Init (extensions, runtime workers, function init) is
# lognormal, median 1 s, p99 5 s ("initialization can take up to 15 minutes":
# lambda-managed-instances-execution-environment). A new instance launches as a Karpenter node does
# (sim.platforms.autoscaling NODE_PROVISIONING_PRESETS karpenter: EC2 launch + boot).
MI_ENV_INIT: dict[str, Any] = {"dist": "lognormal", "median": "1s", "p99": "5s"}
# ASSUMPTION: an instance with no environment for 5 minutes is terminated ("scale down gradually").
MI_INSTANCE_IDLE_S = 300.0

Runtime = Literal["nodejs", "python", "java", "dotnet"]


class LambdaManagedSpec(Strict):
    """`type: lambda_managed`: one function version on a Managed Instances capacity provider."""

    name: str = Field(min_length=1)
    type: Literal["lambda_managed"]
    runtime: Runtime = Field("nodejs", description="nodejs | python | java | dotnet")
    memory: MemoryMB = Field(
        MI_MEMORY_MB, ge=2048, le=32768, description="execution environment memory (MB)"
    )
    memory_per_vcpu: float = Field(
        MI_MEMORY_PER_VCPU_GIB, ge=2, le=8, description="ExecutionEnvironmentMemoryGiBPerVCpu"
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        le=MI_CONCURRENCY_MAX,
        description="PerExecutionEnvironmentMaxConcurrency (default: per-runtime x vCPU)",
    )
    instance_type: str = Field(MI_INSTANCE_TYPE, description="EC2 instance type (price table)")
    min_instances: int = Field(MI_MIN_INSTANCES, ge=1, description="instances kept (3: AZs)")
    min_environments: int = Field(MI_MIN_ENVIRONMENTS, ge=1, description="environments kept")
    max_vcpu: int | None = Field(
        None, ge=2, le=15000, description="MaxVCpuCount over all instances (None: no cap)"
    )
    target_utilization: Fraction = Field(
        MI_TARGET_UTILIZATION, gt=0, le=1, description="target CPU / concurrency utilisation"
    )
    scale_period: Duration = Field(MI_SCALE_PERIOD_S, gt=0, description="scaler decision period")
    scale_up_window: Duration = Field(
        MI_SCALE_UP_WINDOW_S, gt=0, description="capacity grows at most scale_up_factor per this"
    )
    scale_up_factor: float = Field(MI_SCALE_UP_FACTOR, gt=1, description="growth per window")
    scale_down_window: Duration = Field(
        MI_SCALE_DOWN_WINDOW_S, ge=0, description="need must stay lower this long to scale in"
    )
    environment_init: Dist = Field(
        default_factory=lambda: _DIST.validate_python(MI_ENV_INIT),
        description="a new execution environment's Init",
    )
    instance_launch: Dist = Field(
        default_factory=lambda: _DIST.validate_python(D.NODE_PROVISIONING_PRESETS["karpenter"]),
        description="a new EC2 instance's launch until it hosts environments",
    )
    instance_idle: Duration = Field(
        MI_INSTANCE_IDLE_S, ge=0, description="an instance with no environment this long goes"
    )
    timeout: Duration = Field(
        defaults.LAMBDA_TIMEOUT_S, gt=0, le=900, description="function timeout"
    )
    commitment: Commitment | None = Field(None, description="Savings Plan / RI on the instances")
    ops: OpsCosts = Field(default_factory=dict, description="operating cost: monthly USD per line")
    ops_profile: OpsProfile | None = Field(
        None, description="bundled operating-cost profile (kubernetes-team, serverless-team)"
    )

    @field_validator("instance_type")
    @classmethod
    def _known(cls, value: str) -> str:
        known = known_instance_types()
        if value not in known:
            raise ValueError(f"unknown instance type {value!r}; known: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> LambdaManagedSpec:
        # A commitment needs a rate for the instance type: said at load time, not after a run.
        if self.commitment is not None:
            try:
                discount_rate(self.commitment, "ec2", instance_type(self.instance_type))
            except InputError as exc:
                raise ValueError(f"commitment: {exc.detail}") from None
        return self

    @property
    def vcpu(self) -> float:
        """vCPUs of one execution environment: memory / memory_per_vcpu."""
        return self.memory / 1024.0 / self.memory_per_vcpu

    @property
    def env_concurrency(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return max(1, round(MI_CONCURRENCY_PER_VCPU[self.runtime] * self.vcpu))
