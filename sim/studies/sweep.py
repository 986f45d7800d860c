"""Sweeps: run a scenario over a grid of settings (design.md section 3, `sim sweep`).

A sweep is a grid of *points*; each point is the scenario with some keys set (dotted paths, as
`--set`). Every point keeps the scenario's seed, so every point sees the same arrivals and service
draws (common random numbers): differences between points are the settings', not the dice's.

Work unit and cache. A point x platform is one *job*: all replications of that platform, reduced to
summary metrics in the worker. A job is keyed by the SHA-256 of its resolved single-platform
scenario (every default filled in, other platforms removed: a platform's run depends only on the
shared settings, the workload and its own spec, because its random streams are keyed by its name).
So a platform the grid does not touch is simulated once, not once per point. Each finished job is
appended at once to `points.jsonl` in the output folder (one JSON object a line, written only by the
coordinating process); a re-run reads it and computes only the missing keys, so an interrupted
sweep loses nothing. A torn last line (killed mid-write) is dropped on the next run.

Execution: a local process pool with one worker per core by default (concurrent.futures), or a
Dask distributed cluster (`scheduler="tcp://host:port"`), running the same job function; results
are identical because each job is a pure function of its scenario.

Parameter specs (`KEY=SPEC`):
  - range `start:stop:step`, e.g. `0:100:10` -> 0, 10, ..., 100. The end is included when it lands
    on the grid (`0:95:10` stops at 90). Units are allowed when all three share one
    (`1m:10m:1m`, `0.1%:1%:0.1%`); mixed units of one kind (`500ms:2s:500ms`) become SI numbers.
  - list `0,5,10`, `100ms,200ms`, `1M/month,10M/month`: each item is a YAML value as for `--set`,
    handed to the scenario as written (so every unit the scenario accepts works).
  - YAML flow list `[5m, {dist: uniform, low: 5m, high: 7m}]` for values containing commas.
"""

from __future__ import annotations

import copy
import csv
import functools
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim import __version__, units
from sim import defaults as D
from sim.engine import run_one
from sim.errors import InputError
from sim.records import OUTCOMES, binom_cdf
from sim.results import can_fork
from sim.scenario import (
    Override,
    Scenario,
    parse_yaml,
    read_scenario_data,
    resolved_dict,
    scenario_month_s,
    set_path,
    validate_scenario,
)
from sim.simulate import process_pool
from sim.statistics import summarize_platform, t_interval

POINTS_FILE = "points.jsonl"
MAX_RANGE_VALUES = 10_000
MAX_GRID_POINTS = 100_000
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
DASK_CONNECT_TIMEOUT = "20s"

# Metric columns of sweep.csv, after the swept keys and `platform` (design.md section 3).
METRIC_COLUMNS = (
    "requests",
    "error_rate",
    "cold_start_ratio",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "p99_ci_lo",
    "p99_ci_hi",
    "peak_instances",
    "monthly_cost_usd",
    "cost_per_million_usd",
    "slo_met",
    "slo_missed",
)


# --- parameters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One swept key: the values handed to the scenario and how sweep.csv shows them."""

    key: str  # dotted path, list items by index or by `name`
    values: tuple[Any, ...]  # YAML values set into the scenario
    labels: tuple[Any, ...]  # sweep.csv cells: the value as written (numbers stay numbers)
    numeric: tuple[float | None, ...]  # SI number for plots and ordering; None if not a quantity
    ordered: bool  # a range (or a list of quantities): neighbours are meaningful

    def __len__(self) -> int:
        return len(self.values)


_NUM_RE = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ%/ ]*?)\s*$")


def _families(month_s: float) -> tuple[tuple[Callable[[object], float], str], ...]:
    """Unit families tried in order when a range mixes suffixes; value -> (SI number, label
    suffix). A `/month` rate means the scenario's billing month (`month_s`)."""
    return (
        (units.parse_duration, "s"),
        (functools.partial(units.parse_rate, month_s=month_s), "/s"),
        (units.parse_count, ""),
        (units.parse_memory_mb, ""),
    )


