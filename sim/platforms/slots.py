"""Shared mechanics of the provider-scaled "instances with N concurrent slots" platforms.

Azure Functions Flex Consumption (sim.platforms.azure_flex) and Lambda Managed Instances
(sim.platforms.lambda_managed) run on the Kubernetes kernel (sim.platforms.kubernetes): its pods
are their instances / execution environments, its data plane (one FIFO in front of the slots, a
freed slot takes its head, a new request goes to the instance with the fewest in flight) and its
pod and node life cycles are theirs. What differs is the controller that sets the count: each
subclass builds a fixed-replica KubernetesSpec from its own spec and runs its own periodic loop,
which calls `_scale_to` like the HPA does.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from sim.platforms.base import RunContext
from sim.platforms.kubernetes import KubernetesModel
from sim.platforms.kubernetes_spec import KubernetesSpec


def merge_periods(
    start: np.ndarray, end: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of [start, end) intervals per key, as disjoint (start, end, key), sorted by key
    then start. Intervals that touch (end == next start) merge into one period."""
    if not start.size:
        return start, end, key
    order = np.lexsort((start, key))
    s, e, k = start[order], end[order], key[order]
    # A running max of the ends within each key: lift each key's group above the previous one
    # (by its rank, not its value, and from the earliest start, to keep float64 precision).
    group = np.zeros(s.size)
    group[1:] = np.cumsum(k[1:] != k[:-1])
    base = float(s.min())
    off = group * (float(max(e.max(), s.max())) - base + 1.0) - base
    reach = np.maximum.accumulate(e + off)
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    new[1:] = (s[1:] + off[1:]) > reach[:-1]
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx), k[idx]


class WindowMax:
    """The largest value pushed in the last `window` seconds (a monotone deque: O(1) amortised),
    for scale-in delays: a count drops only after the need has stayed below it that long."""

    __slots__ = ("_q", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._q: deque[tuple[float, int]] = deque()

    def push(self, t: float, value: int) -> int:
        q = self._q
        while q and q[-1][1] <= value:
            q.pop()
        q.append((t, value))
        while q[0][0] < t - self.window - 1e-9:
            q.popleft()
        return q[0][1]


class SlotsModel(KubernetesModel):
    """A KubernetesModel with fixed replicas whose count a subclass's controller changes."""

    def __init__(self, own: Any, kspec: KubernetesSpec, ctx: RunContext) -> None:
        super().__init__(kspec, ctx)
        self.own = own  # the platform's own spec (self.spec is the Kubernetes one built from it)

    def demand(self) -> int:
        """Requests in service + waiting, now (the data plane caught up)."""
        return len(self.heap) + self.waiting()
