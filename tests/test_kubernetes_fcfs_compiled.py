"""tests/test_kubernetes_fcfs.py again with the per-pod FCFS loop compiled
(sim/platforms/kubernetes_kernel.py, SIM_KERNEL=compiled): the same rows in the same order, bit
for bit, as the event loop."""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

from test_kubernetes_fcfs import (  # noqa: F401  (collected here with the kernel on)
    _assert_same,
    _fixed,
    _run,
    _scenario,
    test_fcfs_crosses_the_arrival_chunks,
    test_fcfs_keeps_its_slots_across_intervals,
    test_fcfs_writes_what_the_event_loop_writes,
)

from sim.dev import bench
from sim.platforms.kubernetes import KubernetesModel


@pytest.fixture(autouse=True)
def _compiled(monkeypatch):
    monkeypatch.setenv("SIM_KERNEL", "compiled")
    init = KubernetesModel.__init__

    def check(self, spec, ctx):  # the kernel is on wherever the FCFS path is
        init(self, spec, ctx)
        assert (self._kernel is not None) == self.fcfs

    monkeypatch.setattr(KubernetesModel, "__init__", check)


@pytest.mark.parametrize("routing", ["round_robin", "random"])
def test_compiled_keeps_the_pod_queues_as_arrays(routing, monkeypatch):
    """The compiled loop keeps the pod queues in arrays across intervals (`_fc_q`, written back
    to the pods' deques by `_settle`): queues kept from one interval to the next, rows compacted
    when a queue's tail nears the end of its row, and a 20 s timeout that the control events'
    purge finds in the arrays; the same rows, decisions and timeline as the event loop."""
    data = _scenario(_fixed(7, "20s", routing), "3h")
    seen = {"kept": 0, "compacted": 0}
    real_run, real_build = KubernetesModel._fcfs_compiled, KubernetesModel._queues_to_arrays

    def run(self, slots, until, k, draws):
        seen["kept"] += self._fc_q is not None
        return real_run(self, slots, until, k, draws)

    def build(self, n):
        seen["compacted"] += self._fc_q is not None
        return real_build(self, n)

    monkeypatch.setattr(KubernetesModel, "_fcfs_compiled", run)
    monkeypatch.setattr(KubernetesModel, "_queues_to_arrays", build)
    fast, used = _run(data, True, monkeypatch)
    slow, _ = _run(data, False, monkeypatch)
    assert used >= 100 and seen["kept"] >= 100 and seen["compacted"] >= 1, seen
    assert fast.stats.outcomes.get("timed_out", 0) > 0
    _assert_same(fast, slow)


def test_compiled_in_service_figures_are_the_slots(monkeypatch):
    """The compiled loop returns, at the end of each interval, how many slot ends are >= until
    and the sum of their end - until (`_fc_in`), which `_record` and `_in_service` read instead
    of the slots: at every read they equal the definition, counted and summed (Python's `sum`, pod
    order) from the slot array itself; the month case's KEDA from zero, and a fixed deployment
    near saturation with a 20 s timeout."""
    reads = [0]
    real = KubernetesModel._fc_rest

    def check(self, now):
        got = real(self, now)
        if self._fc_in[0] == self._fc_t == now:
            reads[0] += 1
            slots = self._fc_slots.tolist()
            ends = [e - now for row in slots for e in row if e >= now]
            assert got == (len(ends), sum(ends))
            assert self._in_service() == len(ends)
        return got

    monkeypatch.setattr(KubernetesModel, "_fc_rest", check)
    for platform in (bench.CASES["kubernetes-keda-50M"]["platform"], _fixed(7, "20s", "random")):
        _run(_scenario(platform, "1h"), True, monkeypatch)
    assert reads[0] >= 200
