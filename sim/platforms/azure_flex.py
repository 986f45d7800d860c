"""Azure Functions Flex Consumption (`type: azure_flex`): the HTTP scale group of a function app.

Runs on the Kubernetes kernel (sim.platforms.slots): a pod is a Flex instance with
`perInstanceConcurrency` slots; requests wait in one FIFO in front of the instances (the front end
holds them) and go to the instance with the fewest executions in flight (ASSUMPTION: Microsoft does
not document the front end's balancing). With no ready instance a request waits for a cold start
(`cold`). An instance's CPU share is instance_memory / 2048 MB, at most 1 core (ASSUMPTION from
"CPUs and network bandwidth are provided proportional to a specific instance size").

Scale controller (every `scale_period`, 1 s): the HTTP group needs ceil(executions in flight or
waiting / perInstanceConcurrency) instances ("new instances are allocated based on the HTTP
concurrency configured for your app": techcommunity.microsoft.com, 2024-06-17), at least
`always_ready`, at most `max_instances`; added at once (no per-step cap is published), each
starting after `cold_start`; the count drops only after the need stayed lower for `idle_timeout`
(scale in and to zero; the always-ready instances, the oldest, stay). Per-function scaling: every
HTTP function of the app is one group (a trace's functions all land here); blob and durable groups
and other triggers are not modelled.

Billing meter: an instance is active while at least one execution is in flight. Each activity
period is billed at least 1,000 ms and rounded up to the next 100 ms (flex-consumption-plan
#billing). ASSUMPTION on how the minimum combines with back-to-back executions: an execution keeps
its instance billed for max(its duration, 1 s) from its start and overlapping billed spans merge
into one period (so a busy instance is never billed more than its wall time). The meter reads the
rows the kernel hands to the recorder (start, instance-busy seconds, instance), so the hot loop is
untouched. The always-ready instances are the initial pods (ids < always_ready). What is billed
is what ran in the window: activity periods clipped at its end, executions started before it
(the kernel runs queued work on after the window; those executions are not billed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.platforms.azure_flex_spec import AzureFlexSpec
from sim.platforms.base import RunContext
from sim.platforms.kubernetes_spec import KubernetesSpec
from sim.platforms.slots import SlotsModel, WindowMax, merge_periods
from sim.pricing.azure_flex import AzureFlexUsage, azure_flex_bill
from sim.pricing.tables import price


def kubernetes_view(spec: AzureFlexSpec) -> KubernetesSpec:
    """The app as the Kubernetes kernel runs it: an instance is a pod with
    perInstanceConcurrency slots, one FIFO in front (also a system's Flex station's)."""
    return KubernetesSpec.model_validate(
        {
            "name": spec.name,
            "type": "kubernetes",
            "replicas": spec.always_ready,
            "pod": {
                "concurrency": spec.http_concurrency,
                "cpu": min(spec.instance_memory / 2048.0, 1.0),
                "memory": float(spec.instance_memory),
                "startup": spec.cold_start,
            },
            "routing": "ideal_fifo",
            "request_timeout": spec.request_timeout,
            "queue_limit": spec.queue_limit,
            "ingress_latency": spec.ingress_latency,
            "cluster": {"mode": "autopilot"},
            "load_balancer": "none",
        }
    )


def scale_rule(
    own: AzureFlexSpec, d: int, conc: int, push: Callable[[float, int], int], now: float
) -> tuple[int, str]:
    """The scale controller's instance count for `d` executions in flight or waiting (`push`:
    the idle_timeout hold, WindowMax.push) and why."""
    want = -(-d // conc)
    keep = push(now, want)
    n = min(max(keep, own.always_ready), own.max_instances)
    why = f"{d} executions in flight or waiting / concurrency {conc} -> {want} instances"
    if keep > want:
        why += f"; {keep} needed within idle_timeout {own.idle_timeout:g}s"
    if n != max(keep, own.always_ready):
        why += f"; max_instances {own.max_instances}"
    elif n > keep:
        why += f"; always_ready {own.always_ready}"
    return n, why


class ActivityMeter:
    """Billed activity seconds per class of instance (0: on demand, 1: always ready).

    `add` takes executions (start, instance-busy end, instance id) in any order within one flush;
    flushes come in time order (every start of a later flush is >= every start of an earlier
    one), so each instance's last period stays open until a later start cannot join it."""

    def __init__(self, always_ready: int, horizon: float) -> None:
        self.ar = always_ready
        self.horizon = horizon
        self.min_s = price("azure_flex.minimum_period_s").rate
        self.inc = price("azure_flex.period_increment_s").rate
        self.active = [0.0, 0.0]
        self.executions = [0, 0]
        self._open: dict[int, tuple[float, float]] = {}
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, start: np.ndarray, end: np.ndarray, pid: np.ndarray) -> None:
        if start.size:
            self._parts.append((start, np.maximum(end, start + self.min_s), pid))

    def _billed(self, lo: np.ndarray | float, hi: np.ndarray | float) -> Any:
        d = np.minimum(hi, self.horizon) - lo
        return np.where(d > 0, np.ceil(d / self.inc - 1e-9) * self.inc, 0.0)

    def _bill(self, pid: int, lo: float, hi: float) -> None:
        self.active[pid < self.ar] += float(self._billed(lo, hi))

    def settle(self) -> None:
        """Merge what `add` collected into periods; bill every period that is closed."""
        if not self._parts:
            return
        s = np.concatenate([p[0] for p in self._parts])
        e = np.concatenate([p[1] for p in self._parts])
        p = np.concatenate([p[2] for p in self._parts])
        self._parts.clear()
        # executions billed: those started in the window (one still running at its end too),
        # not those the kernel runs after it (as Lambda bills invocations; docs/model.md 18.7)
        inside = s < self.horizon
        ar = p < self.ar
        self.executions[1] += int((ar & inside).sum())
        self.executions[0] += int((~ar & inside).sum())
        lo, hi, who = merge_periods(s, e, p)  # disjoint periods per instance, by (instance, start)
        first = np.ones(lo.size, dtype=bool)
        first[1:] = who[1:] != who[:-1]
        last = np.r_[first[1:], True]
        mid = ~first & ~last
        if mid.any():
            billed = self._billed(lo[mid], hi[mid])
            is_ar = who[mid] < self.ar
            self.active[1] += float(billed[is_ar].sum())
            self.active[0] += float(billed[~is_ar].sum())
        for j in np.flatnonzero(first | last):
            pid, a, b = int(who[j]), float(lo[j]), float(hi[j])
            if first[j]:
                prev = self._open.pop(pid, None)
                if prev is not None:
                    if a <= prev[1]:
                        a, b = prev[0], max(b, prev[1])
                    else:
                        self._bill(pid, *prev)
            if last[j]:
                self._open[pid] = (a, b)
            else:
                self._bill(pid, a, b)

    def close(self) -> None:
        self.settle()
        for pid, (a, b) in self._open.items():
            self._bill(pid, a, b)
        self._open.clear()


