"""Command line: `sim run | compare | sweep | tune | crossover | validate | schema`.

Exit status (design.md section 3): 0 done; 1 an SLO was missed and --check was given; 2 bad input
or usage (one line on stderr, no traceback); 3 the run failed for another reason.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from sim.errors import InputError

EXIT_OK, EXIT_SLO, EXIT_INPUT, EXIT_FAIL = 0, 1, 2, 3


class _Group(click.Group):
    """Turns every error into one line and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"sim: error: {exc}", err=True)
            sys.exit(EXIT_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("sim: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("SIM_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"sim: run failed: {type(exc).__name__}: {exc} (set SIM_DEBUG=1 for a traceback)",
                err=True,
            )
            sys.exit(EXIT_FAIL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sim", prog_name="sim")
def main() -> None:
    """sim: Lambda vs Wasm serverless vs Kubernetes+KEDA, by simulation.

    Tail latency, failures and the monthly bill for the same traffic on each platform.
    """


def _overrides(
    scenario: Path,
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
) -> list[str]:
    out = list(sets)
    if seed is not None:
        out.append(f"seed={seed}")
    if replications is not None:
        out.append(f"replications={replications}")
    if duration is not None:
        out.append(f"duration={duration}")
    return out


@main.command()
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
    from sim.console import print_summary, progress_for
    from sim.metrics import slo_met
    from sim.results import summary_json, write_results
    from sim.runner import run_scenario
    from sim.scenario import load_scenario

    sc = load_scenario(scenario, _overrides(scenario, sets, seed, replications, duration))
    out_dir = out if out is not None else Path("results") / sc.name
    base_dir = scenario.resolve().parent
    show = not as_json and sys.stderr.isatty()
    with progress_for(sc, enabled=show) as on_done:
        summary, runs = run_scenario(
            sc, base_dir, source=str(scenario), workers=workers, force=force, on_job_done=on_done
        )
    extra = {}
    if not no_report:
        extra = _report_files(summary, runs)
    write_results(out_dir, summary, runs, extra_files=extra)
    if as_json:
        click.echo(summary_json(summary))
    else:
        print_summary(summary, out_dir)
    if check and any(slo_met(p) is False for p in summary["platforms"].values()):
        sys.exit(EXIT_SLO)


def _report_files(summary: dict[str, Any], runs: list[Any]) -> dict[str, str]:
    """report.html, rendered from the same JSON and frames that write_results puts on disk."""
    from sim.report import render_report, results_from_run

    try:
        return {"report.html": render_report([results_from_run(summary, runs)])}
    except Exception as exc:  # a plotting bug must not cost the user the simulated results
        if os.environ.get("SIM_DEBUG"):
            traceback.print_exc()
        click.echo(f"sim: warning: report.html skipped: {type(exc).__name__}: {exc}", err=True)
        return {}


@main.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editors / the YAML language server)."""
    from sim.scenario import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


from sim.cli_sweep import crossover, sweep, tune  # noqa: E402

main.add_command(sweep)
main.add_command(tune)
main.add_command(crossover)

from sim.cli_compare import compare  # noqa: E402

main.add_command(compare)

from sim.cli_validate import validate  # noqa: E402

main.add_command(validate)

if __name__ == "__main__":
    main()
