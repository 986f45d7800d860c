"""The Python API: what the command line does, callable from a notebook or a script.

    import sim

    sc = sim.load_scenario("scenarios/small-api.yaml", overrides={"duration": "30m"})
    res = sim.run(sc)                       # every platform, every replication
    res.table()                             # one row per platform (a DataFrame)
    res.requests.head()                     # per-request rows (a DataFrame)
    res.report("out/report.html")           # the same self-contained HTML page as `sim run`
    res.save("results/small-api")           # the same results folder as `sim run`

A scenario may be a file path or a plain dict with the YAML's keys; both go through the same
validation and give the same error messages (InputError naming the file, key and line). The CLI
is built on these functions: `sim run` is load_scenario + run + save, `sim compare` is compare.

This room sits above studies, report and validation and below the CLI; see docs/architecture.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import results as _results
from sim.errors import InputError
from sim.scenario import (
    Override,
    Scenario,
    apply_overrides,
    read_scenario_data,
    set_path,
    validate_scenario,
)

# pandas is imported where a frame is built: `run` imports it while the simulation runs in
# another process (sim.simulate's `prepare`), so its ~0.25 s of start-up overlaps the work.
if TYPE_CHECKING:
    import pandas as pd

ScenarioLike = Scenario | str | Path | Mapping[str, Any]
# `--set` values ("KEY=VALUE", or (option, "KEY=VALUE") so errors name the option) or a
# mapping {dotted.path: value}
Overrides = Sequence[Override] | Mapping[str, Any]

# How a dict scenario is named in error messages.
DICT_SOURCE = "<scenario dict>"


@dataclass
class Results(_results.Results):
    """A run's results: `summary` (summary.json as plain data) and the `requests`, `timeline` and
    `decisions` frames, exactly what the results folder holds. `runs` (the raw per-run records)
    is there when the results come from `run`, not from a folder."""

    runs: list[Any] = field(default_factory=list, repr=False)
    # the frames as built (before the categorical copies above), written by save() unrebuilt
    tables: _results.Tables | None = field(default=None, repr=False)
    # requests.csv.gz's bytes from the simulation worker (run(..., will_save=True)), or None
    requests_gz: Callable[[], bytes | None] | None = field(default=None, repr=False)

    @property
    def platforms(self) -> dict[str, dict[str, Any]]:
        """summary.json's per-platform block, by platform name."""
        return dict(self.summary["platforms"])

    def table(self) -> pd.DataFrame:
        """One row per platform: the figures `sim run` prints (latency in ms, costs in USD)."""
        import pandas as pd

        rows = []
        for name, p in self.summary["platforms"].items():
            lat = p.get("latency_ms") or {}
            rows.append(
                {
                    "platform": name,
                    "requests": p.get("requests"),
                    "error_rate": p.get("error_rate"),
                    "cold_start_ratio": p.get("cold_start_ratio"),
                    **{f"{k}_ms": lat.get(k) for k in ("mean", "p50", "p90", "p99", "p999")},
                    "cost_usd": (p.get("cost_usd") or {}).get("total"),
                    "cost_per_million_usd": p.get("cost_per_million_usd"),
                    "monthly_cost_usd": p.get("monthly_cost_usd"),
                }
            )
        return pd.DataFrame(rows).set_index("platform")

    def report(self, path: str | Path) -> Path:
        """Write the self-contained HTML report (the page `sim run` writes) to `path`."""
        from sim.report import render_report

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report([self]), encoding="utf-8")
        return path

    def save(
        self,
        folder: str | Path,
        *,
        report: bool = True,
        extra_files: Mapping[str, _results.ExtraFile] | None = None,
    ) -> Path:
        """Write the results folder `sim run` writes (summary.json, requests.csv.gz, timeline.csv,
        decisions.csv and, unless report=False, report.html), plus any `extra_files` (a text, or
        a function returning it or None, called while the tables are written)."""
        if not self.runs:
            raise InputError("these results were read from a folder; they are saved already")
        extra = dict(extra_files or {})
        if report:
            from sim.report import render_report

            extra["report.html"] = lambda: render_report([self])
        return _results.write_results(
            Path(folder),
            self.summary,
            self.runs,
            extra_files=extra,
            tables=self.tables,
            requests_gz=self.requests_gz,
        )


def load_scenario(
    source: ScenarioLike,
    overrides: Overrides = (),
    *,
    base_dir: str | Path | None = None,
) -> Scenario:
    """A validated Scenario from a YAML file or a dict with the same keys.

    `overrides` are `--set` values: "key=value" strings (values parsed as YAML) or a mapping
    {dotted.path: value}. Relative paths inside the scenario (traces, manifests, SAM templates)
    resolve against the file's folder, or `base_dir` (default: the current folder) for a dict.
    """
    if isinstance(overrides, str):
        raise InputError("overrides: expected a list of 'key=value' strings or a mapping")
    if isinstance(source, Scenario):
        if overrides:
            raise InputError(
                "overrides apply to a scenario file or dict, not to a loaded Scenario: "
                "pass the path or dict with overrides=..."
            )
        return source
    if isinstance(source, Mapping):
        data: Any = copy.deepcopy(dict(source))
        file, node, folder = DICT_SOURCE, None, Path(base_dir or ".")
    else:
        data, node, file = read_scenario_data(source)
        folder = Path(base_dir) if base_dir is not None else Path(source).resolve().parent
    labels: dict[tuple[Any, ...], str] = {}
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            set_path(data, str(key), copy.deepcopy(value), file)
        node = None  # line numbers no longer match the file
    elif overrides:
        data = apply_overrides(data, list(overrides), file, labels)
    return validate_scenario(data, file=file, base_dir=folder.resolve(), node=node, labels=labels)


