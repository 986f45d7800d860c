"""Run a whole scenario: every (replication, platform) job, locally in parallel when it pays."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sim import defaults as D
from sim.engine import CHUNK_SECONDS, PlatformRun, jobs, run_one
from sim.errors import InputError
from sim.results import Forked, build_summary, can_fork, die_with_parent, gzip_member, requests_csv
from sim.scenario import Scenario
from sim.workload import Workload
from sim.workload.sources import Batch, Diurnal, Mmpp

# Below this many simulated requests in total, process start-up costs more than it saves.
PARALLEL_MIN_REQUESTS = 400_000
# From this many simulated requests, a one-process run simulates in a forked child while the
# caller does its own start-up (`prepare`: e.g. importing pandas and the report, ~0.3 s of CPU):
# forking and sending the runs back cost ~0.02 s, the simulation of 50k requests about 0.05 s.
OVERLAP_MIN_REQUESTS = 50_000
# Control-plane events (timeline samples, autoscaler polls and syncs, arrival-rate changes) a run
# may schedule without --force. Each costs a Python call (~10 us), so this is minutes of work; a
# bundled scenario needs at most a few hundred thousand.
MAX_EVENTS_WITHOUT_FORCE = 20_000_000


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and stops the pool),
    # so workers do not each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


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
    return per_run * scenario.replications * _units(scenario)


def _units(scenario: Scenario) -> int:
    """Runs per replication: one per platform, or one per placement of a system."""
    return len(scenario.placements) if scenario.placements is not None else len(scenario.platforms)


def expected_events(scenario: Scenario) -> list[tuple[str, float]]:
    """(key, events over all replications) for every periodic or rate-shape event source: the
    timeline sampler, HPA syncs, KEDA polls (and its HPA's 15 s syncs), diurnal periods, MMPP
    state changes and periodic batches. The request count is checked separately."""
    t, reps = scenario.duration, scenario.replications
    step = scenario.timeline_step or t
    runs = reps * _units(scenario)
    # The workload is fed in CHUNK_SECONDS windows: one Python step each, requests or not.
    out = [("timeline_step", runs * t / step), ("duration", runs * t / CHUNK_SECONDS)]
    for i, p in enumerate(scenario.platforms):
        pc = getattr(p, "provisioned_concurrency", None)
        if isinstance(pc, list):  # a daily schedule: each entry once a day
            out.append((f"platforms[{i}].provisioned_concurrency", reps * len(pc) * t / 86400))
        elif pc is not None and not isinstance(pc, int):  # target tracking: one-minute periods
            out.append((f"platforms[{i}].provisioned_concurrency", reps * t / 60.0))
        hpa, keda = getattr(p, "hpa", None), getattr(p, "keda", None)
        if hpa is not None:
            out.append((f"platforms[{i}].hpa.sync_period", reps * t / hpa.sync_period))
        if keda is not None:
            polls = t / keda.pollingInterval + t / 15.0
            out.append((f"platforms[{i}].keda.pollingInterval", reps * polls))
    for j, entry in enumerate(scenario.workload.arrivals):
        src, where = entry.source, f"workload.arrivals[{j}].{entry.kind}"
        span = max(0.0, min(t, src.end if src.end is not None else t) - src.start)
        per_run = 0.0
        if isinstance(src, Diurnal):
            per_run, where = span / src.period, f"{where}.period"
        elif isinstance(src, Mmpp):
            import numpy as np

            leave = float(np.max(-np.diag(src.matrix())))  # fastest state change, 1/s
            per_run, where = span * leave, f"{where}.states"
        elif isinstance(src, Batch) and src.every is not None:
            per_run, where = span / src.every, f"{where}.every"
        elif isinstance(src, Batch) and src.rate is not None:
            per_run, where = span * src.rate, f"{where}.rate"
        if per_run:
            out.append((where, reps * per_run))
    return out


def check_size(
    scenario: Scenario, base_dir: Path, force: bool, file: str, key: str = "duration"
) -> float:
    """Refuse, before any work, a run too large to finish in minutes (unless --force): its
    expected requests, and its control-plane events. `key` names what to blame for the size
    (a command-line option when one set the duration or replications)."""
    if not force:
        check_events(scenario, file)
    n = expected_requests(scenario, base_dir)
    if not math.isfinite(n) or (n > D.MAX_REQUESTS_WITHOUT_FORCE and not force):
        raise InputError(
            f"this run would simulate about {n:,.0f} requests (replications x platforms x "
            f"traffic), beyond the {D.MAX_REQUESTS_WITHOUT_FORCE:,} this tool runs without "
            "--force; shorten `duration`, lower the rate or replications, or pass --force",
            file=file,
            key=key,
        )
    return n


def check_events(scenario: Scenario, file: str) -> None:
    events = expected_events(scenario)
    total = sum(n for _, n in events)
    if total > MAX_EVENTS_WITHOUT_FORCE or not math.isfinite(total):
        key, n = max(events, key=lambda e: e[1])
        raise InputError(
            f"this run would schedule about {total:,.0f} control-plane events ({n:,.0f} of them "
            f"from this setting, over {scenario.replications} replication(s)), beyond the "
            f"{MAX_EVENTS_WITHOUT_FORCE:,} this tool runs without --force; use a longer period "
            "or step, a shorter `duration`, or pass --force",
            file=file,
            key=key,
        )


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
    prepare: Callable[[], None] | None = None,
    files: dict[str, Callable[[], bytes | None]] | None = None,
) -> list[PlatformRun]:
    """Every job's run, in jobs() order. `prepare` (the caller's work that does not need the
    runs) is called once, while the jobs run in other processes when they do. `files` (given
    when the caller writes the results folder next) receives "requests.csv.gz": a function
    returning the file's bytes (None: the caller makes them), made by a one-worker overlapped
    run's worker after the jobs, while the caller summarises them and renders the report."""
    todo = jobs(scenario)
    if workers is None:
        workers = default_workers(len(todo), expected if expected is not None else 0.0)
    args = [(scenario, name, rep, base_dir) for name, rep in todo]
    runs: list[PlatformRun] = []
    overlap = prepare is not None and (expected or 0.0) >= OVERLAP_MIN_REQUESTS and can_fork()
    if workers <= 1 and not overlap:
        for a in args:
            run = _job(a)
            runs.append(run)
            if on_job_done:
                on_job_done(run)
    elif workers <= 1 and files is not None:
        # One child forked from this process (the same modules and data: the same bytes as
        # simulated here) runs the jobs, sends each run, then formats requests.csv.gz.
        child = Forked(lambda send: _jobs_then_requests(args, send))
        try:
            if prepare is not None:
                prepare()
                prepare = None
            for _ in args:
                run = child.recv()
                runs.append(run)
                if on_job_done:
                    on_job_done(run)
        except BaseException:
            child.stop()
            raise
        files["requests.csv.gz"] = _received(child, runs)
    else:
        # One worker forked from this process (the same modules, nothing to re-import) when
        # overlapping: the runs are the same bytes as simulated here (same code, same seeds).
        context = multiprocessing.get_context("fork") if workers <= 1 else None
        with process_pool(max(1, workers), context) as pool:
            done = pool.map(_job, args)  # every job is submitted here; results come in order
            if prepare is not None:
                prepare()
                prepare = None
            for run in done:
                runs.append(run)
                if on_job_done:
                    on_job_done(run)
    if prepare is not None:
        prepare()
    share_lambda_accounts(scenario, runs)
    return runs


