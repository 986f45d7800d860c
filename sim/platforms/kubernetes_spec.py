"""`type: kubernetes` in a scenario: pods, the autoscaler (replicas | hpa | keda), cluster and bill.

Keys as platforms.md lists them. Every default lives in sim.platforms.autoscaling with its source.
`keda:` is a ScaledObject `spec` pasted inline, or `{file: path}` (optionally `name:`) pointing at a
ScaledObject or HTTPScaledObject manifest; a relative path resolves against the scenario's folder,
passed as pydantic validation context `{"base_dir": ...}`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

import sim.platforms.autoscaling as D
from sim.config import Cpu, Duration, Fraction, MemoryMB, Strict, check_input_file
from sim.distributions import Distribution, coerce_distribution
from sim.errors import InputError
from sim.platforms.autoscaling.hpa import ControllerFlags, HPASpec
from sim.platforms.autoscaling.keda import ScaledObjectSpec
from sim.platforms.autoscaling.manifests import load_keda_manifest
from sim.pricing.commitments import Service, discount_rate
from sim.pricing.kubernetes import (
    ClusterMode,
    ControlPlane,
    KubernetesCostSettings,
    LoadBalancerSettings,
)
from sim.pricing.ops import OpsCosts, OpsProfile
from sim.pricing.tables import instance_type, known_instance_types

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]


Routing = Literal["random", "round_robin", "least_request", "least_outstanding", "ideal_fifo"]
ROUTINGS: tuple[str, ...] = Routing.__args__  # type: ignore[attr-defined]


def _routing(value: object) -> object:
    """`least_connections` (the old default: one global FIFO queue) is kept as an alias of
    `ideal_fifo`, so old scenarios give the same numbers; other names must be one of ROUTINGS."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    if name == "least_connections":
        return "ideal_fifo"
    if name not in ROUTINGS:
        raise ValueError(f"unknown routing {value!r}; use {', '.join(ROUTINGS)}")
    return name


class InterceptorSpec(Strict):
    """The KEDA HTTP add-on interceptor (kedacore/http-add-on v0.15.0 interceptor/config/
    timeouts.go). Only used when a `keda:` trigger is `http` (every request passes through it)."""

    readiness_timeout: Duration | None = Field(
        D.INTERCEPTOR_READINESS_TIMEOUT_S,
        gt=0,
        description="KEDA_HTTP_READINESS_TIMEOUT: hold limit with no ready pod (504); None: none",
    )


def _provisioning(value: object) -> object:
    """A preset name (karpenter | cluster-autoscaler) or any distribution."""
    if isinstance(value, str) and value.strip().lower() in D.NODE_PROVISIONING_PRESETS:
        return dict(D.NODE_PROVISIONING_PRESETS[value.strip().lower()])
    if isinstance(value, str) and not value.strip()[:1].isdigit():
        presets = ", ".join(D.NODE_PROVISIONING_PRESETS)
        raise ValueError(
            f"unknown node_provisioning preset {value!r}; use {presets} or a "
            "distribution / duration"
        )
    return coerce_distribution(value)


class PodSpec(Strict):
    concurrency: int = Field(D.POD_CONCURRENCY, ge=1, description="requests served at once")
    cpu: Cpu = Field(D.POD_CPU, gt=0, description="CPU request (cores)")
    memory: MemoryMB = Field(D.POD_MEMORY_MB, gt=0, description="memory request (MB)")
    startup: Dist = Field(  # type: ignore[assignment]
        default_factory=lambda: dict(D.POD_STARTUP),
        description="image pull + start + readiness",
    )


class SystemReserved(Strict):
    cpu: Cpu = Field(D.SYSTEM_RESERVED_CPU, ge=0)
    memory: MemoryMB = Field(D.SYSTEM_RESERVED_MEMORY_MB, ge=0)


