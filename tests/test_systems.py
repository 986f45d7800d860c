"""Systems of services (issue 17): closed forms, hand-computed figures, bad input.

Every expected value here is computed by hand or from queueing theory (Erlang C, Jackson's
product form, the hypoexponential distribution), never from the simulator's own output.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.engine import run_one

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent


def _k8s(name: str, replicas: int, concurrency: int = 1, routing: str = "ideal_fifo") -> dict:
    return {
        "name": name,
        "type": "kubernetes",
        "replicas": replicas,
        "routing": routing,
        "pod": {"concurrency": concurrency, "cpu": 1, "memory": "1Gi"},
        "ingress_latency": 0,
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    }


def _system(
    services: list[dict], platforms: list[dict], placements: dict[str, dict], **kw: Any
) -> dict:
    data = {
        "name": "sys",
        "duration": kw.pop("duration", "1h"),
        "warmup": kw.pop("warmup", "5m"),
        "replications": kw.pop("replications", 3),
        "seed": kw.pop("seed", 11),
        "workload": {"arrivals": [{"steady": {"rate": kw.pop("rate", "10/s")}}]},
        "platforms": platforms,
        "services": services,
        "placements": [{"name": n, "services": m} for n, m in placements.items()],
    }
    data.update(kw)
    return data


def erlang_c_sojourn(lam: float, mean_s: float, c: int) -> float:
    """Mean time in an M/M/c station: W = Wq + 1/mu, Wq = C(c, a) / (c mu - lam)."""
    mu, a = 1.0 / mean_s, lam * mean_s
    rho = a / c
    assert rho < 1
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) / (1 - rho)
    p_wait = tail / (head + tail)
    return p_wait / (c * mu - lam) + mean_s


def t_ci(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    v = np.asarray(values)
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def _runs(data: dict, placement: str) -> list[Any]:
    sc = make_scenario(data)
    return [run_one(sc, placement, r, ROOT) for r in range(sc.replications)]


# --- closed forms ---------------------------------------------------------------------------------
def test_jackson_network_matches_product_form() -> None:
    """Open Jackson network: A feeds back to itself (0.2), branches to B (0.5) or C (0.3); B
    feeds D (tandem). Traffic equations: lam_A = 10/0.8 = 12.5, lam_B = lam_D = 6.25,
    lam_C = 3.75. Each station is M/M/c (fixed pods, concurrency 1, one FIFO queue)."""
    ex = lambda m: {"dist": "exponential", "mean": m}  # noqa: E731
    services = [
        {
            "name": "A",
            "entry": 1,
            "handler": ex("100ms"),
            "steps": [
                {
                    "one_of": [
                        {"publish": "A", "probability": 0.2},
                        {"publish": "B", "probability": 0.5},
                        {"publish": "C", "probability": 0.3},
                    ]
                }
            ],
        },
        {"name": "B", "handler": ex("100ms"), "steps": [{"publish": "D"}]},
        {"name": "C", "handler": ex("500ms")},
        {"name": "D", "handler": ex("80ms")},
    ]
    platforms = [_k8s("a2", 2), _k8s("b1", 1), _k8s("c3", 3), _k8s("d1", 1)]
    data = _system(
        services,
        platforms,
        {"net": {"A": "a2", "B": "b1", "C": "c3", "D": "d1"}},
        duration="2h",
        replications=4,
    )
    runs = _runs(data, "net")
    lam = {"A": 12.5, "B": 6.25, "C": 3.75, "D": 6.25}
    setup = {"A": (0.1, 2), "B": (0.1, 1), "C": (0.5, 3), "D": (0.08, 1)}
    w = {k: erlang_c_sojourn(lam[k], *setup[k]) for k in lam}
    for name in lam:
        per_rep = [r.extra["system"]["services"][name]["latency_ms"]["mean"] / 1e3 for r in runs]
        lo, hi = t_ci(per_rep)
        assert lo <= w[name] <= hi, (name, w[name], lo, hi)
    # End to end (entry to the end of the last task): sum of lam_i W_i / lam.
    e2e = sum(lam[k] * w[k] for k in lam) / 10.0
    per_rep = [r.extra["system"]["async_completion_ms"]["mean"] / 1e3 for r in runs]
    lo, hi = t_ci(per_rep)
    assert lo <= e2e <= hi, (e2e, lo, hi)


def _hypoexp_quantile(a: float, b: float, q: float) -> float:
    """Quantile of Exp(a) + Exp(b): F(t) = 1 - (b e^-at - a e^-bt) / (b - a), by bisection."""
    lo, hi = 0.0, 100.0 / min(a, b)
    for _ in range(200):
        t = (lo + hi) / 2
        f = 1 - (b * math.exp(-a * t) - a * math.exp(-b * t)) / (b - a)
        lo, hi = (t, hi) if f < q else (lo, t)
    return (lo + hi) / 2


def test_tandem_of_two_mm1_is_hypoexponential() -> None:
    """Two M/M/1 in tandem: a customer's sojourns are independent Exp(mu_i - lam) (Reich 1957),
    so the end-to-end time is hypoexponential(mu_1 - lam, mu_2 - lam)."""
    lam, m1, m2 = 5.0, 0.1, 0.15  # mu1 - lam = 5/s, mu2 - lam = 1.667/s
    services = [
        {
            "name": "s1",
            "entry": 1,
            "handler": {"dist": "exponential", "mean": m1},
            "steps": [{"publish": "s2"}],
        },
        {"name": "s2", "handler": {"dist": "exponential", "mean": m2}},
    ]
    data = _system(
        services,
        [_k8s("one", 1), _k8s("two", 1)],
        {"t": {"s1": "one", "s2": "two"}},
        rate="5/s",
        duration="4h",
        replications=3,
    )
    runs = _runs(data, "t")
    a, b = 1 / m1 - lam, 1 / m2 - lam
    for key, q, tol in (("p50", 0.5, 0.03), ("p99", 0.99, 0.05)):
        want = _hypoexp_quantile(a, b, q)
        got = np.mean([r.extra["system"]["async_completion_ms"][key] / 1e3 for r in runs])
        assert got == pytest.approx(want, rel=tol), key


def _lambda(name: str = "fn", **kw: Any) -> dict:
    return {
        "name": name,
        "type": "lambda",
        "memory": 1769,  # exactly 1 vCPU: handler time unscaled
        "init": 0,
        "sandbox_overhead": 0,
        "keep_alive": "1h",
        **kw,
    }


def test_synchronous_chain_of_warm_lambdas_is_the_sum_of_work() -> None:
    """a -> b -> c, each with its own work before and after the call: no queueing on Lambda and
    no start-up (init 0), so every request takes exactly 4 + 3 + 7 + 5 + 6 ms = 25 ms."""
    services = [
        {
            "name": "a",
            "entry": 1,
            "handler": "10ms",
            "steps": [{"work": 0.4}, {"call": "b"}, {"work": 0.6}],
        },
        {
            "name": "b",
            "handler": "9ms",
            "steps": [{"work": 1 / 3}, {"call": "c"}, {"work": 2 / 3}],
        },
        {"name": "c", "handler": "6ms"},
    ]
    data = _system(
        services,
        [_lambda()],
        {"all-lambda": {"a": "fn", "b": "fn", "c": "fn"}},
        replications=1,
        duration="10m",
        warmup=0,
        network={"invoke_latency": 0},  # the handlers' work alone (hops: test_systems_hops.py)
    )
    sc = make_scenario(data)
    run = run_one(sc, "all-lambda", 0, ROOT)
    s = run.stats.sample
    lat = s["end"] - s["arrival"] + s["overhead"]
    assert lat.size > 5000
    np.testing.assert_allclose(lat, 0.025, rtol=0, atol=1e-9)
    assert run.stats.outcomes["ok"] == run.stats.requests


def test_sqs_lambda_batch_one_max_concurrency_c_is_mmc() -> None:
    """SQS -> Lambda with BatchSize 1 and MaximumConcurrency 3 (no start-up): an M/M/3 queue;
    the time in the queue is Erlang C's Wq."""
    lam, mean, c = 20.0, 0.1, 3
    services = [
        {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "jobs"}]},
        {"name": "worker", "handler": {"dist": "exponential", "mean": mean}},
    ]
    data = _system(
        services,
        [_k8s("eks", 2), _lambda()],
        {"p": {"front": "eks", "worker": "fn"}},
        rate="20/s",
        duration="2h",
        replications=4,
        queues=[{"name": "jobs", "consumer": "worker", "batch_size": 1, "maximum_concurrency": c}],
    )
    runs = _runs(data, "p")
    wq = erlang_c_sojourn(lam, mean, c) - mean
    per_rep = [r.extra["system"]["queues"]["jobs"]["time_in_queue_ms"]["mean"] / 1e3 for r in runs]
    lo, hi = t_ci(per_rep)
    assert lo <= wq <= hi, (wq, lo, hi)


