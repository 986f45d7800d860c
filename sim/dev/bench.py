"""Benchmark: simulated requests per second and peak memory, per platform model.

    python -m sim.dev.bench                 # the 1M-request cases
    python -m sim.dev.bench --large         # also the 50M-request (30-day) cases
    python -m sim.dev.bench --case lambda-1M
    python -m sim.dev.bench --before REV    # the same cases on git revision REV too, side by side

Each case runs in a fresh subprocess (so peak RSS is that case's alone) through the real engine:
workload generation, the platform's data plane, the control plane and the statistics, exactly as
`sim run` does for one (replication, platform). The Lambda case is SimFaaS's reference scenario
(Poisson 10 req/s, exponential service mean 1.991 s, cold start +0.253 s, keep-alive 600 s,
100,000 s: about 1M requests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIMFAAS = {
    "arrivals": [{"steady": {"rate": "10/s"}}],
    "service": {"duration": {"dist": "exponential", "mean": "1.991s"}, "cpu_bound": 0.0},
}

# 50M requests over 30 days (about 19.3 req/s), the same service as SIMFAAS.
MONTH_50M = {"arrivals": [{"steady": {"rate": "50M/month"}}], "service": SIMFAAS["service"]}

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
    "lambda-50M": {
        "duration": "30d",
        "workload": MONTH_50M,
        "platform": {
            "name": "lambda",
            "type": "lambda",
            "init": "0.253s",
            "sandbox_overhead": 0,
            "keep_alive": "600s",
            "timeout": "900s",
        },
    },
    "wasm-50M": {
        "duration": "30d",
        "workload": MONTH_50M,
        "platform": {"name": "wasm", "type": "wasm"},
    },
    "kubernetes-keda-50M": {
        "duration": "30d",
        "workload": MONTH_50M,
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
LARGE = ["lambda-50M", "wasm-50M", "kubernetes-keda-50M"]


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


def _run_child(name: str, tree: Path | None) -> dict[str, Any]:
    """Run one case in a fresh interpreter, against this tree or a checked-out revision."""
    env = dict(os.environ)
    if tree is not None:
        # The case definition is this file's; the simulator imported is the old tree's.
        env["PYTHONPATH"] = str(tree)
        code = (
            "import json, sys; "
            # an editable install maps `sim` to this tree whatever sys.path says: drop it
            "sys.meta_path[:] = [f for f in sys.meta_path "
            "if '__editable__' not in getattr(type(f), '__module__', '')]; "
            f"sys.path.insert(0, {str(tree)!r}); "
            f"sys.path.insert(1, {str(Path(__file__).resolve().parents[2])!r}); "
            "import importlib.util as u; "
            f"spec = u.spec_from_file_location('benchcases', {__file__!r}); "
            "m = u.module_from_spec(spec); spec.loader.exec_module(m); "
            f"print(json.dumps(m.run_case({name!r})))"
        )
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "sim.dev.bench", "--child", name]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=str(tree) if tree else None
    )
    if proc.returncode != 0:
        line = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"case": name, "error": line}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _line(label: str, res: dict[str, Any]) -> str:
    if "error" in res:
        return f"{label:30s} n/a ({res['error'][:60]})"
    return (
        f"{label:30s} {res['requests']:>11,d} requests  {res['wall_s']:7.2f} s  "
        f"{res['requests_per_s']:>10,.0f} req/s  peak {res['peak_rss_mb']:6.0f} MB"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--large", action="store_true", help="also the 50M-request cases")
    ap.add_argument("--before", metavar="REV", help="also run each case on git revision REV")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child)))
        return
    names = args.case or (SMALL + (LARGE if args.large else []))
    results = []
    with contextlib.ExitStack() as stack:
        old_tree = stack.enter_context(_worktree(args.before)) if args.before else None
        for name in names:
            pairs = [("after", None)] + ([("before " + args.before, old_tree)] if old_tree else [])
            for label, tree in reversed(pairs) if old_tree else pairs:
                res = _run_child(name, tree)
                res["tree"] = label if old_tree else "current"
                results.append(res)
                if not args.json:
                    tag = f"{name} ({label})" if old_tree else name
                    print(_line(tag, res), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


@contextlib.contextmanager
def _worktree(rev: str):
    """A temporary checkout of `rev` (git worktree), removed afterwards."""
    root = Path(__file__).resolve().parents[2]
    tmp = Path(tempfile.mkdtemp(prefix="sim-bench-"))
    dest = tmp / "tree"
    proc = subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", str(dest), rev],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"bench: cannot check out {rev!r}: {proc.stderr.strip()}")
    try:
        yield dest
    finally:
        subprocess.run(
            ["git", "-C", str(root), "worktree", "remove", "--force", str(dest)],
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
