"""Benchmark: simulated requests per second and peak memory, per platform model.

    python -m sim.bench                 # the 1M-request cases
    python -m sim.bench --large         # also the 50M-request (30-day) cases
    python -m sim.bench --case lambda-1M

Each case runs in a fresh subprocess (so peak RSS is that case's alone) through the real engine:
workload generation, the platform's data plane, the control plane and the statistics, exactly as
`sim run` does for one (replication, platform). The Lambda case is SimFaaS's reference scenario
(Poisson 10 req/s, exponential service mean 1.991 s, cold start +0.253 s, keep-alive 600 s,
100,000 s: about 1M requests).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SIMFAAS = {
    "arrivals": [{"steady": {"rate": "10/s"}}],
    "service": {"duration": {"dist": "exponential", "mean": "1.991s"}, "cpu_bound": 0.0},
}

CASES: dict[str, dict[str, Any]] = {
    "lambda-1M": {
        "duration": "100000s",
        "workload": SIMFAAS,
        "platform": {
            "name": "lambda",
            "type": "lambda",
            "init": "0.253s",
            "sandbox_overhead": 0,
            "keep_alive": "600s",
            "timeout": "900s",
        },
    },
    "wasm-1M": {
        "duration": "100000s",
        "workload": SIMFAAS,
        "platform": {"name": "wasm", "type": "wasm"},
    },
    "kubernetes-1M": {
        "duration": "100000s",
        "workload": SIMFAAS,
        "platform": {
            "name": "k8s",
            "type": "kubernetes",
            "replicas": 30,
            "pod": {"concurrency": 1},
        },
    },
    # 50M requests over 30 days (about 19.3 req/s).
    "lambda-50M": {
        "duration": "30d",
        "workload": {
            "arrivals": [{"steady": {"rate": "50M/month"}}],
            "service": SIMFAAS["service"],
        },
        "platform": {
            "name": "lambda",
            "type": "lambda",
            "init": "0.253s",
            "sandbox_overhead": 0,
            "keep_alive": "600s",
            "timeout": "900s",
        },
    },
    "kubernetes-keda-50M": {
        "duration": "30d",
        "workload": {
            "arrivals": [{"steady": {"rate": "50M/month"}}],
            "service": SIMFAAS["service"],
        },
        "platform": {
            "name": "k8s",
            "type": "kubernetes",
            "pod": {"concurrency": 4},
            "keda": {
                "minReplicaCount": 0,
                "maxReplicaCount": 100,
                "triggers": [{"type": "prometheus", "metadata": {"threshold": "1.5"}}],
            },
        },
    },
}
SMALL = ["lambda-1M", "wasm-1M", "kubernetes-1M"]
LARGE = ["lambda-50M", "kubernetes-keda-50M"]


def run_case(name: str) -> dict[str, Any]:
    from sim.engine import run_one
    from sim.scenario import validate_scenario

    case = CASES[name]
    data = {
        "name": f"bench-{name}",
        "duration": case["duration"],
        "replications": 1,
        "seed": 1,
        "workload": case["workload"],
        "platforms": [case["platform"]],
    }
    sc = validate_scenario(data, file=f"bench:{name}", base_dir=Path.cwd())
    t0 = time.perf_counter()
    run = run_one(sc, sc.platforms[0].name, 0, Path.cwd())
    wall = time.perf_counter() - t0
    n = run.stats.requests_all
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "case": name,
        "requests": n,
        "wall_s": wall,
        "requests_per_s": n / wall,
        "peak_rss_mb": peak_mb,
        "cold_starts": run.stats.cold_starts,
        "p99_ms": run.stats.latency.get("p99"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--large", action="store_true", help="also the 50M-request cases")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child)))
        return
    names = args.case or (SMALL + (LARGE if args.large else []))
    results = []
    for name in names:
        proc = subprocess.run(
            [sys.executable, "-m", "sim.bench", "--child", name], capture_output=True, text=True
        )
        if proc.returncode != 0:
            line = (proc.stderr.strip().splitlines() or ["?"])[-1]
            results.append({"case": name, "error": line})
            print(f"{name:22s} FAILED: {line}", file=sys.stderr)
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        if not args.json:
            print(
                f"{name:22s} {res['requests']:>11,d} requests  {res['wall_s']:7.2f} s  "
                f"{res['requests_per_s']:>10,.0f} req/s  peak {res['peak_rss_mb']:6.0f} MB"
            )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
