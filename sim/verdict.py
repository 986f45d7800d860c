"""The decision a run is for: which platform to pick, and why the others were not picked.

    verdict(scenario, platforms)  ->  summary.json's `verdict`

- Some platforms meet every SLO of the scenario: the cheapest of them wins, with its margin over
  the next cheapest that also meets them (`saving_usd`, `saving_pct`).
- None meets them: the one closest to meeting them is named (the smallest worst miss, relative
  to its target) and a `sim tune` command line is suggested for the closest platform that has
  settings to search (Lambda memory and provisioned concurrency; KEDA/HPA replica bounds; fixed
  replicas). Wasm has none that shorten a handler, so it gets no command.
- The scenario has no `slo:`: the cheapest platform, said to be judged on cost alone.

Every platform that misses lists each missed SLO with its value, target and excess. "Cost" is
the monthly bill plus the scenario's `ops` amounts (operating costs the user entered: engineer
time, monitoring), so the ranking answers "what does it really cost us"; both parts are kept.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import Any

from sim import format as fmt

LATENCY = ("mean", "p50", "p90", "p95", "p99", "p999", "max")
_LABEL = {"p999": "p99.9", "error_rate": "error rate", "cold_start_ratio": "cold starts"}
# Lambda memory sizes worth trying: the 1769 MB step is one full vCPU (AWS Lambda docs).
_LAMBDA_MEMORY = (128, 256, 512, 1024, 1769, 3008, 5307, 10240)


def _cost(p: dict[str, Any]) -> float:
    return float(p.get("monthly_cost_usd") or 0.0) + float(p.get("operating_monthly_usd") or 0.0)


def misses(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The SLOs platform summary `p` missed: value, target, excess (absolute and relative)."""
    out = []
    for key, c in (p.get("slo") or {}).items():
        if c.get("met"):
            continue
        if key in LATENCY:
            value, target, unit = c.get("value_ms"), c["target_ms"], "ms"
        else:
            value, target, unit = c.get("value"), c["target"], ""
        over = None if value is None else value - target
        rel = None if over is None or target <= 0 else over / target
        out.append(
            {
                "slo": key,
                "value": value,
                "target": target,
                "unit": unit,
                "over": over,
                "over_pct": None if rel is None else rel * 100,
                "text": _miss_text(key, value, target, rel),
            }
        )
    return out


def _show(key: str, x: float | None) -> str:
    if x is None:
        return "no value"
    return fmt.ms(x) if key in LATENCY else fmt.pct(x)


def _miss_text(key: str, value: float | None, target: float, rel: float | None) -> str:
    by = "" if rel is None else f", {rel * 100:+.0f}%"
    return f"{_LABEL.get(key, key)} {_show(key, value)} > {_show(key, target)}{by}"


def _badness(m: list[dict[str, Any]]) -> float:
    """How far from meeting every SLO: the worst relative excess (inf when it cannot be said)."""
    worst = 0.0
    for x in m:
        if x["value"] is None:
            return math.inf
        worst = max(worst, x["over_pct"] / 100 if x["over_pct"] is not None else math.inf)
    return worst


def verdict(
    scenario: Any,
    platforms: dict[str, dict[str, Any]],
    source: str | None = None,
    overrides: Sequence[str | tuple[str, str]] = (),
) -> dict[str, Any]:
    """summary.json's `verdict` from the per-platform summaries (see the module docstring)."""
    if not platforms:
        return {"status": "empty", "text": ["no platform was simulated"]}
    names = sorted(platforms, key=lambda n: (_cost(platforms[n]), n))
    with_ops = any(platforms[n].get("operating_monthly_usd") for n in names)
    costs = {
        n: {
            "monthly_cost_usd": platforms[n].get("monthly_cost_usd"),
            "operating_monthly_usd": platforms[n].get("operating_monthly_usd") or 0.0,
            "total_monthly_usd": _cost(platforms[n]),
        }
        for n in names
    }
    out: dict[str, Any] = {"cost_basis": "bill + ops" if with_ops else "bill", "costs": costs}
    if not any(platforms[n].get("slo") for n in names):
        best = names[0]
        out.update(status="no_slo", cheapest=best, meets_slo=[], missed={})
        out["text"] = [
            f"cheapest: {best} at {cost_line(platforms[best])} (no `slo:` in the scenario: "
            "judged on cost alone)"
        ]
        return _ordered(out)
    passing = [n for n in names if all(c["met"] for c in platforms[n]["slo"].values())]
    missed = {n: misses(platforms[n]) for n in names if n not in passing}
    out.update(meets_slo=passing, missed=missed)
    lines = []
    if passing:
        best = passing[0]
        out.update(status="pass", cheapest=best)
        line = f"pick {best}: the cheapest meeting every SLO, {cost_line(platforms[best])}"
        if len(passing) > 1:
            nxt = passing[1]
            saving = _cost(platforms[nxt]) - _cost(platforms[best])
            pct = saving / _cost(platforms[nxt]) * 100 if _cost(platforms[nxt]) else None
            out.update(runner_up=nxt, saving_usd=saving, saving_pct=pct)
            line += f"; {fmt.usd(saving)}/month less than {nxt}" + (
                f" ({pct:.0f}% less)" if pct is not None else ""
            )
        else:
            line += "; the only one meeting them"
        lines.append(line)
    else:
        closest = min(names, key=lambda n: (_badness(missed[n]), _cost(platforms[n]), n))
        out.update(status="none_pass", cheapest=None, closest=closest)
        lines.append(
            f"no platform meets every SLO; closest: {closest} ("
            + "; ".join(m["text"] for m in missed[closest])
            + f") at {cost_line(platforms[closest])}"
        )
        order = sorted(names, key=lambda n: (_badness(missed[n]), _cost(platforms[n]), n))
        for n in order:
            cmd = tune_command(scenario, n, platforms[n], source, overrides)
            if cmd is not None:
                out["tune_platform"], out["try"] = n, cmd
                lines.append(f"try: {cmd}")
                break
    for n in names:
        if n in missed and n != out.get("closest"):
            lines.append(f"{n} misses: " + "; ".join(m["text"] for m in missed[n]))
    out["text"] = lines
    return _ordered(out)


