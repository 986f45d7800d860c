"""Terminal output of `sim run` / `sim compare`: the decision on top, the defaults that shaped
it, then the summary (k6/vegeta-like), and a progress bar on long runs.

The summary never cuts a number. It takes the first layout that fits the terminal:
one wide table; two narrower tables (counts and cost, then latency); metrics down the side with
the platforms across (in groups that fit); a vertical list per platform (k6-like), which fits
any terminal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim import format as fmt
from sim.cli.common import fits as _fits
from sim.scenario import Scenario

LATENCY_COLS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999"), ("max", "max"))
_SLO_LABEL = {"p999": "p99.9"}


def _month_col(summary: dict[str, Any]) -> str:
    """'$/month (730 h)': the billing month the monthly figures count (scenario `month:`)."""
    hours = {p.get("month_hours") for p in summary["platforms"].values()} - {None}
    return f"$/month ({hours.pop():g} h)" if len(hours) == 1 else "$/month"


def _slo_cell(p: dict[str, Any]) -> str:
    slo = p.get("slo") or {}
    if not slo:
        return "-"
    missed = [_SLO_LABEL.get(k, k) for k, v in slo.items() if not v["met"]]
    return "[green]pass[/]" if not missed else "[red]FAIL[/] " + ",".join(missed)


def _has_ops(summary: dict[str, Any]) -> bool:
    return any((p.get("operating_monthly_usd") or 0) > 0 for p in summary["platforms"].values())


def _cells(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column headers and one row of formatted cells per platform (shared by every layout)."""
    ops = _has_ops(summary)
    head = ["platform", "requests", "errors", "cold %", *(h for h, _ in LATENCY_COLS)]
    head += ["peak inst", _month_col(summary), *(["ops $/month"] if ops else []), "$/M req", "SLO"]
    rows = []
    for name, p in summary["platforms"].items():
        lat = p["latency_ms"]
        row = [
            name,
            fmt.count(p["requests"]),
            fmt.pct(p["error_rate"]),
            fmt.pct(p["cold_start_ratio"]),
            *(fmt.ms(lat.get(k)) for _, k in LATENCY_COLS),
            fmt.count(p["instances"]["peak"]),
            fmt.usd(p["monthly_cost_usd"]),
            *([fmt.usd(p.get("operating_monthly_usd") or 0.0)] if ops else []),
            fmt.usd(p["cost_per_million_usd"]),
            _slo_cell(p),
        ]
        rows.append(row)
    return head, rows


def _title(summary: dict[str, Any]) -> str:
    return (
        f"{summary['scenario']}  ({summary['replications']} replications, "
        f"{fmt.duration(summary['duration_s'])} simulated each)"
    )


def _table(head: list[str], rows: list[list[str]], cols: list[int], title: str | None) -> Table:
    t = Table(title=title)
    for i in cols:
        t.add_column(head[i], justify="left" if head[i] in ("platform", "SLO") else "right")
    for row in rows:
        t.add_row(*(row[i] for i in cols))
    return t


def summary_table(summary: dict[str, Any]) -> Table:
    """Every column in one table (the wide layout; the report's table has the same cells)."""
    head, rows = _cells(summary)
    return _table(head, rows, list(range(len(head))), _title(summary))


def _transposed(head: list[str], rows: list[list[str]], title: str | None) -> Table:
    t = Table(title=title)
    t.add_column("")
    for row in rows:
        t.add_column(row[0], justify="right")
    for i in range(1, len(head)):
        t.add_row(head[i], *(row[i] for row in rows))
    return t


def _vertical(head: list[str], rows: list[list[str]]) -> list[RenderableType]:
    out: list[RenderableType] = []
    for row in rows:
        g = Table.grid(padding=(0, 2))
        g.add_column()
        g.add_column(justify="right")
        for i in range(1, len(head)):
            g.add_row(f"  {head[i]}", row[i])
        out.extend([f"[bold]{row[0]}[/]", g])
    return out


