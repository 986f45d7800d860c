"""Azure Functions Flex Consumption as a system station (`type: azure_flex`; docs/model.md 18.7).

The single-service model's mechanics and bill (sim.platforms.azure_flex), not copies of them:
- the app as the Kubernetes kernel runs it (`kubernetes_view`): an instance is a pod with
  perInstanceConcurrency slots behind one FIFO (the front end holds requests, also while no
  instance is ready), a new instance ready after a `cold_start` draw; the always-ready instances
  are the initial ones (ids < always_ready), never scaled in (the newest instance goes first);
- the scale controller (`scale_rule`, WindowMax for idle_timeout) every `scale_period` on the
  executions in flight or waiting;
- with PodIdentity (sim.systems.engine) each execution runs on a known instance (the one with
  the fewest in flight, as the kernel's pick), so the per-instance activity-period bill is the
  kernel's ActivityMeter: periods of at least 1 s from each execution's start, merged while they
  overlap or touch, each rounded up to 100 ms, on-demand and always-ready apart, then
  `azure_flex_bill`.
An execution is in flight from its slot to its answer: a Flex handler waiting on a synchronous
callee keeps its instance active (billed), as a real function awaiting an HTTP call does.
The 230 s HTTP limit (`request_timeout`, from arrival) as the kernel's: a request still held in
the front end at its limit leaves the queue TIMED_OUT (ContainerStation._pend, Cloud Run's
pending limit's mechanism); one running at its limit is TIMED_OUT for the client there while the
instance runs the execution to its end (SystemModel.limited). Deviation from the single-service
kernel: the scale-in victim is the newest ready instance (the kernel ranks with
ActivePodsWithRanks' log2 buckets). Flex consuming SQS or Kafka is refused (sim.systems.spec):
its queue triggers read Azure queues.
"""

from __future__ import annotations

from typing import Any

import simpy

from sim.platforms.azure_flex import ActivityMeter, kubernetes_view, scale_rule
from sim.platforms.base import every
from sim.platforms.slots import WindowMax
from sim.pricing.azure_flex import AzureFlexUsage, azure_flex_bill
from sim.pricing.tables import Bill
from sim.records import TIMED_OUT
from sim.systems.engine import STATIONS, PodIdentity, Proc
from sim.systems.stations_containers import ContainerStation


class LiveActivityMeter(ActivityMeter):
    """ActivityMeter fed one execution at a time, in time order: each instance's open period
    [lo, hi). An execution starting at s on an instance with none in flight and s > hi closes
    the period (billed) and opens [s, s + 1 s); otherwise it joins it (merge_periods: spans that
    overlap or touch merge); hi = max(hi, s + 1 s, every end)."""

    def __init__(self, always_ready: int, horizon: float) -> None:
        super().__init__(always_ready, horizon)
        self.lo: dict[int, float] = {}
        self.hi: dict[int, float] = {}

    def begin(self, pid: int, now: float, in_flight: int) -> None:
        hi = self.hi.get(pid)
        if hi is None or (in_flight == 0 and now > hi):
            if hi is not None:
                self._bill(pid, self.lo[pid], hi)
            self.lo[pid] = hi = now
        self.hi[pid] = max(hi, now + self.min_s)
        self.executions[pid < self.ar] += 1

    def end(self, pid: int, now: float) -> None:
        hi = self.hi.get(pid)
        if hi is not None and now > hi:
            self.hi[pid] = now

    def close(self) -> None:
        for pid, lo in self.lo.items():
            self._bill(pid, lo, self.hi[pid])
        self.lo.clear()
        self.hi.clear()


class FlexStation(PodIdentity, ContainerStation):
    """A Flex Consumption app's HTTP scale group as a service of a system."""

    kind = "azure_flex"
    hold_at_zero = True  # the front end holds a request until an instance is ready

    def __init__(self, sys: Any, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec, rng, kubernetes_view(spec))
        self._init_identity()
        self.free = [0]
        for _ in range(self.pods):  # the always-ready instances, ready at time 0
            self._new_pod(self.conc)
        self.need = WindowMax(spec.idle_timeout)
        self.meter = LiveActivityMeter(spec.always_ready, sys.end)
        # the 230 s HTTP limit (learn.microsoft.com/azure/azure-functions/functions-scale,
        # "Timeout": the Azure Load Balancer's idle timeout; the kernel's request_timeout)
        self.response_limit = self.pending_limit = spec.request_timeout
        self.pending_outcome = TIMED_OUT  # held in the front end to it: out of the queue
        self.general = self.response_limit is not None

    def acquire(self, proc: Proc, now: float, hold: bool = False) -> Any:
        self._m(now)
        got = PodIdentity.acquire(self, proc, now, hold)
        if got is None:
            self._pend(proc, now)
        return got

    def release(self, slot: int, now: float) -> None:
        self._m(now)
        self.meter.end(slot, now)
        PodIdentity.release(self, slot, now)

    def _begin(self, pid: int, now: float) -> None:
        self.meter.begin(pid, now, self.held[pid] - 1)

    def control(self, env: simpy.Environment) -> None:
        env.process(every(env, self.spec.scale_period, self.tick))

    def tick(self, now: float) -> None:
        """The scale controller (sim.platforms.azure_flex `_scale_controller`)."""
        demand = self.busy + len(self.waiting[0])
        n, why = scale_rule(self.spec, demand, self.conc, self.need.push, now)
        if n != self.replicas:
            self.scale_to(n, now, "azure_flex", f"scale controller: {why}")

    def own_bill(self, end: float, month_s: float | None) -> Bill:
        m = self.meter
        for pid, n in self.held.items():  # executions still in flight: active to the end
            if n:
                m.end(pid, end)
        m.close()
        s = self.spec
        usage = AzureFlexUsage(
            window_s=end,
            memory_mb=float(s.instance_memory),
            always_ready=s.always_ready,
            on_demand_active_s=m.active[0],
            always_ready_active_s=m.active[1],
            on_demand_executions=m.executions[0],
            always_ready_executions=m.executions[1],
        )
        # ops lines: once per placement and platform, by SystemModel._operating
        return azure_flex_bill(usage, month_s=month_s)


STATIONS.update(azure_flex=FlexStation)
