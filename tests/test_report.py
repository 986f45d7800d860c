"""The HTML report: what it plots agrees with the results it reads, and the page is safe and small.

Figures are read back from the generated HTML (the JSON passed to Plotly.newPlot), so the tests
check what a reader actually gets. Expected values are computed here from requests.csv.gz with
numpy, or are public prices, never copied from the report's own output.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from plotly.offline import get_plotlyjs
from scipy import stats as sps

from sim.cli import main
from sim.cli.console import summary_table
from sim.defaults import REQUESTS_CSV_MAX_ROWS
from sim.errors import InputError
from sim.report import Results, load_results, render_report, results_from_run, write_images
from sim.results import write_results
from sim.simulate import run_scenario

from conftest import make_scenario

# Three platforms, five replications, small enough that requests.csv.gz holds every request
# (60,000 rows per platform / 5 replications = 12,000 per replication; this is about 10,500).
THREE = {
    "name": "three",
    "description": "Lambda vs Wasm vs KEDA",
    "duration": "20m",
    "warmup": "2m",
    "replications": 5,
    "seed": 5,
    "workload": {
        "arrivals": [
            {"steady": {"rate": "8/s"}},
            {"spike": {"at": "10m", "peak": "30/s", "rise": "10s", "hold": "30s", "decay": "30s"}},
        ],
        "service": {"duration": {"dist": "lognormal", "median": "40ms", "p99": "300ms"}},
    },
    "platforms": [
        {"name": "fn", "type": "lambda", "memory": 1024},
        {"name": "edge", "type": "wasm", "pricing": "cloudflare-workers"},
        {
            "name": "k8s",
            "type": "kubernetes",
            "pod": {"concurrency": 4},
            "keda": {
                "minReplicaCount": 1,
                "maxReplicaCount": 10,
                "pollingInterval": 15,
                "triggers": [{"type": "prometheus", "metadata": {"threshold": "5"}}],
            },
            "ops": {"monitoring": 40},
        },
    ],
    "slo": {"p99": "400ms"},
}


@pytest.fixture(scope="module")
def run3(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list]:
    sc = make_scenario(THREE)
    summary, runs = run_scenario(sc, Path.cwd(), workers=1)
    folder = write_results(tmp_path_factory.mktemp("res") / "three", summary, runs)
    return folder, summary, runs


@pytest.fixture(scope="module")
def res3(run3: tuple[Path, dict, list]) -> Results:
    return load_results(run3[0])


@pytest.fixture(scope="module")
def html3(res3: Results) -> str:
    return render_report([res3])


# --- reading figures back from the page ------------------------------------------------------


def _decode(x: Any) -> Any:
    """Plotly's JSON arrays may be typed ({"dtype", "bdata"}): turn them into numpy arrays."""
    if isinstance(x, dict) and "bdata" in x and "dtype" in x:
        arr = np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"]))
        return arr.reshape(x["shape"]) if "shape" in x and isinstance(x["shape"], list) else arr
    if isinstance(x, dict):
        return {k: _decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode(v) for v in x]
    return x


def figures_in(html: str) -> dict[str, dict[str, Any]]:
    """{div id: {"data": [...], "layout": {...}}} from every Plotly.newPlot call in the page."""
    out = {}
    dec = json.JSONDecoder()
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', html):
        data, end = dec.raw_decode(html, m.end())
        rest = re.match(r"\s*,\s*", html[end:])
        assert rest is not None
        layout, _ = dec.raw_decode(html, end + rest.end())
        out[m.group(1)] = {"data": _decode(data), "layout": _decode(layout)}
    return out


def traces(fig: dict[str, Any], kind: str, series: str | None = None) -> list[dict[str, Any]]:
    return [
        t
        for t in fig["data"]
        if (t.get("meta") or {}).get("kind") == kind
        and (series is None or t["meta"].get("series") == series)
    ]


def per_rep_latency(res: Results, platform: str) -> list[np.ndarray]:
    """Latencies after warm-up that the statistics cover (ok and timed_out), per replication."""
    df = res.requests
    df = df[
        (df["platform"] == platform)
        & (df["arrival_s"] >= res.summary["warmup_s"])
        & df["outcome"].isin(["ok", "timed_out"])
    ]
    return [np.sort(g["latency_ms"].to_numpy()) for _, g in df.groupby("replication")]


# --- the tail plot ---------------------------------------------------------------------------


