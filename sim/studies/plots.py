"""Plotly pages for sweeps and crossovers (self-contained: plotly.js embedded, opens offline).

Sweeps: two panels, each with a metric selector over sweep.csv's metrics (p50, p99, p99.9, cold
starts, error rate, $/month, $ per million, peak instances; p99 and $/month to start). One
parameter: a line per swept platform against the parameter (p99 with its 95% CI); a platform the
grid does not touch was simulated once and is drawn once, as a dashed reference line. Two
parameters: a heat map per swept platform; the untouched platforms' figures are listed once
under the title. More: lines against the first parameter, one per platform and combination of
the others. Axes start at zero, so a 1 ms difference does not fill the panel.

Figures are plotly.js dicts (sim.figure): plotly's graph objects validated every property and cost
~0.3 s of a sweep's serial time; `Figure.to_go()` gives the validated graph object.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim import format as fmt
from sim.figure import Figure, heatmap, scatter
from sim.format import log_ticks
from sim.studies.sweep import Param


@dataclass(frozen=True)
class Metric:
    column: str  # sweep.csv column
    label: str  # axis title and selector entry
    scale: float  # plotted value = column x scale
    hover: str  # plotly number format of the plotted value, with its unit


METRICS = (
    Metric("p50_ms", "p50 latency (ms)", 1.0, "%{y:,.1f} ms"),
    Metric("p99_ms", "p99 latency (ms)", 1.0, "%{y:,.1f} ms"),
    Metric("p999_ms", "p99.9 latency (ms)", 1.0, "%{y:,.1f} ms"),
    Metric("cold_start_ratio", "cold starts (% of requests)", 100.0, "%{y:.2f}%"),
    Metric("error_rate", "error rate (% of requests)", 100.0, "%{y:.2f}%"),
    Metric("monthly_cost_usd", "monthly bill (USD)", 1.0, "$%{y:,.2f}/month"),
    Metric("cost_per_million_usd", "USD per million requests", 1.0, "$%{y:,.2f}/M"),
    Metric("peak_instances", "peak instances", 1.0, "%{y:,.0f}"),
)
PANELS = ("p99_ms", "monthly_cost_usd")  # what the two panels show first


# plotly.colors.qualitative.Plotly (plotly's default colour sequence; importing it costs ~0.1 s)
PALETTE = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A",
    "#19D3F3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52",
)  # fmt: skip


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


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


def _val(row: dict[str, Any], key: str, scale: float = 1.0) -> float | None:
    v = row.get(key)
    if v is None or v != v or isinstance(v, str):
        return None
    return v * scale


def unswept_platforms(rows: Sequence[dict[str, Any]], params: Sequence[Param]) -> set[str]:
    """Platforms whose metrics are the same at every point: the grid does not touch them (the
    sweep simulated them once and repeats the run on every row)."""
    out = set()
    metrics = [m.column for m in METRICS]
    for name in dict.fromkeys(r["platform"] for r in rows):
        sel = [r for r in rows if r["platform"] == name]
        seen = {tuple(r.get(c) for c in metrics) for r in sel}
        if len(sel) > 1 and len(seen) == 1:
            out.add(name)
    return out


def _selectors(fig: Figure, panels: dict[int, dict[str, list[int]]], n_traces: int) -> None:
    """One dropdown above each panel choosing its metric (traces shown, y-axis title)."""
    menus = []
    for col, by_metric in panels.items():
        indices = [i for idx in by_metric.values() for i in idx]
        buttons = []
        for m in METRICS:
            shown = set(by_metric.get(m.column, []))
            axis = "yaxis" if col == 1 else f"yaxis{col}"
            buttons.append(
                {
                    "label": m.label,
                    "method": "update",
                    "args": [
                        {"visible": [i in shown for i in indices]},
                        {f"{axis}.title.text": m.label},
                        indices,
                    ],
                }
            )
        menus.append(
            {
                "buttons": buttons,
                "active": [m.column for m in METRICS].index(PANELS[col - 1]),
                "x": 0.0 if col == 1 else 0.55,
                "xanchor": "left",
                "y": 1.02,
                "yanchor": "bottom",
                "showactive": True,
            }
        )
    fig.update_layout(updatemenus=menus)


def sweep_figure(
    rows: Sequence[dict[str, Any]],
    params: Sequence[Param],
    title: str,
    unswept: Iterable[str] | None = None,
) -> Figure:
    platforms = list(dict.fromkeys(r["platform"] for r in rows))
    fixed = set(unswept) if unswept is not None else unswept_platforms(rows, params)
    if len(params) == 2:
        return _heatmaps(rows, params, platforms, title, fixed)
    p0 = params[0]
    xs = _axis(p0)
    index = {lab: i for i, lab in enumerate(p0.labels)}
    fig = Figure(1, 2, horizontal_spacing=0.1)
    others = list(params[1:])
    combos = list(itertools.product(*(o.labels for o in others))) or [()]
    groups: list[tuple[str, list[dict[str, Any]], bool]] = []
    for name in platforms:
        if name in fixed:
            first = next(r for r in rows if r["platform"] == name)
            groups.append((f"{name} (not swept)", [first], False))
            continue
        for combo in combos:
            sel = [
                r
                for r in rows
                if r["platform"] == name
                and all(r[o.key] == c for o, c in zip(others, combo, strict=True))
            ]
            sel.sort(key=lambda r: index[r[p0.key]])
            label = name + "".join(
                f", {o.key.split('.')[-1]}={c}" for o, c in zip(others, combo, strict=True)
            )
            groups.append((label, sel, True))
    panels: dict[int, dict[str, list[int]]] = {1: {}, 2: {}}
    n = 0
    for col in (1, 2):
        for m in METRICS:
            for g, (label, sel, swept) in enumerate(groups):
                color = _color(g)
                visible = m.column == PANELS[col - 1]
                hover = "%{x}: " + m.hover + "<extra>" + label + "</extra>"
                if swept:
                    y = [_val(r, m.column, m.scale) for r in sel]
                    err = None
                    if m.column == "p99_ms":
                        hi = [
                            (_val(r, "p99_ci_hi") or v or 0) - (v or 0)
                            for r, v in zip(sel, y, strict=True)
                        ]
                        lo = [
                            (v or 0) - (_val(r, "p99_ci_lo") or v or 0)
                            for r, v in zip(sel, y, strict=True)
                        ]
                        err = {"type": "data", "array": hi, "arrayminus": lo, "visible": True}
                    trace = scatter(
                        x=[xs[index[r[p0.key]]] for r in sel],
                        y=y,
                        mode="lines+markers",
                        line={"color": color, "width": 3},
                        marker={"size": 8},
                        hovertemplate=hover,
                    )
                    if err is not None:
                        trace["error_y"] = err
                else:  # simulated once: one dashed line across the parameter's range
                    v = _val(sel[0], m.column, m.scale)
                    trace = scatter(
                        x=[xs[0], xs[-1]],
                        y=[v, v],
                        mode="lines",
                        line={"color": color, "width": 1.5, "dash": "dash"},
                        hovertemplate=m.hover + " at every point<extra>" + label + "</extra>",
                    )
                trace.update(
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    visible=visible,
                )
                fig.add_trace(trace, 1, col)
                panels[col].setdefault(m.column, []).append(n)
                n += 1
    _selectors(fig, panels, n)
    xtitle = p0.key + (
        " (SI units)" if p0.ordered and any(isinstance(v, str) for v in p0.labels) else ""
    )
    fig.update_xaxes(title={"text": xtitle})
    for col, col_metric in enumerate(PANELS, 1):
        label = next(m.label for m in METRICS if m.column == col_metric)
        fig.update_yaxes(title={"text": label}, rangemode="tozero", row=1, col=col)
    fig.update_layout(
        title={"text": title, "y": 0.97},
        height=560,
        margin={"t": 120},
    )
    return fig


def _ci_bars(sel: Sequence[dict[str, Any]], y: list[float | None]) -> dict[str, Any]:
    pairs = list(zip(sel, y, strict=True))
    hi = [(_val(r, "p99_ci_hi") or v or 0) - (v or 0) for r, v in pairs]
    lo = [(v or 0) - (_val(r, "p99_ci_lo") or v or 0) for r, v in pairs]
    return {"type": "data", "array": hi, "arrayminus": lo, "visible": True}


def _unswept_note(rows: Sequence[dict[str, Any]], fixed: set[str]) -> str:
    parts = []
    for name in sorted(fixed):
        r = next(r for r in rows if r["platform"] == name)
        cold, errors = _val(r, "cold_start_ratio"), _val(r, "error_rate")
        parts.append(
            f"{name}: p99 {fmt.ms(_val(r, 'p99_ms'))}, cold {fmt.pct(cold)}, "
            f"errors {fmt.pct(errors)}, {fmt.usd(_val(r, 'monthly_cost_usd'))}/month"
        )
    return "not swept (the same at every point): " + "<br>".join(parts) if parts else ""


def _heatmaps(
    rows: Sequence[dict[str, Any]],
    params: Sequence[Param],
    platforms: list[str],
    title: str,
    fixed: set[str],
) -> Figure:
    px, py = params
    swept = [p for p in platforms if p not in fixed] or platforms
    n_rows = len(swept)
    row_px = 380
    height = row_px * n_rows + 200 + 18 * len(fixed)
    # room between rows for the x-axis title of one row and the subplot title of the next
    spacing = 150 / (row_px * n_rows)
    if n_rows > 1:
        spacing = min(spacing, 0.9 / (n_rows - 1))
    fig = Figure(
        n_rows,
        2,
        subplot_titles=[name for name in swept for _ in (1, 2)],
        vertical_spacing=spacing,
        horizontal_spacing=0.12,
    )
    xi = {lab: i for i, lab in enumerate(px.labels)}
    yi = {lab: i for i, lab in enumerate(py.labels)}
    xl = [str(v) for v in px.labels]
    yl = [str(v) for v in py.labels]
    panels: dict[int, dict[str, list[int]]] = {1: {}, 2: {}}
    n = 0
    for col in (1, 2):
        for m in METRICS:
            text = m.hover.replace("%{y", "%{z")
            for k, name in enumerate(swept):
                z: list[list[float | None]] = [[None] * len(xl) for _ in yl]
                for r in rows:
                    if r["platform"] == name:
                        z[yi[r[py.key]]][xi[r[px.key]]] = _val(r, m.column, m.scale)
                fig.add_trace(
                    heatmap(
                        x=xl,
                        y=yl,
                        z=z,
                        colorscale="Viridis" if col == 1 else "Cividis",
                        showscale=False,
                        visible=m.column == PANELS[col - 1],
                        # values on the cells: several heat maps cannot share one colour bar
                        texttemplate=text,
                        hovertemplate=f"{px.key}=%{{x}}<br>{py.key}=%{{y}}<br>{text}"
                        f"<extra>{name}</extra>",
                    ),
                    k + 1,
                    col,
                )
                panels[col].setdefault(m.column, []).append(n)
                n += 1
    for k in range(n_rows):
        for col in (1, 2):
            fig.update_xaxes(
                title={"text": px.key, "standoff": 8}, type="category", row=k + 1, col=col
            )
            fig.update_yaxes(title={"text": py.key}, type="category", row=k + 1, col=col)
    _selectors(fig, panels, n)
    for menu in fig.layout["updatemenus"]:
        menu["y"] = 1 + 60 / (row_px * n_rows)
    note = _unswept_note(rows, fixed)
    fig.update_layout(
        title={"text": title + (f"<br><sup>{note}</sup>" if note else ""), "y": 1 - 20 / height},
        height=height,
        margin={"t": 150 + 18 * len(fixed)},
    )
    return fig


def _log_range(values: Iterable[float | None]) -> list[float] | None:
    """A log axis range of at least a decade around the values (plotly would zoom into a
    1 ms band when every platform's p99 is about the same)."""
    vs = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vs:
        return None
    lo, hi = min(vs), max(vs)
    mid = math.sqrt(lo * hi)
    lo, hi = min(lo / 1.5, mid / math.sqrt(10)), max(hi * 1.5, mid * math.sqrt(10))
    return [math.log10(lo), math.log10(hi)]


def crossover_figure(result: dict[str, Any], title: str) -> Figure:
    fig = Figure(1, 2, subplot_titles=("monthly cost (USD)", "p99 latency (ms)"))
    for i, name in enumerate(result["platforms"]):
        color = _color(i)
        sel = [r for r in result["rows"] if r["platform"] == name]
        x = [r["volume_per_month"] for r in sel]
        fig.add_trace(
            scatter(
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
            scatter(
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
        fig.add_vline(c["volume_per_month"], line={"dash": "dot", "color": "grey"}, row=1, col=1)
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
    fig.update_xaxes(type="log", title={"text": "requests per month"})
    fig.update_yaxes(type="log", row=1, col=1, title={"text": "USD / month"})
    # log: a saturated platform's p99 (minutes) would flatten every other line; at least a
    # decade, so near-equal p99s read as near-equal
    p99_range = _log_range(r["p99_ms"] for r in result["rows"])
    fig.update_yaxes(
        type="log",
        row=1,
        col=2,
        title={"text": "ms"},
        **(
            {"range": p99_range, **log_ticks(10 ** p99_range[0], 10 ** p99_range[1])}
            if p99_range
            else {}
        ),
    )
    fig.update_layout(title={"text": title}, height=520)
    return fig


def write_html(fig: Figure, path: Path) -> None:
    fig.write_html(path)
