"""Google Cloud Run (services) bill, Tier 1 regions: request-based or instance-based billing.

cloud.google.com/run/docs/configuring/billing-settings (read 2026-12-01): "Request-based billing
(default): Cloud Run instances are only charged when they process requests, when they start, and
when they shut down"; "Instance-based billing: ... charged for the entire lifecycle of instances".
- Request-based: vCPU-s and GiB-s of active instance time (at least one request in service, plus
  each instance's startup; the kernel rounds every active period up to 100 ms), a per-request fee,
  and minimum instances kept idle at the lower idle rate (cloud.google.com/run/pricing).
- Instance-based: vCPU-s and GiB-s of every instance's whole life, no per-request fee.
- `free_tier` (off by default, as for every platform: it is per billing account, not per
  service): the mode's monthly free vCPU-s, GiB-s and requests. ASSUMPTION: the request-based free
  vCPU-s and GiB-s are taken off active time only (the idle rows are priced apart).
Rates, allowances and their sources: prices.yaml `cloud_run.*`. Not billed: networking (egress),
startup CPU boost's extra CPU during startup, committed use discounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sim.errors import InputError
from sim.pricing.ops import add_operating
from sim.pricing.tables import Bill, BillBuilder, Rate, price

CloudRunBilling = Literal["request", "instance"]


@dataclass(kw_only=True)
class CloudRunUsage:
    window_s: float
    requests: int
    vcpu: float  # per instance
    memory_gib: float  # per instance
    active_instance_s: float = 0.0  # request-based: instance-seconds with >= 1 request, + startups
    idle_min_instance_s: float = 0.0  # request-based: idle seconds of the minimum instances
    instance_s: float = 0.0  # instance-based: whole instance lifetimes in the window


def allowance_line(
    b: BillBuilder, name: str, quantity: float, rate: Rate, free: Rate | None
) -> float:
    """A metered line: monthly `quantity` at `rate`, less a monthly free allowance if given."""
    billable = quantity if free is None else max(0.0, quantity - free.rate)
    cost = rate.cost(billable)
    b.line(name, cost, [rate] if free is None else [rate, free])
    return cost


def cloud_run_bill(
    usage: CloudRunUsage,
    billing: CloudRunBilling = "request",
    *,
    free_tier: bool = False,
    month_s: float | None = None,
    ops: Mapping[str, float] | None = None,
    ops_profile: str | None = None,
) -> Bill:
    """The Cloud Run bill for `usage` (window and billing month), line by line with sources."""
    if billing not in ("request", "instance"):
        raise InputError(f"expected request or instance, got {billing!r}", key="billing")
    b = BillBuilder(usage.window_s, month_s)
    mode = "request_based" if billing == "request" else "instance_based"

    def free(what: str) -> Rate | None:
        return price(f"cloud_run.{mode}.free_{what}") if free_tier else None

    seconds = usage.active_instance_s if billing == "request" else usage.instance_s
    instance_s = b.monthly(seconds)
    allowance_line(b, "cpu", instance_s * usage.vcpu, price(f"cloud_run.{mode}.cpu"), free("cpu"))
    allowance_line(
        b,
        "memory",
        instance_s * usage.memory_gib,
        price(f"cloud_run.{mode}.memory"),
        free("memory"),
    )
    if billing == "request":
        idle_s = b.monthly(usage.idle_min_instance_s)
        allowance_line(
            b, "idle_cpu", idle_s * usage.vcpu, price("cloud_run.request_based.idle_cpu"), None
        )
        allowance_line(
            b,
            "idle_memory",
            idle_s * usage.memory_gib,
            price("cloud_run.request_based.idle_memory"),
            None,
        )
        allowance_line(
            b,
            "requests",
            b.monthly(usage.requests),
            price("cloud_run.request_based.requests"),
            free("requests"),
        )
    b.note(f"Cloud Run {billing}-based billing, Tier 1 prices")
    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)
