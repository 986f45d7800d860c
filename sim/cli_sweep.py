"""`sim sweep | tune | crossover` (design.md section 3); the work is in sim.sweep*.

Each command writes into its output folder (default results/<scenario name>-<command>/) a
points.jsonl of finished jobs, so an interrupted command re-run with the same folder computes only
what is missing (`--fresh` starts over).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

_common = [
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
        type=click.Path(path_type=Path),
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
]


def common(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(_common):
        f = opt(f)
    return f


def _base(
    scenario: Path,
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
) -> Any:
    from sim.sweep import Base

    over = list(sets)
    if seed is not None:
        over.append(f"seed={seed}")
    if replications is not None:
        over.append(f"replications={replications}")
    if duration is not None:
        over.append(f"duration={duration}")
    return Base.load(scenario, over)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
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


def _console() -> Console:
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


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def _cell(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _reuse_note(computed: int, reused: int, out: Path) -> str:
    return f"{computed} job(s) simulated, {reused} reused from {out / 'points.jsonl'}"


# --- sweep --------------------------------------------------------------------------------------


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--param",
    "params",
    multiple=True,
    required=True,
    metavar="KEY=SPEC",
    help="a swept key: range START:STOP:STEP (the end is included when it lands on "
    "the grid), or a list 0,5,10 / 100ms,200ms / 1M/month,10M/month (repeatable: "
    "the grid is every combination)",
)
@common
@click.option("--no-html", is_flag=True, help="skip sweep.html")
def sweep(
    scenario: Path,
    params: tuple[str, ...],
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
    out: Path | None,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    fresh: bool,
    no_html: bool,
) -> None:
    """Run SCENARIO at every point of a parameter grid (same seeds at every point).

    Writes sweep.csv (one row per point x platform), sweep.html and points.jsonl.
    """
    from sim.sweep import parse_param, run_sweep, write_csv

    base = _base(scenario, sets, seed, replications, duration)
    plist = [parse_param(p) for p in params]
    name = base.scenario().name
    out_dir = out if out is not None else Path("results") / f"{name}-sweep"
    with _progress(f"sweeping {name}") as on_done:
        res = run_sweep(
            base,
            plist,
            out_dir=out_dir,
            workers=workers,
            scheduler=scheduler,
            force=force,
            fresh=fresh,
            on_done=on_done,
        )
    write_csv(res.rows, out_dir / "sweep.csv")
    files = ["sweep.csv", "points.jsonl"]
    if not no_html:
        from sim.sweep_plots import sweep_figure, write_html

        write_html(sweep_figure(res.rows, plist, f"{name}: sweep"), out_dir / "sweep.html")
        files.insert(1, "sweep.html")
    console = _console()
    console.print(_sweep_table(res.rows, [p.key for p in plist], name))
    console.print(_reuse_note(res.computed, res.reused, out_dir), highlight=False)
    console.print(f"results: {out_dir}/ ({', '.join(files)})", highlight=False)


def _sweep_table(rows: list[dict[str, Any]], keys: list[str], name: str) -> Table:
    t = Table(title=f"{name}: sweep ({len(rows)} rows)")
    for k in keys:
        t.add_column(k.split(".")[-1] if len(k) > 24 else k, justify="right")
    for col in (
        "platform",
        "errors",
        "cold %",
        "p50",
        "p99",
        "p99 95% CI",
        "p99.9",
        "peak inst",
        "$/month",
        "$/M req",
        "SLO",
    ):
        t.add_column(col, justify="left" if col in ("platform", "SLO") else "right")
    for r in rows:
        ci = "-" if r["p99_ci_lo"] is None else f"{_ms(r['p99_ci_lo'])}-{_ms(r['p99_ci_hi'])}"
        slo = {True: "[green]pass[/]", False: "[red]FAIL[/]"}.get(r["slo_met"], "-")
        t.add_row(
            *(_cell(r[k]) for k in keys),
            r["platform"],
            _pct(r["error_rate"]),
            _pct(r["cold_start_ratio"]),
            _ms(r["p50_ms"]),
            _ms(r["p99_ms"]),
            ci,
            _ms(r["p999_ms"]),
            f"{r['peak_instances']:,.0f}",
            _usd(r["monthly_cost_usd"]),
            _usd(r["cost_per_million_usd"]),
            slo,
        )
    return t


# --- tune ---------------------------------------------------------------------------------------


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--platform", help="the platform to tune (default: the only one in the file)")
@click.option(
    "--param",
    "params",
    multiple=True,
    required=True,
    metavar="KEY=RANGE",
    help="a setting to search, as for `sim sweep`; a key that is not a top-level "
    "scenario key is the platform's own (provisioned_concurrency=0:50:5)",
)
@click.option(
    "--slo",
    "slos",
    multiple=True,
    metavar="METRIC<VALUE",
    help="e.g. p99<300ms, error_rate<0.1% (repeatable; default: the scenario's slo:)",
)
@click.option(
    "--conservative",
    is_flag=True,
    help="judge each SLO by the upper end of its 95% CI, not the point estimate",
)
@click.option(
    "--search",
    type=click.Choice(["auto", "exhaustive", "optuna"]),
    default="auto",
    show_default=True,
    help="auto: exhaustive up to 200 grid points, Optuna beyond",
)
@click.option(
    "--trials", type=click.IntRange(1, 100_000), help="points Optuna may try (default 100)"
)
@common
def tune(
    scenario: Path,
    platform: str | None,
    params: tuple[str, ...],
    slos: tuple[str, ...],
    conservative: bool,
    search: str,
    trials: int | None,
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
    out: Path | None,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    fresh: bool,
) -> None:
    """The cheapest setting of one platform that meets every SLO, with the evidence.

    Writes tune.json (chosen setting, its metrics and SLO margins, every point tried). Exit
    status 1 when no point of the grid meets every SLO.
    """
    from sim.errors import InputError
    from sim.sweep import parse_param
    from sim.sweep_tune import parse_slo, qualify, slos_from_scenario
    from sim.sweep_tune import tune as run_tune

    targets = [parse_slo(s) for s in slos]
    base = _base(scenario, sets, seed, replications, duration)
    sc = base.scenario()
    if platform is None:
        if len(sc.platforms) != 1:
            raise InputError(
                "the scenario has several platforms; name one with --platform "
                f"({', '.join(p.name for p in sc.platforms)})",
                key="--platform",
            )
        platform = sc.platforms[0].name
    if not targets:
        targets = slos_from_scenario(sc.slo)
    plist = []
    for text in params:
        p = parse_param(text)
        plist.append(type(p)(qualify(p.key, platform), p.values, p.labels, p.numeric, p.ordered))
    out_dir = out if out is not None else Path("results") / f"{sc.name}-tune"
    with _progress(f"tuning {platform}") as on_done:
        doc = run_tune(
            base,
            plist,
            platform,
            targets,
            conservative=conservative,
            search=search,
            trials=trials,
            seed=sc.seed,
            out_dir=out_dir,
            workers=workers,
            scheduler=scheduler,
            force=force,
            fresh=fresh,
            on_done=on_done,
        )
    _write_json(out_dir / "tune.json", doc)
    _print_tune(doc, out_dir)
    if doc["chosen"] is None:
        sys.exit(1)


def _check_txt(c: dict[str, Any]) -> str:
    unit = c["unit"]
    v = "-" if c["value"] is None else f"{c['value']:.4g}{unit}"
    mark = "[green]met[/]" if c["met"] else "[red]missed[/]"
    margin = "" if c["margin"] is None else f", margin {c['margin']:+.4g}{unit}"
    if c.get("margin_pct") is not None:
        margin += f" ({c['margin_pct']:+.1f}%)"
    return f"{c['metric']} {v} ({c['basis']}) {c['op']} {c['target']:.4g}{unit}: {mark}{margin}"


def _print_tune(doc: dict[str, Any], out_dir: Path) -> None:
    console = _console()
    console.print(f"[bold]tune {doc['platform']}[/]: {doc['why']}")
    console.print(
        f"SLO judged on the {doc['criterion']}: " + ", ".join(s["text"] for s in doc["slo"])
    )
    keys = list(doc["params"])
    t = Table(
        title=f"{doc['points_tried']} point(s) tried, {doc['feasible_points']} meet every "
        "SLO (cheapest first)"
    )
    for k in keys:
        t.add_column(k.split(".")[-1], justify="right")
    for col in ("$/month", "p99", "p99 95% CI", "errors", "cold %", "SLO"):
        t.add_column(col, justify="right" if col != "SLO" else "left")
    tried = sorted(doc["tried"], key=lambda e: e["monthly_cost_usd"])
    shown = tried if len(tried) <= 40 else tried[:40]
    chosen = doc["chosen"]["setting"] if doc["chosen"] else None
    for e in shown:
        ci = e["p99_ci95"]
        style = "bold" if e["setting"] == chosen else None
        t.add_row(
            *(_cell(e["setting"][k]) for k in keys),
            _usd(e["monthly_cost_usd"]),
            _ms(e["p99_ms"]),
            "-" if not ci else f"{_ms(ci[0])}-{_ms(ci[1])}",
            _pct(e["error_rate"]),
            _pct(e["cold_start_ratio"]),
            "[green]pass[/]" if e["slo_met"] else "[red]FAIL[/]",
            style=style,
        )
    console.print(t)
    if len(tried) > len(shown):
        console.print(f"({len(tried) - len(shown)} more in tune.json)")
    if chosen is None:
        console.print("[red]no point of the grid meets every SLO[/]")
    else:
        setting = ", ".join(f"{k}={_cell(v)}" for k, v in chosen.items())
        console.print(
            f"[bold green]cheapest setting meeting every SLO[/]: {setting} "
            f"at {_usd(doc['chosen']['monthly_cost_usd'])}/month"
        )
        for c in doc["chosen"]["slo"]:
            console.print("  " + _check_txt(c))
    console.print(
        _reuse_note(doc["simulated"], doc["reused_from_points_file"], out_dir), highlight=False
    )
    console.print(f"results: {out_dir}/ (tune.json, points.jsonl)", highlight=False)


# --- crossover ----------------------------------------------------------------------------------


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--volume",
    required=True,
    metavar="LOW..HIGH",
    help="monthly volume range, e.g. 100k/month..500M/month (log-spaced grid)",
)
@click.option(
    "--points", "n_points", type=int, default=12, show_default=True, help="volumes on the grid"
)
@click.option(
    "--window",
    help="simulate this much time per volume (default: the scenario's "
    "duration); the bill is extrapolated to a 30-day month",
)
@common
@click.option("--no-html", is_flag=True, help="skip crossover.html")
def crossover(
    scenario: Path,
    volume: str,
    n_points: int,
    window: str | None,
    sets: tuple[str, ...],
    seed: int | None,
    replications: int | None,
    duration: str | None,
    out: Path | None,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    fresh: bool,
    no_html: bool,
) -> None:
    """Monthly bill and p99 of every platform against traffic volume; the crossover points.

    Writes crossover.csv, crossover.json and crossover.html.
    """
    from sim.errors import InputError
    from sim.sweep import write_csv
    from sim.sweep_crossover import parse_volume_range, run_crossover, volume_grid
    from sim.units import parse_duration

    lo, hi = parse_volume_range(volume)
    vols = volume_grid(lo, hi, n_points)
    win = None
    if window is not None:
        try:
            win = parse_duration(window)
        except (ValueError, TypeError) as exc:
            raise InputError(f"expected a duration such as 10m ({exc})", key="--window") from None
    base = _base(scenario, sets, seed, replications, duration)
    name = base.scenario().name
    out_dir = out if out is not None else Path("results") / f"{name}-crossover"
    with _progress(f"crossover {name}") as on_done:
        res = run_crossover(
            base,
            vols,
            window=win,
            out_dir=out_dir,
            workers=workers,
            scheduler=scheduler,
            force=force,
            fresh=fresh,
            on_done=on_done,
        )
    write_csv(res["rows"], out_dir / "crossover.csv")
    doc = {k: v for k, v in res.items() if k != "rows"}
    _write_json(out_dir / "crossover.json", doc)
    files = ["crossover.csv", "crossover.json", "points.jsonl"]
    if not no_html:
        from sim.sweep_plots import crossover_figure, write_html

        write_html(
            crossover_figure(res, f"{name}: monthly cost vs volume"), out_dir / "crossover.html"
        )
        files.insert(2, "crossover.html")
    _print_crossover(res, name, out_dir, files)


def _volume(v: float) -> str:
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def _print_crossover(res: dict[str, Any], name: str, out_dir: Path, files: list[str]) -> None:
    console = _console()
    a = res["assumptions"]
    t = Table(
        title=f"{name}: monthly bill (p99) by volume - {a['window_s']:g} s simulated per "
        f"volume x {a['replications']} replications, extrapolated to 30 days"
    )
    t.add_column("requests/month", justify="right")
    for n in res["platforms"]:
        t.add_column(n, justify="right")
    t.add_column("cheapest")
    by = {(r["volume_per_month"], r["platform"]): r for r in res["rows"]}
    for v, cheap in zip(res["volumes_per_month"], res["cheapest"], strict=True):
        cells = []
        for n in res["platforms"]:
            r = by[(v, n)]
            cells.append(f"{_usd(r['monthly_cost_usd'])} ({_ms(r['p99_ms'])} ms)")
        t.add_row(_volume(v), *cells, cheap)
    console.print(t)
    if res["crossovers"]:
        for c in res["crossovers"]:
            console.print(
                f"crossover at about [bold]{_volume(c['volume_per_month'])} "
                f"requests/month[/]: {c['below']} is cheaper below, {c['above']} "
                "above"
            )
    else:
        console.print(
            "no crossover in this range: the cheapest platform is the same at every volume"
        )
    console.print(
        _reuse_note(res["simulated"], res["reused_from_points_file"], out_dir), highlight=False
    )
    console.print(f"results: {out_dir}/ ({', '.join(files)})", highlight=False)
