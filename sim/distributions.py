"""Service-time and latency distributions.

One protocol for all: `sample(n, rng) -> ndarray` draws in bulk (never one Python call per value),
`mean()` is the analytic mean (tests compare against it). A bare duration in a scenario ("200ms")
means `constant`. Human parameterisations are converted once, at validation:
lognormal by `median` + `p99` (or `mu`/`sigma`), gamma by `mean` + `cv`, pareto by `scale`/`alpha`
or `mean`/`alpha`, empirical by `values` (sampled with replacement) or `percentiles` (piecewise
linear between given quantiles, as the Azure durations file gives them).
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from sim.config import Duration, Strict, check_input_file
from sim.errors import InputError

# A distribution whose mean exceeds this (seconds, ~32 years) is a mistake in units, not a model.
MAX_MEAN_S = 1e9
_Z99 = NormalDist().inv_cdf(0.99)  # standard normal 99th percentile, 2.3263... (= scipy ndtri)


class Constant(Strict):
    dist: Literal["constant"] = "constant"
    value: Duration = Field(ge=0)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.value)

    def mean(self) -> float:
        return self.value


class Exponential(Strict):
    dist: Literal["exponential"]
    mean_: Duration = Field(alias="mean", gt=0)
    shift: Duration = Field(0.0, ge=0, description="added to every draw")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(self.mean_, n) + self.shift

    def mean(self) -> float:
        return self.mean_ + self.shift


class Lognormal(Strict):
    """Lognormal by median + p99 (human), or by mu/sigma of the underlying normal (seconds)."""

    dist: Literal["lognormal"]
    median: Duration | None = Field(None, gt=0)
    p99: Duration | None = Field(None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(None, ge=0)
    shift: Duration = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _resolve(self) -> Lognormal:
        if self.mu is not None and self.sigma is not None:
            return self
        if self.median is None or self.p99 is None:
            raise ValueError("lognormal needs either `median` and `p99`, or `mu` and `sigma`")
        if self.p99 < self.median:
            raise ValueError("lognormal `p99` must be at least `median`")
        self.mu = math.log(self.median)
        self.sigma = math.log(self.p99 / self.median) / _Z99
        return self

    @model_validator(mode="after")
    def _finite(self) -> Lognormal:
        # exp() overflows above ~709: such draws become inf and poison every sum downstream.
        assert self.mu is not None and self.sigma is not None
        log_mean = self.mu + self.sigma**2 / 2
        if log_mean > math.log(MAX_MEAN_S):
            raise ValueError(
                f"lognormal mu {self.mu:g}, sigma {self.sigma:g} give a mean of "
                f"exp(mu + sigma^2/2) = e^{log_mean:.4g} s, above the {MAX_MEAN_S:g} s (~32 "
                "years) a simulated duration may take"
            )
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.lognormal(self.mu, self.sigma, n) + self.shift  # type: ignore[arg-type]

    def mean(self) -> float:
        assert self.mu is not None and self.sigma is not None
        return math.exp(self.mu + self.sigma**2 / 2) + self.shift


class Gamma(Strict):
    dist: Literal["gamma"]
    mean_: Duration = Field(alias="mean", gt=0)
    cv: float = Field(gt=0, description="coefficient of variation, std/mean")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean_ / shape, n)

    def mean(self) -> float:
        return self.mean_


class Uniform(Strict):
    dist: Literal["uniform"]
    low: Duration = Field(ge=0)
    high: Duration

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("uniform `high` must be at least `low`")
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def mean(self) -> float:
        return (self.low + self.high) / 2


class Pareto(Strict):
    """Pareto (type I): P(X > x) = (scale/x)^alpha for x >= scale. Give `scale` or `mean`."""

    dist: Literal["pareto"]
    alpha: float = Field(gt=0)
    scale: Duration | None = Field(None, gt=0)
    mean_: Duration | None = Field(None, alias="mean", gt=0)
    cap: Duration | None = Field(None, gt=0, description="truncate draws above this")

    @model_validator(mode="after")
    def _resolve(self) -> Pareto:
        if self.scale is None:
            if self.mean_ is None:
                raise ValueError("pareto needs `scale` or `mean` (with `alpha`)")
            if self.alpha <= 1:
                raise ValueError("pareto with `mean` needs `alpha` > 1 (the mean is infinite)")
            self.scale = self.mean_ * (self.alpha - 1) / self.alpha
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        assert self.scale is not None
        x = self.scale * (1.0 - rng.random(n)) ** (-1.0 / self.alpha)
        return np.minimum(x, self.cap) if self.cap is not None else x

    def mean(self) -> float:
        assert self.scale is not None
        if self.cap is not None:
            a, s, c = self.alpha, self.scale, self.cap
            if a == 1:
                body = s * math.log(c / s)
            else:
                body = a * s**a * (c ** (1 - a) - s ** (1 - a)) / (1 - a)
            return body + c * (s / c) ** a
        return math.inf if self.alpha <= 1 else self.alpha * self.scale / (self.alpha - 1)


class Empirical(Strict):
    """Resample observed `values` (or a one-column `file`), or interpolate `percentiles`.

    `percentiles` maps percentile (0-100) to a duration; draws are piecewise linear between them
    (the inverse CDF), so a p0 and a p100 entry bound the support.
    """

    dist: Literal["empirical"]
    values: list[Duration] | None = None
    file: str | None = None
    percentiles: dict[float, Duration] | None = None
    _data: np.ndarray = PrivateAttr(default_factory=lambda: np.zeros(0))
    _q: np.ndarray = PrivateAttr(default_factory=lambda: np.zeros(0))

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Empirical:
        given = [x is not None for x in (self.values, self.file, self.percentiles)]
        if sum(given) != 1:
            raise ValueError("empirical needs exactly one of `values`, `file` or `percentiles`")
        if self.percentiles is not None:
            items = sorted(self.percentiles.items())
            q = np.array([p for p, _ in items], dtype=float)
            v = np.array([x for _, x in items], dtype=float)
            if len(q) < 2 or q[0] < 0 or q[-1] > 100:
                raise ValueError("empirical `percentiles` needs at least two keys within 0..100")
            if np.any(np.diff(v) < 0):
                raise ValueError("empirical `percentiles` values must not decrease")
            self._q, self._data = q / 100.0, v
            return self
        if self.file is not None:
            # Relative to the scenario's folder (pydantic context), as every companion file.
            path = Path(self.file)
            base = (info.context or {}).get("base_dir") if info is not None else None
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            try:
                check_input_file(path, what="empirical values file")
            except InputError as exc:
                raise ValueError(f"{path}: {exc.detail}") from None
            try:
                data = np.loadtxt(path, delimiter=",", ndmin=1, dtype=float)
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ValueError(f"{path}: expected one number per line ({first})") from None
        else:
            data = np.asarray(self.values, dtype=float)
        if data.size == 0 or np.any(data < 0) or not np.all(np.isfinite(data)):
            raise ValueError("empirical needs at least one finite, non-negative value")
        self._data = np.sort(data)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._q.size:
            u = rng.uniform(self._q[0], self._q[-1], n)
            return np.interp(u, self._q, self._data)
        return self._data[rng.integers(0, self._data.size, n)]

    def mean(self) -> float:
        if self._q.size:
            q, v = self._q, self._data
            area = float(np.sum(np.diff(q) * (v[1:] + v[:-1]) / 2))
            return area / float(q[-1] - q[0])
        return float(self._data.mean())


Distribution = Annotated[
    Constant | Exponential | Lognormal | Gamma | Uniform | Pareto | Empirical,
    Field(discriminator="dist"),
]


def coerce_distribution(value: Any) -> Any:
    """Before-validator: a bare duration (``"200ms"`` or a number) means a constant."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    if isinstance(value, dict) and "dist" not in value and "value" in value:
        return {"dist": "constant", **value}
    return value
