"""`type: lambda` settings: the scenario keys of an AWS Lambda platform, validated (pydantic).

The model that simulates them is sim.platforms.lambda_; this module imports no kernel, so
`sim schema` and validation stay light.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim import defaults as D
from sim.config import Duration, MemoryMB, Rate, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.pricing.lambda_ import LambdaCostSettings
from sim.pricing.ops import OpsCosts, OpsProfile

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]

_DIST_ADAPTER: TypeAdapter[Any] = TypeAdapter(Dist)


def _time_of_day(value: object) -> object:
    """'08:00' or '8:30:15' -> seconds after midnight; durations pass through."""
    if isinstance(value, str) and ":" in value:
        parts = value.strip().split(":")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"expected a time of day such as '08:00', got {value!r}") from None
        if (
            len(nums) not in (2, 3)
            or not 0 <= nums[0] < 24
            or not all(0 <= x < 60 for x in nums[1:])
        ):
            raise ValueError(f"expected a time of day such as '08:00', got {value!r}")
        return nums[0] * 3600 + nums[1] * 60 + (nums[2] if len(nums) == 3 else 0)
    return value


TimeOfDay = Annotated[Duration, BeforeValidator(_time_of_day)]


class ScheduleEntry(Strict):
    """Provisioned concurrency `value` from time of day `at` (repeats daily)."""

    at: TimeOfDay = Field(ge=0, lt=86400)
    value: int = Field(ge=0)


class TargetTracking(Strict):
    """Application Auto Scaling target tracking on ProvisionedConcurrencyUtilization."""

    target: float = Field(D.LAMBDA_PC_TARGET, gt=0, le=1)
    min: int = Field(1, ge=0)
    max: int = Field(100, ge=1)
    initial: int | None = Field(None, ge=0, description="level at t=0 (default: min)")
    ready_delay: Dist = Field(default_factory=lambda: D.LAMBDA_PC_READY_DELAY)  # type: ignore[assignment]
    scale_out_periods: int = Field(D.LAMBDA_PC_SCALE_OUT_PERIODS, ge=1)
    scale_in_periods: int = Field(D.LAMBDA_PC_SCALE_IN_PERIODS, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> TargetTracking:
        if self.max < self.min:
            raise ValueError("target_tracking `max` must be at least `min`")
        return self


class ScalingRate(Strict):
    burst: int = Field(D.LAMBDA_SCALING_BURST, ge=1, description="token bucket size")
    refill: Rate = Field(D.LAMBDA_SCALING_REFILL_PER_S, gt=0, description="new environments/s")


class Backoff(Strict):
    base: Duration = Field(D.CLIENT_BACKOFF_BASE_S, gt=0)
    cap: Duration = Field(D.CLIENT_BACKOFF_CAP_S, gt=0)


class ClientSpec(Strict):
    retries: int = Field(0, ge=0, le=20, description="client retries after a 429")
    backoff: Backoff = Field(default_factory=Backoff)


class SamRef(Strict):
    file: str
    function: str | None = Field(None, description="logical id; optional if only one function")


class LambdaSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["lambda"]
    sam: SamRef | None = Field(None, description="take settings from a SAM/CloudFormation file")
    memory: MemoryMB = Field(D.LAMBDA_DEFAULT_MEMORY_MB, ge=128, le=10240)
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    runtime: str = D.LAMBDA_DEFAULT_RUNTIME
    init: Dist | None = Field(None, description="Init duration; default from runtime table")
    sandbox_overhead: Duration = Field(D.LAMBDA_SANDBOX_OVERHEAD_S, ge=0)
    snapstart: bool = False
    restore: Dist = Field(default_factory=lambda: D.LAMBDA_SNAPSTART_RESTORE)  # type: ignore[assignment]
    keep_alive: Dist = Field(default_factory=lambda: D.LAMBDA_KEEP_ALIVE_S)  # type: ignore[assignment]
    reuse: Literal["mru", "lru"] = "mru"
    provisioned_concurrency: int | list[ScheduleEntry] | TargetTracking = 0
    reserved_concurrency: int | None = Field(None, ge=0)
    account_concurrency: int = Field(D.LAMBDA_ACCOUNT_CONCURRENCY, ge=1)
    scaling_rate: ScalingRate = Field(default_factory=ScalingRate)
    timeout: Duration = Field(D.LAMBDA_TIMEOUT_S, gt=0, le=900)
    threads: int = Field(1, ge=1, le=6)
    api_gateway: Literal["http", "rest", "none"] = "none"
    gateway_latency: Dist | None = None
    client: ClientSpec = Field(default_factory=ClientSpec)
    free_tier: bool = False
    init_billing: bool = True
    cost: LambdaCostSettings = Field(default_factory=LambdaCostSettings)
    account: str | None = Field(
        None, description="platforms with the same account share duration tiers and free tier"
    )
    ops: OpsCosts = Field(default_factory=dict, description="operating cost: monthly USD per line")
    ops_profile: OpsProfile | None = Field(
        None, description="bundled operating-cost profile (kubernetes-team, serverless-team)"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_sam(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill keys from `sam: {file, function}`; keys in the scenario win."""
        if not isinstance(data, dict) or not isinstance(data.get("sam"), dict):
            return data
        from pathlib import Path

        from sim.platforms.sam import load_sam_function

        ref = data["sam"]
        if not isinstance(ref.get("file"), str):
            return data  # let field validation report it
        base = Path((info.context or {}).get("base_dir", "."))
        path = Path(ref["file"])
        from_sam = load_sam_function(
            path if path.is_absolute() else base / path, ref.get("function")
        )
        return {**from_sam, **data}

    @field_validator("provisioned_concurrency")
    @classmethod
    def _pc_nonneg(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 0:
            raise ValueError("provisioned_concurrency must be >= 0")
        if isinstance(v, list):
            if not v:
                raise ValueError("a provisioned_concurrency schedule needs at least one entry")
            return sorted(v, key=lambda e: e.at)
        return v

    @model_validator(mode="after")
    def _resolve(self) -> LambdaSpec:
        if self.init is None:
            if self.runtime not in D.LAMBDA_INIT_MS:
                known = ", ".join(sorted(D.LAMBDA_INIT_MS))
                raise ValueError(
                    f"runtime {self.runtime!r} has no measured init time; use one of {known} "
                    "or give `init:` as a distribution"
                )
            p50, _p90, p99 = D.LAMBDA_INIT_MS[self.runtime]
            self.init = coerce_distribution(
                {"dist": "lognormal", "median": p50 / 1e3, "p99": p99 / 1e3}
            )
            self.init = _DIST_ADAPTER.validate_python(self.init)
        if self.gateway_latency is None:
            self.gateway_latency = _DIST_ADAPTER.validate_python(
                D.LAMBDA_GATEWAY_LATENCY_S[self.api_gateway]
            )
        return self

    @model_validator(mode="after")
    def _commitment_applies(self) -> LambdaSpec:
        c = self.cost.commitment
        if c is not None and c.plan != "compute-savings-plan":
            raise ValueError(
                f"cost.commitment: Lambda is covered by a compute-savings-plan only, got {c.plan}"
            )
        return self

    @property
    def vcpu(self) -> float:
        return min(self.memory / D.LAMBDA_MB_PER_VCPU, D.LAMBDA_MAX_VCPU)

    @property
    def concurrency_limit(self) -> int:
        if self.reserved_concurrency is not None:
            return min(self.reserved_concurrency, self.account_concurrency)
        return self.account_concurrency
