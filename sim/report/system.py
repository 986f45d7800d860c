"""The system part of the report (issue 17): what flows where, each service's tail, the queues
over time, the bill by service and queue, and a table per placement. Read from summary.json's
`system.<placement>` only (sim.systems.summary documents its keys); nothing here for a
single-service run, whose report stays as it was.

The end-to-end tail per placement is the report's tail figure itself: a placement is a series.
"""

from __future__ import annotations

from typing import Any

from sim.format import ms as _ms
from sim.format import usd as _usd
from sim.report.data import Series, esc, time_unit
from sim.report.figures import BILL_PALETTE, LAYOUT, _empty, _meta, _rgba, _span, bill_colors
from sim.report.plot import Figure, bar, log_ticks, sankey, scatter

SYSTEM_FIGURES = ("flow", "service_tails", "queues", "service_bill")
ENTRY_COLOR, QUEUE_COLOR, DLQ_COLOR = "#555555", "#9e9e9e", "#c0392b"
DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
# Timeline keys a queue type may use for its backlog and its oldest message (Kafka: lag).
DEPTH_KEYS, AGE_KEYS = ("depth", "lag"), ("oldest_s", "oldest_age_s")
UNATTRIBUTED = "unattributed"  # bill lines of a placement no service or queue carries


def system_of(s: Series) -> dict[str, Any] | None:
    """summary.json `system.<placement>` of a series, or None (a single-service run)."""
    sys = (s.results.summary.get("system") or {}).get(s.platform)
    return sys if isinstance(sys, dict) else None


def system_series(series: list[Series]) -> list[tuple[Series, dict[str, Any]]]:
    return [(s, sys) for s in series if (sys := system_of(s)) is not None]


def system_figures(series: list[Series]) -> dict[str, Figure]:
    """The system figures by key (SYSTEM_FIGURES), or none when no series is a system."""
    pairs = system_series(series)
    if not pairs:
        return {}
    return {
        "flow": flow_figure(pairs),
        "service_tails": service_tail_figure(pairs),
        "queues": queue_figure(pairs),
        "service_bill": service_bill_figure(pairs),
    }


def _node_label(node: str) -> str:
    if node.startswith("queue:"):
        return f"queue {node[6:]}"
    if node.startswith("dlq:"):
        return f"DLQ of {node[4:]}"
    return node


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}/s"


