"""summary.json's `system` section: one placement's per-service and per-queue figures, the mean
over replications (counts summed), next to its end-to-end figures under `platforms`.

95% CIs are sim.statistics' Student-t interval across replications (passed in as `interval`: the
statistics room sits above this one); with one replication a service's latency CI is its run's
order-statistic interval, as for platforms.

Queues are read generically, so every queue type (SQS, Kafka topics, EventBridge buses) reports the
same way from a dict shaped like SQS's: integer counters (`sent`, `received`, `dlq`, ...) are
summed, `*_max*` figures take the maximum, other numbers and number dicts (`time_in_queue_ms`,
`monthly_breakdown_usd`) the mean, `timeline` is kept from replication 0; a missing key is left out.
The edges out of a queue: `consumers` ({service: messages}, e.g. a bus's rule targets) or
`consumer` with `received` (else `delivered`, else `sent`); `dlq` messages to `dlq:<queue>`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Interval = Callable[[Sequence[float | None]], list[float] | None]


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _mean_dict(dicts: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = sorted({k for d in dicts for k in d})
    return {k: _mean([d.get(k) for d in dicts]) for k in keys}


def _ci_dict(
    dicts: list[dict[str, Any]], interval: Interval | None, one: dict[str, Any] | None = None
) -> dict[str, list[float] | None]:
    """95% CI of each key but `max` across replications; `one`: the CIs of a single run."""
    keys = [k for k in sorted({k for d in dicts for k in d}) if k != "max"]
    if len(dicts) < 2 or interval is None:
        return {k: (one or {}).get(k) for k in keys}
    return {k: interval([d.get(k) for d in dicts]) for k in keys}


def _is_count(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


# Queue figures that describe the queue itself (the same in every replication): kept as given.
_SETTINGS = ("partitions",)


def _queue(per: list[dict[str, Any]], interval: Interval | None) -> dict[str, Any]:
    """One queue's figures over replications, whatever its type reports: settings and flags as
    given, maxima and peaks (numbers, or lists of numbers element by element) the largest,
    counts summed, other numbers averaged (percentile dicts with their CI)."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for p in per for k in p):
        vals = [p[key] for p in per if key in p]
        if key == "timeline":
            out["timeline_replication_0"] = vals[0]
        elif key in _SETTINGS or all(isinstance(v, bool) for v in vals):
            out[key] = vals[0]
        elif ("max" in key or "peak" in key) and all(isinstance(v, list) for v in vals):
            out[key] = [max(col) for col in zip(*vals, strict=True)]
        elif ("max" in key or "peak" in key) and all(isinstance(v, int | float) for v in vals):
            out[key] = max(vals)
        elif all(_is_count(v) for v in vals):
            out[key] = int(sum(vals))
        elif all(isinstance(v, int | float) for v in vals):
            out[key] = _mean(vals)
        elif all(isinstance(v, dict) for v in vals) and all(
            isinstance(x, int | float) or x is None for v in vals for x in v.values()
        ):
            out[key] = _mean_dict(vals)
            if key.endswith("_ms"):
                out[f"{key}_ci95"] = _ci_dict(vals, interval)
        else:  # names (consumer, type) and anything else: as replication 0 has it
            out[key] = vals[0]
    return out


def _queue_edges(name: str, q: dict[str, Any]) -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    consumers = q.get("consumers")
    if not isinstance(consumers, dict):
        consumer = q.get("consumer")
        n = next((q[k] for k in ("received", "delivered", "sent") if k in q), None)
        consumers = {consumer: n} if consumer is not None and n is not None else {}
    for to, n in consumers.items():
        edges.append({"from": f"queue:{name}", "to": str(to), "kind": "deliver", "count": n})
    if q.get("dlq"):
        edges.append(
            {"from": f"queue:{name}", "to": f"dlq:{name}", "kind": "dlq", "count": q["dlq"]}
        )
    return edges


def _flows(stats: list[dict[str, Any]], interval: Interval | None) -> list[dict[str, Any]]:
    """Per edge: messages or requests summed over replications, and per second of the window
    (mean over replications, with its 95% CI)."""
    per_rep: list[dict[tuple[str, str, str], dict[str, Any]]] = []
    order: dict[tuple[str, str, str], None] = {}
    for s in stats:
        edges = list(s.get("flows") or [])
        for name, q in (s.get("queues") or {}).items():
            edges += _queue_edges(name, q)
        rep = {}
        for e in edges:
            key = (e["from"], e["to"], e["kind"])
            order[key] = None
            rep[key] = e
        per_rep.append(rep)
    out = []
    for key in order:
        window = [float(s.get("window_s") or 0.0) for s in stats]
        rows = [rep.get(key, {}) for rep in per_rep]
        rates = [
            float(r.get("count") or 0) / w if w > 0 else None
            for r, w in zip(rows, window, strict=True)
        ]
        edge: dict[str, Any] = {
            "from": key[0],
            "to": key[1],
            "kind": key[2],
            "count": int(sum(int(r.get("count") or 0) for r in rows)),
            "per_s": _mean(rates),
            "per_s_ci95": interval(rates) if interval is not None else None,
        }
        if any("ok" in r for r in rows):
            ok = [
                float(r.get("ok") or 0) / w if w > 0 else None
                for r, w in zip(rows, window, strict=True)
            ]
            edge["ok"] = int(sum(int(r.get("ok") or 0) for r in rows))
            edge["ok_per_s"] = _mean(ok)
        out.append(edge)
    return out


