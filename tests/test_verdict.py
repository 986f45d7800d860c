"""The decision on top of `sim run` and in summary.json (`verdict`), and the defaults the header
names. Synthetic platform summaries with hand-chosen costs and SLO values, so every expected
figure below is arithmetic on the inputs; then one end-to-end run whose suggested `sim tune` line
is run as printed."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sim.verdict import defaults_used, verdict

from conftest import make_scenario

SCENARIO = {
    "name": "v",
    "duration": "10m",
    "workload": {"arrivals": [{"steady": {"rate": "2/s"}}], "service": {"duration": "100ms"}},
    "platforms": [
        {"name": "fn", "type": "lambda", "memory": 512},
        {"name": "kube", "type": "kubernetes", "replicas": 2},
        {"name": "edge", "type": "wasm"},
    ],
    "slo": {"p99": "250ms", "error_rate": "1%"},
}


def plat(cost: float, p99: float, err: float = 0.0, ops: float = 0.0, **extra: object) -> dict:
    return {
        "monthly_cost_usd": cost,
        "operating_monthly_usd": ops,
        "cold_starts": 0,
        "instances": {"peak": 3.0},
        "slo": {
            "p99": {"target_ms": 250.0, "value_ms": p99, "met": p99 <= 250.0},
            "error_rate": {"target": 0.01, "value": err, "met": err <= 0.01},
        },
        **extra,
    }


@pytest.fixture
def sc():
    return make_scenario(SCENARIO)


def test_one_platform_passes(sc) -> None:
    v = verdict(sc, {"fn": plat(10.0, 400.0), "kube": plat(150.0, 200.0), "edge": plat(5, 300)})
    assert v["status"] == "pass" and v["cheapest"] == "kube"
    assert v["meets_slo"] == ["kube"] and "runner_up" not in v
    assert "pick kube" in v["text"][0] and "the only one" in v["text"][0]
    # fn misses p99 by 400 - 250 = 150 ms, +60%; edge by 50 ms, +20%
    (m,) = v["missed"]["fn"]
    assert (m["slo"], m["over"], m["over_pct"]) == ("p99", 150.0, pytest.approx(60.0))
    assert v["missed"]["edge"][0]["over_pct"] == pytest.approx(20.0)
    assert any(t.startswith("fn misses: p99 400ms > 250ms, +60%") for t in v["text"])


def test_several_pass_the_cheapest_wins_by_the_gap_to_the_next(sc) -> None:
    v = verdict(sc, {"fn": plat(40.0, 200.0), "kube": plat(150.0, 100.0), "edge": plat(25, 240)})
    assert v["status"] == "pass" and v["cheapest"] == "edge" and v["runner_up"] == "fn"
    assert v["meets_slo"] == ["edge", "fn", "kube"]
    assert v["saving_usd"] == pytest.approx(15.0)  # 40 - 25
    assert v["saving_pct"] == pytest.approx(37.5)  # 15 / 40
    assert "$15.00/month less than fn (38% less)" in v["text"][0]


def test_ops_costs_count_in_the_ranking_and_show_beside_the_bill(sc) -> None:
    # kube's bill is lower, but with $2,000/month of operating cost it is not the cheaper one
    v = verdict(sc, {"fn": plat(300.0, 200.0), "kube": plat(100.0, 200.0, ops=2000.0)})
    assert v["cheapest"] == "fn" and v["cost_basis"] == "bill + ops"
    assert v["costs"]["kube"]["total_monthly_usd"] == pytest.approx(2100.0)
    from sim.verdict import cost_line

    assert cost_line(plat(100.0, 1, ops=2000.0)) == "$100.00/month bill + $2,000 ops = $2,100/month"


def test_none_pass_names_the_closest_and_a_tune_command(sc) -> None:
    # worst relative excess: fn p99 +100% (500 ms); kube error rate 3% vs 1%: +200%; edge +20%
    v = verdict(
        sc,
        {
            "fn": plat(10.0, 500.0, cold_starts=50),
            "kube": plat(150.0, 200.0, err=0.03),
            "edge": plat(5.0, 300.0),
        },
        source="my scenario.yaml",
        overrides=["duration=5m"],
    )
    assert v["status"] == "none_pass" and v["cheapest"] is None
    assert v["closest"] == "edge"
    # Wasm has no setting that shortens a handler: the command is for the next closest, fn
    assert v["tune_platform"] == "fn"
    words = shlex.split(v["try"])
    assert words[:5] == ["sim", "tune", "my scenario.yaml", "--platform", "fn"]
    assert words[5:7] == ["--set", "duration=5m"]
    params = [words[i + 1] for i, w in enumerate(words) if w == "--param"]
    assert params[0] == "memory=512,1024,1769,3008"  # the next Lambda sizes up to 3 more
    assert params[1].startswith("provisioned_concurrency=0:")  # cold starts and p99 missed
    assert v["text"][0].startswith("no platform meets every SLO; closest: edge (p99 300ms")


def test_no_slo_is_judged_on_cost_alone() -> None:
    data = {k: v for k, v in SCENARIO.items() if k != "slo"}
    sc = make_scenario(data)
    p = {"fn": {"monthly_cost_usd": 3.0, "slo": {}}, "kube": {"monthly_cost_usd": 1.0, "slo": {}}}
    v = verdict(sc, p)
    assert v["status"] == "no_slo" and v["cheapest"] == "kube"
    assert "judged on cost alone" in v["text"][0]


def test_defaults_that_shaped_the_result_are_named() -> None:
    data = {
        "name": "d",
        "duration": "10m",
        "workload": {"arrivals": [{"steady": {"rate": "1/s"}}], "service": {"duration": "100ms"}},
        "platforms": [
            {"name": "fn", "type": "lambda"},
            {"name": "k", "type": "kubernetes", "replicas": 1},
        ],
    }
    used = defaults_used(make_scenario(data))
    text = "\n".join(used)
    # 128 MB = 128/1769 vCPU; cpu_bound 1: a handler runs 1769/128 = 13.8 times longer
    assert "fn: memory 128 MB" in text and "13.8x" in text and "cpu_bound 1 (default)" in text
    assert "fn: keep_alive 10 min" in text and "fn: runtime python3.13" in text
    # pod.cpu 500m, cpu_bound 1: (1 - 1) + 1 / 0.5 = 2x
    assert "k: pod.cpu 500m" in text and "2x" in text and "k: pod.concurrency 1" in text
    data["workload"]["service"]["cpu_bound"] = 0.3
    data["platforms"][0].update(memory=1769, keep_alive="5m", runtime="nodejs22.x")
    data["platforms"][1]["pod"] = {"cpu": 1, "concurrency": 4}
    assert defaults_used(make_scenario(data)) == []


NONE_PASS = """\
name: none-pass
duration: 20m
warmup: 1m
replications: 2
seed: 3
workload:
  arrivals:
    - steady: {rate: 2/s}
  service:
    duration: 100ms
