"""Run a whole scenario: every (replication, platform) job, locally in parallel when it pays."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
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


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and stops the pool),
    # so workers do not each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def process_pool(workers: int, mp_context: Any = None) -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor that, on Ctrl-C or any error, drops the queued jobs and terminates
    its workers at once. (Leaving a plain `with ProcessPoolExecutor()` waits for every running
    job to finish: seconds of a frozen progress bar after Ctrl-C.)"""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=mp_context, initializer=_ignore_sigint
    )
    try:
        yield pool
    except BaseException:
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
        raise
    pool.shutdown(wait=True)


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
        with process_pool(workers) as pool:
            for run in pool.map(_job, args):
                runs.append(run)
                if on_job_done:
                    on_job_done(run)
    return runs


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
