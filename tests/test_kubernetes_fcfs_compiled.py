"""tests/test_kubernetes_fcfs.py again with the per-pod FCFS loop compiled
(sim/platforms/kubernetes_kernel.py, SIM_KERNEL=compiled): the same rows in the same order, bit
for bit, as the event loop."""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

from test_kubernetes_fcfs import (  # noqa: F401  (collected here with the kernel on)
    test_fcfs_keeps_its_slots_across_intervals,
    test_fcfs_writes_what_the_event_loop_writes,
)

from sim.platforms.kubernetes import KubernetesModel


@pytest.fixture(autouse=True)
def _compiled(monkeypatch):
    monkeypatch.setenv("SIM_KERNEL", "compiled")
    init = KubernetesModel.__init__

    def check(self, spec, ctx):  # the kernel is on wherever the FCFS path is
        init(self, spec, ctx)
        assert (self._kernel is not None) == self.fcfs

    monkeypatch.setattr(KubernetesModel, "__init__", check)
