"""`sim tune`: the cheapest setting of one platform that meets every SLO, with the evidence.

Search. A grid of at most EXHAUSTIVE_MAX_POINTS (200) points is searched exhaustively: every
point is simulated, so the answer is the true optimum of the grid, and at sweep prices (seconds
a point) that is affordable. Larger grids (several parameters, fine ranges) use Optuna's TPE
sampler with constraints (Optuna >= 3; `pip install "sim[tune]"`): an established, seeded
Bayesian optimiser that handles integer, ordered and categorical choices and treats the SLOs as
constraints, where scipy offers nothing for constrained discrete search. It tries `trials` points
(default 100), in batches of `workers` so the pool stays busy; the answer is the cheapest feasible
point *tried*, which is not guaranteed to be the grid's optimum (the output says so).

"Meets the SLO". By default a point meets a target when the point estimate does (the mean over
replications of each replication's percentile / error rate: the same number `sim run` reports and
checks). With `conservative=True` the upper end of the 95% CI must meet it instead (Student-t
across replications; with one replication the order-statistic CI of a percentile and the
Clopper-Pearson interval of a rate); a metric without a CI (`max`, or a percentile with too few
samples) then falls back to its point estimate, and the check says so (`basis`).

An SLO is `METRIC<VALUE` or `METRIC<=VALUE`: METRIC one of mean, p50, p90, p95, p99, p999 (p99.9),
max (VALUE a duration with its unit, e.g. 300ms), error_rate or cold_start_ratio (VALUE a
fraction or a percentage, e.g. 0.1%).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim import units
from sim.errors import InputError
from sim.studies.sweep import (
    Base,
    Param,
    grid,
    job_key,
    open_store,
    run_points,
)

EXHAUSTIVE_MAX_POINTS = 200
DEFAULT_TRIALS = 100
LATENCY_METRICS = ("mean", "p50", "p90", "p95", "p99", "p999", "max")
RATE_METRICS = ("error_rate", "cold_start_ratio")
_SLO_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|<|>=|>|=)\s*(.+?)\s*$")


@dataclass(frozen=True)
class SLOTarget:
    metric: str  # p99, error_rate, ...
    op: str  # "<" or "<="
    target: float  # seconds for latency metrics, a fraction for rates
    text: str

    @property
    def latency(self) -> bool:
        return self.metric in LATENCY_METRICS

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"metric": self.metric, "op": self.op, "text": self.text}
        if self.latency:
            d["target_ms"] = self.target * 1e3
        else:
            d["target"] = self.target
        return d


def parse_slo(text: str) -> SLOTarget:
    """`p99<300ms`, `error_rate<0.1%` -> SLOTarget; bad syntax -> InputError (exit 2)."""
    known = ", ".join((*LATENCY_METRICS, *RATE_METRICS))
    m = _SLO_RE.match(text)
    if not m:
        raise InputError(
            f"expected METRIC<VALUE such as 'p99<300ms' or 'error_rate<0.1%', got {text!r}",
            key="--slo",
        )
    metric, op, raw = m.groups()
    metric = {"p99.9": "p999"}.get(metric, metric)
    if metric not in LATENCY_METRICS + RATE_METRICS:
        raise InputError(f"unknown SLO metric {metric!r}; expected one of {known}", key="--slo")
    if op not in ("<", "<="):
        raise InputError(
            f"{text!r}: an SLO is an upper limit; write {metric}<VALUE or {metric}<=VALUE",
            key="--slo",
        )
    try:
        if metric in LATENCY_METRICS:
            if re.fullmatch(r"[-+0-9.eE]+", raw):
                raise ValueError(f"{raw!r} has no unit; write e.g. {raw}ms")
            target = units.parse_duration(raw)
        else:
            target = units.parse_fraction(raw)
    except (ValueError, TypeError, InputError) as exc:
        what = (
            "a duration such as 300ms"
            if metric in LATENCY_METRICS
            else "a fraction such as 0.001 or 0.1%"
        )
        detail = exc.detail if isinstance(exc, InputError) else str(exc)
        raise InputError(f"{text!r}: expected {what} ({detail})", key="--slo") from None
    if not target >= 0 or not math.isfinite(target) or (metric in RATE_METRICS and target > 1):
        raise InputError(f"{text!r}: target out of range", key="--slo")
    return SLOTarget(metric, op, float(target), text.strip())


def slos_from_scenario(slo: Any) -> list[SLOTarget]:
    """The scenario's `slo:` section as targets (k6-style: met when value <= target)."""
    if slo is None:
        return []
    out = []
    for key, target in slo.model_dump(exclude_none=True).items():
        shown = f"{target * 1e3:g}ms" if key in LATENCY_METRICS else f"{target:g}"
        out.append(SLOTarget(key, "<=", float(target), f"{key}<={shown}"))
    return out


