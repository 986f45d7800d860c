"""Wasm serverless bill: Cloudflare Workers Standard, Fastly Compute, or custom rates.

Workers Standard: a $5 monthly minimum that includes 10M requests and 30M CPU-ms, then $0.30 per
extra million requests and $0.02 per extra million CPU-ms; "No charge or limit for duration", so
only CPU time is billed (the platform passes the CPU share of service time, never I/O wait).
Fastly Compute (secondary source, ranges): the top of each documented range, after a free allowance
of 10M requests and 100M vCPU-ms; the bill is at least Fastly's $50 monthly minimum ("We bill a
minimum of $50 per month", docs.fastly.com; the shortfall is its own line). Custom: the user's own
rates.
All allowances and minimums apply per billing month (window -> month rule in tables.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from sim.config import Count, Strict
from sim.errors import InputError
from sim.pricing.ops import add_operating
from sim.pricing.tables import Bill, BillBuilder, Rate, price

WasmPricing = Literal["cloudflare-workers", "fastly-compute", "custom"]


class CustomWasmPricing(Strict):
    """Your own Wasm platform rates: a monthly base that includes some usage, then per million."""

    monthly_base: float = Field(0.0, ge=0, description="USD per month, charged whatever the usage")
    per_million_requests: float = Field(0.0, ge=0, description="USD per extra 1M requests")
    per_million_cpu_ms: float = Field(0.0, ge=0, description="USD per extra 1M CPU milliseconds")
    included_requests: Count = Field(0.0, ge=0, description="requests per month in the base")
    included_cpu_ms: Count = Field(0.0, ge=0, description="CPU milliseconds per month in the base")
    source: str = Field("custom pricing from the scenario", description="where the rates come from")


@dataclass(kw_only=True)
class WasmUsage:
    requests: int  # requests that ran (billed)
    cpu_ms_total: float  # CPU milliseconds consumed (not wall time)
    window_s: float

    def __post_init__(self) -> None:
        if self.requests < 0 or self.cpu_ms_total < 0:
            raise ValueError(f"WasmUsage needs non-negative requests and CPU time, got {self!r}")


def _overage(b: BillBuilder, line: str, used: float, included: Rate, rate: Rate) -> float:
    cost = rate.cost(max(0.0, used - included.rate))
    b.line(line, cost, [rate, included])
    return cost


def wasm_bill(
    usage: WasmUsage,
    pricing: WasmPricing = "cloudflare-workers",
    custom: CustomWasmPricing | None = None,
    *,
    month_s: float | None = None,
    ops: Mapping[str, float] | None = None,
    ops_profile: str | None = None,
) -> Bill:
    """The Wasm platform bill for `usage` (window and billing month), line by line with sources."""
    b = BillBuilder(usage.window_s, month_s)
    requests = b.monthly(usage.requests)
    cpu_ms = b.monthly(usage.cpu_ms_total)
    if pricing == "cloudflare-workers":
        base = price("workers.standard.base")
        b.line("workers_base", base.rate, [base])
        _overage(
            b,
            "workers_requests",
            requests,
            price("workers.standard.included_requests"),
            price("workers.standard.requests"),
        )
        _overage(
            b,
            "workers_cpu",
            cpu_ms,
            price("workers.standard.included_cpu_ms"),
            price("workers.standard.cpu"),
        )
    elif pricing == "fastly-compute":
        b.note("Fastly Compute prices are from a secondary source, top of the documented ranges")
        usage_usd = _overage(
            b,
            "fastly_requests",
            requests,
            price("fastly.compute.included_requests"),
            price("fastly.compute.requests"),
        )
        usage_usd += _overage(
            b,
            "fastly_cpu",
            cpu_ms,
            price("fastly.compute.included_cpu_ms"),
            price("fastly.compute.cpu"),
        )
        minimum = price("fastly.monthly_minimum")
        shortfall = max(0.0, minimum.rate - usage_usd)
        b.line("fastly_minimum_shortfall", shortfall, [minimum])
    elif pricing == "custom":
        if custom is None:
            raise InputError(
                "pricing custom needs a `custom:` section with the rates", key="custom"
            )
        src = custom.source
        b.line("base", custom.monthly_base, [src])
        extra_requests = max(0.0, requests - custom.included_requests)
        b.line("requests", extra_requests / 1e6 * custom.per_million_requests, [src])
        extra_cpu = max(0.0, cpu_ms - custom.included_cpu_ms)
        b.line("cpu", extra_cpu / 1e6 * custom.per_million_cpu_ms, [src])
    else:
        raise InputError(
            f"expected cloudflare-workers, fastly-compute or custom, got {pricing!r}", key="pricing"
        )
    add_operating(b, ops, ops_profile)  # issue 16: operating cost, apart from the cloud bill
    return b.build(usage.requests)
