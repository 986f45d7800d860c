"""Terminal output: the summary table (k6/vegeta-like) and a progress bar on long runs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.format import ms as _ms
from sim.format import usd as _usd
from sim.scenario import Scenario


def _month_col(summary: dict[str, Any]) -> str:
    """'$/month (730 h)': the billing month the monthly figures count (scenario `month:`)."""
    hours = {p.get("month_hours") for p in summary["platforms"].values()} - {None}
    return f"$/month ({hours.pop():g} h)" if len(hours) == 1 else "$/month"


def summary_table(summary: dict[str, Any]) -> Table:
    t = Table(
        title=f"{summary['scenario']}  ({summary['replications']} replications, "
        f"{summary['duration_s'] / 3600:.3g} h simulated each)"
    )
    for col in (
        "platform",
        "requests",
        "errors",
        "cold %",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "peak inst",
        _month_col(summary),
        "$/M req",
        "SLO",
    ):
        t.add_column(col, justify="left" if col in ("platform", "SLO") else "right")
    for name, p in summary["platforms"].items():
        lat = p["latency_ms"]
        slo = p.get("slo") or {}
        if slo:
            missed = [k for k, v in slo.items() if not v["met"]]
            slo_txt = "[green]pass[/]" if not missed else "[red]FAIL[/] " + ",".join(missed)
        else:
            slo_txt = "-"
        t.add_row(
            name,
            f"{p['requests']:,}",
            f"{p['error_rate'] * 100:.2f}%",
            f"{p['cold_start_ratio'] * 100:.2f}%",
            _ms(lat.get("p50")),
            _ms(lat.get("p90")),
            _ms(lat.get("p99")),
            _ms(lat.get("p999")),
            _ms(lat.get("max")),
            f"{p['instances']['peak']:,.0f}",
            _usd(p["monthly_cost_usd"]),
            _usd(p["cost_per_million_usd"]),
            slo_txt,
        )
    return t


def print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    # Piped output gets a wide, plain table (a log file should not wrap columns).
    console = Console() if Console().is_terminal else Console(width=200, no_color=True)
    console.print(summary_table(summary))
    console.print(
        f"results: {out_dir}/ (summary.json, requests.csv.gz, timeline.csv"
        f"{', report.html' if (out_dir / 'report.html').exists() else ''})"
    )


@contextlib.contextmanager
def progress_for(scenario: Scenario, enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    if not enabled:
        yield None
        return
    total = scenario.replications * len(scenario.platforms)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(f"simulating {scenario.name}", total=total)
        yield lambda _run: progress.advance(task)
