"""`sim run SCENARIO`: simulate every platform, print the summary, write the results folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sim.cli.common import (
    EXIT_SLO,
    no_html_option,
    out_path,
    overrides,
    run_options,
    save_results,
    workers_option,
)


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out",
    callback=out_path,
    help="results folder (default results/<scenario name>/)",
)
@run_options
@click.option("--json", "as_json", is_flag=True, help="print summary.json instead of the table")
@click.option("--check", is_flag=True, help="exit 1 if any platform misses an SLO")
@workers_option
@click.option("--force", is_flag=True, help="run even if the run looks too large")
@no_html_option("report.html")
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
    no_html: bool,
    no_report: bool,
    subfolder: bool,
) -> None:
    """Simulate every platform in SCENARIO; print the decision and the summary; write the
    results folder.

    \b
    Examples:
      sim run scenarios/latency-sensitive.yaml
      sim run my.yaml --duration 1h --set 'platforms.lambda.memory=1024' --check
    """
    from sim import api
    from sim.cli.console import print_summary, progress_for
    from sim.results import output_folder, summary_json
    from sim.statistics import slo_met
    from sim.verdict import verdict

    changes = overrides(sets, seed, replications, duration)
    sc = api.load_scenario(scenario, changes)
    # Checked before simulating: sim replaces only a folder it wrote itself.
    out_dir = output_folder(
        out, Path("results") / sc.name, "results", name=sc.name, subfolder=subfolder
    )
    size_key = next(
        (o for o, v in (("--replications", replications), ("--duration", duration)) if v),
        "duration",
    )
    show = not as_json and sys.stderr.isatty()
    with progress_for(sc, enabled=show) as on_done:
        res = api.run(
            sc,
            base_dir=scenario.resolve().parent,
            source=str(scenario),
            workers=workers,
            force=force,
            on_job_done=on_done,
            size_key=size_key,
        )
    # the suggested `sim tune` line repeats this run's overrides, so it tunes what was run
    res.summary["verdict"] = verdict(sc, res.summary["platforms"], str(scenario), changes)
    save_results(res, out_dir, report=not (no_html or no_report))
    if as_json:
        click.echo(summary_json(res.summary))
    else:
        print_summary(res.summary, out_dir)
    if check and any(slo_met(p) is False for p in res.summary["platforms"].values()):
        sys.exit(EXIT_SLO)