# --- retries --------------------------------------------------------------------------------------
def test_retry_amplification_by_hand() -> None:
    """The callee takes 1 s on its one pod; the caller gives up after 0.5 s and retries twice: every
    attempt times out, so the callee is offered 3 attempts per request (1 + retries) and every
    entry request fails as timed out. With a 30 s timeout nothing is retried: 1 attempt each."""

    def sys(timeout: str) -> dict:
        services = [
            {
                "name": "caller",
                "entry": 1,
                "handler": "1ms",
                "steps": [{"call": "slow", "timeout": timeout, "retries": 2}],
            },
            {"name": "slow", "handler": "1s"},
        ]
        platforms = [_k8s("front", 50, concurrency=10), _k8s("back", 1)]
        return _system(
            services,
            platforms,
            {"p": {"caller": "front", "slow": "back"}},
            rate="0.5/s",
            duration="2h",
            replications=1,
            warmup=0,
        )

    run = _runs(sys("500ms"), "p")[0]
    calls = run.extra["system"]["services"]["slow"]
    entries = run.stats.requests
    arrived = run.extra["system"]["services"]["caller"]["attempts"]
    # Entry requests still retrying at the end (a handful) made 1 to 3 attempts.
    assert arrived - entries <= 5
    assert 3 * entries + (arrived - entries) <= calls["attempts"] <= 3 * arrived
    assert run.stats.outcomes["timed_out"] >= entries - 3
    run = _runs(sys("30s"), "p")[0]
    calls = run.extra["system"]["services"]["slow"]
    arrived = run.extra["system"]["services"]["caller"]["attempts"]
    assert arrived - 1 <= calls["attempts"] <= arrived
    assert run.stats.outcomes["timed_out"] == 0


