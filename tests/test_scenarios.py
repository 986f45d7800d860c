"""Every bundled scenario loads, runs (short), and says at its top what it shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.scenario import load_scenario
from sim.simulate import run_scenario

from conftest import ROOT

BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_there_is_a_scenario_library():
    names = {p.stem for p in BUNDLED}
    for story in (
        "small-api",
        "busy-api",
        "marketing-spike",
        "iot-bursts",
        "ecommerce-diurnal",
        "latency-sensitive",
        "dev-scale-to-zero",
    ):
        assert story in names


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_scenario_runs_short(path: Path):
    text = path.read_text()
    assert text.startswith("#") and "Look at" in text, "document what it shows at the top"
    sc = load_scenario(path, ["duration=10m", "warmup=0s", "replications=1"])
    summary, _ = run_scenario(sc, path.parent, workers=1)
    units = sc.placements if sc.placements is not None else sc.platforms  # a system: placements
    assert set(summary["platforms"]) == {p.name for p in units}
    for p in summary["platforms"].values():
        assert p["requests"] >= 0
        assert p["monthly_cost_usd"] >= 0
