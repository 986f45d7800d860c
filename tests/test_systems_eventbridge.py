"""EventBridge, SQS FIFO and Lambda's asynchronous invocation path in systems (issue 17).

Every expected value is computed by hand from AWS's documented rules (the retry schedules, the
rate limit, the price table's rates) or from queueing theory, never from the simulator's output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from test_systems import _bad, _k8s, _lambda, _system, t_ci

from sim.engine import run_one

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent


def _one_event_system(fn: dict, fn_service: dict, rate: str, duration: str) -> dict:
    """An entry pod service (1 ms of work, then an event to `fn`), evenly spaced arrivals."""
    services = [
        {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "fn"}]},
        {"name": "fn", **fn_service},
    ]
    data = _system(
        services,
        [_k8s("eks", 2), fn],
        {"p": {"front": "eks", "fn": "fn"}},
        replications=1,
        duration=duration,
        warmup=0,
        workload={"arrivals": [{"steady": {"rate": rate, "spacing": "uniform"}}]},
    )
    # The pod's SDK Invoke of the function takes no time here, so the schedules below are
    # Lambda's alone (the hop's own latency is tested in test_systems_hops.py).
    data["network"] = {"invoke_latency": 0}
    return data


def _run(data: dict, placement: str = "p") -> Any:
    return run_one(make_scenario(data), placement, 0, ROOT)


# --- Lambda's asynchronous invocation path -------------------------------------------------------
def test_async_error_retries_one_then_two_minutes_after_the_failed_attempt() -> None:
    """A function that always fails (100 ms a run, no start-up): attempts at t, t + 0.1 + 60 and
    t + 0.2 + 60 + 120 (invocation-async-error-handling.html: "a one-minute wait between the first
    two attempts, and two minutes between the second and third"); the event is dropped after the
    third (MaximumRetryAttempts 2) at t + 0.3 + 180. t = arrival + 1 ms (the entry's work)."""
    data = _one_event_system(
        _lambda(), {"handler": "100ms", "error_rate": 1.0}, rate="0.001/s", duration="3000s"
    )
    run = _run(data)
    sysd = run.extra["system"]
    events = run.stats.requests
    assert events >= 2
    done = sysd["async_completion_ms"]
    want_ms = (0.001 + 3 * 0.100 + 60 + 120) * 1e3
    for k in ("p50", "max", "mean"):
        assert done[k] == pytest.approx(want_ms, abs=1e-6), k
    fn = sysd["services"]["fn"]
    assert fn["attempts"] == 3 * events
    assert fn["async"] == {
        "events": events,
        "throttle_retries": 0,
        "error_retries": 2 * events,
        "expired": 0,
        "failed": events,
        "queued_max": 1,
    }
    # MaximumRetryAttempts 0: one attempt, dropped at once
    data["services"][1]["async"] = {"maximum_retry_attempts": 0}
    run = _run(data)
    assert run.extra["system"]["async_completion_ms"]["max"] == pytest.approx(101.0, abs=1e-6)
    assert run.extra["system"]["services"]["fn"]["async"]["failed"] == run.stats.requests


def test_async_error_retry_past_the_maximum_event_age_is_dropped() -> None:
    """MaximumEventAgeInSeconds 100: the first retry (at 60.1 s) is in time, the second would come
    at 0.2 + 60 + 120 = 180.2 s > 100 s: the event is dropped when the second attempt fails."""
    data = _one_event_system(
        _lambda(),
        {"handler": "100ms", "error_rate": 1.0, "async": {"maximum_event_age": "100s"}},
        rate="0.001/s",
        duration="3000s",
    )
    run = _run(data)
    a = run.extra["system"]["services"]["fn"]["async"]
    n = run.stats.requests
    assert (a["error_retries"], a["expired"], a["failed"]) == (n, n, 0)
    want_ms = (0.001 + 2 * 0.100 + 60) * 1e3
    assert run.extra["system"]["async_completion_ms"]["max"] == pytest.approx(want_ms, abs=1e-6)


def test_async_throttle_retries_back_off_exponentially_to_the_maximum_event_age() -> None:
    """Reserved concurrency 0: every attempt is throttled. The retry interval "increases
    exponentially from 1 second after the first attempt to a maximum of 5 minutes": attempts at
    t + 0, 1, 3, 7, 15, 31 s; the next (t + 63 s) is past a 60 s maximum age: dropped at t + 31 s.
    With the default 6 h: 1 + 2 + ... + 256 = 511 s after 9 retries, then every 300 s while
    511 + 300 k <= 21,600 (k <= 70): 80 attempts, the last at t + 21,511 s."""
    fn = _lambda(reserved_concurrency=0)
    data = _one_event_system(
        fn, {"handler": "100ms", "async": {"maximum_event_age": "60s"}}, "0.01/s", "1000s"
    )
    run = _run(data)
    n = run.stats.requests
    s = run.extra["system"]
    assert s["services"]["fn"]["attempts"] == 6 * n
    assert {k: v for k, v in s["services"]["fn"]["outcomes"].items() if v} == {"throttled": 6 * n}
    a = s["services"]["fn"]["async"]
    assert (a["throttle_retries"], a["expired"]) == (5 * n, n)
    assert s["async_completion_ms"]["max"] == pytest.approx((0.001 + 31) * 1e3, abs=1e-6)

    data = _one_event_system(fn, {"handler": "100ms"}, "1/day", "7h")
    run = _run(data)
    s = run.extra["system"]
    assert run.stats.requests == 1
    assert s["services"]["fn"]["attempts"] == 80
    assert s["async_completion_ms"]["max"] == pytest.approx((0.001 + 21511) * 1e3, abs=1e-6)


def test_async_events_queue_when_the_function_is_at_its_limit() -> None:
    """Reserved concurrency 1, 1 s a run, Poisson events at 0.5/s: an event arriving while the
    one environment is busy is throttled, waits in Lambda's queue and retries; none is lost and
    each runs exactly once (ok runs = events, apart from those still waiting at the end)."""
    data = _one_event_system(
        _lambda(reserved_concurrency=1), {"handler": "1s"}, rate="0.5/s", duration="20m"
    )
    data["workload"]["arrivals"][0]["steady"]["spacing"] = "poisson"
    run = _run(data)
    fn = run.extra["system"]["services"]["fn"]
    a = fn["async"]
    assert a["throttle_retries"] > 50 and a["expired"] == 0 and a["failed"] == 0
    assert fn["outcomes"]["throttled"] == a["throttle_retries"] + 0  # every throttle retried...
    assert 0 <= a["events"] - fn["outcomes"]["ok"] <= 5  # ...and every event ran once


# --- EventBridge ----------------------------------------------------------------------------------
def _bus_system(rules: list[dict], services: list[dict], placement: dict, **kw: Any) -> dict:
    entry = {
        "name": "orders",
        "entry": 1,
        "handler": "1ms",
        "steps": [{"publish": "bus"}],
    }
    queues = [
        {
            "name": "bus",
            "type": "eventbridge",
            "latency": kw.pop("latency", "100ms"),
            "rules": rules,
        }
    ]
    queues += kw.pop("queues", [])
    steady = {"rate": kw.pop("rate", "10/s"), "spacing": "uniform", **kw.pop("steady", {})}
    return _system(
        [entry, *services],
        kw.pop("platforms", [_k8s("eks", 4), _lambda()]),
        {"p": {"orders": "eks", **placement}},
        replications=1,
        duration=kw.pop("duration", "10m"),
        warmup=0,
        workload={"arrivals": [{"steady": steady}]},
        queues=queues,
        **kw,
    )


def test_eventbridge_fan_out_counts_and_latency_by_hand() -> None:
    """Every order is one PutEvents entry; rule a (all events) -> Lambda `thumbs`, rule b (all) ->
    SQS `mail` -> Lambda `mailer`, rule c (probability 1/4) -> Lambda `audit`. N entries: N
    matches of a and b, c within 4 binomial standard deviations of N/4; every match delivered
    100 ms after its PutEvents (constant latency; Lambda and SQS accept at once)."""
    rules = [
        {"name": "a", "target": "thumbs"},
        {"name": "b", "target": "mail"},
        {"name": "c", "target": "audit", "probability": 0.25},
    ]
    services = [
        {"name": "thumbs", "handler": "20ms"},
        {"name": "mailer", "handler": "5ms"},
        {"name": "audit", "handler": "5ms"},
    ]
    data = _bus_system(
        rules,
        services,
        {"thumbs": "fn", "mailer": "fn", "audit": "fn"},
        queues=[{"name": "mail", "consumer": "mailer", "batch_size": 1}],
    )
    s = _run(data).extra["system"]
    bus = s["queues"]["bus"]
    n = bus["sent"]
    assert n == s["services"]["orders"]["attempts"]
    r = bus["rules"]
    assert r["a"]["matched"] == n and r["b"]["matched"] == n
    assert abs(r["c"]["matched"] - n / 4) <= 4 * math.sqrt(n * 0.25 * 0.75)
    assert bus["matched"] == 2 * n + r["c"]["matched"]
    # the last entry (put at 599.901 s) is still in flight at the end (600 s): 2 or 3 matches
    assert 2 <= bus["matched"] - bus["delivered"] <= 3
    assert bus["dlq"] == 0 and bus["retries"] == 0
    assert bus["time_in_queue_ms"]["max"] == pytest.approx(100.0, abs=1e-6)
    assert bus["time_in_queue_ms"]["p50"] == pytest.approx(100.0, abs=1e-6)
    assert s["queues"]["mail"]["sent"] == r["b"]["delivered"] == n - 1
    assert s["services"]["audit"]["async"]["events"] == r["c"]["matched"]


def test_api_destination_is_paced_to_its_rate_limit() -> None:
    """Rule -> a pod service over HTTP with InvocationRateLimitPerSecond 2; 10 events a second
    for 60 s (600, evenly spaced from t0). Event k is delivered at PutEvents + 100 ms latency,
    but its request may go no sooner than the first request + k / 2 s: the last (k = 599) goes
    at t0 + 0.1 + 299.5 s, answered 10 ms later; its PutEvents was at t0 + 59.9 s (+ 1 ms of the
    entry's work): 0.1 + 299.5 + 0.010 - 59.9 s after it."""
    data = _bus_system(
        [{"name": "hook", "target": "sink", "rate_limit": 2}],
        [{"name": "sink", "handler": "10ms"}],
        {"sink": "eks"},
        duration="400s",
        steady={"end": "60s"},
    )
    s = _run(data).extra["system"]
    bus = s["queues"]["bus"]
    assert bus["sent"] == 600 and bus["delivered"] == 600 and bus["invocations"] == 600
    want = (0.1 + 299.5 + 0.010 - 59.9) * 1e3
    assert bus["time_in_queue_ms"]["max"] == pytest.approx(want, abs=1e-6)


def test_api_destination_failures_retry_then_go_to_the_dlq() -> None:
    """An endpoint that always answers an error; MaximumRetryAttempts 3: 4 requests per event, 3
    retries, then the DLQ; full-jitter backoff at most 1 + 2 + 4 s in total (base 1 s)."""
    rule = {"name": "hook", "target": "sink", "retry": {"maximum_retry_attempts": 3}}
    data = _bus_system(
        [rule],
        [{"name": "sink", "handler": "10ms", "error_rate": 1.0}],
        {"sink": "eks"},
        steady={"end": "500s"},
    )
    s = _run(data).extra["system"]
    bus = s["queues"]["bus"]
    n = bus["sent"]
    assert bus["invocations"] == 4 * n and bus["retries"] == 3 * n and bus["dlq"] == n
    assert bus["delivered"] == 0 and s["services"]["sink"]["attempts"] == 4 * n
    # PutEvents to the last failure: 100 ms + 4 x 10 ms + at most 7 s of backoff
    assert s["async_completion_ms"]["max"] <= 1 + 100 + 40 + 7000 + 1e-6


# --- SQS FIFO -----------------------------------------------------------------------------------
def _fifo_system(queue: dict, consumer: str = "fn", **kw: Any) -> dict:
    services = [
        {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "jobs"}]},
        {"name": "worker", "handler": kw.pop("handler", {"dist": "exponential", "mean": 0.1})},
    ]
    return _system(
        services,
        [_k8s("eks", 4, 4), _lambda(), _k8s("pods", 3, 2)],
        {"p": {"front": "eks", "worker": consumer}},
        queues=[{"name": "jobs", "consumer": "worker", "fifo": True, **queue}],
        **kw,
    )