def test_sample_is_complete(res3: Results):
    """The independent checks below need every request in requests.csv.gz."""
    for name, p in res3.summary["platforms"].items():
        df = res3.requests[res3.requests["platform"] == name]
        assert (df["arrival_s"] >= res3.summary["warmup_s"]).sum() == p["requests"]


@pytest.mark.parametrize("platform", ["fn", "edge", "k8s"])
def test_ccdf_quantiles_agree_with_summary_and_requests(html3: str, res3: Results, platform: str):
    tail = figures_in(html3)["fig-tail"]
    (ccdf,) = traces(tail, "ccdf", platform)
    x, y = np.asarray(ccdf["x"], float), np.asarray(ccdf["y"], float)
    lat = res3.summary["platforms"][platform]["latency_ms"]
    reps = per_rep_latency(res3, platform)
    for key, prob in (("p50", 0.5), ("p99", 0.01), ("p999", 0.001)):
        i = int(np.flatnonzero(np.isclose(y, prob, rtol=1e-12))[0])
        # The plotted quantile is summary.json's percentile ...
        assert x[i] == pytest.approx(lat[key], rel=1e-9)
        # ... and the mean over replications of numpy's own quantile of the raw requests
        # (inverted CDF: the smallest latency with at least that share of requests at or below).
        q = 1 - prob
        want = np.mean([np.quantile(r, q, method="inverted_cdf") for r in reps])
        assert x[i] == pytest.approx(want, rel=1e-6)
    # The CCDF is a tail: latency rises as the tail probability falls, and it ends at 1/n.
    assert np.all(np.diff(y) < 0) and np.all(np.diff(x) >= 0)
    n = min(r.size for r in reps)
    assert y.min() >= 1 / np.mean([r.size for r in reps]) - 1e-12
    assert y.min() < 10 / n
    # The p50 / p99 / p99.9 markers sit on the summary's percentiles.
    (marks,) = traces(tail, "marks", platform)
    assert list(marks["x"]) == pytest.approx([lat["p50"], lat["p99"], lat["p999"]], rel=1e-12)
    assert list(marks["y"]) == pytest.approx([0.5, 0.01, 0.001])
    # The linear CDF of the toggle is the same curve, flipped.
    (cdf,) = traces(tail, "cdf", platform)
    assert np.allclose(np.asarray(cdf["y"], float), 1 - y)


def test_ci_band_is_the_t_interval_across_replications(html3: str, res3: Results):
    tail = figures_in(html3)["fig-tail"]
    for platform, p in res3.summary["platforms"].items():
        (band,) = traces(tail, "ccdf_band", platform)
        # From summary.json's per-replication CCDFs (or the full sample): the same interval.
        assert (
            "per replication" in band["meta"]["source"]
            or "requests.csv.gz" in band["meta"]["source"]
        )
        x, y = np.asarray(band["x"], float), np.asarray(band["y"], float)
        k = x.size // 2  # polygon: lower edge down the probabilities, upper edge back up
        lo = dict(zip(y[:k], x[:k], strict=True))
        hi = dict(zip(y[k:], x[k:], strict=True))
        vals = np.array(
            [np.quantile(r, 0.99, method="inverted_cdf") for r in per_rep_latency(res3, platform)]
        )
        half = sps.t.ppf(0.975, vals.size - 1) * vals.std(ddof=1) / math.sqrt(vals.size)
        p01 = next(v for v in lo if math.isclose(v, 0.01))
        assert lo[p01] == pytest.approx(max(vals.mean() - half, x[x > 0].min()), rel=1e-6)
        assert hi[p01] == pytest.approx(vals.mean() + half, rel=1e-6)
        # sim.statistics computes the same interval for p99 from the replications' statistics.
        assert [lo[p01], hi[p01]] == pytest.approx(p["latency_ms_ci95"]["p99"], rel=1e-6)
    (button_log, button_lin) = tail["layout"]["updatemenus"][0]["buttons"]
    assert button_lin["args"][1]["xaxis.type"] == "linear"
    assert len(button_log["args"][0]["visible"]) == len(tail["data"])


