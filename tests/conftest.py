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


@pytest.fixture
def root() -> Path:
    return ROOT