def flow_figure(pairs: list[tuple[Series, dict[str, Any]]]) -> Figure:
    """A Sankey per placement: a node per service and queue, link width = requests (or
    messages) per second on the edge, over the simulated window."""
    fig = Figure()
    # a colour per platform: the bill palette's first (greedy-picked far apart), in name order
    platforms = sorted(
        {v.get("platform", "") for _, sys in pairs for v in sys["services"].values()}
    )
    colors = {p: BILL_PALETTE[i % len(BILL_PALETTE)] for i, p in enumerate(platforms)}
    n = len(pairs)
    gap = 0.06 if n > 1 else 0.0
    height = (1.0 - gap * (n - 1)) / n
    for k, (s, sys) in enumerate(pairs):
        services = sys.get("services") or {}
        flows = [f for f in sys.get("flows") or [] if (f.get("per_s") or 0) > 0]
        nodes: dict[str, int] = {}
        for f in flows:
            for end in (f["from"], f["to"]):
                nodes.setdefault(end, len(nodes))
        node_colors, node_text = [], []
        for node in nodes:
            svc = services.get(node)
            if svc is not None:
                node_colors.append(colors[svc.get("platform", "")])
                node_text.append(
                    f"{esc(node)}: {esc(svc.get('platform'))} ({esc(svc.get('type'))})<br>"
                    f"p50 {_ms((svc.get('latency_ms') or {}).get('p50'))}, "
                    f"p99 {_ms((svc.get('latency_ms') or {}).get('p99'))}"
                )
            else:
                node_colors.append(
                    ENTRY_COLOR
                    if node == "entry"
                    else DLQ_COLOR
                    if node.startswith("dlq:")
                    else QUEUE_COLOR
                )
                node_text.append(esc(_node_label(node)))
        link_text = []
        for f in flows:
            ci = f.get("per_s_ci95")
            text = f"{esc(_node_label(f['from']))} → {esc(_node_label(f['to']))} ({f['kind']}): "
            text += _rate(f.get("per_s"))
            if ci and None not in ci:
                text += f" [95% CI {ci[0]:.4g}, {ci[1]:.4g}]"
            if "ok_per_s" in f:
                text += f"<br>answered ok: {_rate(f.get('ok_per_s'))}"
            link_text.append(text)
        y1 = 1.0 - k * (height + gap)
        domain = {"x": [0.0, 1.0], "y": [max(0.0, y1 - height), y1]}
        fig.add_trace(
            sankey(
                domain=domain,
                arrangement="snap",
                valueformat=".4g",
                valuesuffix="/s",
                node={
                    "label": [
                        esc(_node_label(x))
                        + (f" · {esc(services[x].get('platform'))}" if x in services else "")
                        for x in nodes
                    ],
                    "color": node_colors,
                    "customdata": node_text,
                    "hovertemplate": "%{customdata}<br>%{value:.4g}/s through it<extra></extra>",
                    "pad": 18,
                    "thickness": 16,
                    "line": {"width": 0},
                },
                link={
                    "source": [nodes[f["from"]] for f in flows],
                    "target": [nodes[f["to"]] for f in flows],
                    "value": [f["per_s"] for f in flows],
                    "color": [_rgba(node_colors[nodes[f["from"]]], 0.35) for f in flows],
                    "customdata": link_text,
                    "hovertemplate": "%{customdata}<extra></extra>",
                },
                name=s.text,
                meta=_meta("flow", s, edges=[[f["from"], f["to"], f["kind"]] for f in flows]),
            )
        )
        fig.add_annotation(
            text=f"<b>{s.text}</b>",
            x=0,
            y=y1,
            xref="paper",
            yref="paper",
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
        )
    fig.update_layout(
        **{**LAYOUT, "margin": {"l": 20, "r": 20, "t": 70, "b": 20}},
        title={"text": "What flows where: requests and messages per second on each edge", "x": 0},
        height=max(320, 300 * n),
    )
    return fig


def service_tail_figure(pairs: list[tuple[Series, dict[str, Any]]]) -> Figure:
    """p50 and p99 at each service per placement, whiskers = 95% CI across replications."""
    fig = Figure(rows=1, cols=2, subplot_titles=("p50 at the service", "p99 at the service"))
    values: list[float] = []
    for s, sys in pairs:
        services = sys.get("services") or {}
        names = list(services)
        for col, key in ((1, "p50"), (2, "p99")):
            y, lo, hi, text = [], [], [], []
            for name in names:
                v = services[name]
                val = (v.get("latency_ms") or {}).get(key)
                ci = (v.get("latency_ms_ci95") or {}).get(key)
                y.append(val)
                band = ci if val is not None and ci and None not in ci else None
                hi.append(max(0.0, band[1] - val) if band else 0.0)
                lo.append(max(0.0, val - band[0]) if band else 0.0)
                text.append(
                    f"{esc(name)} on {esc(v.get('platform'))}: {key} {_ms(val)}"
                    + (f" [{_ms(band[0])}, {_ms(band[1])}]" if band else "")
                )
                values += [x for x in (val, band[1] if band else None) if x is not None]
            fig.add_trace(
                bar(
                    x=[esc(n) for n in names],
                    y=y,
                    error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
                    marker={"color": s.color},
                    name=s.text,
                    legendgroup=s.label,
                    showlegend=col == 1,
                    customdata=text,
                    hovertemplate=f"{s.text}<br>%{{customdata}}<extra></extra>",
                    meta=_meta("service_tail", s, percentile=key),
                ),
                row=1,
                col=col,
            )
    if not values:
        return _empty("no per-service latency in these results")
    fig.update_layout(
        **LAYOUT,
        barmode="group",
        title={"text": "Latency at each service (arrival there to its answer)", "x": 0},
        height=440,
    )
    fig.update_yaxes(type="log", title={"text": "ms"}, **log_ticks(*_span(values)))
    return fig


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, list[float]]:
    for k in keys:
        if d.get(k):
            return k, list(d[k])
    return None, []


