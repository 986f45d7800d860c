"""SQS and Lambda semantics in systems (issue 17, sim.systems.sqs): duplicate delivery past the
visibility timeout, the function timeout, ReportBatchItemFailures, the account's shared
concurrency. Every expected figure is worked out by hand from AWS's documented rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from test_systems import _k8s
from test_systems_equivalence import _same

from sim.engine import run_one
from sim.systems.engine import SystemModel
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent
FAST = {"dist": "constant", "value": "1ms"}


def _pods(name: str, slots: int = 4, replicas: int = 1) -> dict:
    return _k8s(name, replicas, slots)


def _fn(name: str, **kw: Any) -> dict:
    return {"name": name, "type": "lambda", "memory": 1024, "init": 0, "sandbox_overhead": 0, **kw}


def _one_message(worker: dict, queue: dict, consumer: dict, duration: str = "300s") -> dict:
    """One request at t = 1 s to `api` (1 ms, pods), which sends one message (or `count`) to q."""
    publish = {"publish": "q", "count": queue.pop("count", 1)}
    return {
        "name": "sqs",
        "duration": duration,
        "warmup": "0s",
        "replications": 1,
        "seed": 1,
        "workload": {"arrivals": [{"batch": {"at": ["1s"], "size": 1}}]},
        "platforms": [_pods("front"), consumer],
        "services": [
            {"name": "api", "entry": 1, "handler": FAST, "steps": [publish]},
            {"name": "worker", **worker},
        ],
        "queues": [{"name": "q", "consumer": "worker", "batch_size": 1, **queue}],
        "placements": [{"name": "p", "services": {"api": "front", "worker": consumer["name"]}}],
        "network": {"invoke_latency": 0},
    }


def _nonzero(outcomes: dict) -> dict:
    return {k: v for k, v in outcomes.items() if v}


def _queue(data: dict) -> dict:
    run = run_one(make_scenario(data), "p", 0, ROOT)
    return run.extra["system"]["queues"]["q"]


# --- duplicate delivery ---------------------------------------------------------------------------
SLOW = {"handler": {"dist": "constant", "value": "40s"}}


def test_processing_past_the_visibility_timeout_is_delivered_again() -> None:
    """Four pod worker slots, one message, 40 s of work, visibility 30 s, maxReceiveCount 3:
    received at 1, 31 and 61 s (the last two while the earlier run still works: 2 duplicates);
    each run ends after a newer receive, so its delete carries a stale receipt (3 stale deletes,
    nothing deleted); at 91 s its third visibility ends: the DLQ. Requests billed: 1 send +
    3 x (receive + delete) = 7. (On Lambda this needs a function timeout above the visibility
    timeout, which AWS refuses: sim.systems.spec, tests/test_systems_fixes.py.)"""
    data = _one_message(SLOW, {"visibility_timeout": "30s", "max_receive_count": 3}, _pods("w", 4))
    q = _queue(data)
    assert (q["sent"], q["received"], q["duplicates"]) == (1, 3, 2)
    assert (q["deleted"], q["stale_deletes"], q["dlq"]) == (0, 3, 1)
    sc = make_scenario(data)
    run = run_one(sc, "p", 0, ROOT)
    window, month = sc.duration, sc.month
    cost = run.extra["system"]["queues"]["q"]["monthly_breakdown_usd"]["sqs_requests"]
    assert cost == pytest.approx(7 * 0.40e-6 * month / window, rel=1e-9)
    _same(data)  # the per-request reference agrees


def test_one_busy_consumer_slot_deletes_the_message_it_kept() -> None:
    """One pod slot: the message is visible again at 31 s but nobody can receive it; at 41 s the
    worker's delete carries the latest receipt and deletes it: 1 receive, no duplicate."""
    data = _one_message(SLOW, {"visibility_timeout": "30s", "max_receive_count": 3}, _pods("w", 1))
    q = _queue(data)
    assert (q["received"], q["duplicates"], q["deleted"], q["dlq"]) == (1, 0, 1, 0)
    _same(data)


def test_a_second_free_slot_receives_the_duplicate() -> None:
    """Two pod slots: receives at 1 s (slot A, to 41 s), 31 s (slot B, to 71 s), 61 s (slot A
    again); DLQ at 91 s; all three deletes stale."""
    data = _one_message(SLOW, {"visibility_timeout": "30s", "max_receive_count": 3}, _pods("w", 2))
    q = _queue(data)
    assert (q["received"], q["duplicates"], q["stale_deletes"], q["dlq"]) == (3, 2, 3, 1)
    _same(data)