# --- the bill -------------------------------------------------------------------------------------
def test_hybrid_month_bill_by_hand() -> None:
    """Evenly spaced arrivals, constant handlers: every quantity is known in advance.

    1 request/s for 1 h -> 3,600 orders (EKS, 2 pods of 1 vCPU on m5.xlarge: one node) each
    publishing one 100 KB message (2 chunks of 64 KB) to SQS, consumed by a 1,769 MB Lambda,
    batch size 1, 50 ms a message (billed 50 ms, one cold start of 0 ms init).
    """
    services = [
        {"name": "orders", "entry": 1, "handler": "20ms", "steps": [{"publish": "mail"}]},
        {"name": "mailer", "handler": "50ms"},
    ]
    platforms = [
        {
            **_k8s("eks", 2),
            "load_balancer": {"type": "none"},
            "cluster": {"node": "m5.xlarge", "control_plane": "eks", "min_nodes": 1},
        },
        _lambda(),
    ]
    data = _system(
        services,
        platforms,
        {"hybrid": {"orders": "eks", "mailer": "fn"}},
        replications=1,
        duration="1h",
        warmup=0,
        workload={"arrivals": [{"steady": {"rate": "1/s", "spacing": "uniform"}}]},
        queues=[{"name": "mail", "consumer": "mailer", "batch_size": 1, "message_size": "100KB"}],
    )
    run = _runs(data, "hybrid")[0]
    scale = 730.0  # 730 h month / 1 h window
    sqs = (3600 * 2 + 2 * 3600 * 2) * 0.40 / 1e6 * scale  # send + receive + delete, 2 chunks
    gb_s = 3600 * 0.050 * 1769 / 1024
    lam = (gb_s * 0.0000166667 + 3600 * 0.20 / 1e6) * scale
    per = run.extra["system"]["services"]
    queue = run.extra["system"]["queues"]["mail"]
    assert queue["sent"] == 3600 and queue["deleted"] == 3600
    assert queue["monthly_cost_usd"] == pytest.approx(sqs, abs=0.005)
    assert per["mailer"]["monthly_cost_usd"] == pytest.approx(lam, abs=0.005)
    b = per["orders"]["monthly_breakdown_usd"]
    assert b["nodes"] == pytest.approx(0.192 * 730, abs=0.005)  # one m5.xlarge
    assert b["control_plane"] == pytest.approx(0.10 * 730, abs=0.005)
    assert run.bill.monthly_usd == pytest.approx(
        sqs + lam + per["orders"]["monthly_cost_usd"], abs=0.005
    )


