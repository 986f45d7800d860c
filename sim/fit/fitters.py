"""Fits with their goodness of fit: arrivals, handler time, cold-start init, cpu_bound, keep-alive.

Stated criteria (docs/model.md, "Fitting from your own data"):
- Arrival rate: the Poisson MLE N/W with the exact (Garwood) 95% interval. The parametric summary
  is the candidate with the lowest BIC (k ln(bins) - 2 ln L, Poisson likelihood of the per-bin
  counts) among `steady` (k=1), `phases` (piecewise-constant; k = 2 x segments - 1; segments by
  binary segmentation, a split kept when its likelihood-ratio test is significant at 1% after a
  Bonferroni correction over the split positions) and `diurnal` (k=3; windows of 12 h or more).
  The index of dispersion test (variance / mean of the counts; (n-1) D ~ chi2(n-1) under a
  homogeneous Poisson process) is reported too.
- Handler time: MLE lognormal, gamma, exponential and pareto; the best is the one with the
  smallest Kolmogorov-Smirnov statistic D; it is used when its KS p-value >= ALPHA (0.05),
  otherwise the empirical percentiles are. (The p-value treats the parameters as known, so it is
  optimistic: Lilliefors; the statistic itself is what ranks the candidates.)
- cpu_bound from Power Tuning: least squares of duration = T (1 - c) + T c / min(vCPU, threads)
  over the memory sizes, with vCPU = memory / 1769 MB (the Lambda platform's own model,
  sim.platforms.lambda_spec), the residual RMS and the standard error of c (delta method).
- Keep-alive: "cold iff the idle gap before the request exceeds T", T chosen to classify the
  observed cold starts best, next to the default (10 minutes).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from sim import defaults as D
from sim.fit.stream import ARRIVALS, CARRY, COLD, FIRST, FIRST_COLD, LAST_END
from sim.records import LogHistogram

ALPHA = 0.05
MAX_FIT_SAMPLES = 100_000  # a seeded subsample above this (KS on 100k points is decisive anyway)
PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)
# knots of a written empirical distribution: every percentile, and the far tail
EMPIRICAL_KNOTS = (*range(0, 100), 99.5, 99.9, 100)
DIURNAL_MIN_S = 12 * 3600.0
MAX_PHASES = 12
SPLIT_LEVEL = 0.01


# --------------------------------------------------------------------------------------------
# Arrivals


def poisson_rate_ci(n: int, window_s: float) -> tuple[float, float]:
    """Exact (Garwood) 95% interval of a Poisson rate from n events in window_s."""
    lo = sps.chi2.ppf(0.025, 2 * n) / 2 if n > 0 else 0.0
    hi = sps.chi2.ppf(0.975, 2 * n + 2) / 2
    return float(lo / window_s), float(hi / window_s)


def _loglik(counts: np.ndarray, mean: np.ndarray) -> float:
    mean = np.maximum(mean, 1e-12)
    return float(np.sum(sps.poisson.logpmf(counts, mean)))


def _segments(counts: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Binary segmentation of counts into constant-rate runs: a run is split where the
    likelihood ratio is largest, if it is significant at SPLIT_LEVEL after Bonferroni."""
    cum = np.concatenate([[0.0], np.cumsum(counts, dtype=float)])

    def seg_ll(a: int, b: int) -> float:  # profile log-likelihood without the log(c!) constant
        s, n = cum[b] - cum[a], b - a
        return s * math.log(s / n) - s if s > 0 else 0.0

    segs = [(0, counts.size)]
    while len(segs) < MAX_PHASES:
        best = None
        for i, (a, b) in enumerate(segs):
            if b - a < 2 * min_len:
                continue
            ks = np.arange(a + min_len, b - min_len + 1)
            s1, s2 = cum[ks] - cum[a], cum[b] - cum[ks]
            n1, n2 = ks - a, b - ks
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = np.where(s1 > 0, s1 * np.log(s1 / n1) - s1, 0.0) + np.where(
                    s2 > 0, s2 * np.log(s2 / n2) - s2, 0.0
                )
            j = int(np.argmax(ll))
            # likelihood-ratio test of one change point, Bonferroni over the positions tried
            need = float(sps.chi2.isf(SPLIT_LEVEL / ks.size, 1))
            gain = 2 * (float(ll[j]) - seg_ll(a, b)) - need
            if gain > 0 and (best is None or gain > best[0]):
                best = (gain, i, int(ks[j]))
        if best is None:
            break
        _, i, k = best
        a, b = segs[i]
        segs[i : i + 1] = [(a, k), (k, b)]
    return segs


