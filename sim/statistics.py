"""From per-replication runs to the per-platform summary (design.md section 4).

Point estimates are means across replications of each replication's statistic; the 95% CI is the
Student-t interval across replications (independent seeds). With one replication the CI of a
percentile is the distribution-free order-statistic interval from that run's own samples (which
assumes independent latencies, so it is optimistic under autocorrelation: prefer replications).
Latency statistics cover requests the client waited for (ok, timed_out and error); throttled and
rejected requests fail fast and count in error_rate (with timed_out and error).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from sim.engine import PlatformRun
from sim.records import CCDF_PROBS, OPTIONAL_OUTCOMES, OUTCOMES, PERCENTILES
from sim.scenario import Scenario

LATENCY_KEYS = ("mean", *PERCENTILES, "max")


def _t_central(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df: the finite series of Abramowitz & Stegun
    26.7.3 (odd df) / 26.7.4 (even df) in theta = atan(t / sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # 1 + 2/3 c2 + (2 4)/(3 5) c2^2 + ... up to c2^((df - 3) / 2)
        i = np.arange(1, (df - 1) // 2, dtype=float)
        series = 1.0 + float(np.cumprod(2 * i / (2 * i + 1) * c2).sum())
        return 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * series if df > 1 else 0))
    # 1 + 1/2 c2 + (1 3)/(2 4) c2^2 + ... up to c2^(df/2 - 1)
    i = np.arange(1, df // 2, dtype=float)
    return math.sin(theta) * (1.0 + float(np.cumprod((2 * i - 1) / (2 * i) * c2).sum()))


@cache
def t_ppf_975(df: int) -> float:
    """scipy.stats.t.ppf(0.975, df) (to ~1e-13 relative), by bisection on the closed-form CDF:
    scipy.special costs ~0.3 s of CPU to import, a third of a short `sim run`."""
    a, b = 0.0, 20.0
    while _t_central(b, df) < 0.95:  # df = 1: 12.7; df = 2: 4.3
        b *= 2
    for _ in range(200):
        mid = 0.5 * (a + b)
        if mid in (a, b):
            break
        a, b = (mid, b) if _t_central(mid, df) < 0.95 else (a, mid)
    return 0.5 * (a + b)


def t_interval(values: Sequence[float | None]) -> list[float] | None:
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if x.size < 2:
        return None
    half = float(t_ppf_975(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    m = float(x.mean())
    return [m - half, m + half]


def _mean(values: Sequence[float | None]) -> float | None:
    x = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(x)) if x else None


def summarize_platform(scenario: Scenario, runs: list[PlatformRun]) -> dict[str, Any]:
    runs = sorted(runs, key=lambda r: r.replication)
    reps = len(runs)
    requests = sum(r.stats.requests for r in runs)
    outcomes = {k: sum(r.stats.outcomes.get(k, 0) for r in runs) for k in OUTCOMES}
    failed = {
        k: outcomes[k]
        for k in OUTCOMES
        if k != "ok" and (outcomes[k] or k not in OPTIONAL_OUTCOMES)
    }
    cold = sum(r.stats.cold_starts for r in runs)
    served = outcomes["ok"] + outcomes["timed_out"] + outcomes["error"]
    latency: dict[str, float | None] = {}
    ci: dict[str, list[float] | None] = {}
    for key in LATENCY_KEYS:
        vals = [r.stats.latency.get(key) for r in runs]
        latency[key] = (
            _mean(vals) if key != "max" else max((v for v in vals if v is not None), default=None)
        )
        if key == "max":
            continue
        if reps >= 2:
            ci[key] = t_interval(vals)
        elif key in runs[0].stats.latency_ci:
            ci[key] = runs[0].stats.latency_ci[key]
    bills = [r.bill for r in runs]
    total = _mean([b.total_usd for b in bills]) or 0.0
    monthly = _mean([b.monthly_usd for b in bills]) or 0.0
    breakdown_keys = sorted({k for b in bills for k in b.breakdown})
    breakdown = {
        k: float(np.mean([b.breakdown.get(k, 0.0) for b in bills])) for k in breakdown_keys
    }
    monthly_breakdown = {
        k: float(np.mean([b.monthly_breakdown.get(k, 0.0) for b in bills])) for k in breakdown_keys
    }
    per_rep_requests = requests / reps if reps else 0
    # Cost covers the whole window, so it is divided by every request in it (warm-up included).
    all_requests = _mean([float(r.stats.requests_all) for r in runs])
    per_million = total / all_requests * 1e6 if all_requests else None
    ccdf = (
        np.mean([r.stats.ccdf_ms for r in runs if r.stats.ccdf_ms], axis=0)
        if any(r.stats.ccdf_ms for r in runs)
        else np.array([])
    )
    out: dict[str, Any] = {
        "type": scenario.platform(runs[0].platform).type,
        "requests": int(requests),
        "requests_per_replication": per_rep_requests,
        "completed": int(outcomes["ok"]),
        "failed": failed,
        "error_rate": (sum(failed.values()) / requests) if requests else 0.0,
        "cold_starts": int(cold),
        "cold_start_ratio": (cold / served) if served else 0.0,
        "latency_ms": latency,
        "latency_ms_ci95": ci,
        "instances": {
            "mean": _mean([r.instances["mean"] for r in runs]) or 0.0,
            "peak": max((r.instances["peak"] for r in runs), default=0.0),
        },
        "busy_mean": _mean([r.busy_mean for r in runs]),
        "cost_usd": {"total": total, "breakdown": breakdown},
        "cost_per_million_usd": per_million,
        "monthly_cost_usd": monthly,
        "monthly_breakdown_usd": monthly_breakdown,
        "operating_monthly_usd": _mean([getattr(b, "operating_monthly_usd", 0.0) for b in bills]),
        "operating_breakdown_usd": getattr(bills[0], "operating_breakdown", {}) if bills else {},
        # issue 16: list price before commitments, total cost of ownership, the month counted
        "list_monthly_cost_usd": _mean(
            [getattr(b, "list_monthly_usd", b.monthly_usd) for b in bills]
        ),
        "tco_monthly_usd": monthly
        + (_mean([getattr(b, "operating_monthly_usd", 0.0) for b in bills]) or 0.0),
        "month_hours": getattr(bills[0], "month_s", 730 * 3600.0) / 3600.0 if bills else None,
        "price_date": getattr(bills[0], "price_date", None) if bills else None,
        "price_sources": getattr(bills[0], "sources", {}) if bills else {},
        "latency_parts_ms": _mean_parts(runs),
        "cold_latency_ms": _mean_dicts([r.stats.cold_latency for r in runs]),
        "warm_latency_ms": _mean_dicts([r.stats.warm_latency for r in runs]),
        "latency_ccdf": {
            "prob": [float(p) for p in CCDF_PROBS],
            "ms": [float(x) for x in ccdf],
            # per replication, for CI bands in the report
            "ms_by_replication": [
                [float(x) for x in r.stats.ccdf_ms] for r in runs if r.stats.ccdf_ms
            ],
        },
        "exact_percentiles": all(r.stats.exact for r in runs),
        "wall_s": float(sum(r.wall_s for r in runs)),
    }
    out["slo"] = check_slo(scenario, out)
    return out


def _mean_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for d in dicts for k in d})
    return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in keys}


def _mean_parts(runs: list[PlatformRun]) -> dict[str, dict[str, float]]:
    parts = sorted({p for r in runs for p in r.stats.parts_ms})
    return {
        p: _mean_dicts([r.stats.parts_ms[p] for r in runs if p in r.stats.parts_ms]) for p in parts
    }


def check_slo(scenario: Scenario, summary: dict[str, Any]) -> dict[str, Any]:
    if scenario.slo is None:
        return {}
    out: dict[str, Any] = {}
    for key, target in scenario.slo.model_dump(exclude_none=True).items():
        if key in ("error_rate", "cold_start_ratio"):
            value = summary[key]
            out[key] = {"target": target, "value": value, "met": bool(value <= target)}
        else:
            value = summary["latency_ms"].get(key)
            met = value is not None and value <= target * 1e3
            out[key] = {"target_ms": target * 1e3, "value_ms": value, "met": bool(met)}
    return out


def slo_met(summary: dict[str, Any]) -> bool | None:
    checks = summary.get("slo") or {}
    return all(c["met"] for c in checks.values()) if checks else None
