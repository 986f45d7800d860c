"""`sim run` end to end: the results contract, determinism, exit codes, bad input."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import timeless

BASE = """\
name: cli-test
duration: 20m
warmup: 2m
replications: 2
seed: 7
workload:
  arrivals:
    - steady: {rate: 5/s}
  service:
    duration: {dist: lognormal, median: 50ms, p99: 300ms}
platforms:
  - name: fn
    type: lambda
    memory: 512
slo:
  p99: 5s
"""


def sim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(BASE)
    return p


def test_run_writes_results_and_is_deterministic(scenario: Path, tmp_path: Path):
    r1 = sim("run", str(scenario), "--out", "out1", "--no-report", cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr
    assert "p99.9" in r1.stdout and "fn" in r1.stdout
    out = tmp_path / "out1"
    for f in ("summary.json", "requests.csv.gz", "timeline.csv"):
        assert (out / f).is_file()
    s = json.loads((out / "summary.json").read_text())
    p = s["platforms"]["fn"]
    for key in (
        "requests",
        "completed",
        "failed",
        "error_rate",
        "cold_starts",
        "cold_start_ratio",
        "latency_ms",
        "latency_ms_ci95",
        "instances",
        "cost_usd",
        "cost_per_million_usd",
        "monthly_cost_usd",
        "slo",
    ):
        assert key in p
    assert set(p["failed"]) == {"throttled", "rejected", "timed_out"}
    assert set(p["latency_ms"]) >= {"mean", "p50", "p90", "p95", "p99", "p999", "max"}
    assert s["resolved_scenario"]["platforms"][0]["keep_alive"]["value"] == 600.0
    req = pd.read_csv(out / "requests.csv.gz")
    assert list(req.columns[:9]) == [
        "replication",
        "platform",
        "arrival_s",
        "start_s",
        "end_s",
        "latency_ms",
        "cold",
        "outcome",
        "instance",
    ]
    tl = pd.read_csv(out / "timeline.csv")
    assert {"time_s", "instances", "busy", "idle", "queued", "desired", "nodes"} <= set(tl.columns)

    r2 = sim("run", str(scenario), "--out", "out2", "--no-report", cwd=tmp_path)
    assert r2.returncode == 0
    s2 = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert timeless(s) == timeless(s2)
    with gzip.open(out / "requests.csv.gz") as a, gzip.open(tmp_path / "out2/requests.csv.gz") as b:
        assert a.read() == b.read()


def test_check_exits_1_when_slo_missed(scenario: Path, tmp_path: Path):
    r = sim(
        "run",
        str(scenario),
        "--set",
        "slo.p99=1ms",
        "--check",
        "--out",
        "o",
        "--no-report",
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert "FAIL" in r.stdout


def test_json_flag_prints_summary(scenario: Path, tmp_path: Path):
    r = sim(
        "run",
        str(scenario),
        "--json",
        "--out",
        "o",
        "--no-report",
        "--duration",
        "5m",
        "--set",
        "warmup=0s",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["duration_s"] == 300


BAD = [
    ("unknown key", BASE.replace("seed: 7", "seed: 7\nbogus: 1"), "bogus", "unknown key"),
    ("wrong unit", BASE.replace("rate: 5/s", "rate: 5 per fortnight"), "rate", "expected a rate"),
    ("negative rate", BASE.replace("rate: 5/s", "rate: -5/s"), "rate", ">= 0"),
    ("missing type", BASE.replace("    type: lambda\n", ""), "platforms[0]", "type"),
    ("memory range", BASE.replace("memory: 512", "memory: 20000"), "memory", "10240"),
    ("malformed", "name: [x\n", "line", "malformed YAML"),
    ("empty", "", "s.yaml", "empty"),
    ("not a mapping", "- 1\n- 2\n", "s.yaml", "mapping"),
    (
        "huge",
        BASE.replace("rate: 5/s", "rate: 1e9/s").replace("20m", "30d"),
        "duration",
        "would simulate about",
    ),
]


@pytest.mark.parametrize(("label", "text", "key", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_line_exit_2(tmp_path: Path, label, text, key, words):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    r = sim("run", str(p), "--out", "out", cwd=tmp_path)
    assert r.returncode == 2, (label, r.stderr)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in r.stderr
    assert (
        "s.yaml" in err
        and key in err
        and words.replace(">= 0", "greater than or equal to 0")
        in err.replace(">= 0", "greater than or equal to 0")
    ), err
    assert not (tmp_path / "out").exists()
    assert not any(x.name.startswith(".out") for x in tmp_path.iterdir())


def test_missing_file_exit_2(tmp_path: Path):
    r = sim("run", "nope.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert "nope.yaml: file not found" in r.stderr


def test_set_override_by_name(scenario: Path, tmp_path: Path):
    r = sim(
        "run",
        str(scenario),
        "--set",
        "platforms.fn.memory=2048",
        "--json",
        "--out",
        "o",
        "--no-report",
        "--duration",
        "5m",
        "--set",
        "warmup=0s",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["resolved_scenario"]["platforms"][0]["memory"] == 2048


def test_schema_is_json_schema(tmp_path: Path):
    r = sim("schema", cwd=tmp_path)
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert "properties" in schema and "platforms" in schema["properties"]
