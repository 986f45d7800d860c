"""`sim tune`."""

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sim.cli.common import (
    cell,
    console,
    fitted,
    fmt_ms,
    fmt_pct,
    fmt_usd,
    load_base,
    progress,
    reuse_note,
    slo_cell,
    study_folder,
    study_options,
    write_json,
)


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
    help="e.g. 'p99<300ms' or 'error_rate<0.1%' - quote it: < is a shell redirect "
    "(repeatable; default: the scenario's slo:)",
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
@study_options
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
    subfolder: bool,
) -> None:
    """The cheapest setting of one platform that meets every SLO, with the evidence.

    Writes tune.json (chosen setting, its metrics and SLO margins, every point tried). Exit
    status 1 when no point of the grid meets every SLO.
    """
    from sim.errors import InputError
    from sim.studies.sweep import parse_param
    from sim.studies.tune import parse_slo, qualify, slos_from_scenario
    from sim.studies.tune import tune as run_tune

    targets = [parse_slo(s) for s in slos]
    base = load_base(scenario, sets, seed, replications, duration)
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
        p = parse_param(text, month_s=base.month_s)
        plist.append(type(p)(qualify(p.key, platform), p.values, p.labels, p.numeric, p.ordered))
    out_dir = study_folder(out, sc.name, "tune", subfolder)
    with progress(f"tuning {platform}") as on_done:
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
    write_json(out_dir / "tune.json", doc)
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
    con = console()
    con.print(f"[bold]tune {doc['platform']}[/]: {doc['why']}")
    con.print(f"SLO judged on the {doc['criterion']}: " + ", ".join(s["text"] for s in doc["slo"]))
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
            *(cell(e["setting"][k]) for k in keys),
            fmt_usd(e["monthly_cost_usd"]),
            fmt_ms(e["p99_ms"]),
            "-" if not ci else f"{fmt_ms(ci[0])}-{fmt_ms(ci[1])}",
            fmt_pct(e["error_rate"]),
            fmt_pct(e["cold_start_ratio"]),
            slo_cell([c["metric"] for c in e["slo"] if not c["met"]], e["slo_met"]),
            style=style,
        )
    for block in fitted(con, t, len(keys)):
        con.print(block)
    if len(tried) > len(shown):
        con.print(f"({len(tried) - len(shown)} more in tune.json)")
    if chosen is None:
        con.print("[red]no point of the grid meets every SLO[/]")
    else:
        setting = ", ".join(f"{k}={cell(v)}" for k, v in chosen.items())
        con.print(
            f"[bold green]cheapest setting meeting every SLO[/]: {setting} "
            f"at {fmt_usd(doc['chosen']['monthly_cost_usd'])}/month"
        )
        for c in doc["chosen"]["slo"]:
            con.print("  " + _check_txt(c))
    con.print(
        reuse_note(doc["simulated"], doc["reused_from_points_file"], out_dir), highlight=False
    )
    con.print(f"results: {out_dir}/ (tune.json, points.jsonl)", highlight=False)