def _jobs_then_requests(args: list[tuple[Scenario, str, int, Path]], send: Callable) -> None:
    runs = []
    for a in args:
        runs.append(_job(a))
        send(runs[-1])
    text = requests_csv(runs)
    send(None if text is None else text.head())


def _received(child: Forked, runs: list[PlatformRun]) -> Callable[[], bytes | None]:
    """A function returning requests.csv.gz's bytes (None: the caller makes them), once made
    again and again: the child compresses the head of the text (results.RequestsText) while
    this process, with its copy of the same `runs`, compresses the tail."""
    got: list[bytes | None] = []

    def get() -> bytes | None:
        if not got:
            try:
                text = requests_csv(runs)
                tail = text.tail() if text is not None else None
                head = child.recv()
                child.wait()
            except BaseException:
                child.stop()
                raise
            if head is None or tail is None:  # both None: the same test on the same rows
                got.append(None)
            else:
                got.append(gzip_member("requests.csv.gz", [head, tail]))
        return got[0]

    return get


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
    size_key: str = "duration",
    prepare: Callable[[], None] | None = None,
    files: dict[str, Callable[[], bytes | None]] | None = None,
) -> tuple[dict[str, Any], list[PlatformRun]]:
    t0 = time.perf_counter()
    expected = check_size(scenario, base_dir, force, source or scenario.name, size_key)
    runs = simulate(
        scenario,
        base_dir,
        workers=workers,
        expected=expected,
        on_job_done=on_job_done,
        prepare=prepare,
        files=files,
    )
    return build_summary(scenario, runs, time.perf_counter() - t0, source), runs
