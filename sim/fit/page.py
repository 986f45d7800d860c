"""The fit report: one self-contained HTML page (plotly.js inlined; opens offline), observed vs
fitted: the rate over time, the handler-time CDF and QQ plot, cold starts against idle gaps, the
Power Tuning fit, and the back-test table. Same style sheet as the main report (sim.report)."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from sim.fit.build import Fit
from sim.report.page import CSS

_CONFIG = {"displaylogo": False, "responsive": True}
_QQ_POINTS = 400


def _div(fig: go.Figure) -> str:
    fig.update_layout(
        template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 50}
    )
    return fig.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG)


def rate_figure(fit: Fit) -> go.Figure:
    a = fit.arrivals
    x = np.arange(a.counts.size) * a.bin_s
    unit = 60.0 if a.bin_s >= 60 else 1.0
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x / 60, y=a.counts / a.bin_s * unit, name="observed", mode="lines"))
    fig.add_trace(
        go.Scatter(x=x / 60, y=a.fitted_rate * unit, name=f"fitted: {a.chosen}", mode="lines")
    )
    per = "minute" if unit == 60 else "second"
    fig.update_layout(
        title=f"Arrival rate (requests per {per})",
        xaxis_title="minutes from the window's start",
        yaxis_title=f"requests / {per}",
    )
    return fig


def cdf_figure(fit: Fit) -> go.Figure:
    s = fit.service
    fig = go.Figure()
    x = np.sort(s.sample) if s.sample.size else np.array([])
    if x.size:
        y = np.arange(1, x.size + 1) / x.size
        step = max(1, x.size // 2000)
        fig.add_trace(go.Scatter(x=x[::step] * 1e3, y=y[::step], name="observed", mode="lines"))
        if s.frozen is not None:
            grid = np.geomspace(max(x[0], 1e-6), x[-1], 300)
            fig.add_trace(
                go.Scatter(
                    x=grid * 1e3, y=s.frozen.cdf(grid), name=f"fitted: {s.best}", mode="lines"
                )
            )
    else:  # from histogram percentiles
        pct = s.dist["percentiles"]
        fig.add_trace(
            go.Scatter(
                x=[v * 1e3 for v in pct.values()],
                y=[q / 100 for q in pct],
                name="histogram (interpolated)",
                mode="lines+markers",
            )
        )
    fig.update_layout(title="Handler time CDF", xaxis_title="ms", yaxis_title="P(X <= x)")
    fig.update_xaxes(type="log")
    return fig


def qq_figure(fit: Fit) -> go.Figure:
    s = fit.service
    fig = go.Figure()
    if s.sample.size and s.frozen is not None:
        q = (np.arange(1, _QQ_POINTS + 1) - 0.5) / _QQ_POINTS
        obs = np.quantile(s.sample, q) * 1e3
        fitted = s.frozen.ppf(q) * 1e3
        fig.add_trace(go.Scatter(x=fitted, y=obs, mode="markers", name="quantiles"))
        lim = [float(min(obs.min(), fitted.min())), float(max(obs.max(), fitted.max()))]
        fig.add_trace(go.Scatter(x=lim, y=lim, mode="lines", name="y = x", line={"dash": "dot"}))
    fig.update_layout(
        title=f"QQ plot: observed vs {s.best or 'no parametric fit'}",
        xaxis_title="fitted quantile (ms)",
        yaxis_title="observed quantile (ms)",
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def keep_alive_figure(fit: Fit) -> go.Figure | None:
    k = fit.keep_alive
    if not k:
        return None
    rows = [r for r in k["by_idle_gap"] if r["requests"]]
    labels = [f"{r['gap_from_s']:g}-{r['gap_to_s']:g} s" for r in rows]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[r["cold_share"] for r in rows],
            text=[f"{r['cold']}/{r['requests']}" for r in rows],
            name="cold share",
        )
    )
    fig.update_layout(
        title=f"Cold starts against the idle gap before the request (default keep-alive "
        f"{k['default_keep_alive_s']:g} s)",
        xaxis_title="idle gap",
        yaxis_title="share of requests that were cold",
        yaxis_range=[0, 1],
    )
    return fig


def power_figure(fit: Fit) -> go.Figure | None:
    p = fit.power
    if p is None:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=p.memory_mb, y=p.duration_ms, mode="markers", name="Power Tuning"))
    fig.add_trace(
        go.Scatter(
            x=p.memory_mb, y=p.fitted_ms, mode="lines", name=f"fit: cpu_bound {p.cpu_bound:.3f}"
        )
    )
    fig.update_layout(title="Duration by memory size", xaxis_title="MB", yaxis_title="ms")
    fig.update_xaxes(type="log")
    return fig


def _table(rows: list[dict[str, Any]]) -> str:
    def num(x: Any) -> str:
        return "-" if x is None else f"{x:.4g}"

    def ci(c: Any) -> str:
        return f"[{num(c[0])}, {num(c[1])}]" if c else ""

    body = "".join(
        f"<tr><td>{html.escape(r['metric'])}</td><td>{num(r['observed'])} {ci(r['observed_ci95'])}"
        f"</td><td>{num(r['simulated'])} {ci(r['simulated_ci95'])}</td>"
        f"<td>{ {True: 'yes', False: 'NO', None: '-'}[r['agree']] }</td></tr>"
        for r in rows
    )
    return (
        "<table><thead><tr><th>metric</th><th>observed (95% CI)</th><th>simulated (95% CI)"
        f"</th><th>agree</th></tr></thead><tbody>{body}</tbody></table>"
    )


def render(fit: Fit, check: dict[str, Any] | None = None) -> str:
    s = fit.summary()
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>fit: {html.escape(fit.name)}</title><style>{CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body><main>',
        f"<h1>Fit: {html.escape(fit.name)}</h1>",
        f"<p>{fit.arrivals.count} requests in {fit.window_s:g} s; rate "
        f"{fit.arrivals.rate:.4g}/s (95% CI {fit.arrivals.rate_ci[0]:.4g}-"
        f"{fit.arrivals.rate_ci[1]:.4g}); arrivals summary <b>{fit.arrivals.chosen}</b> by lowest "
        f"BIC; handler time <b>{fit.service.chosen}</b> (best by KS: {fit.service.best}).</p>",
    ]
    for note in fit.notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append('<h2>Arrivals</h2><div class="fig">' + _div(rate_figure(fit)) + "</div>")
    parts.append('<h2>Handler time</h2><div class="grid">')
    parts.append('<div class="fig">' + _div(cdf_figure(fit)) + "</div>")
    parts.append('<div class="fig">' + _div(qq_figure(fit)) + "</div></div>")
    for title, fig in (("Keep-alive", keep_alive_figure(fit)), ("cpu_bound", power_figure(fit))):
        if fig is not None:
            parts.append(f'<h2>{title}</h2><div class="fig">' + _div(fig) + "</div>")
    if check is not None:
        parts.append(
            f"<h2>Back-test ({html.escape(check['platform'])}, "
            f"{check['replications']} replications)</h2>"
        )
        parts.append(_table(check["rows"]))
    parts.append("<h2>Fit details</h2><details><summary>fit.json</summary><pre>")
    parts.append(html.escape(json.dumps(s, indent=1, default=float)))
    parts.append("</pre></details></main></body></html>\n")
    return "".join(parts)
