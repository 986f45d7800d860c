"""AWS Fargate on ECS (`type: fargate`, issue 19 item 1).

Expected values are worked by hand from AWS's documented rules and prices (docs/model.md
"AWS Fargate"), never copied from the code's output: the task sizes AWS accepts, the step-in-load
scaling timeline, the queue of fixed tasks (M/M/c with one FIFO, E_c/M/1 with the ALB's round
robin), the bill to the cent, and the Spot interruption count.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats

from sim.cli import main
from sim.errors import InputError
from sim.platforms.fargate_spec import allowed_memory_mib
from sim.pricing.fargate import FargateUsage, TaskLife, fargate_bill
from sim.pricing.kubernetes import KubernetesUsage, kubernetes_bill
from sim.studies.crossover import run_crossover
from sim.studies.sweep import Base, parse_param, run_sweep
from sim.studies.tune import parse_slo, tune
from tests.conftest import ROOT, make_scenario, run_platform
from tests.test_kubernetes_theory import ecm1_wait, erlang_c

MONTH_H = 730.0
# us-east-1 Linux (aws.amazon.com/fargate/pricing/, transcribed; prices.yaml fargate.*)
X86_VCPU_H, X86_GB_H = 0.04048, 0.004445
ARM_VCPU_H, ARM_GB_H = 0.03238, 0.00356


def fargate(**kw: Any) -> dict[str, Any]:
    return {"name": "fg", "type": "fargate", "ingress_latency": "0s", **kw}


def scenario(platform: dict[str, Any], **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "fg-test",
        "duration": "10m",
        "replications": 1,
        "seed": 5,
        "workload": {
            "arrivals": [{"steady": {"rate": "5/s"}}],
            "service": {"duration": {"dist": "constant", "value": "50ms"}},
        },
        "platforms": [platform],
    }
    data.update(kw)
    return data


# --- task sizes (docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html) -


@pytest.mark.parametrize(
    ("vcpu", "lo", "hi", "n"),
    [
        (0.25, 512, 2048, 3),  # 512, 1024, 2048
        (0.5, 1024, 4096, 4),  # 1-4 GB by 1 GB
        (1, 2048, 8192, 7),
        (2, 4096, 16384, 13),
        (4, 8192, 30720, 23),
        (8, 16384, 61440, 12),  # 16-60 GB by 4 GB
        (16, 32768, 122880, 12),  # 32-120 GB by 8 GB
    ],
)
def test_allowed_task_sizes(vcpu, lo, hi, n):
    mem = allowed_memory_mib(vcpu)
    assert (mem[0], mem[-1], len(mem)) == (lo, hi, n)
    make_scenario(scenario(fargate(tasks=1, task={"cpu": vcpu, "memory": hi})))


@pytest.mark.parametrize(
    ("task", "words"),
    [
        ({"cpu": 0.25, "memory": 4096}, "not allowed with 0.25 vCPU"),
        ({"cpu": 1, "memory": 1024}, "2048-8192 in steps of 1024"),
        ({"cpu": 8, "memory": 18432}, "16384-61440 in steps of 4096"),
        ({"cpu": 3, "memory": 8192}, "not a Fargate size"),
    ],
)
def test_disallowed_task_sizes_name_the_key(task, words):
    with pytest.raises(InputError) as exc:
        make_scenario(scenario(fargate(tasks=1, task=task)))
    assert words in str(exc.value) and "task" in str(exc.value)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({}, "exactly one of"),
        ({"tasks": 2, "target_tracking": {"target": 100}}, "exactly one of"),
        ({"target_tracking": {"target": 100, "min_tasks": 0}}, "min_tasks"),
        ({"tasks": 1, "spot": {}, "task": {"architecture": "arm64"}}, "x86_64"),
        ({"tasks": 1, "spot": {"stop_timeout": "3m"}}, "stop_timeout"),
    ],
)
def test_bad_settings_are_input_errors(extra, words):
    with pytest.raises(InputError) as exc:
        make_scenario(scenario(fargate(**extra)))
    assert words in str(exc.value)


def test_bad_file_exits_2_naming_the_key(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(scenario(fargate(tasks=1, task={"cpu": 1, "memory": 1000}))))
    r = CliRunner().invoke(main, ["run", str(p), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "task" in r.output and "bad.yaml" in r.output


# --- a step in load, by hand ----------------------------------------------------------------------

# Evenly spaced arrivals (exact binary spacings 1/8 s and 1/32 s): 8/s throughout, +32/s in
# [600 s, 1800 s). Two tasks to start (min_tasks), ALBRequestCountPerTarget target 600 per minute,
# constant 30 s task start-up. Datapoints (requests in the minute / average healthy tasks):
# - minutes ending 60..600: 480 / 2 = 240 (< 540 = 90% of 600: AlarmLow, but ceil(2 x 240/600) =
#   1 is under min_tasks 2: nothing).
# - 660, 720, 780: 2400 / 2 = 1200 > 600, three in a row: at 780 AlarmHigh scales to
#   ceil(2 x 1200 / 600) = 4; the two new tasks are ready at 810.
# - 840: 2400 / (2 x 60 + 2 x 30 s) x 60 = 800 > 600, but inside the scale-out cooldown the
#   proposal starts from the capacity before it: ceil(2 x 800 / 600) = 3 <= 4: nothing.
# - 900..1800: 2400 / 4 = 600: not above 600 (GreaterThanThreshold), not below 540.
# - 1860..2700: 480 / 4 = 120 < 540; the 15th such datapoint is at 2700: AlarmLow scales in to
#   ceil(4 x 120 / 600) = 1 -> min_tasks 2.
STEP: dict[str, Any] = scenario(
    fargate(
        task={"cpu": 1, "memory": 2048, "startup": "30s"},
        target_tracking={"target": 600, "min_tasks": 2, "max_tasks": 10},
    ),
    duration="3000s",
    timeline_step="30s",
    workload={
        "arrivals": [
            {"steady": {"rate": "8/s", "spacing": "uniform"}},
            {"steady": {"rate": "32/s", "spacing": "uniform", "start": "600s", "end": "1800s"}},
        ],
        "service": {"duration": {"dist": "constant", "value": "50ms"}},
    },
)


def test_step_in_load_scales_as_computed_by_hand():
    run = run_platform(make_scenario(STEP))
    acts = [(d.time_s, d.kind, d.before, d.after) for d in run.decisions]
    assert acts == [
        (780.0, "target_tracking_scale_out", 2, 4),
        (2700.0, "target_tracking_scale_in", 4, 2),
    ]
    tl = run.timeline
    t = tl["time_s"]
    want_desired = np.where((t >= 780) & (t < 2700), 4, 2)
    want_ready = np.where((t >= 810) & (t < 2700), 4, 2)
    assert np.array_equal(tl["desired"], want_desired)
    assert np.array_equal(tl["ready"], want_ready)
    assert run.stats.outcomes["ok"] == 8 * 3000 + 32 * 1200
    # The bill of these task lives, by hand: two tasks for 3000 s, two from 780 s to 2700 s
    # (scale-in removes the most recently ready tasks first): 9840 task-seconds of 1 vCPU, 2 GB.
    task_h = (2 * 3000 + 2 * 1920) / 3600
    assert run.bill.breakdown["fargate_vcpu"] == pytest.approx(task_h * X86_VCPU_H)
    assert run.bill.breakdown["fargate_memory"] == pytest.approx(task_h * 2 * X86_GB_H)


# --- fixed tasks against queueing theory ----------------------------------------------------------

REPS, WARMUP = 8, 500.0


def _waits(tasks: int, lam: float, routing: str) -> np.ndarray:
    out = []
    for rep in range(REPS):
        sc = make_scenario(
            scenario(
                fargate(
                    tasks=tasks,
                    routing=routing,
                    task={"cpu": 1, "memory": 2048},
                    request_timeout=None,
                ),
                duration=f"{math.floor(50_000 / lam)}s",
                warmup=f"{WARMUP}s",
                seed=11 + rep,
                workload={
                    "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                    "service": {"duration": {"dist": "exponential", "mean": "1s"}},
                },
            )
        )
        run = run_platform(sc)
        rows = run.stats.sample
        assert rows["arrival"].size == run.stats.requests_all  # every row kept
        wait = rows["wait"][rows["arrival"] >= WARMUP]
        out.append((wait.mean(), (wait > 0).mean()))
    return np.array(out)


def _inside(est: np.ndarray, expected: dict[str, float]) -> None:
    for j, (name, value) in enumerate(expected.items()):
        x = est[:, j]
        half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
        assert x.mean() - half <= value <= x.mean() + half, (name, value, x.mean(), half)


@pytest.mark.validation
def test_fixed_tasks_with_one_fifo_are_mmc():
    """min = max tasks, concurrency 1, `routing: ideal_fifo` (one queue): M/M/4 at rho 0.75,
    Erlang C: P(wait) = C(4, 3) = 0.5094, Wq = C / (4 mu - lam) = 0.5094 s."""
    est = _waits(4, 3.0, "ideal_fifo")
    pw = erlang_c(4, 3.0)
    _inside(est, {"mean wait": pw / (4 - 3.0), "P(wait)": pw})


@pytest.mark.validation
def test_fixed_tasks_behind_the_alb_round_robin_are_ec_m_1():
    """The ALB default (round robin) with one request per task is NOT M/M/c: each task sees every
    4th Poisson arrival, Erlang-4 interarrivals: c independent E_4/M/1 queues (GI/M/1 root)."""
    est = _waits(4, 3.0, "round_robin")
    pw, wq = ecm1_wait(4, 3.0, 1.0)
    _inside(est, {"mean wait": wq, "P(wait)": pw})
    assert wq > erlang_c(4, 3.0) / (4 - 3.0)  # per-task queues wait longer than one FIFO


# --- the bill, to the cent ------------------------------------------------------------------------


def month_usage(**kw: Any) -> FargateUsage:
    """Two 0.5 vCPU / 1 GB tasks running the whole 730-hour month (window = month)."""
    window = MONTH_H * 3600
    base: dict[str, Any] = {
        "window_s": window,
        "requests": 0,
        "vcpu": 0.5,
        "memory_gb": 1.0,
        "tasks": [TaskLife(0, window, stopped=False)] * 2,
    }
    return FargateUsage(**{**base, **kw})


def cents(bill, line: str | None = None) -> float:
    value = bill.monthly_usd if line is None else bill.monthly_breakdown[line]
    return round(value, 2)


def test_bill_x86_and_arm_by_hand():
    # x86: 2 x 730 h x (0.5 x 0.04048 + 1 x 0.004445) = 29.5504 + 6.4897 = $36.04
    b = fargate_bill(month_usage(), load_balancer="none")
    assert cents(b, "fargate_vcpu") == 29.55 and cents(b, "fargate_memory") == 6.49
    assert cents(b) == 36.04
    # arm64 (Graviton): 2 x 730 x (0.5 x 0.03238 + 0.00356) = 23.6374 + 5.1976 = $28.84 (28.835)
    b = fargate_bill(month_usage(architecture="arm64"), load_balancer="none")
    assert cents(b, "fargate_vcpu") == 23.64 and cents(b, "fargate_memory") == 5.20
    assert b.monthly_usd == pytest.approx(28.835, abs=1e-9)


def test_bill_one_minute_minimum_and_per_second_rounding():
    # A 1-hour window, 1 vCPU / 2 GB: 100 tasks of 20.4 s (billed 60 s each) and one of 90.2 s
    # (billed 91 s): (100 x 60 + 91) s = 6091 s x (0.04048 + 2 x 0.004445) / 3600 = $0.0835 in the
    # window, x 730 = $60.98 a month.
    lives = [TaskLife(10.0, 30.4)] * 100 + [TaskLife(100.0, 190.2)]
    u = FargateUsage(window_s=3600, requests=0, vcpu=1, memory_gb=2, tasks=lives)
    b = fargate_bill(u, load_balancer="none")
    per_s = (X86_VCPU_H + 2 * X86_GB_H) / 3600
    assert round(b.total_usd, 4) == round(6091 * per_s, 4) == 0.0835
    assert cents(b) == round(6091 * per_s * 730, 2) == 60.98
    # Still running at the window's end: its time in the window only, no minimum.
    running = FargateUsage(
        window_s=3600, requests=0, vcpu=1, memory_gb=2, tasks=[TaskLife(3590.0, 3600, False)]
    )
    assert fargate_bill(running, load_balancer="none").total_usd == pytest.approx(10 * per_s)


def test_bill_spot_and_ephemeral_storage_by_hand():
    # Spot at the table's 70% discount: $36.0401 x 0.3 = $10.81
    b = fargate_bill(month_usage(spot=True), load_balancer="none")
    assert cents(b) == 10.81 and set(b.monthly_breakdown) == {
        "fargate_spot_vcpu",
        "fargate_spot_memory",
    }
    # a scenario's own discount (50%): $18.02
    assert (
        cents(fargate_bill(month_usage(spot=True, spot_discount=0.5), load_balancer="none"))
        == 18.02
    )
    # 50 GB ephemeral: 30 GB beyond the 20 included x 2 tasks x 730 h x $0.000111 = $4.86
    b = fargate_bill(month_usage(ephemeral_gb=50), load_balancer="none")
    assert cents(b, "ephemeral_storage") == 4.86


def test_alb_lines_are_the_kubernetes_ones():
    u = month_usage(requests=50_000_000)
    fg = fargate_bill(u).monthly_breakdown
    k8s = kubernetes_bill(
        KubernetesUsage(window_s=u.window_s, requests=u.requests), control_plane="none"
    ).monthly_breakdown
    for line in ("load_balancer", "load_balancer_lcu", "public_ipv4"):
        assert fg[line] == pytest.approx(k8s[line])
    # $0.0225/h x 730 h = $16.43 for the ALB hours
    assert cents(fargate_bill(u), "load_balancer") == 16.43


# --- Fargate Spot -------------------------------------------------------------------------------


def spot_run(rate: float, queued: str = "fail", hours: float = 4.0, lam: float = 1.0):
    sc = make_scenario(
        scenario(
            fargate(
                tasks=4,
                task={"cpu": 1, "memory": 2048},
                spot={"interruptions_per_task_hour": rate, "stop_timeout": "0s", "queued": queued},
                request_timeout=None,
            ),
            duration=f"{hours}h",
            workload={
                "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                "service": {"duration": {"dist": "exponential", "mean": "3.6s"}},
            },
        )
    )
    return run_platform(sc)


def test_spot_interruptions_per_task_hour():
    """4 tasks (the service replaces each interrupted one), 10 interruptions per task-hour, 4 h:
    Poisson with mean 4 x 10 x 4 = 160; the count lies within 4 standard deviations."""
    run = spot_run(10.0)
    n = sum(1 for d in run.decisions if d.kind == "spot_interruption")
    assert abs(n - 160) < 4 * math.sqrt(160), n
    assert set(run.timeline["desired"]) == {4.0}  # the desired count never changes


def test_spot_kill_fails_or_retries_what_is_queued_at_the_task():
    """rho = 1 x 3.6 / 4 = 0.9 behind round robin: tasks hold queues. With stop_timeout 0 the
    requests queued at a killed task fail (502: rejected) or, with `queued: retry`, go to the
    other tasks; requests in service finish. Every request is accounted for either way."""
    fail, retry = spot_run(10.0, "fail"), spot_run(10.0, "retry")
    for run in (fail, retry):
        o = run.stats.outcomes
        assert o["ok"] + o["rejected"] + o["timed_out"] + o["throttled"] == run.stats.requests
    assert fail.stats.outcomes["rejected"] > 0
    assert retry.stats.outcomes["rejected"] == 0
    # The same interruptions (their own random stream) hit both runs.
    times = [
        [d.time_s for d in r.decisions if d.kind == "spot_interruption"] for r in (fail, retry)
    ]
    assert times[0][:5] == times[1][:5]


def test_no_spot_no_interruptions_and_same_seed_same_result():
    a, b = spot_run(0.0, hours=0.5), spot_run(0.0, hours=0.5)
    assert not [d for d in a.decisions if d.kind == "spot_interruption"]
    assert a.stats.latency == b.stats.latency and a.bill.total_usd == b.bill.total_usd


# --- every path: compare, sweep, tune, crossover, report, trace replay ---------------------------

SMALL = scenario(
    fargate(target_tracking={"target": 300, "min_tasks": 1, "max_tasks": 4}),
    duration="10m",
    slo={"p99": "500ms"},
)


def base_of(data: dict[str, Any]) -> Base:
    return Base(json.loads(json.dumps(data)), "<test>", ROOT)


def test_run_with_report_and_compare(tmp_path: Path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(SMALL))
    r = CliRunner().invoke(main, ["run", str(p), "--out", str(tmp_path / "r"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "fg" in (tmp_path / "r" / "report.html").read_text()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["platforms"]["fg"]["type"] == "fargate"
    r = CliRunner().invoke(main, ["compare", str(p), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "fg" in (tmp_path / "c" / "report.html").read_text()


def test_sweep_and_tune():
    rows = run_sweep(base_of(SMALL), [parse_param("platforms.fg.task.concurrency=1,4")], workers=1)
    assert [r["platforms.fg.task.concurrency"] for r in rows.rows] == [1, 4]
    doc = tune(
        base_of(SMALL),
        [parse_param("platforms.fg.target_tracking.min_tasks=1:2:1")],
        "fg",
        [parse_slo("p99<500ms")],
    )
    # 5/s of 50 ms requests: one task suffices, and is the cheaper setting
    assert doc["chosen"]["setting"] == {"platforms.fg.target_tracking.min_tasks": 1}


def test_crossover():
    res = run_crossover(base_of(SMALL), [1e6, 1e7], workers=1)
    assert [r["volume_per_month"] for r in res["rows"]] == [1e6, 1e7]
    assert all(r["monthly_cost_usd"] > 0 for r in res["rows"])


def test_trace_replay():
    data = scenario(
        fargate(target_tracking={"target": 600, "min_tasks": 1, "max_tasks": 10}),
        duration="10m",
        workload={
            "arrivals": [
                {
                    "trace": {
                        "file": "scenarios/data/azure2019-hour/invocations.csv",
                        "format": "azure2019",
                        "durations": "scenarios/data/azure2019-hour/durations.csv",
                        "top": 3,
                    }
                }
            ]
        },
    )
    run = run_platform(make_scenario(data))
    assert run.stats.requests > 0 and run.stats.outcomes["ok"] > 0


# --- the kernel against the per-request reference (sim.validation.reference.ReferenceFargate) ----


@pytest.mark.parametrize(
    ("routing", "queued"),
    [("round_robin", "fail"), ("round_robin", "retry"), ("least_outstanding", "fail")],
)
def test_kernel_equals_per_request_path(monkeypatch, routing, queued):
    """(least_outstanding with `queued: retry` is not held to the reference: a retried request
    sits behind newer ones in its task's FIFO, and the kernel drops a request past its deadline
    from a queue's head only, so it may count as outstanding a little longer; docs/model.md.)"""
    from sim import defaults
    from sim.engine import run_one
    from sim.validation.reference import run_reference
    from tests.test_equivalence import assert_same

    monkeypatch.setattr(defaults, "REQUESTS_CSV_MAX_ROWS", 10**9)
    data = scenario(
        fargate(
            routing=routing,
            task={"cpu": 1, "memory": 2048},
            target_tracking={"target": 60, "min_tasks": 2, "max_tasks": 8},
            spot={"interruptions_per_task_hour": 6, "stop_timeout": "5s", "queued": queued},
            request_timeout="20s",
        ),
        duration="1h",
        workload={
            "arrivals": [
                {"diurnal": {"mean": "3/s", "amplitude": 0.8, "period": "1h", "peak": "30m"}}
            ],
            "service": {"duration": {"dist": "lognormal", "median": "600ms", "p99": "4s"}},
        },
    )
    sc = make_scenario(data)
    fast, ref = run_one(sc, "fg", 0, ROOT), run_reference(sc, "fg", 0, ROOT)
    assert any(d.kind == "spot_interruption" for d in fast.decisions)
    assert any(d.kind.startswith("target_tracking") for d in fast.decisions)
    assert_same(fast, ref)


def test_a_missed_slo_suggests_a_fargate_tune_and_names_the_defaults(tmp_path: Path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({**SMALL, "slo": {"p99": "1ms"}}))
    r = CliRunner().invoke(
        main, ["run", str(p), "--out", str(tmp_path / "r"), "--no-html", "--workers", "1"]
    )
    assert r.exit_code == 0, r.output
    assert "--param target_tracking.min_tasks=1:4:1" in r.output
    assert "--param target_tracking.target=300,150,75" in r.output
    assert "fg: task.cpu 0.5 vCPU (default" in r.output


def test_memory_metric_by_hand():
    """ECSServiceAverageMemoryUtilization: 2 GB tasks using 512 MiB at rest + 64 MiB per request
    held. Evenly spaced 20/s of constant 400 ms requests over 2 tasks: 8 requests held at any
    time, 4 per task: (512 + 4 x 64) / 2048 = 37.5% every minute. Target 30%: AlarmHigh at
    180 s, ceil(2 x 37.5 / 30) = 3 tasks."""
    data = scenario(
        fargate(
            task={
                "cpu": 1,
                "memory": 2048,
                "concurrency": 8,
                "memory_base": 512,
                "memory_per_request": 64,
            },
            target_tracking={"metric": "memory", "target": 30, "min_tasks": 2, "max_tasks": 4},
        ),
        duration="200s",
        workload={
            "arrivals": [{"steady": {"rate": "20/s", "spacing": "uniform"}}],
            "service": {"duration": {"dist": "constant", "value": "400ms"}},
        },
    )
    run = run_platform(make_scenario(data))
    (d,) = run.decisions
    assert (d.time_s, d.before, d.after) == (180.0, 2, 3)
    assert "37.5" in d.reason
