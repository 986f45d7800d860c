"""Sweeps, tuning and the cost crossover (sim.studies.sweep*, `sim sweep | tune | crossover`).

Expected values are worked by hand from the scenario and the published prices (facts.md), never
copied from the code's output.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.errors import InputError
from sim.scenario import resolved_dict
from sim.studies.crossover import (
    find_crossovers,
    monthly_volume,
    parse_volume_range,
    run_crossover,
    scale_traffic,
)
from sim.studies.sweep import Base, PointStore, parse_param, run_sweep
from sim.studies.tune import check, parse_slo, tune
from tests.conftest import ROOT, make_scenario

# Bills count a 730-h month (the providers' calculators; sim's default `month`), and so do
# "/month" rates, in a scenario or outside one, and crossover volumes: "V/month" is billed as V.
BILL_MONTH_S = 730 * 3600.0
# Published rates (facts.md section 1), us-east-1 x86_64.
REQ = 0.20 / 1e6  # Lambda, per request
GBS = 0.0000166667  # Lambda on-demand duration, per GB-s
PC = 0.0000041667  # provisioned concurrency, per GB-s configured
PC_DUR = 0.0000097222  # duration on provisioned concurrency, per GB-s
HTTP_API = 1.00 / 1e6  # API Gateway HTTP API, first 300M per month

# Evenly spaced 20/s, constant 120 ms handler: every arrival finds the two previous requests still
# running (0.12 s / 0.05 s = 2.4), so the traffic needs exactly 3 environments. An environment is
# free again 30 ms before its next turn; with keep_alive 10 ms an on-demand environment is always
# gone by then, so every request not served by provisioned concurrency (PC) is a cold start:
# with k < 3 PC environments, k of every 3 requests are warm.
PC_SCENARIO: dict[str, Any] = {
    "name": "pc-sweep",
    "duration": "2m",
    "replications": 2,
    "seed": 7,
    "workload": {
        "arrivals": [{"steady": {"rate": "20/s", "spacing": "uniform"}}],
        "service": {"duration": "120ms", "cpu_bound": 0},
    },
    "platforms": [
        {
            "name": "fn",
            "type": "lambda",
            "memory": 1024,
            "init": "100ms",
            "sandbox_overhead": "0s",
            "keep_alive": "10ms",
            "api_gateway": "none",
        }
    ],
    "slo": {"p99": "200ms"},
}


def write(tmp_path: Path, data: dict[str, Any], name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def base_of(data: dict[str, Any]) -> Base:
    return Base(json.loads(json.dumps(data)), "<test>", ROOT)


# --- parameter specs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, values",
    [
        ("0:100:10", list(range(0, 101, 10))),  # the end lands on the grid: included
        ("0:95:10", list(range(0, 91, 10))),  # it does not: the grid stops before it
        ("0.1:0.5:0.1", [0.1, 0.2, 0.3, 0.4, 0.5]),
        ("1m:3m:1m", ["1m", "2m", "3m"]),
        ("500ms:2s:500ms", ["0.5s", "1s", "1.5s", "2s"]),
        ("0,5,10", [0, 5, 10]),
        ("100ms,200ms", ["100ms", "200ms"]),
        ("1M/month,10M/month", ["1M/month", "10M/month"]),
        ("08:00,20:00", ["08:00", "20:00"]),
        (
            "[5m, {dist: uniform, low: 5m, high: 7m}]",
            ["5m", {"dist": "uniform", "low": "5m", "high": "7m"}],
        ),
    ],
)
def test_param_specs(spec: str, values: list[Any]) -> None:
    p = parse_param(f"platforms.fn.keep_alive={spec}")
    assert p.key == "platforms.fn.keep_alive"
    assert list(p.values) == values


def test_param_quantities_for_plots() -> None:
    assert parse_param("k=100ms,1s").numeric == (0.1, 1.0)
    assert parse_param("k=1M/month,10M/month").numeric == pytest.approx(
        (1e6 / BILL_MONTH_S, 1e7 / BILL_MONTH_S)
    )


@pytest.mark.parametrize(
    "text", ["novalue", "=1,2", "k=", "k=0:10:0", "k=10:0:1", "k=1,,2", "k=1,1", "k=1s:2/s:1s"]
)
def test_bad_param_specs(text: str) -> None:
    with pytest.raises(InputError):
        parse_param(text)


def test_bad_value_at_a_point_names_key_and_point() -> None:
    with pytest.raises(InputError, match=r"provisioned_concurrency.*at sweep point"):
        run_sweep(
            base_of(PC_SCENARIO),
            [parse_param("platforms.fn.provisioned_concurrency=0,-1")],
            workers=1,
        )


# --- provisioned-concurrency sweep --------------------------------------------------------------


def test_pc_sweep_cold_starts_fall_to_zero_and_bill_rises() -> None:
    res = run_sweep(
        base_of(PC_SCENARIO), [parse_param("platforms.fn.provisioned_concurrency=0:6:1")], workers=1
    )
    rows = {r["platforms.fn.provisioned_concurrency"]: r for r in res.rows}
    assert sorted(rows) == list(range(7))
    for k, r in rows.items():
        assert r["platform"] == "fn"
        assert r["requests"] == 2 * 2400  # 2 replications x 20/s x 120 s
        assert r["cold_start_ratio"] == pytest.approx(max(0, 3 - k) / 3)
    # Past the traffic's need (3), every extra PC environment only adds its configured GB-s:
    # 1 GB x 30 days at the PC rate.
    step = BILL_MONTH_S * 1.0 * PC
    for k in range(3, 6):
        diff = rows[k + 1]["monthly_cost_usd"] - rows[k]["monthly_cost_usd"]
        assert round(diff, 2) == round(step, 2)
    # PC = 3 by hand: 2,400 requests in 120 s -> x 21,600 to a month; all served on PC.
    month_requests = 2400 * BILL_MONTH_S / 120
    bill = (
        month_requests * REQ + month_requests * 0.120 * 1.0 * PC_DUR + 3 * BILL_MONTH_S * 1.0 * PC
    )
    assert round(rows[3]["monthly_cost_usd"], 2) == round(bill, 2)
    assert rows[6]["monthly_cost_usd"] > rows[3]["monthly_cost_usd"]
    # Cold requests take init (100 ms) + 120 ms: the SLO (p99 <= 200 ms) holds from k = 3 on.
    assert [rows[k]["slo_met"] for k in range(7)] == [False] * 3 + [True] * 4
    assert rows[0]["p99_ms"] == pytest.approx(220.0)
    assert rows[3]["p99_ms"] == pytest.approx(120.0)


def test_tuner_picks_the_cheapest_point_meeting_the_slo(tmp_path: Path) -> None:
    params = [parse_param("platforms.fn.provisioned_concurrency=0:8:1")]
    base = base_of(PC_SCENARIO)
    slos = [parse_slo("p99<200ms")]
    # Exhaustive search by hand over the sweep's rows.
    sweep = run_sweep(base, params, workers=1, out_dir=tmp_path)
    ok = [r for r in sweep.rows if r["p99_ms"] < 200.0]
    best = min(ok, key=lambda r: r["monthly_cost_usd"])
    assert best["platforms.fn.provisioned_concurrency"] == 3
    doc = tune(base, params, "fn", slos, out_dir=tmp_path)
    assert doc["search"] == "exhaustive" and doc["points_tried"] == 9
    assert doc["simulated"] == 0  # every point came from the sweep's points.jsonl
    chosen = doc["chosen"]
    assert chosen["setting"] == {"platforms.fn.provisioned_concurrency": 3}
    assert chosen["monthly_cost_usd"] == best["monthly_cost_usd"]
    (c,) = chosen["slo"]
    assert c["value"] == pytest.approx(120.0) and c["margin"] == pytest.approx(80.0)
    assert c["margin_pct"] == pytest.approx(40.0) and c["basis"] == "point estimate"


def test_optuna_search_finds_the_exhaustive_optimum(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    params = [parse_param("platforms.fn.provisioned_concurrency=0:8:1")]
    base = base_of(PC_SCENARIO)
    slos = [parse_slo("p99<200ms")]
    exhaustive = tune(base, params, "fn", slos, out_dir=tmp_path)
    opt = tune(base, params, "fn", slos, search="optuna", trials=25, out_dir=tmp_path)
    assert opt["search"] == "optuna" and "optuna" in opt["why"]
    assert opt["chosen"]["setting"] == exhaustive["chosen"]["setting"]
    assert opt["points_tried"] <= 9
    # Over 200 grid points, auto search switches to the optimiser.
    big = [
        *params,
        parse_param("platforms.fn.memory=512:2560:512"),
        parse_param("platforms.fn.timeout=1s:5s:1s"),
    ]
    doc = tune(base, big, "fn", slos, trials=4, workers=1)
    assert doc["grid_points"] == 225 and doc["search"] == "optuna"
    assert 1 <= doc["points_tried"] <= 4


def test_tune_with_no_feasible_point_and_cli_exit_codes(tmp_path: Path) -> None:
    path = write(tmp_path, PC_SCENARIO)
    out = tmp_path / "out"
    runner = CliRunner()
    args = [
        "tune",
        str(path),
        "--param",
        "provisioned_concurrency=2,3",
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    r = runner.invoke(main, [*args, "--slo", "p99<100ms"])
    assert r.exit_code == 1, r.output
    doc = json.loads((out / "tune.json").read_text())
    assert doc["chosen"] is None and doc["feasible_points"] == 0
    r = runner.invoke(
        main, [*args, "--slo", "p99<=120.001ms", "--slo", "error_rate<0.1%", "--conservative"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "tune.json").read_text())
    assert doc["chosen"]["setting"] == {"platforms.fn.provisioned_concurrency": 3}
    assert doc["criterion"] == "95% CI upper bound"
    for bad in ("p99<300", "p99>300ms", "p42<1s", "error_rate<2", "p99"):
        r = runner.invoke(main, [*args, "--slo", bad])
        assert r.exit_code == 2, (bad, r.output)
        assert "--slo" in r.output


def test_slo_parsing_and_conservative_check() -> None:
    s = parse_slo("p99<300ms")
    assert (s.metric, s.op, s.target) == ("p99", "<", pytest.approx(0.3))
    assert parse_slo("error_rate <= 0.1%").target == pytest.approx(0.001)
    assert parse_slo("p99.9<1s").metric == "p999"
    m = {"latency_ms": {"p99": 190.0}, "latency_ms_ci95": {"p99": [180.0, 210.0]}}
    s = parse_slo("p99<200ms")
    assert check(m, s, conservative=False)["met"]
    strict = check(m, s, conservative=True)
    assert not strict["met"] and strict["value"] == 210.0 and strict["margin"] == -10.0


# --- points file and resuming -------------------------------------------------------------------


def test_points_store_drops_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "points.jsonl"
    good = [json.dumps({"key": k, "platform": "x", "metrics": {}}) for k in ("a", "b")]
    path.write_text("\n".join(good) + "\n" + '{"key": "c", "plat', encoding="utf-8")
    store = PointStore(path)
    assert set(store.records) == {"a", "b"}
    store.add({"key": "d", "platform": "x", "metrics": {}})
    lines = path.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["a", "b", "d"]


def test_untouched_platforms_are_simulated_once(tmp_path: Path) -> None:
    data = json.loads(json.dumps(PC_SCENARIO))
    data["platforms"].append({"name": "edge", "type": "wasm", "pricing": "cloudflare-workers"})
    path = write(tmp_path, data)
    out = tmp_path / "out"
    args = [
        "sweep",
        str(path),
        "--param",
        "platforms.fn.provisioned_concurrency=0,3",
        "--param",
        "platforms.fn.memory=1024,2048",
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "5 job(s) simulated, 0 reused" in r.output  # 4 Lambda settings + Wasm once
    df = pd.read_csv(out / "sweep.csv")
    assert list(df.columns[:3]) == [
        "platforms.fn.provisioned_concurrency",
        "platforms.fn.memory",
        "platform",
    ]
    assert list(df.columns[3:]) == [
        "requests",
        "error_rate",
        "cold_start_ratio",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p999_ms",
        "p99_ci_lo",
        "p99_ci_hi",
        "peak_instances",
        "monthly_cost_usd",
        "cost_per_million_usd",
        "slo_met",
        "slo_missed",
    ]
    assert len(df) == 8
    edge = df[df.platform == "edge"]
    assert edge.monthly_cost_usd.nunique() == 1  # the same run, reused at every point
    html = (out / "sweep.html").read_text()
    assert "Heatmap" in html or "heatmap" in html
    assert 'src="https://cdn' not in html and len(html) > 1_000_000  # plotly.js embedded
    r = CliRunner().invoke(main, args)
    assert "0 job(s) simulated, 5 reused" in r.output


def test_killed_sweep_resumes_without_losing_or_repeating_points(tmp_path: Path) -> None:
    data = json.loads(json.dumps(PC_SCENARIO))
    data["duration"] = "20m"  # ~0.3 s a point, so the kill lands mid-sweep
    data["replications"] = 1
    path = write(tmp_path, data)
    out = tmp_path / "out"
    points = out / "points.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "sim",
        "sweep",
        str(path),
        "--param",
        "platforms.fn.provisioned_concurrency=0:11:1",
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-html",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if points.exists() and points.read_text().count("\n") >= 3:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes
    finally:
        proc.wait(timeout=30)
    before = points.read_bytes()
    first = before[: before.rfind(b"\n") + 1].decode().splitlines()
    assert 3 <= len(first) < 12, "the kill should land mid-sweep"
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"{12 - len(first)} job(s) simulated, {len(first)} reused" in r.stdout
    lines = points.read_text().splitlines()
    assert lines[: len(first)] == first  # nothing rewritten
    keys = [json.loads(x)["key"] for x in lines]
    assert len(keys) == len(set(keys)) == 12
    df = pd.read_csv(out / "sweep.csv")
    assert sorted(df["platforms.fn.provisioned_concurrency"]) == list(range(12))
    assert list(df.cold_start_ratio[:3]) == pytest.approx([1, 2 / 3, 1 / 3])


# --- crossover ----------------------------------------------------------------------------------

# Evenly spaced arrivals at 1/s over 10 minutes: 600 requests, i.e. 2.592M a month. Constant
# 200 ms handler at 256 MB, cpu_bound 0, no INIT billing: every request bills exactly 200 ms.
LAMBDA_ONLY: dict[str, Any] = {
    "name": "xo",
    "duration": "10m",
    "replications": 1,
    "seed": 3,
    "workload": {
        "arrivals": [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
        "service": {"duration": "200ms", "cpu_bound": 0},
    },
    "platforms": [
        {
            "name": "lambda",
            "type": "lambda",
            "memory": 256,
            "api_gateway": "http",
            "init_billing": False,
        }
    ],
}


def test_crossover_reproduces_hand_computed_lambda_bills(tmp_path: Path) -> None:
    volumes = [1e6, 1e7, 1e8]
    res = run_crossover(base_of(LAMBDA_ONLY), volumes, workers=1)
    assert res["assumptions"]["scenario_volume_per_month"] == pytest.approx(BILL_MONTH_S)  # 1/s
    for v, row in zip(volumes, res["rows"], strict=True):
        rate = v / BILL_MONTH_S  # V per billing month
        n = math.ceil(600 * rate)  # arrivals at 0, 1/rate, ... before 600 s (600 rate not whole)
        month = n * BILL_MONTH_S / 600
        bill = month * REQ + month * 0.200 * (256 / 1024) * GBS + month * HTTP_API
        assert row["volume_per_month"] == v
        assert round(row["monthly_cost_usd"], 2) == round(bill, 2)
        assert row["p99_ms"] is not None
    assert res["crossovers"] == []


def test_crossover_lambda_vs_workers(tmp_path: Path) -> None:
    """Workers: $5/month including 10M requests (I/O-bound handler: no CPU billed);
    Lambda without a gateway: $0.20/M + 0.05 GB-s x $16.6667/M GB-s per million requests."""
    data = json.loads(json.dumps(LAMBDA_ONLY))
    data["platforms"][0]["api_gateway"] = "none"
    data["platforms"].append({"name": "workers", "type": "wasm", "pricing": "cloudflare-workers"})
    path = write(tmp_path, data)
    out = tmp_path / "out"
    r = CliRunner().invoke(
        main,
        [
            "crossover",
            str(path),
            "--volume",
            "1M/month..10M/month",
            "--points",
            "11",
            "--window",
            "5m",
            "--out",
            str(out),
            "--workers",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    per_request = REQ + 0.200 * 0.25 * GBS
    # Lambda bills V requests for a volume V (per billing month): $5 / per_request = 4.84M
    expected = 5.0 / per_request
    doc = json.loads((out / "crossover.json").read_text())
    (c,) = doc["crossovers"]
    assert (c["below"], c["above"]) == ("lambda", "workers")
    assert c["volume_per_month"] == pytest.approx(expected, rel=0.01)
    df = pd.read_csv(out / "crossover.csv")
    assert list(df.columns) == ["volume_per_month", "platform", "monthly_cost_usd", "p99_ms"]
    assert len(df) == 22
    workers = df[df.platform == "workers"]
    below = workers.volume_per_month < 9.8e6  # within the 10M requests included
    assert (workers[below].monthly_cost_usd.round(2) == 5.0).all()
    top = workers.monthly_cost_usd.iloc[-1]
    # 10M/month in the 5-min window: ceil(300 x 10e6 / 730 h) = 1142 evenly spaced requests,
    # x 730 h / 300 s = 10,003,920 a month: 3,920 over the included 10M at $0.30/M = $0.001176
    month = math.ceil(300 * 10e6 / BILL_MONTH_S) * BILL_MONTH_S / 300
    assert top == pytest.approx(5.0 + (month - 10e6) * 0.30 / 1e6, abs=1e-6)
    assert (out / "crossover.html").exists()


def test_find_crossovers_interpolates_on_a_log_scale() -> None:
    # A is cheapest at 1 and 10, B (flat 3) at 100. Between 10 and 100, A doubles per decade:
    # A(V) = 2 (V/10)^log10(2), which meets 3 at V = 10 x 1.5^(1/log10 2).
    got = find_crossovers([1, 10, 100], {"A": [1, 2, 4], "B": [3, 3, 3]})
    assert got == [
        {
            "volume_per_month": pytest.approx(10 * 1.5 ** (1 / math.log10(2))),
            "below": "A",
            "above": "B",
        }
    ]
    # A free platform (cost 0) interpolates the plain difference.
    got = find_crossovers([1, 10], {"free": [0, 2], "flat": [1, 1]})
    assert got[0]["volume_per_month"] == pytest.approx(10**0.5)
    assert find_crossovers([1, 10], {"A": [1, 1]}) == []


SOURCES = [
    {"steady": {"rate": "5/s"}},
    {
        "phases": [
            {"duration": "2m", "rate": "1/s", "ramp_to": "4/s"},
            {"duration": "5m", "rate": "2/s"},
        ]
    },
    {"diurnal": {"mean": "3/s", "amplitude": 0.5, "period": "10m", "peak": "2m"}},
    {
        "spike": {
            "at": "1m",
            "peak": "20/s",
            "rise": "30s",
            "hold": "1m",
            "decay": "1m",
            "base": "1/s",
        }
    },
    {"batch": {"every": "1m", "size": 40, "spread": "5s"}},
    {"batch": {"at": ["1m", "3m"], "size": {"dist": "uniform", "low": 10, "high": 30}}},
    {"batch": {"rate": "0.05/s", "size": {"dist": "lognormal", "median": 20, "p99": 80}}},
    {"mmpp": {"states": [{"rate": "10/s", "hold": "30s"}, {"rate": "1/s", "hold": "1m"}]}},
    {"trace": {"file": "tests/data/azure2021_extract.csv", "format": "azure2021"}},
]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: next(iter(s)))
def test_every_source_type_scales_its_volume(source: dict[str, Any]) -> None:
    data = {
        "name": "s",
        "duration": "10m",
        "workload": {"arrivals": [source], "service": {"duration": "10ms"}},
        "platforms": [{"name": "l", "type": "lambda"}],
    }
    sc = make_scenario(data)
    before = monthly_volume(sc, ROOT)
    scaled = make_scenario(scale_traffic(resolved_dict(sc), 3.5))
    assert monthly_volume(scaled, ROOT) == pytest.approx(3.5 * before, rel=1e-9)


def test_unscalable_source_is_a_clear_error(tmp_path: Path) -> None:
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("1\n2\n3\n")
    data = {
        "name": "s",
        "duration": "10m",
        "workload": {
            "arrivals": [
                {"batch": {"every": "1m", "size": {"dist": "empirical", "file": str(sizes)}}}
            ],
            "service": {"duration": "10ms"},
        },
        "platforms": [{"name": "l", "type": "lambda"}],
    }
    with pytest.raises(InputError, match=r"arrivals\.0\.batch\.size.*file"):
        scale_traffic(resolved_dict(make_scenario(data)), 2.0)


@pytest.mark.parametrize("text", ["100k/month", "5M/month..1M/month", "1M..2M", "0/s..1/s"])
def test_bad_volume_ranges(text: str) -> None:
    with pytest.raises(InputError):
        parse_volume_range(text)


def test_bundled_scenario_reproduces_the_lambda_eks_claim() -> None:
    """ "Lambda is cheaper until about 30-40M requests/month (200 ms, 256 MB), EKS after", under
    the scenario's stated assumptions: Lambda at $0.20/M + 0.05 GB-s x $0.0000166667 per request
    against one t3.medium node at $0.0416/h, no control plane, no load balancer."""
    # Evenly spaced arrivals: exactly the volume asked for (Poisson counts would add noise).
    overrides = ["replications=1", "workload.arrivals.0.steady.spacing=uniform"]
    base = Base.load(ROOT / "scenarios" / "crossover-lambda-eks.yaml", overrides)
    res = run_crossover(base, [1e7, 2e7, 4e7, 8e7], window=600.0, workers=1)
    # one t3.medium for a 730-h month + its 20 GiB gp3 root volume: 30.368 + 1.60 = $31.968;
    # Lambda bills V requests for a volume V per billing month
    node = 0.0416 * 730 + 20 * 0.08
    expected = node / (REQ + 0.200 * 0.25 * GBS)  # 31.968 / $1.033335e-6 = 30.94M
    (c,) = res["crossovers"]
    assert (c["below"], c["above"]) == ("lambda", "eks")
    # INIT billing of the few cold starts makes Lambda a little dearer: the crossing a little lower
    assert expected * 0.99 < c["volume_per_month"] <= expected * 1.001
    eks = [r["monthly_cost_usd"] for r in res["rows"] if r["platform"] == "eks"]
    assert [round(x, 2) for x in eks] == [round(node, 2)] * 4