def quantity(value: Any, month_s: float = units.BILLING_MONTH_S) -> float | None:
    """A value's SI number if it is a number or a duration/rate/count/fraction; else None.
    `/month` is `month_s` seconds (the scenario's billing month; 730 h by default)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    rate = functools.partial(units.parse_rate, month_s=month_s)
    for parse in (units.parse_duration, rate, units.parse_count, units.parse_fraction):
        try:
            return float(parse(value))
        except (ValueError, TypeError, InputError):
            continue
    return None


def _fmt(x: float) -> str:
    return format(x, ".12g")


def _parses(parse: Callable[[object], float], parts: list[str]) -> bool:
    try:
        for p in parts:
            parse(p)
    except (ValueError, TypeError, InputError):
        return False
    return True


def _range(spec: str, key: str, month_s: float) -> Param | None:
    parts = spec.split(":")
    if len(parts) != 3 or len(_split_top(spec)) > 1:
        return None
    m = [_NUM_RE.match(p) for p in parts]
    if not all(m):
        return None
    nums = [float(x.group(1)) for x in m]  # type: ignore[union-attr]
    suffixes = {x.group(2) for x in m}  # type: ignore[union-attr]
    if len(suffixes) == 1:
        suffix = suffixes.pop()
    else:
        family = next((f for f in _families(month_s) if _parses(f[0], parts)), None)
        if family is None:
            raise InputError(
                f"range {spec!r}: start, stop and step need units of one kind", key=f"--param {key}"
            )
        nums = [float(family[0](p)) for p in parts]
        suffix = family[1]
    start, stop, step = nums
    if step == 0 or (stop - start) * step < 0:
        raise InputError(
            f"range {spec!r}: step must be non-zero and go from start towards stop",
            key=f"--param {key}",
        )
    count = math.floor((stop - start) / step + 1e-9) + 1  # + 1: the end, when it lands on the grid
    if count > MAX_RANGE_VALUES:
        raise InputError(
            f"range {spec!r} has {count:,} values; at most {MAX_RANGE_VALUES:,}",
            key=f"--param {key}",
        )
    integral = all(float(x).is_integer() for x in (start, step)) and not suffix
    raw = [start + i * step for i in range(count)]
    xs: list[float] = [round(x) if integral else float(_fmt(x)) for x in raw]
    if suffix:
        labels: list[Any] = [f"{_fmt(x)}{suffix}" for x in xs]
    else:
        labels = list(xs)
    numeric = tuple(quantity(v, month_s) for v in labels)
    return Param(key, tuple(labels), tuple(labels), numeric, True)


def _split_top(spec: str) -> list[str]:
    """Split on commas outside brackets and braces."""
    out, depth, cur = [], 0, ""
    for ch in spec:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def parse_param(
    text: str, option: str = "--param", month_s: float = units.BILLING_MONTH_S
) -> Param:
    """`KEY=SPEC` -> Param (see the module docstring for SPEC); a `/month` rate is `month_s`
    seconds (pass the scenario's billing month, `Base.month_s`)."""
    if "=" not in text:
        raise InputError(
            f"expected KEY=VALUES (e.g. platforms.lambda.memory=512,1024), got {text!r}", key=option
        )
    key, spec = (s.strip() for s in text.split("=", 1))
    if not key or any(not p for p in key.split(".")) or " " in key:
        raise InputError(
            f"expected a dotted key such as platforms.lambda.memory, got {key!r}", key=option
        )
    if not spec:
        raise InputError("no values given", key=f"{option} {key}")
    rng = _range(spec, key, month_s)
    if rng is not None:
        return rng
    where = f"{option} {key}"
    if spec.startswith("["):
        values, _ = parse_yaml(spec, where)
        if not isinstance(values, list):
            raise InputError(f"expected a YAML list, got {spec!r}", key=where)
        labels = [v if isinstance(v, int | float | str) else json.dumps(v) for v in values]
    else:
        items = [s.strip() for s in _split_top(spec)]
        if any(not s for s in items):
            raise InputError(f"empty item in {spec!r}", key=where)
        values = [parse_yaml(s, where)[0] for s in items]
        labels = [
            v if isinstance(v, int | float) and not isinstance(v, bool) else s
            for v, s in zip(values, items, strict=True)
        ]
    if not values:
        raise InputError("no values given", key=where)
    if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
        raise InputError(f"repeated value in {spec!r}", key=where)
    numeric = tuple(quantity(v, month_s) for v in values)
    return Param(key, tuple(values), tuple(labels), numeric, all(x is not None for x in numeric))


def grid(params: Sequence[Param]) -> list[dict[str, int]]:
    """Every combination, as {key: value index}; the last parameter varies fastest."""
    keys = [p.key for p in params]
    if len(set(keys)) != len(keys):
        raise InputError("the same key is swept twice", key="--param")
    size = math.prod(len(p) for p in params)
    if size > MAX_GRID_POINTS:
        raise InputError(
            f"the grid has {size:,} points; at most {MAX_GRID_POINTS:,}", key="--param"
        )
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(range(len(p)) for p in params))
    ]