# --- common random numbers, determinism, the single-service path --------------------------------
def test_placements_share_draws_and_runs_repeat() -> None:
    services = [
        {
            "name": "api",
            "entry": 1,
            "handler": {"dist": "exponential", "mean": "20ms"},
            "steps": [{"call": "db", "probability": 0.5}],
        },
        {"name": "db", "handler": {"dist": "exponential", "mean": "5ms"}},
    ]
    data = _system(
        services,
        [_k8s("eks", 4, 4), _lambda()],
        {"k8s": {"api": "eks", "db": "eks"}, "mixed": {"api": "eks", "db": "fn"}},
        replications=1,
        duration="10m",
    )
    sc = make_scenario(data)
    a, b = run_one(sc, "k8s", 0, ROOT), run_one(sc, "mixed", 0, ROOT)
    # the same calls were drawn in both placements
    assert a.extra["system"]["services"]["db"]["requests"] == pytest.approx(
        b.extra["system"]["services"]["db"]["requests"], abs=2
    )
    again = run_one(sc, "mixed", 0, ROOT)
    np.testing.assert_array_equal(again.stats.sample["end"], b.stats.sample["end"])


# --- bad input ------------------------------------------------------------------------------------
GOOD = _system(
    [
        {"name": "a", "entry": 1, "handler": "10ms", "steps": [{"call": "b"}, {"publish": "q"}]},
        {"name": "b", "handler": "10ms"},
        {"name": "c", "handler": "10ms"},
    ],
    [_k8s("eks", 2), _lambda()],
    {"p": {"a": "eks", "b": "eks", "c": "fn"}},
    replications=1,
    duration="1m",
    warmup=0,
    queues=[{"name": "q", "consumer": "c"}],
)


def _bad(tmp_path: Path, change: Any, good: dict | None = None) -> tuple[int, str]:
    """`sim run` of `good` (default GOOD) after `change`: (exit code, output)."""
    import yaml

    data = copy.deepcopy(GOOD if good is None else good)
    change(data)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    res = CliRunner().invoke(main, ["run", str(f), "--out", str(tmp_path / "o"), "--no-html"])
    return res.exit_code, res.output


def test_good_system_runs(tmp_path: Path) -> None:
    code, out = _bad(tmp_path, lambda d: None)
    assert code == 0, out


@pytest.mark.parametrize(
    "change, key, words",
    [
        (
            lambda d: d["services"][0]["steps"][0].update(call="nope"),
            "services[0].steps[0]",
            "unknown service 'nope'",
        ),
        (lambda d: d["services"][1].update(steps=[{"call": "a"}]), "services[0].steps", "cycle"),
        (lambda d: d["queues"][0].update(consumer="zz"), "queues[0].consumer", "unknown service"),
        (lambda d: d["queues"][0].pop("consumer"), "queues[0].consumer", "required"),
        (lambda d: d["services"][0]["steps"].pop(1), "queues[0]", "nothing publishes"),
        (lambda d: d["placements"][0]["services"].pop("c"), "placements[0].services", "unplaced"),
        (
            lambda d: d["placements"][0]["services"].update(c="gke"),
            "placements[0].services.c",
            "unknown platform",
        ),
        (
            lambda d: d["services"][0]["steps"].append({"publish": "nowhere"}),
            "services[0].steps[2]",
            "unknown queue",
        ),
    ],
)
def test_bad_system_exits_2_naming_the_key(
    tmp_path: Path, change: Any, key: str, words: str
) -> None:
    code, out = _bad(tmp_path, change)
    assert code == 2, out
    assert key in out and words in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "step, line",
    [
        (
            {"publsh": "q"},
            "services[0].steps[2].publsh (line {}): unknown key `publsh`, did you mean `publish`?",
        ),
        (
            {"zzz": 1},
            "services[0].steps[2] (line {}): a step needs one of the keys "
            "work, call, parallel, publish, one_of",
        ),
        (
            {"one_of": [{"cal": "b"}]},
            "services[0].steps[2].one_of[0].cal (line {}): unknown key `cal`, did you mean `call`?",
        ),
    ],
)
def test_a_bad_step_is_one_problem_not_one_per_step_kind(
    tmp_path: Path, step: dict, line: str
) -> None:
    """A step's kind is the key that names it (or the closest key), so a typo reports that kind's
    problem alone; it used to print `required key is missing` for each of the other four kinds."""
    code, out = _bad(tmp_path, lambda d: d["services"][0]["steps"].append(step))
    assert code == 2, out
    key = next(iter(step)) if "one_of" not in step else "cal"
    lines = (tmp_path / "s.yaml").read_text().splitlines()
    at = next(i + 1 for i, x in enumerate(lines) if f"{key}:" in x)  # the file's line of the key
    problems = [x for x in out.splitlines() if x.startswith("sim: error:")]
    assert len(problems) == 1 and problems[0].endswith(line.format(at)), out