# --- the function timeout -------------------------------------------------------------------------
class _Keep(SystemModel):
    made: ClassVar[list[SystemModel]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        _Keep.made.append(self)


def test_a_handler_longer_than_the_timeout_ends_as_an_error_at_the_timeout() -> None:
    """Handler 5 s, timeout 3 s, a synchronous entry request: it fails (timed_out) after 3.000 s,
    billed 3,000 ms; the environment is reset (a second request 10 s later starts cold)."""
    data = _one_message(
        {"handler": {"dist": "constant", "value": "5s"}}, {}, _fn("fn", timeout="3s"), "60s"
    )
    data["services"] = [{"name": "api", "entry": 1, "handler": {"dist": "constant", "value": "5s"}}]
    data["queues"] = []
    data["placements"] = [{"name": "p", "services": {"api": "fn"}}]
    data["platforms"] = [_fn("fn", timeout="3s")]
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s", "11s"], "size": 1}}]}
    _Keep.made.clear()
    run = run_one(make_scenario(data), "p", 0, ROOT, keep_all_rows=True, models={"system": _Keep})
    s = run.stats.sample
    assert list(s["end"] - s["arrival"]) == pytest.approx([3.0, 3.0], abs=1e-9)
    assert run.stats.outcomes["timed_out"] == 2
    st = _Keep.made[0].stations[0]
    assert st.billed_ms == 6000 and st.invocations == 2  # type: ignore[attr-defined]
    assert st.cold == 2 and st.timeouts == 2  # type: ignore[attr-defined]
    _same(data)


def test_a_timed_out_caller_stops_its_calls_and_its_caller_sees_an_error() -> None:
    """fn (timeout 3 s) calls a pod service that answers after 10 s, client timeout 60 s: the
    invocation ends at 3 s, the entry caller sees timed_out at 3 s; the callee still runs (it does
    not know) and no retry is made (the SDK died with the sandbox): 1 call attempt."""
    data = _one_message({"handler": FAST}, {}, _fn("fn", timeout="3s"), "60s")
    data["platforms"] = [_fn("fn", timeout="3s"), _pods("slow")]
    data["services"] = [
        {"name": "api", "entry": 1, "handler": FAST, "steps": [{"call": "dep", "retries": 2}]},
        {"name": "dep", "handler": {"dist": "constant", "value": "10s"}},
    ]
    data["queues"] = []
    data["placements"] = [{"name": "p", "services": {"api": "fn", "dep": "slow"}}]
    run = run_one(make_scenario(data), "p", 0, ROOT, keep_all_rows=True)
    s = run.stats.sample
    assert float(s["end"][0] - s["arrival"][0]) == pytest.approx(3.0, abs=1e-9)
    svc = run.extra["system"]["services"]
    assert svc["dep"]["attempts"] == 1 and _nonzero(svc["dep"]["outcomes"]) == {"ok": 1}
    _same(data)


def test_a_timed_out_batch_returns_whole_and_async_retries_twice() -> None:
    """ESM: every invocation of the batch times out, so its message is received maxReceiveCount
    (2) times then goes to the DLQ. Asynchronous event: 1 attempt + 2 retries (1 and 2 minutes
    after, lambda_async), then `failed`."""
    data = _one_message(
        {"handler": {"dist": "constant", "value": "5s"}},
        {"visibility_timeout": "30s", "max_receive_count": 2},
        _fn("fn", timeout="3s"),
    )
    q = _queue(data)
    assert (q["received"], q["deleted"], q["dlq"], q["duplicates"]) == (2, 0, 1, 0)
    _same(data)
    data["queues"] = []
    data["services"][0]["steps"] = [{"publish": "worker"}]
    run = run_one(make_scenario(data), "p", 0, ROOT)
    a = run.extra["system"]["services"]["worker"]["async"]
    assert (a["events"], a["error_retries"], a["failed"]) == (1, 2, 1)
    assert _nonzero(run.extra["system"]["services"]["worker"]["outcomes"]) == {"timed_out": 3}


# --- ReportBatchItemFailures ----------------------------------------------------------------------
class _Draws:
    """A stand-in for a service's failure stream: the given uniforms, then 0.9 (no failure)."""

    def __init__(self, xs: list[float]) -> None:
        self.xs = list(xs)

    def next(self) -> float:
        return self.xs.pop(0) if self.xs else 0.9


@pytest.mark.parametrize("rbif,again", [(True, 3), (False, 10)])
def test_report_batch_item_failures_returns_only_the_failed_messages(
    rbif: bool, again: int
) -> None:
    """One batch of 10 (a 1 s batching window gathers them), messages 2, 5 and 8 fail (error
    rate 0.5, their draws 0.0): with ReportBatchItemFailures those 3 are received again, else all
    10; the second receive succeeds. Both engines."""

    def fixed(model: type[SystemModel]) -> type[SystemModel]:
        class Fixed(model):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any) -> None:
                super().__init__(*args)
                draws = _Draws([0.9, 0.0, 0.9, 0.9, 0.0, 0.9, 0.9, 0.0, 0.9, 0.9])
                self.fail[self.index["worker"]] = draws

        return Fixed

    queue = {
        "count": 10,
        "batch_size": 10,
        "batching_window": "1s",
        "visibility_timeout": "30s",
        **({"function_response_types": ["ReportBatchItemFailures"]} if rbif else {}),
    }
    data = _one_message({"handler": FAST, "error_rate": 0.5}, queue, _fn("fn"))
    for model in (SystemModel, ReferenceSystem):
        run = run_one(make_scenario(data), "p", 0, ROOT, models={"system": fixed(model)})
        q = run.extra["system"]["queues"]["q"]
        assert (q["sent"], q["received"], q["deleted"]) == (10, 10 + again, 10), model


