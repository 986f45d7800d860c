"""The engine: one SimPy Environment per (replication, platform), fed the same traffic.

Randomness: SeedSequence(seed) -> one child per replication -> children per purpose: arrivals,
service (shared by all platforms: common random numbers), recorder (row sampling) and one stream per
platform keyed by a hash of its name (so reordering platforms in the file changes nothing).

The driver process advances the platform's data plane to the next scheduled control event
(`env.peek()`), then yields to SimPy, so control loops see the data plane exactly up to their own
time. Arrivals are generated in chunks (bounded memory on month-long runs).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from sim import defaults as D
from sim.platforms import model_class
from sim.platforms.base import INF, Decision, PlatformModel, RunContext
from sim.pricing.network import response_stats
from sim.records import Recorder, RepStats
from sim.scenario import Scenario
from sim.workload import Workload

CHUNK_SECONDS = 3600.0
_ARRIVALS, _SERVICE, _RECORDER, _SYSTEM = 0, 1, 2, 3
_ERRORS = 0  # under _SERVICE: the handler-error draw


@dataclass
class PlatformRun:
    """Everything one (replication, platform) run produced, ready for metrics and results."""

    platform: str
    replication: int
    stats: RepStats
    instances: dict[str, float]
    busy_mean: float
    timeline: dict[str, np.ndarray]
    decisions: list[Decision]
    bill: Any
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(replications)


def _stream(rep_seq: np.random.SeedSequence, *key: int) -> np.random.Generator:
    child = np.random.SeedSequence(rep_seq.entropy, spawn_key=(*rep_seq.spawn_key, *key))
    return np.random.default_rng(child)


def platform_key(name: str) -> int:
    return 1000 + zlib.crc32(name.encode("utf-8"))


def make_workload(scenario: Scenario, rep_seq: np.random.SeedSequence, base_dir: Path) -> Workload:
    return Workload(
        scenario.workload, _stream(rep_seq, _ARRIVALS), _stream(rep_seq, _SERVICE), base_dir
    )


def _driver(
    env: simpy.Environment,
    model: PlatformModel,
    chunks: Any,
    chunk_seconds: float,
    end: float,
    progress: Callable[[float], None] | None,
) -> Generator:
    """Feed chunk k (window [k*chunk_seconds, (k+1)*chunk_seconds)) before advancing into it."""
    fed_until = 0.0
    exhausted = False
    while True:
        horizon = min(env.peek(), end)
        while not exhausted and fed_until <= horizon and fed_until < end:
            chunk = next(chunks, None)
            if chunk is None:
                exhausted = True
            else:
                model.offer(chunk)
                fed_until = min(fed_until + chunk_seconds, end)
        model.advance(horizon)
        if progress is not None:
            progress(horizon)
        if horizon >= end:
            return
        # A data-plane event may have scheduled a control event before `horizon` (and stopped the
        # data plane there): wake right after it, so what follows it is not handled late.
        wake = env.timeout(min(horizon, env.peek()) - env.now)
        model.driver_wake, model.fed_until = wake, INF if exhausted else fed_until
        yield wake


def _sampler(
    env: simpy.Environment,
    model: PlatformModel,
    step: float,
    end: float,
    rows: dict[str, list[float]],
) -> Generator:
    t = 0.0
    while t <= end:
        if t > env.now:
            yield env.timeout(t - env.now)
        snap = model.snapshot(env.now)
        rows.setdefault("time_s", []).append(env.now)
        for k, v in snap.items():
            rows.setdefault(k, []).append(v)
        t += step


def run_one(
    scenario: Scenario,
    platform_name: str,
    replication: int,
    base_dir: Path,
    progress: Callable[[float], None] | None = None,
    *,
    models: Mapping[str, Any] | None = None,
    keep_all_rows: bool = False,
    on_sample: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> PlatformRun:
    """Simulate one platform for one replication.

    `models` swaps the platform classes (the per-request models of sim.validation.reference,
    which schedule their own arrivals instead of being fed by the driver); `keep_all_rows` keeps
    every request row; `on_sample` receives the requests.csv sample (the run's stats.sample)
    as soon as the simulation ends, before the other statistics are computed.
    """
    t_wall = time.perf_counter()
    spec = scenario.platform(platform_name)
    rep_seq = replication_seeds(scenario.seed, scenario.replications)[replication]
    workload = make_workload(scenario, rep_seq, base_dir)
    env = simpy.Environment()
    expected = workload.expected_requests(scenario.duration)
    recorder = Recorder(
        scenario.warmup,
        max_rows=10**12 if keep_all_rows else D.MAX_KEPT_ROWS,
        rel_error=D.HISTOGRAM_REL_ERROR,
        sample_rows=10**12
        if keep_all_rows
        else max(1, D.REQUESTS_CSV_MAX_ROWS // scenario.replications),
        rng=_stream(rep_seq, _RECORDER, platform_key(platform_name)),
        horizon=scenario.duration,
        error_rate=scenario.workload.service.error_rate,
        # a child of the workload's service stream: the same requests fail on every platform
        error_key=int(_stream(rep_seq, _SERVICE, _ERRORS).integers(0, 2**63))
        if scenario.workload.service.error_rate > 0
        else 0,
        expected_rows=expected,
    )
    ctx = RunContext(
        env=env,
        rng=_stream(rep_seq, platform_key(platform_name)),
        recorder=recorder,
        duration=scenario.duration,
        warmup=scenario.warmup,
        cpu_bound=scenario.workload.service.cpu_bound,
        function_names=list(workload.function_names),
        month_s=scenario.month,
        response_bytes=response_stats(scenario.workload.service.response_size),
        expected_requests=expected,
    )
    model: PlatformModel
    if scenario.is_system:  # a placement of a system (sim.systems): one heap for all services
        import sim.systems.stations_flex  # (registers Flex Consumption)
        import sim.systems.stations_knact  # (registers Cloud Run ... Knative)
        import sim.systems.stations_lmi  # noqa: F401  (registers Lambda Managed Instances)
        from sim.systems.engine import SystemModel

        system_cls = models["system"] if models else SystemModel
        # The system's own draws (handler times, branches, entry picks) are common to placements.
        model = system_cls(scenario, spec, ctx, _stream(rep_seq, _SYSTEM))
    else:
        cls = models[spec.type] if models else model_class(spec.type)
        model = cls(spec, ctx)
    chunks = iter(workload.chunks(scenario.duration, CHUNK_SECONDS))
    if model.drives_itself:
        model.chunks = list(chunks)
    model.start()
    timeline: dict[str, list[float]] = {}
    assert scenario.timeline_step is not None
    env.process(_sampler(env, model, scenario.timeline_step, scenario.duration, timeline))
    if not model.drives_itself:
        env.process(_driver(env, model, chunks, CHUNK_SECONDS, scenario.duration, progress))
    env.run(until=scenario.duration + 1e-9)
    model.finish()
    if on_sample is not None:
        on_sample(recorder.sample())
    stats = recorder.stats()
    return PlatformRun(
        platform=platform_name,
        replication=replication,
        stats=stats,
        instances=model.instance_stats(),
        busy_mean=stats.busy_mean,
        timeline={k: np.asarray(v) for k, v in timeline.items()},
        decisions=list(ctx.decisions),
        bill=model.bill(),
        # Lambda usage: platforms sharing an account are re-billed together (sim.simulate);
        # `sim fit --check` compares its billed milliseconds with the logs'. A system placement
        # keeps its per-service and per-queue statistics.
        extra=(
            {"system": model.system_stats()}  # type: ignore[attr-defined]
            if scenario.is_system
            else ({"usage": model.usage()} if spec.type == "lambda" else {})
        ),
        wall_s=time.perf_counter() - t_wall,
    )


def jobs(scenario: Scenario) -> list[tuple[str, int]]:
    units = scenario.placements if scenario.placements is not None else scenario.platforms
    return [(p.name, r) for r in range(scenario.replications) for p in units]
