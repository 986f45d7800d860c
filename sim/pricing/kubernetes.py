"""Kubernetes bill: nodes (or GKE Autopilot pod requests), control plane, load balancer; ops apart.

- Nodes: each node's life in the window billed per second at its type's hourly price, with a 60 s
  minimum per node that was removed inside the window. A node still running when the window ends
  is billed for its time in the window only (it goes on; its minimum is met later).
- Autopilot (`mode: autopilot`, GKE only): Pod CPU and memory *requests* x time, per vCPU-h and
  GiB-h; nodes are not billed. The cluster fee still applies.
- Control plane: EKS $0.10/h (extended support $0.60/h in total), GKE $0.10/h, for the whole window.
  The GKE free-tier credit ($74.40/month, per billing account) applies only with `free_tier`.
- Application Load Balancer: hourly charge + LCU-hours, LCU = the largest of its four dimensions,
  derived from the request rate averaged over the window (AWS measures hourly; a run with sharp
  peaks is billed a little low). Traffic assumptions are settings (LoadBalancerSettings).
- `ops`: monthly amounts (engineer time, monitoring, ...) reported as operating cost, never added
  to the cloud bill.
- Not billed: EBS volumes, cross-AZ and internet data transfer, NAT for nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.config import Count, Duration, Strict
from sim.errors import InputError
from sim.pricing.tables import (
    SECONDS_PER_HOUR,
    Bill,
    BillBuilder,
    Bytes,
    InstanceType,
    bytes_to_gb,
    instance_type,
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


# `ops:` mapping of line name -> monthly USD (accepts 2000, 2k, "1.5k").
OpsCosts = dict[str, Annotated[Count, Field(ge=0)]]


# --- usage --------------------------------------------------------------------------------------


@dataclass
class NodeUsage:
    """One node's life: billed from start_s to end_s (end_s >= window end: still running)."""

    instance_type: str | InstanceType
    start_s: float
    end_s: float

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
    new_connections: float | None = None  # None: requests / requests_per_connection
    bytes: float | None = None  # through the load balancer; None: requests x bytes_per_request


def _resolve(it: str | InstanceType) -> InstanceType:
    return it if isinstance(it, InstanceType) else instance_type(it)


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


def kubernetes_bill(
    usage: KubernetesUsage,
    *,
    control_plane: ControlPlane = "eks",
    mode: ClusterMode = "nodes",
    load_balancer: LoadBalancerSettings | Literal["alb", "none"] | None = None,
    ops: Mapping[str, float] | None = None,
    free_tier: bool = False,
) -> Bill:
    """The Kubernetes bill for `usage` (window and 30-day month), line by line with sources."""
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
    b = BillBuilder(usage.window_s)
    window_h = usage.window_s / SECONDS_PER_HOUR

    if mode == "nodes":
        cost, used = 0.0, []
        for node in usage.nodes:
            it = _resolve(node.instance_type)
            cost += node_billed_seconds(node, usage.window_s) / SECONDS_PER_HOUR * it.hourly_usd
            if it not in used:
                used.append(it)
        b.line("nodes", b.monthly(cost), [*used, price("nodes.minimum_billed_seconds")])
    else:
        cpu, mem = price("gke.autopilot.cpu"), price("gke.autopilot.memory")
        cpu_h = b.monthly(usage.pod_cpu_seconds / SECONDS_PER_HOUR)
        mem_h = b.monthly(usage.pod_memory_gib_seconds / SECONDS_PER_HOUR)
        b.line("autopilot_cpu", cpu.cost(cpu_h), [cpu])
        b.line("autopilot_memory", mem.cost(mem_h), [mem])

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
        if control_plane == "gke":
            b.note("an AWS ALB is priced for a GKE cluster; GCP load balancing is not in the table")

    for name, monthly_usd in (ops or {}).items():
        b.operating(name, float(monthly_usd))

    return b.build(usage.requests)
