"""Serverless containers (Cloud Run, Container Apps): the Kubernetes kernel without nodes.

Both are "instances with N concurrent slots, scale to zero, an autoscaler, billing per instance
second". The Kubernetes model already simulates pods with per-pod slots, queues, routing, startup
and KEDA; a serverless container platform is that model run on a `kubernetes_view()` of its spec
(cluster mode autopilot: no nodes, a pod starts once scheduled) plus what the bills need and the
Kubernetes kernel does not meter:
- busy periods per instance: the union of [start, end of work] of the requests each instance served
  (taken from the rows the kernel flushes, so the hot loop is untouched), and each instance's
  startup [scheduled, ready];
- the ready-instance count over time (from `_ready_change`, a control-plane event).
Scale-in picks idle instances first (`_victims`): a serverless platform sees which instances
serve requests, unlike a ReplicaSet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sim.platforms.base import RunContext
from sim.platforms.kubernetes import PENDING, STARTING, KubernetesModel
from sim.platforms.slots import merge_periods
from sim.pricing.tables import Bill

_COMPACT_ROWS = 1 << 21  # merge the stored busy periods when this many pile up


def active_steps(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint-per-instance periods -> (times, count after each time) of instances active."""
    t = np.concatenate([start, end])
    d = np.concatenate([np.ones(start.size), -np.ones(end.size)])
    order = np.argsort(t, kind="stable")
    return t[order], np.cumsum(d[order])


def step_at(times: np.ndarray, values: np.ndarray, grid: np.ndarray, first: float) -> np.ndarray:
    """A right-continuous step function (value `values[i]` from `times[i]`) read at `grid`."""
    i = np.searchsorted(times, grid, side="right") - 1
    return np.where(i >= 0, values[np.maximum(i, 0)], first)


class ServerlessContainerModel(KubernetesModel):
    """Base of the serverless container kernels: `service` is the platform's own spec; a subclass
    sets `usage()`, its bill function and the spec key naming the billing mode."""

    bill_fn: Callable[..., Bill]
    mode_key: str

    def __init__(self, spec: Any, ctx: RunContext) -> None:
        self.service = spec
        super().__init__(spec.kubernetes_view(), ctx)
        self._busy: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._busy_n = 0
        self._ready_steps: list[tuple[float, int]] = []
        self._startups: list[tuple[float, float, int]] = []  # (scheduled, ready or end, pod)

    # -- meters ----------------------------------------------------------------------------------
    def _rows(
        self,
        a: np.ndarray,
        start: np.ndarray,
        dur: np.ndarray,
        pid: np.ndarray,
        cold: np.ndarray,
        over: np.ndarray,
    ) -> dict[str, np.ndarray]:
        # Every request that started on an instance passes here once (at flush): its instance is
        # busy from its start to the end of its work (past a client timeout, the work goes on).
        self._busy.append((start.copy(), start + dur, pid.copy()))
        self._busy_n += start.size
        if self._busy_n >= _COMPACT_ROWS:
            self._busy = [merge_periods(*self._raw())]
            self._busy_n = self._busy[0][0].size
        return super()._rows(a, start, dur, pid, cold, over)

    def _raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every served request's (start, end of work, instance), as stored (merged in part)."""
        if not self._busy:
            e = np.empty(0)
            return e, e, np.empty(0, dtype=np.int64)
        s, e, k = (np.concatenate(c) for c in zip(*self._busy, strict=True))
        return s, e, k

    def _pod_ready(self, pid: int) -> None:
        if self.state[pid] == STARTING:  # its start-up, from scheduling to ready
            self._startups.append((self.scheduled_at[pid], self.env.now, pid))
        super()._pod_ready(pid)

    def _ready_change(self, now: float, delta: int) -> None:
        super()._ready_change(now, delta)
        if delta:
            self._ready_steps.append((now, self.nready))
        elif now >= self.horizon:  # the run's end (kernel and reference alike): still starting
            self._startups += [(self.scheduled_at[p], now, p) for p in self.starting]

    def busy_periods(self, *, startup: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per instance, the merged periods with >= 1 request in service (and, with `startup`,
        its start-up from scheduling to ready), clipped to the window [0, horizon]."""
        s, e, k = self._raw()
        if startup and self._startups:
            xs, xe, xk = (np.asarray(c) for c in zip(*self._startups, strict=True))
            s, e, k = np.concatenate([s, xs]), np.concatenate([e, xe]), np.concatenate([k, xk])
        s, e, k = merge_periods(s, e, k)
        s, e = np.clip(s, 0.0, self.horizon), np.clip(e, 0.0, self.horizon)
        keep = e > s
        return s[keep], e[keep], k[keep]

    def ready_steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, ready instances from each time), the count at time 0 first."""
        t = [0.0] + [x for x, _ in self._ready_steps]
        n = [float(self.n_initial)] + [float(v) for _, v in self._ready_steps]
        return np.asarray(t), np.asarray(n)

    # -- scale-in --------------------------------------------------------------------------------
    def _victims(self, k: int, now: float) -> list[int]:
        """Instances to stop: not yet started ones, then idle ready ones (the one ready longest
        first), then the least loaded. ASSUMPTION: the platform stops idle instances, as both
        document ("Cloud Run removes instances that are not processing requests"; an ACA replica
        is removed once the scale rule asks for fewer)."""

        def rank(pid: int) -> tuple[int, float, int]:
            st = self.state[pid]
            if st == PENDING:
                return (0, 0.0, pid)
            if st == STARTING:
                return (1, 0.0, pid)
            load = self.inflight[pid] + (len(self.pod_queue[pid]) if self.pp else 0)
            return (2 if load == 0 else 3 + load, self.ready_at[pid], pid)

        pods = [*self.pending, *self.starting, *self.ready_order]
        return sorted(pods, key=rank)[:k]

    def bill(self) -> Bill:
        s = self.service
        return type(self).bill_fn(
            self.usage(),
            getattr(s, self.mode_key),
            free_tier=s.free_tier,
            month_s=self.ctx.month_s,
            ops=s.ops,
            ops_profile=s.ops_profile,
        )


def ceil_div(x: float, y: float) -> int:
    """ceil(x / y) with a relative tolerance, so 0.6 * 10 / 6 is 1, not 2."""
    return max(0, math.ceil(x / y - 1e-9))