def check(metrics: dict[str, Any], slo: SLOTarget, conservative: bool) -> dict[str, Any]:
    """One SLO at one point: value used, its basis, the margin (target - value), met."""
    if slo.latency:
        point = (metrics.get("latency_ms") or {}).get(slo.metric)
        ci = (metrics.get("latency_ms_ci95") or {}).get(slo.metric)
        scale, unit = 1e3, "ms"
    else:
        point = metrics.get(slo.metric)
        ci = metrics.get(f"{slo.metric}_ci95")
        scale, unit = 1.0, ""
    basis, value = "point estimate", point
    if conservative:
        if ci and ci[1] is not None:
            basis, value = "95% CI upper bound", ci[1]
        else:
            basis = "point estimate (no CI)"
    target = slo.target * scale
    out: dict[str, Any] = {
        "metric": slo.metric,
        "op": slo.op,
        "unit": unit,
        "target": target,
        "value": value,
        "ci95": ci,
        "basis": basis,
    }
    if value is None or not math.isfinite(value):
        out.update(met=False, margin=None, margin_pct=None)
        return out
    met = value < target if slo.op == "<" else value <= target
    margin = target - value
    out.update(
        met=bool(met), margin=margin, margin_pct=(margin / target * 100.0) if target else None
    )
    return out


def _violation(c: dict[str, Any]) -> float:
    """Optuna constraint value: <= 0 when met (relative excess over the target)."""
    if c["value"] is None:
        return 1.0
    excess = (c["value"] - c["target"]) / (c["target"] or 1.0)
    return excess if c["met"] else max(excess, 1e-12)


def qualify(key: str, platform: str) -> str:
    """A key not naming a top-level scenario section is the tuned platform's own key."""
    from sim.scenario import Scenario

    head = key.split(".", 1)[0]
    fields = set(Scenario.model_fields)
    return key if head in fields else f"platforms.{platform}.{key}"


def _only_platform(base: Base, platform: str) -> Base:
    plats: Any = base.data.get("platforms")
    names = [p.get("name") for p in plats or [] if isinstance(p, dict)]
    if platform not in names:
        raise InputError(
            f"no platform named {platform!r} (platforms: {', '.join(map(str, names)) or 'none'})",
            file=base.file,
            key="--platform",
        )
    data = dict(base.data)
    data["platforms"] = [p for p in plats if isinstance(p, dict) and p.get("name") == platform]
    return Base(data, base.file, base.base_dir)


