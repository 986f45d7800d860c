"""AWS Lambda bill: duration, requests, INIT, provisioned concurrency, API Gateway, logs, NAT.

Rules (prices and sources in prices.yaml; the window -> month rule in tables.py):
- On-demand duration GB-s = billed ms / 1000 * memory_mb / 1024, priced by the architecture's
  monthly tiers. INIT (when `init_billing`) is on-demand duration too: it shares the tiers and the
  free allowance; its share of the tiered cost is reported as the "init" line.
- Provisioned concurrency (PC): configured GB-s at the PC rate, plus duration served on PC at the
  PC duration rate (untiered). AWS: PC time is counted "from the time you enable it on your
  function until it is disabled, rounded up to the nearest five minutes". We therefore round per
  *enablement period* - a maximal run of back-to-back segments with at least one configured
  environment - not per segment (autoscaling changes the level every minute; rounding each change
  would bill up to 5x). The time added by rounding is billed at the level of the period's last
  segment (the level being disabled). A period still enabled at the window's end is not rounded:
  it continues past the window.
- Free tier (off by default; it is per account): 1M requests and 400,000 GB-s per month, covering
  the first GB-s of the month (tier 1). AWS: it does not apply to functions with PC enabled, so
  any configured PC in the window switches it off (the bill says so in `notes`).
- API Gateway: HTTP API metered in 512 KB units per request; REST API by request, tiered.
- SnapStart (Python and .NET; "SnapStart pricing does not apply to supported Java managed
  runtimes"): cache = memory GB x seconds each function's published version is active (the whole
  window, each version at least 3 hours) at the cache rate; restore = memory GB x restores at the
  restore rate (a restore is each new environment resumed from the snapshot).
- CloudWatch Logs: Lambda logs are vended logs, ingestion tiered per month ($0.50/GB first 10 TB,
  then $0.25, $0.10, $0.05, since 2025-05-01); storage ($0.03/GB-month) billed at steady state
  for the `logs.retention` set (none: "never expire", storage grows and is not billed; a note
  says so). NAT Gateway (hours for the whole window + GB processed + its public IPv4) optional.
- Data transfer out (responses to the internet, `workload.service.response_size`), tiered, first
  100 GB free; response streaming (`cost.response_streaming`) bills the bytes of each response
  beyond 6 MB. `cost.gb` says whether data lines use 2^30 (default) or 10^9 bytes per GB.
- Commitments (`cost.commitment`): a Compute Savings Plan discounts duration, INIT and PC
  (sim.pricing.commitments). Operating cost (`ops`, `ops_profile`) is reported apart.
- Not billed: API Gateway free tier and caching, CloudWatch Logs Insights queries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from sim.config import Count, Duration, MemoryMB, Strict
from sim.errors import InputError
from sim.pricing.commitments import Commitment, apply_commitment, discount_rate
from sim.pricing.network import (
    GbConvention,
    NatSettings,
    egress_line,
    gb_divisor,
    nat_line,
    to_gb,
)
from sim.pricing.ops import OpsCosts, add_operating
from sim.pricing.tables import (
    SECONDS_PER_HOUR,
    Bill,
    BillBuilder,
    Bytes,
    price,
    tiered_cost,
    tiers,
)

Architecture = Literal["x86_64", "arm64"]
ApiGateway = Literal["http", "rest", "none"]

_EPS_S = 1e-9  # segment ends closer than this (float noise) are back to back


# --- user-facing settings (for the lead to embed in the Lambda platform spec) -------------------


class LogsSettings(Strict):
    """CloudWatch Logs ingestion and storage. 0 bytes per request (default) bills nothing."""

    bytes_per_request: Bytes = Field(
        0.0, ge=0, description="log bytes ingested per billed invocation, e.g. '1KB'"
    )
    retention: Duration | None = Field(
        None, gt=0, description="log group retention, e.g. 30d; none: never expire (not billed)"
    )


class AccountUsage(Strict):
    """Other Lambda usage in the same account, region and architecture, per month (not simulated).

    AWS: duration tiers "are applied to the aggregated monthly duration of your functions running
    on the same architecture, in the same region, within the account" (and across an
    Organization's accounts with consolidated billing); the free tier is per account.
    """

    gb_seconds: Count = Field(0.0, ge=0, description="on-demand GB-s a month of other functions")
    requests: Count = Field(0.0, ge=0, description="requests a month of other functions")


@dataclass(frozen=True)
class AccountTotals:
    """Monthly on-demand GB-s (duration + INIT) and requests of all simulated functions of one
    account and architecture, this one included (sim.simulate sums the platforms that share an
    `account`)."""

    gb_seconds: float
    requests: float


class LambdaCostSettings(Strict):
    """Cost-only settings of a Lambda platform (keys under `cost:`)."""

    logs: LogsSettings = LogsSettings()
    nat: NatSettings = NatSettings()
    request_size: Bytes = Field(
        1024.0,
        ge=0,
        description="request size for HTTP API metering (512 KB units); default 1 KB = 1 unit",
    )
    ephemeral_storage: MemoryMB = Field(
        512.0, description="/tmp size in MB; above 512 MB it is billed per GB-s of duration"
    )
    response_streaming: bool = Field(
        False, description="responses are streamed: bytes beyond 6 MB each are billed per GB"
    )
    gb: GbConvention = Field(
        "binary", description="bytes per GB on data lines: binary (2^30) or decimal (10^9)"
    )
    commitment: Commitment | None = Field(None, description="a Compute Savings Plan")
    account_usage: AccountUsage = Field(default_factory=lambda: AccountUsage())

    @field_validator("ephemeral_storage")
    @classmethod
    def _storage_range(cls, value: float) -> float:
        if not 512 <= value <= 10240:
            raise ValueError(f"expected ephemeral storage from 512 to 10240 MB, got {value:g}")
        return value


# --- usage --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class LambdaUsage:
    """What a Lambda run consumed in its window (durations already rounded per invocation)."""

    requests: int  # billed invocations (ok + timed_out; throttled are not billed)
    on_demand_billed_ms: float  # sum of per-invocation durations, each rounded UP to 1 ms
    window_s: float
    pc_billed_ms: float = 0.0  # same, for invocations served by provisioned-concurrency envs
    init_billed_ms: float = 0.0  # on-demand cold-start INIT durations, each rounded up to 1 ms
    # (start_s, end_s, configured environments); PC levels over the window
    pc_segments: Sequence[tuple[float, float, int]] = field(default_factory=tuple)
    # requests reaching API Gateway (incl. throttled); None = same as requests
    gateway_requests: int | None = None
    log_bytes: float | None = None  # None: requests * settings.logs.bytes_per_request
    nat_bytes: float | None = None  # None: requests * settings.nat.bytes_per_request
    # False: another function of the same VPC pays the NAT Gateway's hours (a system's services)
    nat_gateway_hours: bool = True
    snapstart_restores: int = 0  # billed SnapStart restores (Python/.NET; 0 for Java)
    snapstart_cached_s: float = 0.0  # version-seconds cached in the window (sum over versions)
    snapstart_versions: int = 1  # published versions cached (one per function)
    response_bytes: float = 0.0  # bytes returned to clients (internet egress)
    streamed_excess_bytes: float = 0.0  # bytes beyond the first 6 MB of each response

    def __post_init__(self) -> None:
        for name in (
            "requests",
            "on_demand_billed_ms",
            "pc_billed_ms",
            "init_billed_ms",
            "snapstart_restores",
            "snapstart_cached_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"LambdaUsage.{name} must be >= 0, got {getattr(self, name)!r}")
        for start, end, envs in self.pc_segments:
            if end < start or envs < 0:
                raise ValueError(f"bad provisioned-concurrency segment {(start, end, envs)!r}")


def pc_environment_seconds(segments: Sequence[tuple[float, float, int]], window_s: float) -> float:
    """Billed environment-seconds of configured PC, each enablement period rounded up."""
    step = price("lambda.provisioned_concurrency.rounding").rate
    total = 0.0
    period_start: float | None = None
    prev_end, last_level = 0.0, 0

    def close() -> float:
        assert period_start is not None  # only called while a period is open
        length = prev_end - period_start
        if prev_end >= window_s - _EPS_S:
            return 0.0  # still enabled when the window ends: no disable, no rounding yet
        # tolerance: a period of exactly 3600.0000001 s is 12 steps, not 13
        billed = math.ceil(length / step - 1e-9) * step
        return max(billed - length, 0.0) * last_level

    for start, end, level in sorted(s for s in segments if s[1] > s[0]):
        if period_start is not None and (level <= 0 or start > prev_end + _EPS_S):
            total += close()
            period_start = None
        if level <= 0:
            continue
        if period_start is None:
            period_start = start
        total += level * (end - start)
        prev_end, last_level = end, level
    if period_start is not None:
        total += close()
    return total


def _gateway_units(requests: float, api_gateway: ApiGateway, request_size: float) -> float:
    if api_gateway != "http":
        return requests
    unit = price("api_gateway.http.metering_bytes").rate
    return requests * max(1, math.ceil(request_size / unit))


def account_quantities(
    usage: LambdaUsage, memory_mb: float, init_billing: bool, month_s: float | None
) -> tuple[float, float]:
    """(on-demand GB-s incl. INIT, requests) of `usage` per billing month: what an account sums."""
    b = BillBuilder(usage.window_s, month_s)
    ms = usage.on_demand_billed_ms + (usage.init_billed_ms if init_billing else 0.0)
    return b.monthly(ms / 1000.0 * memory_mb / 1024.0), b.monthly(usage.requests)


def lambda_bill(
    usage: LambdaUsage,
    *,
    memory_mb: float,
    architecture: Architecture = "x86_64",
    api_gateway: ApiGateway = "none",
    init_billing: bool = True,
    free_tier: bool = False,
    settings: LambdaCostSettings | None = None,
    month_s: float | None = None,
    ops: OpsCosts | None = None,
    ops_profile: str | None = None,
    account: AccountTotals | None = None,
) -> Bill:
    """The Lambda bill for `usage` (window and billing month), line by line with sources.

    Tiers and free allowances apply to the account: this function's usage plus the other
    simulated functions of its account (`account`) plus `settings.account_usage`; the function
    pays its pro-rata share (its GB-s / the account's) of the account's tiered cost.
    """
    if architecture not in ("x86_64", "arm64"):
        raise InputError(f"expected x86_64 or arm64, got {architecture!r}", key="architecture")
    if api_gateway not in ("http", "rest", "none"):
        raise InputError(f"expected http, rest or none, got {api_gateway!r}", key="api_gateway")
    if not memory_mb > 0:
        raise InputError(f"expected a positive memory size in MB, got {memory_mb!r}", key="memory")
    settings = settings or LambdaCostSettings()
    b = BillBuilder(usage.window_s, month_s)
    gbc = settings.gb
    gb = memory_mb / 1024.0

    pc_env_s = pc_environment_seconds(usage.pc_segments, usage.window_s)
    use_free = free_tier and pc_env_s == 0
    if free_tier and not use_free:
        b.note("free tier not applied: it does not cover functions with provisioned concurrency")

    # On-demand duration and INIT share the tiers and the free GB-s.
    duration_key = f"lambda.duration.{architecture}"
    init_gbs = b.monthly(usage.init_billed_ms / 1000.0 * gb) if init_billing else 0.0
    all_gbs, monthly_requests = account_quantities(usage, memory_mb, init_billing, month_s)
    others = settings.account_usage
    other_gbs = others.gb_seconds + (account.gb_seconds - all_gbs if account else 0.0)
    other_req = others.requests + (account.requests - monthly_requests if account else 0.0)
    acct_gbs = all_gbs + max(other_gbs, 0.0)
    acct_req = monthly_requests + max(other_req, 0.0)
    free_gbs = price("lambda.free_tier.gb_seconds") if use_free else None
    acct_cost = tiered_cost(acct_gbs, duration_key)
    if free_gbs is not None:
        acct_cost -= tiered_cost(min(acct_gbs, free_gbs.rate), duration_key)
    od_cost = acct_cost * (all_gbs / acct_gbs) if acct_gbs > 0 else 0.0
    duration_rates = [*tiers(duration_key), *([free_gbs] if free_gbs else [])]
    if acct_gbs > all_gbs or acct_req > monthly_requests:
        b.note(
            f"duration tiers and free allowances applied to the account's {acct_gbs:,.0f} GB-s"
            f" and {acct_req:,.0f} requests a month; this function pays its pro-rata share"
        )
    init_share = init_gbs / all_gbs if all_gbs > 0 else 0.0
    b.line("duration", od_cost * (1.0 - init_share), duration_rates)
    if init_billing:
        b.line("init", od_cost * init_share, [*duration_rates, price("lambda.init_billing")])

    # Requests (PC-served invocations are requests too).
    req_rate = price("lambda.requests")
    free_req = price("lambda.free_tier.requests") if use_free else None
    billable = max(0.0, acct_req - (free_req.rate if free_req else 0.0))
    share = monthly_requests / acct_req if acct_req > 0 else 0.0
    b.line(
        "requests", req_rate.cost(billable) * share, [req_rate, *([free_req] if free_req else [])]
    )

    if pc_env_s > 0 or usage.pc_billed_ms > 0:
        pc_rate = price(f"lambda.provisioned_concurrency.{architecture}")
        rounding = price("lambda.provisioned_concurrency.rounding")
        pc_cost = pc_rate.cost(b.monthly(pc_env_s * gb))
        b.line("provisioned_concurrency", pc_cost, [pc_rate, rounding])
        pcd_rate = price(f"lambda.provisioned_duration.{architecture}")
        pc_gbs = b.monthly(usage.pc_billed_ms / 1000.0 * gb)
        b.line("provisioned_duration", pcd_rate.cost(pc_gbs), [pcd_rate])

    free_mb = price("lambda.ephemeral_storage.free_mb")
    if settings.ephemeral_storage > free_mb.rate:
        storage_rate = price("lambda.ephemeral_storage")
        billed_ms = usage.on_demand_billed_ms + usage.pc_billed_ms
        billed_ms += usage.init_billed_ms if init_billing else 0.0
        extra_gb = (settings.ephemeral_storage - free_mb.rate) / 1024.0
        storage_gbs = b.monthly(billed_ms / 1000.0 * extra_gb)
        b.line("ephemeral_storage", storage_rate.cost(storage_gbs), [storage_rate, free_mb])

    if usage.snapstart_cached_s > 0 or usage.snapstart_restores > 0:
        cache, minimum = price("lambda.snapstart.cache"), price("lambda.snapstart.cache_minimum")
        cached_s = max(b.monthly(usage.snapstart_cached_s), minimum.rate * usage.snapstart_versions)
        b.line("snapstart_cache", cache.cost(cached_s * gb), [cache, minimum])
        restore = price("lambda.snapstart.restore")
        b.line(
            "snapstart_restore", restore.cost(b.monthly(usage.snapstart_restores) * gb), [restore]
        )

    if api_gateway != "none":
        gw_key = f"api_gateway.{api_gateway}"
        gw_requests = usage.requests if usage.gateway_requests is None else usage.gateway_requests
        units = b.monthly(_gateway_units(gw_requests, api_gateway, settings.request_size))
        used = [*tiers(gw_key)]
        if api_gateway == "http":
            used.append(price("api_gateway.http.metering_bytes"))
        b.line("api_gateway", tiered_cost(units, gw_key), used)

    log_bytes = usage.log_bytes
    if log_bytes is None:
        log_bytes = usage.requests * settings.logs.bytes_per_request
    if log_bytes > 0:
        gb_logs = b.monthly(to_gb(log_bytes, gbc))
        key = "cloudwatch_logs.vended"
        b.line("logs", tiered_cost(gb_logs, key), [*tiers(key), gb_divisor(gbc)])
        retention = settings.logs.retention
        if retention is None:
            b.note(
                f"log storage not billed: retention 'never expire' keeps {gb_logs:,.1f} GB more"
                " every month; set cost.logs.retention"
            )
        else:
            # Steady state: the logs of the last `retention` seconds are stored at any time.
            store = price("cloudwatch_logs.storage")
            stored_gb = gb_logs * retention / b.month_s
            b.line("log_storage", store.cost(stored_gb), [store, gb_divisor(gbc)])

    nat_bytes = usage.nat_bytes
    if nat_bytes is None:
        nat_bytes = usage.requests * settings.nat.bytes_per_request
    gateway_h = usage.window_s / SECONDS_PER_HOUR if usage.nat_gateway_hours else 0.0
    nat_line(b, settings.nat, gateway_h, nat_bytes, gbc)

    egress_line(b, usage.response_bytes, gbc)
    if settings.response_streaming and usage.streamed_excess_bytes > 0:
        rate = price("lambda.response_streaming")
        gb_streamed = b.monthly(to_gb(usage.streamed_excess_bytes, gbc))
        b.line(
            "response_streaming",
            rate.cost(gb_streamed),
            [rate, price("lambda.response_streaming.free_bytes"), gb_divisor(gbc)],
        )

    if settings.commitment is not None:
        share, rates = discount_rate(settings.commitment, "lambda")
        lines = b.lines()
        covered = ("duration", "init", "provisioned_concurrency", "provisioned_duration")
        cost = sum(lines.get(k, 0.0) for k in covered)
        apply_commitment(b, settings.commitment, [(cost, share, rates)])

    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)
