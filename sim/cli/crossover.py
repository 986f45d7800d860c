"""`sim crossover`."""

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sim import format as fmt
from sim.cli.common import (
    console,
    fitted,
    fmt_ms,
    fmt_usd,
    load_base,
    no_html_option,
    progress,
    reuse_note,
    study_folder,
    study_options,
    write_json,
)


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
@click.option("--window", hidden=True, help="the older name of --duration")
@study_options
@no_html_option("crossover.html")
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
    subfolder: bool,
    no_html: bool,
    no_report: bool,
) -> None:
    """Monthly bill and p99 of every platform against traffic volume; the crossover points.

    --duration is the time simulated per volume (default: the scenario's duration; the warm-up
    keeps its share); each bill is extrapolated to the billing month (730 h unless `month:`).
    Writes crossover.csv, crossover.json and crossover.html.

    \b
    Example:
      sim crossover scenarios/crossover-lambda-eks.yaml --volume 1M/month..300M/month
    """
    from sim.errors import InputError
    from sim.studies.crossover import parse_volume_range, run_crossover, volume_grid
    from sim.studies.sweep import write_csv
    from sim.units import parse_duration

    lo, hi = parse_volume_range(volume)
    vols = volume_grid(lo, hi, n_points)
    if window is not None and duration is not None and window != duration:
        raise InputError("give --duration only (--window is its older name)", key="--window")
    text, flag = (duration, "--duration") if duration is not None else (window, "--window")
    win = None
    if text is not None:
        try:
            win = parse_duration(text)
        except (ValueError, TypeError) as exc:
            raise InputError(f"expected a duration such as 10m ({exc})", key=flag) from None
    # the duration is the per-volume window (run_crossover scales the warm-up with it)
    base = load_base(scenario, sets, seed, replications, None)
    name = base.scenario().name
    out_dir = study_folder(out, name, "crossover", subfolder)
    with progress(f"crossover {name}") as on_done:
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
    write_json(out_dir / "crossover.json", doc)
    files = ["crossover.csv", "crossover.json", "points.jsonl"]
    if not (no_html or no_report):
        from sim.studies.plots import crossover_figure, write_html

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
    con = console()
    a = res["assumptions"]
    t = Table(
        title=f"{name}: monthly bill (p99) by volume - {fmt.duration(a['window_s'])} simulated "
        f"per volume x {a['replications']} replications, extrapolated to the billing month"
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
            cells.append(f"{fmt_usd(r['monthly_cost_usd'])} ({fmt_ms(r['p99_ms'])})")
        t.add_row(_volume(v), *cells, cheap)
    for block in fitted(con, t, 1):
        con.print(block)
    if res["crossovers"]:
        for c in res["crossovers"]:
            con.print(
                f"crossover at about [bold]{_volume(c['volume_per_month'])} "
                f"requests/month[/]: {c['below']} is cheaper below, {c['above']} "
                "above"
            )
    else:
        con.print("no crossover in this range: the cheapest platform is the same at every volume")
    con.print(
        reuse_note(res["simulated"], res["reused_from_points_file"], out_dir), highlight=False
    )
    con.print(f"results: {out_dir}/ ({', '.join(files)})", highlight=False)