def test_band_from_per_replication_key_and_none_from_a_partial_sample(res3: Results):
    bare = json.loads(json.dumps(res3.summary))
    for p in bare["platforms"].values():
        p["latency_ccdf"].pop("ms_by_replication", None)
    partial = Results(
        summary=bare,
        requests=res3.requests.iloc[::2],  # no longer every request: no band from it
        timeline=res3.timeline,
        decisions=res3.decisions,
    )
    html = render_report([partial])
    assert not traces(figures_in(html)["fig-tail"], "ccdf_band")
    assert "No CI bands" in html
    # A summary.json carrying per-replication CCDFs gets bands without the sample.
    summary = json.loads(json.dumps(bare))
    p = summary["platforms"]["fn"]
    ms = np.asarray(p["latency_ccdf"]["ms"])
    p["latency_ccdf"]["ms_by_replication"] = [list(ms * 0.9), list(ms), list(ms * 1.1)]
    html = render_report([Results(summary, partial.requests, res3.timeline, res3.decisions)])
    (band,) = traces(figures_in(html)["fig-tail"], "ccdf_band", "fn")
    assert band["meta"]["source"] == "summary.json (per replication)"
    # mean 1.0 ms, sd 0.1 ms, 3 replications: half-width t(0.975, 2) * 0.1 / sqrt(3) = 0.2484 ms
    i = int(np.flatnonzero(np.isclose(band["y"], 0.5))[0])
    p50 = ms[np.isclose(p["latency_ccdf"]["prob"], 0.5)][0]
    assert band["x"][i] == pytest.approx(p50 * (1 - 4.302653 * 0.1 / math.sqrt(3)), rel=1e-5)


# --- the other figures -----------------------------------------------------------------------


def test_parts_stack_to_the_mean_latency(html3: str, res3: Results):
    parts = figures_in(html3)["fig-parts"]
    bars = traces(parts, "part")
    assert [b["meta"]["part"] for b in bars] == ["overhead", "wait", "startup", "service"]
    cats = list(zip(*bars[0]["x"], strict=True))
    for platform, p in res3.summary["platforms"].items():
        i = cats.index((platform, "all"))
        stacked = sum(b["y"][i] for b in bars)
        assert stacked == pytest.approx(p["latency_ms"]["mean"], rel=1e-6)
        # The slowest 1% of the (complete) sample, by hand.
        df = res3.requests[res3.requests["platform"] == platform]
        df = df[(df["arrival_s"] >= 120) & df["outcome"].isin(["ok", "timed_out"])]
        slow = df[df["latency_ms"] >= np.percentile(df["latency_ms"], 99)]
        j = cats.index((platform, "slowest 1%"))
        assert sum(b["y"][j] for b in bars) == pytest.approx(slow["latency_ms"].mean(), rel=1e-6)


def test_cold_vs_warm_and_time_figures(html3: str, res3: Results):
    figs = figures_in(html3)
    fn = res3.summary["platforms"]["fn"]
    (warm,) = traces(figs["fig-cold_warm"], "warm", "fn")
    assert list(warm["x"][:1]) == pytest.approx([fn["warm_latency_ms"]["p50"]])
    t = figs["fig-time"]
    for kind in ("bucket_p99", "bucket_p50", "instances"):
        assert len(traces(t, kind)) == 3, kind
    # One arrival-rate line per scenario: the same traffic reaches every platform.
    (rate,) = traces(t, "arrival_rate")
    # Mean rate over the first replication's whole run = its requests / duration.
    tl = res3.timeline[(res3.timeline["platform"] == "edge") & (res3.timeline["replication"] == 0)]
    n0 = (res3.requests[(res3.requests["platform"] == "edge")]["replication"] == 0).sum()
    assert tl["arrivals"].sum() == pytest.approx(n0, rel=0.01)
    r = np.asarray(rate["y"], float)
    assert np.nanmean(r[1:]) == pytest.approx(n0 / 1200, rel=0.02)
    # KEDA's decisions of the first replication are marked with their reasons.
    dec = traces(t, "decisions", "k8s")
    d0 = res3.decisions[
        (res3.decisions["platform"] == "k8s") & (res3.decisions["replication"] == 0)
    ]
    assert sum(len(d["x"]) for d in dec) == len(d0) > 0
    assert any("keda" in text for d in dec for text in d["text"])


def test_bill_stacks_to_the_monthly_and_per_million_cost(html3: str, res3: Results):
    bill = figures_in(html3)["fig-bill"]
    bars = traces(bill, "bill")
    x = bars[0]["x"]
    for platform, p in res3.summary["platforms"].items():
        i = list(x).index(platform)

        def stack(per: str, op: bool, i: int = i) -> float:
            return sum(
                (b["y"][i] or 0)
                for b in bars
                if b["meta"]["per"] == per and b["meta"]["operating"] is op
            )

        assert stack("month", False) == pytest.approx(p["monthly_cost_usd"], rel=1e-9)
        assert stack("M", False) == pytest.approx(p["cost_per_million_usd"], rel=1e-9)
        assert stack("month", True) == pytest.approx(p["operating_monthly_usd"], abs=1e-9)
    # Public prices: Lambda requests $0.20 per million (facts.md) and every request is billed.
    (req,) = [b for b in bars if b["meta"]["line"] == "requests" and b["meta"]["per"] == "M"]
    assert req["y"][list(x).index("fn")] == pytest.approx(0.20, rel=1e-9)
    (ops,) = [b for b in bars if b["meta"]["operating"] and b["meta"]["per"] == "month"]
    assert ops["y"][list(x).index("k8s")] == pytest.approx(40.0)


