"""`sim run SCENARIO`: simulate every platform, print the summary, write the results folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sim.cli.common import EXIT_SLO, overrides, save_results


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="results folder (default results/<scenario name>/)",
)
@click.option("--seed", type=int, help="override the scenario's seed")
@click.option("--replications", type=click.IntRange(1, 1000), help="override replications")
@click.option("--duration", help="override the simulated duration, e.g. 1h")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="override any scenario key by dotted path (repeatable)",
)
@click.option("--json", "as_json", is_flag=True, help="print summary.json instead of the table")
@click.option("--check", is_flag=True, help="exit 1 if any platform misses an SLO")
@click.option("--workers", type=click.IntRange(1, 256), help="parallel processes (default: auto)")
@click.option("--force", is_flag=True, help="run even if the run looks too large")
@click.option("--no-report", is_flag=True, help="skip report.html")
def run(
    scenario: Path,
    out: Path | None,
    seed: int | None,
    replications: int | None,
    duration: str | None,
    sets: tuple[str, ...],
    as_json: bool,
    check: bool,
    workers: int | None,
    force: bool,
    no_report: bool,
) -> None:
    """Simulate every platform in SCENARIO; print the summary; write the results folder."""
    from sim import api
    from sim.cli.console import print_summary, progress_for
    from sim.results import summary_json
    from sim.statistics import slo_met

    sc = api.load_scenario(scenario, overrides(sets, seed, replications, duration))
    out_dir = out if out is not None else Path("results") / sc.name
    show = not as_json and sys.stderr.isatty()
    with progress_for(sc, enabled=show) as on_done:
        res = api.run(
            sc,
            base_dir=scenario.resolve().parent,
            source=str(scenario),
            workers=workers,
            force=force,
            on_job_done=on_done,
        )
    save_results(res, out_dir, report=not no_report)
    if as_json:
        click.echo(summary_json(res.summary))
    else:
        print_summary(res.summary, out_dir)
    if check and any(slo_met(p) is False for p in res.summary["platforms"].values()):
        sys.exit(EXIT_SLO)
