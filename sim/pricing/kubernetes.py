"""Kubernetes bill: nodes (or GKE Autopilot pod requests), control plane, load balancer; ops apart.

- Nodes: each node's life in the window billed per second at its type's hourly price, with a 60 s
  minimum per node that was removed inside the window. A node still running when the window ends
  is billed for its time in the window only (it goes on; its minimum is met later).
- Autopilot (`mode: autopilot`, GKE only): Pod CPU and memory *requests* x time, per vCPU-h and
  GiB-h; nodes are not billed. The cluster fee still applies. The requests billed are those
  Autopilot adjusted (`autopilot_requests`: minimums, memory:CPU ratio, 0.25 vCPU steps).
- Control plane: EKS $0.10/h (extended support $0.60/h in total), GKE $0.10/h, for the whole window.
  The GKE free-tier credit ($74.40/month, per billing account) applies only with `free_tier`.
- Application Load Balancer: hourly charge + LCU-hours, LCU = the largest of its four dimensions,
  derived from the request rate averaged over the window (AWS measures hourly; a run with sharp
  peaks is billed a little low). Traffic assumptions are settings (LoadBalancerSettings).
- EKS (and self-managed on EC2, control_plane none), `cost:` settings: a gp3 root volume per node
  (`root_volume`, 20 GiB default, GB-month prorated per second of node life), public IPv4
  addresses ($0.005/h: the ALB's, one per node in public subnets, each NAT Gateway's), a NAT
  Gateway for the nodes, cross-AZ traffic (`cross_az` share of requests), internet egress (the
  responses, tiered, first 100 GB free), the EKS Auto Mode fee (`auto_mode`, ~12% of each node's
  on-demand price). These AWS lines are not applied to a GKE cluster (GCP rates are not in the
  table; the bill notes it).
- Commitments (`cost.commitment`): Savings Plans / Reserved Instances on EKS node-hours (EC2
  rates per instance type), a GKE flexible CUD on nodes or Autopilot requests.
- Spot nodes (`cluster.spot`): their node-seconds (same per-second rule) at the spot price, a ratio
  to on-demand (`spot.aws.price_ratio` / `spot.gcp.price_ratio`, or `cluster.spot.price`), line
  `spot_nodes`; no commitment applies to them. Autopilot Spot Pods (`cluster.spot` in mode
  autopilot): their requests x time at the Autopilot rates x `gke.autopilot.spot.price_ratio`
  (or `cluster.spot.price`), line `spot_pods`, no CUD.
- `ops` / `ops_profile`: monthly amounts (engineer time, monitoring, ...) reported as operating
  cost, never added to the cloud bill.
- Not billed: EBS IOPS/throughput above the gp3 baseline, snapshots, persistent volumes, GCP disks
  and network, spot price moves within a run (see docs/model.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from sim.config import Duration, Fraction, Strict
from sim.errors import InputError
from sim.pricing.commitments import Commitment, Service, apply_commitment, discount_rate
from sim.pricing.network import (
    GbConvention,
    NatSettings,
    cross_az_line,
    egress_line,
    ipv4_line,
    nat_line,
)
from sim.pricing.ops import add_operating
from sim.pricing.tables import (
    SECONDS_PER_HOUR,
    Bill,
    BillBuilder,
    Bytes,
    InstanceType,
    bytes_to_gb,
    instance_type,
    parse_bytes,
    price,
)

ControlPlane = Literal["eks", "eks-extended", "gke", "none"]
ClusterMode = Literal["nodes", "autopilot"]

_CONTROL_PLANE_KEY = {
    "eks": "eks.control_plane",
    "eks-extended": "eks.control_plane.extended",
    "gke": "gke.cluster_fee",
}
_EPS_S = 1e-9


# --- user-facing settings (for the lead to embed in the Kubernetes platform spec) ---------------


class LoadBalancerSettings(Strict):
    """`load_balancer:` - `alb` (default) or `none`, or a mapping with the traffic assumptions."""

    type: Literal["alb", "none"] = "alb"
    # ASSUMPTION: every request opens a new connection (no keep-alive reuse) - the costly end.
    requests_per_connection: float = Field(
        1.0, gt=0, description="requests carried per client connection (keep-alive reuse)"
    )
    # ASSUMPTION: a connection stays open 1 s (active connections = new/s x duration, Little's law).
    connection_duration: Duration = Field(1.0, ge=0, description="how long a connection stays open")
    # ASSUMPTION: 10 kB request + response (a small JSON API call with headers).
    bytes_per_request: Bytes = Field(10_000.0, ge=0, description="bytes processed per request")
    rules_per_request: int = Field(1, ge=0, description="listener rules evaluated per request")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"type": value} if isinstance(value, str) else value


class PublicIpv4Settings(Strict):
    """Public IPv4 addresses billed at $0.005/h (NAT Gateways' are counted under `nat`)."""

    # An internet-facing ALB needs subnets in at least two AZs and holds a public address in each.
    load_balancer: int = Field(2, ge=0, description="addresses of the load balancer")
    per_node: int = Field(0, ge=0, description="addresses per node (1 in public subnets)")


class KubernetesCostSettings(Strict):
    """Cost-only settings of a Kubernetes platform (keys under `cost:`)."""

    # ASSUMPTION from upstream defaults: EKS managed node groups' diskSize and Karpenter's
    # EC2NodeClass root volume both default to 20 GiB; gp3 is the EKS/Karpenter default type.
    root_volume: Bytes = Field(
        parse_bytes("20GiB"), ge=0, description="gp3 root volume per node (GiB), 0: none"
    )
    public_ipv4: PublicIpv4Settings = Field(default_factory=PublicIpv4Settings)
    nat: NatSettings = Field(default_factory=NatSettings)
    cross_az: Fraction = Field(
        0.0, ge=0, le=1, description="share of requests whose in-cluster hop crosses AZs"
    )
    auto_mode: bool = Field(False, description="EKS Auto Mode: a management fee per node")
    gb: GbConvention = Field("binary", description="bytes per GB on data lines (2^30 or 10^9)")
    commitment: Commitment | None = Field(None, description="Savings Plan, RI or GKE CUD")


# --- usage --------------------------------------------------------------------------------------


@dataclass
class NodeUsage:
    """One node's life: billed from start_s to end_s (end_s >= window end: still running)."""

    instance_type: str | InstanceType
    start_s: float
    end_s: float
    spot: bool = False  # billed at the spot price (a ratio to on-demand)

    def __post_init__(self) -> None:
        if self.end_s < self.start_s:
            raise ValueError(f"node ends before it starts: {self!r}")


@dataclass(kw_only=True)
class KubernetesUsage:
    window_s: float
    requests: int  # requests that reached the cluster
    nodes: Sequence[NodeUsage] = field(default_factory=tuple)
    pod_cpu_seconds: float = 0.0  # Autopilot: sum over pods of CPU request (vCPU) x seconds
    pod_memory_gib_seconds: float = 0.0  # Autopilot: sum of memory request (GiB) x seconds
    spot_pod_cpu_seconds: float = 0.0  # Autopilot Spot Pods: the same, billed at the spot price
    spot_pod_memory_gib_seconds: float = 0.0
    autopilot_adjusted: bool = False  # the requests are Autopilot's adjusted ones (sources)
    new_connections: float | None = None  # None: requests / requests_per_connection
    bytes: float | None = None  # through the load balancer; None: requests x bytes_per_request
    response_bytes: float = 0.0  # returned to clients on the internet (egress)


def _resolve(it: str | InstanceType) -> InstanceType:
    return it if isinstance(it, InstanceType) else instance_type(it)


AUTOPILOT_RULES = (
    "gke.autopilot.min_cpu",
    "gke.autopilot.min_memory_gib",
    "gke.autopilot.cpu_step",
    "gke.autopilot.memory_per_cpu_min",
    "gke.autopilot.memory_per_cpu_max",
)


def autopilot_requests(cpu: float, memory_gib: float) -> tuple[float, float]:
    """The (vCPU, GiB) requests GKE Autopilot bills for a general-purpose Pod that asks for
    `cpu` and `memory_gib`: raised to the minimums; memory raised to 1 GiB per vCPU, or CPU to
    memory / 6.5; CPU rounded up to the 0.25 vCPU step (then memory again to 1 GiB per vCPU)."""
    lo_cpu, lo_mem, step, r_min, r_max = (price(k).rate for k in AUTOPILOT_RULES)
    cpu, mem = max(cpu, lo_cpu), max(memory_gib, lo_mem)
    cpu = max(cpu, mem / r_max)
    cpu = math.ceil(cpu / step - 1e-9) * step
    mem = max(mem, cpu * r_min)
    return cpu, mem


def node_billed_seconds(node: NodeUsage, window_s: float) -> float:
    """Seconds billed for one node in the window (per second, 60 s minimum if it ended inside)."""
    start = max(node.start_s, 0.0)
    end = min(node.end_s, window_s)
    seconds = max(end - start, 0.0)
    if node.end_s < window_s - _EPS_S:
        seconds = max(seconds, price("nodes.minimum_billed_seconds").rate)
    return seconds


def alb_lcus(usage: KubernetesUsage, lb: LoadBalancerSettings) -> dict[str, float]:
    """LCUs per dimension at the window's average traffic; the bill uses the largest."""
    rate = usage.requests / usage.window_s
    new_conns = usage.new_connections
    new_per_s = (
        rate / lb.requests_per_connection if new_conns is None else new_conns / usage.window_s
    )
    processed = usage.requests * lb.bytes_per_request if usage.bytes is None else usage.bytes
    gb_per_h = bytes_to_gb(processed) / (usage.window_s / SECONDS_PER_HOUR)
    free_rules = price("alb.lcu.free_rules").rate
    evals_per_s = rate * max(0.0, lb.rules_per_request - free_rules)
    return {
        "new_connections": new_per_s / price("alb.lcu.new_connections_per_s").rate,
        "active_connections": new_per_s
        * lb.connection_duration
        / price("alb.lcu.active_connections").rate,
        "processed_bytes": gb_per_h / price("alb.lcu.processed_gb_per_h").rate,
        "rule_evaluations": evals_per_s / price("alb.lcu.rule_evaluations_per_s").rate,
    }


def load_balancer_lines(b: BillBuilder, usage: KubernetesUsage, lb: LoadBalancerSettings) -> None:
    """The ALB's hourly charge and LCU-hours (the largest dimension) for the window."""
    window_h = usage.window_s / SECONDS_PER_HOUR
    hourly, lcu_rate = price("alb.hours"), price("alb.lcu")
    b.line("load_balancer", hourly.cost(b.monthly(window_h)), [hourly])
    lcu = max(alb_lcus(usage, lb).values())
    dimension_keys = (
        "alb.lcu.new_connections_per_s",
        "alb.lcu.active_connections",
        "alb.lcu.processed_gb_per_h",
        "alb.lcu.rule_evaluations_per_s",
        "alb.lcu.free_rules",
        "aws.bytes_per_gb",
    )
    b.line(
        "load_balancer_lcu",
        lcu_rate.cost(b.monthly(lcu * window_h)),
        [lcu_rate, *(price(k) for k in dimension_keys)],
    )


def kubernetes_bill(
    usage: KubernetesUsage,
    *,
    control_plane: ControlPlane = "eks",
    mode: ClusterMode = "nodes",
    load_balancer: LoadBalancerSettings | Literal["alb", "none"] | None = None,
    ops: Mapping[str, float] | None = None,
    free_tier: bool = False,
    settings: KubernetesCostSettings | None = None,
    month_s: float | None = None,
    ops_profile: str | None = None,
    spot_price: float | None = None,
) -> Bill:
    """The Kubernetes bill for `usage` (window and billing month), line by line with sources."""
    if control_plane not in ("eks", "eks-extended", "gke", "none"):
        raise InputError(
            f"expected eks, eks-extended, gke or none, got {control_plane!r}",
            key="cluster.control_plane",
        )
    if mode == "autopilot" and control_plane != "gke":
        raise InputError(
            f"mode autopilot is GKE Autopilot; set control_plane: gke (got {control_plane!r})",
            key="cluster.mode",
        )
    if mode not in ("nodes", "autopilot"):
        raise InputError(f"expected nodes or autopilot, got {mode!r}", key="cluster.mode")
    lb = LoadBalancerSettings.model_validate(load_balancer or "alb")
    settings = settings or KubernetesCostSettings()
    b = BillBuilder(usage.window_s, month_s)
    window_h = usage.window_s / SECONDS_PER_HOUR
    aws = control_plane != "gke"
    commitment = settings.commitment
    eligible: list[tuple[float, float, list]] = []  # (monthly on-demand USD, discount, rates)

    node_s = 0.0  # billed node-seconds in the window, all types
    if mode == "nodes":
        # On-demand USD per type and capacity; spot node-hours at `spot_price` x on-demand (the
        # provider's dated ratio by default). Commitments never cover spot (Savings Plans and RIs
        # apply to on-demand usage only); the Auto Mode fee is on every node's on-demand price.
        by_type: dict[tuple[str, bool], tuple[InstanceType, float]] = {}
        for node in usage.nodes:
            it = _resolve(node.instance_type)
            seconds = node_billed_seconds(node, usage.window_s)
            node_s += seconds
            key = (it.name, node.spot)
            prev = by_type.get(key, (it, 0.0))[1]
            by_type[key] = (it, prev + seconds / SECONDS_PER_HOUR * it.hourly_usd)
        od = {k: v for k, v in by_type.items() if not k[1]}
        used: list = list({it.name: it for it, _ in od.values()}.values())
        cost = sum(c for _, c in od.values())
        b.line("nodes", b.monthly(cost), [*used, price("nodes.minimum_billed_seconds")])
        spot = {k: v for k, v in by_type.items() if k[1]}
        spot_od = sum(c for _, c in spot.values())
        if spot:
            ratio = price("spot.gcp.price_ratio" if not aws else "spot.aws.price_ratio")
            share = ratio.rate if spot_price is None else spot_price
            spot_types = list({it.name: it for it, _ in spot.values()}.values())
            b.line(
                "spot_nodes",
                b.monthly(spot_od) * share,
                [*spot_types, ratio, price("nodes.minimum_billed_seconds")],
            )
            if spot_price is not None:
                b.note(f"spot nodes at {spot_price:g} x on-demand (cluster.spot.price)")
        if commitment is not None:
            for it, c in od.values():
                service: Service = "gke" if not aws else "ec2"
                share_c, rates = discount_rate(commitment, service, it)
                eligible.append((b.monthly(c), share_c, rates))
        if settings.auto_mode:
            if not aws:
                raise InputError("auto_mode is EKS Auto Mode; not for GKE", key="cost.auto_mode")
            fee = price("eks.auto_mode.fee_share")
            all_types = list({it.name: it for it, _ in by_type.values()}.values())
            b.line("auto_mode_fee", b.monthly(cost + spot_od) * fee.rate, [fee, *all_types])
    else:
        cpu, mem = price("gke.autopilot.cpu"), price("gke.autopilot.memory")
        cpu_h = b.monthly(usage.pod_cpu_seconds / SECONDS_PER_HOUR)
        mem_h = b.monthly(usage.pod_memory_gib_seconds / SECONDS_PER_HOUR)
        rules = [price(k) for k in AUTOPILOT_RULES] if usage.autopilot_adjusted else []
        b.line("autopilot_cpu", cpu.cost(cpu_h), [cpu, *rules])
        b.line("autopilot_memory", mem.cost(mem_h), [mem, *rules])
        if commitment is not None:
            share, rates = discount_rate(commitment, "gke")
            eligible.append((cpu.cost(cpu_h) + mem.cost(mem_h), share, rates))
        spot_cpu_h = b.monthly(usage.spot_pod_cpu_seconds / SECONDS_PER_HOUR)
        spot_mem_h = b.monthly(usage.spot_pod_memory_gib_seconds / SECONDS_PER_HOUR)
        if spot_cpu_h > 0 or spot_mem_h > 0:
            # Spot Pods: the on-demand requests rates x the dated Spot ratio (or yours); "CUDs do
            # not apply to Spot Pods" (Google's announcement), so never `eligible`.
            ratio = price("gke.autopilot.spot.price_ratio")
            share = ratio.rate if spot_price is None else spot_price
            b.line(
                "spot_pods",
                (cpu.cost(spot_cpu_h) + mem.cost(spot_mem_h)) * share,
                [cpu, mem, ratio, *rules],
            )
            if spot_price is not None:
                b.note(f"Spot Pods at {spot_price:g} x the Autopilot price (cluster.spot.price)")

    if control_plane != "none":
        cp = price(_CONTROL_PLANE_KEY[control_plane])
        monthly_cp = cp.cost(b.monthly(window_h))
        used_cp = [cp]
        if free_tier and control_plane == "gke":
            credit = price("gke.free_tier_credit")
            monthly_cp -= min(monthly_cp, credit.rate)
            used_cp.append(credit)
        b.line("control_plane", monthly_cp, used_cp)

    if lb.type == "alb":
        load_balancer_lines(b, usage, lb)
        if control_plane == "gke":
            b.note("an AWS ALB is priced for a GKE cluster; GCP load balancing is not in the table")

    if aws:
        gbc = settings.gb
        if mode == "nodes" and settings.root_volume > 0 and node_s > 0:
            gp3 = price("ebs.gp3")
            # EBS GB-month is prorated per second of the volume's life (GB = GiB provisioned).
            gb_months = settings.root_volume / 2.0**30 * node_s / b.month_s
            b.line("ebs", gp3.cost(b.monthly(gb_months)), [gp3])
        addresses_h = settings.public_ipv4.per_node * node_s / SECONDS_PER_HOUR
        if lb.type == "alb":
            addresses_h += settings.public_ipv4.load_balancer * window_h
        ipv4_line(b, addresses_h)
        nat_bytes = usage.requests * settings.nat.bytes_per_request
        nat_line(b, settings.nat, window_h, nat_bytes, gbc)
        lb_bytes = usage.requests * lb.bytes_per_request if usage.bytes is None else usage.bytes
        cross_az_line(b, lb_bytes, settings.cross_az, gbc)
        egress_line(b, usage.response_bytes, gbc)
    elif settings.nat.enabled or settings.cross_az > 0 or usage.response_bytes > 0:
        b.note("GKE: disks, IPv4, NAT and network data are not billed (GCP rates not in the table)")

    apply_commitment(b, commitment, eligible)
    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)
