"""Azure Container Apps bill: the Consumption plan (active / idle replica rates, requests, the
monthly free grant) or a Dedicated workload profile (instances per hour + plan management).

learn.microsoft.com/azure/container-apps/billing (read 2026-12-01): Consumption is "vCPU-seconds
and GiB-seconds" allocated to each running replica plus HTTP requests; "The first 180,000
vCPU-seconds, 360,000 GiB-seconds, 2 million HTTP requests" per subscription per month are free; a
replica is billed at the idle rate when the app is scaled to its minimum replica count and the
replica processes nothing (no HTTP request, < 0.01 vCPU, < 1000 bytes/s in; techcommunity blog
2025-05-30). Dedicated: "billed for instances allocated to each workload profile", plus a plan
management fee per environment.
- `free_tier` (off by default, as for every platform: the grant is per subscription): the grant.
  ASSUMPTION: it is taken off active usage first, then idle usage.
Rates and sources: prices.yaml `container_apps.*`. Not billed: networking, Log Analytics, a custom
VNet's resources, GPU profiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sim.errors import InputError
from sim.pricing.ops import add_operating
from sim.pricing.tables import SECONDS_PER_HOUR, Bill, BillBuilder, price

ContainerAppsPlan = Literal["consumption", "dedicated"]


@dataclass(kw_only=True)
class ContainerAppsUsage:
    window_s: float
    requests: int
    vcpu: float  # per replica
    memory_gib: float  # per replica
    active_replica_s: float = 0.0  # Consumption: running replica-seconds not idle
    idle_replica_s: float = 0.0  # Consumption: idle replica-seconds (at min replicas, no work)
    profile_instance_s: float = 0.0  # Dedicated: workload-profile instance-seconds
    profile_vcpu: float = 0.0  # Dedicated: vCPU per profile instance
    profile_memory_gib: float = 0.0  # Dedicated: GiB per profile instance


def container_apps_bill(
    usage: ContainerAppsUsage,
    plan: ContainerAppsPlan = "consumption",
    *,
    free_tier: bool = False,
    month_s: float | None = None,
    ops: Mapping[str, float] | None = None,
    ops_profile: str | None = None,
) -> Bill:
    """The Container Apps bill for `usage` (window and billing month), line by line."""
    b = BillBuilder(usage.window_s, month_s)
    if plan == "dedicated":
        hours = b.monthly(usage.profile_instance_s) / SECONDS_PER_HOUR
        cpu, mem = price("container_apps.dedicated.cpu"), price("container_apps.dedicated.memory")
        # The profile's instances are the nodes the replicas run on (one bill line, as nodes).
        instances = cpu.cost(hours * usage.profile_vcpu) + mem.cost(
            hours * usage.profile_memory_gib
        )
        b.line("nodes", instances, [cpu, mem])
        fee = price("container_apps.dedicated.management")
        b.line("control_plane", fee.cost(b.month_h), [fee])  # the environment's plan fee
        add_operating(b, ops, ops_profile)
        return b.build(usage.requests)
    if plan != "consumption":
        raise InputError(f"expected consumption or dedicated, got {plan!r}", key="plan")
    active_s, idle_s = b.monthly(usage.active_replica_s), b.monthly(usage.idle_replica_s)
    for what, per in (("cpu", usage.vcpu), ("memory", usage.memory_gib)):
        active, idle = active_s * per, idle_s * per
        free = price(f"container_apps.free.{what}")
        left = free.rate if free_tier else 0.0
        used = [free] if free_tier else []
        for state, qty in (("active", active), ("idle", idle)):
            take = min(left, qty)
            left -= take
            rate = price(f"container_apps.consumption.{state}_{what}")
            line = what if state == "active" else f"idle_{what}"  # as Cloud Run's lines
            b.line(line, rate.cost(qty - take), [rate, *used])
    req = price("container_apps.consumption.requests")
    free_req = price("container_apps.free.requests")
    n = b.monthly(usage.requests)
    billable = max(0.0, n - free_req.rate) if free_tier else n
    b.line("requests", req.cost(billable), [req, free_req] if free_tier else [req])
    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)
