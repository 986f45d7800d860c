"""Regenerate the README's comparison table from the bundled story scenarios, and the shipped
JSON Schema of the scenario format (sim/data/schema.json, what `sim schema` prints).

    python -m sim.dev.docsgen            # the schema, then the stories: README.md between markers
    python -m sim.dev.docsgen --schema   # only sim/data/schema.json (seconds)

The table is produced by real runs (same seeds as the files), never typed by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sim.scenario import load_scenario
from sim.simulate import run_scenario
from sim.systems.summary import queue_route

STORIES = [
    "small-api",
    "busy-api",
    "marketing-spike",
    "iot-bursts",
    "ecommerce-diurnal",
    "latency-sensitive",
    "dev-scale-to-zero",
    "steady-api-levels",
    "serverless-containers",
]
BEGIN, END = "<!-- comparison-table:begin -->", "<!-- comparison-table:end -->"
# The README's Systems sample (issue 17): the bundled system story, per placement and service.
SYSTEM_STORY = "system-hybrid-orders"
SYS_BEGIN, SYS_END = "<!-- system-table:begin -->", "<!-- system-table:end -->"


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:.1f} s" if x >= 10_000 else f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"


def table(root: Path) -> str:
    lines = [
        "| scenario | platform | requests per run | p50 | p99 | p99.9 | cold % | errors | $/month |",  # noqa: E501
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for story in STORIES:
        path = root / "scenarios" / f"{story}.yaml"
        sc = load_scenario(path)
        summary, _ = run_scenario(sc, path.parent)
        for name, p in summary["platforms"].items():
            lat = p["latency_ms"]
            lines.append(
                f"| {story} | {name} | {p['requests_per_replication']:,.0f} | {_ms(lat.get('p50'))}"
                f" | {_ms(lat.get('p99'))} | {_ms(lat.get('p999'))}"
                f" | {p['cold_start_ratio'] * 100:.2f} | {p['error_rate'] * 100:.2f}%"
                f" | ${p['monthly_cost_usd']:,.2f} |"
            )
        print(f"ran {story}", file=sys.stderr)
    return "\n".join(lines)


def _ci(band: list[float] | None) -> str:
    return f" ({_ms(band[0])} - {_ms(band[1])})" if band and None not in band else ""


def system_table(root: Path) -> str:
    """The bundled system story per placement: the entry request end to end, each service and
    queue (rate in, p50, p99 with its 95% CI, cold starts, $/month), the async completion."""
    path = root / "scenarios" / f"{SYSTEM_STORY}.yaml"
    summary, _ = run_scenario(load_scenario(path), path.parent)
    lines = [
        "| placement | service / queue | on | in | p50 | p99 (95% CI) | cold | $/month |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, sysx in summary["system"].items():
        p = summary["platforms"][name]
        rate: dict[str, float] = {}
        for f in sysx["flows"]:
            rate[f["to"]] = rate.get(f["to"], 0.0) + (f["per_s"] or 0.0)
        lat, ci = p["latency_ms"], p["latency_ms_ci95"]
        entry = sum(f["per_s"] or 0.0 for f in sysx["flows"] if f["kind"] == "entry")
        lines.append(
            f"| **{name}** | end to end (entry request) | | {entry:.1f}/s | {_ms(lat.get('p50'))}"
            f" | {_ms(lat.get('p99'))}{_ci(ci.get('p99'))} | {p['cold_starts']:,}"
            f" | **${p['monthly_cost_usd']:,.2f}** |"
        )
        for svc, v in sysx["services"].items():
            lat, ci = v["latency_ms"], v["latency_ms_ci95"]
            lines.append(
                f"| | {svc} | {v['platform']} ({v['type']}) | {rate.get(svc, 0.0):.1f}/s"
                f" | {_ms(lat.get('p50'))} | {_ms(lat.get('p99'))}{_ci(ci.get('p99'))}"
                f" | {v['cold_starts']:,} | ${v['monthly_cost_usd']:,.2f} |"
            )
        for q, v in sysx["queues"].items():
            w, ci = v.get("time_in_queue_ms") or {}, v.get("time_in_queue_ms_ci95") or {}
            dlq = f", DLQ {v['dlq']:,}" if v.get("dlq") else ""
            lines.append(
                f"| | queue {q} | {queue_route(v)}{dlq}"
                f" | {rate.get(f'queue:{q}', 0.0):.1f}/s | {_ms(w.get('p50'))}"
                f" | {_ms(w.get('p99'))}{_ci(ci.get('p99'))} | | ${v['monthly_cost_usd']:,.2f} |"
            )
        a, ci = sysx["async_completion_ms"], sysx["async_completion_ms_ci95"]
        lines.append(
            f"| | async completion | | | {_ms(a.get('p50'))} | {_ms(a.get('p99'))}"
            f"{_ci(ci.get('p99'))} | | |"
        )
    print(f"ran {SYSTEM_STORY}", file=sys.stderr)
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, body: str) -> str:
    return re.sub(
        re.escape(begin) + ".*?" + re.escape(end),
        lambda _: f"{begin}\n{body}\n{end}",
        text,
        flags=re.S,
    )


def schema_text() -> str:
    """What sim/data/schema.json holds: the live schema as `sim schema` prints it."""
    import json

    from sim.scenario import json_schema

    return json.dumps(json_schema(), indent=2) + "\n"


def write_schema(root: Path) -> Path:
    path = root / "sim" / "data" / "schema.json"
    path.write_text(schema_text(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m sim.dev.docsgen",
        description="Run the bundled story scenarios (their own seeds and durations; minutes) "
        "and rewrite README.md's comparison table between the "
        f"{BEGIN} / {END} markers; first regenerate sim/data/schema.json.",
    )
    parser.add_argument(
        "--schema", action="store_true", help="only regenerate sim/data/schema.json (seconds)"
    )
    parser.add_argument(
        "--system",
        action="store_true",
        help=f"only the Systems sample ({SYS_BEGIN} / {SYS_END}, from {SYSTEM_STORY}.yaml)",
    )
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    print(f"wrote {write_schema(root).relative_to(root)}", file=sys.stderr)
    if args.schema:
        return
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    if not args.system:
        text = _replace(text, BEGIN, END, table(root))
    text = _replace(text, SYS_BEGIN, SYS_END, system_table(root))
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
