"""`sim run SCENARIO`: simulate every platform, print the summary, write the results folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from sim.cli.common import (
    EXIT_SLO,
    no_html_option,
    out_path,
    overrides,
    run_options,
    save_results,
    startup_done,
    workers_option,
)


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out",
    callback=out_path,
    help="results folder (default results/<scenario name>/)",
)
@run_options
@click.option("--json", "as_json", is_flag=True, help="print summary.json instead of the table")
@click.option("--check", is_flag=True, help="exit 1 if any platform misses an SLO")
@workers_option
@click.option("--force", is_flag=True, help="run even if the run looks too large")
@no_html_option("report.html")
@click.option(
    "--subfolder",
    is_flag=True,
    help="write into a new folder inside --out (OUT/<name>, or <name>-2, ...) instead of "
    "replacing it",
)
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
    no_html: bool,
    no_report: bool,
    subfolder: bool,
) -> None:
    """Simulate every platform in SCENARIO; print the decision and the summary; write the
    results folder.

    \b
    Examples:
      sim run scenarios/latency-sensitive.yaml
      sim run my.yaml --duration 1h --set 'platforms.lambda.memory=1024' --check
    """
    import contextlib

    from sim import api
    from sim.results import output_folder, summary_json
    from sim.statistics import slo_met
    from sim.verdict import verdict

    changes = overrides(sets, seed, replications, duration)
    sc = api.load_scenario(scenario, changes)
    # Checked before simulating: sim replaces only a folder it wrote itself.
    out_dir = output_folder(
        out, Path("results") / sc.name, "results", name=sc.name, subfolder=subfolder
    )
    size_key = next(
        (o for o, v in (("--replications", replications), ("--duration", duration)) if v),
        "duration",
    )
    show = not as_json and sys.stderr.isatty()
    report = not (no_html or no_report)
    startup_done()
    bar: Any = contextlib.nullcontext()
    if show:  # rich (sim.cli.console) is imported meanwhile otherwise: see _prepare
        from sim.cli.console import progress_for

        bar = progress_for(sc, enabled=True)
    with bar as on_done:
        res = api.run(
            sc,
            base_dir=scenario.resolve().parent,
            source=str(scenario),
            workers=workers,
            force=force,
            on_job_done=on_done,
            size_key=size_key,
            prepare=lambda: _prepare(report),
            will_save=True,
        )
    # the suggested `sim tune` line repeats this run's overrides, so it tunes what was run
    res.summary["verdict"] = verdict(sc, res.summary["platforms"], str(scenario), changes)
    save_results(res, out_dir, report=report)
    if as_json:
        click.echo(summary_json(res.summary))
    else:
        from sim.cli.console import print_summary

        print_summary(res.summary, out_dir)
        if "system" in res.summary:
            print_system(res.summary)
    if check and any(slo_met(p) is False for p in res.summary["platforms"].values()):
        sys.exit(EXIT_SLO)


def _prepare(report: bool) -> None:
    """What `sim run` imports while the simulation runs: the console (rich) and the report."""
    import sim.cli.console  # noqa: F401

    if not report:
        return
    # A failure here shows again, as a warning, when the report is rendered (save_results).
    try:
        from sim.report import preload

        preload()
    except Exception:
        pass


def _timeouts(t: dict | None) -> str:
    """A service's timeouts: function (Lambda's own) + client (its callers'), "0" without any."""
    t = t or {}
    parts = [f"{t[k]:,} {n}" for k, n in (("function", "fn"), ("client", "client")) if t.get(k)]
    return " + ".join(parts) or "0"


def print_system(summary: dict) -> None:
    """A system (issue 17): per placement, a row per service and per queue."""
    from rich.table import Table

    from sim import format as fmt
    from sim.cli.console import make_console
    from sim.systems.summary import queue_route  # numpy: kept off `sim --help`'s path

    console = make_console()
    for name, p in summary["system"].items():
        a = p["async_completion_ms"]
        title = (
            f"{name}: services and queues (async completion p50 {fmt.ms(a.get('p50'))}, "
            f"p99 {fmt.ms(a.get('p99'))})"
        )
        t = Table(title=title)
        cols = ("service / queue", "platform", "requests", "p50", "p99", "cold", "timeouts")
        for col in (*cols, "$/month"):
            t.add_column(col, justify="left" if col in ("service / queue", "platform") else "right")
        for svc, s in p["services"].items():
            lat = s["latency_ms"]
            t.add_row(
                svc,
                f"{s['platform']} ({s['type']})",
                fmt.count(s["requests"]),
                fmt.ms(lat.get("p50")),
                fmt.ms(lat.get("p99")),
                fmt.count(s["cold_starts"]),
                _timeouts(s.get("timeouts")),
                fmt.usd(s["monthly_cost_usd"]),
            )
        for q, v in p["queues"].items():
            w = v["time_in_queue_ms"]
            t.add_row(
                f"queue {q}",
                queue_route(v) + (f", DLQ {v['dlq']}" if v["dlq"] else ""),
                fmt.count(v["sent"]),
                fmt.ms(w.get("p50")),
                fmt.ms(w.get("p99")),
                "",
                "",
                fmt.usd(v["monthly_cost_usd"]),
            )
        console.print(t)
