"""Back-test: simulate the fitted scenario on the observed platform; observed vs simulated.

Each row holds the observed value with its 95% interval where it has one (percentiles: the
distribution-free order-statistic interval; counts are exact), the simulated mean over the
replications with its Student-t 95% interval, and whether they agree: the intervals overlap (or,
for an exact observed value, it lies in the simulated interval; replayed counts must be equal).
Observed latency is what the logs time: Duration + Init Duration for Lambda, the handler time
otherwise; the simulated latency adds the platform's own overheads (Lambda's sandbox start-up on
cold starts), so a cold-heavy window shows that gap on purpose.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from sim.fit.build import Fit
from sim.fit.fitters import per_bin
from sim.records import LogHistogram, _order_stat_ci
from sim.statistics import t_interval


def _pct_ci(x: np.ndarray, q: float) -> tuple[float, list[float]]:
    xs = np.sort(x)
    lo, hi = _order_stat_ci(xs.size, q)
    return float(np.quantile(xs, q)), [float(xs[lo]), float(xs[hi])]


def _hist_pct_ci(h: LogHistogram, n: int, q: float) -> tuple[float, list[float]]:
    """As _pct_ci from a histogram of all n values (each value within its relative error)."""
    lo, hi = _order_stat_ci(n, q)
    v = h.value_at_rank(np.array([min(max(math.ceil(q * n) - 1, 0), n - 1), lo, hi]))
    return float(v[0]), [float(v[1]), float(v[2])]


def _agree(
    obs: float | None, obs_ci: list[float] | None, sim_ci: list[float] | None
) -> bool | None:
    if obs is None or sim_ci is None:
        return None
    lo, hi = obs_ci if obs_ci is not None else (obs, obs)
    tol = 1e-9 * max(abs(lo), abs(hi), abs(sim_ci[0]), abs(sim_ci[1]))  # float rounding only
    return bool(lo <= sim_ci[1] + tol and hi >= sim_ci[0] - tol)


def check_scenario(fit: Fit, scenario: dict[str, Any], replications: int) -> dict[str, Any]:
    """The fitted scenario with only the observed platform (the first: lambda)."""
    sc = copy.deepcopy(scenario)
    sc["platforms"] = sc["platforms"][:1]
    sc["replications"] = max(2, replications)
    return sc


def simulated_minute_counts(sc: Any, base_dir: Path, window_s: float) -> np.ndarray:
    """Per-minute arrival counts the scenario's workload generates (replication 0's stream)."""
    from sim.engine import make_workload, replication_seeds

    wl = make_workload(sc, replication_seeds(sc.seed, sc.replications)[0], base_dir)
    nb = max(1, math.ceil(window_s / 60 - 1e-9))
    counts = np.zeros(nb, dtype=np.int64)
    for chunk in wl.chunks(window_s, 3600.0):
        idx = np.minimum((np.asarray(chunk.arrival) // 60).astype(np.int64), nb - 1)
        counts += np.bincount(idx, minlength=nb)
    return counts


def backtest(
    fit: Fit, scenario: dict[str, Any], base_dir: Path, replications: int = 5
) -> dict[str, Any]:
    from sim.pricing.lambda_ import LambdaUsage, lambda_bill
    from sim.scenario import validate_scenario
    from sim.simulate import run_scenario

    data = check_scenario(fit, scenario, replications)
    sc = validate_scenario(data, file="<fitted scenario>", base_dir=base_dir.resolve())
    summary, runs = run_scenario(sc, base_dir, source="<fitted scenario>", workers=1, force=True)
    name = data["platforms"][0]["name"]
    p = summary["platforms"][name]
    rows: list[dict[str, Any]] = []

    def row(
        what: str,
        obs: float | None,
        obs_ci: list[float] | None,
        sim: float | None,
        sim_ci: list[float] | None,
        unit: str,
        agree: bool | None = None,
    ) -> None:
        rows.append(
            {
                "metric": what,
                "unit": unit,
                "observed": obs,
                "observed_ci95": obs_ci,
                "simulated": sim,
                "simulated_ci95": sim_ci,
                "agree": _agree(obs, obs_ci, sim_ci) if agree is None else agree,
            }
        )

    req = fit.requests
    ob = fit.observed
    per_rep = [float(r.stats.requests) for r in runs]
    n_obs = ob.get("requests", fit.arrivals.count)
    sim_n = float(np.mean(per_rep))
    replay = fit.arrival_mode == "replay"
    row(
        "requests",
        float(n_obs),
        None,
        sim_n,
        t_interval(per_rep) or [sim_n, sim_n],
        "",
        agree=(sim_n == n_obs) if replay else None,
    )
    minute_obs = None
    if req is not None and fit.seconds is not None:
        minute_obs = per_bin(fit.seconds, fit.t0_epoch, fit.window_s, 60)
        minute_sim = simulated_minute_counts(sc, base_dir, fit.window_s)
        diff = int(np.max(np.abs(minute_sim - minute_obs)))
        row(
            "per-minute counts: largest difference",
            0.0,
            None,
            float(diff),
            None,
            "requests",
            agree=(diff == 0) if replay else None,
        )
    if fit.platform == "lambda" and req is not None:
        cold_obs = ob["cold_starts"] / max(1, n_obs)
        served = [
            sum(r.stats.outcomes.get(k, 0) for k in ("ok", "timed_out", "error")) for r in runs
        ]
        ratios = [r.stats.cold_starts / s if s else 0.0 for r, s in zip(runs, served, strict=True)]
        cold_ci = _binom_ci(ob["cold_starts"], n_obs)
        row("cold-start ratio", cold_obs, cold_ci, float(np.mean(ratios)), t_interval(ratios), "")
    if req is not None and "errors" in ob:
        shares = [r.stats.outcomes.get("error", 0) / r.stats.requests for r in runs]
        row(
            "handler error rate",
            ob["errors"] / max(1, n_obs),
            _binom_ci(ob["errors"], n_obs),
            float(np.mean(shares)),
            t_interval(shares),
            "",
        )
    if req is not None and req.times.seen:
        lat = req.times.values()[:, 1]
        for key, q in (("p50", 0.5), ("p99", 0.99)):
            if req.times.complete:
                v, ci = _pct_ci(lat, q)
            else:
                v, ci = _hist_pct_ci(req.latency_hist, req.times.seen, q)
            row(
                f"latency {key}",
                v,
                ci,
                p["latency_ms"].get(key),
                p["latency_ms_ci95"].get(key),
                "ms",
            )
    busy = [r.busy_mean for r in runs]
    row(
        "concurrency (time average)",
        ob.get("concurrency_mean"),
        None,
        float(np.mean(busy)),
        t_interval(busy),
        "requests in flight",
    )
    if fit.platform == "lambda" and req is not None and "billed_ms_total" in ob:
        mean_billed = ob["billed_ms_total"] / max(1, n_obs)
        k = req.billed_n
        var = (req.billed_sq - req.billed_sum**2 / k) / (k - 1) if k > 1 else 0.0
        se = math.sqrt(max(var, 0.0) / k) if k > 1 else 0.0
        # the model's own bill: each invocation's duration rounded up to 1 ms (LambdaUsage)
        sim_b = [
            (u.on_demand_billed_ms + u.pc_billed_ms) / u.requests
            for u in (r.extra["usage"] for r in runs)
            if u.requests
        ]
        row(
            "billed duration per invocation",
            mean_billed,
            [mean_billed - 1.96 * se, mean_billed + 1.96 * se],
            float(np.mean(sim_b)),
            t_interval(sim_b),
            "ms",
        )
        lp = data["platforms"][0]
        usage = LambdaUsage(
            requests=int(n_obs),
            on_demand_billed_ms=ob["billed_ms_total"],
            init_billed_ms=ob.get("init_billed_ms_total", 0.0),
            window_s=fit.window_s,
        )
        bill = lambda_bill(usage, memory_mb=float(lp.get("memory", 128)))
        sim_bills = [r.bill.total_usd for r in runs]
        row(
            "Lambda bill for the window",
            bill.total_usd,
            None,
            float(np.mean(sim_bills)),
            t_interval(sim_bills),
            "USD",
        )
    return {
        "platform": name,
        "replications": sc.replications,
        "rows": rows,
        "summary": p,
        "minute_counts_observed": minute_obs.tolist() if minute_obs is not None else None,
    }


def _binom_ci(k: int, n: int) -> list[float]:
    """Clopper-Pearson 95% interval of a proportion."""
    lo = sps.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    hi = sps.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return [float(lo), float(hi)]


def format_rows(rows: list[dict[str, Any]]) -> str:
    def num(x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.4e}"

    def ci(c: list[float] | None) -> str:
        return f"[{num(c[0])}, {num(c[1])}]" if c else ""

    head = f"{'metric':<38} {'observed':>12} {'95% CI':>22} {'simulated':>12} {'95% CI':>22}  agree"
    out = [head, "-" * len(head)]
    for r in rows:
        ag = {True: "yes", False: "NO", None: "-"}[r["agree"]]
        out.append(
            f"{r['metric']:<38} {num(r['observed']):>12} {ci(r['observed_ci95']):>22} "
            f"{num(r['simulated']):>12} {ci(r['simulated_ci95']):>22}  {ag}"
        )
    return "\n".join(out)
