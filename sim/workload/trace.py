"""Trace replay: a CSV of timestamps, the Azure Functions 2019 per-minute format, or the Azure
Functions 2021 per-invocation format.

Azure 2019 (Shahrad et al., USENIX ATC 2020, CC BY 4.0): rows are functions (HashOwner, HashApp,
HashFunction, Trigger), columns are per-minute invocation counts ("480".."959" or
"minute_1".."minute_1440"). The first minute column is trace time 0. The data has no timestamps
inside a minute, so placement is a stated modelling choice (`within_minute`):
  - `uniform` (default): a minute with count k gets exactly k arrivals, uniform at random in the
    minute, i.e. a Poisson process conditioned on the observed count; counts are reproduced exactly.
  - `poisson`: a Poisson process of rate k/60 over the minute; its count is Poisson(k), so the
    counts match the trace in expectation only.
The durations file (function_durations_percentiles: percentile_Average_{0,1,25,50,75,99,100}, ms)
gives each function a piecewise-linear inverse CDF between those percentiles, the semantics of
`sim.distributions.Empirical(percentiles=...)`, sampled vectorised over all functions at once.

Azure 2021 (Zhang et al., SOSP 2021, CC BY 4.0): `app,func,end_timestamp,duration` in seconds;
arrival = end_timestamp - duration, and the trace's own duration is the request's service time.

Scaling: `time_scale` multiplies trace time (0.1 replays ten times faster: time compression);
`rate_scale` keeps the timing and changes the volume by thinning / duplication (each invocation
is kept floor(s) times plus once more with probability frac(s); per-minute counts are scaled the
same way before placement; with `poisson` the count is Poisson(s * k)). Duplicates of a timestamped
invocation arrive at the same instant.

Streaming: the per-minute matrix (functions x minutes) is small; arrivals are generated block by
block (a few minutes at a time), never one Python object per request. Per-invocation traces are
held as numpy columns (about 24 bytes per invocation) and sliced per block.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.config import Duration, check_input_file
from sim.errors import InputError
from sim.workload.sources import (
    BLOCK_ARRIVALS,
    GridGenerator,
    Part,
    SourceBase,
    SourceGenerator,
    block_seconds,
    split_rng,
)

if TYPE_CHECKING:  # pandas loads only when a trace is read
    import pandas as pd

_MINUTE = 60.0
_HASHES_2019 = ("HashOwner", "HashApp", "HashFunction")
_COLUMNS_2021 = ("app", "func", "end_timestamp", "duration")
_MINUTE_COLUMN = re.compile(r"^(?:minute_)?(\d+)$")
_PERCENTILE_COLUMN = re.compile(r"^percentile_Average_(\d+(?:\.\d+)?)$")
_LAST = float(np.nextafter(_MINUTE, 0.0))  # keeps a placed arrival inside its minute
_MIN_PREFIX = 6  # shortest hash prefix accepted in `functions` / `apps`


class TraceSource(SourceBase):
    """Replay a recorded trace. Relative paths resolve against the scenario's folder.

    The trace starts at the source's `start` (default 0): trace time `window[0]` maps to it.
    """

    file: str = Field(description="trace file (relative to the scenario file)")
    format: Literal["csv", "azure2019", "azure2021"] = "csv"
    column: str | int | None = Field(
        None, description="csv: arrival-time column (seconds or ISO 8601 times); name or index"
    )
    function_column: str | None = Field(None, description="csv: function name column")
    duration_column: str | None = Field(None, description="csv: service time column (seconds)")
    functions: list[str] | None = Field(
        None, description="keep these function hashes (or prefixes)"
    )
    apps: list[str] | None = Field(None, description="keep these app hashes (or prefixes)")
    triggers: list[str] | None = Field(None, description="azure2019: keep these triggers")
    top: int | None = Field(None, ge=1, description="keep the N busiest functions (in the window)")
    window: tuple[Duration, Duration] | None = Field(
        None, description="[from, to] in trace time; replay only this part"
    )
    time_scale: float = Field(1.0, gt=0, description="multiplies trace time; 0.1 = 10x faster")
    rate_scale: float = Field(1.0, gt=0, description="volume factor by thinning / duplication")
    within_minute: Literal["uniform", "poisson"] | None = Field(
        None, description="azure2019: placement inside a minute (default uniform)"
    )
    durations: str | None = Field(None, description="azure2019: function durations file")
    memory: str | None = Field(None, description="azure2019: memory percentiles file")

    @model_validator(mode="after")
    def _check_trace(self) -> TraceSource:
        only = {
            "column": "csv",
            "function_column": "csv",
            "duration_column": "csv",
            "triggers": "azure2019",
            "within_minute": "azure2019",
            "durations": "azure2019",
            "memory": "azure2019",
        }
        for key, fmt in only.items():
            if getattr(self, key) is not None and self.format != fmt:
                raise ValueError(f"trace `{key}` applies to format {fmt}, not {self.format}")
        if self.apps is not None and self.format == "csv":
            raise ValueError("trace `apps` needs format azure2019 or azure2021")
        if self.functions is not None and self.format == "csv" and self.function_column is None:
            raise ValueError("trace `functions` with format csv needs `function_column`")
        if self.window is not None and self.window[1] <= self.window[0]:
            raise ValueError("trace `window` must be [from, to] with to after from")
        return self

    def gives_service(self) -> bool:
        return (
            self.format == "azure2021"
            or (self.format == "azure2019" and self.durations is not None)
            or (self.format == "csv" and self.duration_column is not None)
        )

    def resolve(self, name: str, base_dir: Path, key: str) -> Path:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = Path(base_dir) / path
        # A regular, readable file (a FIFO is refused unopened); errors name the resolved path.
        check_input_file(path, what="trace file", key=key)
        return path.resolve()

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        path = self.resolve(self.file, base_dir, key="file")
        if self.format == "azure2019":
            return _minute_generator(self, path, base_dir, rng)
        if self.format == "azure2021":
            table = _read_2021(str(path), _stamp(path))
        else:
            table = _read_csv(
                str(path),
                _stamp(path),
                self.column,
                self.function_column,
                self.duration_column,
            )
        return _event_generator(self, table, rng)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _read(path: str, key: str, **kwargs: object) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read {path} as CSV: {first}", key=key) from None


def _need(df: pd.DataFrame, columns: tuple[str, ...], path: str, key: str, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns[:8])) + (", ..." if len(df.columns) > 8 else "")
        raise InputError(
            f"{path} is not {what}: missing column(s) {', '.join(missing)} (found {found})",
            key=key,
        )


# --------------------------------------------------------------------------------------------
# Selection shared by both kinds of trace


def _match(values: np.ndarray, wanted: list[str], key: str, path: Path) -> np.ndarray:
    """Rows whose value is one of `wanted` (full hashes, or unique prefixes of >= 6 chars)."""
    uniq = np.unique(values.astype(str))
    known = set(uniq.tolist())
    chosen: set[str] = set()
    for w in wanted:
        w = str(w).strip()
        if w in known:
            chosen.add(w)
            continue
        hits = [u for u in uniq if u.startswith(w)] if len(w) >= _MIN_PREFIX else []
        if len(hits) == 1:
            chosen.add(hits[0])
        elif len(hits) > 1:
            raise InputError(
                f"'{w}' matches {len(hits)} entries of {path.name}; give more", key=key
            )
        else:
            raise InputError(f"'{w}' is not in {path.name} (unknown hash)", key=key)
    return np.isin(values, list(chosen))


def _top(mask: np.ndarray, totals: np.ndarray, n: int | None) -> np.ndarray:
    """Narrow `mask` to the `n` rows with the largest totals (ties: file order)."""
    if n is None:
        return mask
    idx = np.nonzero(mask)[0]
    order = np.argsort(-totals[idx], kind="stable")[:n]
    out = np.zeros_like(mask)
    out[idx[order]] = True
    return out


# --------------------------------------------------------------------------------------------
# Azure 2019: per-minute counts


@dataclass(frozen=True)
class MinuteTable:
    owner: np.ndarray
    app: np.ndarray
    function: np.ndarray
    trigger: np.ndarray | None
    counts: np.ndarray  # int64, functions x minutes; column 0 is trace time 0


def _frozen(*arrays: np.ndarray | None) -> None:
    # Cached tables are shared by every Workload reading the same file: make them read-only.
    for a in arrays:
        if a is not None:
            a.setflags(write=False)


@functools.lru_cache(maxsize=8)
def _read_2019(path: str, stamp: tuple[int, int]) -> MinuteTable:
    df = _read(path, "file", dtype={c: str for c in (*_HASHES_2019, "Trigger")})
    _need(df, _HASHES_2019, path, "file", "an Azure 2019 invocations file")
    minutes = [(int(m.group(1)), c) for c in df.columns if (m := _MINUTE_COLUMN.match(str(c)))]
    if not minutes:
        raise InputError(
            f"{path} has no per-minute columns ('1'..'1440' or 'minute_N')", key="file"
        )
    minutes.sort()
    labels = np.array([m for m, _ in minutes])
    if np.any(np.diff(labels) != 1):
        raise InputError(f"{path}: minute columns are not consecutive", key="file")
    counts = df[[c for _, c in minutes]].to_numpy()
    if not np.issubdtype(counts.dtype, np.integer) or (counts.size and counts.min() < 0):
        raise InputError(f"{path}: per-minute counts must be non-negative integers", key="file")
    trig = df["Trigger"].to_numpy(str) if "Trigger" in df.columns else None
    table = MinuteTable(
        df["HashOwner"].to_numpy(str),
        df["HashApp"].to_numpy(str),
        df["HashFunction"].to_numpy(str),
        trig,
        counts.astype(np.int64),
    )
    _frozen(table.owner, table.app, table.function, table.trigger, table.counts)
    return table


@dataclass(frozen=True)
class PercentileTable:
    keys: pd.DataFrame  # hash columns present in the file
    knots: np.ndarray  # quantiles in [0, 1], increasing
    values: np.ndarray  # seconds, rows x knots


@functools.lru_cache(maxsize=8)
def _read_durations(path: str, stamp: tuple[int, int]) -> PercentileTable:
    df = _read(path, "durations", dtype={c: str for c in _HASHES_2019})
    _need(df, ("HashFunction",), path, "durations", "an Azure 2019 durations file")
    cols = [(float(m.group(1)), c) for c in df.columns if (m := _PERCENTILE_COLUMN.match(str(c)))]
    if len(cols) < 2:
        raise InputError(f"{path} has no percentile_Average_N columns", key="durations")
    cols.sort()
    values = df[[c for _, c in cols]].to_numpy(float) / 1000.0  # ms -> s
    if not np.all(np.isfinite(values)) or np.any(np.diff(values, axis=1) < 0):
        raise InputError(f"{path}: percentiles must be finite and non-decreasing", key="durations")
    keys = df[[c for c in _HASHES_2019 if c in df.columns]]
    return PercentileTable(keys, np.array([q for q, _ in cols]) / 100.0, values)


def _join(table: MinuteTable, rows: np.ndarray, keys: pd.DataFrame) -> np.ndarray:
    """Row index into `keys` for each selected function (-1 where absent)."""
    import pandas as pd

    on = list(keys.columns)
    left = pd.DataFrame(
        {
            "HashOwner": table.owner[rows],
            "HashApp": table.app[rows],
            "HashFunction": table.function[rows],
        }
    )[on]
    right = keys.assign(_row=np.arange(len(keys))).drop_duplicates(on)
    merged = left.merge(right, on=on, how="left")
    return merged["_row"].fillna(-1).to_numpy(np.int64)


class PercentileSampler:
    """Per-function piecewise-linear inverse CDFs, sampled in one vectorised call."""

    def __init__(self, knots: np.ndarray, values: np.ndarray) -> None:
        self.knots, self.values = knots, values

    def sample(self, function: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = self.knots
        u = rng.uniform(q[0], q[-1], function.size)
        j = np.clip(np.searchsorted(q, u, "right") - 1, 0, q.size - 2)
        w = (u - q[j]) / (q[j + 1] - q[j])
        lo, hi = self.values[function, j], self.values[function, j + 1]
        return lo + w * (hi - lo)


def _minute_generator(
    cfg: TraceSource, path: Path, base_dir: Path, rng: np.random.Generator
) -> SourceGenerator:
    table = _read_2019(str(path), _stamp(path))
    n_min = table.counts.shape[1]
    w0, w1 = cfg.window if cfg.window is not None else (0.0, n_min * _MINUTE)
    if w0 >= n_min * _MINUTE:
        raise InputError(f"starts after the trace ends ({n_min} minutes)", key="window")
    w1 = min(w1, n_min * _MINUTE)
    m0, m1 = int(w0 // _MINUTE), math.ceil(w1 / _MINUTE)

    mask = np.ones(len(table.function), bool)
    if cfg.functions is not None:
        mask &= _match(table.function, cfg.functions, "functions", path)
    if cfg.apps is not None:
        mask &= _match(table.app, cfg.apps, "apps", path)
    if cfg.triggers is not None:
        if table.trigger is None:
            raise InputError(f"{path.name} has no Trigger column", key="triggers")
        present = sorted(set(table.trigger.tolist()))
        unknown = [t for t in cfg.triggers if t not in present]
        if unknown:
            raise InputError(
                f"unknown trigger(s) {unknown}; the trace has {present}", key="triggers"
            )
        mask &= np.isin(table.trigger, cfg.triggers)
    mask = _top(mask, table.counts[:, m0:m1].sum(axis=1), cfg.top)
    rows = np.nonzero(mask)[0]
    if rows.size == 0:
        raise InputError("no function left after `functions`/`apps`/`triggers`", key="file")

    names = _unique_names(table, rows)
    sampler = None
    if cfg.durations is not None:
        dpath = cfg.resolve(cfg.durations, base_dir, key="durations")
        dur = _read_durations(str(dpath), _stamp(dpath))
        idx = _join(table, rows, dur.keys)
        if np.any(idx < 0):
            miss = int(np.sum(idx < 0))
            first = table.function[rows[np.argmax(idx < 0)]]
            raise InputError(
                f"{miss} selected function(s) have no row in {dpath.name} (e.g. {first})",
                key="durations",
            )
        sampler = PercentileSampler(dur.knots, dur.values[idx])
    memory = None
    if cfg.memory is not None:
        mpath = cfg.resolve(cfg.memory, base_dir, "memory")
        mem = _read(str(mpath), "memory", dtype={c: str for c in _HASHES_2019})
        _need(mem, ("HashFunction", "AverageAllocatedMb"), str(mpath), "memory", "a memory file")
        keys = mem[[c for c in _HASHES_2019 if c in mem.columns]]
        idx = _join(table, rows, keys)
        vals = mem["AverageAllocatedMb"].to_numpy(float)
        memory = np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan)
    return _MinuteGenerator(
        cfg, table.counts[rows, m0:m1], m0, (w0, w1), names, sampler, memory, rng
    )


def _unique_names(table: MinuteTable, rows: np.ndarray) -> list[str]:
    func = table.function[rows]
    if np.unique(func).size == func.size:
        return func.tolist()
    # HashFunction is unique only within its app (Azure's documentation).
    return [f"{a}/{f}" for a, f in zip(table.app[rows], func, strict=True)]


class _MinuteGenerator(SourceGenerator):
    has_function = True

    def __init__(
        self,
        cfg: TraceSource,
        counts: np.ndarray,
        m0: int,
        window: tuple[float, float],
        names: list[str],
        sampler: PercentileSampler | None,
        memory: np.ndarray | None,
        rng: np.random.Generator,
    ) -> None:
        super().__init__(cfg.start, cfg.end)
        self.cfg, self.counts, self.m0, self.window = cfg, counts, m0, window
        self._names, self.sampler, self.memory_mb = names, sampler, memory
        self.has_service = sampler is not None
        self.rng, self.service_rng = split_rng(rng, 2)
        self.mode = cfg.within_minute or "uniform"
        per_minute = max(1.0, float(counts.sum()) / max(1, counts.shape[1]) * cfg.rate_scale)
        self.k_minutes = max(1, int(BLOCK_ARRIVALS // per_minute))
        totals = counts.sum(axis=0).astype(float)
        self.cum = np.concatenate([[0.0], np.cumsum(totals)])

    @property
    def function_names(self) -> list[str]:
        return self._names

    def _sim(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.start + (x - self.window[0]) * self.cfg.time_scale

    def _block_start(self, k: int) -> float:
        j = k * self.k_minutes
        if j >= self.counts.shape[1]:
            return math.inf
        b0 = float(self._sim(max((self.m0 + j) * _MINUTE, self.window[0])))
        return b0 if b0 < self.end else math.inf

    def _scaled(self, n: np.ndarray) -> np.ndarray:
        s = self.cfg.rate_scale
        if self.mode == "poisson":
            return self.rng.poisson(n * s)
        if s == 1.0:
            return n
        whole, frac = math.floor(s), s - math.floor(s)
        extra = self.rng.binomial(n, frac) if frac > 0 else 0
        return n * whole + extra

    def _produce(self, k: int) -> Part:
        j0 = k * self.k_minutes
        block = self.counts[:, j0 : j0 + self.k_minutes]  # functions x minutes
        f_count, m_count = block.shape
        n = self._scaled(block.T.ravel())  # minute-major: index = minute * F + function
        minute = np.repeat(np.repeat(np.arange(m_count), f_count), n)
        function = np.repeat(np.tile(np.arange(f_count, dtype=np.int32), m_count), n)
        edge = (self.m0 + j0 + minute) * _MINUTE
        x = np.minimum(edge + _MINUTE * self.rng.random(minute.size), edge + _LAST)
        keep = (x >= self.window[0]) & (x < self.window[1])
        x, function = x[keep], function[keep]
        order = np.argsort(x, kind="stable")
        times, function = np.asarray(self._sim(x[order])), function[order]
        service = None
        if self.sampler is not None:
            service = self.sampler.sample(function, self.service_rng)
        return Part(times, service, function)

    def expected_count(self, duration: float) -> float:
        lim = self.cfg.limit(duration)
        if lim <= self.start:
            return 0.0
        w0, w1 = self.window
        hi = min(w1, w0 + (lim - self.start) / self.cfg.time_scale)
        grid = np.arange(self.cum.size, dtype=float)
        at = np.interp([w0 / _MINUTE - self.m0, hi / _MINUTE - self.m0], grid, self.cum)
        return float(at[1] - at[0]) * self.cfg.rate_scale


# --------------------------------------------------------------------------------------------
# Per-invocation traces: Azure 2021 and plain CSV


@dataclass(frozen=True)
class EventTable:
    times: np.ndarray  # trace seconds, sorted
    service: np.ndarray | None
    function: np.ndarray | None  # int32 index into names
    names: list[str]
    app: np.ndarray | None  # app name per function (for `apps`)


@functools.lru_cache(maxsize=8)
def _read_2021(path: str, stamp: tuple[int, int]) -> EventTable:
    import pandas as pd

    df = _read(path, "file", dtype={"app": str, "func": str})
    _need(df, _COLUMNS_2021, path, "file", "an Azure 2021 invocation trace")
    end = pd.to_numeric(df["end_timestamp"], errors="coerce").to_numpy(float)
    dur = pd.to_numeric(df["duration"], errors="coerce").to_numpy(float)
    if not (np.all(np.isfinite(end)) and np.all(np.isfinite(dur))) or np.any(dur < 0):
        raise InputError(
            f"{path}: end_timestamp/duration must be numbers, duration >= 0", key="file"
        )
    arrival = end - dur
    order = np.argsort(arrival, kind="stable")
    pair = df["app"].to_numpy(str) + "/" + df["func"].to_numpy(str)
    codes, uniq = pd.factorize(pair[order])
    app = np.array([u.split("/", 1)[0] for u in uniq])
    table = EventTable(arrival[order], dur[order], codes.astype(np.int32), list(uniq), app)
    _frozen(table.times, table.service, table.function)
    return table


def _headerless(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip().split(",")
    try:
        [float(x) for x in first]
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def _read_csv(
    path: str,
    stamp: tuple[int, int],
    column: str | int | None,
    function_column: str | None,
    duration_column: str | None,
) -> EventTable:
    import pandas as pd

    df = _read(path, "file", header=None if _headerless(path) else "infer")
    cols = list(df.columns)

    def pick(col: str | int | None, key: str) -> pd.Series:
        if col is None:
            if len(cols) == 1:
                return df[cols[0]]
            raise InputError(f"{Path(path).name} has columns {cols}; say which one", key=key)
        if isinstance(col, int) and col not in cols and 0 <= col < len(cols):
            return df.iloc[:, col]
        if col not in cols:
            raise InputError(f"no column {col!r} in {Path(path).name} (has {cols})", key=key)
        return df[col]

    raw = pick(column, key="column")
    times = pd.to_numeric(raw, errors="coerce").to_numpy(float)
    if np.isnan(times).any():
        try:
            stamps = pd.to_datetime(raw, utc=True, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"column {raw.name!r} holds neither seconds nor ISO 8601 times ({exc})",
                key="column",
            ) from exc
        ns = stamps.to_numpy("datetime64[ns]").astype(np.int64)
        times = (ns - ns.min()) / 1e9  # ISO times: the earliest is trace time 0
    order = np.argsort(times, kind="stable")
    service = function = app = None
    names = ["default"]
    if duration_column is not None:
        service = pd.to_numeric(pick(duration_column, key="duration_column"), errors="coerce")
        service = service.to_numpy(float)[order]
        if not np.all(np.isfinite(service)) or np.any(service < 0):
            raise InputError(
                f"column {duration_column!r}: seconds >= 0 expected", key="duration_column"
            )
    if function_column is not None:
        codes, uniq = pd.factorize(pick(function_column, "function_column").astype(str))
        function = codes.astype(np.int32)[order]
        names = list(uniq)
    table = EventTable(times[order], service, function, names, app)
    _frozen(table.times, table.service, table.function)
    return table


def _event_generator(
    cfg: TraceSource, table: EventTable, rng: np.random.Generator
) -> SourceGenerator:
    w0, w1 = cfg.window if cfg.window is not None else (0.0, math.inf)
    lo, hi = np.searchsorted(table.times, [w0, w1], "left")
    if lo >= table.times.size:
        raise InputError("starts after the last invocation of the trace", key="window")
    times = table.times[lo:hi]
    function = None if table.function is None else table.function[lo:hi]
    service = None if table.service is None else table.service[lo:hi]
    names = table.names
    selecting = cfg.functions is not None or cfg.apps is not None or cfg.top is not None
    if function is not None and selecting:
        keep = np.ones(len(names), bool)
        path = Path(cfg.file)
        if cfg.functions is not None:
            keep &= _match_functions(np.array(names), cfg.functions, path)
        if cfg.apps is not None and table.app is not None:
            keep &= _match(table.app, cfg.apps, "apps", path)
        keep = _top(keep, np.bincount(function, minlength=len(names)), cfg.top)
        rows = keep[function]
        times, function = times[rows], function[rows]
        service = None if service is None else service[rows]
        # Renumber the kept functions 0..n-1 in order of first appearance in the file.
        kept = np.nonzero(keep)[0]
        remap = np.full(len(names), -1, np.int32)
        remap[kept] = np.arange(kept.size, dtype=np.int32)
        function, names = remap[function], [names[i] for i in kept]
    elif cfg.top is not None and function is None:
        raise InputError("`top` needs functions (format azure2021 or `function_column`)", key="top")
    if times.size == 0:
        raise InputError("no invocation left after the selection and `window`", key="file")
    return _EventGenerator(cfg, w0, times, service, function, names, rng)


def _match_functions(names: np.ndarray, wanted: list[str], path: Path) -> np.ndarray:
    """Functions named by a full name ('app/func' in Azure 2021) or by their func hash."""
    func_ids = np.array([n.rsplit("/", 1)[-1] for n in names])
    mask = np.zeros(names.size, bool)
    for w in wanted:
        hit = names == w
        mask |= hit if hit.any() else _match(func_ids, [w], "functions", path)
    return mask


class _EventGenerator(GridGenerator):
    def __init__(
        self,
        cfg: TraceSource,
        w0: float,
        times: np.ndarray,
        service: np.ndarray | None,
        function: np.ndarray | None,
        names: list[str],
        rng: np.random.Generator,
    ) -> None:
        self.cfg = cfg
        self.sim = cfg.start + (times - w0) * cfg.time_scale
        self.service, self.function, self._names = service, function, names
        self.has_service, self.has_function = service is not None, function is not None
        span = max(float(self.sim[-1] - cfg.start), 1e-9)
        rate = self.sim.size / span * cfg.rate_scale
        horizon = float(np.nextafter(self.sim[-1], math.inf))
        super().__init__(cfg.start, cfg.end, block_seconds(rate), horizon)
        self.rng = rng

    @property
    def function_names(self) -> list[str]:
        return self._names

    def _produce(self, k: int) -> Part:
        b0, b1 = self._bounds(k)
        lo, hi = np.searchsorted(self.sim, [b0, b1], "left")
        sl = slice(int(lo), int(hi))
        times = self.sim[sl]
        service = None if self.service is None else self.service[sl]
        function = None if self.function is None else self.function[sl]
        s = self.cfg.rate_scale
        if s != 1.0:
            copies = math.floor(s) + (self.rng.random(times.size) < s - math.floor(s))
            times = np.repeat(times, copies)
            service = None if service is None else np.repeat(service, copies)
            function = None if function is None else np.repeat(function, copies)
        return Part(times, service, function)

    def expected_count(self, duration: float) -> float:
        lim = self.cfg.limit(duration)
        lo, hi = np.searchsorted(self.sim, [self.start, lim], "left")
        return float(hi - lo) * self.cfg.rate_scale
