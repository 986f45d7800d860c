"""`sim run SCENARIO`: simulate every platform, print the summary, write the results folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sim.cli.common import EXIT_SLO, out_path, overrides, report_files


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out",
    callback=out_path,
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
@click.option(
    "--subfolder",
    is_flag=True,
    help="write into a new folder inside --out (OUT/<name>, or <name>-2, ...) instead of "
    "replacing it",
)
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
    subfolder: bool,
) -> None:
    """Simulate every platform in SCENARIO; print the summary; write the results folder."""
    from sim.cli.console import print_summary, progress_for
    from sim.results import output_folder, summary_json, write_results
    from sim.scenario import load_scenario
    from sim.simulate import run_scenario
    from sim.statistics import slo_met

    sc = load_scenario(scenario, overrides(sets, seed, replications, duration))
    # Checked before simulating: sim replaces only a folder it wrote itself.
    out_dir = output_folder(
        out, Path("results") / sc.name, "results", name=sc.name, subfolder=subfolder
    )
    base_dir = scenario.resolve().parent
    size_key = next(
        (o for o, v in (("--replications", replications), ("--duration", duration)) if v),
        "duration",
    )
    show = not as_json and sys.stderr.isatty()
    with progress_for(sc, enabled=show) as on_done:
        summary, runs = run_scenario(
            sc,
            base_dir,
            source=str(scenario),
            workers=workers,
            force=force,
            on_job_done=on_done,
            size_key=size_key,
        )
    extra = {}
    if not no_report:
        extra = report_files(summary, runs)
    write_results(out_dir, summary, runs, extra_files=extra)
    if as_json:
        click.echo(summary_json(summary))
    else:
        print_summary(summary, out_dir)
    if check and any(slo_met(p) is False for p in summary["platforms"].values()):
        sys.exit(EXIT_SLO)
