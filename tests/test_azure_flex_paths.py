"""`azure_flex` and `lambda_managed` through every user path: run (+ report), compare, sweep,
tune, crossover and trace replay (the command line, as a user calls it)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main
from tests.conftest import ROOT

BASE = {
    "name": "slots",
    "duration": "5m",
    "warmup": "0s",
    "replications": 1,
    "seed": 5,
    "workload": {
        "arrivals": [{"steady": {"rate": "20/s"}}],
        "service": {"duration": {"dist": "lognormal", "median": "80ms", "p99": "400ms"}},
    },
    "platforms": [
        {"name": "flex", "type": "azure_flex", "always_ready": 1},
        {"name": "lmi", "type": "lambda_managed"},
    ],
    "slo": {"p99": "2s"},
}


def write(folder: Path, data: dict) -> Path:
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args: str) -> str:
    r = CliRunner().invoke(main, [*args, "--workers", "1"])
    assert r.exit_code == 0, r.output
    return r.output


def test_run_report_and_compare(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    cli("run", str(path), "--out", str(tmp_path / "a"))
    doc = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert '"flex"' in json.dumps(doc) and '"lmi"' in json.dumps(doc)
    assert (tmp_path / "a" / "report.html").stat().st_size > 0
    assert "always_ready_baseline" in json.dumps(doc) and "management_fee" in json.dumps(doc)
    cli("compare", str(path), str(path), "--out", str(tmp_path / "c"))
    assert (tmp_path / "c" / "report.html").exists()


def test_sweep_and_tune(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    cli(
        "sweep",
        str(path),
        "--param",
        "platforms.flex.always_ready=0:2:1",
        "--out",
        str(tmp_path / "sw"),
        "--no-html",
    )
    df = pd.read_csv(tmp_path / "sw" / "sweep.csv")
    flex = df[df.platform == "flex"].set_index("platforms.flex.always_ready")
    assert list(flex.index) == [0, 1, 2]
    # One more always-ready instance adds its baseline, 2 GB x $0.000004/GB-s x 730 h = $21.02,
    # and at most its execution time all month, 2 GB x $0.000016/GB-s x 730 h = $84.10 (the
    # load is spread over both instances, so the second one is active much of the time).
    extra = flex.monthly_cost_usd[2] - flex.monthly_cost_usd[1]
    assert 21.02 - 0.01 <= extra <= 21.02 + 84.10 + 0.01
    out = cli(
        "tune",
        str(path),
        "--platform",
        "lmi",
        "--param",
        "platforms.lmi.min_environments=3:5:1",
        "--slo",
        "p99<2s",
        "--out",
        str(tmp_path / "tu"),
    )
    assert "min_environments" in out


def test_crossover(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    cli(
        "crossover",
        str(path),
        "--volume",
        "1M/month..100M/month",
        "--points",
        "3",
        "--duration",
        "2m",
        "--out",
        str(tmp_path / "x"),
        "--no-html",
    )
    df = pd.read_csv(tmp_path / "x" / "crossover.csv")
    assert set(df.platform) == {"flex", "lmi"} and len(df) == 6
    # Managed Instances keep 3 instances: their bill barely moves with volume; Flex's grows.
    lmi = df[df.platform == "lmi"].monthly_cost_usd.to_numpy()
    flex = df[df.platform == "flex"].monthly_cost_usd.to_numpy()
    assert lmi[-1] < 2 * lmi[0] and flex[-1] > flex[0]


@pytest.mark.parametrize("kind", ["azure_flex", "lambda_managed"])
def test_trace_replay(tmp_path: Path, kind: str) -> None:
    data = {
        **BASE,
        "duration": "10m",
        "workload": {
            "arrivals": [
                {
                    "trace": {
                        "file": str(ROOT / "scenarios/data/azure2019-hour/invocations.csv"),
                        "format": "azure2019",
                        "durations": str(ROOT / "scenarios/data/azure2019-hour/durations.csv"),
                        "top": 5,
                        "within_minute": "uniform",
                    }
                }
            ],
            "service": {"cpu_bound": 0.2},
        },
        "platforms": [{"name": "p", "type": kind}],
    }
    path = write(tmp_path, data)
    cli("run", str(path), "--out", str(tmp_path / "t"), "--no-html")
    doc = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert "requests" in json.dumps(doc)


def test_steady_api_levels_flex_and_managed_entries_validate_and_run() -> None:
    from conftest import make_scenario, run_platform

    levels = yaml.safe_load((ROOT / "scenarios/steady-api-levels.yaml").read_text())
    mine = [p for p in levels["platforms"] if p["type"] in ("azure_flex", "lambda_managed")]
    sc = make_scenario({**BASE, "duration": "2m", "platforms": mine})
    assert [p.type for p in sc.platforms] == ["azure_flex", "azure_flex", "lambda_managed"]
    for p in sc.platforms:
        run = run_platform(sc, p.name)
        assert run.stats.outcomes["ok"] == run.stats.requests


@pytest.mark.parametrize(
    ("platform", "key"),
    [
        ({"name": "f", "type": "azure_flex", "instance_memory": 1024}, "instance_memory"),
        ({"name": "m", "type": "lambda_managed", "runtime": "ruby"}, "runtime"),
    ],
)
def test_bad_input_exits_2_naming_the_key(tmp_path: Path, platform: dict, key: str) -> None:
    path = write(tmp_path, {**BASE, "platforms": [platform]})
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and key in r.output, r.output


def test_a_missed_slo_suggests_a_tune_command_that_runs(tmp_path: Path) -> None:
    from sim.verdict import tune_params

    sc = CliRunner()
    data = {**BASE, "slo": {"p99": "1ms"}}  # missed by every platform
    path = write(tmp_path, data)
    r = sc.invoke(main, ["run", str(path), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "sim tune" in r.output and "--param always_ready=" in r.output
    from conftest import make_scenario

    scen = make_scenario(data)
    p = {"slo": {}, "instances": {"peak": 2}}
    assert tune_params(scen.platform("flex"), p)[0] == "always_ready=1:5:1"
    assert tune_params(scen.platform("lmi"), p) == ["min_environments=3:7:1"]
    out = cli(
        "tune",
        str(path),
        "--platform",
        "flex",
        "--param",
        "instance_memory=512,2048,4096",
        "--slo",
        "p99<5s",
        "--out",
        str(tmp_path / "t"),
    )
    assert "instance_memory" in out
