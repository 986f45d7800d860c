"""`sim crossover`: each platform's monthly bill and p99 against traffic volume; where the cheapest
platform changes.

Scaling. A volume V (requests per billing month: the scenario's `month:`, 730 h by default) is
reached by multiplying the scenario's arrival
rate function by s = V / (the scenario's expected monthly volume), i.e. lambda(t) -> s lambda(t)
everywhere, so the traffic keeps its shape (a spike stays the same multiple of the base rate):
  steady: rate; phases: every rate and ramp_to; diurnal: mean (amplitude is relative);
  spike: peak and base; mmpp: every state's rate (holding times unchanged); batch: the batch size
  (the size distribution is scaled; batch times unchanged; fractional sizes round stochastically);
  trace: rate_scale (thinning / duplication, timing kept).
The expected monthly volume is the workload's analytic mean count over the simulated window,
extrapolated to the billing month (the same rule the bill uses), so V is what the bill is
extrapolated from.

Speed. Each volume simulates only the window (the scenario's `duration`, or `window`); the bill's
window-to-month rule (sim.pricing.tables) applies tiers and minimums per month, so a month of
traffic costs a window's simulation. With `window`, the warm-up keeps its share of the duration.

Crossovers: between neighbouring grid volumes where the cheapest platform changes from A to B, V
is where log(cost_A / cost_B) crosses zero, interpolated linearly in log(volume): exact when both
bills are power laws of the volume (a flat fee, a price per request), close otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim import units
from sim.errors import InputError
from sim.scenario import Scenario, resolved_dict, validate_scenario
from sim.studies.sweep import (
    Base,
    Point,
    job_key,
    open_store,
    run_points,
)

DEFAULT_POINTS = 12
MAX_POINTS = 200


def parse_volume_range(text: str) -> tuple[float, float]:
    """`100k/month..500M/month` -> (lo, hi) in requests per month (the count as written)."""
    parts = text.split("..")
    if len(parts) != 2:
        raise InputError(
            f"expected LOW..HIGH such as 100k/month..500M/month, got {text!r}", key="--volume"
        )
    try:
        lo, hi = (units.parse_rate(p.strip()) * units.BILLING_MONTH_S for p in parts)
    except (ValueError, TypeError, InputError) as exc:
        detail = exc.detail if isinstance(exc, InputError) else str(exc)
        raise InputError(
            f"expected rates such as 100k/month..500M/month ({detail})", key="--volume"
        ) from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise InputError(f"expected 0 < LOW < HIGH, got {text!r}", key="--volume")
    return lo, hi


def volume_grid(lo: float, hi: float, n: int) -> list[float]:
    if not 2 <= n <= MAX_POINTS:
        raise InputError(f"expected 2 to {MAX_POINTS} points, got {n}", key="--points")
    return [float(v) for v in np.geomspace(lo, hi, n)]


# --- scaling traffic ----------------------------------------------------------------------------

_DIST_SCALED = {
    "constant": ("value",),
    "exponential": ("mean", "shift"),
    "lognormal": ("median", "p99", "shift"),
    "gamma": ("mean",),
    "uniform": ("low", "high"),
    "pareto": ("scale", "mean", "cap"),
}


def _scale_dist(d: dict[str, Any], s: float, where: str) -> dict[str, Any]:
    """A distribution of sizes, multiplied by s (its mean scales by s)."""
    d = dict(d)
    kind = d.get("dist")
    if kind == "empirical":
        if d.get("values") is not None:
            d["values"] = [v * s for v in d["values"]]
        elif d.get("percentiles") is not None:
            d["percentiles"] = {q: v * s for q, v in d["percentiles"].items()}
        else:
            raise InputError(
                "cannot scale a batch size read from a file; give `values`, "
                "`percentiles` or another distribution",
                key=where,
            )
        return d
    if kind not in _DIST_SCALED:
        raise InputError(f"cannot scale a {kind!r} batch-size distribution", key=where)
    for k in _DIST_SCALED[kind]:
        if d.get(k) is not None:
            d[k] = d[k] * s
    if kind == "lognormal" and d.get("mu") is not None:
        d["mu"] = d["mu"] + math.log(s)
    return d


def _scale_source(kind: str, cfg: dict[str, Any], s: float, where: str) -> None:
    if kind == "steady":
        cfg["rate"] *= s
    elif kind == "phases":
        for step in cfg["steps"]:
            step["rate"] *= s
            if step.get("ramp_to") is not None:
                step["ramp_to"] *= s
    elif kind == "diurnal":
        cfg["mean"] *= s
    elif kind == "spike":
        cfg["peak"] *= s
        cfg["base"] *= s
    elif kind == "batch":
        cfg["size"] = _scale_dist(cfg["size"], s, f"{where}.size")
    elif kind == "mmpp":
        for state in cfg["states"]:
            state["rate"] *= s
    elif kind == "trace":
        cfg["rate_scale"] *= s
    else:
        raise InputError(f"cannot scale arrival source {kind!r} to a volume", key=where)


def scale_traffic(data: dict[str, Any], factor: float) -> dict[str, Any]:
    """Resolved scenario data with every arrival source's rate multiplied by `factor`."""
    if not (factor > 0 and math.isfinite(factor)):
        raise InputError(f"cannot scale traffic by {factor!r}", key="workload.arrivals")
    out = dict(data)
    out["workload"] = dict(data["workload"])
    arrivals = []
    for i, entry in enumerate(data["workload"]["arrivals"]):
        ((kind, cfg),) = entry.items()
        cfg = _deep(cfg)
        _scale_source(kind, cfg, factor, f"workload.arrivals.{i}.{kind}")
        arrivals.append({kind: cfg})
    out["workload"]["arrivals"] = arrivals
    return out


