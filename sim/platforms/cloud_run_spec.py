"""`type: cloud_run` in a scenario: a Google Cloud Run service (issue 18 item 2).

Every default is Google's documented one (source and read date beside it) or marked ASSUMPTION.
The kernel (sim.platforms.cloud_run) runs it as pods on a GKE-Autopilot-like cluster without
nodes: `kubernetes_view()` is that KubernetesSpec.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

import sim.platforms.autoscaling as D
from sim.config import Cpu, Duration, Fraction, MemoryMB, Strict
from sim.platforms.kubernetes_spec import Dist, KubernetesSpec
from sim.pricing.cloud_run import CloudRunBilling
from sim.pricing.ops import OpsCosts, OpsProfile

# cloud.google.com/run/docs/about-concurrency (read 2026-12-01): at most 1000; a service created
# with gcloud or Terraform gets 80 x its vCPUs, in the console 80 (the default here: 80 x cpu).
CONCURRENCY = 80
MAX_CONCURRENCY = 1000
# cloud.google.com/run/docs/configuring/max-instances-limits: "By default, Cloud Run services
# have a maximum of 100 instances" (the page's earlier version; today the regional quota).
MAX_INSTANCES = 100
# cloud.google.com/run/docs/about-instance-autoscaling (read 2026-12-01): 60% CPU and 60% of
# the maximum concurrency, each averaged over a 1-minute window.
CPU_TARGET = 0.6
CONCURRENCY_TARGET = 0.6
WINDOW_S = 60.0
# ASSUMPTION: the autoscaler looks every 2 s (Google: "evaluates these periodically"; an older
# version of the same page said every 5 s, which does not fit its on-demand scaling).
PERIOD_S = 2.0
# ASSUMPTION: instances above the recommendation are kept up to 15 minutes (the page: excess
# instances "are destroyed after being idle for 15 minutes"), as a scale-in stabilization window.
SCALE_IN_DELAY_S = 900.0
# cloud.google.com/run/docs/configuring/request-timeout: 5 minutes by default.
REQUEST_TIMEOUT_S = 300.0
# about-instance-autoscaling "Exceeding maximum instances": a request is pending for up to 3.5x
# the average instance startup time or 10 s, whichever is greater, then fails with 429.
PENDING_STARTUP_FACTOR = 3.5
PENDING_MIN_S = 10.0
# cloud.google.com/run/docs/configuring/services/cpu and memory-limits: 1 vCPU, 512 MiB.
CPU = 1.0
MEMORY_MB = 512.0
# ASSUMPTION: a container's cold start (image pull from Artifact Registry + start + readiness),
# median 1.5 s, p99 6 s; measure yours (Cloud Run's container startup latency metric).
STARTUP: dict[str, Any] = {"dist": "lognormal", "median": "1.5s", "p99": "6s"}
# ASSUMPTION: startup CPU boost halves the startup (Google: "up to 50% faster" for Java apps,
# cloud.google.com/blog/products/serverless/announcing-startup-cpu-boost-for-cloud-run).
BOOST_FACTOR = 0.5


class CloudRunSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["cloud_run"]
    concurrency: int = Field(
        CONCURRENCY, ge=1, le=MAX_CONCURRENCY, description="max concurrent requests per instance"
    )
    cpu: Cpu = Field(CPU, gt=0, le=8, description="vCPU per instance")
    memory: MemoryMB = Field(MEMORY_MB, gt=0, description="memory per instance (MiB)")
    min_instances: int = Field(0, ge=0, description="instances kept warm (idle-priced)")
    max_instances: int = Field(MAX_INSTANCES, ge=1)
    cpu_target: Fraction = Field(CPU_TARGET, gt=0, le=1, description="CPU utilization target")
    concurrency_target: Fraction = Field(
        CONCURRENCY_TARGET, gt=0, le=1, description="share of `concurrency` targeted"
    )
    startup: Dist = Field(  # type: ignore[assignment]
        default_factory=lambda: dict(STARTUP), description="instance cold start (ASSUMPTION)"
    )
    startup_cpu_boost: bool = Field(False, description="startup CPU boost: startup x boost_factor")
    boost_factor: Fraction = Field(BOOST_FACTOR, gt=0, le=1, description="ASSUMPTION")
    request_timeout: Duration = Field(REQUEST_TIMEOUT_S, gt=0, le=3600)
    pending_timeout: Duration | None = Field(
        None, gt=0, description="wait for an instance before 429; default max(3.5 x startup, 10s)"
    )
    scale_in_delay: Duration = Field(
        SCALE_IN_DELAY_S, ge=0, description="highest recommendation kept this long (ASSUMPTION)"
    )
    billing: CloudRunBilling = Field("request", description="request | instance")
    ingress_latency: Dist = Field(default_factory=lambda: D.INGRESS_LATENCY_S)  # type: ignore[assignment]
    free_tier: bool = Field(False, description="the monthly free tier of the billing mode")
    ops: OpsCosts = Field(default_factory=dict, description="monthly USD per line")
    ops_profile: OpsProfile | None = None

    @model_validator(mode="after")
    def _check(self) -> CloudRunSpec:
        if "concurrency" not in self.model_fields_set and self.cpu > 1:
            self.concurrency = min(int(CONCURRENCY * self.cpu), MAX_CONCURRENCY)
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) must not exceed max_instances "
                f"({self.max_instances})"
            )
        if self.cpu < 1 and self.concurrency > 1:
            # cloud.google.com/run/docs/configuring/services/cpu: below 1 vCPU, "Maximum
            # concurrency must be set to 1".
            raise ValueError(f"cpu {self.cpu:g} < 1 needs concurrency 1 (Cloud Run's rule)")
        return self

    @property
    def startup_mean(self) -> float:
        boost = self.boost_factor if self.startup_cpu_boost else 1.0
        return float(self.startup.mean()) * boost

    @property
    def pending_limit(self) -> float:
        if self.pending_timeout is not None:
            return self.pending_timeout
        return max(PENDING_STARTUP_FACTOR * self.startup_mean, PENDING_MIN_S)

    def kubernetes_view(self) -> KubernetesSpec:
        """The same service as the Kubernetes kernel runs it: no nodes (billed per instance), one
        FIFO in front of the instances (requests wait in Cloud Run's front end for a free slot,
        not at an instance), the autoscaler replaced by the kernel's own."""
        return KubernetesSpec.model_validate(
            {
                "name": self.name,
                "type": "kubernetes",
                "replicas": self.min_instances,
                "pod": {
                    "concurrency": self.concurrency,
                    "cpu": self.cpu,
                    "memory": self.memory,
                    "startup": self.startup,
                },
                "routing": "ideal_fifo",
                "request_timeout": self.request_timeout,
                "ingress_latency": self.ingress_latency,
                "cluster": {"mode": "autopilot", "control_plane": "gke"},
                "load_balancer": "none",
            }
        )
