"""The HTML report: one self-contained page comparing platforms on tail latency and the bill.

It reads results only (summary.json, requests.csv.gz, timeline.csv, decisions.csv) and never
re-simulates. `sim run` renders it from the frames it writes (`results_from_run`); `sim compare`
loads folders (`load_results`) and overlays them. Statistics are plotted exactly as summary.json
holds them; only per-request pictures use the request sample.

    results = [load_results("results/a"), load_results("results/b")]
    html = render_report(results)                       # labels "a/<platform>", "b/<platform>"
    write_images(build_figures(results), "out/", "png")  # needs kaleido (optional)

The room: data.py (what is plotted, from a results folder), figures.py (plotly figures), page.py
(the HTML around them). May import sim.results and below; never sim.cli, sim.studies or
sim.validation, and nothing below imports the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import InputError
from sim.report.data import Series, esc, series_of
from sim.report.figures import (
    bill_figure,
    cold_warm_figure,
    parts_figure,
    tail_figure,
    time_figure,
)
from sim.report.page import page
from sim.report.plot import Figure, html, plotly_js, preload_figures
from sim.report.system import SYSTEM_FIGURES, system_figures  # noqa: F401 (SYSTEM_FIGURES)
from sim.results import Results, load_results, results_from_run  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import plotly.graph_objects as go

FIGURES = ("tail", "parts", "cold_warm", "time", "bill")
# ... and for a system (issue 17) SYSTEM_FIGURES: flow, service_tails, queues, service_bill
# Only client-side modebar actions; no plotly.js feature here touches the network.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}


def build_figures(results: list[Results], labels: list[str] | None = None) -> dict[str, go.Figure]:
    """The report's figures by key (FIGURES) as plotly graph objects, e.g. for image export."""
    return {k: fig.to_go() for k, fig in _figures(_series(results, labels)).items()}


def _figures(series: list[Series]) -> dict[str, Figure]:
    return {
        "tail": tail_figure(series),
        "parts": parts_figure(series),
        "cold_warm": cold_warm_figure(series),
        "time": time_figure(series),
        "bill": bill_figure(series),
        **system_figures(series),
    }


def render_report(
    results: list[Results], labels: list[str] | None = None, *, title: str | None = None
) -> str:
    """A self-contained HTML page (plotly.js inlined once; opens offline).

    With one Results, series are named by platform; with several, `label/platform`, where labels
    default to the scenario names (or folder names when two scenarios share a name).
    """
    if not results:
        raise InputError("nothing to report: no results given")
    series = _series(results, labels)
    # plotly.io.to_html's text for each figure (sim.figure.html): plain dicts, nothing to validate.
    fragments = {
        key: html(fig.to_dict(), div_id=f"fig-{key}", config=PLOTLY_CONFIG, default_width="100%")
        for key, fig in _figures(series).items()
    }
    if title is None:
        names = [r.name for r in results]
        title = (
            f"sim report: {names[0]}" if len(names) == 1 else "sim compare: " + " vs ".join(names)
        )
    return page(title, plotly_js(), results, series, fragments, _notes(series))


def preload() -> None:
    """Import and read now what render_report needs on its first call (pandas, the template,
    plotly.js, orjson: ~0.2 s): `sim run` calls this while the simulation runs in another
    process."""
    import pandas as pd

    preload_figures(pd.Series([0.0]))


def write_images(
    figures: dict[str, go.Figure], out_dir: str | Path, fmt: str = "png"
) -> list[Path]:
    """Static images of the figures (fmt png or svg). Needs the optional kaleido package."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise InputError(
            "image export needs the optional `kaleido` package (pip install kaleido); "
            "the HTML report does not need it",
            key="--images",
        ) from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, fig in figures.items():
        path = out_dir / f"{key}.{fmt}"
        fig.write_image(path, format=fmt, width=1200, height=fig.layout.height or 500)
        paths.append(path)
    return paths


def _series(results: list[Results], labels: list[str] | None) -> list[Series]:
    if labels is not None and len(labels) != len(results):
        raise InputError(f"{len(labels)} labels given for {len(results)} results")
    return series_of(results, labels)


def _notes(series: list[Series]) -> dict[str, str]:
    sources = sorted({c.band_source for s in series if (c := s.ccdf) and c.band_source})
    if sources:
        band = (
            "Shaded bands: 95% CI across replications at each tail probability (from "
            + esc(" and ".join(sources))
            + ")."
        )
    elif not any(s.ccdf for s in series):
        band = ""
    elif any(s.replications > 1 for s in series):
        band = (
            "No CI bands: the request sample does not hold every request and summary.json has "
            "no per-replication CCDF; the table gives the 95% CIs of p99 and p99.9."
        )
    else:
        band = "One replication: no CI bands across replications."
    return {
        "tail": "Each line is summary.json's latency CCDF (exact order statistics, averaged over "
        "replications), cut where the tail probability falls below 1/(requests per replication). "
        f"Markers sit at the table's p50, p99 and p99.9. {band} The buttons switch to a linear "
        "CDF.",
        "why": "Left: mean of each part of the end-to-end latency (gateway/ingress overhead, "
        "waiting, cold start, service) over all requests (summary.json) and over the slowest 1% "
        "of the request sample. Right: percentiles of requests that met a cold start versus warm "
        "ones (summary.json); the count of cold starts is in brackets.",
        "time": "Latency percentiles per time bucket come from the request sample "
        "(requests.csv.gz), all replications pooled. Instances, decisions (hover for the reason), "
        "cold starts, nodes and arrivals show the first replication as it happened. Click "
        "legend entries to show the sampled requests slower than p99.",
    }
