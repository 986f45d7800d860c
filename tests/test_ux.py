"""A platform engineer's first hour: numbers as people write them, the summary at any terminal
width, getting started (init, scenarios, bare sim, completion), one name per option, output
folders, Ctrl-C, and the sweep/crossover pages."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from sim import format as fmt
from sim.cli import main

from conftest import ROOT, SCENARIOS


def sim(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- numbers as people write them --------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (90 * 86400, "90 d"),
        (7_776_000.0, "90 d"),
        (1200, "20 min"),
        (5400, "1.5 h"),
        (6 * 3600, "6 h"),
        (45, "45 s"),
        (0.25, "250 ms"),
        (0.0005, "500 us"),
        (0, "0 s"),
        (None, "-"),
    ],
)
def test_durations_in_the_largest_sensible_unit(seconds, text) -> None:
    assert fmt.duration(seconds) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (29_658.43, "$29,658"),
        (118.351, "$118.35"),
        (5.071, "$5.07"),
        (0.0, "$0.00"),
        (0.0012345, "$0.0012"),
        (float("nan"), "-"),
    ],
)
def test_money_with_the_precision_of_a_bill(usd, text) -> None:
    assert fmt.usd(usd) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0.0, "0ms"), (0.512, "0.512ms"), (59.74, "59.7ms"), (218.4, "218ms"), (40_800, "40.8s")],
)
def test_latencies_as_the_tables_show_them(ms, text) -> None:
    assert fmt.ms(ms) == text  # a zero wait is 0ms, not 0.000ms


def test_cost_per_million_from_few_requests_is_flagged() -> None:
    assert fmt.per_million(29_658.0, 112) == "$29,658 (from only 112 requests)"
    assert fmt.per_million(2.28, 18_106) == "$2.28"


# --- the summary at 80, 100 and 160 columns ------------------------------------------------------


def _platform(i: int, ops: float = 0.0) -> dict:
    lat = {"p50": 59.7 + i, "p90": 118.0 + i, "p99": 2218.0 + i, "p999": 48_100.0 + i}
    lat["max"] = 80_812.0 + i
    return {
        "requests": 12_345_678 + i,
        "requests_per_replication": 4_115_226,
        "error_rate": 0.0123,
        "cold_start_ratio": 0.2456,
        "latency_ms": lat,
        "instances": {"peak": 1234.0 + i},
        "monthly_cost_usd": 29_658.4 + i,
        "operating_monthly_usd": ops,
        "cost_per_million_usd": 118.35 + i,
        "slo": {"p99": {"target_ms": 250.0, "value_ms": lat["p99"], "met": False}},
    }


SUMMARY = {
    "scenario": "a-scenario-with-a-long-name",
    "replications": 3,
    "duration_s": 7_776_000.0,
    "platforms": {
        "lambda-provisioned-concurrency-20": _platform(0),
        "eks-keda-queue-scaled": _platform(1, ops=2000.0),
        "cloudflare-workers": _platform(2),
        "fastly-compute-edge": _platform(3),
    },
}


def _render(width: int, summary: dict = SUMMARY) -> str:
    from sim.cli.console import print_tables

    con = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    print_tables(summary, con)
    return con.export_text()


@pytest.mark.parametrize("width", [80, 100, 160, 40])
def test_summary_fits_the_terminal_without_cutting_a_number(width: int) -> None:
    out = _render(width)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    for name, p in SUMMARY["platforms"].items():
        assert name in out
        lat = p["latency_ms"]
        for cell in (
            f"{p['requests']:,}",  # 12,345,678
            "1.23%",
            "24.56%",
            f"{lat['p50']:.1f}ms",
            f"{lat['p90']:.0f}ms",
            f"{lat['p99']:.0f}ms",
            f"{lat['p999'] / 1000:.1f}s",
            f"{lat['max'] / 1000:.1f}s",
            f"{p['instances']['peak']:,.0f}",
            f"${p['monthly_cost_usd']:,.0f}",
            f"${p['cost_per_million_usd']:.2f}",
        ):
            assert cell in out, (width, name, cell)
    assert "$2,000" in out  # the ops column
    assert "FAIL p99" in out or ("FAIL" in out and "p99" in out)


def test_wide_terminal_gets_one_table_and_narrow_gets_blocks() -> None:
    wide, narrow = _render(200), _render(80)
    header = "platform"
    assert wide.count(header) == 1  # one table
    assert "latency" not in wide.split("\n")[0]
    assert narrow.count("┏") >= 2  # at least two tables (or one per group of platforms)


# --- results line, folder modes, option names ----------------------------------------------------

SMALL = """\
name: ux
duration: 10m
warmup: 1m
replications: 2
seed: 5
workload:
  arrivals:
    - steady: {rate: 2/s}
  service:
    duration: {dist: lognormal, median: 50ms, p99: 200ms}
    cpu_bound: 0.5
