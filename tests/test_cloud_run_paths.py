"""Cloud Run and Container Apps everywhere the other types go: `sim run` (with the report),
`compare`, `sweep`, `tune`, trace replay, common random numbers, and the bundled scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.verdict import tune_params

from conftest import ROOT, make_scenario

PLATFORMS = [
    {"name": "cr", "type": "cloud_run", "concurrency": 20},
    {"name": "aca", "type": "container_apps", "scale": {"minReplicas": 1}},
]


def write(tmp_path: Path, **over: Any) -> Path:
    data = {
        "name": "sc",
        "duration": "10m",
        "warmup": "1m",
        "replications": 1,
        "seed": 9,
        "workload": {
            "arrivals": [{"steady": {"rate": "10/s"}}],
            "service": {"duration": {"dist": "lognormal", "median": "80ms", "p99": "400ms"}},
        },
        "platforms": PLATFORMS,
        "slo": {"p99": "5s"},
        **over,
    }
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(*args: str) -> Any:
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_run_writes_results_and_report_with_common_random_numbers(tmp_path):
    out = tmp_path / "out"
    invoke("run", str(write(tmp_path)), "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    p = summary["platforms"]
    assert set(p) == {"cr", "aca"}
    # the same arrivals on both platforms (common random numbers)
    assert p["cr"]["requests_per_replication"] == p["aca"]["requests_per_replication"]
    assert all(v["monthly_cost_usd"] > 0 for v in p.values())
    assert "cloud_run" in (out / "report.html").read_text()  # the autoscaler's decisions


def test_compare_sweep_and_tune(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # compare writes each scenario's results under ./results
    a, b = write(tmp_path), write(tmp_path, name="other", seed=10)
    invoke("compare", str(a), str(b), "--out", str(tmp_path / "cmp"))
    assert (tmp_path / "cmp" / "report.html").is_file()
    invoke(
        "sweep", str(a), "--param", "platforms.cr.min_instances=0,1", "--out", str(tmp_path / "sw")
    )
    res = invoke(
        "tune",
        str(a),
        "--platform",
        "cr",
        "--param",
        "concurrency=5,20",
        "--param",
        "min_instances=0,1",
        "--slo",
        "p99<5s",
        "--out",
        str(tmp_path / "tune"),
    )
    chosen = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert chosen, res.output


def test_trace_replay(tmp_path):
    trace = ROOT / "scenarios" / "data" / "azure2019-hour"
    path = write(
        tmp_path,
        duration="15m",
        workload={
            "arrivals": [
                {
                    "trace": {
                        "file": str(trace / "invocations.csv"),
                        "format": "azure2019",
                        "durations": str(trace / "durations.csv"),
                        "top": 3,
                        "within_minute": "uniform",
                    }
                }
            ],
            "service": {"cpu_bound": 0.5},
        },
    )
    out = tmp_path / "trace"
    invoke("run", str(path), "--out", str(out), "--no-report")
    p = json.loads((out / "summary.json").read_text())["platforms"]
    assert p["cr"]["requests_per_replication"] > 0


def test_tune_suggestions_for_the_new_types():
    sc = make_scenario(
        {
            "name": "s",
            "duration": "1m",
            "workload": {"arrivals": [{"steady": {"rate": "1/s"}}], "service": {"duration": "1s"}},
            "platforms": PLATFORMS,
        }
    )
    cr, aca = sc.platforms
    assert tune_params(cr, {}) == ["min_instances=0:3:1", "concurrency=5,10,20"]
    assert tune_params(aca, {}) == ["scale.minReplicas=1:4:1", "scale.maxReplicas=10,20,40"]


def test_bundled_scenario_loads_and_says_what_it_shows():
    path = ROOT / "scenarios" / "serverless-containers.yaml"
    assert path.read_text().startswith("# What it shows:")
    sc = make_scenario(yaml.safe_load(path.read_text()))
    assert {p.type for p in sc.platforms} == {"lambda", "cloud_run", "container_apps", "knative"}
