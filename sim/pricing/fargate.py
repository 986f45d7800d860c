"""AWS Fargate (ECS) bill: task vCPU and memory per second, ephemeral storage, Spot, the ALB.

- Tasks: each task's requested vCPU and memory (GB = 1024 MiB, as task definitions count it),
  from the start of its image pull until it stops, per second rounded up, with a 1-minute
  minimum for a task that stopped inside the window (one still running at the window's end is
  billed for its time in the window: its minimum is met later). x86_64 or arm64 (Graviton) rates.
- Ephemeral storage: configured GB beyond the 20 GB included per task, per GB-hour of task life.
- Fargate Spot: the on-demand rates less `spot_discount` (AWS: "up to a 70% discount"; Spot runs
  Linux x86_64 only).
- ECS has no charge of its own for orchestration (aws.amazon.com/ecs/pricing/).
- The Application Load Balancer, public IPv4, NAT, cross-AZ and egress lines are the ones the
  Kubernetes bill uses (sim.pricing.kubernetes.load_balancer_lines, sim.pricing.network).
  `load_balancer.shared` (a system's services on one Fargate platform behind one ALB):
  `shared_alb_bill` prices that ALB once, on their combined requests. The NAT Gateway's hours
  (and IPv4) are the VPC's: a system bills them once per platform (`nat_gateway_hours`), with or
  without a shared ALB; each service's NAT data is its own.
- `ops` / `ops_profile`: operating cost, apart from the cloud bill.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from sim.config import Fraction, Strict
from sim.pricing.kubernetes import KubernetesUsage, LoadBalancerSettings, load_balancer_lines
from sim.pricing.network import (
    GbConvention,
    NatSettings,
    cross_az_line,
    egress_line,
    ipv4_line,
    nat_line,
)
from sim.pricing.ops import add_operating
from sim.pricing.tables import SECONDS_PER_HOUR, Bill, BillBuilder, Rate, price

Architecture = Literal["x86_64", "arm64"]
_EPS_S = 1e-9


class FargateCostSettings(Strict):
    """Cost-only settings of a Fargate service (keys under `cost:`)."""

    # An internet-facing ALB holds a public address in each of its (at least two) AZs.
    load_balancer_ipv4: int = Field(2, ge=0, description="public IPv4 addresses of the ALB")
    # ASSUMPTION: tasks in private subnets (assignPublicIp DISABLED, the ECS API default).
    public_ip_per_task: bool = Field(
        False, description="assignPublicIp ENABLED: one public IPv4 per task ($0.005/h)"
    )
    nat: NatSettings = Field(default_factory=NatSettings)
    cross_az: Fraction = Field(0.0, ge=0, le=1, description="share of requests crossing AZs")
    gb: GbConvention = Field("binary", description="bytes per GB on data lines (2^30 or 10^9)")


class FargateLoadBalancerSettings(LoadBalancerSettings):
    """The service's ALB (`load_balancer:`), and whether a system's services share it."""

    # AWS ECS Developer Guide, service-load-balancing.html: ALBs "support path-based routing
    # and priority rules (so that multiple services can use the same listener port on a single
    # Application Load Balancer)"; ELB pricing bills each ALB's hours and LCUs.
    shared: bool = Field(
        False,
        description="a system's services on this platform share one ALB (a target group each): "
        "one hourly charge and its IPv4, LCUs on their combined traffic; false: one ALB each",
    )


@dataclass(frozen=True)
class TaskLife:
    """One task: billed from start_s (image pull begins) to end_s; `stopped` inside the window."""

    start_s: float
    end_s: float
    stopped: bool = True

    def billed_seconds(self) -> float:
        s = max(self.end_s - self.start_s, 0.0)
        if not self.stopped:
            return s
        return max(math.ceil(s - _EPS_S), price("fargate.minimum_billed_seconds").rate)


@dataclass(kw_only=True)
class FargateUsage:
    window_s: float
    requests: int
    vcpu: float  # per task
    memory_gb: float  # per task (MiB / 1024)
    tasks: Sequence[TaskLife] = ()
    ephemeral_gb: float = 20.0  # configured per task
    architecture: Architecture = "x86_64"
    spot: bool = False
    spot_discount: float | None = None  # None: the table's
    response_bytes: float = 0.0
    # False: another service of the platform (its VPC) pays the NAT Gateway's hours and IPv4
    nat_gateway_hours: bool = True

    @property
    def task_seconds(self) -> float:
        return sum(t.billed_seconds() for t in self.tasks)


def fargate_bill(
    usage: FargateUsage,
    *,
    load_balancer: LoadBalancerSettings | Literal["alb", "none"] | None = None,
    settings: FargateCostSettings | None = None,
    ops: Mapping[str, float] | None = None,
    ops_profile: str | None = None,
    month_s: float | None = None,
) -> Bill:
    """The Fargate service's bill for `usage`, line by line with sources."""
    lb = LoadBalancerSettings.model_validate(load_balancer or "alb")
    settings = settings or FargateCostSettings()
    b = BillBuilder(usage.window_s, month_s)
    window_h = usage.window_s / SECONDS_PER_HOUR
    task_h = usage.task_seconds / SECONDS_PER_HOUR
    arch = usage.architecture
    cpu, mem = price(f"fargate.vcpu.{arch}"), price(f"fargate.memory.{arch}")
    minimum = price("fargate.minimum_billed_seconds")
    factor = 1.0
    used: list[Rate | str] = [minimum]
    if usage.spot:
        rate = price("fargate.spot.discount")
        factor = 1.0 - (rate.rate if usage.spot_discount is None else usage.spot_discount)
        used.append(rate if usage.spot_discount is None else "scenario `spot.discount`")
    prefix = "fargate_spot" if usage.spot else "fargate"
    b.line(f"{prefix}_vcpu", factor * cpu.cost(b.monthly(task_h * usage.vcpu)), [cpu, *used])
    b.line(f"{prefix}_memory", factor * mem.cost(b.monthly(task_h * usage.memory_gb)), [mem, *used])
    extra_gb = usage.ephemeral_gb - price("fargate.ephemeral_storage.free_gb").rate
    if extra_gb > 0:
        eph = price("fargate.ephemeral_storage")
        b.line(
            "ephemeral_storage",
            eph.cost(b.monthly(task_h * extra_gb)),
            [eph, price("fargate.ephemeral_storage.free_gb")],
        )
    addresses_h = task_h if settings.public_ip_per_task else 0.0
    if lb.type == "alb":
        addresses_h += _alb_lines(b, usage.requests, lb, settings)
    ipv4_line(b, addresses_h)
    nat_bytes = usage.requests * settings.nat.bytes_per_request
    gateway_h = window_h if usage.nat_gateway_hours else 0.0
    nat_line(b, settings.nat, gateway_h, nat_bytes, settings.gb)
    cross_az_line(b, usage.requests * lb.bytes_per_request, settings.cross_az, settings.gb)
    egress_line(b, usage.response_bytes, settings.gb)
    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)


def _alb_lines(
    b: BillBuilder, requests: int, lb: LoadBalancerSettings, settings: FargateCostSettings
) -> float:
    """The ALB's hours and LCUs on `requests`; returns its public IPv4 address-hours."""
    load_balancer_lines(b, KubernetesUsage(window_s=b.window_s, requests=requests), lb)
    return settings.load_balancer_ipv4 * b.window_s / SECONDS_PER_HOUR


def shared_alb_bill(
    requests: int,
    lb: LoadBalancerSettings,
    settings: FargateCostSettings,
    window_s: float,
    month_s: float | None = None,
) -> Bill:
    """One ALB in front of several ECS services (listener rules to a target group each): its
    hourly charge and IPv4 once, LCUs on the services' combined requests (the largest
    dimension of the combined traffic, as the ALB meters it)."""
    b = BillBuilder(window_s, month_s)
    ipv4_line(b, _alb_lines(b, requests, lb, settings))
    return b.build(requests)
