"""Fidelity and metrics fixes of issue 17's systems: Lambda's refusal of a queue whose visibility
timeout is below the function timeout, timeouts in summary.json, cold requests at the container
stations, an EventBridge rule's SendMessage to a FIFO queue, Cloud Run's billing granularity and
pending limit. Every expected figure is worked out by hand from the providers' documented rules,
and each case runs on both engines (the heap engine and the per-request SimPy reference)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from test_systems import _bad, _k8s, _lambda
from test_systems_containers import _aca, _cloud_run, _fargate
from test_systems_equivalence import assert_same_system
from test_systems_knact import _kn

from sim.engine import run_one
from sim.errors import InputError
from sim.records import TIMED_OUT
from sim.systems.engine import Proc, SystemModel, _Attempt
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent


def _at(times: list[str], **kw: Any) -> dict:
    """A system scenario skeleton: one replication, no warm-up, entry requests at `times`."""
    return {
        "name": "fix",
        "duration": kw.pop("duration", "60s"),
        "warmup": "0s",
        "replications": 1,
        "seed": 5,
        "workload": {"arrivals": [{"batch": {"at": times, "size": 1}}]},
        "network": {"invoke_latency": 0},
        **kw,
    }


class _Keep(SystemModel):
    made: ClassVar[list[SystemModel]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        _Keep.made.append(self)


def _both(data: dict) -> Any:
    """The heap engine's run of placement p, after checking the reference agrees with it."""
    sc = make_scenario(data)
    fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert_same_system(fast, ref)
    return fast


# --- 1. visibility timeout below the function timeout ---------------------------------------------
def test_a_visibility_timeout_below_the_function_timeout_is_refused(tmp_path: Path) -> None:
    """lambda/latest/dg/services-sqs-configure.html: the function's timeout must be <= the
    queue's visibility timeout (CreateEventSourceMapping: InvalidParameterValueException "Queue
    visibility timeout: 30 seconds is less than Function timeout: 60 seconds"). GOOD's queue keeps
    SQS's default 30 s; its consumer's Lambda platform (platforms[1]) gets timeout 60 s."""
    code, out = _bad(tmp_path, lambda d: d["platforms"][1].update(timeout="60s"))
    assert code == 2, out
    flat = " ".join(out.split())
    assert "queues[0].visibility_timeout" in flat
    assert "platforms[1].timeout" in flat and "is at line" in flat
    assert "30s is less than the timeout 60s" in flat
    assert "360s" in flat  # the fix: AWS's 6 x the function timeout


@pytest.mark.parametrize(
    "change",
    [
        lambda d: None,  # defaults: SQS 30 s visibility, Lambda's 3 s timeout
        lambda d: (
            d["platforms"][1].update(timeout="60s"),
            d["queues"][0].update(visibility_timeout="60s"),
        ),  # equal: allowed ("less than or equal")
        # the Lambda platform does not consume the queue in this placement: no event source mapping
        lambda d: (
            d["platforms"][1].update(timeout="60s"),
            d["placements"][0]["services"].update(c="eks"),
        ),
    ],
    ids=["defaults", "equal", "pod_consumer"],
)
def test_a_visibility_timeout_at_or_above_the_function_timeout_is_accepted(change: Any) -> None:
    from test_systems import GOOD

    data = json.loads(json.dumps(GOOD))
    change(data)
    make_scenario(data)  # no InputError


def test_the_refusal_names_the_placement_that_puts_the_consumer_on_lambda() -> None:
    from test_systems import GOOD

    data = json.loads(json.dumps(GOOD))
    data["platforms"][1]["timeout"] = "45s"
    data["placements"] = [
        {"name": "pods", "services": {"a": "eks", "b": "eks", "c": "eks"}},
        {"name": "edge", "services": {"a": "eks", "b": "eks", "c": "fn"}},
    ]
    with pytest.raises(InputError, match="placement 'edge'") as err:
        make_scenario(data)
    assert "queues[0].visibility_timeout" in str(err.value)