# --- the account's concurrency --------------------------------------------------------------------
def test_one_function_saturating_the_account_throttles_another() -> None:
    """Account concurrency 10, two functions: `front` sends 10 asynchronous events to `a` (10 s
    each: all 10 run), then after 1 s of work calls `b` once (no retry): b is throttled by a's
    use of the pool (b alone is idle). 1 throttle, at b; none at a."""
    acct = {"account": "team", "account_concurrency": 10}
    data = {
        "name": "acct",
        "duration": "60s",
        "warmup": "0s",
        "replications": 1,
        "seed": 1,
        "workload": {"arrivals": [{"batch": {"at": ["1s"], "size": 1}}]},
        "platforms": [_pods("front"), _fn("fa", **acct), _fn("fb", **acct)],
        "services": [
            {
                "name": "front",
                "entry": 1,
                "handler": {"dist": "constant", "value": "1s"},
                "steps": [
                    {"publish": "a", "count": 10},
                    {"work": 1.0},
                    {"call": "b", "retries": 0},
                ],
            },
            {"name": "a", "handler": {"dist": "constant", "value": "10s"}},
            {"name": "b", "handler": FAST},
        ],
        "placements": [{"name": "p", "services": {"front": "front", "a": "fa", "b": "fb"}}],
        "network": {"invoke_latency": 0},
    }
    run = run_one(make_scenario(data), "p", 0, ROOT)
    svc = run.extra["system"]["services"]
    assert (svc["a"]["throttles"], svc["b"]["throttles"]) == (0, 1)
    assert _nonzero(svc["b"]["outcomes"]) == {"throttled": 1}
    _same(data)
    # reserved concurrency carves b's share out of the pool: 110 - 5 = 105 for a
    acct = {"account": "team", "account_concurrency": 110}
    b = _fn("fb", reserved_concurrency=5, **acct)
    data["platforms"] = [_pods("front"), _fn("fa", **acct), b]
    steps = data["services"][0]["steps"]
    data["services"][0]["steps"] = [{"publish": "a", "count": 100}, {"publish": "a", "count": 10}]
    data["services"][0]["steps"] += steps[1:]
    run = run_one(make_scenario(data), "p", 0, ROOT)
    svc = run.extra["system"]["services"]
    assert svc["b"]["throttles"] == 0 and _nonzero(svc["b"]["outcomes"]) == {"ok": 1}
    assert svc["a"]["instances_peak"] == 105 and svc["a"]["throttles"] >= 5


def test_equivalence_covers_duplicates_timeouts_partial_batches_and_the_account() -> None:
    """A fixed system where duplicates, stale deletes, function timeouts (sync, async and ESM),
    partial batch failures and account throttles all fire, held to the reference."""
    short = {"account": "team", "account_concurrency": 8, "memory": 512}
    data = {
        "name": "eq",
        "duration": "120s",
        "warmup": "0s",
        "replications": 1,
        "seed": 4,
        "workload": {"arrivals": [{"steady": {"rate": "20/s"}}]},
        "platforms": [
            _pods("front", 8),
            {"name": "fa", "type": "lambda", "timeout": "250ms", **short},
            # timeout = q's visibility timeout: AWS refuses a lower visibility (an ESM)
            {"name": "fb", "type": "lambda", "timeout": "1s", **short},
            _pods("w", 3),
        ],
        "services": [
            {
                "name": "api",
                "entry": 1,
                "handler": {"dist": "exponential", "mean": "5ms"},
                "steps": [
                    {"call": "a", "probability": 0.5, "timeout": "1s"},
                    {"publish": "q"},
                    {"publish": "q2", "probability": 0.3},
                    {"publish": "a", "probability": 0.2},
                ],
            },
            {"name": "a", "handler": {"dist": "exponential", "mean": "150ms"}},
            {
                "name": "worker",
                "handler": {"dist": "exponential", "mean": "100ms"},
                "error_rate": 0.2,
                "steps": [{"call": "a", "probability": 0.3, "timeout": "2s"}],
            },
            {"name": "slow", "handler": {"dist": "exponential", "mean": "800ms"}},
        ],
        "queues": [
            {
                "name": "q",
                "consumer": "worker",
                "batch_size": 5,
                "batching_window": "200ms",
                "visibility_timeout": "1s",
                "max_receive_count": 3,
                "function_response_types": ["ReportBatchItemFailures"],
            },
            {"name": "q2", "consumer": "slow", "batch_size": 1, "visibility_timeout": "1s"},
        ],
        "placements": [
            {"name": "p", "services": {"api": "front", "a": "fa", "worker": "fb", "slow": "w"}}
        ],
    }
    _same(data)
    s = run_one(make_scenario(data), "p", 0, ROOT).extra["system"]
    q, q2, svc = s["queues"]["q"], s["queues"]["q2"], s["services"]
    assert q2["duplicates"] > 0 and q2["stale_deletes"] > 0, q2
    assert q["dlq"] > 0 and q["received"] > q["sent"], q
    assert svc["a"]["outcomes"].get("timed_out", 0) > 0, svc["a"]
    assert svc["a"]["throttles"] + svc["worker"]["throttles"] > 0