def queue_figure(pairs: list[tuple[Series, dict[str, Any]]]) -> Figure:
    """Depth (visible messages; Kafka: lag) and age of the oldest message per queue over time,
    first replication."""
    duration = max((s.duration for s, _ in pairs), default=0.0)
    unit, scale = time_unit(duration)
    fig = Figure(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=(
            "messages waiting (depth; first replication)",
            "age of the oldest waiting message (s; first replication)",
        ),
    )
    drawn = False
    for s, sys in pairs:
        for i, (name, q) in enumerate((sys.get("queues") or {}).items()):
            tl = q.get("timeline_replication_0") or {}
            t = [x / scale for x in tl.get("time_s") or []]
            label = f"{s.text} · {esc(name)}"
            for row, keys, what in ((1, DEPTH_KEYS, "messages"), (2, AGE_KEYS, "s")):
                key, y = _first(tl, keys)
                if key is None or len(y) != len(t):
                    continue
                drawn = True
                fig.add_trace(
                    scatter(
                        x=t,
                        y=y,
                        mode="lines",
                        line={
                            "color": s.color,
                            "dash": DASHES[i % len(DASHES)],
                            "width": 1.5,
                            "shape": "hv",
                        },
                        name=label,
                        legendgroup=f"{s.label}/{name}",
                        showlegend=row == 1,
                        hovertemplate=f"{label}: %{{y:.4g}} {what}<extra></extra>",
                        meta=_meta("queue_" + ("depth" if row == 1 else "age"), s, queue=name),
                    ),
                    row=row,
                    col=1,
                )
    if not drawn:
        return _empty("no queue timelines in these results")
    fig.update_layout(**LAYOUT, title={"text": "Queues over time", "x": 0}, height=520)
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title={"text": "messages"}, row=1, col=1)
    fig.update_yaxes(title={"text": "s"}, row=2, col=1)
    fig.update_xaxes(title={"text": f"simulated time ({unit})"}, row=2, col=1)
    return fig


def bill_parts(s: Series, sys: dict[str, Any]) -> dict[str, float]:
    """The placement's monthly bill by service and queue; what no part carries (a line billed to
    the placement as a whole) is `unattributed`, so the parts add up to the total."""
    parts = {k: float(v) for k, v in (sys.get("monthly_cost_by_service_usd") or {}).items() if v}
    rest = float(s.stats.get("monthly_cost_usd") or 0.0) - sum(parts.values())
    if abs(rest) >= 0.005:
        parts[UNATTRIBUTED] = rest
    return parts


def service_bill_figure(pairs: list[tuple[Series, dict[str, Any]]]) -> Figure:
    """The monthly bill of each placement stacked by service and queue."""
    fig = Figure()
    x = [s.text for s, _ in pairs]
    parts = [bill_parts(s, sys) for s, sys in pairs]
    names = list(dict.fromkeys(k for p in parts for k in p))
    colors = bill_colors(names)
    for name in names:
        label = esc(_node_label(name))
        fig.add_trace(
            bar(
                x=x,
                y=[p.get(name, 0.0) for p in parts],
                name=label,
                marker={"color": colors[name]},
                hovertemplate=f"{label}: &#36;%{{y:,.2f}}/month<extra>%{{x}}</extra>",
                meta=_meta("service_bill", None, part=name),
            )
        )
    totals = [float(s.stats.get("monthly_cost_usd") or 0.0) for s, _ in pairs]
    fig.add_trace(
        scatter(
            x=x,
            y=totals,
            mode="text",
            text=[_usd(t).replace("$", "&#36;") for t in totals],
            textposition="top center",
            showlegend=False,
            hoverinfo="skip",
            meta=_meta("service_bill_total", None),
        )
    )
    fig.update_layout(
        **LAYOUT,
        barmode="relative",
        title={"text": "The bill by service and queue ($ per billing month)", "x": 0},
        yaxis={"title": {"text": "USD"}, "range": [0, max(totals, default=0.0) * 1.15 or 1.0]},
        height=max(420, 170 + 29 * len(names)),
    )
    return fig