platforms:
  - name: fn
    type: lambda
    memory: 1024
    keep_alive: 10m
    runtime: python3.13
  - name: edge
    type: wasm
slo:
  p99: 2s
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(SMALL)
    return p


def test_run_lists_every_file_it_wrote_and_folders_share_one_mode(small: Path) -> None:
    cwd = small.parent
    r = sim("run", "s.yaml", "--out", "out", "--no-report", cwd=cwd)  # the old spelling works
    assert r.returncode == 0, r.stderr
    out = cwd / "out"
    line = next(x for x in r.stdout.splitlines() if x.startswith("results:"))
    for f in sorted(p.name for p in out.iterdir() if not p.name.startswith(".")):
        assert f in line
    assert ".sim-output.json" not in line  # sim's marker: bookkeeping, not a result
    assert "decisions.csv" in line and "report.html" not in line
    assert r.stdout.splitlines()[0].startswith("pick ")
    assert json.loads((out / "summary.json").read_text())["verdict"]["status"] == "pass"
    s = sim("sweep", "s.yaml", "--param", "seed=1,2", "--out", "sw", "--no-html", cwd=cwd)
    assert s.returncode == 0, s.stderr
    umask = os.umask(0)
    os.umask(umask)
    want = 0o777 & ~umask
    assert (out.stat().st_mode & 0o777) == want == ((cwd / "sw").stat().st_mode & 0o777)


def test_no_html_is_the_name_everywhere(small: Path) -> None:
    for cmd in ("run", "sweep", "crossover"):
        r = CliRunner().invoke(main, [cmd, "--help"])
        assert "--no-html" in r.output and "--no-report" not in r.output, cmd
    r = sim("run", "s.yaml", "--out", "o", "--no-html", cwd=small.parent)
    assert r.returncode == 0 and not (small.parent / "o" / "report.html").exists()


def test_workers_has_one_range_everywhere() -> None:
    for cmd in ("run", "compare", "sweep", "tune", "crossover", "validate"):
        r = CliRunner().invoke(main, [cmd, "--help"])
        assert "1<=x<=1024" in r.output, cmd


