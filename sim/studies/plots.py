"""Plotly pages for sweeps and crossovers (self-contained: plotly.js embedded, opens offline).

One parameter: p99 (with its 95% CI) and $/month against the parameter, a line per platform.
Two parameters: heat maps of p99 and $/month per platform. More: lines against the first parameter,
one per platform and combination of the others.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sim.studies.sweep import Param


def _color(i: int) -> str:
    palette = qualitative.Plotly
    return palette[i % len(palette)]


def _volume(v: float) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def _axis(param: Param) -> list[Any]:
    """x values: SI numbers when every value is a quantity, else the labels (categorical)."""
    if param.ordered:
        return list(param.numeric)
    return [str(v) for v in param.labels]


def _val(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    return None if v is None or v != v else v


def sweep_figure(rows: Sequence[dict[str, Any]], params: Sequence[Param], title: str) -> go.Figure:
    platforms = list(dict.fromkeys(r["platform"] for r in rows))
    if len(params) == 2:
        return _heatmaps(rows, params, platforms, title)
    p0 = params[0]
    xs = _axis(p0)
    index = {lab: i for i, lab in enumerate(p0.labels)}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("p99 latency (ms)", "monthly cost (USD)"))
    others = list(params[1:])
    combos = list(itertools.product(*(o.labels for o in others))) or [()]
    n_group = 0
    for name in platforms:
        for combo in combos:
            color = _color(n_group)
            n_group += 1
            sel = [
                r
                for r in rows
                if r["platform"] == name
                and all(r[o.key] == c for o, c in zip(others, combo, strict=True))
            ]
            sel.sort(key=lambda r: index[r[p0.key]])
            x = [xs[index[r[p0.key]]] for r in sel]
            label = name + "".join(
                f", {o.key.split('.')[-1]}={c}" for o, c in zip(others, combo, strict=True)
            )
            p99 = [_val(r, "p99_ms") for r in sel]
            hi = [
                (_val(r, "p99_ci_hi") or y or 0) - (y or 0) for r, y in zip(sel, p99, strict=True)
            ]
            lo = [
                (y or 0) - (_val(r, "p99_ci_lo") or y or 0) for r, y in zip(sel, p99, strict=True)
            ]
            group = f"{name}{combo}"
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=p99,
                    mode="lines+markers",
                    name=label,
                    legendgroup=group,
                    line={"color": color},
                    error_y={"type": "data", "array": hi, "arrayminus": lo, "visible": True},
                    hovertemplate="%{x}: p99 %{y:.1f} ms<extra>" + label + "</extra>",
                ),
                1,
                1,
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[_val(r, "monthly_cost_usd") for r in sel],
                    mode="lines+markers",
                    name=label,
                    legendgroup=group,
                    line={"color": color},
                    showlegend=False,
                    hovertemplate="%{x}: $%{y:,.2f}/month<extra>" + label + "</extra>",
                ),
                1,
                2,
            )
    xtitle = p0.key + (
        " (SI units)" if p0.ordered and any(isinstance(v, str) for v in p0.labels) else ""
    )
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text="ms", row=1, col=1)
    fig.update_yaxes(title_text="USD / month", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", height=520)
    return fig


def _heatmaps(
    rows: Sequence[dict[str, Any]], params: Sequence[Param], platforms: list[str], title: str
) -> go.Figure:
    px, py = params
    titles = [
        f"{name}: {what}"
        for name in platforms
        for what in ("p99 latency (ms)", "monthly cost (USD)")
    ]
    fig = make_subplots(
        rows=len(platforms),
        cols=2,
        subplot_titles=titles,
        vertical_spacing=0.12 / max(1, len(platforms)),
    )
    xi = {lab: i for i, lab in enumerate(px.labels)}
    yi = {lab: i for i, lab in enumerate(py.labels)}
    xl = [str(v) for v in px.labels]
    yl = [str(v) for v in py.labels]
    for k, name in enumerate(platforms):
        for col, metric in ((1, "p99_ms"), (2, "monthly_cost_usd")):
            z: list[list[float | None]] = [[None] * len(xl) for _ in yl]
            for r in rows:
                if r["platform"] == name:
                    z[yi[r[py.key]]][xi[r[px.key]]] = _val(r, metric)
            fig.add_trace(
                go.Heatmap(
                    x=xl,
                    y=yl,
                    z=z,
                    colorscale="Viridis" if col == 1 else "Cividis",
                    showscale=False,
                    # values on the cells: several heat maps cannot share one colour bar
                    texttemplate="%{z:,.0f} ms" if col == 1 else "$%{z:,.2f}",
                    hovertemplate=f"{px.key}=%{{x}}<br>{py.key}=%{{y}}<br>"
                    f"{metric}=%{{z:,.2f}}<extra>{name}</extra>",
                ),
                k + 1,
                col,
            )
            fig.update_xaxes(title_text=px.key, type="category", row=k + 1, col=col)
            fig.update_yaxes(title_text=py.key, type="category", row=k + 1, col=col)
    fig.update_layout(title=title, template="plotly_white", height=420 * len(platforms))
    return fig


def crossover_figure(result: dict[str, Any], title: str) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("monthly cost (USD)", "p99 latency (ms)"))
    for i, name in enumerate(result["platforms"]):
        color = _color(i)
        sel = [r for r in result["rows"] if r["platform"] == name]
        x = [r["volume_per_month"] for r in sel]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r["monthly_cost_usd"] for r in sel],
                name=name,
                legendgroup=name,
                line={"color": color},
                mode="lines+markers",
                hovertemplate="%{x:.3s}/month: $%{y:,.2f}<extra>" + name + "</extra>",
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r["p99_ms"] for r in sel],
                name=name,
                legendgroup=name,
                line={"color": color},
                mode="lines+markers",
                showlegend=False,
                hovertemplate="%{x:.3s}/month: p99 %{y:.1f} ms<extra>" + name + "</extra>",
            ),
            1,
            2,
        )
    for c in result["crossovers"]:
        # on a log axis the line takes the volume, the annotation its log10
        fig.add_vline(x=c["volume_per_month"], line_dash="dot", line_color="grey", row=1, col=1)
        fig.add_annotation(
            x=math.log10(c["volume_per_month"]),
            y=0.02,
            yref="y domain",
            xref="x",
            text=f" {_volume(c['volume_per_month'])}/month: {c['below']} below, {c['above']} above",
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 11},
        )
    fig.update_xaxes(type="log", title_text="requests per month")
    fig.update_yaxes(type="log", row=1, col=1, title_text="USD / month")
    # log: a saturated platform's p99 (minutes) would flatten every other line
    fig.update_yaxes(type="log", row=1, col=2, title_text="ms")
    fig.update_layout(title=title, template="plotly_white", height=520)
    return fig


def write_html(fig: go.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
