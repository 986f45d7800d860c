"""`sim sweep`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sim.cli.common import (
    cell,
    console,
    fitted,
    fmt_ms,
    fmt_pct,
    fmt_usd,
    load_base,
    no_html_option,
    progress,
    reuse_note,
    slo_cell,
    startup_done,
    study_folder,
    study_options,
)

if TYPE_CHECKING:
    from rich.table import Table


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
@study_options
@no_html_option("sweep.html")
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
    subfolder: bool,
    no_html: bool,
    no_report: bool,
) -> None:
    """Run SCENARIO at every point of a parameter grid (same seeds at every point).

    Writes sweep.csv (one row per point x platform), sweep.html and points.jsonl.
    """
    from sim.studies.sweep import parse_param, run_sweep, write_csv

    base = load_base(scenario, sets, seed, replications, duration)
    plist = [parse_param(p, month_s=base.month_s) for p in params]
    name = base.scenario().name
    out_dir = study_folder(out, name, "sweep", subfolder)
    html = not (no_html or no_report)
    startup_done()
    with progress(f"sweeping {name}") as on_done:
        res = run_sweep(
            base,
            plist,
            out_dir=out_dir,
            workers=workers,
            scheduler=scheduler,
            force=force,
            fresh=fresh,
            on_done=on_done,
            prepare=functools.partial(_prepare, html),
        )
    write_csv(res.rows, out_dir / "sweep.csv")
    files = ["sweep.csv", "points.jsonl"]
    if html:
        from sim.studies.plots import sweep_figure, write_html

        # a platform with one job key at every point was simulated once: drawn once
        fixed = {n for n in res.points[0].keys if len({p.keys[n] for p in res.points}) == 1}
        fig = sweep_figure(res.rows, plist, f"{name}: sweep", unswept=fixed)
        write_html(fig, out_dir / "sweep.html")
        files.insert(1, "sweep.html")
    con = console()
    for t in fitted(con, _sweep_table(res.rows, [p.key for p in plist], name), len(plist) + 1):
        con.print(t)
    con.print(reuse_note(res.computed, res.reused, out_dir), highlight=False)
    con.print(f"results: {out_dir}/ ({', '.join(files)})", highlight=False)


def _prepare(html: bool) -> None:
    """What the sweep imports while its jobs run: the console's tables (rich) and the page."""
    import rich.console
    import rich.table  # noqa: F401

    if not html:
        return
    # A failure here shows again when sweep.html is written.
    try:
        import sim.studies.plots  # noqa: F401  (the page's figure, not the jobs': ~5 ms off the end)
        from sim.figure import preload

        preload()
    except Exception:
        pass


def _sweep_table(rows: list[dict[str, Any]], keys: list[str], name: str) -> Table:
    from rich.table import Table

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
        ci = "-" if r["p99_ci_lo"] is None else f"{fmt_ms(r['p99_ci_lo'])}-{fmt_ms(r['p99_ci_hi'])}"
        slo = slo_cell((r.get("slo_missed") or "").split(","), r["slo_met"])
        t.add_row(
            *(cell(r[k]) for k in keys),
            r["platform"],
            fmt_pct(r["error_rate"]),
            fmt_pct(r["cold_start_ratio"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p99_ms"]),
            ci,
            fmt_ms(r["p999_ms"]),
            f"{r['peak_instances']:,.0f}",
            fmt_usd(r["monthly_cost_usd"]),
            fmt_usd(r["cost_per_million_usd"]),
            slo,
        )
    return t