def summary_blocks(summary: dict[str, Any], console: Console) -> list[RenderableType]:
    """The first layout that fits console.width without cutting a cell (module docstring)."""
    head, rows = _cells(summary)
    title = _title(summary)
    full = _table(head, rows, list(range(len(head))), title)
    if _fits(console, full):
        return [full]
    lat = [head.index(h) for h, _ in LATENCY_COLS]
    rest = [i for i in range(len(head)) if i not in lat]
    two = [_table(head, rows, rest, title), _table(head, rows, [0, *lat], "latency")]
    if all(_fits(console, t) for t in two):
        return [*two]
    # metrics down the side: as many platforms per table as fit
    groups: list[list[list[str]]] = []
    for row in rows:
        if groups and _fits(console, _transposed(head, [*groups[-1], row], title)):
            groups[-1].append(row)
        else:
            groups.append([row])
    tables = [_transposed(head, g, title if i == 0 else None) for i, g in enumerate(groups)]
    if all(_fits(console, t) for t in tables):
        return [*tables]
    return [f"[bold]{title}[/]", *_vertical(head, rows)]


def header_lines(summary: dict[str, Any]) -> list[str]:
    """The decision, then the defaults that shaped it, then footnotes on thin figures."""
    lines = []
    v = summary.get("verdict") or {}
    for i, text in enumerate(v.get("text") or []):
        style = "bold green" if v.get("status") == "pass" and i == 0 else None
        if v.get("status") == "none_pass" and i == 0:
            style = "bold red"
        lines.append(f"[{style}]{_esc(text)}[/]" if style else _esc(text))
    used = summary.get("defaults_used") or []
    if used:
        lines.append("defaults that shaped this result (not set in the scenario):")
        lines.extend(f"  {_esc(u)}" for u in used)
    return lines


def footnotes(summary: dict[str, Any]) -> list[str]:
    """A cost per million from a handful of requests says little (fixed costs over a few
    requests): name the platforms and the count."""
    few = {
        name: p
        for name, p in summary["platforms"].items()
        if (p.get("requests_per_replication") or 0) < fmt.FEW_REQUESTS
        and p.get("cost_per_million_usd") is not None
    }
    if not few:
        return []
    n = min(p["requests_per_replication"] for p in few.values())
    which = ", ".join(f"{_esc(k)} ({fmt.usd(p['cost_per_million_usd'])})" for k, p in few.items())
    return [
        f"note: $/M req of {which} comes from only {n:,.0f} requests per run: "
        "compare $/month instead"
    ]


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def make_console() -> Console:
    # Piped output gets a wide, plain table (a log file should not wrap columns).
    return Console() if Console().is_terminal else Console(width=200, no_color=True)


def print_summary(summary: dict[str, Any], out_dir: Path, console: Console | None = None) -> None:
    console = console or make_console()
    print_tables(summary, console)
    console.print(results_line(out_dir), highlight=False)


def print_tables(summary: dict[str, Any], console: Console) -> None:
    """The decision, the defaults used, the summary in the layout that fits, the footnotes."""
    for line in header_lines(summary):
        console.print(line, highlight=False)
    for block in summary_blocks(summary, console):
        console.print(block)
    for line in footnotes(summary):
        console.print(line, highlight=False)


def results_line(out_dir: Path) -> str:
    """`results: DIR/ (every file in it)` in the order people open them; sim's own marker file
    (.sim-output.json, which lets a later run replace the folder) is bookkeeping, not a result."""
    order = ["summary.json", "report.html", "requests.csv.gz", "timeline.csv", "decisions.csv"]
    present = sorted(
        (f.name for f in out_dir.iterdir() if f.is_file() and not f.name.startswith("."))
        if out_dir.is_dir()
        else [],
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    return f"results: {out_dir}/ ({', '.join(present)})"


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