def test_table_matches_the_terminal_summary(html3: str, res3: Results):
    table = summary_table(res3.summary)
    cells = {c.header: [str(v) for v in c._cells] for c in table.columns}
    html = re.sub(r'<span class="ci">.*?</span>', "", html3)
    for i, platform in enumerate(cells["platform"]):
        row = re.search(rf"{re.escape(platform)}</td>(.*?)</tr>", html)
        assert row is not None
        got = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
        for col in ("requests", "errors", "cold %", "p50", "p90", "p99", "p99.9", "max"):
            assert cells[col][i] in got, col
        month = next(h for h in cells if h.startswith("$/month"))  # "$/month (730 h)"
        for col in ("peak inst", month, "$/M req"):
            assert cells[col][i] in got, col
        want_slo = "pass" if "pass" in cells["SLO"][i] else "FAIL"
        assert want_slo in got[-1]


# --- the page --------------------------------------------------------------------------------


def test_page_is_self_contained_deterministic_and_escaped(res3: Results):
    nasty = "<script>alert(1)</script>"
    summary = json.loads(json.dumps(res3.summary))
    summary["description"] = f"desc {nasty} & more"
    summary["resolved_scenario"]["description"] = nasty
    summary["platforms"] = {
        f"<img src=x onerror=alert(2)>{k}": v for k, v in summary["platforms"].items()
    }
    rename = {k: f"<img src=x onerror=alert(2)>{k}" for k in res3.summary["platforms"]}
    dec = res3.decisions.assign(platform=res3.decisions["platform"].map(rename))
    dec["reason"] = "<b onmouseover=alert(3)>why</b>"
    bad = Results(
        summary,
        res3.requests.assign(platform=res3.requests["platform"].map(rename)),
        res3.timeline.assign(platform=res3.timeline["platform"].map(rename)),
        dec,
    )
    html = render_report([bad])
    assert html == render_report([bad])  # same results, same bytes
    for raw in (nasty, "<img src=x", "<b onmouseover"):
        assert raw not in html
    assert "&lt;img src=x onerror=alert(2)&gt;fn" in html  # shown, as text
    # plotly.js inlined exactly once; nothing fetched from anywhere.
    assert html.count("plotly.js v") == 1
    bundle = get_plotlyjs()
    assert html.count(bundle) == 1
    page = html.replace(bundle, "")
    assert "<script src" not in page and "http://" not in page and "https://" not in page
    assert len(figures_in(html)) == 5


def test_report_from_a_run_equals_report_from_its_folder(run3, res3: Results):
    _, summary, runs = run3
    a = figures_in(render_report([results_from_run(summary, runs)]))
    b = figures_in(render_report([res3]))
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]["data"]) == len(b[key]["data"])
        for ta, tb in zip(a[key]["data"], b[key]["data"], strict=True):
            assert ta.get("meta") == tb.get("meta")
            for axis in ("x", "y"):
                va, vb = ta.get(axis), tb.get(axis)
                if isinstance(va, np.ndarray) or (
                    isinstance(va, list) and va and isinstance(va[0], float)
                ):
                    assert np.allclose(
                        np.asarray(va, float), np.asarray(vb, float), rtol=1e-4, equal_nan=True
                    )
                else:
                    assert va == vb


def test_three_platforms_five_replications_stay_small(res3: Results):
    """Plots use aggregates and thinned samples, so the page stays far below 10 MB (plotly.js
    alone is about 4.8 MB) even with the largest request sample sim writes."""
    cap = REQUESTS_CSV_MAX_ROWS * 3  # requests.csv.gz keeps at most this many rows here
    big = pd.concat([res3.requests] * math.ceil(cap / len(res3.requests)), ignore_index=True)
    assert len(big) >= cap
    html = render_report([Results(res3.summary, big, res3.timeline, res3.decisions)])
    assert len(html.encode()) < 10e6
    small = render_report([res3])
    assert len(small.encode()) < 10e6
    assert len(small.encode()) - len(get_plotlyjs().encode()) < 1.5e6  # the figures themselves


