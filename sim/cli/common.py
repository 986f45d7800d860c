"""What the commands share: exit codes, scenario overrides from options, the study options
(sweep / tune / crossover), progress, JSON output and the report files of a run.

Study commands write into their output folder (default results/<scenario name>-<command>/) a
points.jsonl of finished jobs, so an interrupted command re-run with the same folder computes only
what is missing (`--fresh` starts over).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console

EXIT_OK, EXIT_SLO, EXIT_INPUT, EXIT_FAIL = 0, 1, 2, 3


def out_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """--out as given: an empty value is refused here (Path("") would silently mean ".")."""
    if value is None:
        return None
    if not value.strip() or "\x00" in value:
        from sim.errors import InputError

        raise InputError("expected a folder path, got an empty one", key="--out")
    return Path(value)


def overrides(
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
) -> list[str | tuple[str, str]]:
    """`--set` values plus the shorthand options, as `key=value` overrides; a shorthand option's
    override carries the option's name, so its errors name it."""
    out: list[str | tuple[str, str]] = list(sets)
    if seed is not None:
        out.append(("--seed", f"seed={seed}"))
    if replications is not None:
        out.append(("--replications", f"replications={replications}"))
    if duration is not None:
        out.append(("--duration", f"duration={duration}"))
    return out


def report_files(summary: dict[str, Any], runs: list[Any]) -> dict[str, str]:
    """report.html, rendered from the same JSON and frames that write_results puts on disk."""
    from sim.report import render_report, results_from_run

    try:
        return {"report.html": render_report([results_from_run(summary, runs)])}
    except Exception as exc:  # a plotting bug must not cost the user the simulated results
        if os.environ.get("SIM_DEBUG"):
            traceback.print_exc()
        click.echo(f"sim: warning: report.html skipped: {type(exc).__name__}: {exc}", err=True)
        return {}


_study_options = [
    click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help="override any scenario key by dotted path before sweeping (repeatable)",
    ),
    click.option("--seed", type=int, help="override the scenario's seed"),
    click.option("--replications", type=click.IntRange(1, 1000), help="override replications"),
    click.option("--duration", help="override the simulated duration, e.g. 30m"),
    click.option(
        "--out",
        callback=out_path,
        help="output folder (default results/<scenario name>-<command>/)",
    ),
    click.option(
        "--workers",
        type=click.IntRange(1, 1024),
        help="local worker processes (default: one per core)",
    ),
    click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster, e.g. tcp://10.0.0.5:8786 "
        "(default: $DASK_SCHEDULER_ADDRESS, else a local process pool)",
    ),
    click.option("--force", is_flag=True, help="run even if a point looks too large"),
    click.option("--fresh", is_flag=True, help="ignore points.jsonl from an earlier run"),
    click.option(
        "--subfolder",
        is_flag=True,
        help="write into a new folder inside --out (OUT/<name>-<command>, or ...-2, ...)",
    ),
]


def study_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(_study_options):
        f = opt(f)
    return f


def study_folder(out: Path | None, name: str, kind: str, subfolder: bool) -> Path:
    """A study's output folder, checked and marked before any simulation: a new folder, or one
    the same command wrote (sim never writes into a folder it did not write)."""
    from sim.results import MARKER, claim_output_folder, output_folder

    folder = f"{name}-{kind}"
    path = output_folder(out, Path("results") / folder, kind, name=folder, subfolder=subfolder)
    existed = path.exists()
    claim_output_folder(path, kind)
    if not existed:  # refused later (e.g. too large): leave no empty folder behind

        def tidy() -> None:
            with contextlib.suppress(OSError):
                if [p.name for p in path.iterdir()] == [MARKER]:
                    (path / MARKER).unlink()
                    path.rmdir()

        click.get_current_context().call_on_close(tidy)
    return path


def load_base(
    scenario: Path,
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
) -> Any:
    from sim.studies.sweep import Base

    return Base.load(scenario, overrides(sets, seed, replications, duration))


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on a terminal; nothing when stderr is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def console() -> Console:
    # Piped output is read by people and scripts alike: do not wrap the tables at 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")


def fmt_ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")


def fmt_usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def cell(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def reuse_note(computed: int, reused: int, out: Path) -> str:
    return f"{computed} job(s) simulated, {reused} reused from {out / 'points.jsonl'}"