class SpotSpec(Strict):
    """`cluster.spot`: a node pool mixing on-demand and spot capacity, as an EC2 Auto Scaling
    MixedInstancesPolicy's InstancesDistribution counts it: the first `on_demand_base` nodes are
    on-demand (OnDemandBaseCapacity), of the nodes above it `share` are spot (1 -
    OnDemandPercentageAboveBaseCapacity / 100; ASSUMPTION: a fraction rounds in favour of
    on-demand).
    `share: 1` is an all-spot pool (a Karpenter NodePool with capacity-type spot). Interruptions:
    a Poisson process per spot node (`interruptions_per_node_hour`) or a trace of notice times
    (`interruptions`, each hits the spot node launched first among those running then).
    In `mode: autopilot` these are GKE Autopilot Spot Pods: every pod has a Spot VM of its own,
    so `share`, the rate and the trace count pods (docs/model.md section 5)."""

    share: Fraction = Field(
        1.0, ge=0, le=1, description="share of the nodes above the base that are spot"
    )
    on_demand_base: int = Field(0, ge=0, description="the first nodes are on-demand")
    price: float | None = Field(
        None,
        gt=0,
        le=1,
        description="spot price / on-demand price; default: the provider's ratio in prices.yaml",
    )
    interruptions_per_node_hour: float = Field(
        D.SPOT_INTERRUPTIONS_PER_NODE_HOUR, ge=0, description="interruption notices per node-hour"
    )
    interruptions: list[Duration] | None = Field(
        None, description="a trace of notice times (replaces the rate)"
    )
    notice: Duration | None = Field(
        None, ge=0, description="notice before the node goes; default 120 s AWS, 30 s GCP"
    )
    grace: Duration | None = Field(
        None,
        ge=0,
        description="pod termination grace after the notice; default 30 s AWS, 15 s GKE",
    )
    drain_on_notice: bool = Field(
        True,
        description="cordon and drain at the notice (Karpenter, Node Termination Handler, GKE "
        "graceful shutdown); false: the node just goes when the notice ends",
    )
    in_flight: Literal["fail", "retry"] = Field(
        "fail", description="requests on a killed pod: fail (502) or are retried by the client"
    )
    unavailable: Fraction = Field(
        0.0,
        ge=0,
        le=1,
        description="probability that a spot launch finds no spot capacity (Karpenter: the "
        "node is launched on-demand instead)",
    )
    unavailable_during: list[tuple[Duration, Duration]] | None = Field(
        None, description="windows [from, to] without spot capacity (launches go on-demand)"
    )
    unavailable_ttl: Duration = Field(
        D.SPOT_UNAVAILABLE_TTL_S,
        ge=0,
        description="Karpenter's unavailable-offerings cache: after spot was found unavailable, "
        "launches go on-demand for this long",
    )

    def short_capacity(self) -> bool:
        return self.unavailable > 0 or bool(self.unavailable_during)

    def on_demand_for(self, n: int) -> int:
        """On-demand nodes among n running, as MixedInstancesPolicy counts them: the base, then
        ceil((1 - share) x the nodes above it) (shared by the kernel and sim.systems.nodes)."""
        above = max(n - self.on_demand_base, 0)
        return n - above + math.ceil((1.0 - self.share) * above - 1e-9)

    def provider(self, control_plane: str | None) -> Literal["aws", "gcp"]:
        return "gcp" if control_plane == "gke" else "aws"


