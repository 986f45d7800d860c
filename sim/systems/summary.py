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
    queues: dict[str, Any] = {}
    for name in stats[0]["queues"]:
        per = [s["queues"][name] for s in stats]
        queues[name] = {
            "consumer": per[0]["consumer"],
            **{k: int(sum(p[k] for p in per)) for k in ("sent", "received", "deleted", "dlq")},
            "time_in_queue_ms": _mean_dict([p["time_in_queue_ms"] for p in per]),
            "depth_max": max(p["depth_max"] for p in per),
            "oldest_age_max_s": max(p["oldest_age_max_s"] for p in per),
            "monthly_cost_usd": _mean([p["monthly_cost_usd"] for p in per]),
            "monthly_breakdown_usd": _mean_dict([p["monthly_breakdown_usd"] for p in per]),
            "timeline_replication_0": per[0]["timeline"],
        }
        if per[0].get("type") == "kafka":  # a Kafka topic's own figures (sim.systems.kafka)
            queues[name].update(
                type="kafka",
                partitions=per[0]["partitions"],
                processed=int(sum(p["processed"] for p in per)),
                lag_max=max(p["lag_max"] for p in per),
                lag_max_by_partition=np.max(
                    [p["lag_max_by_partition"] for p in per], axis=0
                ).tolist(),
                rebalances=int(sum(p["rebalances"] for p in per)),
                consumers_peak=max(p["consumers_peak"] for p in per),
            )
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
