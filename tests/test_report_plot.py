"""The report's figure dicts (sim.report.plot) against plotly itself: the subplot grid is laid out
as plotly.subplots.make_subplots lays it out, bands as add_vrect draws them, and every figure of a
report is a valid plotly figure (plotly validates it here, once, instead of on every page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from sim.report import _figures, _series, build_figures, render_report, results_from_run
from sim.report.plot import Figure, jsonable, scatter, template
from sim.simulate import run_scenario

from conftest import make_scenario

GRIDS: list[dict[str, Any]] = [
    # the time figure (with and without a nodes row) and the bill figure
    {
        "rows": 4,
        "cols": 1,
        "shared_xaxes": True,
        "vertical_spacing": 0.06,
        "subplot_titles": ["a", "b", "c", "d"],
        "row_heights": [0.34, 0.28, 0.16, 0.22],
    },
    {
        "rows": 3,
        "cols": 1,
        "shared_xaxes": True,
        "vertical_spacing": 0.06,
        "subplot_titles": ["a", "b", "c"],
        "row_heights": [0.38, 0.34, 0.28],
    },
    {"rows": 1, "cols": 2, "subplot_titles": ("x", "y"), "horizontal_spacing": 0.1},
    {"rows": 2, "cols": 3, "shared_xaxes": True},
]


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(a, b, rtol=0, atol=1e-12))
    return bool(a == b)


def _plotly(fig: go.Figure) -> dict[str, Any]:
    d = fig.to_dict()
    d["layout"].pop("template", None)
    return d


def _ours(fig: Figure) -> dict[str, Any]:
    d = jsonable(fig.to_dict())
    d["layout"].pop("template")
    return d


@pytest.mark.parametrize("grid", GRIDS)
def test_grid_is_laid_out_as_make_subplots(grid: dict[str, Any]):
    ref = make_subplots(**grid)
    ours = Figure(**grid)
    for row in range(1, grid["rows"] + 1):
        for col in range(1, grid["cols"] + 1):
            ref.add_trace(go.Scatter(x=[row], y=[col], name=f"{row},{col}"), row=row, col=col)
            ours.add_trace(scatter(x=[row], y=[col], name=f"{row},{col}"), row=row, col=col)
    ref.update_yaxes(type="log", title_text="ms", row=1, col=1)
    ours.update_yaxes(type="log", title={"text": "ms"}, row=1, col=1)
    ref.update_yaxes(title_text="all")
    ours.update_yaxes(title={"text": "all"})
    assert _close(_ours(ours), _plotly(ref))


def test_vrect_and_annotation_are_drawn_as_plotly_draws_them():
    grid = GRIDS[1]
    ref = make_subplots(**grid)
    ours = Figure(**grid)
    # (plotly leaves the band's label out on a subplot without a trace; the report's has some)
    ref.add_trace(go.Scatter(x=[1, 2], y=[3, 4]), row=1, col=1)
    ours.add_trace(scatter(x=[1, 2], y=[3, 4]), row=1, col=1)
    ref.add_vrect(
        x0=0,
        x1=12.5,
        fillcolor="#eeeeee",
        opacity=0.5,
        line_width=0,
        layer="below",
        annotation_text="warm-up",
        annotation_position="top left",
        annotation_font={"size": 10, "color": "#888888"},
        row=1,
        col=1,
    )
    ref.update_layout(height=300, title={"text": "t", "x": 0}, legend={"font": {"size": 11}})
    ref.update_layout(title={"text": "u"})
    ours.add_vrect(
        0,
        12.5,
        fillcolor="#eeeeee",
        opacity=0.5,
        line={"width": 0},
        layer="below",
        annotation={"text": "warm-up", "font": {"size": 10, "color": "#888888"}},
        row=1,
        col=1,
    )
    ours.update_layout(height=300, title={"text": "t", "x": 0}, legend={"font": {"size": 11}})
    ours.update_layout(title={"text": "u"})
    assert _close(_ours(ours), _plotly(ref))
    ref, ours = go.Figure(), Figure()
    ref.add_annotation(text="m", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    ours.add_annotation(text="m", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    ref.update_layout(height=200, xaxis={"visible": False})
    ours.update_layout(height=200, xaxis={"visible": False})
    assert _close(_ours(ours), _plotly(ref))


def test_arrays_are_typed_as_plotly_types_them_and_the_figure_is_left_alone():
    x = np.linspace(0, 1, 7)
    n = np.arange(7, dtype=np.int64)
    ref = go.Figure(go.Scatter(x=x, y=n, customdata=n * 1000))
    ours = Figure()
    ours.add_trace(scatter(x=x, y=n, customdata=n * 1000))
    assert _close(_ours(ours), _plotly(ref))
    assert ours.data[0]["x"] is x  # jsonable copied the containers
    assert (
        template() == go.Figure(layout={"template": "plotly_white"}).to_dict()["layout"]["template"]
    )


SCENARIO = {
    "name": "plot",
    "duration": "15m",
    "warmup": "1m",
    "replications": 2,
    "seed": 11,
    "workload": {
        "arrivals": [
            {"steady": {"rate": "4/s"}},
            {"spike": {"at": "8m", "peak": "20/s", "rise": "10s", "hold": "30s", "decay": "30s"}},
        ],
        "service": {"duration": {"dist": "lognormal", "median": "40ms", "p99": "300ms"}},
    },
    "platforms": [
        {"name": "fn", "type": "lambda"},
        {"name": "edge", "type": "wasm"},
        {
            "name": "k8s",
            "type": "kubernetes",
            "pod": {"concurrency": 2},
            "hpa": {"min_replicas": 1, "max_replicas": 8, "metric": "cpu", "target": "50%"},
            "ops": {"monitoring": 40},
        },
    ],
    "slo": {"p99": "400ms"},
}


def test_every_report_figure_is_a_valid_plotly_figure():
    summary, runs = run_scenario(make_scenario(SCENARIO), Path.cwd(), workers=1)
    results = [results_from_run(summary, runs)]
    figs = _figures(_series(results, None))
    assert set(figs) == {"tail", "parts", "cold_warm", "time", "bill"}
    for key, fig in figs.items():
        assert fig.data, key
        go.Figure(fig.to_dict())  # raises on any property plotly does not know
    # The graph objects for image export carry the same traces.
    gos = build_figures(results)
    assert [len(f.data) for f in gos.values()] == [len(f.data) for f in figs.values()]
    # Same results, same page.
    assert render_report(results) == render_report([results_from_run(summary, runs)])


def _both(fig: dict[str, Any], fast: bool, **kw: Any) -> tuple[str, str]:
    """sim.figure.html and plotly.io.to_html of the same figure dict, with the same arguments;
    `fast`: sim's own text (raises if html would hand the figure to plotly.io)."""
    import copy

    import plotly.io as pio

    from sim.figure import _html, html

    before = copy.deepcopy(fig)
    if fast:
        args = ("div_id", "config", "default_width", "full_html", "include_plotlyjs")
        given = {"default_width": "100%", "config": None} | kw
        ours = _html(fig, *(given[k] for k in args))
    else:
        ours = html(fig, **kw)
    assert repr(fig) == repr(before)  # the figure itself is left alone
    ref = pio.to_html(copy.deepcopy(jsonable(fig)), validate=False, **kw)
    return ours, ref


