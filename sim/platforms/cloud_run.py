"""Google Cloud Run: the SimPy model of `type: cloud_run` (spec: sim.platforms.cloud_run_spec).

Data plane: the Kubernetes kernel in `ideal_fifo` routing (sim.platforms.serverless_containers):
an instance serves up to `concurrency` requests at once; a request with no free slot waits in one
FIFO in front of the instances (Cloud Run's front end holds it "pending") for up to the pending
limit, max(3.5 x mean startup, 10 s), then fails with 429 (`rejected`); `request_timeout` is the
client's deadline for the whole request.

Autoscaler (cloud.google.com/run/docs/about-instance-autoscaling, read 2026-12-01), every 2 s
(ASSUMPTION):
- metrics-based: instances = max(ceil(mean CPU cores used over 1 min / (cpu x cpu_target)),
  ceil(mean concurrent requests over 1 min / (concurrency x concurrency_target))), the largest
  of the drivers, as Google's equations. Concurrent requests count the pending ones (ASSUMPTION).
- on-demand: ceil((requests in service + pending now) / concurrency), so a burst or the first
  request at zero starts instances without waiting for the 1-minute averages (ASSUMPTION for the
  arithmetic: Google names the mechanism without a formula).
- the recommendation is the larger of the two, clamped to [min_instances, max_instances]; scale-out
  at once, scale-in to the highest recommendation of the last `scale_in_delay` (15 min,
  ASSUMPTION), idle instances first.
Startup CPU boost multiplies every instance's startup by `boost_factor` (ASSUMPTION 0.5).

Billing (sim.pricing.cloud_run): request-based = active instance time (>= 1 request in service,
or starting), each active period rounded up to 100 ms, + idle minimum instances at the idle rate;
instance-based = every instance's life from scheduling to removal.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from sim.platforms.base import RunContext
from sim.platforms.cloud_run_spec import PERIOD_S, WINDOW_S, CloudRunSpec
from sim.platforms.serverless_containers import (
    ServerlessContainerModel,
    active_steps,
    ceil_div,
)
from sim.pricing.cloud_run import CloudRunUsage, cloud_run_bill
from sim.pricing.tables import price
from sim.records import REJECTED


def billable_active_s(periods_s: np.ndarray) -> float:
    """Active instance time billed: each active period rounded up to the billing granularity
    (cloud.google.com/run/pricing: "rounded up to the nearest 100 millisecond"), summed. The
    kernel's and the system station's (sim.systems.stations_containers) bill."""
    g = price("cloud_run.billing_granularity_s").rate
    return float(np.sum(np.ceil(np.asarray(periods_s, dtype=float) / g - 1e-9) * g))


def recommendation(
    spec: CloudRunSpec, cpu_cores: float, concurrent: float, demand: int
) -> tuple[int, int, int, int]:
    """(instances, by CPU, by concurrency, on demand): Google's metrics-based equations
    (about-instance-autoscaling) for the 1-minute means of CPU cores used and concurrent
    requests, and on-demand scaling for the requests in service or pending now; the largest,
    clamped to [min_instances, max_instances]."""
    by_cpu = ceil_div(cpu_cores, spec.cpu * spec.cpu_target)
    by_conc = ceil_div(concurrent, spec.concurrency * spec.concurrency_target)
    on_demand = ceil_div(demand, spec.concurrency)
    want = min(max(by_cpu, by_conc, on_demand, spec.min_instances), spec.max_instances)
    return want, by_cpu, by_conc, on_demand


class _Scaled:
    """A draw buffer whose draws are multiplied by `factor` (startup CPU boost)."""

    def __init__(self, inner: object, factor: float) -> None:
        self.inner, self.factor = inner, factor

    def next(self) -> float:
        return self.inner.next() * self.factor  # type: ignore[attr-defined]


class CloudRunModel(ServerlessContainerModel):
    service: CloudRunSpec
    bill_fn = staticmethod(cloud_run_bill)
    mode_key = "billing"

    def __init__(self, spec: CloudRunSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        self.pending_limit = spec.pending_limit
        if self.pending_limit < self.timeout:
            self.queue_timeout, self.queue_outcome = self.pending_limit, REJECTED
        if spec.startup_cpu_boost:
            self.startup = _Scaled(self.startup, spec.boost_factor)  # type: ignore[assignment]
        self.recs: deque[tuple[float, int]] = deque()  # (time, recommendation), scale-in window

    def start(self) -> None:
        self._initial(self.service.min_instances)
        self._record(0.0)
        self._marks(PERIOD_S, WINDOW_S)
        self.max_window = max(self.max_window, WINDOW_S)
        self._periodic(PERIOD_S, self._tick)

    def recommend(self, now: float) -> tuple[int, str]:
        """The autoscaler's instance count now, and why (the data plane is caught up)."""
        span, _, busy, waiting, _, _ = self._window(now, WINDOW_S)
        cpu_used = busy * self.cpu_per_request / span if span > 0 else 0.0
        conc = (busy + waiting) / span if span > 0 else 0.0
        demand = len(self.heap) + self.waiting()
        want, by_cpu, by_conc, on_demand = recommendation(self.service, cpu_used, conc, demand)
        why = (
            f"cpu {cpu_used:.3g} cores/1min -> {by_cpu}, concurrency {conc:.3g}/1min -> "
            f"{by_conc}, on demand {demand} requests -> {on_demand}"
        )
        return want, why

    def _tick(self, now: float) -> None:
        self._catch_up(now)
        rec, why = self.recommend(now)
        recs = self.recs
        recs.append((now, rec))
        while recs and recs[0][0] < now - self.service.scale_in_delay - 1e-9:
            recs.popleft()
        held = max(r for _, r in recs)
        if held != self.replicas:
            rule = "scale out" if held > self.replicas else "scale in"
            extra = "" if held == rec else f"; held at {held} for scale_in_delay"
            self._scale_to(held, "cloud_run", f"{rule}: {why}{extra}")

    # -- billing ---------------------------------------------------------------------------------
    def usage(self) -> CloudRunUsage:  # type: ignore[override]
        s, end = self.service, self.horizon
        start, stop, _ = self.busy_periods(startup=True)
        active = billable_active_s(stop - start)
        idle = 0.0
        m = s.min_instances
        if m:  # idle minimum instances: m - min(active instances, m), integrated over the window
            t, n = active_steps(*self.busy_periods(startup=False)[:2])
            grid = np.concatenate([[0.0], t, [end]])
            counts = np.concatenate([[0.0], n, [n[-1] if n.size else 0.0]])
            dt = np.diff(grid)
            idle = float(np.sum(dt * np.maximum(0.0, m - counts[:-1])))
        return CloudRunUsage(
            window_s=end,
            requests=self.n_arrivals,
            vcpu=s.cpu,
            memory_gib=s.memory / 1024.0,
            active_instance_s=active,
            idle_min_instance_s=idle,
            instance_s=self.pod_seconds,
        )


__all__ = ["CloudRunModel", "CloudRunSpec", "recommendation"]
