"""Run a whole scenario: every (replication, platform) job, locally in parallel when it pays."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from sim import defaults as D
from sim.engine import CHUNK_SECONDS, PlatformRun, jobs, run_one
from sim.errors import InputError
from sim.results import (
    Deflated,
    Forked,
    RequestsText,
    build_summary,
    can_fork,
    die_with_parent,
    gzip_member,
    requests_csv,
    requests_text,
)
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
    returning the file's bytes (None: the caller makes them), made in a one-worker overlapped
    run by its worker after the jobs, while the caller summarises them and renders the report,
    and by the caller once done with that (a one-job run's caller starts while the worker
    computes the statistics)."""
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
        # simulated here) runs the jobs and sends each run; then both processes compress the
        # chunks of requests.csv.gz (_Chunks). A one-job run's child sends its requests sample
        # first, so this process compresses chunks while the child computes the statistics.
        early = len(args) == 1 and not scenario.is_system
        chunks = _Chunks()
        child = Forked(lambda send: _jobs_then_requests(args, send, chunks, early))
        try:
            if prepare is not None:
                prepare()
                prepare = None
            mine: dict[int, Deflated] = {}
            sample, text = _early_chunks(child, args[0], chunks, mine) if early else (None, None)
            for _ in args:
                run = child.recv()
                if sample is not None:  # sent without it (the same rows)
                    run.stats.sample = sample
                runs.append(run)
                if on_job_done:
                    on_job_done(run)
        except BaseException:
            child.stop()
            raise
        files["requests.csv.gz"] = _received(child, runs, chunks, mine, text, early)
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


class _Chunks:
    """The chunks of requests.csv.gz (results.RequestsText) handed out to the simulation's
    child and its parent, first come first served: a counter in memory they share (made before
    the fork), so whichever is free compresses the next one, and the file is the same bytes."""

    def __init__(self) -> None:
        self._next = multiprocessing.get_context("fork").Value("i", 0)

    def take(self, total: int) -> int | None:
        lock = self._next.get_lock()
        if not lock.acquire(timeout=60):  # held for microseconds, unless its holder died there
            raise RuntimeError("a forked sim process died")
        try:
            i = self._next.value
            if i >= total:
                return None
            self._next.value = i + 1
            return i
        finally:
            lock.release()

    def compress(
        self, text: RequestsText, into: dict[int, Deflated], stop: Callable[[], bool] | None = None
    ) -> None:
        """Take and compress chunks of `text` into `into` until none is left or stop()."""
        while not (stop and stop()) and (i := self.take(text.chunks)) is not None:
            into[i] = text.part(i, i + 1)


def _jobs_then_requests(
    args: list[tuple[Scenario, str, int, Path]], send: Callable, chunks: _Chunks, early: bool
) -> None:
    """The child: each job's run (`early`: the one job's sample first, sent by a thread so the
    statistics go on while the parent is busy), then {chunk: Deflated} of the chunks of
    requests.csv.gz it took (None when pandas writes the file), sent once all are taken: a
    send blocks until the parent reads, and it reads once done with the report."""
    runs, sending = [], []

    def send_early(sample: dict) -> None:
        sending.append(threading.Thread(target=send, args=(sample,)))
        sending[-1].start()

    for scenario, name, rep, base_dir in args:
        try:
            run = run_one(scenario, name, rep, base_dir, on_sample=send_early if early else None)
        finally:  # one send at a time on the pipe (an error is sent too)
            for thread in sending:
                thread.join()
        runs.append(run)
        # (the parent has the sample already: the run goes without it)
        send(replace(run, stats=replace(run.stats, sample={})) if early else run)
    text = requests_csv(runs)
    if text is None:
        send(None)
        return
    mine: dict[int, Deflated] = {}
    chunks.compress(text, mine)
    send(mine)


def _early_chunks(
    child: Forked,
    job: tuple[Scenario, str, int, Path],
    chunks: _Chunks,
    mine: dict[int, Deflated],
) -> tuple[dict[str, Any], RequestsText | None]:
    """A one-job run: the child's requests sample (returned with its text), then chunks
    compressed here until its run arrives (the child computes the statistics meanwhile)."""
    _, name, rep, _ = job
    sample = child.recv()
    text = requests_text([(rep, name, sample)])
    if text is not None:
        chunks.compress(text, mine, stop=child.ready)
    return sample, text


def _received(
    child: Forked,
    runs: list[PlatformRun],
    chunks: _Chunks,
    mine: dict[int, Deflated],
    text: RequestsText | None,
    early: bool,
) -> Callable[[], bytes | None]:
    """A function returning requests.csv.gz's bytes (None: the caller makes them), made once:
    the chunks left are compressed here (after the report) and by the child, which sends its
    own; this process, with its copy of the same `runs`, makes the same text."""
    got: list[bytes | None] = []

    def get() -> bytes | None:
        if not got:
            try:
                made = text if early else requests_csv(runs)
                if made is not None:
                    chunks.compress(made, mine)
                theirs = child.recv()  # None: the same test on the same rows as here
                child.wait()
            except BaseException:
                child.stop()
                raise
            if made is None:
                got.append(None)
            else:
                parts = {**mine, **theirs}
                got.append(gzip_member("requests.csv.gz", [parts[i] for i in range(made.chunks)]))
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