def system_tables(pairs: list[tuple[Series, dict[str, Any]]]) -> str:
    """Per placement: a row per service and per queue, as `sim run` prints them, with CIs."""
    out = []
    for s, sys in pairs:
        a = sys.get("async_completion_ms") or {}
        head = (
            "<tr><th class='l'>service / queue</th><th class='l'>platform</th><th>requests</th>"
            "<th>p50</th><th>p99</th><th>cold</th><th>DLQ</th><th>max depth</th>"
            "<th>oldest</th><th>$/month</th></tr>"
        )
        rows = []
        for name, v in (sys.get("services") or {}).items():
            lat, ci = v.get("latency_ms") or {}, v.get("latency_ms_ci95") or {}
            rows.append(
                f"<tr><td class='l'>{esc(name)}</td><td class='l'>{esc(v.get('platform'))} "
                f"({esc(v.get('type'))})</td><td>{v.get('requests', 0):,}</td>"
                f"<td>{_cell(lat, ci, 'p50')}</td><td>{_cell(lat, ci, 'p99')}</td>"
                f"<td>{v.get('cold_starts', 0):,}</td><td></td><td></td><td></td>"
                f"<td>{_usd(v.get('monthly_cost_usd'))}</td></tr>"
            )
        for name, q in (sys.get("queues") or {}).items():
            w, ci = q.get("time_in_queue_ms") or {}, q.get("time_in_queue_ms_ci95") or {}
            oldest = q.get("oldest_age_max_s")
            rows.append(
                f"<tr><td class='l'>queue {esc(name)}</td><td class='l'>{esc(q.get('type', 'sqs'))}"
                f" → {esc(q.get('consumer', ''))}</td><td>{int(q.get('sent') or 0):,}</td>"
                f"<td>{_cell(w, ci, 'p50')}</td><td>{_cell(w, ci, 'p99')}</td><td></td>"
                f"<td>{int(q.get('dlq') or 0):,}</td><td>{q.get('depth_max', 0) or 0:,.0f}</td>"
                f"<td>{_ms(oldest * 1e3) if oldest is not None else '-'}</td>"
                f"<td>{_usd(q.get('monthly_cost_usd'))}</td></tr>"
            )
        caption = esc(
            f"{s.label}: async completion p50 {_ms(a.get('p50'))}, p99 {_ms(a.get('p99'))} "
            f"({sys.get('async_completed', 0):,} requests)"
        )
        out.append(
            f"<table><caption style='text-align:left;font-weight:600;padding:4px 0'>"
            f"<span class='swatch' style='background:{s.color}'></span>{caption}</caption>"
            f"{head}{''.join(rows)}</table>"
        )
    return "".join(out)


def _cell(pct: dict[str, Any], ci: dict[str, Any], key: str) -> str:
    band = ci.get(key)
    extra = (
        f'<span class="ci">[{_ms(band[0])}, {_ms(band[1])}]</span>'
        if band and None not in band
        else ""
    )
    return f"{_ms(pct.get(key))}{extra}"


NOTE = (
    "Flow: link width is requests (or messages) per second on the edge over the simulated window, "
    "warm-up included (the bill's window); call links count attempts (retries included; hover "
    "for the ones answered ok); queue links count messages received (redeliveries included). "
    "Service latency is at the service: arrival there to its answer, the calls it waited for "
    "included (a Lambda queue consumer: per batch invocation); whiskers are 95% CIs across "
    "replications. Queue rows: messages sent, time in queue p50/p99 with CIs. The bill splits "
    "each placement's total by service (its share of its platform's bill; a cluster is shared "
    "by pod-seconds) and queue; the stack equals the placement's total in the summary table."
)


def system_section(series: list[Series], figures: dict[str, str]) -> str:
    """The page's system section (after the summary), or "" for a single-service report."""
    pairs = system_series(series)
    if not pairs or "flow" not in figures:
        return ""
    return (
        '<h2 id="system">The system</h2>'
        f'<div class="fig">{figures["flow"]}</div>'
        + system_tables(pairs)
        + f'<div class="fig">{figures["service_tails"]}</div>'
        f'<div class="fig">{figures["queues"]}</div>'
        f'<div class="fig">{figures["service_bill"]}</div>'
        f'<p class="note">{NOTE}</p>'
    )
