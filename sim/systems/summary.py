"""summary.json's `system` section: one placement's per-service and per-queue figures, the mean
over replications (counts summed), next to its end-to-end figures under `platforms`."""

from __future__ import annotations

from typing import Any

import numpy as np


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _mean_dict(dicts: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = sorted({k for d in dicts for k in d})
    return {k: _mean([d.get(k) for d in dicts]) for k in keys}


def summarize_system(runs: list[Any]) -> dict[str, Any]:
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
            "cold_starts": int(sum(p["cold_starts"] for p in per)),
            "throttles": int(sum(p["throttles"] for p in per)),
            "instances_peak": max(p["instances_peak"] for p in per),
            "monthly_cost_usd": _mean([p["monthly_cost_usd"] for p in per]),
            "monthly_breakdown_usd": _mean_dict([p["monthly_breakdown_usd"] for p in per]),
        }
        if "async" in per[0]:  # a Lambda function's asynchronous queue: counts summed, peak max
            services[name]["async"] = {
                k: max(p["async"][k] for p in per)
                if k == "queued_max"
                else int(sum(p["async"][k] for p in per))
                for k in per[0]["async"]
            }
    queues: dict[str, Any] = {}
    for name in stats[0]["queues"]:
        per = [s["queues"][name] for s in stats]
        first = per[0]
        queues[name] = {
            **{k: first[k] for k in ("type", "consumer") if k in first},
            # the counts (SQS: sent, received, deleted, dlq; a bus: also matched, delivered, ...)
            **{k: int(sum(p[k] for p in per)) for k, v in first.items() if type(v) is int},
            "time_in_queue_ms": _mean_dict([p["time_in_queue_ms"] for p in per]),
            **{k: max(p[k] for p in per) for k in ("depth_max", "oldest_age_max_s") if k in first},
            "monthly_cost_usd": _mean([p["monthly_cost_usd"] for p in per]),
            "monthly_breakdown_usd": _mean_dict([p["monthly_breakdown_usd"] for p in per]),
            "timeline_replication_0": per[0]["timeline"],
        }
        if "rules" in first:  # a bus: per rule, counts summed
            queues[name]["rules"] = {
                r: {"target": v["target"]}
                | {k: int(sum(p["rules"][r][k] for p in per)) for k in v if k != "target"}
                for r, v in first["rules"].items()
            }
    return {
        "services": services,
        "queues": queues,
        "async_completion_ms": _mean_dict([s["async_completion_ms"] for s in stats]),
        "async_completed": int(sum(s["async_completed"] for s in stats)),
        "monthly_cost_by_service_usd": {
            **{n: s["monthly_cost_usd"] for n, s in services.items()},
            **{f"queue:{n}": q["monthly_cost_usd"] for n, q in queues.items()},
        },
    }
