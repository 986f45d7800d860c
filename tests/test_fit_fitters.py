"""`sim fit` fits against known ground truth: generated arrivals and handler times, a Power
Tuning curve from a known cpu_bound, cold starts from a known keep-alive."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import stats as sps

from sim.distributions import Distribution
from sim.fit.build import _histogram_fit, _yaml_dist
from sim.fit.fitters import (
    ALPHA,
    fit_arrivals,
    fit_keep_alive,
    fit_power,
    fit_times,
    idle_gaps,
    poisson_rate_ci,
)
from sim.fit.readers import Histogram, Requests
from sim.fit.stream import ARRIVALS, BUSY, COVER

DIST = TypeAdapter(Distribution)


def _poisson(rate_fn, t_max: float, rate_max: float, rng: np.random.Generator) -> np.ndarray:
    """Thinning (Lewis-Shedler), independent of the code under test."""
    n = rng.poisson(rate_max * t_max)
    t = np.sort(rng.uniform(0, t_max, n))
    return t[rng.random(n) < rate_fn(t) / rate_max]


def test_garwood_interval_by_hand() -> None:
    # n = 0: upper = chi2(0.975, 2) / 2 = -ln(0.025) = 3.689 events
    lo, hi = poisson_rate_ci(0, 1.0)
    assert lo == 0 and hi == pytest.approx(-math.log(0.025))
    lo, hi = poisson_rate_ci(100, 10.0)
    assert (lo, hi) == pytest.approx((8.136, 12.163), abs=1e-3)  # tables: 81.36, 121.63


def test_steady_rate_recovered_within_its_ci() -> None:
    rng = np.random.default_rng(11)
    t = np.sort(rng.uniform(0, 3600, rng.poisson(5 * 3600)))
    fit = fit_arrivals(t, 3600.0)
    assert fit.rate_ci[0] <= 5.0 <= fit.rate_ci[1]
    assert fit.chosen == "steady"
    assert fit.dispersion_p > 0.05  # a Poisson process is not over-dispersed


def test_step_change_is_phases() -> None:
    rng = np.random.default_rng(3)
    t = _poisson(lambda x: np.where(x < 1800, 2.0, 10.0), 3600, 10.0, rng)
    fit = fit_arrivals(t, 3600.0)
    assert fit.chosen == "phases"
    assert fit.dispersion_p < 1e-6
    steps = fit.source()["phases"]["steps"]
    assert len(steps) == 2
    assert steps[0]["duration"] == 1800
    assert steps[0]["rate"] == pytest.approx(2.0, rel=0.1)
    assert steps[1]["rate"] == pytest.approx(10.0, rel=0.05)


def test_diurnal_peak_hour_and_amplitude() -> None:
    rng = np.random.default_rng(5)
    peak = 14 * 3600.0

    def rate(x: np.ndarray) -> np.ndarray:
        return 2.0 * (1 + 0.6 * np.cos(2 * np.pi * (x - peak) / 86400))

    t = _poisson(rate, 86400, 3.2, rng)
    fit = fit_arrivals(t, 86400.0, t0_epoch=0.0)  # the window starts at 00:00 UTC
    assert fit.chosen == "diurnal"
    src = fit.source()["diurnal"]
    assert src["peak"] == pytest.approx(peak, abs=1800)
    assert src["amplitude"] == pytest.approx(0.6, abs=0.05)
    assert src["mean"] == pytest.approx(2.0, rel=0.03)


@pytest.mark.parametrize(
    ("truth", "family"),
    [(sps.lognorm(s=0.5, scale=0.1), "lognormal"), (sps.gamma(3.0, scale=0.05), "gamma")],
)
def test_handler_time_recovered_by_ks(truth, family: str) -> None:
    rng = np.random.default_rng(7)
    x = truth.rvs(20_000, random_state=rng)
    fit = fit_times(x * 1e3)
    assert fit.best == family and fit.chosen == family
    # The written scenario distribution, sampled by the simulator's own sampler, against fresh
    # ground truth: two-sample KS at the stated level.
    dist = DIST.validate_python(_yaml_dist(fit.dist))
    sim = dist.sample(5000, np.random.default_rng(8))
    assert sps.ks_2samp(sim, truth.rvs(5000, random_state=9)).pvalue > ALPHA


def test_mixture_falls_back_to_empirical_percentiles() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate(
        [rng.lognormal(np.log(0.01), 0.2, 5000), rng.lognormal(np.log(1), 0.2, 5000)]
    )
    fit = fit_times(x * 1e3)
    assert fit.chosen == "empirical"
    assert fit.ks[fit.best]["p"] < ALPHA  # type: ignore[index]
    pct = fit.dist["percentiles"]
    assert pct[50.0] == pytest.approx(float(np.percentile(x, 50)))


def test_power_tuning_recovers_cpu_bound() -> None:
    # duration = T (1 - c) + T c / min(M / 1769, 1), with 1% noise: the Lambda model's rule
    c, t_native = 0.6, 200.0
    mem = np.array([128, 256, 512, 1024, 1536, 1769, 2048, 3008], dtype=float)
    rng = np.random.default_rng(4)
    d = t_native * (1 - c) + t_native * c / np.minimum(mem / 1769.0, 1.0)
    d *= 1 + rng.normal(0, 0.01, mem.size)
    fit = fit_power(mem, d)
    assert abs(fit.cpu_bound - c) < 0.02
    assert fit.native_ms == pytest.approx(t_native, rel=0.02)
    assert fit.residual_rms_ms < 0.02 * d.mean()
    # noiseless: exact
    exact = fit_power(mem, t_native * (1 - c) + t_native * c / np.minimum(mem / 1769.0, 1.0))
    assert exact.cpu_bound == pytest.approx(c, abs=1e-9)


def test_histogram_percentiles_like_histogram_quantile() -> None:
    h = Histogram(np.array([0.05, 0.1, 0.25, 0.5, np.inf]), np.array([20, 60, 90, 100, 100.0]))
    fit = _histogram_fit(h)
    # p50: 50th of 100 lies in (0.05, 0.1] holding ranks 20..60 -> 0.05 + 30/40 * 0.05
    assert fit.percentiles_ms["p50"] == pytest.approx(87.5)
    assert fit.percentiles_ms["p90"] == pytest.approx(250.0)
    assert fit.percentiles_ms["p100"] == pytest.approx(500.0)  # +Inf capped at the last bound


def _seconds(arrival, busy, cold=None) -> tuple[np.ndarray, Requests]:
    """Per-second channels from second 0 of requests added in a shuffled order (the summaries
    must not depend on it)."""
    req = Requests()
    order = np.random.default_rng(0).permutation(arrival.size)
    for i in order:
        init = 0.0 if cold is not None and cold[i] else float("nan")
        req.add(float(arrival[i]), float(busy[i]) * 1e3, init_ms=init)
    req.finish()
    secs, ch = req.buckets.compact()
    assert secs[0] == 0
    return ch, req


def test_idle_gaps_and_busy_seconds_by_hand() -> None:
    arrival = np.array([0.0, 0.5, 3.0, 10.0, 10.2])
    busy = np.array([1.0, 1.0, 0.5, 0.1, 0.05])
    ch, _ = _seconds(arrival, busy)
    gaps = idle_gaps(ch)
    # ends: 1, 1.5, 3.5, 10.1; second 0: window start; second 3: 3 - 1.5; second 10: 10 - 3.5
    assert np.isinf(gaps[0]) and gaps[3] == pytest.approx(1.5) and gaps[10] == pytest.approx(6.5)
    assert np.isnan(gaps[[1, 2, 4, 9]]).all()
    # busy seconds per second: [0,1) holds 1 + 0.5; [1,2) holds 0.5 of the second request
    busy_s = ch[BUSY] + np.cumsum(ch[COVER])
    assert busy_s[:4] == pytest.approx([1.5, 0.5, 0.0, 0.5])
    assert busy_s[10] == pytest.approx(0.15)
    assert ch[ARRIVALS][[0, 3, 10]].tolist() == [2, 1, 2]
    # a request running across a second boundary makes the next second's gap 0
    ch, _ = _seconds(np.array([0.0, 1.0, 2.2]), np.array([1.5, 0.1, 0.1]))
    assert idle_gaps(ch)[1] == 0.0 and idle_gaps(ch)[2] == pytest.approx(0.7)


def test_keep_alive_estimate_separates_cold_from_warm() -> None:
    rng = np.random.default_rng(1)
    gaps = rng.uniform(0, 1500, 400)
    arrival = np.cumsum(gaps)
    busy = np.full(arrival.size, 0.05)
    real = np.r_[np.inf, arrival[1:] - (arrival[:-1] + busy[:-1])]  # by hand: no overlaps
    cold = real > 600.0  # an environment lives 600 s after its last request
    ch, _ = _seconds(arrival, busy, cold)
    k = fit_keep_alive(ch)
    assert k["estimate"]["accuracy"] == 1.0
    assert 550 < k["estimate"]["threshold_s"] <= 600
    assert k["cold_after_gaps_over_default"] == 1.0
    assert k["cold_after_gaps_within_default"] == 0.0
    by = {r["gap_from_s"]: r for r in k["by_idle_gap"]}
    assert by[600.0]["requests"] == int(((real >= 600) & (real < 900)).sum())


def test_power_tuning_file_from_known_cpu_bound(tmp_path) -> None:
    import json

    from sim.fit.readers import read

    c, t_native = 0.35, 120.0
    mem = [128, 256, 512, 1024, 2048, 3008]
    rng = np.random.default_rng(12)
    stats = [
        {
            "value": m,
            "averagePrice": 0.0,
            "averageDuration": (t_native * (1 - c) + t_native * c / min(m / 1769.0, 1.0))
            * (1 + rng.normal(0, 0.01)),
        }
        for m in mem
    ]
    p = tmp_path / "pt.json"
    p.write_text(json.dumps({"results": {"power": "128", "stats": stats}}))
    obs = read(p)
    assert obs.format == "power-tuning"
    fit = fit_power(obs.power.memory_mb, obs.power.duration_ms)  # type: ignore[union-attr]
    assert abs(fit.cpu_bound - c) < 0.02