def _timeouts(per: list[dict[str, Any]]) -> dict[str, int]:
    """Function and client timeouts summed (a figure without them counts none)."""
    return {
        k: int(sum(p.get("timeouts", {}).get(k, 0) for p in per)) for k in ("function", "client")
    }


def summarize_system(runs: list[Any], interval: Interval | None = None) -> dict[str, Any]:
    stats = [r.extra["system"] for r in sorted(runs, key=lambda r: r.replication)]
    services: dict[str, Any] = {}
    for name in stats[0]["services"]:
        per = [s["services"][name] for s in stats]
        outcomes = {k: sum(p["outcomes"].get(k, 0) for p in per) for k in per[0]["outcomes"]}
        services[name] = {
            "platform": per[0]["platform"],
            "type": per[0]["type"],
            "requests": int(sum(p["requests"] for p in per)),
            "attempts": int(sum(p["attempts"] for p in per)),
            "outcomes": outcomes,
            "latency_ms": _mean_dict([p["latency_ms"] for p in per]),
            "latency_ms_ci95": _ci_dict(
                [p["latency_ms"] for p in per], interval, per[0].get("latency_ci")
            ),
            "cold_starts": int(sum(p["cold_starts"] for p in per)),
            "throttles": int(sum(p["throttles"] for p in per)),
            "timeouts": _timeouts(per),
            "instances_peak": max(p["instances_peak"] for p in per),
            "monthly_cost_usd": _mean([p["monthly_cost_usd"] for p in per]),
            "monthly_breakdown_usd": _mean_dict([p["monthly_breakdown_usd"] for p in per]),
            "operating_monthly_usd": _mean([p.get("operating_monthly_usd", 0.0) for p in per]),
        }
        if "async" in per[0]:  # a Lambda function's asynchronous queue: counts summed, peak max
            services[name]["async"] = {
                k: max(p["async"][k] for p in per)
                if k == "queued_max"
                else int(sum(p["async"][k] for p in per))
                for k in per[0]["async"]
            }
    queues: dict[str, Any] = {}
    for name in dict.fromkeys(n for s in stats for n in s.get("queues") or {}):
        per = [s["queues"][name] for s in stats if name in s["queues"]]
        queues[name] = _queue(per, interval)
        if "rules" in per[0]:  # a bus: per rule, counts summed over replications
            queues[name]["rules"] = {
                r: {"target": v["target"]}
                | {k: int(sum(p["rules"][r][k] for p in per)) for k in v if k != "target"}
                for r, v in per[0]["rules"].items()
            }
    comp = [s["async_completion_ms"] for s in stats]
    nodes = {  # a simulated node pool per Kubernetes platform (sim.systems.nodes)
        name: {
            "launched": _mean([s["nodes"][name]["launched"] for s in stats]),
            "nodes_peak": max(s["nodes"][name]["nodes_peak"] for s in stats),
            "node_hours": _mean([s["nodes"][name]["node_hours"] for s in stats]),
            "pods_pending": int(sum(s["nodes"][name]["pods_pending"] for s in stats)),
            "pending_max_s": max(s["nodes"][name]["pending_max_s"] for s in stats),
        }
        for name in stats[0].get("nodes") or {}
    }
    return {
        "services": services,
        # per placement: every service's function and client timeouts (sim.systems.engine)
        "timeouts": _timeouts(list(services.values())),
        "queues": queues,
        **({"nodes": nodes} if nodes else {}),
        "flows": _flows(stats, interval),
        "async_completion_ms": _mean_dict(comp),
        "async_completion_ms_ci95": _ci_dict(comp, interval),
        "async_completed": int(sum(s["async_completed"] for s in stats)),
        "monthly_cost_by_service_usd": {
            **{n: s["monthly_cost_usd"] for n, s in services.items()},
            **{f"queue:{n}": q.get("monthly_cost_usd") for n, q in queues.items()},
        },
        # each platform's ops once per placement, shared by its services (apart from the bill)
        "operating_cost_by_service_usd": {
            n: s.get("operating_monthly_usd", 0.0) for n, s in services.items()
        },
    }


def queue_route(q: dict[str, Any]) -> str:
    """ "sqs -> emails", "eventbridge -> thumbnails, email-jobs": a queue's type and where its
    messages go (a bus: its rules' targets), for the tables of `sim run` and the README."""
    to = q.get("consumer") or ", ".join(
        dict.fromkeys(r["target"] for r in (q.get("rules") or {}).values())
    )
    return f"{q.get('type', 'sqs')} -> {to}"