# --- 2. timeouts in summary.json ------------------------------------------------------------------
def test_every_invocation_past_the_function_timeout_is_counted(tmp_path: Path) -> None:
    """A handler of 5 s on a Lambda with timeout 2 s: each of the 3 entry requests is stopped at
    2 s (function timeouts 3, client timeouts 0); summary.json has them per service and per
    placement, and the console's system table shows them."""
    import yaml
    from click.testing import CliRunner

    from sim.cli import main

    data = _at(
        ["1s", "10s", "20s"],
        platforms=[_lambda(timeout="2s")],
        services=[{"name": "api", "entry": 1, "handler": "5s"}],
        placements=[{"name": "p", "services": {"api": "fn"}}],
    )
    run = _both(data)
    assert run.extra["system"]["services"]["api"]["timeouts"] == {"function": 3, "client": 0}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    res = CliRunner().invoke(main, ["run", str(f), "--out", str(tmp_path / "o"), "--no-html"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    sys = summary["system"]["p"]
    assert sys["services"]["api"]["timeouts"] == {"function": 3, "client": 0}
    assert sys["timeouts"] == {"function": 3, "client": 0}
    assert "3 fn" in res.output


def test_client_timeouts_count_requests_times_attempts() -> None:
    """`api` (pods) calls `dep` (pods with room for every attempt, 3 s of work) with a client
    timeout of 1 s and 2 retries: every attempt times out, so dep counts 4 requests x 3 attempts
    = 12 client timeouts (and no function timeout: it is no Lambda)."""
    data = _at(
        ["1s", "2s", "3s", "4s"],
        platforms=[_k8s("front", 1, 10), _k8s("back", 1, 100)],
        services=[
            {
                "name": "api",
                "entry": 1,
                "handler": "1ms",
                "steps": [{"call": "dep", "timeout": "1s", "retries": 2}],
            },
            {"name": "dep", "handler": "3s"},
        ],
        placements=[{"name": "p", "services": {"api": "front", "dep": "back"}}],
    )
    run = _both(data)
    svc = run.extra["system"]["services"]
    assert svc["dep"]["timeouts"] == {"function": 0, "client": 12}
    assert svc["api"]["timeouts"] == {"function": 0, "client": 0}
    from sim.systems.summary import summarize_system

    assert summarize_system([run])["timeouts"] == {"function": 0, "client": 12}


def test_a_call_whose_lambda_caller_timed_out_first_is_no_client_timeout() -> None:
    """`api` on Lambda (timeout 2 s) calls `dep` (pods, 10 s) with a client timeout of 3 s: the
    function timeout stops api at 2 s, its SDK with it, so the 3 s client timeout never fires:
    2 requests -> 2 function timeouts at api, 0 client timeouts at dep."""
    data = _at(
        ["1s", "20s"],
        platforms=[_lambda(timeout="2s"), _k8s("back", 1, 10)],
        services=[
            {
                "name": "api",
                "entry": 1,
                "handler": "1ms",
                "steps": [{"call": "dep", "timeout": "3s"}],
            },
            {"name": "dep", "handler": "10s"},
        ],
        placements=[{"name": "p", "services": {"api": "fn", "dep": "back"}}],
    )
    svc = _both(data).extra["system"]["services"]
    assert svc["api"]["timeouts"] == {"function": 2, "client": 0}
    assert svc["dep"]["timeouts"] == {"function": 0, "client": 0}


def test_a_fired_client_timeout_counts_only_while_its_caller_runs() -> None:
    """_Attempt.expire tells a stopped caller (its generator closed: no frame) from a waiting
    one by gi_frame alone: the generators of a Cython-compiled engine have no gi_suspended (which
    inspect.getgeneratorstate reads), so the stand-ins here have only what those have."""
    answers: list[Any] = []
    sys = SimpleNamespace(_run=lambda proc, outcome: answers.append(outcome))
    counted = []
    for frame in (object(), None):  # waiting for the answer; closed by Lambda's timeout
        gen = SimpleNamespace(gi_frame=frame, gi_running=False, gi_code=None, gi_yieldfrom=None)
        dst = SimpleNamespace(client_timeouts=0)
        _Attempt(sys, Proc(gen, None), dst).expire(None)  # type: ignore[arg-type]
        counted.append(dst.client_timeouts)
    assert counted == [1, 0]
    assert answers == [TIMED_OUT, TIMED_OUT]  # the caller is given TIMED_OUT either way


# --- 3. cold requests at the container stations ---------------------------------------------------
def _cold_case(platform: dict, times: list[str]) -> list[bool]:
    data = _at(
        times,
        duration="120s",
        platforms=[platform],
        services=[{"name": "api", "entry": 1, "handler": "100ms"}],
        placements=[{"name": "p", "services": {"api": platform["name"]}}],
    )
    run = _both(data)
    s = run.stats.sample
    assert list(s["outcome"]) == [0] * len(times)  # all served
    assert run.extra["system"]["services"]["api"]["cold_starts"] == int(s["cold"].sum())
    return [bool(c) for c in s["cold"]]


@pytest.mark.parametrize(
    "platform, first",
    [
        (_cloud_run(concurrency=5, startup="1s"), "0.5s"),
        (_aca(), "20s"),  # KEDA's poll at 30 s sees it in the http rule's 15 s window
        (_kn(container_concurrency=10, initial_scale=0, allow_zero_initial_scale=True), "0.5s"),
    ],
    ids=["cloud_run", "container_apps", "knative"],
)
def test_from_zero_the_first_request_is_cold_and_a_warm_free_slot_is_not(
    platform: dict, first: str
) -> None:
    """The single-service kernels' rule (sim.platforms.kubernetes): a request is cold when it
    arrived while no instance was ready and waited for one. From zero, the first request is held
    until the first instance is ready: cold. At 50 s that instance is ready with a free slot
    (no platform has scaled it in by then): not cold."""
    assert _cold_case(platform, [first, "50s"]) == [True, False]


def test_a_request_queued_behind_busy_ready_instances_is_not_cold() -> None:
    """Fargate, one task of one slot, 2 requests 10 ms apart: the second waits for the first
    (a ready task was there: not cold, as in the kernel)."""
    assert _cold_case(_fargate(tasks=1, task={"startup": "1s"}), ["1s", "1.01s"]) == [False, False]


# --- 4. EventBridge -> SQS FIFO -------------------------------------------------------------------
def _eb_fifo(n: int, retries: int, rules: int = 1, **queue: Any) -> dict:
    """n entry requests at t = 1 s publish one event each to bus `bus`, whose `rules` rules
    (delivery latency 10 ms) target the FIFO queue `q` (SendMessage quota 5/s) consumed by pods."""
    rule = {"target": "q", "retry": {"maximum_retry_attempts": retries}}
    return _at(
        ["1s"] * n,
        duration="120s",
        platforms=[_k8s("front", 1, 100), _k8s("workers", 1, 100)],
        services=[
            {"name": "api", "entry": 1, "handler": "0s", "steps": [{"publish": "bus"}]},
            {"name": "worker", "handler": "10ms"},
        ],
        queues=[
            {
                "name": "bus",
                "type": "eventbridge",
                "latency": "10ms",
                "rules": [{"name": f"r{i}", **rule} for i in range(rules)],
            },
            {"name": "q", "consumer": "worker", "fifo": True, "send_quota": 5, **queue},
        ],
        placements=[{"name": "p", "services": {"api": "front", "worker": "workers"}}],
    )


def test_a_burst_through_a_rule_meets_the_fifo_send_quota_as_a_direct_publish() -> None:
    """8 events delivered at 1.01 s, quota 5 SendMessage/s, no retries: 5 accepted and 3
    throttled in the window [1, 2), exactly the 5 / 3 split of 8 direct publishes at 1 s; the rule
    sends the 3 to its DLQ (retry policy: 0 retries)."""
    q = _both(_eb_fifo(8, 0)).extra["system"]["queues"]
    assert (q["q"]["sent"], q["q"]["send_throttled"], q["q"]["received"]) == (5, 3, 5)
    assert (q["bus"]["delivered"], q["bus"]["dlq"], q["bus"]["retries"]) == (5, 3, 0)
    direct = _eb_fifo(8, 0)
    direct["queues"] = direct["queues"][1:]
    direct["services"][0]["steps"] = [{"publish": "q"}]
    d = _both(direct).extra["system"]["queues"]["q"]
    assert (d["sent"], d["send_throttled"], d["received"]) == (5, 3, 5)


def test_throttled_rule_sends_are_retried_and_delivered_later() -> None:
    """The same burst with the default retry policy: the 3 throttled events are retried (full
    jitter) until a later one-second window takes them: all 8 delivered, none to the DLQ; at
    least the first 3 throttles; every window accepted at most 5."""
    run = _both(_eb_fifo(8, 185))
    q = run.extra["system"]["queues"]
    assert (q["q"]["sent"], q["q"]["received"], q["bus"]["dlq"]) == (8, 8, 0)
    assert q["q"]["send_throttled"] >= 3 and q["bus"]["retries"] == q["q"]["send_throttled"]
    starts = run.extra["system"]["requests_sample"]["worker"]["start"]
    windows = [int(t) for t in starts]
    assert max(windows.count(w) for w in set(windows)) <= 5
    assert min(starts) == pytest.approx(1.01, abs=1e-9)


def test_one_event_through_two_rules_is_one_message() -> None:
    """Two rules, one FIFO queue: both deliveries carry the event's id as the deduplication id,
    so the second (within 5 minutes) is accepted and not delivered: 3 events -> 6 SendMessage
    (billed), 3 deduplicated, 3 received."""
    q = _both(_eb_fifo(3, 0, rules=2, send_quota=100)).extra["system"]["queues"]["q"]
    assert (q["sent"], q["deduplicated"], q["received"]) == (6, 3, 3)


def test_a_rerun_publish_is_a_new_event_but_the_same_direct_message() -> None:
    """`pub` publishes, then works 3 s; `api` calls it with a 1 s client timeout and 2 retries:
    3 runs of the same publish step. Direct to the FIFO queue, the retried message repeats the
    first (deduplicated twice: 1 received); through the bus each run is a new PutEvents entry
    with its own event id: 3 messages."""

    def case(to_bus: bool) -> dict:
        data = _eb_fifo(1, 0, send_quota=100)
        data["services"] = [
            {
                "name": "api",
                "entry": 1,
                "handler": "0s",
                "steps": [{"call": "pub", "timeout": "1s", "retries": 2}],
            },
            {
                "name": "pub",
                "handler": "3s",
                "steps": [{"publish": "bus" if to_bus else "q"}, {"work": 1.0}],
            },
            {"name": "worker", "handler": "10ms"},
        ]
        data["placements"][0]["services"]["pub"] = "front"
        if not to_bus:
            data["queues"] = data["queues"][1:]
        return _both(data).extra["system"]["queues"]["q"]

    direct, bus = case(False), case(True)
    assert (direct["sent"], direct["deduplicated"], direct["received"]) == (3, 2, 1)
    assert (bus["sent"], bus["deduplicated"], bus["received"]) == (3, 0, 3)


def test_a_rules_events_share_its_one_message_group() -> None:
    """SqsParameters.MessageGroupId is one string per target: 3 events of one rule are one
    message group, so the FIFO queue hands them over one at a time although the consumer has
    100 free slots (10 ms each: delivered at 1.01 s, started at 1.01, 1.02, 1.03 s). The queue's
    own `groups` (8)
    are the groups of direct publishes."""
    run = _both(_eb_fifo(3, 0, send_quota=100, groups=8))
    starts = sorted(run.extra["system"]["requests_sample"]["worker"]["start"])
    assert starts == pytest.approx([1.01, 1.02, 1.03], abs=1e-9)


# --- 5. Cloud Run: billing granularity and the pending limit --------------------------------------
def test_cloud_run_station_bills_each_active_period_rounded_up_to_100_ms() -> None:
    """One always-on instance (min = max = 1), requests of 250 ms at 10 s and 20 s: two active
    periods of 0.25 s, billed 0.3 s each (cloud.google.com/run/pricing: "rounded up to the nearest
    100 millisecond"), as the single-service kernel: 0.6 s of active vCPU and memory."""
    data = _at(
        ["10s", "20s"],
        platforms=[_cloud_run(concurrency=1, min_instances=1, max_instances=1)],
        services=[{"name": "api", "entry": 1, "handler": "250ms"}],
        placements=[{"name": "p", "services": {"api": "run"}}],
    )
    _both(data)
    _Keep.made.clear()
    sc = make_scenario(data)
    run = run_one(sc, "p", 0, ROOT, models={"system": _Keep})
    month = sc.month / 60.0
    got = run.extra["system"]["services"]["api"]["monthly_breakdown_usd"]
    # request-based, Tier 1: $0.000024 per vCPU-second and $0.0000025 per GiB-second active
    assert got["cpu"] == pytest.approx(0.6 * 1 * month * 0.000024, rel=1e-9)
    assert got["memory"] == pytest.approx(0.6 * 0.5 * month * 0.0000025, rel=1e-9)
    st = _Keep.made[0].stations[0]
    assert st.active_periods(60.0) == pytest.approx([0.25, 0.25], abs=1e-9)  # type: ignore[attr-defined]


def test_cloud_run_station_answers_429_at_the_pending_limit() -> None:
    """max_instances 1 of concurrency 1, handlers of 30 s, requests at 1, 2 and 3 s: the first is
    served; the others wait in the front end for the pending limit, max(3.5 x 1 s startup, 10 s)
    = 10 s (about-instance-autoscaling, "Exceeding maximum instances"), then fail with 429
    (rejected) at 12 and 13 s, as the single-service kernel."""
    data = _at(
        ["1s", "2s", "3s"],
        platforms=[_cloud_run(concurrency=1, min_instances=1, max_instances=1, startup="1s")],
        services=[{"name": "api", "entry": 1, "handler": "30s"}],
        placements=[{"name": "p", "services": {"api": "run"}}],
    )
    run = _both(data)
    s = run.stats.sample
    assert list(s["outcome"]) == [0, 2, 2]  # ok, rejected, rejected (sim.records codes)
    assert list(s["end"]) == pytest.approx([31.0, 12.0, 13.0], abs=1e-9)
    svc = run.extra["system"]["services"]["api"]
    assert svc["outcomes"]["rejected"] == 2