def test_page_text_is_plotlys_character_for_character():
    import pandas as pd

    n = np.arange(5, dtype=np.int64)
    figs = [
        {"data": [{"type": "scatter", "x": [1, 2.5], "y": (3, 4), "name": "<b>a/b</b>"}]},
        # typed arrays: floats, 64-bit integers narrowed (or not), a Series, 2-D, text arrays
        {
            "data": [
                {
                    "type": "scatter",
                    "x": np.linspace(0, 1, 5)[::2],  # not contiguous
                    "y": n * 1000,
                    "customdata": pd.Series(n * 10**10, index=n + 7),
                    "marker": {"symbol": np.array(["circle", "x"]), "size": n.astype(np.uint64)},
                    "text": pd.Series([0.5, np.nan, -0.0]),
                },
                {"type": "heatmap", "z": np.arange(6.0).reshape(2, 3), "zmin": np.float64(0.5)},
                {"type": "bar", "x": [np.arange(2.0), "\u2028"], "y": np.int32([7, -8])},
            ],
            # arrays under the keys plotly skips stay lists, down to any depth
            "layout": {
                "xaxis": {"range": np.array([0.0, 2.0]), "title": {"text": "ms"}},
                "mapbox": {"layers": [{"source": {"c": np.arange(2.0)}}]},
                "template": template(),
                "width": 640,
                "height": "300",
            },
        },
    ]
    config = {"displaylogo": False, "toImageButtonOptions": {"scale": 2}}
    for fig in figs:
        for kw in (
            {"div_id": "fig-a", "config": config, "full_html": False, "include_plotlyjs": False},
            {"div_id": "p", "full_html": True, "include_plotlyjs": True},
        ):
            ours, ref = _both(fig, True, **kw)
            assert ours == ref


def test_what_page_text_does_not_reproduce_goes_to_plotly():
    import pandas as pd

    figs = [
        {"data": [{"type": "scatter", "x": np.array([True, False])}]},  # bool: plotly's objects
        {"data": [{"type": "scatter", "x": np.array([], dtype=float)}]},
        {"data": [{"type": "scatter", "x": pd.Series(["a", None])}]},
        {"data": [{"type": "scatter", "x": [np.float32(0.1)], "y": [np.int64(3)]}]},
        {"data": [{"type": "scatter", "x": pd.date_range("2026-01-01", periods=2)}]},
    ]
    for fig in figs:
        ours, ref = _both(fig, False, div_id="x", full_html=False, include_plotlyjs=False)
        assert ours == ref


@pytest.mark.parametrize("x", [[1.0, 2.5], np.array([True, False])])  # ours, then plotly.io's
def test_a_written_page_is_the_page_text(x: Any, tmp_path: Path, monkeypatch: Any) -> None:
    # Figure.write_html writes plotly.js beside the page instead of inside it (issue 13): the file
    # must still be html(full_html=True, include_plotlyjs=True), plotly.js once, where it was.
    import uuid

    from sim.figure import html, plotly_js

    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))  # the same div id both times
    fig = Figure()
    fig.add_trace(scatter(x=x, y=[3.0, 4.0], name="<b>a</b>"))
    fig.update_layout(title={"text": "sweep"})
    fig.write_html(tmp_path / "p.html")
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert text == html(fig.to_dict(), full_html=True, include_plotlyjs=True)
    assert text.count(plotly_js()) == 1
    assert "\x00" not in text
