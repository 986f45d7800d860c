"""The benchmark's whole-process harness runs the real command line and reports what it measured
(no timing is asserted: speed lives in `python -m sim.dev.bench`, not in the test suite)."""

from __future__ import annotations

import sys
from pathlib import Path

from sim.dev import bench


def test_process_case_runs_sim_and_measures_the_child():
    res = bench.run_process("cli-version", None)
    assert "error" not in res, res
    assert res["wall_s"] > 0 and res["cpu_s"] > 0 and res["peak_rss_mb"] > 1


def test_a_failing_command_is_reported_not_raised(tmp_path: Path):
    res = bench._timed_process([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, {})
    assert res["error"] == "exit 3"


def test_every_default_case_is_defined():
    assert set(bench.SMALL + bench.LARGE) <= set(bench.ALL)
    assert set(bench.SIMFAAS_TIME) <= set(bench.PROCESS)


def test_best_of_several_runs_is_the_fastest_with_the_median_of_all():
    runs = [{"wall_s": w, "cpu_s": w} for w in (1.9, 1.4, 1.6, 2.5)]
    best = bench._best(runs)
    assert best["wall_s"] == 1.4 and best["runs"] == 4
    assert best["median_wall_s"] == (1.6 + 1.9) / 2  # the median of an even count: mid-average
    assert "runs" not in bench._best(runs[:1])  # one run: itself
    failed = [{"wall_s": 1.0}, {"wall_s": 0.5, "error": "exit 1"}]
    assert bench._best(failed)["error"] == "exit 1"  # a failure is never hidden by a success


def test_only_the_short_run_cases_repeat():
    assert bench._repeat("run-simfaas-1M", 3) == 3
    assert bench._repeat("run-lambda-50M", 3) == 1  # --large: once
    assert bench._repeat("sweep-8x1M", 3) == bench._repeat("lambda-1M", 3) == 1
