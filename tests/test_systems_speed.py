"""The systems engine's fast paths hold the semantics they replace (sim.systems.engine):
client timeouts of one value share one heap entry (_Timeouts), and a synchronous call runs in
its caller's process. Hand-computed times, in the heap engine and the per-request reference."""

from __future__ import annotations

import numpy as np
from test_systems import ROOT, _k8s, _system

from sim.engine import run_one
from sim.records import OK, TIMED_OUT
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario


def test_interleaved_timeouts_expire_at_their_own_deadline() -> None:
    """Every order does 10 ms of work, calls `fast` (5 ms, timeout 1 s: answered, its timer
    dropped), then `slow` (1 s, timeout 50 ms, no retry: timed out at its own deadline), or, every
    other request by the draw of `probability`, `slow` with a 2 s timeout (answered at 1 s). So
    a request ends at exactly arrival + 10 + 5 + 50 ms (timed out) or + 1,015 ms (ok), while
    many timers of both values are pending at once."""
    services = [
        {
            "name": "orders",
            "entry": 1,
            "handler": "10ms",
            "steps": [
                {"work": 1.0},
                {"call": "fast", "timeout": "1s"},
                {
                    "one_of": [
                        {"call": "slow", "probability": 0.5, "timeout": "50ms", "retries": 0},
                        {"call": "slow", "probability": 0.5, "timeout": "2s", "retries": 0},
                    ]
                },
            ],
        },
        {"name": "fast", "handler": "5ms"},
        {"name": "slow", "handler": "1s"},
    ]
    data = _system(
        services,
        [_k8s("eks", 20, concurrency=10)],  # 200 slots: nobody queues
        {"p": {"orders": "eks", "fast": "eks", "slow": "eks"}},
        rate="50/s",
        duration="60s",
        replications=1,
        warmup=0,
    )
    sc = make_scenario(data)
    for models in (None, {"system": ReferenceSystem}):
        run = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models=models)
        rows = run.stats.sample
        took = rows["end"] - rows["arrival"]
        out = rows["outcome"]
        late = rows["arrival"] > 60 - 2.5  # still waiting at the end: not answered yet
        timed = out == TIMED_OUT
        assert timed.sum() > 1000 and (out == OK).sum() > 1000
        np.testing.assert_allclose(took[timed], 0.065, rtol=0, atol=1e-9)
        np.testing.assert_allclose(took[(out == OK) & ~late], 1.015, rtol=0, atol=1e-9)
        assert set(np.unique(out)) == {OK, TIMED_OUT}
