"""`sim fit SOURCE...`: logs and metrics -> a fitted scenario (+ replay trace, fit report);
`--check` back-tests it on the observed platform."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sim.cli.common import EXIT_SLO

_FORMATS = (
    "lambda",
    "lambda-events",
    "lambda-insights",
    "alb",
    "nginx",
    "envoy",
    "k6",
    "prometheus",
    "power-tuning",
    "azure2021",
)  # sim.fit.readers.FORMATS (not imported: --help stays light)


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), help="scenario to write (default fitted/<name>.yaml)"
)
@click.option(
    "--format", "fmt", type=click.Choice(_FORMATS), help="input format (default: detected)"
)
@click.option("--log-format", help="nginx: the log_format string (with $request_time)")
@click.option(
    "--arrivals",
    type=click.Choice(("replay", "parametric")),
    default="replay",
    show_default=True,
    help="replay the observed arrivals, or write the parametric summary",
)
@click.option("--cpu-bound", type=float, help="share of handler time that scales with CPU (0..1)")
@click.option("--timeout", type=float, help="Lambda timeout in seconds (default: from the logs)")
@click.option("--name", help="scenario name (default: the first file's name)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--replications", type=click.IntRange(2, 100), default=5, show_default=True)
@click.option("--check", is_flag=True, help="back-test: simulate and compare with the observations")
@click.option("--no-report", is_flag=True, help="skip the HTML fit report")
def fit(
    sources: tuple[Path, ...],
    out: Path | None,
    fmt: str | None,
    log_format: str | None,
    arrivals: str,
    cpu_bound: float | None,
    timeout: float | None,
    name: str | None,
    seed: int,
    replications: int,
    check: bool,
    no_report: bool,
) -> None:
    """Fit a scenario to SOURCE files (Lambda logs, ALB/nginx/Envoy access logs, k6 JSON,
    Prometheus query_range JSON, Power Tuning output, Azure 2021 traces)."""
    from sim.fit import fit_sources
    from sim.fit.backtest import format_rows

    res = fit_sources(
        sources,
        out=out,
        fmt=fmt,
        log_format=log_format,
        arrivals=arrivals,
        cpu_bound=cpu_bound,
        timeout=timeout,
        name=name,
        seed=seed,
        replications=replications,
        check=check,
        report=not no_report,
    )
    f = res.fit
    for i in f.inputs:
        bad = f"; {i['malformed']} malformed" if i["malformed"] else ""
        click.echo(f"read {i['file']} ({i['format']}): {i['records']} records{bad}")
        for b in i["first_malformed"]:
            click.echo(f"  line {b['line']}: {b['problem']}")
    a = f.arrivals
    click.echo(
        f"arrivals: {a.count} in {a.window_s:g} s = {a.rate:.4g}/s "
        f"(95% CI {a.rate_ci[0]:.4g}-{a.rate_ci[1]:.4g}); dispersion index {a.dispersion:.3g} "
        f"(p={a.dispersion_p:.3g}); summary by BIC: {a.chosen}"
    )
    s = f.service
    ks = f" KS D={s.ks[s.best]['D']:.4f} p={s.ks[s.best]['p']:.3g}" if s.best else ""
    click.echo(
        f"handler time: p50 {s.percentiles_ms['p50']:.4g} ms, p99 {s.percentiles_ms['p99']:.4g} ms;"
        f" best {s.best}{ks}; written: {s.chosen}"
    )
    if f.init is not None:
        click.echo(f"init: {f.init.n} cold starts, p50 {f.init.percentiles_ms['p50']:.4g} ms")
    if f.power is not None:
        p = f.power
        click.echo(
            f"cpu_bound {p.cpu_bound:.3f} (se {p.cpu_bound_se:.3g}), residual RMS "
            f"{p.residual_rms_ms:.3g} ms"
        )
    if f.keep_alive and f.keep_alive.get("estimate"):
        e = f.keep_alive["estimate"]
        click.echo(
            f"keep-alive: cold iff idle > {e['threshold_s']:.0f} s fits best "
            f"({e['accuracy']:.1%}); default {f.keep_alive['default_keep_alive_s']:g} s"
        )
    for note in f.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"wrote {res.scenario_path}"
        + (f", {res.trace_path}" if res.trace_path else "")
        + f", {res.summary_path}"
        + (f", {res.report_path}" if res.report_path else "")
    )
    if res.check is not None:
        click.echo("")
        click.echo(
            f"back-test on {res.check['platform']} ({res.check['replications']} replications):"
        )
        click.echo(format_rows(res.check["rows"]))
        if any(r["agree"] is False for r in res.check["rows"]):
            sys.exit(EXIT_SLO)