# --- FIFO: the send quota and deduplication -------------------------------------------------------
def test_fifo_sends_past_300_a_second_are_throttled() -> None:
    """400 requests at 1 s each send one message to a FIFO queue (4 pod slots, 1 ms each: all
    within [1 s, 2 s)), then 10 more at 2.5 s: 300 accepted in the first second, 100 throttled
    (ThrottlingException: those requests fail, throttled), the 10 later ones accepted."""
    data = _one_message({"handler": FAST}, {"fifo": True, "groups": 4}, _fn("fn"), "60s")
    data["workload"] = {
        "arrivals": [
            {"batch": {"at": ["1s"], "size": 400}},
            {"batch": {"at": ["2500ms"], "size": 10}},
        ]
    }
    run = run_one(make_scenario(data), "p", 0, ROOT)
    s = run.extra["system"]
    q = s["queues"]["q"]
    assert (q["sent"], q["send_throttled"], q["deleted"]) == (310, 100, 310)
    assert _nonzero(run.stats.outcomes) == {"ok": 310, "throttled": 100}
    _same(data)
    data["queues"][0]["high_throughput"] = True
    q = _queue(data)
    assert (q["sent"], q["send_throttled"]) == (410, 0)


@pytest.mark.parametrize("dedup,delivered", [(True, 1), (False, 3)])
def test_fifo_deduplicates_a_retried_publish(dedup: bool, delivered: int) -> None:
    """api calls `pub` with a 50 ms client timeout and 2 retries; pub works 100 ms then sends to
    the FIFO queue, so all 3 attempts run to the send (the callee does not know its caller gave
    up): the same message 3 times within 5 minutes, 2 of them deduplicated (accepted, billed, not
    delivered) - or 3 deliveries without deduplication."""
    data = _one_message({"handler": FAST}, {"fifo": True, "deduplication": dedup}, _fn("fn"))
    data["platforms"].append(_pods("mid"))
    data["services"] = [
        {
            "name": "api",
            "entry": 1,
            "handler": FAST,
            "steps": [{"call": "pub", "timeout": "50ms", "retries": 2}],
        },
        {
            "name": "pub",
            "handler": {"dist": "constant", "value": "100ms"},
            "steps": [{"work": 1.0}, {"publish": "q"}],
        },
        {"name": "worker", "handler": FAST},
    ]
    data["placements"][0]["services"] = {"api": "front", "pub": "mid", "worker": "fn"}
    q = _queue(data)
    assert (q["sent"], q["deduplicated"], q["received"]) == (3, 3 - delivered, delivered)
    _same(data)


def test_fifo_deduplication_forgets_what_left_the_interval() -> None:
    """The deduplication memory holds the sends of the last 5 minutes and no more (it was a
    scan of all of them per send once past 4,096: quadratic), and a step sent again after 5
    minutes is delivered again while one within them is not."""
    from types import SimpleNamespace

    from sim.systems.sqs import SendGate

    q = SimpleNamespace(spec=SimpleNamespace(sends_per_second=None, deduplication=True))
    gate = SendGate(q)
    steps = [object() for _ in range(20_000)]
    for i, step in enumerate(steps):  # 20/s for 1,000 s
        assert gate.check(step, i / 20.0) == 0
    assert len(gate.seen) == 300 * 20  # sends in (699.95 s, 999.95 s]
    assert gate.check(steps[-1], 1000.0) == 1  # 0.05 s after: a duplicate
    assert gate.check(steps[0], 1000.0) == 0  # 1,000 s after: new again
    assert q.deduplicated == 1
