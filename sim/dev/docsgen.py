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
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    print(f"wrote {write_schema(root).relative_to(root)}", file=sys.stderr)
    if args.schema:
        return
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table(root)}\n{END}"
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