def _deep(x: Any) -> Any:
    import copy

    return copy.deepcopy(x)


def monthly_volume(scenario: Scenario, base_dir: Path) -> float:
    """Expected requests in the window, extrapolated to the scenario's billing month (the month
    its bills and its `/month` rates use)."""
    from sim.workload import Workload

    wl = Workload(scenario.workload, np.random.default_rng(0), np.random.default_rng(0), base_dir)
    return wl.expected_requests(scenario.duration) / scenario.duration * scenario.month


def windowed(scenario: Scenario, window: float | None, file: str, base_dir: Path) -> Scenario:
    if window is None:
        return scenario
    if not window > 0:
        raise InputError(f"expected a positive duration, got {window!r}", key="--window")
    d = resolved_dict(scenario)
    d["warmup"] = scenario.warmup * window / scenario.duration
    d["duration"] = window
    d["timeline_step"] = max(1.0, window / 720)
    return validate_scenario(d, file=file, base_dir=base_dir)


def at_volume(
    scenario: Scenario, volume: float, base_volume: float, file: str, base_dir: Path
) -> Scenario:
    data = scale_traffic(resolved_dict(scenario), volume / base_volume)
    return validate_scenario(data, file=file, base_dir=base_dir)


# --- crossovers ---------------------------------------------------------------------------------


def _gap(a: float, b: float, log: bool) -> float:
    """log(a / b): bills that are power laws of volume (a flat fee, a per-request price) are
    straight lines on log-log axes, so their crossing interpolates exactly. A free platform
    (cost 0) has no log: then the plain difference."""
    return math.log(a) - math.log(b) if log else a - b


def find_crossovers(
    volumes: Sequence[float], costs: Mapping[str, Sequence[float]]
) -> list[dict[str, Any]]:
    """Where the cheapest platform changes (ties go to the platform listed first)."""
    names = list(costs)
    if len(names) < 2:
        return []
    cheapest = [
        min(names, key=lambda n, i=i: (costs[n][i], names.index(n)))  # type: ignore[misc]
        for i in range(len(volumes))
    ]
    out = []
    for i in range(len(volumes) - 1):
        a, b = cheapest[i], cheapest[i + 1]
        if a == b:
            continue
        pair = (costs[a][i], costs[b][i], costs[a][i + 1], costs[b][i + 1])
        log = all(c > 0 for c in pair)
        d0, d1 = _gap(pair[0], pair[1], log), _gap(pair[2], pair[3], log)
        frac = -d0 / (d1 - d0) if d1 != d0 else 0.5
        frac = min(max(frac, 0.0), 1.0)
        x0, x1 = math.log(volumes[i]), math.log(volumes[i + 1])
        out.append({"volume_per_month": math.exp(x0 + frac * (x1 - x0)), "below": a, "above": b})
    return out


def run_crossover(
    base: Base,
    volumes: Sequence[float],
    *,
    window: float | None = None,
    out_dir: Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    fresh: bool = False,
    on_done: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Simulate every platform at every volume; rows, crossovers and the assumptions used."""
    sc = windowed(base.scenario(), window, base.file, base.base_dir)
    base_volume = monthly_volume(sc, base.base_dir)
    if not base_volume > 0:
        raise InputError(
            "the scenario's traffic has no requests in the simulated window, so "
            "it cannot be scaled to a volume",
            file=base.file,
            key="workload.arrivals",
        )
    names = [p.name for p in sc.platforms]
    points = []
    for i, v in enumerate(volumes):
        scv = at_volume(sc, v, base_volume, base.file, base.base_dir)
        keys = {n: job_key(scv, n, base.base_dir) for n in names}
        points.append(Point(i, {"volume_per_month": v}, {"volume_per_month": v}, scv, keys))
    store = open_store(out_dir, fresh)
    computed, reused = run_points(
        points, base, store, force=force, workers=workers, scheduler=scheduler, on_done=on_done
    )
    costs: dict[str, list[float]]
    rows, costs = [], {n: [] for n in names}
    for p in points:
        for n in names:
            m = store.records[p.keys[n]]["metrics"]
            rows.append(
                {
                    "volume_per_month": p.setting["volume_per_month"],
                    "platform": n,
                    "monthly_cost_usd": m["monthly_cost_usd"],
                    "p99_ms": (m.get("latency_ms") or {}).get("p99"),
                }
            )
            costs[n].append(m["monthly_cost_usd"])
    cheapest = [
        min(names, key=lambda n, i=i: (costs[n][i], names.index(n)))  # type: ignore[misc]
        for i in range(len(volumes))
    ]
    return {
        "crossovers": find_crossovers(volumes, costs),
        "volumes_per_month": list(volumes),
        "cheapest": cheapest,
        "platforms": names,
        "rows": rows,
        "assumptions": {
            "window_s": sc.duration,
            "warmup_s": sc.warmup,
            "replications": sc.replications,
            "seed": sc.seed,
            "scenario_volume_per_month": base_volume,
            "month_days": sc.month / units.SECONDS_PER_DAY,
            "scaling": "every arrival source's rate multiplied by volume / "
            "scenario_volume_per_month; the window's bill extrapolated to the billing month",
            "interpolation": "log(cost ratio) linear in log(volume) between grid points",
        },
        "simulated": computed,
        "reused_from_points_file": reused,
    }
