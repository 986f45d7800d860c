"""`sim compare SCENARIO_OR_RESULTS... [--out DIR]`: several runs in one report.

Each input is a scenario file (simulated now, its results written to results/<name>/ exactly as
`sim run` would) or an existing results folder (or its summary.json). Platforms are overlaid and
labelled `scenario/platform`; the report goes to DIR/report.html (default results/compare/).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sim.cli.common import overrides, run_options, workers_option
from sim.errors import InputError

if TYPE_CHECKING:
    from sim.api import Results
    from sim.results import Results as ResultsData


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results/compare"),
    show_default=True,
    help="folder for report.html",
)
@click.option(
    "--images",
    type=click.Choice(["png", "svg"]),
    help="also write each figure as an image (needs the optional kaleido package)",
)
@run_options
@workers_option
@click.option("--force", is_flag=True, help="run scenarios even if they look too large")
def compare(
    inputs: tuple[Path, ...],
    out: Path,
    images: str | None,
    seed: int | None,
    replications: int | None,
    duration: str | None,
    sets: tuple[str, ...],
    workers: int | None,
    force: bool,
) -> None:
    """Compare the platforms of several scenarios or results folders in one report.

    --set, --duration, --seed and --replications apply to every scenario file given (results
    folders are read as they were written).

    \b
    Example:
      sim compare scenarios/small-api.yaml scenarios/busy-api.yaml --duration 1h
    """
    from sim import api
    from sim.cli.console import make_console, print_tables
    from sim.report import build_figures, write_images

    changes = overrides(sets, seed, replications, duration)
    results: list[ResultsData] = [
        _results_of(p, changes, workers=workers, force=force) for p in inputs
    ]
    html = api.compare(results)
    if images:
        # Before writing anything, so a missing kaleido leaves no half-done output.
        write_images(build_figures(results), out, images)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(html, encoding="utf-8")
    console = make_console()
    for r in results:
        print_tables(r.summary, console)
    console.print(f"report: {out / 'report.html'}", highlight=False)


def _results_of(path: Path, changes: list[str], *, workers: int | None, force: bool) -> Results:
    from sim import api

    if path.is_dir():
        return api.load_results(path)
    if path.name == "summary.json":
        return api.load_results(path.parent)
    if not path.is_file():
        raise InputError(
            "no such file or folder (expected a scenario file or a results folder)", file=str(path)
        )
    return _run(path, changes, workers=workers, force=force)


def _run(scenario: Path, changes: list[str], *, workers: int | None, force: bool) -> Results:
    """Simulate a scenario file and write its results folder, as `sim run` does."""
    from sim import api
    from sim.cli.common import save_results
    from sim.cli.console import progress_for

    sc = api.load_scenario(scenario, changes)
    out_dir = Path("results") / sc.name
    with progress_for(sc, enabled=sys.stderr.isatty()) as on_done:
        res = api.run(
            sc,
            base_dir=scenario.resolve().parent,
            source=str(scenario),
            workers=workers,
            force=force,
            on_job_done=on_done,
        )
    save_results(res, out_dir)
    return api.load_results(out_dir)
