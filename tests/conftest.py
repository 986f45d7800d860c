"""Shared test helpers: build scenarios from dicts and run single platforms."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sim.engine import PlatformRun, run_one
from sim.scenario import Scenario, validate_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def make_scenario(data: dict[str, Any], base_dir: Path = ROOT) -> Scenario:
    return validate_scenario(copy.deepcopy(data), file="<test>", base_dir=base_dir)


def run_platform(
    sc: Scenario, name: str | None = None, rep: int = 0, base_dir: Path = ROOT
) -> PlatformRun:
    return run_one(sc, name or sc.platforms[0].name, rep, base_dir)


def timeless(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json without its wall-clock fields (the whole run's and each platform's), the
    only fields two runs of the same scenario and seed may differ in."""
    summary.pop("wall_time_s")
    for p in summary["platforms"].values():
        p.pop("wall_s")
    return summary


@pytest.fixture
def root() -> Path:
    return ROOT