@dataclass
class ArrivalFit:
    count: int
    window_s: float
    bin_s: float
    counts: np.ndarray  # per bin
    rate: float
    rate_ci: tuple[float, float]
    dispersion: float
    dispersion_p: float
    candidates: dict[str, dict[str, Any]]
    chosen: str
    fitted_rate: np.ndarray  # per bin, of the chosen candidate (per second)

    def source(self) -> dict[str, Any]:
        """The chosen parametric summary as a `workload.arrivals` entry."""
        return {self.chosen: self.candidates[self.chosen]["source"]}

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "window_s": self.window_s,
            "rate_per_s": self.rate,
            "rate_ci95": list(self.rate_ci),
            "bin_s": self.bin_s,
            "dispersion_index": self.dispersion,
            "dispersion_p": self.dispersion_p,
            "criterion": "lowest BIC: k ln(bins) - 2 ln L, Poisson likelihood of per-bin counts",
            "chosen": self.chosen,
            "candidates": {
                k: {kk: vv for kk, vv in v.items() if kk != "curve"}
                for k, v in self.candidates.items()
            },
        }


def default_bin_s(window_s: float) -> float:
    """Counts per minute, per second for windows under 20 minutes."""
    return 60.0 if window_s >= 20 * 60 else 1.0


def fit_arrivals(
    t: np.ndarray, window_s: float, t0_epoch: float = 0.0, bin_s: float | None = None
) -> ArrivalFit:
    """`t`: arrival offsets in [0, window_s); `t0_epoch` places the window on the clock;
    counts per minute (per second for windows under 20 minutes) unless `bin_s` is given."""
    bin_s = bin_s or default_bin_s(window_s)
    nb = max(1, math.ceil(window_s / bin_s - 1e-9))
    counts = np.bincount(np.minimum((t // bin_s).astype(np.int64), nb - 1), minlength=nb)
    return fit_arrival_counts(counts, window_s, bin_s, t0_epoch)


def per_bin(
    seconds: tuple[np.ndarray, np.ndarray], t0: float, window_s: float, bin_s: float
) -> np.ndarray:
    """Arrivals per bin of `bin_s` seconds over [t0, t0 + window_s), from per-second buckets
    (SecondBuckets.compact; t0 and bin_s whole seconds)."""
    secs, ch = seconds
    nb = max(1, math.ceil(window_s / bin_s - 1e-9))
    idx = np.clip((secs - round(t0)) // round(bin_s), 0, nb - 1)
    return np.bincount(idx, weights=ch[ARRIVALS], minlength=nb).astype(np.int64)


def fit_arrival_counts(
    counts: np.ndarray, window_s: float, bin_s: float, t0_epoch: float = 0.0
) -> ArrivalFit:
    """Fit from the counts per bin of `bin_s` seconds over [0, window_s)."""
    counts = np.asarray(np.round(counts), dtype=np.int64)
    n = int(counts.sum())
    nb = counts.size
    width = np.full(nb, bin_s)
    width[-1] = window_s - bin_s * (nb - 1)
    rate = n / window_s
    full = counts[width >= bin_s - 1e-9]  # a partial last bin would inflate the variance
    m = full.mean() if full.size else 0.0
    disp = float(full.var(ddof=1) / m) if full.size > 1 and m > 0 else 1.0
    disp_p = float(sps.chi2.sf((full.size - 1) * disp, full.size - 1)) if full.size > 1 else 1.0

    cands: dict[str, dict[str, Any]] = {}
    mean_steady = rate * width
    ll = _loglik(counts, mean_steady)
    cands["steady"] = {
        "k": 1,
        "loglik": ll,
        "bic": 1 * math.log(nb) - 2 * ll,
        "source": {"rate": rate},
        "curve": np.full(nb, rate),
    }
    if nb >= 4:
        segs = _segments(counts, min_len=max(2, nb // 60))
        curve = np.empty(nb)
        steps = []
        for a, b in segs:
            r = float(counts[a:b].sum() / width[a:b].sum())
            curve[a:b] = r
            steps.append({"duration": float(width[a:b].sum()), "rate": r})
        if len(segs) > 1:
            ll = _loglik(counts, curve * width)
            k = 2 * len(segs) - 1
            cands["phases"] = {
                "k": k,
                "loglik": ll,
                "bic": k * math.log(nb) - 2 * ll,
                "source": {"steps": steps},
                "curve": curve,
            }
    if window_s >= DIURNAL_MIN_S and nb >= 8:
        mid = (np.arange(nb) * bin_s + width / 2) + t0_epoch
        w = 2 * math.pi / D_DAY
        x = np.column_stack([np.ones(nb), np.cos(w * mid), np.sin(w * mid)])
        beta, *_ = np.linalg.lstsq(x, counts / width, rcond=None)
        mean_r = float(beta[0])
        if mean_r > 0:
            amp = min(1.0, math.hypot(beta[1], beta[2]) / mean_r)
            peak = (math.atan2(beta[2], beta[1]) / w) % D_DAY
            curve = mean_r * (1 + amp * np.cos(w * (mid - peak)))
            ll = _loglik(counts, curve * width)
            cands["diurnal"] = {
                "k": 3,
                "loglik": ll,
                "bic": 3 * math.log(nb) - 2 * ll,
                "source": {"mean": mean_r, "amplitude": amp, "period": D_DAY, "peak": peak},
                "peak_hour_utc": peak / 3600.0,
                "curve": curve,
            }
    chosen = min(cands, key=lambda c: cands[c]["bic"])
    return ArrivalFit(
        n,
        window_s,
        bin_s,
        counts,
        rate,
        poisson_rate_ci(n, window_s),
        disp,
        disp_p,
        cands,
        chosen,
        cands[chosen]["curve"],
    )


D_DAY = 86400.0


# --------------------------------------------------------------------------------------------
# Handler time (and init time)


def _subsample(x: np.ndarray, seed: int = 0) -> np.ndarray:
    if x.size <= MAX_FIT_SAMPLES:
        return x
    return np.random.default_rng(seed).choice(x, MAX_FIT_SAMPLES, replace=False)


def _candidates(x: np.ndarray) -> dict[str, tuple[Any, dict[str, Any]]]:
    """MLE fits in seconds: name -> (frozen scipy distribution, scenario distribution)."""
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    lx = np.log(x)
    mu, sigma = float(lx.mean()), float(lx.std())
    if sigma > 0:
        out["lognormal"] = (
            sps.lognorm(s=sigma, scale=math.exp(mu)),
            {"dist": "lognormal", "mu": mu, "sigma": sigma},
        )
    mean = float(x.mean())
    out["exponential"] = (sps.expon(scale=mean), {"dist": "exponential", "mean": mean})
    if x.std() > 0:
        shape, _loc, scale = sps.gamma.fit(x, floc=0)
        out["gamma"] = (
            sps.gamma(shape, scale=scale),
            {"dist": "gamma", "mean": shape * scale, "cv": 1 / math.sqrt(shape)},
        )
        xm = float(x.min())
        alpha = x.size / float(np.sum(np.log(x / xm)))
        out["pareto"] = (
            sps.pareto(alpha, scale=xm),
            {"dist": "pareto", "alpha": alpha, "scale": xm},
        )
    return out


@dataclass
class TimeFit:
    """A fitted time distribution (seconds) with its KS table; `dist` is scenario-ready."""

    n: int
    percentiles_ms: dict[str, float]
    ks: dict[str, dict[str, float]]
    best: str | None
    chosen: str  # best, or "empirical"
    dist: dict[str, Any]
    frozen: Any = field(default=None, repr=False)  # the scipy distribution of `best`
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def scaled(self, factor: float) -> dict[str, Any]:
        """`dist` with every time multiplied by `factor` (all four families are scale families)."""
        return scale_dist(self.dist, factor)

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "percentiles_ms": self.percentiles_ms,
            "test": f"Kolmogorov-Smirnov, level {ALPHA}",
            "ks": self.ks,
            "best": self.best,
            "chosen": self.chosen,
            "distribution": self.dist,
        }


def scale_dist(dist: dict[str, Any], f: float) -> dict[str, Any]:
    d = dict(dist)
    kind = d["dist"]
    if kind == "lognormal":
        d["mu"] = d["mu"] + math.log(f)
    elif kind in ("exponential", "gamma"):
        d["mean"] = d["mean"] * f
    elif kind == "pareto":
        d["scale"] = d["scale"] * f
    elif kind == "empirical":
        d["percentiles"] = {q: v * f for q, v in d["percentiles"].items()}
    return d


def fit_times(ms: np.ndarray, hist: LogHistogram | None = None, n: int | None = None) -> TimeFit:
    """Fit a time distribution to observations in milliseconds (non-finite ones dropped): all
    of them, or a uniform sample of `n` observations whose percentiles are read from `hist` (a
    histogram of all n, sim.records.LogHistogram: within its relative error)."""
    x_all = ms[np.isfinite(ms)] / 1e3
    if x_all.size == 0:
        raise ValueError("no finite durations")
    if hist is not None and n is not None and n > x_all.size:

        def pctl(q: float) -> float:
            rank = min(max(math.ceil(q / 100 * n) - 1, 0), n - 1)
            return float(hist.value_at_rank(np.array([rank]))[0]) / 1e3

        count = n
    else:

        def pctl(q: float) -> float:
            return float(np.percentile(x_all, q))

        count = int(x_all.size)
    pct = {f"p{q:g}": pctl(q) * 1e3 for q in PERCENTILES}
    x = _subsample(x_all[x_all > 0])
    ks: dict[str, dict[str, float]] = {}
    frozen: dict[str, Any] = {}
    dists: dict[str, dict[str, Any]] = {}
    if x.size >= 8:
        for name, (fz, d) in _candidates(x).items():
            r = sps.kstest(x, fz.cdf)
            ks[name] = {"D": float(r.statistic), "p": float(r.pvalue)}
            frozen[name], dists[name] = fz, d
    best = min(ks, key=lambda k: ks[k]["D"]) if ks else None
    knots = np.maximum.accumulate([pctl(q) for q in EMPIRICAL_KNOTS])
    empirical = {
        "dist": "empirical",
        "percentiles": {float(q): float(v) for q, v in zip(EMPIRICAL_KNOTS, knots, strict=True)},
    }
    if best is not None and ks[best]["p"] >= ALPHA:
        chosen, dist = best, dists[best]
    else:
        chosen, dist = "empirical", empirical
    return TimeFit(
        count,
        pct,
        ks,
        best,
        chosen,
        dist,
        frozen.get(best) if best else None,
        x,
    )


# --------------------------------------------------------------------------------------------
# cpu_bound from Power Tuning


def lambda_speed_x(memory_mb: np.ndarray, threads: int = 1) -> np.ndarray:
    """1 / min(vCPU, threads): the factor the cpu-bound share of handler time is multiplied by,
    with the Lambda platform's vCPU model (sim.platforms.lambda_spec.LambdaSpec.vcpu)."""
    from sim.platforms.lambda_spec import LambdaSpec

    v = np.array([LambdaSpec(name="fit", type="lambda", memory=float(m)).vcpu for m in memory_mb])
    return 1.0 / np.minimum(v, threads)


@dataclass
class PowerFit:
    cpu_bound: float
    cpu_bound_se: float
    native_ms: float  # T: the handler time at 1 vCPU
    residual_rms_ms: float
    memory_mb: np.ndarray
    duration_ms: np.ndarray
    fitted_ms: np.ndarray

    def summary(self) -> dict[str, Any]:
        return {
            "model": "duration = T (1 - c) + T c / min(memory / 1769 MB, threads=1)",
            "cpu_bound": self.cpu_bound,
            "cpu_bound_se": self.cpu_bound_se,
            "native_ms": self.native_ms,
            "residual_rms_ms": self.residual_rms_ms,
            "points": [
                {"memory_mb": float(m), "observed_ms": float(o), "fitted_ms": float(f)}
                for m, o, f in zip(self.memory_mb, self.duration_ms, self.fitted_ms, strict=True)
            ],
        }


def fit_power(memory_mb: np.ndarray, duration_ms: np.ndarray) -> PowerFit:
    x = lambda_speed_x(memory_mb)
    a_mat = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(a_mat, duration_ms, rcond=None)
    a, b = float(coef[0]), float(coef[1])
    fitted = a_mat @ coef
    resid = duration_ms - fitted
    dof = max(1, x.size - 2)
    s2 = float(resid @ resid) / dof
    t_native = a + b
    c = b / t_native if t_native > 0 else 0.0
    se = math.nan
    if x.size > 2 and np.ptp(x) > 0 and t_native > 0:
        cov = s2 * np.linalg.inv(a_mat.T @ a_mat)
        grad = np.array([-b, a]) / t_native**2  # dc/da, dc/db
        se = float(math.sqrt(max(0.0, float(grad @ cov @ grad))))
    return PowerFit(
        float(min(1.0, max(0.0, c))),
        se,
        t_native,
        float(math.sqrt(np.mean(resid**2))),
        memory_mb,
        duration_ms,
        fitted,
    )


# --------------------------------------------------------------------------------------------
# Keep-alive: cold starts against idle gaps


GAP_EDGES_S = (0.0, 1.0, 10.0, 60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, math.inf)


def idle_gaps(ch: np.ndarray) -> np.ndarray:
    """Per second of the window (channels of sim.fit.stream.SecondBuckets, dense), the idle gap
    before its first arrival: that arrival minus the latest end of the requests that ended in
    earlier seconds; 0 when a request from an earlier second runs into this one; inf when
    nothing ended before (the window's start); nan for seconds without arrivals. Exact except
    that a request running into the second counts as overlapping (a gap under 1 s read as 0)."""
    prev_end = np.concatenate([[-math.inf], np.maximum.accumulate(ch[LAST_END])[:-1]])
    carry = np.cumsum(ch[CARRY]) > 0.5
    with np.errstate(invalid="ignore"):
        gap = np.where(carry, 0.0, np.maximum(ch[FIRST] - prev_end, 0.0))
    return np.where(ch[ARRIVALS] > 0, gap, math.nan)


def fit_keep_alive(
    ch: np.ndarray, stream_longest: list[float] | None = None, unordered: int = 0
) -> dict[str, Any]:
    """Cold starts against idle gaps from per-second buckets (`idle_gaps`): the first arrival of
    each second has its gap; later arrivals in the same second follow one less than 1 s before."""
    gaps = idle_gaps(ch)
    first = np.isfinite(gaps)
    first_cold = (ch[FIRST_COLD] == ch[FIRST]) & (ch[ARRIVALS] > 0)
    g_all, c_all = gaps[first], first_cold[first]
    rest_n = int(ch[ARRIVALS].sum() - np.count_nonzero(ch[ARRIVALS] > 0))
    rest_cold = int(ch[COLD].sum() - first_cold.sum())
    rows = []
    for lo, hi in itertools.pairwise(GAP_EDGES_S):
        sel = (g_all >= lo) & (g_all < hi)
        k, c = int(sel.sum()), int(c_all[sel].sum())
        if lo == 0.0:
            k, c = k + rest_n, c + rest_cold
        rows.append(
            {
                "gap_from_s": lo,
                "gap_to_s": hi,
                "requests": k,
                "cold": c,
                "cold_share": c / k if k else None,
            }
        )
    idle = g_all > 0
    g, c = g_all[idle], c_all[idle]
    est = None
    if g.size and c.any() and (~c).any():
        order = np.argsort(g, kind="stable")
        g, c = g[order], c[order]
        # rule "cold iff gap > g[i]": errors = cold at or below + warm above
        cold_below = np.cumsum(c)
        warm_above = (~c).sum() - np.cumsum(~c)
        err = cold_below + warm_above
        i = int(np.argmin(err))
        est = {"threshold_s": float(g[i]), "accuracy": float(1 - err[i] / g.size)}
    default = D.LAMBDA_KEEP_ALIVE_S
    over, under = g_all > default, (g_all > 0) & (g_all <= default)
    out: dict[str, Any] = {
        "default_keep_alive_s": default,
        "resolution": "idle gaps before the first request of each second (exact); later "
        "requests of a second are in the 0-1 s row",
        "by_idle_gap": rows,
        "estimate": est,
        "cold_after_gaps_over_default": float(c_all[over].mean()) if over.any() else None,
        "cold_after_gaps_within_default": float(c_all[under].mean()) if under.any() else None,
    }
    if stream_longest:
        # Within one log stream (one execution environment) every reuse is warm: the longest
        # such gap is a lower bound on the environment's idle lifetime.
        out["longest_warm_reuse_s"] = max(stream_longest)
        out["environments"] = len(stream_longest)
        if unordered:
            out["streams_out_of_order"] = unordered
    return out
