"""`sim validate`: the engine against closed forms and hand-computed bills (sim.validation.cases).

Exit status: 0 every check passed; 1 at least one check failed; 2 bad usage (unknown case).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from sim.cli.common import workers_option

if TYPE_CHECKING:  # the cases import scipy: only when the command runs
    from sim.validation.cases import Case, Check, Report

EXIT_FAILED = 1


def _num(x: float, unit: str) -> str:
    if unit == "USD":
        return f"${x:,.7f}"
    if unit == "s":
        return "0" if x == 0 else f"{x:.1e} s"
    if unit == "ms":
        return f"{x:.5g} ms"
    return f"{x:.6g}"


def _interval(c: Check) -> str:
    if c.ci is None:
        return "-"
    if c.method == "exact":
        if c.tolerance == 0:
            return "exact"
        return f"± ${c.tolerance:.1e}" if c.unit == "USD" else f"± {_num(c.tolerance, c.unit)}"
    lo, hi = c.ci
    return f"[{_num(lo, c.unit)}, {_num(hi, c.unit)}]"


def report_table(report: Report) -> Table:
    st = report.settings
    t = Table(
        title=f"sim validate ({'full' if st.full else 'fast subset'}; seed {st.seed}; "
        f"{st.reps} replications per queueing case)"
    )
    for col in ("case", "quantity", "expected", "simulated", "95% CI", "result"):
        t.add_column(col, justify="left" if col in ("case", "quantity", "result") else "right")
    for c in report.checks:
        t.add_row(
            c.case,
            c.quantity,
            _num(c.expected, c.unit),
            _num(c.simulated, c.unit),
            _interval(c),
            "[green]pass[/]" if c.passed else "[red]FAIL[/]",
        )
    return t


def _footer(report: Report) -> list[str]:
    from sim.validation.cases import FAMILY_ALPHA

    stat = [c for c in report.checks if c.method != "exact"]
    failed = [c for c in report.checks if not c.passed]
    lines = []
    if stat:
        level = stat[0].level or 0.0
        lines.append(
            f"95% CI: simultaneous over the {len(stat)} statistical checks (each interval at "
            f"{level:.2%}, Bonferroni), so a correct model passes the whole table for >= "
            f"{1 - FAMILY_ALPHA:.0%} of seeds; 'exact' rows allow float rounding only."
        )
    walls = ", ".join(f"{k} {v:.1f}s" for k, v in report.wall_s.items())
    lines.append(f"wall time {sum(report.wall_s.values()):.1f}s ({walls})")
    verdict = (
        f"all {len(report.checks)} checks passed"
        if not failed
        else f"{len(failed)} of {len(report.checks)} checks FAILED: "
        + "; ".join(f"{c.case} {c.quantity}" for c in failed)
    )
    lines.append(verdict)
    return lines


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    err = Console(stderr=True)

    def done(case: Case, wall: float) -> None:
        err.print(f"[dim]validate: {case.name} done in {wall:.1f}s[/]")

    return done


@click.command()
@click.option("--full", is_flag=True, help="more replications, longer runs, more loads (minutes)")
@click.option(
    "--case",
    "cases",
    multiple=True,
    metavar="NAME",
    help="run only this case (repeatable; a prefix selects several, e.g. mmc or cost)",
)
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
@click.option("--seed", type=int, help="base seed (default 1)")
@workers_option
@click.option("--list", "list_cases", is_flag=True, help="list the cases and exit")
def validate(
    full: bool,
    cases: tuple[str, ...],
    as_json: bool,
    seed: int | None,
    workers: int | None,
    list_cases: bool,
) -> None:
    """Check the engine against closed-form results and hand-computed bills.

    Prints case, quantity, expected (closed form), simulated, 95% CI and pass/fail. The default
    is a fast subset (under a minute); --full adds loads, replications and run length.
    Exit status: 0 all checks passed, 1 a check failed, 2 bad usage.
    """
    from sim.validation.cases import CASES, DEFAULT_SEED, Settings
    from sim.validation.cases import validate as run_validation

    if list_cases:
        for c in CASES:
            click.echo(f"{c.name:14s} {'' if c.fast else '(--full) '}{c.title}")
        return
    if seed is None:
        seed = DEFAULT_SEED
    if seed < 0:
        raise click.BadParameter("expected a seed >= 0", param_hint="--seed")
    settings = Settings(full=full, seed=seed, workers=workers)
    show = not as_json and sys.stderr.isatty()
    report = run_validation(cases, settings, on_case=_progress(show))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        console = Console() if Console().is_terminal else Console(width=200, no_color=True)
        console.print(report_table(report))
        for line in _footer(report):
            console.print(line, highlight=False)
    if not report.passed:
        sys.exit(EXIT_FAILED)
