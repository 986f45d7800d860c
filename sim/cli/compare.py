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

from sim.cli.common import out_path, overrides, run_options, workers_option
from sim.errors import InputError

if TYPE_CHECKING:
    from sim.api import Results
    from sim.results import Results as ResultsData
    from sim.scenario import Override


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    callback=out_path,
    default="results/compare",
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
@click.option(
    "--subfolder",
    is_flag=True,
    help="write into a new folder inside --out (OUT/compare, or compare-2, ...)",
)
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
    subfolder: bool,
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
    from sim.results import claim_output_folder, output_folder, write_file_atomic

    changes = overrides(sets, seed, replications, duration)
    # Checked before any simulation: sim writes only into a folder it wrote itself.
    out = output_folder(out, out, "compare", name="compare", subfolder=subfolder)
    for path in inputs:  # every scenario's results folder too, before the first simulation
        if path.is_file() and path.name != "summary.json":
            _results_folder(path, changes)
    results: list[ResultsData] = [
        _results_of(p, changes, workers=workers, force=force) for p in inputs
    ]
    html = api.compare(results)
    claim_output_folder(out, "compare")
    if images:
        write_images(build_figures(results), out, images)
    write_file_atomic(out / "report.html", html)
    console = make_console()
    for r in results:
        print_tables(r.summary, console)
    console.print(f"report: {out / 'report.html'}", highlight=False)


def _results_of(
    path: Path, changes: list[Override], *, workers: int | None, force: bool
) -> Results:
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


def _results_folder(scenario: Path, changes: list[Override]) -> Path:
    """results/<name>/ of a scenario file, checked: sim replaces only its own results."""
    from sim import api
    from sim.results import output_folder

    sc = api.load_scenario(scenario, changes)
    return output_folder(None, Path("results") / sc.name, "results", name=sc.name)


def _run(scenario: Path, changes: list[Override], *, workers: int | None, force: bool) -> Results:
    """Simulate a scenario file and write its results folder, as `sim run` does."""
    from sim import api
    from sim.cli.common import save_results
    from sim.cli.console import progress_for

    sc = api.load_scenario(scenario, changes)
    out_dir = _results_folder(scenario, changes)
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