def test_compare_takes_set_and_duration_like_run(small: Path) -> None:
    cwd = small.parent
    r = sim(
        "compare", "s.yaml", "--duration", "5m", "--set", "platforms.fn.memory=512", "--out", "c",
        cwd=cwd,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads((cwd / "results" / "ux" / "summary.json").read_text())
    assert s["duration_s"] == 300.0
    assert s["resolved_scenario"]["platforms"][0]["memory"] == 512
    assert (cwd / "c" / "report.html").is_file()


def test_crossover_duration_is_the_window_and_window_still_works(small: Path) -> None:
    cwd = small.parent
    args = ["crossover", "s.yaml", "--volume", "1M/month..2M/month", "--points", "2", "--no-html"]
    a = sim(*args, "--duration", "5m", "--out", "a", cwd=cwd)
    b = sim(*args, "--window", "5m", "--out", "b", cwd=cwd)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ja = json.loads((cwd / "a" / "crossover.json").read_text())
    jb = json.loads((cwd / "b" / "crossover.json").read_text())
    assert ja["assumptions"]["window_s"] == 300.0 == jb["assumptions"]["window_s"]
    assert "5 min simulated per volume" in a.stdout


# --- getting started -----------------------------------------------------------------------------


def test_bare_sim_prints_help_and_succeeds(tmp_path: Path) -> None:
    r = sim(cwd=tmp_path)
    assert r.returncode == 0 and "Usage:" in r.stdout and "init" in r.stdout
    assert "_SIM_COMPLETE=bash_source sim" in r.stdout


def test_scenarios_lists_every_bundled_file_with_its_description(tmp_path: Path) -> None:
    import yaml

    r = sim("scenarios", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert len(lines) == len(files)
    for f, line in zip(files, lines, strict=True):
        desc = yaml.safe_load(f.read_text())["description"]
        assert line.split()[0] == f.stem and line.endswith(desc)


def test_init_writes_a_template_that_runs_and_never_overwrites(tmp_path: Path) -> None:
    r = sim("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = (tmp_path / "scenario.yaml").read_text()
    assert written.startswith("# Written by `sim init --template small-api`")
    assert (SCENARIOS / "small-api.yaml").read_text() in written
    again = sim("init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (tmp_path / "scenario.yaml").read_text() == written
    bad = sim("init", "--template", "nope", "x.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and "small-api" in bad.stderr and not (tmp_path / "x.yaml").exists()
    # a template that reads a trace brings the trace (and its attribution) along, and runs
    t = sim("init", "-t", "azure-trace-replay", "az/a.yaml", cwd=tmp_path)
    assert t.returncode == 0, t.stderr
    assert (tmp_path / "az" / "data" / "README.md").is_file()
    run = sim("run", "az/a.yaml", "--duration", "10m", "--replications", "1", "--no-html",
              "--out", "o", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_bundled_scenarios_ship_inside_the_built_package(tmp_path: Path) -> None:
    """setup.py copies scenarios/ into the package at build time: an installed `sim` finds them
    without the repository."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "sim", src / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scenarios", src / "scenarios")
    lib = tmp_path / "lib"
    b = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert b.returncode == 0, b.stderr
    assert (lib / "sim" / "scenarios" / "small-api.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(lib)}
    r = subprocess.run(
        [sys.executable, "-c", "from sim.cli.common import bundled_dir; print(bundled_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == lib / "sim" / "scenarios"


def test_docsgen_help_prints_help_and_runs_nothing(tmp_path: Path) -> None:
    before = (ROOT / "README.md").read_text()
    r = subprocess.run(
        [sys.executable, "-m", "sim.dev.docsgen", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "usage:" in r.stdout and "ran " not in r.stderr
    assert (ROOT / "README.md").read_text() == before


def test_help_texts_quote_shell_special_examples() -> None:
    r = CliRunner().invoke(main, ["tune", "--help"])
    assert "'p99<300ms'" in r.output


# --- Ctrl-C --------------------------------------------------------------------------------------

LONG = SMALL.replace("duration: 10m", "duration: 30d").replace("rate: 2/s", "rate: 40/s")


def test_ctrl_c_stops_the_pool_and_leaves_no_workers(tmp_path: Path) -> None:
    (tmp_path / "long.yaml").write_text(LONG)
    p = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", "long.yaml", "--workers", "2", "--no-html",
         "--force", "--out", "o"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    time.sleep(4)  # past imports, into the simulation
    os.killpg(p.pid, signal.SIGINT)  # what a terminal sends: the whole foreground group
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ProcessLookupError):  # no worker left in the group
        os.killpg(p.pid, 0)


# --- sweep and crossover pages -------------------------------------------------------------------


def _rows(values, platforms=("fn", "edge")):
    rows = []
    for v in values:
        for name in platforms:
            swept = name == "fn"
            rows.append(
                {
                    "platforms.fn.provisioned_concurrency": v,
                    "platform": name,
                    "p50_ms": 50.0 + (v if swept else 0),
                    "p99_ms": 200.0 - (v if swept else 0),
                    "p999_ms": 400.0,
                    "p99_ci_lo": None,
                    "p99_ci_hi": None,
                    "cold_start_ratio": 0.01 / (1 + v) if swept else 0.0,
                    "error_rate": 0.0,
                    "monthly_cost_usd": 5.0 + 10 * v if swept else 5.0,
                    "cost_per_million_usd": 1.0,
                    "peak_instances": 3,
                    "slo_met": True,
                }
            )
    return rows


def test_sweep_page_selects_any_metric_and_draws_unswept_platforms_once() -> None:
    from sim.studies.plots import METRICS, sweep_figure
    from sim.studies.sweep import parse_param

    param = parse_param("platforms.fn.provisioned_concurrency=0:4:1")
    fig = sweep_figure(_rows(range(5)), [param], "t").to_go()
    menus = fig.layout.updatemenus
    assert len(menus) == 2
    labels = [b.label for b in menus[0].buttons]
    for want in ("p50", "p99 ", "p99.9", "cold starts", "error rate", "monthly bill", "instances"):
        assert any(want in lab for lab in labels), want
    assert len(labels) == len(METRICS)
    edge = [t for t in fig.data if t.name.startswith("edge")]
    fn = [t for t in fig.data if t.name == "fn"]
    assert all(t.name == "edge (not swept)" and len(t.x) == 2 for t in edge)  # one line
    assert all(len(t.x) == 5 for t in fn)
    # exactly one trace per panel visible for each platform at first: p99 left, bill right
    visible = [t for t in fig.data if t.visible]
    assert len(visible) == 4
    cold = next(b for b in menus[0].buttons if "cold" in b.label)
    shown = [i for i, v in zip(cold.args[2], cold.args[0]["visible"], strict=True) if v]
    assert {fig.data[i].name for i in shown} == {"fn", "edge (not swept)"}
    assert max(fig.data[shown[0]].y) == pytest.approx(1.0)  # 0.01 -> 1% (percent axis)
    assert fig.layout.yaxis.rangemode == "tozero"


def test_heat_map_rows_leave_room_for_axis_titles() -> None:
    from sim.studies.plots import sweep_figure
    from sim.studies.sweep import parse_param

    a = parse_param("platforms.fn.provisioned_concurrency=0,1")
    b = parse_param("workload.service.cpu_bound=0.2,0.8")
    rows = []
    for r in _rows([0, 1], platforms=("fn", "g", "h")):
        for cb in (0.2, 0.8):
            rows.append({**r, "workload.service.cpu_bound": cb, "p50_ms": r["p50_ms"] + cb})
    fig = sweep_figure(rows, [a, b], "t").to_go()
    height = fig.layout.height - fig.layout.margin.t - (fig.layout.margin.b or 80)  # plotly: b 80
    y1, y2 = fig.layout.yaxis.domain, fig.layout.yaxis3.domain  # rows 1 and 2, column 1
    gap_px = (y1[0] - y2[1]) * height
    # an x-axis title (ticks + title, ~50 px) above the next row's subplot title (~25 px)
    assert gap_px >= 100


def test_crossover_p99_axis_spans_at_least_a_decade() -> None:
    from sim.studies.plots import crossover_figure

    rows = [
        {"platform": n, "volume_per_month": v, "monthly_cost_usd": c, "p99_ms": p}
        for n, c, p in (("a", 10.0, 218.1), ("b", 20.0, 218.6))
        for v in (1e6, 1e7)
    ]
    fig = crossover_figure({"platforms": ["a", "b"], "rows": rows, "crossovers": []}, "t").to_go()
    lo, hi = fig.layout.yaxis2.range
    assert hi - lo >= 1.0  # log10 units: at least a factor of 10, not a 0.5 ms band


def test_report_starts_with_the_decision(small: Path) -> None:
    r = sim("run", "s.yaml", "--out", "r", cwd=small.parent)
    assert r.returncode == 0, r.stderr
    html = (small.parent / "r" / "report.html").read_text()
    first = r.stdout.splitlines()[0]
    assert first.startswith("pick ")
    assert f'<p class="verdict"><span class="pass">{first}</span></p>' in html
    assert html.index('class="verdict"') < html.index('id="summary"')
    assert "10 min simulated each" in html


@pytest.mark.parametrize("width", [80, 100, 160])
def test_study_tables_split_rather_than_cut(width: int) -> None:
    from sim.cli.common import fitted
    from sim.cli.sweep import _sweep_table

    rows = _rows(range(3))
    for r in rows:
        r["monthly_cost_usd"] *= 1000  # four-figure bills: wide cells
        r.update(slo_met=False, slo_missed="p99,error_rate")
    key = "platforms.fn.provisioned_concurrency"
    con = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    for t in fitted(con, _sweep_table(rows, [key], "a-long-sweep-name"), 2):
        con.print(t)
    out = con.export_text()
    assert "…" not in out and max(map(len, out.splitlines())) <= width
    for r in rows:
        assert fmt.usd(r["monthly_cost_usd"]) in out and fmt.ms(r["p99_ms"]) in out
    assert "FAIL p99,error_rate" in out  # the SLOs missed, by name
