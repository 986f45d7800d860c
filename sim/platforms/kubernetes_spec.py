"""`type: kubernetes` in a scenario: pods, the autoscaler (replicas | hpa | keda), cluster and bill.

Keys as platforms.md lists them. Every default lives in sim.platforms.autoscaling with its source.
`keda:` is a ScaledObject `spec` pasted inline, or `{file: path}` (optionally `name:`) pointing at a
ScaledObject or HTTPScaledObject manifest; a relative path resolves against the scenario's folder,
passed as pydantic validation context `{"base_dir": ...}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

import sim.platforms.autoscaling as D
from sim.config import Cpu, Duration, MemoryMB, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.errors import InputError
from sim.platforms.autoscaling.hpa import HPASpec
from sim.platforms.autoscaling.keda import ScaledObjectSpec
from sim.platforms.autoscaling.manifests import load_keda_manifest
from sim.pricing.commitments import discount_rate
from sim.pricing.kubernetes import (
    ClusterMode,
    ControlPlane,
    KubernetesCostSettings,
    LoadBalancerSettings,
)
from sim.pricing.ops import OpsCosts, OpsProfile
from sim.pricing.tables import instance_type, known_instance_types

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]


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
    scale_down_after: Duration = Field(
        D.NODE_SCALE_DOWN_AFTER_S, ge=0, description="an empty node is removed after this"
    )

    @field_validator("node")
    @classmethod
    def _known_node(cls, value: str) -> str:
        known = known_instance_types()
        if value not in known:
            raise ValueError(f"unknown node type {value!r}; known: {', '.join(known)}")
        return value

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
        return self


class KubernetesSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["kubernetes"]
    replicas: int | None = Field(None, ge=0, description="a fixed replica count")
    hpa: HPASpec | None = None
    keda: ScaledObjectSpec | None = Field(
        None, description="a ScaledObject spec, or {file: manifest.yaml, name: optional}"
    )
    pod: PodSpec = Field(default_factory=PodSpec)
    routing: Literal["least_connections", "round_robin"] = "least_connections"
    queue_limit: int | None = Field(None, ge=0, description="None: unbounded")
    request_timeout: Duration | None = Field(D.REQUEST_TIMEOUT_S, gt=0, description="None: none")
    ingress_latency: Dist = Field(default_factory=lambda: D.INGRESS_LATENCY_S)  # type: ignore[assignment]
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    load_balancer: LoadBalancerSettings = Field(default_factory=LoadBalancerSettings)
    ops: OpsCosts = Field(default_factory=dict, description="monthly USD per line")
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
            if not path.is_file():  # reported against the scenario's own key
                raise ValueError(f"ScaledObject file not found: {path}")
            return load_keda_manifest(path, name=value.get("name"))
        return value

    @model_validator(mode="after")
    def _one_scaler(self) -> KubernetesSpec:
        given = [k for k in ("replicas", "hpa", "keda") if getattr(self, k) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(f"give exactly one of `replicas`, `hpa` or `keda` (got {what})")
        return self

    @model_validator(mode="after")
    def _commitment_priced(self) -> KubernetesSpec:
        """A commitment needs a rate for this cluster: say so at load time, not after the run."""
        c = self.cost.commitment
        if c is not None and not (self.cluster.mode == "autopilot" and c.plan == "flexible-cud"):
            service = "gke" if self.cluster.control_plane == "gke" else "ec2"
            try:
                discount_rate(c, service, instance_type(self.cluster.node))
            except InputError as exc:
                raise ValueError(f"cost.commitment: {exc.detail}") from None
        if self.cost.auto_mode and self.cluster.control_plane == "gke":
            raise ValueError("cost.auto_mode is EKS Auto Mode; it does not apply to GKE")
        return self

    @property
    def scaler(self) -> Literal["fixed", "hpa", "keda"]:
        if self.keda is not None:
            return "keda"
        return "hpa" if self.hpa is not None else "fixed"
