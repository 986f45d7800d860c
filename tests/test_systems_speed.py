"""The systems engine's fast paths hold the semantics they replace (sim.systems.engine):
client timeouts of one value share one heap entry (_Timeouts), and a synchronous call runs in
its caller's process. Hand-computed times, in the heap engine and the per-request reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_systems import ROOT, _k8s, _lambda, _system
from test_systems_equivalence import systems

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


def _fanout(probability: float) -> dict:
    """orders: work, a call, a parallel fan-out, an SQS publish, an event, work; `probability`
    on the event (1: a tree that draws handler times only)."""
    services = [
        {
            "name": "orders",
            "entry": 1,
            "handler": {"dist": "lognormal", "median": "15ms", "p99": "80ms"},
            "steps": [
                {"work": 0.25},
                {"call": "payments", "timeout": "3s"},
                {"parallel": [{"call": "stock"}, {"call": "fraud"}]},
                {"publish": "email-jobs"},
                {"publish": "audit", "probability": probability},
                {"work": 0.75},
            ],
        },
        {"name": "payments", "handler": {"dist": "lognormal", "median": "25ms", "p99": "150ms"}},
        {"name": "stock", "handler": {"dist": "exponential", "mean": "5ms"}},
        {"name": "fraud", "handler": {"dist": "lognormal", "median": "8ms", "p99": "40ms"}},
        {"name": "emails", "handler": {"dist": "lognormal", "median": "40ms", "p99": "200ms"}},
        {"name": "audit", "handler": "2ms"},
    ]
    names = [s["name"] for s in services]
    data = _system(
        services,
        [_k8s("eks", 4, concurrency=8, routing="round_robin")],
        {"p": dict.fromkeys(names, "eks")},
        rate="40/s",
        duration="300s",
        replications=1,
        warmup=0,
    )
    data["queues"] = [{"name": "email-jobs", "consumer": "emails"}]
    return data


def test_batched_entry_plans_are_the_per_request_draws() -> None:
    """Entry plans drawn 32 at a time (SystemModel._plans) hold the very draws of plan() one
    request at a time: every row of every service identical, bit for bit; a tree with a
    probability is not batched."""
    import sim.systems.engine as E

    drawn: list[int] = []

    class Spy(E.SystemModel):  # (a subclass: a compiled SystemModel's methods are fixed)
        def _plans(self, i: int, n: int) -> Any:
            drawn.append(n)
            return super()._plans(i, n)

    class OneByOne(E.SystemModel):
        def _static(self, i: int, seen: Any) -> bool:
            return False

    for probability, batched in ((1.0, True), (0.5, False)):
        sc = make_scenario(_fanout(probability))
        drawn.clear()
        fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": Spy})
        assert bool(drawn) is batched
        slow = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": OneByOne})
        assert fast.stats.requests_all > 10_000
        for k, col in slow.stats.sample.items():
            np.testing.assert_array_equal(fast.stats.sample[k], col, err_msg=k)
        for name, svc in slow.extra["system"]["services"].items():
            assert fast.extra["system"]["services"][name] == svc, name


def test_draw_buffer_take_is_next_n_times() -> None:
    """DrawBuffer.take(n) across refills: the values n calls of next() return, then next()
    goes on where they would."""
    from sim.distributions import Exponential
    from sim.platforms.base import DrawBuffer

    dist = Exponential(dist="exponential", mean=1.0)
    one, many = (DrawBuffer(dist, np.random.default_rng(5), n=7) for _ in range(2))
    want = [one.next() for _ in range(40)]
    got = many.take(3) + many.take(0) + many.take(15) + [many.next()] + many.take(21)
    assert got == want
    assert many.next() == one.next()


def test_station_log_columns() -> None:
    """A station's flat rows become the RequestLog columns: service = end - start, no
    overhead, cold / outcome / instance in their dtypes (hand-written rows); then rows past the
    compiled buffer's first size (8,192 values) after a take, so a broken growth copy or a stale
    row from before the take shows."""
    from sim.systems.engine import StationLog

    log = StationLog()
    log.add(1.0, 1.5, 2.25, 0.5, 0.125, True, 3, 7)
    log.add(2.0, 2.0, 2.0, 0.0, 0.0, False, 0, 0)
    assert len(log) == 2
    assert log.last_row() == (2.0, 2.0, 2.0, 0.0, 0.0, False, 0, 0)
    out = log.take()
    assert len(log) == 0
    assert out["service"].tolist() == [0.75, 0.0] and out["overhead"].tolist() == [0.0, 0.0]
    assert out["wait"].tolist() == [0.5, 0.0] and out["startup"].tolist() == [0.125, 0.0]
    assert out["cold"].dtype == np.bool_ and out["cold"].tolist() == [True, False]
    assert out["outcome"].dtype == np.uint8 and out["outcome"].tolist() == [3, 0]
    assert out["instance"].dtype == np.int64 and out["instance"].tolist() == [7, 0]
    n = 5000  # 40,000 values: the buffer doubles three times
    for k in range(n):
        log.add(k + 0.5, k + 1.0, k + 3.0, 0.5, 0.0, k % 2 == 0, k % 4, k)
    assert len(log) == n
    out = log.take()
    assert out["arrival"].tolist() == [k + 0.5 for k in range(n)]
    assert out["service"].tolist() == [2.0] * n
    assert out["cold"].tolist() == [k % 2 == 0 for k in range(n)]
    assert out["outcome"].tolist() == [k % 4 for k in range(n)]
    assert out["instance"].tolist() == list(range(n))


def test_event_heap_order() -> None:
    """The engine's event heap pops what heapq pops, in the same order, tie on time broken by
    seq (many equal times: a broken seq comparison in the compiled sift shows), through growth
    past its first size (64) and down to empty; top() is the next time, INF when empty."""
    import heapq
    import random

    from sim.systems.engine import INF, EventHeap

    heap, ref = EventHeap(), []
    rng = random.Random(7)
    got, want = [], []
    for seq in range(20_000):
        if rng.random() < 0.55 or not ref:
            item = (float(rng.randint(0, 40)), seq, None, seq)
            heap.push(item)
            heapq.heappush(ref, item)
        else:
            got.append(heap.pop())
            want.append(heapq.heappop(ref))
        assert heap.top() == (ref[0][0] if ref else INF)
    while ref:
        got.append(heap.pop())
        want.append(heapq.heappop(ref))
    assert got == want and len(want) > 10_000
    assert len(heap) == 0 and heap.top() == INF


def _outputs(sc: Any, base: Any, fast: bool, model: Any = None) -> list[bytes]:
    """Every output of every placement (rows kept whole, summary figures, timelines, decisions,
    bills), pickled: the fused visit (SystemModel.fast) or the general path only. `model`: a
    subclass of SystemModel to run (a spy; the compiled class's attributes cannot be patched)."""
    import pickle

    import sim.systems.engine as E

    base_cls = model or E.SystemModel
    cls = base_cls if fast else type("General", (base_cls,), {"fast": False})
    out = []
    for pl in sc.placements:
        run = run_one(sc, pl.name, 0, base, keep_all_rows=True, models={"system": cls})
        what = (run.stats, run.extra, run.timeline, run.decisions, run.bill, run.instances)
        out.append(pickle.dumps((what, run.busy_mean)))
    return out


def _spy_inline() -> tuple[list[bool], Any]:
    """A SystemModel that records each _quick verdict (a callee run in its caller's process,
    or not), and the verdicts."""
    import sim.systems.engine as E

    seen: list[bool] = []

    class Spy(E.SystemModel):
        def _quick(self, *args: Any) -> bool:
            seen.append(super()._quick(*args))
            return seen[-1]

    return seen, Spy


def test_fused_visit_is_the_general_path_byte_for_byte() -> None:
    """The fused visit (callees in their caller's process, steps inline, the entry row written
    by the visit) against the general path (a process, an _Attempt and a timer per call): every
    output identical, bit for bit, on the fan-out system and on a chain whose callee is slow
    enough for some calls to time out (so both the inline and the detached callee occur)."""
    for data in (_fanout(1.0), _fanout(0.5)):
        sc = make_scenario(data)
        assert _outputs(sc, ROOT, True) == _outputs(sc, ROOT, False)
    services = [
        {"name": "orders", "entry": 1, "handler": "5ms", "steps": [{"call": "slow"}]},
        {
            "name": "slow",
            "handler": {"dist": "exponential", "mean": "40ms"},
            "steps": [{"work": 0.5}, {"work": 0.5}],
        },
    ]
    for call in ({"timeout": "60ms", "retries": 2}, {"timeout": "10s"}):
        services[0]["steps"] = [{"call": "slow", **call}]
        data = _system(
            services,
            [_k8s("eks", 1, concurrency=2)],  # two slots: callees queue too
            {"p": {"orders": "eks", "slow": "eks"}},
            rate="30/s",
            duration="120s",
            replications=1,
            warmup=0,
        )
        sc = make_scenario(data)
        seen, spy = _spy_inline()
        fast = _outputs(sc, ROOT, True, spy)
        assert True in seen and (False in seen or call["timeout"] == "10s")
        assert fast == _outputs(sc, ROOT, False)


@pytest.mark.parametrize("name", [p.stem for p in sorted((ROOT / "scenarios").glob("system-*"))])
def test_fused_visit_on_bundled_systems(name: str) -> None:
    from sim.scenario import load_scenario

    path = ROOT / "scenarios" / f"{name}.yaml"
    sc = load_scenario(path, ["duration=10m", "warmup=1m", "replications=1"])
    assert _outputs(sc, path.parent, True) == _outputs(sc, path.parent, False)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems())
