"""The compiled Lambda kernel (sim/platforms/lambda_warm.py, SIM_KERNEL=compiled), both builds of
it - native (Cython, at install: sim/native.py) and numba's (lambda_kernel.py) - against the
Python plain loop (SIM_KERNEL=python): the same request rows in the same order, statistics,
timeline, usage and bill, and byte-identical results files, on the cases where the kernel hands
arrivals back to Python (cold starts, reclaims, recycling at the lifetime cap, timeouts,
concurrency and token throttles, drawn start-ups and gateway latencies, a saturated function).
A build that is not there is skipped (tests/test_native.py requires the native one in CI)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_lambda_plain import RARE as CASES
from test_lambda_plain import _scenario, _simfaas, assert_same_runs, random_plain_scenarios

from sim import defaults
from sim.engine import run_one
from sim.native import is_compiled
from sim.platforms import lambda_ as L
from sim.results import write_results
from sim.simulate import run_scenario

from conftest import ROOT, timeless

BUILDS = ("native", "numba")


def _skip_unless_there(build: str) -> None:
    if build == "native" and not is_compiled(L.lambda_warm):
        pytest.skip("this install has no native build (no C compiler at install)")
    if build == "numba" and importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed")


@pytest.fixture(autouse=True, params=BUILDS)
def build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test, once per build of the kernel (numba's: with the native one turned off)."""
    _skip_unless_there(request.param)
    monkeypatch.setattr(defaults, "REQUESTS_CSV_MAX_ROWS", 10**9)
    monkeypatch.setattr(L, "NATIVE_KERNEL", request.param == "native")
    return request.param


def _run(sc: Any, mode: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """run_one with SIM_KERNEL=mode, and how many spans the compiled kernel ran."""
    spans: list[int] = []
    compiled = L.LambdaModel._compiled_span

    def counted(self: L.LambdaModel, i0: int, j: int) -> None:
        spans.append(j - i0)
        compiled(self, i0, j)

    with monkeypatch.context() as m:
        m.setenv("SIM_KERNEL", mode)
        m.setattr(L.LambdaModel, "_compiled_span", counted)
        run = run_one(sc, sc.platforms[0].name, 0, ROOT)
    return run, len(spans)


def assert_identical(sc: Any, monkeypatch: pytest.MonkeyPatch, kernel: bool = True) -> None:
    """`kernel`: the compiled kernel must have run (not where every chunk takes the general
    loop for the invocation-rate check)."""
    slow, none = _run(sc, "python", monkeypatch)
    fast, spans = _run(sc, "compiled", monkeypatch)
    assert none == 0 and (spans > 0 or not kernel)
    assert_same_runs(fast, slow)


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_kernel_equals_python_loop(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_identical(_scenario(CASES[name]), monkeypatch)


def test_compiled_kernel_equals_python_loop_on_simfaas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three hours (three chunks) of SimFaaS's scenario at 10 req/s, warm-up 10 min."""
    assert_identical(_simfaas("3h", "10m"), monkeypatch)


def test_compiled_kernel_equals_python_loop_saturated(monkeypatch: pytest.MonkeyPatch) -> None:
    """SimFaaS's scenario squeezed into 8 environments: most requests throttled (429)."""
    sc = _simfaas("30m", "1m", reserved_concurrency=8)
    assert_identical(sc, monkeypatch)
    run, _ = _run(sc, "compiled", monkeypatch)
    assert (run.stats.sample["outcome"] > 0).mean() > 0.5


def test_results_files_are_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole pipeline: summary.json (but its wall times), requests.csv.gz, timeline, ..."""
    sc = _scenario({**CASES["lifetime"], **CASES["drawn"], "timeout": "0.4s"})
    folders = []
    for mode in ("python", "compiled"):
        monkeypatch.setenv("SIM_KERNEL", mode)
        summary, runs = run_scenario(sc, ROOT, workers=1)
        folders.append(write_results(tmp_path / mode, summary, runs))
    names = sorted(p.name for p in folders[0].iterdir())
    assert "summary.json" in names and "requests.csv.gz" in names
    assert names == sorted(p.name for p in folders[1].iterdir())
    for name in names:
        a, b = ((f / name).read_bytes() for f in folders)
        if name == "summary.json":  # equal but for the wall times
            a, b = (timeless(json.loads(x)) for x in (a, b))
        assert a == b, name


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=random_plain_scenarios())
def test_random_plain_scenarios_compiled_equals_python(sc: Any) -> None:
    with pytest.MonkeyPatch.context() as m:
        assert_identical(sc, m, kernel=False)


def test_kernel_choice(build: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_KERNEL", "python")
    assert L.use_compiled(1e12) is None
    monkeypatch.setenv("SIM_KERNEL", "compiled")
    assert L.use_compiled(0) == build
    monkeypatch.setenv("SIM_KERNEL", "auto")
    if build == "native":  # no import to pay for: every run
        assert L.use_compiled(0) == "native"
    else:
        assert L.use_compiled(L.CACHED_AT - 1) is None  # short runs never pay numba's import
        assert L.use_compiled(L.COMPILE_AT) == "numba"
    monkeypatch.setenv("SIM_KERNEL", "numba")
    with pytest.raises(ValueError, match="SIM_KERNEL"):
        L.use_compiled(0)


def test_a_bad_sim_kernel_is_refused_before_any_work(tmp_path: Path) -> None:
    """A typo in SIM_KERNEL: exit 2 with one line naming the variable and its values, nothing
    written (not a traceback from the simulation worker)."""
    import os
    import subprocess
    import sys

    scenario = {
        "name": "typo",
        "duration": "10m",
        "workload": {
            "arrivals": [{"steady": {"rate": "5/s"}}],
            "service": {"duration": {"dist": "constant", "value": "50ms"}},
        },
        "platforms": [{"name": "fn", "type": "lambda"}],
    }
    (tmp_path / "s.yaml").write_text(json.dumps(scenario))  # JSON is YAML
    env = {**os.environ, "SIM_KERNEL": "numbaa", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "sim", "run", "s.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "sim: error: SIM_KERNEL must be one of auto, python, compiled; got 'numbaa'"
    )
    assert not (tmp_path / "results").exists()