# --- scenarios at points ------------------------------------------------------------------------


@dataclass
class Base:
    """The scenario's raw data (after --set overrides) and where relative paths resolve."""

    data: dict[str, Any]
    file: str
    base_dir: Path

    @classmethod
    def load(cls, path: str | Path, overrides: Sequence[Override] = ()) -> Base:
        from sim.scenario import apply_overrides

        data, _node, file = read_scenario_data(path)
        if overrides:
            data = apply_overrides(data, list(overrides), file)
        return cls(data, file, Path(path).resolve().parent)

    @property
    def month_s(self) -> float:
        """The billing month the scenario's `/month` rates mean (its `month:`, else 730 h)."""
        return scenario_month_s(self.data)

    def scenario(self, setting: dict[str, Any] | None = None) -> Scenario:
        data = copy.deepcopy(self.data)
        for key, value in (setting or {}).items():
            set_path(data, key, copy.deepcopy(value), self.file)
        try:
            return validate_scenario(data, file=self.file, base_dir=self.base_dir)
        except InputError as exc:
            if not setting:
                raise
            at = ", ".join(f"{k}={_short(v)}" for k, v in setting.items())
            raise InputError(
                f"{exc.detail} (at sweep point {at})", file=exc.file, key=exc.key
            ) from None


def _short(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def job_key(scenario: Scenario, platform: str, base_dir: Path) -> str:
    """Hash of everything a platform's run depends on (see the module docstring)."""
    d = resolved_dict(scenario)
    d["platforms"] = [p for p in d["platforms"] if p["name"] == platform]
    d.pop("name", None)
    d.pop("description", None)
    blob = json.dumps(
        {"sim": __version__, "base_dir": str(base_dir), "scenario": d},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def single_platform(scenario: Scenario, platform: str) -> Scenario:
    return scenario.model_copy(update={"platforms": [scenario.platform(platform)]})


# --- the job (runs in a worker) -----------------------------------------------------------------


def _ci_rate(per_rep: list[tuple[int, int]]) -> list[float] | None:
    """95% CI of a rate: Student-t across replications, Clopper-Pearson with one replication."""
    if len(per_rep) >= 2:
        return t_interval([k / n if n else 0.0 for k, n in per_rep])
    k, n = per_rep[0]
    if n == 0:
        return None
    # Clopper-Pearson by its definition, P(X >= k | lo) = P(X <= k | hi) = 2.5% (= scipy.stats.
    # binomtest(k, n).proportion_ci(0.95, method="exact") to ~1e-11); no scipy (~0.3 s import).
    lo = 0.0 if k == 0 else _bisect(lambda x: 1.0 - binom_cdf(k - 1, n, x) >= 0.025)
    hi = 1.0 if k == n else _bisect(lambda x: binom_cdf(k, n, x) <= 0.025)
    return [lo, hi]


def _bisect(above: Callable[[float], bool]) -> float:
    """The x in (0, 1) where the monotone predicate `above` turns true, to the last bit."""
    a, b = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (a + b)
        if mid in (a, b):
            break
        a, b = (a, mid) if above(mid) else (mid, b)
    return 0.5 * (a + b)


def compute_job(scenario: Scenario, platform: str, base_dir: str) -> dict[str, Any]:
    """Simulate every replication of one platform; return JSON-ready summary metrics."""
    runs = [
        run_one(scenario, platform, rep, Path(base_dir)) for rep in range(scenario.replications)
    ]
    s = summarize_platform(scenario, runs)
    failed = [
        (sum(r.stats.outcomes.get(k, 0) for k in OUTCOMES if k != "ok"), r.stats.requests)
        for r in runs
    ]
    served = [sum(r.stats.outcomes.get(k, 0) for k in ("ok", "timed_out", "error")) for r in runs]
    cold = [(r.stats.cold_starts, n) for r, n in zip(runs, served, strict=True)]
    checks = s.get("slo") or {}
    metrics = {
        "type": s["type"],
        "requests": s["requests"],
        "error_rate": s["error_rate"],
        "error_rate_ci95": _ci_rate(failed),
        "cold_start_ratio": s["cold_start_ratio"],
        "cold_start_ratio_ci95": _ci_rate(cold),
        "latency_ms": s["latency_ms"],
        "latency_ms_ci95": s["latency_ms_ci95"],
        "instances": s["instances"],
        "cost_usd": s["cost_usd"]["total"],
        "monthly_cost_usd": s["monthly_cost_usd"],
        "monthly_breakdown_usd": s["monthly_breakdown_usd"],
        "cost_per_million_usd": s["cost_per_million_usd"],
        "slo": checks,
        "slo_met": all(c["met"] for c in checks.values()) if checks else None,
        "exact_percentiles": s["exact_percentiles"],
    }
    return json.loads(json.dumps(metrics, default=_json_default))  # plain JSON types only


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# --- the points file ----------------------------------------------------------------------------


class PointStore:
    """points.jsonl: one finished job a line, {"key", "platform", "metrics", "wall_s"}."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raw = path.read_bytes()
            keep = raw if raw.endswith(b"\n") or not raw else raw[: raw.rfind(b"\n") + 1]
            if len(keep) != len(raw):  # a line torn by a kill: drop it so appends stay lines
                with path.open("r+b") as fh:
                    fh.truncate(len(keep))
            for line in keep.decode("utf-8", "replace").splitlines():
                try:
                    rec = json.loads(line)
                    self.records[rec["key"]] = rec
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def add(self, rec: dict[str, Any]) -> None:
        self.records[rec["key"]] = rec
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
                fh.flush()


# --- execution ----------------------------------------------------------------------------------


@dataclass
class Job:
    key: str
    platform: str
    scenario: Scenario


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def scheduler_address(scheduler: str | None) -> str | None:
    return scheduler or os.environ.get(SCHEDULER_ENV) or None


def execute(
    jobs: Sequence[Job],
    base_dir: Path,
    store: PointStore,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_done: Callable[[int, int], None] | None = None,
    prepare: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Compute the jobs not yet in `store`, saving each as it finishes.

    Returns (computed, reused). `on_done(done, total)` is called after every job; `prepare`
    (the caller's own start-up, e.g. the page's imports) once, while local workers compute.
    """
    todo: dict[str, Job] = {}
    for j in jobs:
        if j.key not in store.records and j.key not in todo:
            todo[j.key] = j
    total = len({j.key for j in jobs})
    reused = total - len(todo)
    done = reused
    if on_done:
        on_done(done, total)
    args = {k: (j.scenario, j.platform, str(base_dir)) for k, j in todo.items()}
    address = scheduler_address(scheduler)
    if address:
        results = _run_dask(args, address)
    else:
        results = _run_local(args, workers or default_workers(), prepare)
    for key, metrics, wall in results:
        store.add(
            {
                "key": key,
                "platform": todo[key].platform,
                "metrics": metrics,
                "wall_s": round(wall, 3),
            }
        )
        done += 1
        if on_done:
            on_done(done, total)
    return len(todo), reused


def _timed(args: tuple[Scenario, str, str]) -> tuple[dict[str, Any], float]:
    import time

    t0 = time.perf_counter()
    out = compute_job(*args)
    return out, time.perf_counter() - t0


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork when this process has no other thread (workers start in milliseconds, nothing is
    re-imported); otherwise (a progress bar, a Dask client) forking could copy a lock held by
    another thread, so use a fork server that has imported the simulator once."""
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["sim.studies.sweep"])
        return ctx
    return multiprocessing.get_context("spawn")


def _run_local(
    args: dict[str, tuple[Scenario, str, str]],
    workers: int,
    prepare: Callable[[], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any], float]]:
    if not args:
        return
    serial = workers <= 1 or len(args) == 1
    # One worker is forked (nothing re-imported) only to do `prepare` here meanwhile.
    if serial and (prepare is None or not can_fork()):
        for key, a in args.items():
            metrics, wall = _timed(a)
            yield key, metrics, wall
        if prepare is not None:
            prepare()
        return
    ctx = multiprocessing.get_context("fork") if serial else _mp_context()
    with process_pool(1 if serial else min(workers, len(args)), mp_context=ctx) as pool:
        pending: dict[Future, str] = {pool.submit(_timed, a): k for k, a in args.items()}
        if prepare is not None:
            prepare()
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    key = pending.pop(fut)
                    metrics, wall = fut.result()
                    yield key, metrics, wall
        finally:
            for fut in pending:
                fut.cancel()


def _run_dask(
    args: dict[str, tuple[Scenario, str, str]], address: str
) -> Iterator[tuple[str, dict[str, Any], float]]:
    if not args:
        return
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise InputError(
            "a Dask scheduler was given but dask.distributed is not installed; "
            'pip install "dask[distributed]"',
            key="--scheduler",
        ) from None
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {address}: {exc}", key="--scheduler"
        ) from None
    with client:
        futures = {
            client.submit(_timed, a, key=f"sim-job-{k}", pure=False): k for k, a in args.items()
        }
        for fut in as_completed(list(futures)):
            metrics, wall = fut.result()
            yield futures[fut], metrics, wall


# --- sweeps -------------------------------------------------------------------------------------


@dataclass
class Point:
    index: int
    setting: dict[str, Any]  # key -> value handed to the scenario
    labels: dict[str, Any]  # key -> sweep.csv cell
    scenario: Scenario
    keys: dict[str, str] = field(default_factory=dict)  # platform -> job key


def build_points(
    base: Base, params: Sequence[Param], platforms: Sequence[str] | None = None
) -> list[Point]:
    """Validate every point up front: nothing is simulated from a half-valid grid."""
    by_key = {p.key: p for p in params}
    points = []
    for i, idx in enumerate(grid(params)):
        setting = {k: by_key[k].values[j] for k, j in idx.items()}
        labels = {k: by_key[k].labels[j] for k, j in idx.items()}
        sc = base.scenario(setting)
        names = [p.name for p in sc.platforms] if platforms is None else list(platforms)
        keys = {n: job_key(sc, n, base.base_dir) for n in names}
        points.append(Point(i, setting, labels, sc, keys))
    return points


def jobs_for(points: Sequence[Point]) -> list[Job]:
    return [
        Job(key, name, single_platform(p.scenario, name))
        for p in points
        for name, key in p.keys.items()
    ]


def run_points(
    points: Sequence[Point],
    base: Base,
    store: PointStore,
    *,
    force: bool,
    workers: int | None,
    scheduler: str | None,
    on_done: Callable[[int, int], None] | None,
    prepare: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Size-check the points, then simulate every (point, platform) not yet in `store`:
    (computed, reused). Shared by sweep, tune and crossover."""
    check_sizes(points, base.base_dir, force, base.file)
    return execute(
        jobs_for(points),
        base.base_dir,
        store,
        workers=workers,
        scheduler=scheduler,
        on_done=on_done,
        prepare=prepare,
    )


def check_sizes(points: Sequence[Point], base_dir: Path, force: bool, file: str) -> None:
    """Refuse points too large to simulate without --force (as `sim run` does)."""
    if force:
        return
    from sim.simulate import check_events, expected_requests

    for p in points:  # control-plane events too (timeline_step, polls, syncs, rate shapes)
        check_events(p.scenario, file)

    worst = max(points, key=lambda p: expected_requests(p.scenario, base_dir))
    n = expected_requests(worst.scenario, base_dir)
    if n > D.MAX_REQUESTS_WITHOUT_FORCE:
        at = ", ".join(f"{k}={_short(v)}" for k, v in worst.labels.items()) or "the scenario"
        raise InputError(
            f"a point ({at}) would simulate about {n:,.0f} requests, beyond the "
            f"{D.MAX_REQUESTS_WITHOUT_FORCE:,} this tool runs without --force; shorten "
            "`duration` or lower the rate, or pass --force",
            file=file,
            key="duration",
        )


def row_for(point: Point, platform: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """One sweep.csv row: the swept keys, the platform, then the summary metrics."""
    lat = metrics["latency_ms"]
    ci = (metrics.get("latency_ms_ci95") or {}).get("p99") or [None, None]
    return {
        **point.labels,
        "platform": platform,
        "requests": metrics["requests"],
        "error_rate": metrics["error_rate"],
        "cold_start_ratio": metrics["cold_start_ratio"],
        "p50_ms": lat.get("p50"),
        "p90_ms": lat.get("p90"),
        "p99_ms": lat.get("p99"),
        "p999_ms": lat.get("p999"),
        "p99_ci_lo": ci[0],
        "p99_ci_hi": ci[1],
        "peak_instances": metrics["instances"]["peak"],
        "monthly_cost_usd": metrics["monthly_cost_usd"],
        "cost_per_million_usd": metrics["cost_per_million_usd"],
        "slo_met": metrics["slo_met"],
        # the SLOs this point missed, by name (p99,error_rate); empty when all were met
        "slo_missed": ",".join(k for k, c in (metrics.get("slo") or {}).items() if not c["met"]),
    }


@dataclass
class SweepResult:
    params: list[Param]
    points: list[Point]
    rows: list[dict[str, Any]]  # grid order, then the scenario's platform order
    computed: int
    reused: int
    out_dir: Path | None


def run_sweep(
    base: Base,
    params: Sequence[Param],
    *,
    out_dir: Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    fresh: bool = False,
    on_done: Callable[[int, int], None] | None = None,
    prepare: Callable[[], None] | None = None,
) -> SweepResult:
    """Run the grid (reusing points.jsonl in `out_dir`) and return its rows; `prepare` is
    called while the jobs run (run_points)."""
    points = build_points(base, params)
    store = open_store(out_dir, fresh)
    computed, reused = run_points(
        points,
        base,
        store,
        force=force,
        workers=workers,
        scheduler=scheduler,
        on_done=on_done,
        prepare=prepare,
    )
    rows = [
        row_for(p, name, store.records[key]["metrics"])
        for p in points
        for name, key in p.keys.items()
    ]
    return SweepResult(list(params), points, rows, computed, reused, out_dir)


def open_store(out_dir: Path | None, fresh: bool = False) -> PointStore:
    path = None if out_dir is None else Path(out_dir) / POINTS_FILE
    if path is not None and fresh and path.exists():
        path.unlink()
    return PointStore(path)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """The text of `pandas.DataFrame(rows).to_csv(index=False)` (tests/test_sweep.py checks it
    against pandas), without importing pandas, which nothing else in a sweep needs (~0.3 s).

    As pandas infers a column's type: a column of numbers with a float or a missing cell is a
    float column (3 is written 3.0), missing cells are empty, anything else is written with str.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = []
    for name in names:
        col: list[Any] = [r.get(name) for r in rows]
        missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in col]
        vals = [v for v, m in zip(col, missing, strict=True) if not m]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
        floats = bool(vals) and numbers and (len(vals) < len(col) or float in map(type, vals))
        columns.append(
            [
                "" if m else repr(float(v)) if floats else str(v)
                for v, m in zip(col, missing, strict=True)
            ]
        )
    with path.open("w", encoding="utf-8", newline="") as fh:
        if not names:
            fh.write("\n")
            return
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(names)
        out.writerows(zip(*columns, strict=True))