def test_fused_visit_on_random_systems(data: dict) -> None:
    sc = make_scenario(data)
    assert _outputs(sc, ROOT, True) == _outputs(sc, ROOT, False)


@pytest.mark.parametrize("fifo", [False, True])
def test_work_only_consumer_is_the_general_path_byte_for_byte(fifo: bool) -> None:
    """A work-only SQS consumer runs its messages' sleeps in the receive's generator (no _steps
    per message, sim.systems.sqs._messages): every output identical to SystemModel.fast = False
    on batches > 1 with a batching window and a maximum concurrency, handler errors with and
    without ReportBatchItemFailures, receives again after the visibility timeout and a DLQ, on
    Lambda (some batches over the function timeout: the timed path) and on pods."""
    import sim.systems.engine as E

    seen: list[bool] = []

    class Spy(E.SystemModel):
        def _work(self, st: Any, i: int, w: float) -> float:
            seen.append(True)
            return super()._work(st, i, w)

    services = [
        {"name": "orders", "entry": 1, "handler": "2ms", "steps": [{"publish": "jobs"}]},
        {
            "name": "worker",
            "handler": {"dist": "exponential", "mean": "150ms"},
            "error_rate": 0.2,
            "steps": [{"work": 0.5}, {"work": 0.5}],
        },
    ]
    fn = {**_lambda("fn"), "timeout": "1s"}  # a 10-message batch may run past it
    for rbif in ([], ["ReportBatchItemFailures"]):
        queue = {
            "name": "jobs",
            "consumer": "worker",
            "batch_size": 10 if not fifo else 3,
            "batching_window": 0 if fifo else "500ms",
            "maximum_concurrency": 2,
            "visibility_timeout": "2s",
            "max_receive_count": 2,
            "function_response_types": rbif,
            **({"fifo": True, "groups": 3} if fifo else {}),
        }
        data = _system(
            services,
            [_k8s("eks", 1, concurrency=2), fn],
            {"lam": {"orders": "eks", "worker": "fn"}, "pods": {"orders": "eks", "worker": "eks"}},
            rate="20/s",
            duration="60s",
            replications=1,
            warmup=0,
            queues=[queue],
        )
        sc = make_scenario(data)
        fast = _outputs(sc, ROOT, True, Spy)
        assert seen  # the work-only loop ran
        seen.clear()
        assert fast == _outputs(sc, ROOT, False, Spy)
        assert not seen  # the general path never takes it
