"""What the commands share: exit codes, scenario overrides from options, the study options
(sweep / tune / crossover), progress, JSON output and the report files of a run.

Study commands write into their output folder (default results/<scenario name>-<command>/) a
points.jsonl of finished jobs, so an interrupted command re-run with the same folder computes only
what is missing (`--fresh` starts over).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sim import format as fmt

# rich (~25 ms of start-up) is imported where a table or a bar is drawn: `sim run` draws its
# summary after the simulation, and imports rich meanwhile (sim.cli.run's prepare).
if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_SLO, EXIT_INPUT, EXIT_FAIL = 0, 1, 2, 3

_startup = {"gc_off": False}


@contextlib.contextmanager
def no_gc_during_startup() -> Iterator[None]:
    """The cyclic garbage collector off until startup_done(), and as it was afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    _startup["gc_off"] = True
    try:
        yield
    finally:
        _startup["gc_off"] = False
        gc.unfreeze()
        if enabled:
            gc.enable()


def startup_done() -> None:
    """The work starts: what start-up made is kept out of every later collection (gc.freeze,
    which also spares the pages of forked workers), and the collector runs again."""
    if _startup["gc_off"]:
        _startup["gc_off"] = False
        gc.freeze()
        gc.enable()


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


def save_results(res: Any, out_dir: Path, *, report: bool = True) -> Path:
    """Write a run's results folder (sim.api.Results.save); a failure to render report.html is
    a warning, so a plotting bug never costs the user the simulated results. The report is
    rendered while the folder is written (a large run's tables by another process)."""

    def render() -> str | None:
        from sim.report import render_report

        try:
            return render_report([res])
        except Exception as exc:
            if os.environ.get("SIM_DEBUG"):
                traceback.print_exc()
            click.echo(f"sim: warning: report.html skipped: {type(exc).__name__}: {exc}", err=True)
            return None

    extra = {"report.html": render} if report else {}
    return Path(res.save(out_dir, report=False, extra_files=extra))


WORKERS_MAX = 1024

workers_option = click.option(
    "--workers",
    type=click.IntRange(1, WORKERS_MAX),
    help="parallel worker processes on this machine (default: one per core, when it pays)",
)


def no_html_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--no-html` (skip WHAT); `--no-report` is the older spelling, kept hidden."""

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--no-report", "no_report", is_flag=True, hidden=True)(f)
        return click.option("--no-html", is_flag=True, help=f"skip {what}")(f)

    return deco


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The scenario overrides `sim run` and `sim compare` share."""
    for opt in reversed(
        [
            click.option("--seed", type=int, help="override the scenario's seed"),
            click.option(
                "--replications", type=click.IntRange(1, 1000), help="override replications"
            ),
            click.option("--duration", help="override the simulated duration, e.g. 1h"),
            click.option(
                "--set",
                "sets",
                multiple=True,
                metavar="KEY=VALUE",
                help="override any scenario key by dotted path (repeatable)",
            ),
        ]
    ):
        f = opt(f)
    return f


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
    workers_option,
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
    from rich.console import Console
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
    from rich.console import Console

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


# the study tables format numbers as `sim run` and the report do (sim.format), units included
fmt_ms = fmt.ms
fmt_usd = fmt.usd
fmt_pct = fmt.pct


def slo_cell(missed: list[str] | None, met: bool | None) -> str:
    """`pass`, `FAIL p99,error_rate` (the SLOs missed, by name) or `-` (no SLO)."""
    if met is None:
        return "-"
    if met:
        return "[green]pass[/]"
    return "[red]FAIL[/] " + ",".join({"p999": "p99.9"}.get(m, m) for m in missed or [])


def cell(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def reuse_note(computed: int, reused: int, out: Path) -> str:
    return f"{computed} job(s) simulated, {reused} reused from {out / 'points.jsonl'}"


# --- the bundled scenarios (`sim init`, `sim scenarios`) ---------------------------------------


def bundled_dir() -> Path:
    """The bundled scenarios: sim/scenarios/ in an installed package (setup.py copies the
    repository's scenarios/ there at build time), else scenarios/ beside the package (a source
    checkout or an editable install)."""
    here = Path(__file__).resolve().parents[1]  # the sim package
    for candidate in (here / "scenarios", here.parent / "scenarios"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    from sim.errors import InputError

    raise InputError("the bundled scenarios are missing from this installation", key="scenarios")


def bundled() -> dict[str, tuple[Path, str]]:
    """name -> (file, its one-line `description:`), in name order."""
    import yaml

    out = {}
    for path in sorted(bundled_dir().glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict):
            out[path.stem] = (path, str(doc.get("description") or "").strip())
    return out


# --- tables that fit the terminal ----------------------------------------------------------------


def fits(con: Console, r: Any) -> bool:
    # measured unconstrained: a table measured at the console's width reports at most that width
    return con.measure(r, options=con.options.update_width(100_000)).maximum <= con.width


def _subtable(table: Any, cols: list[int], title: Any) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for i in cols:
        c = table.columns[i]
        t.add_column(c.header, justify=c.justify, style=c.style)
    cells = [list(table.columns[i]._cells) for i in cols]
    for r, row in enumerate(table.rows):
        t.add_row(*(c[r] for c in cells), style=row.style)
    return t


def fitted(con: Console, table: Any, keep: int = 1) -> list[Any]:
    """`table` if it fits the terminal, else the same rows in several tables, each repeating the
    first `keep` columns (the row's identity) and taking as many of the others as fit. A cell
    is never cut to `…`."""
    if fits(con, table):
        return [table]
    head = list(range(min(keep, len(table.columns))))
    blocks: list[list[int]] = []
    cur: list[int] = []
    for i in range(len(head), len(table.columns)):
        if cur and not fits(con, _subtable(table, [*head, *cur, i], table.title)):
            blocks.append(cur)
            cur = []
        cur.append(i)
    if cur:
        blocks.append(cur)
    return [
        _subtable(table, [*head, *b], table.title if n == 0 else None) for n, b in enumerate(blocks)
    ]
