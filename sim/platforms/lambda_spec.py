"""`type: lambda` settings: the scenario keys of an AWS Lambda platform, validated (pydantic).

The model that simulates them is sim.platforms.lambda_; this module imports no kernel, so
`sim schema` and validation stay light.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sim import defaults as D
from sim.config import Duration, MemoryMB, Rate, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.pricing.lambda_ import LambdaCostSettings
from sim.pricing.ops import OpsCosts, OpsProfile

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]

# "Lambda ... reserves 100 units of concurrency for functions that don't explicitly reserve
# concurrency" (configuration-concurrency.md: reserved concurrency up to the pool "minus 100").
UNRESERVED_MIN = 100

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


def snapstart_family(runtime: str) -> str | None:
    """'java' | 'python' | 'dotnet' if SnapStart supports this runtime identifier, else None."""
    m = re.fullmatch(r"(java|python|dotnet)(\d+(?:\.\d+)*)(?:\.\w+)?", runtime)
    if not m:
        return None
    version = tuple(int(x) for x in m.group(2).split("."))
    return m.group(1) if version >= D.LAMBDA_SNAPSTART_RUNTIMES[m.group(1)] else None


def _refuse(key: str, value: Any, message: str) -> None:
    """A validation error at `key` (dotted, inside this platform) from a rule across keys."""
    raise ValidationError.from_exception_data(
        "LambdaSpec",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", message),
                loc=tuple(key.split(".")),
                input=value,
            )
        ],
    )


class ScheduleEntry(Strict):
    """Provisioned concurrency `value` from time of day `at` (repeats daily): an Application Auto
    Scaling scheduled action. Billed from `at`; added environments are ready `ready_delay` later."""

    at: TimeOfDay = Field(ge=0, lt=86400)
    value: int = Field(ge=0)
    ready_delay: Dist = Field(default_factory=lambda: D.LAMBDA_PC_READY_DELAY)  # type: ignore[assignment]


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
    max_environment_lifetime: Dist | None = Field(  # type: ignore[assignment]
        default_factory=lambda: D.LAMBDA_MAX_ENVIRONMENT_LIFETIME_S,
        description="an on-demand environment is recycled this long after it started, even when "
        "busy (a request in flight finishes first); null: never",
    )
    invocations_per_concurrency: float | None = Field(
        D.LAMBDA_INVOCATIONS_PER_CONCURRENCY,
        gt=0,
        description="synchronous invocations per second per unit of the concurrency limit "
        "(AWS: 10); beyond it: throttled; null: no rate limit",
    )
    efs: bool = Field(False, description="the function mounts an Amazon EFS file system")
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
        merged = {**from_sam, **data}
        if isinstance(data.get("cost"), dict) and "cost" in from_sam:
            merged["cost"] = {**from_sam["cost"], **data["cost"]}  # scenario cost keys win
        return merged

    @field_validator("provisioned_concurrency")
    @classmethod
    def _pc_nonneg(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 0:
            raise ValueError("provisioned_concurrency must be >= 0")
        if isinstance(v, list):
            if not v:
                raise ValueError("a provisioned_concurrency schedule needs at least one entry")
            ats = [e.at for e in v]
            dup = sorted({a for a in ats if ats.count(a) > 1})
            if dup:
                when = ", ".join(f"{int(a // 3600):02d}:{int(a % 3600 // 60):02d}" for a in dup)
                raise ValueError(
                    f"the provisioned_concurrency schedule has two entries at {when}; "
                    "each time of day may appear once"
                )
            return sorted(v, key=lambda e: e.at)
        return v

    @model_validator(mode="after")
    def _limits(self) -> LambdaSpec:
        """AWS's concurrency rules (docs.aws.amazon.com/lambda/latest/dg/
        configuration-concurrency.html): reserved concurrency may take the account's pool
        "minus 100" (100 always stay unreserved), and provisioned concurrency cannot exceed the
        reserved concurrency (or the account's unreserved pool)."""
        acct, reserved = self.account_concurrency, self.reserved_concurrency
        if reserved is not None and reserved > acct - UNRESERVED_MIN:
            raise ValueError(
                f"reserved_concurrency {reserved} leaves {acct - reserved} of account_concurrency "
                f"{acct} unreserved; AWS keeps at least {UNRESERVED_MIN} unreserved (at most "
                f"{max(acct - UNRESERVED_MIN, 0)})"
            )
        pc = self.provisioned_concurrency
        levels = (
            [pc]
            if isinstance(pc, int)
            else [e.value for e in pc]
            if isinstance(pc, list)
            else [pc.min, pc.initial or 0]
        )
        cap, what = (
            (reserved, f"reserved_concurrency ({reserved})")
            if reserved is not None
            else (
                acct - UNRESERVED_MIN,
                f"account_concurrency {acct} minus the {UNRESERVED_MIN} AWS keeps unreserved",
            )
        )
        if max(levels) > max(cap, 0):
            raise ValueError(
                f"provisioned_concurrency {max(levels)} exceeds {what}; AWS refuses provisioned "
                "concurrency above it"
            )
        return self

    @model_validator(mode="after")
    def _resolve(self) -> LambdaSpec:
        if self.snapstart:
            self._snapstart_rules()
        if self.init is None and not self.snapstart:  # SnapStart restores instead of Init
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

    def _snapstart_rules(self) -> None:
        """AWS's SnapStart restrictions (docs.aws.amazon.com/lambda/latest/dg/snapstart.html)."""
        if snapstart_family(self.runtime) is None:
            _refuse(
                "runtime",
                self.runtime,
                f"SnapStart supports only Java 11+, Python 3.12+ and .NET 8+ managed runtimes, "
                f"not {self.runtime!r}; use such a runtime or snapstart: false",
            )
        if self.provisioned_concurrency not in (0, None):
            _refuse(
                "provisioned_concurrency",
                self.provisioned_concurrency,
                "SnapStart does not support provisioned concurrency; set "
                "provisioned_concurrency: 0 or snapstart: false",
            )
        if self.efs:
            _refuse(
                "efs",
                True,
                "SnapStart does not support Amazon EFS; set efs: false or snapstart: false",
            )
        storage = self.cost.ephemeral_storage
        if storage > D.LAMBDA_SNAPSTART_MAX_EPHEMERAL_MB:
            _refuse(
                "cost.ephemeral_storage",
                storage,
                f"SnapStart does not support ephemeral storage above "
                f"{D.LAMBDA_SNAPSTART_MAX_EPHEMERAL_MB:.0f} MB (got {storage:g} MB)",
            )

    @property
    def snapstart_charged(self) -> bool:
        """SnapStart cache and restore are billed for Python and .NET, not Java (AWS pricing)."""
        return self.snapstart and snapstart_family(self.runtime) in ("python", "dotnet")

    @property
    def rate_limit(self) -> float | None:
        """Synchronous invocations per second the function accepts (None: unlimited)."""
        if self.invocations_per_concurrency is None:
            return None
        return self.invocations_per_concurrency * self.concurrency_limit

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
