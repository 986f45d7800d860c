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