def tune(
    base: Base,
    params: Sequence[Param],
    platform: str,
    slos: Sequence[SLOTarget],
    *,
    conservative: bool = False,
    search: str = "auto",
    trials: int | None = None,
    seed: int = 0,
    out_dir: Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    fresh: bool = False,
    on_done: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Search the grid; return the tune.json document (see the module docstring)."""
    if not slos:
        raise InputError(
            "no SLO to tune for: give --slo (e.g. --slo 'p99<300ms') or an `slo:` "
            "section in the scenario",
            key="--slo",
        )
    if search not in ("auto", "exhaustive", "optuna"):
        raise InputError(
            f"unknown search {search!r}; expected auto, exhaustive or optuna", key="--search"
        )
    base = _only_platform(base, platform)
    size = math.prod(len(p) for p in params)
    grid(params)  # checks the size and repeated keys
    method = (
        search
        if search != "auto"
        else ("exhaustive" if size <= EXHAUSTIVE_MAX_POINTS else "optuna")
    )
    store = open_store(out_dir, fresh)
    by_key = {p.key: p for p in params}
    tried: dict[tuple[int, ...], dict[str, Any]] = {}
    counts = {"computed": 0, "reused": 0}

    def evaluate(indices: list[dict[str, int]]) -> list[dict[str, Any]]:
        from sim.studies.sweep import Point

        new: list[tuple[tuple[int, ...], Point]] = []
        for idx in indices:
            sig = tuple(idx[k] for k in by_key)
            if sig in tried:
                continue
            setting = {k: by_key[k].values[j] for k, j in idx.items()}
            labels = {k: by_key[k].labels[j] for k, j in idx.items()}
            sc = base.scenario(setting)
            point = Point(
                len(tried) + len(new),
                setting,
                labels,
                sc,
                {platform: job_key(sc, platform, base.base_dir)},
            )
            new.append((sig, point))
        uniq = {sig: p for sig, p in new}
        if uniq:
            points = list(uniq.values())
            c, r = run_points(
                points,
                base,
                store,
                force=force,
                workers=workers,
                scheduler=scheduler,
                on_done=on_done,
            )
            counts["computed"] += c
            counts["reused"] += r
        for sig, p in uniq.items():
            m = store.records[p.keys[platform]]["metrics"]
            checks = [check(m, s, conservative) for s in slos]
            tried[sig] = {
                "order": len(tried),
                "setting": p.labels,
                "metrics": m,
                "checks": checks,
                "met": all(c["met"] for c in checks),
                "monthly_cost_usd": m["monthly_cost_usd"],
            }
        return [tried[tuple(idx[k] for k in by_key)] for idx in indices]

    if method == "exhaustive":
        why = (
            f"exhaustive: the grid has {size} points (<= {EXHAUSTIVE_MAX_POINTS}), so every "
            "point is simulated and the answer is the grid's true optimum"
        )
        evaluate(grid(params))
        n_trials = size
    else:
        n_trials = min(trials or DEFAULT_TRIALS, size)
        why = (
            f"optuna TPE (seed {seed}, {n_trials} trials): the grid has {size} points "
            f"(> {EXHAUSTIVE_MAX_POINTS}); the answer is the cheapest feasible point tried, "
            "not guaranteed to be the grid's optimum"
        )
        if search == "optuna" and size <= EXHAUSTIVE_MAX_POINTS:
            why = f"optuna TPE (seed {seed}, {n_trials} trials), as asked (--search optuna)"
        _optuna_search(
            params, evaluate, n_trials, seed, max(1, workers or 1) if not scheduler else 8
        )

    ranked = sorted(tried.values(), key=lambda t: t["order"])
    feasible = [t for t in ranked if t["met"]]
    chosen = min(feasible, key=lambda t: (t["monthly_cost_usd"], _p99(t), t["order"]), default=None)
    criterion = "95% CI upper bound" if conservative else "point estimate"
    return {
        "platform": platform,
        "search": method,
        "why": why,
        "criterion": criterion,
        "slo": [s.as_dict() for s in slos],
        "params": {p.key: list(p.labels) for p in params},
        "grid_points": size,
        "points_tried": len(ranked),
        "feasible_points": len(feasible),
        "simulated": counts["computed"],
        "reused_from_points_file": counts["reused"],
        "chosen": None if chosen is None else _entry(chosen, full=True),
        "tried": [_entry(t) for t in ranked],
    }


def _p99(t: dict[str, Any]) -> float:
    v = (t["metrics"].get("latency_ms") or {}).get("p99")
    return v if v is not None else math.inf


def _entry(t: dict[str, Any], full: bool = False) -> dict[str, Any]:
    m = t["metrics"]
    out: dict[str, Any] = {
        "setting": t["setting"],
        "monthly_cost_usd": m["monthly_cost_usd"],
        "slo_met": t["met"],
        "slo": t["checks"],
        "p99_ms": (m.get("latency_ms") or {}).get("p99"),
        "p99_ci95": (m.get("latency_ms_ci95") or {}).get("p99"),
        "error_rate": m.get("error_rate"),
        "error_rate_ci95": m.get("error_rate_ci95"),
        "cold_start_ratio": m.get("cold_start_ratio"),
    }
    if full:
        out["metrics"] = m
    return out


def _optuna_search(
    params: Sequence[Param],
    evaluate: Callable[[list[dict[str, int]]], list[Any]],
    n_trials: int,
    seed: int,
    batch: int,
) -> None:
    try:
        import optuna
    except ImportError:
        raise InputError(
            "this grid needs the Optuna optimiser (more than "
            f'{EXHAUSTIVE_MAX_POINTS} points): pip install optuna (or "sim[tune]"), or '
            "narrow the grid / pass --search exhaustive",
            key="--param",
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constraints_func is marked experimental
        sampler = optuna.samplers.TPESampler(
            seed=seed, constraints_func=lambda tr: tr.user_attrs["constraints"]
        )
        study = optuna.create_study(direction="minimize", sampler=sampler)
        done = 0
        while done < n_trials:
            trials = [study.ask() for _ in range(min(batch, n_trials - done))]
            indices = []
            for tr in trials:
                idx = {}
                for p in params:
                    if p.ordered:
                        idx[p.key] = tr.suggest_int(p.key, 0, len(p) - 1)
                    else:
                        idx[p.key] = tr.suggest_categorical(p.key, list(range(len(p))))
                indices.append(idx)
            results = evaluate(indices)
            for tr, res in zip(trials, results, strict=True):
                tr.set_user_attr("constraints", [_violation(c) for c in res["checks"]])
                study.tell(tr, res["monthly_cost_usd"])
            done += len(trials)