def run(
    scenario: ScenarioLike,
    overrides: Overrides = (),
    *,
    base_dir: str | Path | None = None,
    source: str | None = None,
    workers: int | None = None,
    force: bool = False,
    on_job_done: Callable[[Any], None] | None = None,
    size_key: str = "duration",
    prepare: Callable[[], None] | None = None,
    will_save: bool = False,
) -> Results:
    """Simulate every platform of `scenario` (every replication); nothing is written.

    Relative paths in the scenario resolve against `base_dir` (default: the file's folder, or
    the current folder for a dict or a loaded Scenario); `source` is the file name recorded in
    summary.json (default: the path, when one is given). `force` runs past the size check;
    `workers` sets the process count (default: one per core when the run is large enough);
    `size_key` is the key a too-large run is blamed on (the CLI names its option); `prepare`
    is the caller's own start-up (e.g. importing the report), done while the jobs run;
    `will_save` says the caller saves the results next (`sim run`): a run simulated in one
    forked worker then formats requests.csv.gz there meanwhile, waited for by save()."""
    from sim.simulate import run_scenario

    def start_up() -> None:
        import pandas  # noqa: F401 (the frames below)

        if prepare is not None:
            prepare()

    sc = load_scenario(scenario, overrides, base_dir=base_dir)
    files: dict[str, Callable[[], bytes | None]] | None = {} if will_save else None
    is_path = isinstance(scenario, str | Path)
    if base_dir is not None:
        folder = Path(base_dir)
    else:
        folder = Path(scenario).resolve().parent if is_path else Path.cwd()  # type: ignore[arg-type]
    if source is None and is_path:
        source = str(scenario)
    summary, runs = run_scenario(
        sc,
        folder,
        source=source,
        workers=workers,
        force=force,
        on_job_done=on_job_done,
        size_key=size_key,
        prepare=start_up,
        files=files,
    )
    tables = _results.tables_of(runs)
    return Results.from_run(
        summary,
        runs,
        tables,
        runs=runs,
        tables=tables,
        requests_gz=(files or {}).get("requests.csv.gz"),
    )


def load_results(folder: str | Path) -> Results:
    """Read a results folder written by `sim run` (or `Results.save`)."""
    base = _results.load_results(folder)
    return Results(base.summary, base.requests, base.timeline, base.decisions, base.folder)


def compare(
    items: Sequence[_results.Results | str | Path],
    path: str | Path | None = None,
    *,
    labels: Sequence[str] | None = None,
) -> str:
    """One report over several results (Results objects or results folders); platforms are
    labelled `scenario/platform`. Returns the HTML; writes it to `path` when given."""
    from sim.report import render_report

    results: list[_results.Results] = [
        r if isinstance(r, _results.Results) else load_results(r) for r in items
    ]
    html = render_report(results, list(labels) if labels is not None else None)
    if path is not None:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    return html


def sweep(
    scenario: str | Path | Mapping[str, Any],
    params: Mapping[str, str | Sequence[Any]],
    overrides: Overrides = (),
    *,
    base_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Run `scenario` at every point of a grid; one row per point x platform (sweep.csv's rows).

    `params` maps a dotted key to a spec as `sim sweep --param` takes it ("0:10:2", "0,5,10",
    "100ms,200ms") or to a list of values. With `out_dir`, finished points go to its
    points.jsonl so a re-run computes only what is missing; without it nothing is written.
    """
    from sim.studies.sweep import Base, parse_param, run_sweep

    if isinstance(scenario, Mapping):
        data = copy.deepcopy(dict(scenario))
        file = DICT_SOURCE
        folder = Path(base_dir or ".").resolve()
    else:
        data, _node, file = read_scenario_data(scenario)
        folder = Path(base_dir) if base_dir is not None else Path(scenario).resolve().parent
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            set_path(data, str(key), copy.deepcopy(value), file)
    elif overrides:
        data = apply_overrides(data, list(overrides), file)
    base = Base(data, file, folder)
    specs = []
    for key, spec in params.items():
        if not isinstance(spec, str):
            spec = ",".join(v if isinstance(v, str) else json.dumps(v) for v in spec)
        specs.append(parse_param(f"{key}={spec}", option="params", month_s=base.month_s))
    res = run_sweep(
        base,
        specs,
        out_dir=Path(out_dir) if out_dir is not None else None,
        workers=workers,
        scheduler=scheduler,
        force=force,
    )
    import pandas as pd

    return pd.DataFrame(res.rows)


def fit_sources(
    sources: Sequence[str | Path],
    *,
    out: str | Path | None = None,
    check: bool = False,
    **options: Any,
) -> Any:
    """`sim fit`: read logs/metrics, fit, write the scenario `out` (+ replay trace, fit.json,
    fit report); with `check`, back-test it. Options as the CLI's (fmt, log_format, arrivals,
    cpu_bound, timeout, name, seed, replications, report). Returns a sim.fit.FitResult.
    (Not `sim.fit`: that name is the package sim/fit/.)"""
    from sim import fit as _fit

    return _fit.fit_sources(sources, out=out, check=check, **options)