# --- KEDA on the simulated queue ------------------------------------------------------------------
def _keda_sqs_workers() -> dict:
    """Pods `workers` scaled by KEDA's aws-sqs-queue trigger: queueLength 5, 0..10 pods."""
    keda = {
        "minReplicaCount": 0,
        "maxReplicaCount": 10,
        "triggers": [{"type": "aws-sqs-queue", "metadata": {"queueLength": "5"}}],
    }
    workers = {**_k8s("workers", 0), "keda": keda}
    workers.pop("replicas")
    return workers


def test_keda_sqs_scaler_reads_the_simulated_queue() -> None:
    """200 messages at t = 1 s, 60 s each, KEDA aws-sqs-queue (queueLength 5, 0..10 pods, polls
    every 30 s; the HPA it creates syncs every 15 s and, without `behavior`, limits a scale-up to
    max(2 x current, 4) (kubernetes pkg/controller/podautoscaler/horizontal.go, scaleUpLimit*).
    By hand: the poll at 0 s sees nothing; at 30 s it sees 200 messages (ApproximateNumberOfMessages
    + NotVisible) and activates 0 -> 1; the HPA's sync at 30 s wants ceil(200 / 5) = 40, limited to
    max(2, 4) = 4; at 45 s to max(8, 4) = 8; at 60 s to 16, capped at maxReplicaCount 10."""
    workers = _keda_sqs_workers()
    services = [
        {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "jobs"}]},
        {"name": "worker", "handler": "60s"},
    ]
    data = _system(
        services,
        [_k8s("eks", 10, 10), workers],
        {"p": {"front": "eks", "worker": "workers"}},
        replications=1,
        duration="5m",
        warmup=0,
        workload={"arrivals": [{"batch": {"at": ["1s"], "size": 200}}]},
        queues=[{"name": "jobs", "consumer": "worker", "batch_size": 1}],
    )
    run = _runs(data, "p")[0]
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind.startswith("worker")]
    assert steps[:4] == [(30.0, 0, 1), (30.0, 1, 4), (45.0, 4, 8), (60.0, 8, 10)], steps
    assert run.extra["system"]["services"]["worker"]["instances_peak"] == 10


def test_event_source_mapping_scales_back_to_five_after_reaching_its_cap() -> None:
    """AWS services-sqs-scaling.html: pollers start at 5 concurrent batches, add 5 a second while
    messages wait, and "when traffic is low, Lambda scales back the processing to five concurrent
    batches". A burst of 100 one-second jobs drives the mapping to its cap of 10; once the queue
    is empty it is back at 5, so a second, identical burst 5 minutes later waits exactly as long
    as the first (it waited less when the cap stuck)."""
    services = [
        {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "jobs"}]},
        {"name": "worker", "handler": "1s"},
    ]

    def mean_wait(bursts: int) -> float:
        data = _system(
            services,
            [_k8s("eks", 4, concurrency=100), _lambda()],
            {"p": {"front": "eks", "worker": "fn"}},
            duration=f"{5 * bursts}m",
            warmup="0s",
            replications=1,
            queues=[
                {"name": "jobs", "consumer": "worker", "batch_size": 1, "maximum_concurrency": 10}
            ],
        )
        data["workload"] = {"arrivals": [{"batch": {"every": "5m", "size": 100}}]}
        (run,) = _runs(data, "p")
        q = run.extra["system"]["queues"]["jobs"]
        assert q["sent"] == 100 * bursts
        return q["time_in_queue_ms"]["mean"]

    assert mean_wait(2) == pytest.approx(mean_wait(1), rel=1e-9)
