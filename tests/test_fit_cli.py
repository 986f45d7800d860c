"""`sim fit` end to end: bad and hostile inputs exit 2 naming file, line and what was expected;
the back-test on the bundled Azure 2021 extract reproduces what was observed."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.scenario import read_scenario_data, validate_scenario

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "fit"
AZURE = ROOT / "tests" / "data" / "azure2021_extract.csv"


def sim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _bad(tmp_path: Path, name: str, content: bytes, *args: str) -> str:
    p = tmp_path / name
    p.write_bytes(content)
    r = sim("fit", str(p), "--out", str(tmp_path / "o.yaml"), *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr + r.stdout
    assert "Traceback" not in r.stderr
    assert str(p) in r.stderr
    return r.stderr


def test_empty_file(tmp_path: Path) -> None:
    assert "empty" in _bad(tmp_path, "empty.log", b"")


def test_truncated_gzip(tmp_path: Path) -> None:
    body = (DATA / "lambda-text.log").read_bytes() * 50
    whole = gzip.compress(body)
    err = _bad(tmp_path, "cut.log.gz", whole[: len(whole) // 2])
    assert "gzip" in err


def test_binary(tmp_path: Path) -> None:
    err = _bad(tmp_path, "blob.bin", bytes(range(256)) * 40)
    assert "binary" in err


def test_no_report_lines(tmp_path: Path) -> None:
    text = b"2024-03-05T10:00:00Z 2024/03/05/[$LATEST]abc START RequestId: x Version: 1\n"
    err = _bad(tmp_path, "noreport.log", text, "--format", "lambda")
    assert "no Lambda REPORT lines" in err
    # without --format: nothing recognisable, and it says what it expected and line 1
    err = _bad(tmp_path, "noreport2.log", text)
    assert "expected Lambda REPORT lines" in err and "line 1" in err


def test_non_monotone_histogram(tmp_path: Path) -> None:
    rate = (DATA / "prometheus-rate.json").read_bytes()
    (tmp_path / "rate.json").write_bytes(rate)
    bad = DATA / "prometheus-histogram-bad.json"
    r = sim("fit", "rate.json", str(bad), "--out", "o.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert str(bad) in r.stderr
    assert "not cumulative: le=0.05 holds 10 but le=0.1 holds 8" in r.stderr


def test_malformed_lines_reported_with_numbers(tmp_path: Path) -> None:
    r = sim("fit", str(DATA / "lambda-text.log"), "--out", "o.yaml", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "5 records; 1 malformed" in r.stdout
    assert "line 19: REPORT line without" in r.stdout
    fit = json.loads((tmp_path / "o-fit.json").read_text())
    assert fit["inputs"][0]["first_malformed"][0]["line"] == 19
    # 1 of the 5 invocations failed (Status: error), 1 timed out: the handler error rate is 1/5
    sc = yaml.safe_load((tmp_path / "o.yaml").read_text())
    assert sc["workload"]["service"]["error_rate"] == 0.2
    assert fit["observed"]["errors"] == 1 and fit["observed"]["timeouts"] == 1


def test_azure2021_backtest_reproduces_the_trace(tmp_path: Path) -> None:
    r = sim("fit", str(AZURE), "--out", "az/az.yaml", "--check", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # exit 1 would mean a row disagrees
    out = tmp_path / "az"
    fit = json.loads((out / "az-fit.json").read_text())
    rows = {row["metric"]: row for row in fit["backtest"]["rows"]}
    # replay: the observed per-minute counts exactly
    assert rows["requests"]["observed"] == rows["requests"]["simulated"] == 300
    assert rows["per-minute counts: largest difference"]["simulated"] == 0
    # durations: simulated p50/p99 within the CIs
    for key in ("latency p50", "latency p99"):
        assert rows[key]["agree"] is True
    # the per-minute counts, computed here from the trace itself
    df = pd.read_csv(AZURE)
    arrival = df["end_timestamp"] - df["duration"]
    t0 = np.floor(arrival.min() / 60) * 60
    expect = np.bincount(((arrival - t0) // 60).astype(int))
    got = np.array(fit["backtest"]["minute_counts_observed"])
    assert np.array_equal(got[: expect.size], expect) and got[expect.size :].sum() == 0
    # the scenario is a valid scenario; its trace holds the observed arrivals
    data, node, file = read_scenario_data(out / "az.yaml")
    sc = validate_scenario(data, file=file, base_dir=out, node=node)
    assert [p.name for p in sc.platforms] == ["lambda", "eks-keda", "workers"]
    trace = pd.read_csv(out / "az-arrivals.csv.gz")
    assert np.allclose(np.sort(trace["t"]), np.sort(arrival - t0), atol=1e-6)
    html = (out / "az-fit.html").read_text()
    assert "Back-test" in html and "<script src=" not in html  # plotly.js inlined: offline


def test_lambda_logs_with_power_tuning(tmp_path: Path) -> None:
    r = sim(
        "fit",
        str(DATA / "lambda-events.json"),
        str(DATA / "power-tuning.json"),
        "--out",
        "l.yaml",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    sc = yaml.safe_load((tmp_path / "l.yaml").read_text())
    lam = sc["platforms"][0]
    assert lam["memory"] == 1024
    assert "init" in lam
    fit = json.loads((tmp_path / "l-fit.json").read_text())
    c = fit["power_tuning"]["cpu_bound"]
    assert sc["workload"]["service"]["cpu_bound"] == pytest.approx(c, abs=1e-6)
    assert fit["cpu_bound"]["source"].startswith("fitted")
    assert fit["keep_alive"]["environments"] == 2


def test_prometheus_rate_and_histogram_give_phases(tmp_path: Path) -> None:
    r = sim(
        "fit",
        str(DATA / "prometheus-rate.json"),
        str(DATA / "prometheus-histogram.json"),
        "--out",
        "p.yaml",
        "--no-report",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    sc = yaml.safe_load((tmp_path / "p.yaml").read_text())
    steps = sc["workload"]["arrivals"][0]["phases"]["steps"]
    assert [s["rate"] for s in steps] == [3.0, 3.0, 5.0, 4.0]
    assert sc["duration"] == "240s"
    pct = sc["workload"]["service"]["duration"]["percentiles"]
    assert pct[50] == "87.5ms"


def test_parametric_arrivals(tmp_path: Path) -> None:
    r = sim("fit", str(AZURE), "--arrivals", "parametric", "--out", "a.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sc = yaml.safe_load((tmp_path / "a.yaml").read_text())
    kind = next(iter(sc["workload"]["arrivals"][0]))
    assert kind in ("steady", "phases", "diurnal")
    assert not (tmp_path / "a-arrivals.csv.gz").exists()


def test_python_api(tmp_path: Path) -> None:
    import sim as simpkg

    res = simpkg.fit_sources([DATA / "k6.json"], out=tmp_path / "k.yaml", report=False)
    assert res.scenario["workload"]["arrivals"][0]["trace"]["file"] == "k-arrivals.csv.gz"
    assert res.fit.arrivals.count == 2


def test_cli_lists_every_format() -> None:
    from sim.cli.fit import _FORMATS
    from sim.fit.readers import FORMATS

    assert set(_FORMATS) == set(FORMATS)


def test_generated_lambda_logs_recover_the_ground_truth(tmp_path: Path) -> None:
    """REPORT lines written from a known truth (Poisson 2/s for 30 min, lognormal handler time
    median 80 ms, sigma 0.4, 1024 MB): the fit recovers both."""
    from datetime import datetime, timezone

    from pydantic import TypeAdapter
    from scipy import stats as sps

    from sim.distributions import Distribution
    from sim.fit import fit_sources
    from sim.fit.build import _yaml_dist
    from sim.fit.fitters import ALPHA

    rng = np.random.default_rng(21)
    t = np.sort(rng.uniform(0, 1800, rng.poisson(2 * 1800)))
    truth = sps.lognorm(s=0.4, scale=0.080)
    d = truth.rvs(t.size, random_state=rng) * 1e3
    lines = []
    for i, (a, ms) in enumerate(zip(t, d, strict=True)):
        end = datetime.fromtimestamp(1709632800 + a + ms / 1e3, timezone.utc).isoformat()
        lines.append(
            f"{end} 2024/03/05/[$LATEST]abc REPORT RequestId: {i:08d}-0000-4000-8000-0000000000"
            f"00\tDuration: {ms:.2f} ms\tBilled Duration: {int(np.ceil(ms))} ms\tMemory Size: "
            "1024 MB\tMax Memory Used: 80 MB\t"
        )
    src = tmp_path / "gen.log.gz"
    with gzip.open(src, "wt") as fh:
        fh.write("\n".join(lines[::-1]) + "\n")  # newest first, as some exports are
    res = fit_sources([src], out=tmp_path / "g.yaml", report=False)
    a = res.fit.arrivals
    assert a.count == t.size
    assert a.rate_ci[0] <= 2.0 <= a.rate_ci[1]
    assert a.chosen == "steady"
    s = res.fit.service
    assert s.chosen == "lognormal"
    fitted = TypeAdapter(Distribution).validate_python(_yaml_dist(s.dist))
    draws = fitted.sample(4000, np.random.default_rng(5))
    assert sps.ks_2samp(draws, truth.rvs(4000, random_state=6)).pvalue > ALPHA
    assert res.scenario["platforms"][0]["memory"] == 1024


def test_backtest_bills_the_models_rounded_milliseconds(tmp_path: Path) -> None:
    """Every invocation runs 80.30 ms and is billed 81 ms: the simulated billed duration is the
    Lambda model's own (1 ms rounding per invocation), 81 ms, not a mean + 0.5 ms estimate."""
    from datetime import datetime, timezone

    from sim.fit import fit_sources

    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 600, 1200))
    lines = [
        f"{datetime.fromtimestamp(1709632800 + a + 0.0803, timezone.utc).isoformat()} "
        f"2024/03/05/[$LATEST]abc REPORT RequestId: {i:08d}-0000-4000-8000-000000000000\t"
        "Duration: 80.30 ms\tBilled Duration: 81 ms\tMemory Size: 1769 MB\tMax Memory Used: 80 MB"
        for i, a in enumerate(t)
    ]
    src = tmp_path / "c.log"
    src.write_text("\n".join(lines) + "\n")
    res = fit_sources([src], out=tmp_path / "c.yaml", check=True, report=False)
    assert res.check is not None
    rows = {r["metric"]: r for r in res.check["rows"]}
    billed = rows["billed duration per invocation"]
    assert billed["observed"] == 81.0
    assert billed["simulated"] == pytest.approx(81.0, abs=1e-9)
    assert billed["agree"] is True
    assert rows["latency p50"]["agree"] is True  # 80.3 vs 80.3 up to float rounding
