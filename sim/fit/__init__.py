"""`sim fit`: from logs and metrics to a scenario, and a back-test of it.

    from sim.fit import fit_sources
    res = fit_sources(["report.log.gz", "power-tuning.json"], out="fitted/api.yaml", check=True)
    res.scenario_path, res.report_path, res.check["rows"]

The room: io.py (streamed lines, gzip, malformed-line tally), readers.py (one reader per input
format, auto-detected), fitters.py (arrivals, handler/init time, cpu_bound, keep-alive, each with
its goodness of fit), build.py (fits -> scenario + replay trace), backtest.py (simulate the fitted
scenario on the observed platform; observed vs simulated with CIs), page.py (the fit report).
Sits above sim.report (it reuses the report's style sheet) and below sim.api; imports nothing
from sim.studies, sim.validation or sim.cli.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.errors import InputError

ARRIVAL_MODES = ("replay", "parametric")


@dataclass
class FitResult:
    fit: Any  # sim.fit.build.Fit
    scenario: dict[str, Any]
    scenario_path: Path
    trace_path: Path | None
    summary_path: Path
    report_path: Path | None
    check: dict[str, Any] | None


def fit_sources(
    sources: Sequence[str | Path],
    *,
    out: str | Path | None = None,
    fmt: str | None = None,
    log_format: str | None = None,
    arrivals: str = "replay",
    cpu_bound: float | None = None,
    timeout: float | None = None,
    name: str | None = None,
    seed: int = 1,
    replications: int = 5,
    check: bool = False,
    report: bool = True,
) -> FitResult:
    """Read `sources`, fit, write `out` (scenario YAML) with `<stem>-arrivals.csv.gz`,
    `<stem>-fit.json` and (unless report=False) `<stem>-fit.html` beside it; with `check`,
    back-test the scenario on the observed platform."""
    from sim.fit.build import build_fit, make_scenario, write_trace
    from sim.fit.readers import read

    if not sources:
        raise InputError("give at least one log, metrics or Power Tuning file")
    if arrivals not in ARRIVAL_MODES:
        raise InputError(f"expected one of {', '.join(ARRIVAL_MODES)}", key="--arrivals")
    if cpu_bound is not None and not 0 <= cpu_bound <= 1:
        raise InputError("cpu_bound is a share: expected 0..1", key="--cpu-bound")
    paths = [Path(s) for s in sources]
    observed = [read(p, fmt, log_format, seed=i) for i, p in enumerate(paths)]
    name = name or paths[0].name.split(".")[0]
    out_path = Path(out) if out is not None else Path("fitted") / f"{name}.yaml"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stem = out_path.name[: -len(out_path.suffix)] if out_path.suffix else out_path.name

    f = build_fit(observed, name=name, arrivals=arrivals, cpu_bound=cpu_bound, timeout_s=timeout)
    trace_path = None
    if f.requests is not None and arrivals == "replay":
        trace_path = out_path.parent / f"{stem}-arrivals.csv.gz"
        f.trace_kind = write_trace(f, trace_path, seed)
    scenario = make_scenario(f, trace_path.name if trace_path else None, seed, replications)
    f.scenario = scenario
    header = (
        f"# Fitted by `sim fit` from {', '.join(p.name for p in paths)}.\n"
        f"# Arrivals: {arrivals}"
        + (f" ({trace_path.name})" if trace_path else f" ({f.arrivals.chosen})")
        + f"; handler time: {f.service.chosen}; cpu_bound: {f.cpu_bound_source}.\n"
        f"# Details and goodness of fit: {stem}-fit.json"
        + (f", {stem}-fit.html" if report else "")
        + ".\n"
    )
    out_path.write_text(header + yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    # The written file must load as any scenario does.
    from sim.scenario import read_scenario_data, validate_scenario

    data, node, file = read_scenario_data(out_path)
    validate_scenario(data, file=file, base_dir=out_path.resolve().parent, node=node)

    result = None
    if check:
        from sim.fit.backtest import backtest

        result = backtest(f, scenario, out_path.resolve().parent, replications)
    summary = f.summary()
    if result is not None:
        summary["backtest"] = {k: v for k, v in result.items() if k != "summary"}
    summary_path = out_path.parent / f"{stem}-fit.json"
    summary_path.write_text(json.dumps(summary, indent=1, default=float) + "\n", encoding="utf-8")
    report_path = None
    if report:
        from sim.fit.page import render

        report_path = out_path.parent / f"{stem}-fit.html"
        report_path.write_text(render(f, result), encoding="utf-8")
    return FitResult(f, scenario, out_path, trace_path, summary_path, report_path, result)