platforms:
  - name: fn
    type: lambda
    memory: 256
slo:
  p99: 150ms
"""


def test_none_pass_end_to_end_and_the_suggested_tune_command_runs(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(NONE_PASS)
    run = subprocess.run(
        [sys.executable, "-m", "sim", "run", "s.yaml", "--out", "out", "--no-html"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    v = json.loads((tmp_path / "out" / "summary.json").read_text())["verdict"]
    assert v["status"] == "none_pass" and v["closest"] == "fn"
    # 256 MB: 256/1769 vCPU, so a 100 ms CPU-bound handler takes 100 x 1769/256 = 691 ms > 150
    assert v["missed"]["fn"][0]["value"] > 600
    assert run.stdout.splitlines()[0].startswith("no platform meets every SLO; closest: fn")
    assert f"try: {v['try']}" in run.stdout
    words = shlex.split(v["try"])
    assert words[:2] == ["sim", "tune"]
    tune = subprocess.run(
        [sys.executable, "-m", "sim", *words[1:], "--duration", "5m", "--out", "t"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 1769 MB gives 100 ms handlers: that point meets p99 <= 150 ms, so tune finds a setting
    assert tune.returncode == 0, tune.stderr
    doc = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert doc["chosen"]["setting"]["platforms.fn.memory"] == 1769