class ClusterSpec(Strict):
    node: str = Field(D.NODE_TYPE, description="instance type from the price table")
    min_nodes: int = Field(D.MIN_NODES, ge=0)
    max_nodes: int | None = Field(None, ge=1, description="None: no cap")
    node_provisioning: Annotated[Distribution, BeforeValidator(_provisioning)] = Field(  # type: ignore[assignment]
        default_factory=lambda: dict(D.NODE_PROVISIONING_PRESETS[D.NODE_PROVISIONING]),
        description="karpenter | cluster-autoscaler | a distribution",
    )
    control_plane: ControlPlane | None = Field(
        None, description="default: eks (mode nodes) or gke (mode autopilot)"
    )
    system_reserved: SystemReserved = Field(default_factory=SystemReserved)
    mode: ClusterMode = "nodes"
    node_autoscaler: Literal["karpenter", "cluster-autoscaler"] | None = Field(
        None,
        description="who removes nodes (default: as node_provisioning's preset, else karpenter)",
    )
    consolidation_policy: Literal["WhenEmptyOrUnderutilized", "WhenEmpty"] = Field(
        D.KARPENTER_CONSOLIDATION_POLICY, description="Karpenter disruption.consolidationPolicy"
    )
    consolidate_after: Duration = Field(
        D.KARPENTER_CONSOLIDATE_AFTER_S,
        ge=0,
        description="Karpenter disruption.consolidateAfter (since a pod last came or went)",
    )
    scale_down_after: Duration = Field(
        D.NODE_SCALE_DOWN_AFTER_S,
        ge=0,
        description="Cluster Autoscaler --scale-down-unneeded-time",
    )
    scale_down_utilization_threshold: Fraction = Field(
        D.CA_UTILIZATION_THRESHOLD,
        ge=0,
        le=1,
        description="Cluster Autoscaler --scale-down-utilization-threshold (requests/allocatable)",
    )
    scale_down_delay_after_add: Duration = Field(
        D.CA_DELAY_AFTER_ADD_S, ge=0, description="Cluster Autoscaler --scale-down-delay-after-add"
    )
    controller: ControllerFlags = Field(
        default_factory=ControllerFlags, description="kube-controller-manager HPA flags"
    )
    metric_resolution: Duration = Field(
        D.METRIC_RESOLUTION_S,
        ge=D.METRIC_FRESH_CONTAINER_MIN_S,
        description="metrics-server --metric-resolution (scrape period and CPU window)",
    )
    spot: SpotSpec | None = Field(
        None, description="mixed on-demand + spot nodes; mode autopilot: Autopilot Spot Pods"
    )
    autopilot_rounding: bool = Field(
        True,
        description="mode autopilot: bill requests as Autopilot adjusts them (minimums, "
        "memory:CPU 1-6.5, 0.25 vCPU steps); false: as given",
    )

    @field_validator("node")
    @classmethod
    def _known_node(cls, value: str) -> str:
        known = known_instance_types()
        if value not in known:
            raise ValueError(f"unknown node type {value!r}; known: {', '.join(known)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _autoscaler(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("node_autoscaler") is None:
            prov = data.get("node_provisioning")
            ca = isinstance(prov, str) and prov.strip().lower() == "cluster-autoscaler"
            data = {**data, "node_autoscaler": "cluster-autoscaler" if ca else "karpenter"}
        return data

    @model_validator(mode="after")
    def _check(self) -> ClusterSpec:
        if self.max_nodes is not None and self.min_nodes > self.max_nodes:
            raise ValueError(
                f"min_nodes ({self.min_nodes}) must not exceed max_nodes ({self.max_nodes})"
            )
        if self.control_plane is None:
            self.control_plane = D.CONTROL_PLANE_BY_MODE[self.mode]  # type: ignore[assignment]
        if self.mode == "autopilot" and self.control_plane != "gke":
            raise ValueError(
                f"mode autopilot is GKE: control_plane must be gke, got {self.control_plane!r}"
            )
        if self.spot is not None and self.mode == "autopilot" and self.spot.short_capacity():
            raise ValueError(
                "cluster.spot.unavailable / unavailable_during model Karpenter's fallback; "
                "Autopilot Spot Pods wait for capacity (not modelled)"
            )
        if (
            self.spot is not None
            and self.spot.short_capacity()
            and self.node_autoscaler != "karpenter"
        ):
            raise ValueError(
                "cluster.spot.unavailable / unavailable_during model Karpenter's fallback to "
                "on-demand; they need node_autoscaler karpenter (an Auto Scaling group keeps "
                "trying spot, not modelled)"
            )
        return self


class MetricFailures(Strict):
    """Failed metric reads (the metrics API, Prometheus, a broker): each read of a metric by the
    HPA or KEDA fails with `probability`, and every read inside an outage fails."""

    probability: float = Field(0.0, ge=0, le=1, description="chance that one read fails")
    outages: list[tuple[Duration, Duration]] = Field(
        default_factory=list, description="[start, end] windows in which every read fails"
    )

    @model_validator(mode="after")
    def _order(self) -> MetricFailures:
        for lo, hi in self.outages:
            if not hi > lo:
                raise ValueError(f"an outage must end after it starts, got [{lo:g}s, {hi:g}s]")
        return self

    def fails_at(self, t: float) -> bool:
        return any(lo <= t < hi for lo, hi in self.outages)


def check_cluster_cost(cluster: ClusterSpec, cost: KubernetesCostSettings) -> None:
    """A commitment needs a rate for this cluster: say so at load time, not after the run
    (shared by every spec that runs on a cluster)."""
    c = cost.commitment
    if c is not None and not (cluster.mode == "autopilot" and c.plan == "flexible-cud"):
        service: Service = "gke" if cluster.control_plane == "gke" else "ec2"
        try:
            discount_rate(c, service, instance_type(cluster.node))
        except InputError as exc:
            raise ValueError(f"cost.commitment: {exc.detail}") from None
    if cost.auto_mode and cluster.control_plane == "gke":
        raise ValueError("cost.auto_mode is EKS Auto Mode; it does not apply to GKE")


class KubernetesSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["kubernetes"]
    replicas: int | None = Field(None, ge=0, description="a fixed replica count")
    hpa: HPASpec | None = None
    keda: ScaledObjectSpec | None = Field(
        None, description="a ScaledObject spec, or {file: manifest.yaml, name: optional}"
    )
    pod: PodSpec = Field(default_factory=PodSpec)
    routing: Annotated[Routing | None, BeforeValidator(_routing)] = Field(
        None,
        description="random | round_robin | least_request | least_outstanding | ideal_fifo; "
        "default: HTTP add-on or no load balancer -> random, alb -> round_robin",
    )
    interceptor: InterceptorSpec = Field(default_factory=InterceptorSpec)
    queue_limit: int | None = Field(None, ge=0, description="None: unbounded")
    request_timeout: Duration | None = Field(D.REQUEST_TIMEOUT_S, gt=0, description="None: none")
    ingress_latency: Dist = Field(default_factory=lambda: D.INGRESS_LATENCY_S)  # type: ignore[assignment]
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    load_balancer: LoadBalancerSettings = Field(default_factory=LoadBalancerSettings)
    ops: OpsCosts = Field(default_factory=dict, description="monthly USD per line")
    metric_failures: MetricFailures = Field(
        default_factory=MetricFailures, description="failed metric reads (none by default)"
    )
    ops_profile: OpsProfile | None = Field(
        None, description="bundled operating-cost profile (kubernetes-team, serverless-team)"
    )
    cost: KubernetesCostSettings = Field(default_factory=KubernetesCostSettings)
    free_tier: bool = Field(False, description="GKE free tier: $74.40/month cluster-fee credit")

    @field_validator("keda", mode="before")
    @classmethod
    def _keda_file(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict) and "file" in value and set(value) <= {"file", "name"}:
            path = Path(str(value["file"]))
            base = (info.context or {}).get("base_dir")
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            try:  # a missing, unreadable or special file: reported at the scenario's own key
                check_input_file(path, what="ScaledObject file")
            except InputError as exc:
                if exc.detail.startswith("file not found"):
                    raise ValueError(f"ScaledObject file not found: {path}") from None
                raise ValueError(f"ScaledObject file {path}: {exc.detail}") from None
            return load_keda_manifest(path, name=value.get("name"))
        return value

    @model_validator(mode="after")
    def _one_scaler(self) -> KubernetesSpec:
        given = [k for k in ("replicas", "hpa", "keda") if getattr(self, k) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(f"give exactly one of `replicas`, `hpa` or `keda` (got {what})")
        if self.routing is None:
            self.routing = self.default_routing()
        return self

    @model_validator(mode="after")
    def _commitment_priced(self) -> KubernetesSpec:
        check_cluster_cost(self.cluster, self.cost)
        return self

    @property
    def http_add_on(self) -> bool:
        """Behind the KEDA HTTP add-on: every request passes through its interceptor."""
        return self.keda is not None and any(t.type == "http" for t in self.keda.triggers)

    def default_routing(self) -> Routing:
        """The entry path's balancer (docs/model.md "Routing"): the HTTP add-on's interceptor
        forwards to the Service, i.e. kube-proxy's random pick; an ALB (target type ip) does
        round robin by default; with no load balancer the Service's kube-proxy picks at random."""
        if self.http_add_on or self.load_balancer.type == "none":
            return "random"
        return "round_robin"

    @property
    def scaler(self) -> Literal["fixed", "hpa", "keda"]:
        if self.keda is not None:
            return "keda"
        return "hpa" if self.hpa is not None else "fixed"