_ORDER = ("status", "cheapest", "closest", "text", "try", "tune_platform", "runner_up")


def _ordered(v: dict[str, Any]) -> dict[str, Any]:
    """The answer first in summary.json, the evidence (costs) last."""
    head = {k: v[k] for k in _ORDER if k in v}
    return {
        **head,
        **{k: x for k, x in v.items() if k not in head and k != "costs"},
        "costs": v["costs"],
    }


def cost_line(p: dict[str, Any]) -> str:
    """`$118.35/month` or `$118.35/month bill + $2,000 ops = $2,118/month`."""
    bill = p.get("monthly_cost_usd") or 0.0
    ops = p.get("operating_monthly_usd") or 0.0
    if not ops:
        return f"{fmt.usd(bill)}/month"
    return f"{fmt.usd(bill)}/month bill + {fmt.usd(ops)} ops = {fmt.usd(bill + ops)}/month"


def _int_range(lo: int, hi: int, points: int = 5) -> str:
    """START:STOP:STEP covering lo..hi in about `points` steps (the end lands on the grid)."""
    hi = max(hi, lo + 1)
    step = max(1, math.ceil((hi - lo) / (points - 1)))
    return f"{lo}:{lo + step * (points - 1)}:{step}"


def tune_params(spec: Any, p: dict[str, Any]) -> list[str]:
    """What `sim tune` should search for this platform, from its settings and what it missed."""
    kind = getattr(spec, "type", None)
    missed = {m["slo"] for m in misses(p)}
    latency_missed = bool(missed & set(LATENCY))
    peak = max(1, math.ceil((p.get("instances") or {}).get("peak") or 1))
    if kind == "lambda":
        params = []
        mem = int(spec.memory)
        sizes = [m for m in _LAMBDA_MEMORY if m > mem][:3]
        if sizes:
            params.append("memory=" + ",".join(str(m) for m in [mem, *sizes]))
        pc = spec.provisioned_concurrency
        if latency_missed and p.get("cold_starts") and isinstance(pc, int):
            params.append(f"provisioned_concurrency={_int_range(pc, max(pc + 4, peak))}")
        return params
    if kind == "kubernetes":
        if spec.keda is not None:
            k = spec.keda
            lo = k.minReplicaCount
            return [
                f"keda.minReplicaCount={lo}:{lo + 3}:1",
                f"keda.maxReplicaCount={k.maxReplicaCount},{2 * k.maxReplicaCount},"
                f"{4 * k.maxReplicaCount}",
            ]
        if spec.hpa is not None:
            h = spec.hpa
            return [
                f"hpa.min_replicas={h.min_replicas}:{h.min_replicas + 3}:1",
                f"hpa.max_replicas={h.max_replicas},{2 * h.max_replicas},{4 * h.max_replicas}",
            ]
        if spec.replicas is not None:
            r = max(1, spec.replicas)
            return [f"replicas={_int_range(r, 4 * r)}"]
    if kind == "fargate":
        tt = spec.target_tracking
        if tt is not None:
            lo, t = tt.min_tasks, tt.target
            return [
                f"target_tracking.min_tasks={lo}:{lo + 3}:1",
                f"target_tracking.target={t:g},{t / 2:g},{t / 4:g}",
            ]
        if spec.tasks is not None:
            r = max(1, spec.tasks)
            return [f"tasks={_int_range(r, 4 * r)}"]
    if kind == "knative":  # warm pods against the cold path; a lower utilisation target
        m = spec.min_scale
        return [
            f"min_scale={m}:{m + 3}:1",
            "target_utilization_percentage=50,60,70",
        ]
    if kind == "azure_flex":
        a = spec.always_ready
        return [f"always_ready={_int_range(a, max(a + 3, peak))}", "instance_memory=512,2048,4096"]
    if kind == "lambda_managed":
        m = spec.min_environments
        return [f"min_environments={_int_range(m, max(m + 3, peak))}"]
    if kind == "cloud_run":  # warm instances against cold starts; fewer slots against CPU queueing
        m, c = spec.min_instances, spec.concurrency
        return [
            f"min_instances={m}:{min(m + 3, spec.max_instances)}:1",
            "concurrency=" + ",".join(str(x) for x in sorted({max(1, c // 4), max(1, c // 2), c})),
        ]
    if kind == "container_apps":
        lo, hi = spec.scale.minReplicas, spec.scale.maxReplicas
        top = sorted({hi, min(2 * hi, 1000), min(4 * hi, 1000)})
        return [
            f"scale.minReplicas={lo}:{min(lo + 3, hi)}:1",
            "scale.maxReplicas=" + ",".join(map(str, top)),
        ]
    return []


def tune_command(
    scenario: Any,
    name: str,
    p: dict[str, Any],
    source: str | None,
    overrides: Sequence[str | tuple[str, str]] = (),
) -> str | None:
    """A `sim tune` line for platform `name` that a shell runs as printed (every word quoted)."""
    try:
        spec = scenario.platform(name)
    except (KeyError, AttributeError):
        return None
    params = tune_params(spec, p)
    if not params or source is None:
        return None
    words = ["sim", "tune", source, "--platform", name]
    for o in overrides:  # a shorthand option's override is (option, "KEY=VALUE")
        words += ["--set", o if isinstance(o, str) else o[1]]
    for prm in params:
        words += ["--param", prm]
    return shlex.join(words)


def _factor(cpu_bound: float, cores: float) -> float:
    """Handler time multiplier at `cores` (the kernels' rule: (1 - cb) + cb / min(cores, 1))."""
    return (1 - cpu_bound) + cpu_bound / min(cores, 1.0)


def defaults_used(scenario: Any) -> list[str]:
    """Defaults the scenario left unset that shape its results (the run header says them).

    Read from pydantic's `model_fields_set`, so a key written in the file or given with `--set`
    is the user's and is not listed, even when it equals the default.
    """
    service = scenario.workload.service
    cb_set = "cpu_bound" in service.model_fields_set
    cb = float(service.cpu_bound)
    out = []
    cb_note = "" if cb_set else f", with workload.service.cpu_bound {cb:g} (default)"
    for p in scenario.platforms:
        given = p.model_fields_set
        if p.type == "lambda" and getattr(p, "sam", None) is None:
            if "memory" not in given:
                f = _factor(cb, p.vcpu)
                out.append(
                    f"{p.name}: memory {p.memory:g} MB (AWS default: {p.vcpu:.2f} vCPU, handlers "
                    f"run {f:.3g}x their 1-vCPU time{cb_note})"
                )
            if "keep_alive" not in given:
                out.append(f"{p.name}: keep_alive {_dist_text(p.keep_alive)} (default)")
            # (`init` is always in model_fields_set: the validator fills it from the runtime)
            if "runtime" not in given:
                out.append(
                    f"{p.name}: runtime {p.runtime} (default: its measured cold-start Init, "
                    "unless `init:` is given)"
                )
        elif p.type == "kubernetes":
            pod_given = p.pod.model_fields_set if "pod" in given else set()
            if "cpu" not in pod_given:
                f = _factor(cb, float(p.pod.cpu))
                out.append(
                    f"{p.name}: pod.cpu {p.pod.cpu * 1000:g}m (default: handlers run {f:.3g}x "
                    f"their 1-vCPU time{cb_note})"
                )
            if "concurrency" not in pod_given:
                out.append(f"{p.name}: pod.concurrency {p.pod.concurrency} (default)")
        elif p.type == "fargate":
            task_given = p.task.model_fields_set if "task" in given else set()
            if "cpu" not in task_given:
                f = _factor(cb, float(p.task.cpu))
                out.append(
                    f"{p.name}: task.cpu {p.task.cpu:g} vCPU (default: handlers run {f:.3g}x "
                    f"their 1-vCPU time{cb_note})"
                )
            if "startup" not in task_given:
                out.append(f"{p.name}: task.startup {_dist_text(p.task.startup)} (default)")
            if p.spot is not None and "interruptions_per_task_hour" not in p.spot.model_fields_set:
                out.append(
                    f"{p.name}: spot.interruptions_per_task_hour "
                    f"{p.spot.interruptions_per_task_hour:.3g} (default, an assumption)"
                )
    return out


def _dist_text(d: Any) -> str:
    value = getattr(d, "value", None)
    if isinstance(value, int | float):
        return fmt.duration(float(value))
    return str(getattr(d, "dist", d))