# --- loading and the command line ------------------------------------------------------------


def test_load_results_errors(tmp_path: Path):
    with pytest.raises(InputError, match=r"no summary\.json"):
        load_results(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(InputError, match=r"unreadable summary\.json"):
        load_results(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="platforms"):
        load_results(tmp_path)


def test_renders_from_summary_json_alone(run3, tmp_path: Path):
    """Only summary.json is required; a histogram-based run (no warm split) still renders."""
    folder = tmp_path / "bare"
    folder.mkdir()
    summary = json.loads((run3[0] / "summary.json").read_text())
    for p in summary["platforms"].values():
        p["exact_percentiles"] = False
        p["warm_latency_ms"] = {}
        p["latency_ccdf"].pop("ms_by_replication", None)
    (folder / "summary.json").write_text(json.dumps(summary))
    html = render_report([load_results(folder)])
    figs = figures_in(html)
    assert len(figs) == 5
    assert len(traces(figs["fig-tail"], "ccdf")) == 3
    assert not traces(figs["fig-tail"], "ccdf_band")  # no sample, no per-replication key
    assert "log-binned histogram" in html


def test_images_need_kaleido(res3: Results, tmp_path: Path):
    pytest.importorskip("plotly")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="kaleido"):
            write_images({}, tmp_path)
    else:
        pytest.skip("kaleido is installed")


SMALL = """\
name: {name}
duration: 5m
replications: 2
seed: 1
workload:
  arrivals: [{{steady: {{rate: 2/s}}}}]
  service: {{duration: 50ms}}
platforms:
  - {{name: fn, type: lambda}}
  - {{name: edge, type: wasm}}
"""


def test_compare_cli(run3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.yaml").write_text(SMALL.format(name="small"))
    cli = CliRunner()
    r = cli.invoke(main, ["compare", "small.yaml", str(run3[0]), "--out", "cmp"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "results" / "small" / "summary.json").is_file()  # as `sim run` writes
    assert (tmp_path / "results" / "small" / "report.html").is_file()
    html = (tmp_path / "cmp" / "report.html").read_text()
    tail = figures_in(html)["fig-tail"]
    labels = {t["meta"]["series"] for t in tail["data"] if t["meta"]["kind"] == "ccdf"}
    assert labels == {"small/fn", "small/edge", "three/fn", "three/edge", "three/k8s"}
    # Two results with the same scenario name are told apart by their folders.
    r = cli.invoke(main, ["compare", str(run3[0]), "results/small/summary.json", str(run3[0])])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "results" / "compare" / "report.html").is_file()
    for bad in (["nope.yaml"], [str(tmp_path)], []):
        r = cli.invoke(main, ["compare", *bad])
        assert r.exit_code == 2, (bad, r.output)
    (tmp_path / "bad.yaml").write_text(SMALL.format(name="bad").replace("duration: 5m", "x: 1"))
    r = cli.invoke(main, ["compare", "bad.yaml"])
    assert r.exit_code == 2 and "bad.yaml" in r.output


def test_run_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.yaml").write_text(SMALL.format(name="small"))
    r = CliRunner().invoke(main, ["run", "small.yaml", "--out", "out"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert set(figures_in(html)) == {
        f"fig-{k}" for k in ("tail", "parts", "cold_warm", "time", "bill")
    }


def test_log_axes_read_1_2_5_and_the_toggle_restores_them(html3: str):
    figs = figures_in(html3)
    tail = figs["fig-tail"]["layout"]
    for ax, want in (("xaxis", {"10", "20", "50", "100"}), ("yaxis", {"0.5", "0.01", "0.001"})):
        assert tail[ax]["type"] == "log" and tail[ax]["tickmode"] == "array"
        assert want <= set(tail[ax]["ticktext"]), (ax, tail[ax]["ticktext"])
        assert not any("e+" in t or "e-" in t for t in tail[ax]["ticktext"])
    log_btn, lin_btn = (b["args"][1] for b in tail["updatemenus"][0]["buttons"])
    assert log_btn["xaxis.tickmode"] == log_btn["yaxis.tickmode"] == "array"
    assert lin_btn["xaxis.tickmode"] == lin_btn["yaxis.tickmode"] == "auto"
    cold_warm = figs["fig-cold_warm"]["layout"]["xaxis"]
    assert {"50", "100", "200"} <= set(cold_warm["ticktext"])
    latency = figs["fig-time"]["layout"]["yaxis"]  # row 1: latency per bucket, log
    assert latency["type"] == "log" and {"100", "200"} <= set(latency["ticktext"])
