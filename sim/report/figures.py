"""The report's plotly figures, one builder per question a reader asks.

Every trace carries `meta = {"kind": ..., "series": label}` so tests (and curious users) can find
what a line shows from the figure JSON alone. Labels are HTML-escaped before they reach plotly,
which would otherwise render tags in them.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from sim.format import usd as _usd
from sim.report.data import (
    PARTS,
    Series,
    bill_lines,
    esc,
    first_replication,
    latency_buckets,
    parts_of,
    slow_requests,
    time_unit,
    timeline_of,
)
from sim.report.plot import Figure, bar, log_ticks, scatter

MARKS = (("p50", 0.5, "circle"), ("p99", 0.01, "diamond"), ("p999", 0.001, "square"))
MARK_NAMES = {"p50": "p50", "p99": "p99", "p999": "p99.9"}
PART_COLORS = {"overhead": "#9e9e9e", "wait": "#ff9f43", "startup": "#e74c3c", "service": "#3b82f6"}
# Bill lines: 47 colours picked greedily from plotly's qualitative sets and Kelly's for the largest
# smallest CIE76 distance (ΔE ≥ 20 between any two; plotly's Dark24 has pinks 8 apart), none too
# pale on white nor neon.
BILL_PALETTE = (
    "#be0032", "#0067a5", "#66aa00", "#990099", "#ff9900", "#52bca3", "#654522", "#e68fac",
    "#ddcc77", "#6a76fc", "#a1caf1", "#dcd300", "#e7298a", "#ff97ff", "#117733", "#f89c74",
    "#6f4070", "#848482", "#e25822", "#a6761d", "#008695", "#882d17", "#b497e7", "#1cbe4f",
    "#6c7c32", "#19d3f3", "#b3446c", "#b3de69", "#af6458", "#00b5f7", "#cc61b0", "#ed645a",
    "#fecb52", "#778aae", "#8be0a4", "#ff6692", "#3366cc", "#736f4c", "#a06177", "#00cc96",
    # issue 19 (Flex, Managed Instances): the same greedy pick, ΔE ≥ 24 from all above
    "#4422aa", "#224444", "#ddccbb", "#999900", "#bb66ee", "#880066", "#7744aa",
    # issues 18-19 (Fargate, Cloud Run, Container Apps): the same greedy pick, ΔE ≥ 24
    "#224411", "#ee44cc", "#ff1166",
    # issue 17 (EventBridge, API destinations and the hops' lines): the same greedy pick, ΔE ≥ 22
    "#ddbbdd", "#aabb88", "#bb9966",
    "#99dddd", "#334466",
    # issue 16 (Autopilot Spot Pods): the same greedy pick, ΔE ≥ 25 from all above
    "#087058",
)  # fmt: skip
# Each bill line name (sim/pricing/*.py, ops_profiles.yaml) keeps its own colour across platforms
# and reports; lines that share a bill get far-apart colours. Other names hash to a colour.
BILL_COLOR = {
    name: i % len(BILL_PALETTE)
    for i, name in enumerate(
        (
            # Kubernetes
            "nodes", "control_plane", "load_balancer", "load_balancer_lcu", "ebs",
            # Lambda
            "duration", "requests", "api_gateway", "logs", "init",
            # Wasm
            "workers_base", "workers_requests", "workers_cpu", "fastly_requests", "fastly_cpu",
            # shared data lines and the rest
            "data_transfer_out", "nat", "public_ipv4", "cross_az", "provisioned_concurrency",
            "provisioned_duration", "log_storage", "ephemeral_storage", "snapstart_cache",
            "snapstart_restore", "response_streaming", "commitment_discount", "commitment_unused",
            "fastly_minimum_shortfall", "base", "cpu", "auto_mode_fee", "autopilot_cpu",
            "autopilot_memory", "spot_nodes",
            # Azure Functions Flex Consumption, Lambda Managed Instances (issue 19)
            "on_demand_execution_time", "on_demand_executions", "always_ready_baseline",
            "always_ready_execution_time", "always_ready_executions", "instances",
            "management_fee",
            # Fargate (issue 19), Cloud Run and Container Apps (issue 18)
            "fargate_vcpu", "fargate_memory", "fargate_spot_vcpu", "fargate_spot_memory",
            "memory", "idle_cpu", "idle_memory",
            # systems (issue 17)
            "sqs_requests", "eventbridge_events", "api_destinations",
            # hops between a system's services (issue 17, sim.pricing.hops)
            "nat_data", "vpc_endpoint_data", "vpc_endpoint_hours",
            # GKE Autopilot Spot Pods (issue 16)
            "spot_pods",
            # operating lines (hatched, so sharing a colour with a cloud line still reads)
            "platform_engineer", "networking_tools", "monitoring", "security_scanning", "ci_cd",
            "incident_time", "training",
        )
    )
}  # fmt: skip
LAYOUT = {
    "margin": {"l": 70, "r": 30, "t": 60, "b": 50},
    "legend": {"font": {"size": 11}},
    "hoverlabel": {"namelength": -1},
}


def _rgba(color: str, alpha: float) -> str:
    c = color.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _meta(kind: str, s: Series | None = None, **extra: object) -> dict[str, object]:
    return {"kind": kind, "series": s.label if s else None, **extra}


# --- the tail --------------------------------------------------------------------------------


def tail_figure(series: list[Series]) -> Figure:
    """Latency CCDF on log-log axes (the tail plot), with a button for the linear CDF."""
    fig = Figure()
    views: list[str] = []  # "log" or "lin" per trace, for the toggle
    slo_ms: set[float] = set()
    y: Any  # a curve's probabilities (array) first, one guide's level (float) further down
    xmin, xmax, xlin, ymin = np.inf, 0.0, 0.0, 1.0
    for s in series:
        c = s.ccdf
        lat = s.stats.get("latency_ms") or {}
        if c is None or c.ms.size == 0:
            continue
        pos = c.ms[c.ms > 0]
        if pos.size:
            xmin, xmax = min(xmin, float(pos.min())), max(xmax, float(c.ms.max()))
        xlin = max(xlin, float(lat.get("p999") or c.ms.max()))
        ymin = min(ymin, float(c.prob.min()))
        if c.lo is not None and c.hi is not None:
            xmax = max(xmax, float(np.max(c.hi)))
            lo = np.maximum(c.lo, pos.min() if pos.size else 1e-3)
            fig.add_trace(
                scatter(
                    x=np.concatenate([lo, c.hi[::-1]]),
                    y=np.concatenate([c.prob, c.prob[::-1]]),
                    fill="toself",
                    fillcolor=_rgba(s.color, 0.2),
                    line={"width": 0},
                    hoverinfo="skip",
                    legendgroup=s.label,
                    showlegend=False,
                    name=f"{s.text} 95% CI",
                    meta=_meta("ccdf_band", s, source=c.band_source),
                )
            )
            views.append("log")
        for view, y in (("log", c.prob), ("lin", 1 - c.prob)):
            ylabel = "P(latency > x)" if view == "log" else "P(latency ≤ x)"
            fig.add_trace(
                scatter(
                    x=c.ms,
                    y=y,
                    mode="lines",
                    line={"color": s.color, "width": 2},
                    name=s.text,
                    legendgroup=s.label,
                    visible=view == "log",
                    hovertemplate=f"{s.text}<br>%{{x:.4g}} ms<br>{ylabel} = %{{y:.3g}}"
                    "<extra></extra>",
                    meta=_meta("ccdf" if view == "log" else "cdf", s),
                )
            )
            views.append(view)
            marks = [(k, p, sym) for k, p, sym in MARKS if lat.get(k) is not None]
            fig.add_trace(
                scatter(
                    x=[lat[k] for k, _, _ in marks],
                    y=[p if view == "log" else 1 - p for _, p, _ in marks],
                    mode="markers",
                    marker={
                        "color": s.color,
                        "size": 9,
                        "symbol": [sym for _, _, sym in marks],
                        "line": {"color": "white", "width": 1},
                    },
                    text=[MARK_NAMES[k] for k, _, _ in marks],
                    hovertemplate=f"{s.text} %{{text}} = %{{x:.4g}} ms<extra></extra>",
                    legendgroup=s.label,
                    showlegend=False,
                    visible=view == "log",
                    meta=_meta("marks" if view == "log" else "marks_lin", s),
                )
            )
            views.append(view)
        target = ((s.stats.get("slo") or {}).get("p99") or {}).get("target_ms")
        if target:
            slo_ms.add(float(target))
    if not views:
        return _empty("no latency statistics in these results")
    # Guides and SLO lines are traces (not shapes) so that the toggle moves them with the axes.
    x_range = {"log": (xmin, xmax), "lin": (0.0, xlin * 1.15)}
    for view in ("log", "lin"):
        x0, x1 = x_range[view]
        # On the linear axis p99 and p99.9 sit 0.009 apart: one guide there says enough.
        for k, p, _ in MARKS if view == "log" else MARKS[:2]:
            y = p if view == "log" else 1 - p
            views.append(view)
            fig.add_trace(_guide([x0, x1], [y, y], ["", MARK_NAMES[k]], "top left", view))
        for t in sorted(slo_ms):
            y0 = ymin if view == "log" else 0.0
            views.append(view)
            fig.add_trace(
                _guide([t, t], [y0, 1.0], [f"SLO p99 {t:.4g} ms ", ""], "top left", view, True)
            )
    title = "Latency tail: {} (p50 ● p99 ◆ p99.9 ■)"
    x_ticks, y_ticks = log_ticks(xmin, xmax), log_ticks(ymin, 1.0)
    log_axes = {
        "title.text": title.format("CCDF on log-log axes"),
        "xaxis.type": "log",
        "yaxis.type": "log",
        "xaxis.autorange": True,
        "yaxis.autorange": True,
        "yaxis.title.text": "P(latency > x)  (1 − CDF)",
        # the 1-2-5 labels back (the linear view drops them)
        **{f"{a}.tickmode": "array" for a, t in (("xaxis", x_ticks), ("yaxis", y_ticks)) if t},
        "xaxis.minor.ticks": "outside",
        "yaxis.minor.ticks": "outside",
    }
    lin_axes = {
        "title.text": title.format("CDF on linear axes"),
        "xaxis.type": "linear",
        "yaxis.type": "linear",
        "xaxis.range": [0, xlin * 1.15],
        "yaxis.range": [0, 1.02],
        "yaxis.title.text": "P(latency ≤ x)  (CDF)",
        "xaxis.tickmode": "auto",
        "yaxis.tickmode": "auto",
        "xaxis.minor.ticks": "",
        "yaxis.minor.ticks": "",
    }
    fig.update_layout(
        **LAYOUT,
        title={"text": log_axes["title.text"], "x": 0},
        xaxis={"type": "log", "title": {"text": "end-to-end latency (ms)"}, **x_ticks},
        yaxis={"type": "log", "title": {"text": log_axes["yaxis.title.text"]}, **y_ticks},
        height=520,
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.01,
                "yanchor": "bottom",
                "showactive": True,
                "buttons": [
                    {
                        "label": "CCDF log-log",
                        "method": "update",
                        "args": [{"visible": [v == "log" for v in views]}, log_axes],
                    },
                    {
                        "label": "CDF linear",
                        "method": "update",
                        "args": [{"visible": [v == "lin" for v in views]}, lin_axes],
                    },
                ],
            }
        ],
    )
    return fig


def _guide(
    x: list[float], y: list[float], text: list[str], pos: str, view: str, slo: bool = False
) -> dict[str, Any]:
    color = "#c0392b" if slo else "#aaaaaa"
    return scatter(
        x=x,
        y=y,
        mode="lines+text",
        line={"color": color, "width": 1, "dash": "dash" if slo else "dot"},
        text=text,
        textposition=pos,
        textfont={"color": color, "size": 10},
        hoverinfo="skip",
        showlegend=False,
        visible=view == "log",
        meta=_meta("slo" if slo else "guide", None, view=view),
    )


# --- where the tail comes from ---------------------------------------------------------------


def parts_figure(series: list[Series]) -> Figure:
    """Stacked mean latency parts: over all requests, and over the slowest 1% (sample)."""
    cats: list[tuple[str, str]] = []
    about: list[str] = []
    values: dict[str, list[float]] = {p: [] for p in PARTS}
    for s in series:
        if s.served_per_replication() == 0:
            continue
        mean_all, mean_slow, n_slow = parts_of(s)
        groups = [("all", mean_all, "all requests after warm-up (summary.json)")]
        if mean_slow is not None:
            groups.append(("slowest 1%", mean_slow, f"the {n_slow:,} slowest sampled requests"))
        for name, parts, what in groups:
            cats.append((s.text, name))
            about.append(f"{s.text}: mean over {what}")
            for p in PARTS:
                values[p].append(parts[p])
    if not cats:
        return _empty("no latency parts in these results")
    fig = Figure()
    x = [[c[0] for c in cats], [c[1] for c in cats]]
    for p in PARTS:
        fig.add_trace(
            bar(
                x=x,
                y=values[p],
                name=p,
                marker={"color": PART_COLORS[p]},
                customdata=about,
                hovertemplate=f"{p}: %{{y:.4g}} ms<br>%{{customdata}}<extra></extra>",
                meta=_meta("part", None, part=p),
            )
        )
    fig.update_layout(
        **LAYOUT,
        barmode="stack",
        title={"text": "Where the time goes: mean of each latency part", "x": 0},
        yaxis={"title": {"text": "ms (stacked = mean latency)"}},
        height=440,
    )
    return fig


def cold_warm_figure(series: list[Series]) -> Figure:
    """Percentiles of cold-start requests versus warm ones (summary.json, exact)."""
    fig = Figure()
    keys = (("p50", "circle"), ("p90", "circle-open"), ("p99", "diamond"), ("p999", "square"))
    rows: list[str] = []
    xs: list[float] = []
    for s in series:
        warm = s.stats.get("warm_latency_ms") or {}
        cold = s.stats.get("cold_latency_ms") or {}
        n_cold = int(s.stats.get("cold_starts") or 0)
        kinds: list[tuple[str, Any, str]] = (
            [("warm", warm, "solid")] if warm else [("all", s.stats.get("latency_ms"), "solid")]
        )
        if cold and n_cold:
            kinds.append((f"cold ({n_cold:,})", cold, "dot"))
        for kind, pct, dash in kinds:
            pts = [(k, sym) for k, sym in keys if (pct or {}).get(k) is not None]
            if not pts:
                continue
            row = f"{s.text} · {kind}"
            rows.append(row)
            xs.extend(pct[k] for k, _ in pts)
            fig.add_trace(
                scatter(
                    x=[pct[k] for k, _ in pts],
                    y=[row] * len(pts),
                    mode="lines+markers",
                    line={"color": s.color, "dash": dash, "width": 2},
                    marker={"symbol": [sym for _, sym in pts], "size": 10, "color": s.color},
                    text=[MARK_NAMES.get(k, k) for k, _ in pts],
                    name=row,
                    showlegend=False,
                    hovertemplate=f"{row} %{{text}} = %{{x:.4g}} ms<extra></extra>",
                    meta=_meta("cold" if kind.startswith("cold") else "warm", s),
                )
            )
    if not rows:
        return _empty("no cold/warm percentiles in these results")
    fig.update_layout(
        **LAYOUT,
        title={"text": "Cold vs warm requests: p50 ● p90 ○ p99 ◆ p99.9 ■", "x": 0},
        xaxis={"type": "log", "title": {"text": "latency (ms)"}, **log_ticks(*_span(xs))},
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": rows},
        height=max(260, 60 + 38 * len(rows)),
    )
    return fig


# --- over time -------------------------------------------------------------------------------


def time_figure(series: list[Series]) -> Figure:
    """Latency per time bucket, instances with decisions and cold starts, nodes, arrival rate."""
    duration = max((s.duration for s in series), default=0.0)
    unit, scale = time_unit(duration)
    timelines = {s.label: timeline_of(s) for s in series}
    has_nodes = any(
        "nodes" in tl and tl["nodes"].fillna(0).gt(0).any() for tl in timelines.values()
    )
    titles = ["latency per time bucket: p99 (solid), p50 (dotted); all replications' sample"]
    titles.append("instances / ready pods (first replication); ◇ decisions, ▲ cold starts")
    if has_nodes:
        titles.append("nodes (first replication)")
    titles.append("arrival rate (req/s, first replication)")
    nrows = len(titles)
    heights = [0.34, 0.28, 0.16, 0.22] if has_nodes else [0.38, 0.34, 0.28]
    fig = Figure(
        rows=nrows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=titles,
        row_heights=heights,
    )
    row_nodes = 3 if has_nodes else None
    row_rate = nrows
    ms: list[float] = []  # row 1's latencies, for its log ticks
    for s in series:
        b = latency_buckets(s, s.duration)
        for q, dash in (("p99", "solid"), ("p50", "dot")):
            ms.extend(_span(b[q]))
            fig.add_trace(
                scatter(
                    x=b["t"] / scale,
                    y=b[q],
                    mode="lines",
                    line={"color": s.color, "dash": dash, "width": 1.8},
                    name=s.text,
                    legendgroup=s.label,
                    showlegend=q == "p99",
                    customdata=b["n"],
                    hovertemplate=f"{s.text} {q} %{{y:.4g}} ms (%{{customdata}} sampled)"
                    "<extra></extra>",
                    meta=_meta(f"bucket_{q}", s),
                ),
                row=1,
                col=1,
            )
        slow = slow_requests(s)
        if not slow.empty:
            ms.extend(_span(slow["latency_ms"]))
            cold = slow["cold"].astype(bool).to_numpy() if "cold" in slow else None
            fig.add_trace(
                scatter(
                    x=slow["arrival_s"] / scale,
                    y=slow["latency_ms"],
                    mode="markers",
                    marker={
                        "color": s.color,
                        "size": 4,
                        "opacity": 0.5,
                        "symbol": np.where(cold, "x", "circle") if cold is not None else "circle",
                    },
                    name=f"{s.text}: requests > p99 (sample; x = cold)",
                    legendgroup=s.label,
                    visible="legendonly",
                    hovertemplate="%{y:.4g} ms<extra></extra>",
                    meta=_meta("slow", s),
                ),
                row=1,
                col=1,
            )
        tl = timelines[s.label]
        if tl.empty:
            continue
        t = tl["time_s"] / scale
        fig.add_trace(
            scatter(
                x=t,
                y=tl["instances"],
                mode="lines",
                line={"color": s.color, "shape": "hv", "width": 1.5},
                name=f"{s.text} instances",
                legendgroup=s.label,
                showlegend=False,
                hovertemplate=f"{s.text}: %{{y:.0f}} instances<extra></extra>",
                meta=_meta("instances", s),
            ),
            row=2,
            col=1,
        )
        if "desired" in tl and tl["desired"].fillna(0).gt(0).any():
            fig.add_trace(
                scatter(
                    x=t,
                    y=tl["desired"],
                    mode="lines",
                    line={"color": s.color, "shape": "hv", "width": 1, "dash": "dash"},
                    name=f"{s.text} desired",
                    legendgroup=s.label,
                    showlegend=False,
                    hovertemplate=f"{s.text}: desired %{{y:.0f}}<extra></extra>",
                    meta=_meta("desired", s),
                ),
                row=2,
                col=1,
            )
        if "cold_starts" in tl:
            hit = tl[tl["cold_starts"].fillna(0) > 0]
            if not hit.empty:
                fig.add_trace(
                    scatter(
                        x=hit["time_s"] / scale,
                        y=hit["instances"],
                        mode="markers",
                        marker={"symbol": "triangle-up", "size": 7, "color": s.color},
                        customdata=hit["cold_starts"],
                        name=f"{s.text} cold starts",
                        legendgroup=s.label,
                        showlegend=False,
                        hovertemplate=f"{s.text}: %{{customdata:.0f}} cold starts in this step"
                        "<extra></extra>",
                        meta=_meta("cold_starts", s),
                    ),
                    row=2,
                    col=1,
                )
        _add_decisions(fig, s, scale, row_nodes)
        if row_nodes and "nodes" in tl and tl["nodes"].fillna(0).gt(0).any():
            fig.add_trace(
                scatter(
                    x=t,
                    y=tl["nodes"],
                    mode="lines",
                    line={"color": s.color, "shape": "hv", "width": 1.5},
                    name=f"{s.text} nodes",
                    legendgroup=s.label,
                    showlegend=False,
                    hovertemplate=f"{s.text}: %{{y:.0f}} nodes<extra></extra>",
                    meta=_meta("nodes", s),
                ),
                row=row_nodes,
                col=1,
            )
    _add_arrival_rates(fig, series, timelines, scale, row_rate)
    warm = max((s.warmup for s in series), default=0.0)
    if warm > 0:
        fig.add_vrect(
            0,
            warm / scale,
            fillcolor="#eeeeee",
            opacity=0.5,
            line={"width": 0},
            layer="below",
            annotation={"text": "warm-up", "font": {"size": 10, "color": "#888888"}},
            row=1,
            col=1,
        )
    fig.update_layout(
        **LAYOUT,
        title={"text": "Over time", "x": 0},
        height=260 * nrows,
        hovermode="closest",
    )
    fig.update_yaxes(type="log", title={"text": "ms"}, **log_ticks(*_span(ms)), row=1, col=1)
    fig.update_yaxes(title={"text": "count"}, row=2, col=1, rangemode="tozero")
    if row_nodes:
        fig.update_yaxes(title={"text": "nodes"}, row=row_nodes, col=1, rangemode="tozero")
    fig.update_yaxes(title={"text": "req/s"}, row=row_rate, col=1, rangemode="tozero")
    fig.update_xaxes(title={"text": f"simulated time ({unit})"}, row=nrows, col=1)
    return fig


def _add_arrival_rates(
    fig: Figure, series: list[Series], timelines: dict, scale: float, row: int
) -> None:
    """One arrival-rate line per results folder: every platform of a scenario sees the same
    traffic, so take the platform whose timeline counts the most arrivals (a model that does
    not count them reports zeros)."""
    groups: dict[int, list[Series]] = {}
    for s in series:
        groups.setdefault(id(s.results), []).append(s)
    for members in groups.values():
        with_rate = [s for s in members if "arrival_rate" in timelines[s.label]]
        if not with_rate:
            continue
        s = max(with_rate, key=lambda m: timelines[m.label]["arrivals"].fillna(0).sum())
        tl = timelines[s.label]
        name = esc(s.results.summary.get("scenario") or "arrivals")
        fig.add_trace(
            scatter(
                x=tl["time_s"] / scale,
                y=tl["arrival_rate"],
                mode="lines",
                line={"color": "#555555" if len(groups) == 1 else members[0].color, "width": 1},
                name=f"{name} arrivals",
                showlegend=False,
                hovertemplate=f"{name}: %{{y:.4g}} req/s<extra></extra>",
                meta=_meta("arrival_rate", s),
            ),
            row=row,
            col=1,
        )


def _add_decisions(fig: Figure, s: Series, scale: float, row_nodes: int | None) -> None:
    d = first_replication(s.decisions())
    if d.empty:
        return
    for is_node in (False, True):
        sel = d[(d["kind"].astype(str) == "nodes") == is_node]
        row = row_nodes if is_node else 2
        if sel.empty or row is None:
            continue
        text = [
            f"{esc(k)}: {b:.4g} → {a:.4g}<br>{esc(r)}"
            for k, b, a, r in zip(
                sel["kind"], sel["before"], sel["after"], sel["reason"].fillna(""), strict=True
            )
        ]
        fig.add_trace(
            scatter(
                x=sel["time_s"] / scale,
                y=sel["after"],
                mode="markers",
                marker={
                    "symbol": "diamond-open",
                    "size": 9,
                    "color": s.color,
                    "line": {"width": 1.5},
                },
                text=text,
                name=f"{s.text} decisions",
                legendgroup=s.label,
                showlegend=False,
                hovertemplate=f"{s.text} %{{text}}<extra></extra>",
                meta=_meta("decisions", s),
            ),
            row=row,
            col=1,
        )


# --- the bill --------------------------------------------------------------------------------


def bill_figure(series: list[Series]) -> Figure:
    """Stacked cost lines per platform: $/month and $ per million requests; operating cost
    (ops lines from the scenario) hatched, apart from the cloud bill."""
    fig = Figure(
        rows=1,
        cols=2,
        subplot_titles=("$ per billing month", "$ per million requests"),
        horizontal_spacing=0.1,
    )
    x = [s.text for s in series]
    lines: dict[tuple[str, bool], list[tuple[float, float | None]]] = {}
    col: Any  # a bill line's column first, a subplot column number further down
    for i, s in enumerate(series):
        monthly, operating, factor = bill_lines(s)
        for op, items in ((False, monthly), (True, operating)):
            for k, v in items.items():
                col = lines.setdefault((k, op), [(0.0, None)] * len(series))
                col[i] = (v, v * factor if factor is not None else None)
    ordered = sorted(lines.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    colors = bill_colors([k for (k, _), _ in ordered])
    for (k, op), vals in ordered:
        name = f"operating: {esc(k)}" if op else esc(k.replace("_", " "))
        marker: dict[str, Any] = {"color": colors[k]}
        if op:
            marker["pattern"] = {"shape": "/", "fgcolor": "#333333"}
        for col, idx in ((1, 0), (2, 1)):
            fig.add_trace(
                bar(
                    x=x,
                    y=[v[idx] for v in vals],
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    marker=marker,
                    hovertemplate=f"{name}: &#36;%{{y:,.4g}}<extra>%{{x}}</extra>",
                    meta=_meta(
                        "bill", None, line=k, operating=op, per="month" if idx == 0 else "M"
                    ),
                ),
                row=1,
                col=col,
            )
    # Totals on top: the cloud bill, plus the operating cost stacked above it where there is one.
    tops: dict[int, list[float]] = {1: [], 2: []}
    texts: dict[int, list[str]] = {1: [], 2: []}
    for s in series:
        monthly, _, factor = bill_lines(s)
        total = s.stats.get("monthly_cost_usd") or 0.0
        ops = s.stats.get("operating_monthly_usd") or 0.0
        per_m = s.stats.get("cost_per_million_usd")
        ops_m = ops * factor if factor is not None else 0.0
        tops[1].append(total + ops)
        texts[1].append(_usd(total) + (f" + {_usd(ops)} ops" if ops else ""))
        tops[2].append((per_m or 0.0) + ops_m)
        texts[2].append(_usd(per_m) + (f" + {_usd(ops_m)} ops" if ops_m else ""))
    for col in (1, 2):
        fig.add_trace(
            scatter(
                x=x,
                y=tops[col],
                mode="text",
                # An entity, not "$": plotly reads text with two dollar signs as LaTeX.
                text=[t.replace("$", "&#36;") for t in texts[col]],
                textposition="top center",
                showlegend=False,
                hoverinfo="skip",
                meta=_meta("bill_total", None, per="month" if col == 1 else "M"),
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(range=[0, max(tops[col], default=0.0) * 1.15 or 1.0], row=1, col=col)
    fig.update_layout(
        **LAYOUT,
        barmode="stack",
        title={"text": "The bill", "x": 0},
        # the legend (one 29 px row a line) fits beside the bars instead of scrolling
        height=max(480, 170 + 29 * len(lines)),
    )
    fig.update_yaxes(title={"text": "USD"})
    return fig


def bill_colors(names: list[str]) -> dict[str, str]:
    """A colour per bill line name: its own (BILL_COLOR, else a hash of the name), or when another
    line of this figure holds that, the next free one; colours repeat only past 40 names."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    n = len(BILL_PALETTE)
    for name in dict.fromkeys(names):
        i = BILL_COLOR.get(name, zlib.crc32(name.encode()) % n)
        for step in range(n if len(taken) < n else 0):
            if (i + step) % n not in taken:
                i = (i + step) % n
                break
        taken.add(i)
        out[name] = BILL_PALETTE[i]
    return out


def _span(values: Any) -> tuple[float, float]:
    """The smallest and largest positive finite value (what a log axis can show), or (0, 0)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)


def _empty(message: str) -> Figure:
    fig = Figure()
    fig.add_annotation(text=esc(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(**LAYOUT, height=200, xaxis={"visible": False}, yaxis={"visible": False})
    return fig
