"""The array path of Lambda's plain loop (sim/platforms/lambda_vector.py, docs/model.md §19.8):
a small case worked by hand, then against the Python loop it replaces (VECTOR off) request by
request, on the cases where blocks are cut by rare arrivals (cold starts, reclaims, recycling
at the lifetime cap, timeouts, throttles, completions at one instant), with blocks as short as
one arrival. The reference-model tests (tests/test_equivalence.py) run it too: it is on by
default."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lambda_plain import RARE as CASES
from test_lambda_plain import _scenario, _simfaas, assert_same_runs, random_plain_scenarios

from sim import defaults
from sim.engine import run_one
from sim.platforms import lambda_ as L
from sim.platforms.lambda_vector import warm_block

from conftest import ROOT, make_scenario


@pytest.fixture(autouse=True)
def _keep_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "REQUESTS_CSV_MAX_ROWS", 10**9)


def test_warm_block_by_hand() -> None:
    """Pool (bottom first) env 7 (expires 100) and env 8 (expires 90); env 9 busy until 2.0.
    Arrivals at 1, 3, 4 and 5 s, each 1.5 s long. At 1 s: the top, env 8 (ends 2.5). At 3 s:
    env 9 (freed at 2.0) and env 8 (at 2.5) went on the stack in that order, so the top is 8
    (ends 4.5). At 4 s: env 9 (ends 5.5). At 5 s: env 8 again (freed at 4.5; ends 6.5). Left:
    the pool 7, then nothing else (9 is busy until 5.5, 8 until 6.5)."""
    busy = [(2.0, 9, 0, 0)]
    pool = deque([(100.0, 7), (90.0, 8)])
    a = np.array([1.0, 3.0, 4.0, 5.0])
    m, envs, after, left = warm_block(a, np.full(4, 1.5), 900.0, 1000, 60.0, busy, pool, None)
    assert (m, envs) == (4, [8, 8, 9, 8])
    assert sorted(after) == [(5.5, 9, 0, 0), (6.5, 8, 0, 0)]
    assert left == [(100.0, 7)]
    assert busy == [(2.0, 9, 0, 0)] and list(pool) == [(100.0, 7), (90.0, 8)]  # unchanged


def test_warm_block_stops_at_each_rare_arrival() -> None:
    """The first arrival that needs the general steps ends the block, nothing after it is
    taken: a cold start (pool empty), an expired top, a throttle, a timeout, a recycle at the
    lifetime cap, two completions at one instant."""
    d = np.full(3, 1.0)
    a = np.array([1.0, 1.2, 5.0])

    def run(pool: list, busy: list | None = None, **kw: Any) -> tuple[int, list[int]]:
        args = {"timeout": 900.0, "limit": 1000, "ka": 60.0, "death": None, "dur": d} | kw
        m, envs, _, _ = warm_block(
            a, args["dur"], args["timeout"], args["limit"], args["ka"], busy or [],
            deque(pool), args["death"],
        )  # fmt: skip
        return m, envs

    assert run([(90.0, 1)]) == (1, [1])  # arrival 1.2: env 1 busy until 2.0, pool empty
    assert run([(1.1, 1), (90.0, 2)]) == (1, [2])  # 1.2: the top, env 1, expired at 1.1
    assert run([(90.0, 1), (90.0, 2)], limit=1) == (1, [2])  # 1.2: one busy = the limit
    assert run([(90.0, 1), (90.0, 2)], dur=np.array([1.0, 901.0, 1.0])) == (1, [2])
    # env 2 freed at 2.0 and recycled at 1.5: arrival 5.0 must take the general steps
    death = {1: 1e9, 2: 1.5}
    assert run([(90.0, 1), (90.0, 2)], death=death) == (2, [2, 1])
    ties = [(2.0, 3, 0, 0), (2.0, 4, 0, 0)]
    assert run([(90.0, 1), (90.0, 2)], busy=ties) == (2, [2, 1])


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows each warm_block call took (the model's module-level name)."""
    taken: list[int] = []

    def counted(*args: Any) -> Any:
        out = warm_block(*args)
        taken.append(out[0])
        return out

    monkeypatch.setattr(L, "warm_block", counted)
    return taken


def _run(sc: Any, vector: bool, monkeypatch: pytest.MonkeyPatch, block: int) -> Any:
    with monkeypatch.context() as m:
        m.setenv("SIM_KERNEL", "python")
        m.setattr(L, "VECTOR", vector)
        m.setattr(L, "VECTOR_MIN", 1)
        m.setattr(L, "VECTOR_AFTER", 1)
        m.setattr(L, "VECTOR_BLOCK", block)
        return run_one(sc, sc.platforms[0].name, 0, ROOT)


def assert_identical(
    sc: Any, monkeypatch: pytest.MonkeyPatch, block: int = 2048, ran: bool = True
) -> None:
    """`ran`: the array path must have taken some arrivals (not where every one is rare)."""
    taken = _counting(monkeypatch)
    slow = _run(sc, False, monkeypatch, block)
    assert not taken
    fast = _run(sc, True, monkeypatch, block)
    assert sum(taken) > 0 or not ran
    assert_same_runs(fast, slow)


@pytest.mark.parametrize(
    ("name", "block"),
    [(name, 2048) for name in CASES] + [("lifetime", 1), ("timeouts", 7), ("concurrency", 3)],
)
def test_array_path_equals_python_loop(
    name: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of 2048 (the default), and as short as one arrival."""
    assert_identical(_scenario(CASES[name]), monkeypatch, block)


def test_array_path_equals_python_loop_on_simfaas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three hours of SimFaaS's scenario (10 req/s, 600 s keep-alive, 2 h lifetime cap)."""
    assert_identical(_simfaas("3h", "10m"), monkeypatch)


def test_array_path_with_equal_completion_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """A constant handler time on a 10 ms arrival grid (completions at arrival instants) plus
    batches of 5 at one instant (completions at one instant: their order is the environments'
    ids, which the array path leaves to the loop)."""
    sc = make_scenario(
        {
            "name": "grid",
            "duration": "20m",
            "replications": 1,
            "seed": 3,
            "workload": {
                "arrivals": [
                    {"steady": {"rate": "100/s", "spacing": "uniform"}},
                    {"batch": {"every": "7s", "size": 5, "spread": "0s"}},
                ],
                "service": {"duration": {"dist": "constant", "value": "0.25s"}, "cpu_bound": 0},
            },
            "platforms": [{"name": "fn", "type": "lambda", "keep_alive": "20s"}],
        }
    )
    assert_identical(sc, monkeypatch)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=random_plain_scenarios(), block=st.sampled_from([1, 3, 64, 2048]))
def test_random_plain_scenarios_array_path_equals_python(sc: Any, block: int) -> None:
    with pytest.MonkeyPatch.context() as m:
        assert_identical(sc, m, block, ran=False)
