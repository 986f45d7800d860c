"""Synthetic arrival sources: steady, phases, diurnal, spike, batch, mmpp.

Each source is a pydantic model (one entry of `workload.arrivals`) whose `generator(rng, base_dir)`
builds a stateful `SourceGenerator`. Generators draw in fixed internal blocks of simulated time
whose grid depends only on the source's settings, never on the caller's windows: asking for
[0, 3600) at once or as sixty 1-minute windows consumes the same random numbers in the same order
and gives identical arrivals. Inside a block everything is vectorised with numpy; the only Python
loops are per block and (MMPP) per state change, never per request.

Non-homogeneous Poisson sources (phases, diurnal, spike) use thinning (Lewis & Shedler 1979) with a
per-block upper bound of the rate, so the acceptance ratio stays near 1 even for sharp spikes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import AliasChoices, BeforeValidator, ConfigDict, Field, model_validator

from sim import units
from sim.config import Duration, Rate, Strict
from sim.distributions import Distribution

# Expected arrivals per internal block at the source's peak rate: big enough that numpy's per-call
# overhead vanishes, small enough that a block is a few hundred kB. Blocks stay within [1 ms, 1 h].
BLOCK_ARRIVALS = 65_536
_MIN_BLOCK_S = 1e-3
_MAX_BLOCK_S = 3600.0


def block_seconds(peak_rate: float) -> float:
    """Internal block length for a source whose rate never exceeds `peak_rate` (events/s)."""
    if peak_rate <= 0:
        return _MAX_BLOCK_S
    return float(min(_MAX_BLOCK_S, max(_MIN_BLOCK_S, BLOCK_ARRIVALS / peak_rate)))


def split_rng(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """`n` independent child generators, determined by `rng`'s state (which advances by one draw).

    Used instead of `Generator.spawn`, whose result depends on how often the shared SeedSequence
    was spawned before: here equal states always give equal children.
    """
    entropy = [int(x) for x in rng.integers(0, 2**63, size=4, dtype=np.int64)]
    return [np.random.default_rng(s) for s in np.random.SeedSequence(entropy).spawn(n)]


def also_bare_duration(schema: dict[str, Any]) -> None:
    """JSON Schema: a distribution field also accepts a bare duration (`coerce_distribution`)."""
    inner = dict(schema)
    title = inner.pop("title", None)
    schema.clear()
    schema["anyOf"] = [
        {"type": "number"},
        {"type": "string", "pattern": units.DURATION_PATTERN},
        inner,
    ]
    if title:
        schema["title"] = title


# --------------------------------------------------------------------------------------------
# Generator machinery


class Part(NamedTuple):
    """Arrivals of one block (or the carried-over remainder): times, service or None, function."""

    times: np.ndarray
    service: np.ndarray | None
    function: np.ndarray | None


_EMPTY = np.zeros(0)


class SourceGenerator(ABC):
    """Stateful arrival generator; call `generate` on consecutive windows [t0, t1).

    Subclasses define internal blocks (`_block_start(k)`, `inf` when exhausted) and produce every
    arrival caused by block k (`_produce(k)`, times >= the block start, any order). Arrivals that
    fall after the current window (a batch spread over a boundary, the rest of a block) are
    carried over, so windows may cut anywhere.
    """

    has_service: bool = False
    has_function: bool = False

    def __init__(self, start: float, end: float | None) -> None:
        self.start = start
        self.end = math.inf if end is None else end
        self._k = 0
        self._pending: Part | None = None

    @property
    def function_names(self) -> list[str]:
        """Local function names; ids returned by `generate` index this list."""
        return ["default"]

    @abstractmethod
    def _block_start(self, k: int) -> float: ...

    @abstractmethod
    def _produce(self, k: int) -> Part: ...

    @abstractmethod
    def expected_count(self, duration: float) -> float:
        """Analytic mean number of arrivals in [0, duration)."""

    def generate(self, t0: float, t1: float) -> Part:
        """Arrivals in [t0, t1), sorted (stable); the next call must start at t1."""
        parts = [] if self._pending is None else [self._pending]
        while self._block_start(self._k) < t1:
            parts.append(self._produce(self._k))
            self._k += 1
        times, service, function = _concat(parts, self.has_service, self.has_function)
        fresh = len(parts) > 1 or self._pending is None  # the carried-over part is sorted
        if fresh and times.size > 1 and np.any(times[1:] < times[:-1]):
            order = np.argsort(times, kind="stable")
            times = times[order]
            service = None if service is None else service[order]
            function = None if function is None else function[order]
        stop = int(np.searchsorted(times, self.end, "left"))
        cut = min(stop, int(np.searchsorted(times, t1, "left")))
        lo = int(np.searchsorted(times, t0, "left"))
        rest = Part(
            times[cut:stop],
            None if service is None else service[cut:stop],
            None if function is None else function[cut:stop],
        )
        self._pending = rest if rest.times.size else None
        return Part(
            times[lo:cut],
            None if service is None else service[lo:cut],
            None if function is None else function[lo:cut],
        )


def _concat(parts: list[Part], has_service: bool, has_function: bool) -> Part:
    if not parts:
        return Part(
            _EMPTY,
            _EMPTY if has_service else None,
            np.zeros(0, np.int32) if has_function else None,
        )
    if len(parts) == 1:
        return parts[0]
    return Part(
        np.concatenate([p.times for p in parts]),
        np.concatenate([p.service for p in parts]) if has_service else None,
        np.concatenate([p.function for p in parts]) if has_function else None,
    )


class GridGenerator(SourceGenerator):
    """Blocks on a fixed grid start + k * block, up to `horizon` (after it nothing can arrive)."""

    def __init__(self, start: float, end: float | None, block: float, horizon: float) -> None:
        super().__init__(start, end)
        self.block = block
        self.horizon = min(self.end, horizon)

    def _block_start(self, k: int) -> float:
        b0 = self.start + k * self.block
        return b0 if b0 < self.horizon else math.inf

    def _bounds(self, k: int) -> tuple[float, float]:
        # Both ends computed by the same formula, so neighbouring blocks share their boundary.
        return self.start + k * self.block, min(self.start + (k + 1) * self.block, self.horizon)


def uniform_points(rng: np.random.Generator, n: int, b0: float, b1: float) -> np.ndarray:
    """`n` sorted uniform points in [b0, b1): a Poisson process on [b0, b1) given its count."""
    t = b0 + (b1 - b0) * rng.random(n)
    t.sort()
    return np.minimum(t, np.nextafter(b1, -math.inf))


def grid_points(origin: float, spacing: float, b0: float, b1: float) -> np.ndarray:
    """Points origin + j * spacing (j >= 0) within [b0, b1), computed from j (no drift)."""
    j0 = max(0, math.floor((b0 - origin) / spacing) - 1)
    j1 = max(0, math.ceil((b1 - origin) / spacing) + 1)
    t = origin + np.arange(j0, j1, dtype=np.float64) * spacing
    return t[(t >= b0) & (t < b1)]


# --------------------------------------------------------------------------------------------
# Source models


class SourceBase(Strict):
    """Fields every arrival source accepts."""

    start: Duration = Field(0.0, ge=0, description="no arrivals before this simulated time")
    end: Duration | None = Field(None, gt=0, description="no arrivals from this simulated time on")

    @model_validator(mode="after")
    def _check_window(self) -> SourceBase:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"`end` ({self.end:g}s) must be after `start` ({self.start:g}s)")
        return self

    def gives_service(self) -> bool:
        """True if every arrival comes with its own service time (trace durations)."""
        return False

    def limit(self, duration: float) -> float:
        """End of the interval [start, limit) in which this source can emit within [0, duration)."""
        return min(duration, math.inf if self.end is None else self.end)

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        raise NotImplementedError


class Steady(SourceBase):
    """Constant rate: a Poisson process, or evenly spaced arrivals (`spacing: uniform`)."""

    rate: Rate = Field(ge=0, description="arrivals per second, e.g. 20/s or 3M/day")
    spacing: Literal["poisson", "uniform"] = "poisson"

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        return _SteadyGenerator(self, rng)


class _SteadyGenerator(GridGenerator):
    def __init__(self, cfg: Steady, rng: np.random.Generator) -> None:
        horizon = math.inf if cfg.rate > 0 else cfg.start
        super().__init__(cfg.start, cfg.end, block_seconds(cfg.rate), horizon)
        self.cfg, self.rng = cfg, rng

    def _produce(self, k: int) -> Part:
        b0, b1 = self._bounds(k)
        if self.cfg.spacing == "uniform":
            # First arrival at `start`, then every 1/rate.
            return Part(grid_points(self.start, 1.0 / self.cfg.rate, b0, b1), None, None)
        n = int(self.rng.poisson(self.cfg.rate * (b1 - b0)))
        return Part(uniform_points(self.rng, n, b0, b1), None, None)

    def expected_count(self, duration: float) -> float:
        span = max(0.0, self.cfg.limit(duration) - self.start)
        if self.cfg.spacing == "uniform" and self.cfg.rate > 0:
            return float(math.ceil(span * self.cfg.rate - 1e-9))
        return self.cfg.rate * span


class RateShape(ABC):
    """A time-varying rate lambda(t) >= 0 (events/s) on absolute simulated time."""

    support_end: float = math.inf  # lambda(t) = 0 from here on

    @abstractmethod
    def rate(self, t: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def bound(self, a: float, b: float) -> float:
        """An upper bound of lambda on [a, b] (tight, for efficient thinning)."""

    @abstractmethod
    def integral(self, a: float, b: float) -> float: ...

    @abstractmethod
    def critical(self, a: float, b: float) -> np.ndarray:
        """Points in [a, b] where lambda may jump or stop being monotone."""

    @abstractmethod
    def peak(self) -> float: ...


_PIECES = 64  # thinning bound resolution per block


class _ThinningGenerator(GridGenerator):
    """Non-homogeneous Poisson process by thinning, block by block."""

    def __init__(self, cfg: SourceBase, shape: RateShape, rng: np.random.Generator) -> None:
        super().__init__(cfg.start, cfg.end, block_seconds(shape.peak()), shape.support_end)
        self.cfg, self.shape, self.rng = cfg, shape, rng

    def _produce(self, k: int) -> Part:
        # The block is cut into equal pieces, each with its own bound: the rate is monotone
        # between critical points, so a piece's bound is the larger end value unless it holds
        # a critical point (a jump, a peak), where the exact `bound` is used.
        b0, b1 = self._bounds(k)
        edges = np.linspace(b0, b1, _PIECES + 1)
        edges[-1] = b1
        shape = self.shape
        lam = np.maximum(shape.rate(edges[:-1]), shape.rate(edges[1:]))
        crit = shape.critical(b0, b1)
        if crit.size:
            near = np.concatenate(
                [
                    np.searchsorted(edges, crit, "left") - 1,
                    np.searchsorted(edges, crit, "right") - 1,
                ]
            )
            for i in np.unique(near[(near >= 0) & (near < _PIECES)]):
                lam[i] = shape.bound(edges[i], edges[i + 1])
        width = np.diff(edges)
        n = self.rng.poisson(lam * width)
        total = int(n.sum())
        t = np.repeat(edges[:-1], n) + self.rng.random(total) * np.repeat(width, n)
        keep = self.rng.random(total) * np.repeat(lam, n) < shape.rate(t)
        t = np.sort(t[keep])
        return Part(np.minimum(t, np.nextafter(b1, -math.inf)), None, None)

    def expected_count(self, duration: float) -> float:
        hi = self.cfg.limit(duration)
        return self.shape.integral(self.start, hi) if hi > self.start else 0.0


class PiecewiseLinear(RateShape):
    """Rate linear on each segment [a_i, b_i) (jumps allowed between segments), 0 elsewhere."""

    def __init__(self, a: np.ndarray, b: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> None:
        self.a, self.b, self.y0, self.y1 = a, b, y0, y1
        self.support_end = float(b[-1]) if b.size else 0.0

    def _at(self, i: np.ndarray, t: np.ndarray) -> np.ndarray:
        frac = (t - self.a[i]) / (self.b[i] - self.a[i])
        return self.y0[i] + (self.y1[i] - self.y0[i]) * frac

    def rate(self, t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.a, t, "right") - 1
        inside = (i >= 0) & (t < self.b[np.maximum(i, 0)])
        i = np.clip(i, 0, None)
        return np.where(inside, self._at(i, t), 0.0)

    def _overlap(self, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        left = np.maximum(self.a, lo)
        right = np.minimum(self.b, hi)
        idx = np.nonzero(right > left)[0]
        return idx, left[idx], right[idx]

    def bound(self, a: float, b: float) -> float:
        idx, left, right = self._overlap(a, b)
        if idx.size == 0:
            return 0.0
        return float(max(self._at(idx, left).max(), self._at(idx, right).max()))

    def critical(self, a: float, b: float) -> np.ndarray:
        ends = np.concatenate([self.a, self.b])
        return ends[(ends >= a) & (ends <= b)]

    def integral(self, a: float, b: float) -> float:
        idx, left, right = self._overlap(a, b)
        return float(np.sum((self._at(idx, left) + self._at(idx, right)) / 2 * (right - left)))

    def peak(self) -> float:
        return float(max(self.y0.max(), self.y1.max())) if self.a.size else 0.0


def _artillery_names(schema: dict[str, Any]) -> None:
    # Advertise Artillery's spellings too: `arrivalRate` for `rate`, `rampTo` for `ramp_to`.
    props = schema["properties"]
    props["arrivalRate"], props["rampTo"] = props["rate"], props["ramp_to"]
    schema["required"] = [r for r in schema.get("required", []) if r != "rate"]
    schema["oneOf"] = [{"required": ["rate"]}, {"required": ["arrivalRate"]}]


class Phase(Strict):
    """One phase: `rate` for `duration`, or a linear ramp from `rate` to `ramp_to`."""

    model_config = ConfigDict(json_schema_extra=_artillery_names)

    duration: Duration = Field(gt=0)
    rate: Rate = Field(ge=0, validation_alias=AliasChoices("rate", "arrivalRate"))
    ramp_to: Rate | None = Field(None, ge=0, validation_alias=AliasChoices("ramp_to", "rampTo"))
    name: str | None = None


def _phase_list(value: Any) -> Any:
    """`phases: [...]` (a bare list, as in Artillery) means `phases: {steps: [...]}`."""
    return {"steps": value} if isinstance(value, list) else value


def _phases_schema(schema: dict[str, Any]) -> None:
    # `phases:` may also be the bare list of phases (Artillery style).
    listed = dict(schema["properties"]["steps"])
    mapping = dict(schema)
    schema.clear()
    schema["anyOf"] = [listed, mapping]


class Phases(SourceBase):
    """Artillery-like phases, back to back from `start`; Poisson arrivals; rate 0 after the last.

    Artillery's own key names `arrivalRate` and `rampTo` are accepted too.
    """

    model_config = ConfigDict(json_schema_extra=_phases_schema)

    steps: list[Phase] = Field(min_length=1)

    def shape(self) -> PiecewiseLinear:
        d = np.array([p.duration for p in self.steps])
        b = self.start + np.cumsum(d)
        a = b - d
        y0 = np.array([p.rate for p in self.steps])
        y1 = np.array([p.rate if p.ramp_to is None else p.ramp_to for p in self.steps])
        return PiecewiseLinear(a, b, y0, y1)

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        return _ThinningGenerator(self, self.shape(), rng)


PhasesField = Annotated[Phases, BeforeValidator(_phase_list)]


class _Sinusoid(RateShape):
    def __init__(self, mean: float, amplitude: float, period: float, peak_at: float) -> None:
        self.m, self.a, self.p, self.t_peak = mean, amplitude, period, peak_at

    def rate(self, t: np.ndarray) -> np.ndarray:
        return self.m * (1 + self.a * np.cos(2 * np.pi * (np.asarray(t) - self.t_peak) / self.p))

    def bound(self, a: float, b: float) -> float:
        # Between two peaks the rate falls then rises, so without a peak inside [a, b] its
        # maximum is at an end.
        j = math.ceil((a - self.t_peak) / self.p)
        if self.t_peak + j * self.p <= b:
            return self.peak()
        return float(self.rate(np.array([a, b])).max())

    def critical(self, a: float, b: float) -> np.ndarray:
        j0, j1 = math.ceil((a - self.t_peak) / self.p), math.floor((b - self.t_peak) / self.p)
        return self.t_peak + self.p * np.arange(j0, j1 + 1, dtype=float)

    def integral(self, a: float, b: float) -> float:
        w = 2 * math.pi / self.p
        swing = math.sin(w * (b - self.t_peak)) - math.sin(w * (a - self.t_peak))
        return self.m * (b - a) + self.m * self.a * swing / w

    def peak(self) -> float:
        return self.m * (1 + self.a)


class Diurnal(SourceBase):
    """Sinusoidal daily cycle: mean * (1 + amplitude * cos(2 pi (t - peak) / period)).

    Simulated time 0 is 00:00, so `peak: 14h` puts the busiest moment at 14:00 every day.
    Averaged over whole periods the rate is `mean`.
    """

    mean: Rate = Field(gt=0, description="average rate over a period")
    amplitude: float = Field(ge=0, le=1, description="peak excess as a fraction of the mean")
    period: Duration = Field(units.SECONDS_PER_DAY, gt=0, description="1d: the daily cycle")
    peak: Duration = Field(ge=0, description="time of the peak within the period, e.g. 14h")

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        shape = _Sinusoid(self.mean, self.amplitude, self.period, self.peak)
        return _ThinningGenerator(self, shape, rng)


class _SpikeShape(RateShape):
    """base + excess(t): excess rises linearly to h, holds, then decays (linear or exponential)."""

    def __init__(self, cfg: Spike) -> None:
        self.base, self.h = cfg.base, cfg.peak - cfg.base
        self.t0, self.rise, self.hold, self.decay = cfg.at, cfg.rise, cfg.hold, cfg.decay
        self.t_top = cfg.at + cfg.rise
        self.t_down = self.t_top + cfg.hold
        self.exp = cfg.decay_shape == "exponential"
        if self.base == 0:
            self.support_end = math.inf if self.exp else self.t_down + self.decay

    def excess(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        up = np.clip((t - self.t0) / self.rise, 0, 1) if self.rise > 0 else (t >= self.t0) * 1.0
        u = np.maximum(t - self.t_down, 0.0)
        if self.decay == 0:
            down = (t < self.t_down) * 1.0
        elif self.exp:
            down = np.exp(-u / self.decay)
        else:
            down = np.clip(1 - u / self.decay, 0, 1)
        return self.h * up * down

    def rate(self, t: np.ndarray) -> np.ndarray:
        return self.base + self.excess(t)

    def bound(self, a: float, b: float) -> float:
        if a <= self.t_down and b >= self.t_top:
            return self.base + self.h
        return self.base + float(self.excess(np.array([a, b])).max())

    def critical(self, a: float, b: float) -> np.ndarray:
        pts = np.array([self.t0, self.t_top, self.t_down])
        return pts[(pts >= a) & (pts <= b)]

    def _cumulative(self, x: float) -> float:
        """Integral of the excess from -inf to x."""
        h = self.h
        if x <= self.t0:
            return 0.0
        if x < self.t_top:
            return h * (x - self.t0) ** 2 / (2 * self.rise)
        total = h * self.rise / 2 + h * (min(x, self.t_down) - self.t_top)
        if x <= self.t_down or self.decay == 0:
            return total
        u = x - self.t_down
        if self.exp:
            return total + h * self.decay * (1 - math.exp(-u / self.decay))
        u = min(u, self.decay)
        return total + h * (u - u * u / (2 * self.decay))

    def integral(self, a: float, b: float) -> float:
        return self.base * (b - a) + self._cumulative(b) - self._cumulative(a)

    def peak(self) -> float:
        return self.base + self.h


class Spike(SourceBase):
    """Flash crowd: from `base`, a linear rise over `rise` starting `at`, `hold` at `peak`, then a
    decay back to `base` over `decay`: linear (default; gone after `decay`) or exponential
    (`decay` is the time constant: the excess falls to 1/e after `decay`).
    """

    at: Duration = Field(ge=0, description="simulated time the rise begins")
    peak: Rate = Field(ge=0)
    rise: Duration = Field(0.0, ge=0)
    hold: Duration = Field(0.0, ge=0)
    decay: Duration = Field(0.0, ge=0)
    decay_shape: Literal["linear", "exponential"] = "linear"
    base: Rate = Field(0.0, ge=0, description="rate before and after the spike")

    @model_validator(mode="after")
    def _check_spike(self) -> Spike:
        if self.peak < self.base:
            raise ValueError("spike `peak` must be at least `base`")
        if self.rise + self.hold + self.decay <= 0:
            raise ValueError("spike needs a positive `rise`, `hold` or `decay`")
        return self

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        return _ThinningGenerator(self, _SpikeShape(self), rng)


def _size(value: Any) -> Any:
    # A bare number (or "2k") is a fixed batch size; a mapping is a distribution.
    if isinstance(value, dict):
        return value
    return {"dist": "constant", "value": units.parse_count(value)}


def _also_count(schema: dict[str, Any]) -> None:
    inner = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "number", "minimum": 0}, {"type": "string"}, inner]


class Batch(SourceBase):
    """Bursts of `size` requests, spread uniformly over `spread` after each batch time.

    Batch times: `every` (start + offset + j * every), `at` (a list of times), or `rate` (a Poisson
    process of batches). A distribution `size` is rounded stochastically (floor(x + U)) so the mean
    batch size equals the distribution's mean exactly.
    """

    every: Duration | None = Field(None, gt=0)
    offset: Duration = Field(0.0, ge=0, description="first batch at start + offset (with `every`)")
    at: list[Annotated[Duration, Field(ge=0)]] | None = None
    rate: Rate | None = Field(None, gt=0, description="batches per second (Poisson)")
    size: Annotated[Distribution, BeforeValidator(_size), Field(json_schema_extra=_also_count)] = (
        Field(description="requests per batch: a number, or a distribution of numbers")
    )
    spread: Duration = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _check_batch(self) -> Batch:
        given = [k for k in ("every", "at", "rate") if getattr(self, k) is not None]
        if self.at is not None and not self.at:
            raise ValueError("batch `at` needs at least one time")
        if self.offset and self.every is None:
            raise ValueError("batch `offset` applies to `every` only")
        if len(given) != 1:
            raise ValueError(
                f"batch needs exactly one of `every`, `at` or `rate` (got {given or 'none'})"
            )
        return self

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        return _BatchGenerator(self, rng)


class _BatchGenerator(GridGenerator):
    def __init__(self, cfg: Batch, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        self.at = np.sort(np.array(cfg.at, dtype=float)) if cfg.at is not None else None
        if cfg.every is not None:
            freq, horizon = 1.0 / cfg.every, math.inf
        elif cfg.rate is not None:
            freq, horizon = cfg.rate, math.inf
        else:
            assert self.at is not None
            freq = self.at.size / max(1.0, float(self.at.max() - self.at.min()))
            horizon = float(np.nextafter(self.at.max(), math.inf)) if self.at.size else 0.0
        peak = freq * max(1.0, cfg.size.mean())
        super().__init__(cfg.start, cfg.end, block_seconds(peak), horizon)

    def _batch_times(self, b0: float, b1: float) -> np.ndarray:
        cfg = self.cfg
        if cfg.every is not None:
            return grid_points(cfg.start + cfg.offset, cfg.every, b0, b1)
        if cfg.rate is not None:
            return uniform_points(self.rng, int(self.rng.poisson(cfg.rate * (b1 - b0))), b0, b1)
        assert self.at is not None
        return self.at[(self.at >= b0) & (self.at < b1)]

    def _produce(self, k: int) -> Part:
        tau = self._batch_times(*self._bounds(k))
        raw = self.cfg.size.sample(tau.size, self.rng)
        sizes = np.floor(np.maximum(raw, 0.0) + self.rng.random(tau.size)).astype(np.int64)
        t = np.repeat(tau, sizes)
        if self.cfg.spread > 0:
            t = t + self.cfg.spread * self.rng.random(t.size)
            t.sort()
        return Part(t, None, None)

    def expected_count(self, duration: float) -> float:
        cfg, lim = self.cfg, self.cfg.limit(duration)
        if lim <= cfg.start:
            return 0.0
        w = cfg.spread

        def share(tau: np.ndarray) -> np.ndarray:
            # Expected fraction of a batch at tau that arrives before lim.
            if w == 0:
                return (tau < lim) * 1.0
            return np.clip((lim - tau) / w, 0.0, 1.0)

        if cfg.rate is not None:
            # Integral of share(tau) over batch times tau in [start, lim).
            span = lim - cfg.start
            body = span - w / 2 if span >= w else span * span / (2 * w)
            return cfg.rate * body * cfg.size.mean()
        if cfg.every is not None:
            origin = cfg.start + cfg.offset
            tau = origin + np.arange(max(0, math.ceil((lim - origin) / cfg.every))) * cfg.every
        else:
            assert self.at is not None
            tau = self.at
        tau = tau[(tau >= cfg.start) & (tau < lim)]
        return float(share(tau).sum()) * cfg.size.mean()


class MmppState(Strict):
    rate: Rate = Field(ge=0, description="arrival rate while in this state")
    hold: Duration | None = Field(None, gt=0, description="mean time in this state (exponential)")
    name: str | None = None


class Mmpp(SourceBase):
    """Markov-modulated Poisson process: Poisson arrivals at the current state's rate.

    Give every state a mean holding time `hold` (on leaving, the next state is chosen uniformly
    among the others; with two states they alternate: on/off), or give `generator`, the CTMC
    generator matrix Q (rates per second; the diagonal is implied by the row sums). The chain
    starts in its stationary distribution, so the mean rate is the stationary mix from t = 0.
    """

    states: list[MmppState] = Field(min_length=2)
    generator_: list[list[Rate]] | None = Field(None, alias="generator")

    @model_validator(mode="after")
    def _check_mmpp(self) -> Mmpp:
        holds = [s.hold is not None for s in self.states]
        n = len(self.states)
        if self.generator_ is None:
            if not all(holds):
                raise ValueError("mmpp: give every state a `hold` time, or give `generator`")
        else:
            if any(holds):
                raise ValueError("mmpp: give either `hold` per state or `generator`, not both")
            if len(self.generator_) != n or any(len(r) != n for r in self.generator_):
                raise ValueError(f"mmpp `generator` must be a {n}x{n} matrix (one row per state)")
            q = np.array(self.generator_, dtype=float)
            off = q - np.diag(np.diag(q))
            if np.any(off < 0):
                raise ValueError("mmpp `generator` off-diagonal rates must be >= 0")
        q = self.matrix()
        if np.any(np.diag(q) >= 0):
            raise ValueError("mmpp: every state must be left at some rate (a row of zeros)")
        self.stationary()  # raises if not irreducible
        return self

    def matrix(self) -> np.ndarray:
        """The generator matrix Q (1/s), rows summing to 0."""
        n = len(self.states)
        if self.generator_ is not None:
            q = np.array(self.generator_, dtype=float)
            np.fill_diagonal(q, 0.0)
        else:
            out = np.array([1.0 / s.hold for s in self.states])  # type: ignore[operator]
            q = np.repeat(out[:, None] / (n - 1), n, axis=1)
            np.fill_diagonal(q, 0.0)
        np.fill_diagonal(q, -q.sum(axis=1))
        return q

    def stationary(self) -> np.ndarray:
        q = self.matrix()
        n = q.shape[0]
        a = np.vstack([q.T[:-1], np.ones(n)])
        b = np.zeros(n)
        b[-1] = 1.0
        try:
            pi = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            pi = None
        if pi is None or np.any(pi < -1e-12) or not np.allclose(pi @ q, 0, atol=1e-9):
            raise ValueError(
                "mmpp states must form one irreducible chain (each reaches the others)"
            )
        return np.clip(pi, 0, None) / np.clip(pi, 0, None).sum()

    def mean_rate(self) -> float:
        return float(self.stationary() @ np.array([s.rate for s in self.states]))

    def generator(self, rng: np.random.Generator, base_dir: Path) -> SourceGenerator:
        return _MmppGenerator(self, rng)


class _MmppGenerator(GridGenerator):
    def __init__(self, cfg: Mmpp, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rates = np.array([s.rate for s in cfg.states])
        super().__init__(cfg.start, cfg.end, block_seconds(float(self.rates.max())), math.inf)
        q = cfg.matrix()
        self.out = -np.diag(q)
        jump = q / self.out[:, None]
        np.fill_diagonal(jump, 0.0)
        self.jump_cdf = np.cumsum(jump, axis=1)
        self.pi = cfg.stationary()
        self.path_rng, self.rng = split_rng(rng, 2)
        self.state = -1
        self.t_next = 0.0

    def _produce(self, k: int) -> Part:
        b0, b1 = self._bounds(k)
        if self.state < 0:  # stationary start; sojourns are memoryless
            self.state = int(np.searchsorted(np.cumsum(self.pi), self.path_rng.random(), "right"))
            self.state = min(self.state, len(self.pi) - 1)
            self.t_next = b0 + self.path_rng.exponential(1.0 / self.out[self.state])
        seg_a, seg_b, seg_s = [], [], []
        t = b0
        # One iteration per state change (not per request).
        while True:
            seg_a.append(t)
            seg_s.append(self.state)
            if self.t_next >= b1:
                seg_b.append(b1)
                break
            seg_b.append(self.t_next)
            t = self.t_next
            row = self.jump_cdf[self.state]
            nxt = int(np.searchsorted(row, self.path_rng.random() * row[-1], "right"))
            self.state = min(nxt, len(row) - 1)
            self.t_next = t + self.path_rng.exponential(1.0 / self.out[self.state])
        a, b = np.array(seg_a), np.array(seg_b)
        lam = self.rates[np.array(seg_s)]
        counts = self.rng.poisson(lam * (b - a))
        u = self.rng.random(int(counts.sum()))
        times = np.repeat(a, counts) + u * np.repeat(b - a, counts)
        times.sort()
        return Part(times, None, None)

    def expected_count(self, duration: float) -> float:
        span = max(0.0, self.cfg.limit(duration) - self.start)
        return float(self.pi @ self.rates) * span


__all__ = [
    "Batch",
    "Diurnal",
    "Mmpp",
    "Part",
    "Phase",
    "Phases",
    "PhasesField",
    "SourceBase",
    "SourceGenerator",
    "Spike",
    "Steady",
]
