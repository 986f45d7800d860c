"""Azure Container Apps: the SimPy model of `type: container_apps` (spec:
sim.platforms.container_apps_spec).

The app's `scale:` runs as a KEDA ScaledObject through the Kubernetes kernel's KEDA loops (poll
every pollingInterval for 0 <-> 1, its HPA every 15 s for 1 <-> N, cooldownPeriod before zero),
with replicas billed per second and no nodes (sim.platforms.serverless_containers). Requests are
spread round robin over ready replicas (ASSUMPTION: Envoy's default) and held at the ingress while
no replica is ready (up to the request timeout).

Billing (sim.pricing.container_apps): Consumption = every replica's life from scheduling to
removal, at the idle rate while the app runs at its minimum replica count (>= 1) and the replica
has no request in service (ASSUMPTION: the CPU < 0.01 vCPU and < 1000 bytes/s conditions hold
whenever no request is in service), else at the active rate; plus HTTP requests. Dedicated = the
workload-profile instances the replicas need, ceil(replicas x size / instance size) at each moment
(ASSUMPTION: replicas packed perfectly by CPU and memory), per hour, plus the plan management fee.
"""

from __future__ import annotations

import numpy as np

from sim.platforms.container_apps_spec import ContainerAppsSpec
from sim.platforms.serverless_containers import ServerlessContainerModel, active_steps, step_at
from sim.pricing.container_apps import ContainerAppsUsage, container_apps_bill


class ContainerAppsModel(ServerlessContainerModel):
    service: ContainerAppsSpec
    bill_fn = staticmethod(container_apps_bill)
    mode_key = "plan"

    def usage(self) -> ContainerAppsUsage:  # type: ignore[override]
        s, end = self.service, self.horizon
        rt, rn = self.ready_steps()
        idle = 0.0
        m = s.scale.minReplicas
        if m >= 1:
            at, an = active_steps(*self.busy_periods(startup=False)[:2])
            grid = np.unique(np.concatenate([[0.0, end], rt, at]))
            grid = grid[(grid >= 0) & (grid <= end)]
            ready = step_at(rt, rn, grid[:-1], rn[0])
            act = step_at(at, an, grid[:-1], 0.0)
            at_min = ready <= m
            idle = float(np.sum(np.diff(grid) * np.where(at_min, np.maximum(ready - act, 0), 0)))
        profile_s = 0.0
        if s.plan == "dedicated":
            wp = s.workload_profile
            per = max(s.cpu / wp.vcpu, s.memory / 1024.0 / wp.memory_gib)
            grid = np.concatenate([rt[rt < end], [end]])
            need = np.ceil(step_at(rt, rn, grid[:-1], rn[0]) * per - 1e-9)
            profile_s = float(np.sum(np.diff(grid) * need))
        return ContainerAppsUsage(
            window_s=end,
            requests=self.n_arrivals,
            vcpu=s.cpu,
            memory_gib=s.memory / 1024.0,
            active_replica_s=max(0.0, self.pod_seconds - idle),
            idle_replica_s=idle,
            profile_instance_s=profile_s,
            profile_vcpu=s.workload_profile.vcpu,
            profile_memory_gib=s.workload_profile.memory_gib,
        )


__all__ = ["ContainerAppsModel", "ContainerAppsSpec"]
