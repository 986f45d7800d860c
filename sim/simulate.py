"""Run a whole scenario: every (replication, platform) job, locally in parallel when it pays."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sim import defaults as D
from sim.engine import PlatformRun, jobs, run_one
from sim.errors import InputError
from sim.results import build_summary
from sim.scenario import Scenario
from sim.workload import Workload

# Below this many simulated requests in total, process start-up costs more than it saves.
PARALLEL_MIN_REQUESTS = 400_000


def expected_requests(scenario: Scenario, base_dir: Path) -> float:
    """Mean number of simulated requests over all replications and platforms."""
    import numpy as np

    wl = Workload(scenario.workload, np.random.default_rng(0), np.random.default_rng(0), base_dir)
    per_run = wl.expected_requests(scenario.duration)
    return per_run * scenario.replications * len(scenario.platforms)


def check_size(scenario: Scenario, base_dir: Path, force: bool, file: str) -> float:
    n = expected_requests(scenario, base_dir)
    if n > D.MAX_REQUESTS_WITHOUT_FORCE and not force:
        raise InputError(
            f"this run would simulate about {n:,.0f} requests (replications x platforms x "
            f"traffic), beyond the {D.MAX_REQUESTS_WITHOUT_FORCE:,} this tool runs without "
            "--force; shorten `duration`, lower the rate or replications, or pass --force",
            file=file,
            key="duration",
        )
    return n


def _job(args: tuple[Scenario, str, int, Path]) -> PlatformRun:
    scenario, name, rep, base_dir = args
    return run_one(scenario, name, rep, base_dir)


def default_workers(n_jobs: int, expected: float) -> int:
    if expected < PARALLEL_MIN_REQUESTS or n_jobs < 2:
        return 1
    return max(1, min(n_jobs, os.cpu_count() or 1))


def simulate(
    scenario: Scenario,
    base_dir: Path,
    *,
    workers: int | None = None,
    expected: float | None = None,
    on_job_done: Callable[[PlatformRun], None] | None = None,
) -> list[PlatformRun]:
    todo = jobs(scenario)
    if workers is None:
        workers = default_workers(len(todo), expected if expected is not None else 0.0)
    args = [(scenario, name, rep, base_dir) for name, rep in todo]
    runs: list[PlatformRun] = []
    if workers <= 1:
        for a in args:
            run = _job(a)
            runs.append(run)
            if on_job_done:
                on_job_done(run)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for run in pool.map(_job, args):
                runs.append(run)
                if on_job_done:
                    on_job_done(run)
    share_lambda_accounts(scenario, runs)
    return runs


def share_lambda_accounts(scenario: Scenario, runs: list[PlatformRun]) -> None:
    """Re-bill Lambda platforms that share an `account` (per replication and architecture):
    duration tiers and free allowances apply to the account's total, each pays its share."""
    from sim.platforms.lambda_ import platform_bill
    from sim.pricing.lambda_ import AccountTotals, account_quantities

    groups: dict[tuple[int, str, str], list[PlatformRun]] = {}
    for run in runs:
        spec = scenario.platform(run.platform)
        account = getattr(spec, "account", None)
        if spec.type == "lambda" and account and "usage" in run.extra:
            groups.setdefault((run.replication, account, spec.architecture), []).append(run)
    for group in groups.values():
        if len(group) < 2:
            continue
        totals = [0.0, 0.0]
        for run in group:
            spec = scenario.platform(run.platform)
            usage = run.extra["usage"]
            q = account_quantities(usage, spec.memory, spec.init_billing, scenario.month)
            totals = [totals[0] + q[0], totals[1] + q[1]]
        account = AccountTotals(gb_seconds=totals[0], requests=totals[1])
        for run in group:
            spec = scenario.platform(run.platform)
            run.bill = platform_bill(spec, run.extra["usage"], scenario.month, account)


def run_scenario(
    scenario: Scenario,
    base_dir: Path,
    *,
    source: str | None = None,
    workers: int | None = None,
    force: bool = False,
    on_job_done: Callable[[PlatformRun], None] | None = None,
) -> tuple[dict[str, Any], list[PlatformRun]]:
    t0 = time.perf_counter()
    expected = check_size(scenario, base_dir, force, source or scenario.name)
    runs = simulate(scenario, base_dir, workers=workers, expected=expected, on_job_done=on_job_done)
    return build_summary(scenario, runs, time.perf_counter() - t0, source), runs
