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

from sim.cli.common import out_path
from sim.errors import InputError

if TYPE_CHECKING:
    from sim.report import Results


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
@click.option("--workers", type=click.IntRange(1, 256), help="parallel processes (default: auto)")
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
    workers: int | None,
    force: bool,
    subfolder: bool,
) -> None:
    """Compare the platforms of several scenarios or results folders in one report."""
    from rich.console import Console

    from sim.cli.console import summary_table
    from sim.report import build_figures, render_report, write_images
    from sim.results import claim_output_folder, output_folder, write_file_atomic

    # Checked before any simulation: sim writes only into a folder it wrote itself.
    out = output_folder(out, out, "compare", name="compare", subfolder=subfolder)
    for path in inputs:  # every scenario's results folder too, before the first simulation
        if path.is_file() and path.name != "summary.json":
            _results_folder(path)
    results = [_results_of(p, workers=workers, force=force) for p in inputs]
    html = render_report(results)
    claim_output_folder(out, "compare")
    if images:
        write_images(build_figures(results), out, images)
    write_file_atomic(out / "report.html", html)
    console = Console() if Console().is_terminal else Console(width=200, no_color=True)
    for r in results:
        console.print(summary_table(r.summary))
    console.print(f"report: {out / 'report.html'}")


def _results_of(path: Path, *, workers: int | None, force: bool) -> Results:
    from sim.report import load_results

    if path.is_dir():
        return load_results(path)
    if path.name == "summary.json":
        return load_results(path.parent)
    if not path.is_file():
        raise InputError(
            "no such file or folder (expected a scenario file or a results folder)", file=str(path)
        )
    return _run(path, workers=workers, force=force)


def _results_folder(scenario: Path) -> Path:
    """results/<name>/ of a scenario file, checked: sim replaces only its own results."""
    from sim.results import output_folder
    from sim.scenario import load_scenario

    sc = load_scenario(scenario)
    return output_folder(None, Path("results") / sc.name, "results", name=sc.name)


def _run(scenario: Path, *, workers: int | None, force: bool) -> Results:
    """Simulate a scenario file and write its results folder, as `sim run` does."""
    from sim.cli.common import report_files
    from sim.cli.console import progress_for
    from sim.report import load_results
    from sim.results import write_results
    from sim.scenario import load_scenario
    from sim.simulate import run_scenario

    sc = load_scenario(scenario)
    out_dir = _results_folder(scenario)
    with progress_for(sc, enabled=sys.stderr.isatty()) as on_done:
        summary, runs = run_scenario(
            sc,
            scenario.resolve().parent,
            source=str(scenario),
            workers=workers,
            force=force,
            on_job_done=on_done,
        )
    write_results(out_dir, summary, runs, extra_files=report_files(summary, runs))
    return load_results(out_dir)