def test_fifo_one_group_batch_one_is_a_single_server() -> None:
    """One message group, batch size 1: one message in flight at a time, in order - an M/M/1
    queue (Poisson 5/s, exponential 100 ms, no start-up): Wq = rho / (mu - lambda) = 0.1 s."""
    data = _fifo_system({"groups": 1, "batch_size": 1}, rate="5/s", duration="2h", replications=4)
    sc = make_scenario(data)
    runs = [run_one(sc, "p", r, ROOT) for r in range(sc.replications)]
    lam, mu = 5.0, 10.0
    wq = (lam / mu) / (mu - lam)
    per = [r.extra["system"]["queues"]["jobs"]["time_in_queue_ms"]["mean"] / 1e3 for r in runs]
    lo, hi = t_ci(per)
    assert lo <= wq <= hi, (wq, lo, hi)
    assert all(r.extra["system"]["services"]["worker"]["instances_peak"] == 1 for r in runs)


@pytest.mark.parametrize("consumer", ["fn", "pods"])
def test_fifo_keeps_order_and_one_batch_in_flight_per_group(
    consumer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of every receive: within a group the messages come in send order (no failures:
    each once), and no receive takes a group that has a message in flight. The Lambda event
    source mapping's concurrency reaches the number of groups (4) and no more; pods: 6 slots,
    still 4 groups in flight at most."""
    from sim.systems import engine

    log: list[tuple[float, list[int], list[int]]] = []
    held: dict[int, int] = {}
    peak = [0]  # most groups in flight at once

    class Spy(engine.SQS_QUEUE):  # (the engine's SqsQueue, a compiled class: not patchable)
        def _start(self, now: float, batch: list, slot: Any) -> None:
            assert not any(held.get(m[5]) for m in batch), "a group already in flight"
            for m in batch:
                held[m[5]] = held.get(m[5], 0) + 1
            peak[0] = max(peak[0], sum(1 for v in held.values() if v))
            log.append((now, [m[5] for m in batch], [m[6] for m in batch]))
            super()._start(now, batch, slot)

        def settle(self, batch: list, ok: Any, now: float, rx: list) -> None:
            for m in batch:
                held[m[5]] -= 1
            super().settle(batch, ok, now, rx)

    monkeypatch.setattr(engine, "SQS_QUEUE", Spy)  # the queues SystemModel makes
    data = _fifo_system(
        {"groups": 4, "batch_size": 3},
        consumer,
        rate="40/s",
        duration="5m",
        warmup=0,
        replications=1,
        handler="30ms",
    )
    run = run_one(make_scenario(data), "p", 0, ROOT)
    per_group: dict[int, list[int]] = {}
    for _, groups, seqs in log:
        for g, n in zip(groups, seqs, strict=True):
            per_group.setdefault(g, []).append(n)
    assert sorted(per_group) == [0, 1, 2, 3]
    for seqs in per_group.values():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert peak[0] == 4
    if consumer == "fn":
        assert run.extra["system"]["services"]["worker"]["instances_peak"] == 4


def test_fifo_requests_are_billed_at_the_fifo_rate() -> None:
    """3,600 messages of 1 KB in 1 h, batch size 1: 3,600 sends + 3,600 receives + 3,600 deletes
    at $0.50 per million (FIFO), x 730 = $3.942 a month (standard: $3.1536)."""
    data = _fifo_system(
        {"groups": 2, "batch_size": 1},
        rate="1/s",
        duration="1h",
        warmup=0,
        replications=1,
        handler="50ms",
    )
    data["workload"]["arrivals"][0]["steady"]["spacing"] = "uniform"
    q = run_one(make_scenario(data), "p", 0, ROOT).extra["system"]["queues"]["jobs"]
    assert q["sent"] == 3600 and q["deleted"] == 3600
    assert q["monthly_cost_usd"] == pytest.approx(3 * 3600 * 0.50 / 1e6 * 730, abs=0.005)


# --- the bill -------------------------------------------------------------------------------------
def _acceptance_month(fn: dict) -> dict:
    """The acceptance month's system (below): orders on EKS -> a bus -> thumbs (Lambda async)
    and the SQS queue `mail` -> mailer, both functions on the Lambda platform `fn`."""
    services = [
        {"name": "thumbs", "handler": "200ms"},
        {"name": "mailer", "handler": "50ms"},
    ]
    eks = {
        **_k8s("eks", 2),
        "load_balancer": {"type": "none"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks", "min_nodes": 1},
    }
    data = _bus_system(
        [{"name": "images", "target": "thumbs"}, {"name": "email", "target": "mail"}],
        services,
        {"thumbs": "fn", "mailer": "fn"},
        platforms=[eks, fn],
        queues=[{"name": "mail", "consumer": "mailer", "batch_size": 1, "message_size": "4KB"}],
        rate="1/s",
        duration="1h",
    )
    data["queues"][0]["event_size"] = "2KB"
    return data


def test_hybrid_month_bill_by_hand_with_eventbridge() -> None:
    """The acceptance month (issue 17): 1 order/s for 1 h, evenly spaced = 3,600 orders on EKS
    (2 pods of 1 vCPU on one m5.xlarge, no load balancer), each one 2 KB PutEvents entry (one
    64 KB chunk) to a bus with two rules: every event -> the 200 ms `thumbs` Lambda (async
    invocation) and -> the SQS queue `mail` (4 KB, one chunk), drained by the 50 ms `mailer`
    Lambda with batch size 1. Lambdas: 1,769 MB x86_64, no Init. Month = 730 h = 730 x the window.
    Rates (sim/pricing/prices.yaml): EventBridge custom events $1.00/M; SQS standard $0.40/M;
    Lambda $0.0000166667 per GB-s and $0.20/M requests; m5.xlarge $0.192/h; EKS $0.10/h; gp3
    $0.08 per GB-month (20 GiB root volume)."""
    run = _run(_acceptance_month(_lambda()))
    s = run.extra["system"]
    assert s["queues"]["bus"]["sent"] == 3600 and s["queues"]["mail"]["deleted"] == 3600
    m = 730.0  # months per window: 730 h / 1 h
    eventbridge = 3600 * 1 * 1.00 / 1e6 * m  # 3,600 events x 1 chunk = $2.628
    sqs = (3600 + 2 * 3600) * 0.40 / 1e6 * m  # send + receive + delete = $3.1536
    gb = 1769 / 1024
    thumbs = (3600 * 0.200 * gb * 0.0000166667 + 3600 * 0.20 / 1e6) * m  # $15.6589
    mailer = (3600 * 0.050 * gb * 0.0000166667 + 3600 * 0.20 / 1e6) * m  # $4.3089
    nodes, control_plane, ebs = 0.192 * 730, 0.10 * 730, 20 * 0.08  # $140.16, $73.00, $1.60
    b = s["services"]["orders"]["monthly_breakdown_usd"]
    assert b["nodes"] == pytest.approx(nodes, abs=0.005)
    assert b["control_plane"] == pytest.approx(control_plane, abs=0.005)
    assert b["ebs"] == pytest.approx(ebs, abs=0.005)
    assert s["queues"]["bus"]["monthly_cost_usd"] == pytest.approx(eventbridge, abs=0.005)
    assert s["queues"]["mail"]["monthly_cost_usd"] == pytest.approx(sqs, abs=0.005)
    assert s["services"]["thumbs"]["monthly_cost_usd"] == pytest.approx(thumbs, abs=0.005)
    assert s["services"]["mailer"]["monthly_cost_usd"] == pytest.approx(mailer, abs=0.005)
    total = eventbridge + sqs + thumbs + mailer + nodes + control_plane + ebs  # $240.51
    assert run.bill.monthly_usd == pytest.approx(total, abs=0.005)
    assert total == pytest.approx(240.51, abs=0.005)


def test_hybrid_month_bill_by_hand_with_a_nat_gateway() -> None:
    """The acceptance month above with both functions in a VPC behind one NAT Gateway, each
    invocation fetching 20,000 bytes from the internet through it (`cost.nat`). The gateway is
    the VPC's: its hours and public IPv4 are billed once, not once per function. Added to the
    $240.51: gateway 730 h x $0.045 = $32.85; its IPv4 730 h x $0.005 = $3.65; data (3,600
    thumbs + 3,600 mailer invocations) x 20,000 B = 1.44e8 B a window x 730 / 2^30 B per GB =
    97.90 GB x $0.045 = $4.41 (prices.yaml nat_gateway.hours/data, public_ipv4.hours,
    aws.bytes_per_gb). Total $281.42."""
    run = _run(
        _acceptance_month(_lambda(cost={"nat": {"enabled": True, "bytes_per_request": 20000}}))
    )
    s = run.extra["system"]["services"]
    m = 730.0
    hours, ipv4 = 0.045 * 730, 0.005 * 730  # $32.85, $3.65
    data_thumbs = 3600 * 20000 * m / 2**30 * 0.045  # $2.2028
    data_mailer = 3600 * 20000 * m / 2**30 * 0.045
    thumbs, mailer = s["thumbs"]["monthly_breakdown_usd"], s["mailer"]["monthly_breakdown_usd"]
    assert thumbs["nat"] == pytest.approx(hours + data_thumbs, abs=0.005)  # the first function
    assert thumbs["public_ipv4"] == pytest.approx(ipv4, abs=0.005)
    assert mailer["nat"] == pytest.approx(data_mailer, abs=0.005)  # data only
    assert mailer.get("public_ipv4", 0.0) == 0.0
    total = 240.51 + hours + ipv4 + data_thumbs + data_mailer
    assert run.bill.monthly_usd == pytest.approx(total, abs=0.01)
    assert round(hours + ipv4 + data_thumbs + data_mailer, 2) == 40.91


# --- bad input ------------------------------------------------------------------------------------
def _with_bus(d: dict) -> None:
    d["services"][0]["steps"].append({"publish": "bus"})
    d["queues"].append(
        {"name": "bus", "type": "eventbridge", "rules": [{"name": "r", "target": "c"}]}
    )


@pytest.mark.parametrize(
    "change, key, words",
    [
        (lambda d: d["queues"][0].update(groups=4), "queues[0]", "add `fifo: true`"),
        (
            lambda d: d["queues"][0].update(fifo=True, batch_size=20),
            "queues[0]",
            "batch_size is at most 10",
        ),
        (
            lambda d: d["queues"][0].update(fifo=True, batching_window="1s"),
            "queues[0]",
            "no batching_window on a FIFO queue",
        ),
        (
            lambda d: (
                d["queues"][0].update(fifo=True),
                d["platforms"].append({"name": "edge", "type": "wasm"}),
                d["placements"][0]["services"].update(c="edge"),
            ),
            "placements[0].services.c",
            "a Wasm platform cannot",
        ),
    ],
)
def test_bad_fifo_exits_2_naming_the_key(tmp_path: Path, change: Any, key: str, words: str) -> None:
    code, out = _bad(tmp_path, change)
    assert code == 2, out
    assert key in out and words in out, out


@pytest.mark.parametrize(
    "change, key, words",
    [
        (
            lambda d: (_with_bus(d), d["queues"][1]["rules"][0].update(target="nope")),
            "queues[1].rules[0].target",
            "unknown service or SQS queue 'nope'",
        ),
        (
            lambda d: (_with_bus(d), d["queues"][1].update(rules=[])),
            "queues[1].rules",
            "at least 1",
        ),
        (
            lambda d: (_with_bus(d), d["services"][0]["steps"].pop()),
            "queues[1]",
            "nothing publishes to bus",
        ),
        (
            lambda d: (_with_bus(d), d["queues"][1].update(type="sns")),
            "queues[1]",
            "unknown 'type' 'sns'",
        ),
        (
            lambda d: (
                _with_bus(d),
                d["services"][2].update({"async": {"maximum_retry_attempts": 3}}),
            ),
            "services[2].async.maximum_retry_attempts",
            "less than or equal to 2",
        ),
    ],
)
def test_bad_bus_exits_2_naming_the_key(tmp_path: Path, change: Any, key: str, words: str) -> None:
    code, out = _bad(tmp_path, change)
    assert code == 2, out
    assert key in out and words in out, out
    assert "Traceback" not in out


def test_good_bus_runs(tmp_path: Path) -> None:
    code, out = _bad(tmp_path, _with_bus)
    assert code == 0, out
