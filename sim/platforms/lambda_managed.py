"""AWS Lambda Managed Instances (`type: lambda_managed`): a function on a capacity provider.

Runs on the Kubernetes kernel (sim.platforms.slots): a pod is an execution environment with
PerExecutionEnvironmentMaxConcurrency slots, a node is an EC2 instance of `instance_type` holding
floor(min(vCPU / env vCPU, memory / env memory)) environments (ASSUMPTION: no room reserved for
the Lambda agent; AWS publishes none). The Router sends an invocation to an environment with a free
slot (the one with the fewest in flight); when every slot is busy it is throttled at once
(outcome `throttled`, HTTP 429): there is no queue and no per-request cold start ("Lambda Managed
Instances does not scale when invocations arrive and does not support cold starts":
docs.aws.amazon.com/lambda/latest/dg/lambda-managed-instances-scaling.html).

Scaler (every `scale_period`): the work of the last period in environments' worth, the larger of
CPU (request CPU-seconds / env vCPU) and multi-concurrency saturation (request-seconds / slots),
divided by `target_utilization`, rounded up; at most `scale_up_factor` x the count of
`scale_up_window` ago (AWS: "If your traffic more than doubles within 5 minutes, you may see
throttles"); lowered only after the need stayed lower for `scale_down_window`; at least
`min_environments`, at most what `max_vcpu` worth of instances hold. New environments start after
`environment_init` on an instance with room; if none has room, instances are launched for them
(`instance_launch`), at least `min_instances` ("three by default for AZ resiliency") are kept, and
an instance left with no environment for `instance_idle` is terminated. Numbers AWS does not
publish are ASSUMPTIONS in sim.platforms.lambda_managed_spec.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from sim.platforms.base import RunContext
from sim.platforms.kubernetes_spec import KubernetesSpec
from sim.platforms.lambda_managed_spec import LambdaManagedSpec
from sim.platforms.slots import SlotsModel, WindowMax
from sim.pricing.kubernetes import NodeUsage
from sim.pricing.lambda_managed import LambdaManagedUsage, lambda_managed_bill
from sim.pricing.tables import instance_type
from sim.records import THROTTLED


def kubernetes_view(spec: LambdaManagedSpec) -> tuple[KubernetesSpec, int | None]:
    """The capacity provider as the Kubernetes kernel runs it (also a system's station): an
    environment is a pod, an EC2 instance a node (Karpenter, WhenEmpty after instance_idle, at
    least min_instances), no queue; and the instance cap max_vcpu sets (None: none)."""
    it = instance_type(spec.instance_type)
    max_nodes = None
    if spec.max_vcpu is not None:
        max_nodes = max(spec.min_instances, int(spec.max_vcpu // it.vcpu))
    kspec = KubernetesSpec.model_validate(
        {
            "name": spec.name,
            "type": "kubernetes",
            "replicas": spec.min_environments,
            "pod": {
                "concurrency": spec.env_concurrency,
                "cpu": spec.vcpu,
                "memory": spec.memory,
                "startup": spec.environment_init,
            },
            "routing": "ideal_fifo",
            "request_timeout": spec.timeout,
            "queue_limit": 0,
            "ingress_latency": 0.0,
            "cluster": {
                "node": spec.instance_type,
                "min_nodes": spec.min_instances,
                "max_nodes": max_nodes,
                "node_provisioning": spec.instance_launch,
                "system_reserved": {"cpu": 0, "memory": 0},
                "control_plane": "none",
                "node_autoscaler": "karpenter",
                "consolidation_policy": "WhenEmpty",
                "consolidate_after": spec.instance_idle,
            },
            "load_balancer": "none",
        }
    )
    return kspec, max_nodes


def count_at(sizes: deque[tuple[float, int]], t: float) -> int:
    """The environment count at time t: the last (time, count) change at or before t. Changes
    older than it are dropped (t only moves forward)."""
    while len(sizes) > 1 and sizes[1][0] <= t + 1e-9:
        sizes.popleft()
    return sizes[0][1]


def scaler_rule(
    own: LambdaManagedSpec,
    cpu: float,
    sat: float,
    before: int,
    replicas: int,
    push: Any,
    now: float,
    max_envs: int | None,
) -> tuple[int, str]:
    """The scaler's environment count from the last period's work in environments' worth (CPU
    and slots in use), the count `scale_up_window` ago and the scale-down hold (`push`:
    WindowMax.push), and why."""
    work = max(cpu, sat)
    want = math.ceil(work / own.target_utilization - 1e-9)
    cap = max(replicas, int(before * own.scale_up_factor))
    up = min(want, cap)
    n = max(push(now, up), own.min_environments)
    if max_envs is not None:
        n = min(n, max_envs)
    why = (
        f"work {work:.3g} environments (CPU {cpu:.3g}, slots {sat:.3g}) / target "
        f"{own.target_utilization:g} -> {want}"
    )
    if up < want:
        why += f"; growth limit {own.scale_up_factor:g}x per {own.scale_up_window:g}s: {up}"
    if n > max(up, own.min_environments):
        why += f"; kept for scale_down_window {own.scale_down_window:g}s"
    return n, why


class LambdaManagedModel(SlotsModel):
    own: LambdaManagedSpec
    reject_outcome = THROTTLED

    def __init__(self, spec: LambdaManagedSpec, ctx: RunContext) -> None:
        kspec, max_nodes = kubernetes_view(spec)
        super().__init__(spec, kspec, ctx)
        self.max_envs = None if max_nodes is None else max_nodes * self.pods_per_node

    def start(self) -> None:
        super().start()
        own = self.own
        self._marks(own.scale_period, own.scale_period)  # readings one period back
        self.keep = WindowMax(own.scale_down_window)
        self.sizes: deque[tuple[float, int]] = deque([(0.0, self.replicas)])
        self._periodic(own.scale_period, self._scaler)

    def _scaler(self, now: float) -> None:
        self._catch_up(now)
        own = self.own
        span, _, busy, _, _, _ = self._window(now, own.scale_period)
        if span <= 0:
            return
        cpu = busy * self.cpu_per_request / own.vcpu / span  # environments' worth of CPU
        sat = busy / self.conc / span  # environments' worth of slots in use
        before = count_at(self.sizes, now - own.scale_up_window)
        push = self.keep.push
        n, why = scaler_rule(own, cpu, sat, before, self.replicas, push, now, self.max_envs)
        if n == self.replicas:
            return
        self._scale_to(n, "lambda_managed", f"scaler: {why}")
        self.sizes.append((now, n))

    def usage(self) -> LambdaManagedUsage:  # type: ignore[override]
        end = self.horizon
        return LambdaManagedUsage(
            window_s=end,
            requests=self.n_arrivals,
            instances=[
                NodeUsage(self.node_type, n.launched, n.end if n.end is not None else end)
                for n in self.nodes
            ],
        )

    def bill(self) -> Any:
        own = self.own
        return lambda_managed_bill(
            self.usage(),
            commitment=own.commitment,
            month_s=self.ctx.month_s,
            ops=own.ops,
            ops_profile=own.ops_profile,
        )