class AzureFlexModel(SlotsModel):
    own: AzureFlexSpec

    def __init__(self, spec: AzureFlexSpec, ctx: RunContext) -> None:
        kspec = kubernetes_view(spec)
        super().__init__(spec, kspec, ctx)
        self.meter = ActivityMeter(spec.always_ready, ctx.duration)

    def start(self) -> None:
        super().start()
        self.need = WindowMax(self.own.idle_timeout)
        self._periodic(self.own.scale_period, self._scale_controller)

    def _scale_controller(self, now: float) -> None:
        self._catch_up(now)
        n, why = scale_rule(self.own, self.demand(), self.conc, self.need.push, now)
        if n != self.replicas:
            self._scale_to(n, "azure_flex", f"scale controller: {why}")

    # -- billing meter: the rows of started executions -------------------------------------------
    def _rows(
        self,
        a: np.ndarray,
        start: np.ndarray,
        dur: np.ndarray,
        pid: np.ndarray,
        cold: np.ndarray,
        over: np.ndarray,
    ) -> dict[str, np.ndarray]:
        self.meter.add(start, start + dur, pid)
        return super()._rows(a, start, dur, pid, cold, over)

    def flush(self) -> None:
        super().flush()
        self.meter.settle()

    def finish(self) -> None:
        super().finish()
        self.meter.close()

    def usage(self) -> AzureFlexUsage:  # type: ignore[override]
        m = self.meter
        return AzureFlexUsage(
            window_s=self.horizon,
            memory_mb=float(self.own.instance_memory),
            always_ready=self.own.always_ready,
            on_demand_active_s=m.active[0],
            always_ready_active_s=m.active[1],
            on_demand_executions=m.executions[0],
            always_ready_executions=m.executions[1],
        )

    def bill(self) -> Any:
        return azure_flex_bill(
            self.usage(),
            month_s=self.ctx.month_s,
            ops=self.own.ops,
            ops_profile=self.own.ops_profile,
        )
