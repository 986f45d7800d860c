"""The report page around the figures: summary table, prices and sources, the scenario echoed.

Every string that came from a user (scenario names, descriptions, platform names, file paths,
decision reasons, price sources) goes through `esc` before it reaches the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from sim.format import duration as _duration
from sim.format import ms as _ms
from sim.format import usd as _usd
from sim.report.data import Series, esc
from sim.report.system import system_section

if TYPE_CHECKING:
    from sim.results import Results

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5em;margin:.4em 0 .1em}h2{font-size:1.2em;margin:1.6em 0 .4em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin:.2em 0}.meta{color:#666;font-size:.85em}
nav a{margin-right:1em;font-size:.9em}
table{border-collapse:collapse;font-size:.9em;background:#fff}
th,td{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td.l,th.l{text-align:left}
.pass{color:#1e8449;font-weight:600}.fail{color:#c0392b;font-weight:600}
.ci{color:#888;font-size:.8em;display:block}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em}
.fig{background:#fff;border:1px solid #e5e5e5;border-radius:4px;margin:10px 0;padding:4px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:10px}
@media(max-width:1000px){.grid{grid-template-columns:1fr}}
.note{color:#666;font-size:.85em;margin:.3em 0}
pre{background:#fff;border:1px solid #e5e5e5;padding:10px;overflow:auto;font-size:.8em;
max-height:480px}
details{margin:.4em 0}summary{cursor:pointer}
"""


def page(
    title: str,
    plotly_js: str,
    results: list[Results],
    series: list[Series],
    figures: dict[str, str],
    notes: dict[str, str],
) -> str:
    """The whole HTML document. `figures` maps a section key to its figure's HTML fragment."""
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{plotly_js}</script></head><body><main>'
    )
    parts = [head, _header(title, results), verdict_block(results)]
    system = system_section(series, figures)  # "" unless a system (issue 17)
    parts.append(
        "<nav>"
        + "".join(
            f'<a href="#{k}">{v}</a>'
            for k, v in (
                ("summary", "Summary"),
                *((("system", "System"),) if system else ()),
                ("tail", "Tail"),
                ("why", "Where the tail comes from"),
                ("time", "Over time"),
                ("bill", "Bill"),
                ("scenario", "Scenario"),
            )
        )
        + "</nav>"
    )
    parts.append('<h2 id="summary">Summary</h2>')
    parts.extend(summary_table(rs, series) for rs in results)
    parts.append(system)
    parts.append('<h2 id="tail">The tail</h2>')
    parts.append(f'<div class="fig">{figures["tail"]}</div><p class="note">{notes["tail"]}</p>')
    parts.append('<h2 id="why">Where the tail comes from</h2><div class="grid">')
    parts.append(f'<div class="fig">{figures["parts"]}</div>')
    parts.append(f'<div class="fig">{figures["cold_warm"]}</div></div>')
    parts.append(f'<p class="note">{notes["why"]}</p>')
    parts.append('<h2 id="time">Over time</h2>')
    parts.append(f'<div class="fig">{figures["time"]}</div><p class="note">{notes["time"]}</p>')
    parts.append('<h2 id="bill">The bill</h2>')
    parts.append(f'<div class="fig">{figures["bill"]}</div>')
    parts.append(prices(series))
    parts.append('<h2 id="scenario">Scenario</h2>')
    parts.extend(scenario_echo(rs, len(results) > 1) for rs in results)
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _header(title: str, results: list[Results]) -> str:
    out = [f"<h1>{esc(title)}</h1>"]
    for rs in results:
        s = rs.summary
        desc = s.get("description") or ""
        name = esc(s.get("scenario") or "")
        if len(results) > 1 or desc:
            out.append(f'<p class="sub"><b>{name}</b>{": " + esc(desc) if desc else ""}</p>')
        out.append(
            '<p class="meta">'
            + " · ".join(
                esc(x)
                for x in (
                    f"{s.get('replications')} replications",
                    f"{_hours(s.get('duration_s'))} simulated each",
                    f"warm-up {_hours(s.get('warmup_s'))} (excluded from statistics, not cost)",
                    f"seed {s.get('seed')}",
                    f"sim {s.get('sim_version')}",
                    f"source {s.get('source_file') or '-'}",
                )
            )
            + "</p>"
        )
    return "".join(out)


def _hours(seconds: Any) -> str:
    return _duration(None if seconds is None else float(seconds))


def verdict_block(results: list[Results]) -> str:
    """The decision first (summary.json's `verdict`, as `sim run` prints it)."""
    out = []
    for rs in results:
        v = rs.summary.get("verdict") or {}
        lines = v.get("text") or []
        if not lines:
            continue
        cls = {"pass": "pass", "none_pass": "fail"}.get(v.get("status", ""), "")
        name = f"{esc(rs.name)}: " if len(results) > 1 else ""
        out.append(f'<p class="verdict"><span class="{cls}">{name}{esc(lines[0])}</span></p>')
        out.extend(f'<p class="note">{esc(x)}</p>' for x in lines[1:])
    return "".join(out)


def summary_table(results: Results, series: list[Series]) -> str:
    """The terminal's summary table (sim.cli.console.summary_table), same columns and formatting,
    with the 95% CI under p99 and p99.9 and the operating cost where a scenario has one."""
    mine = [s for s in series if s.results is results]
    ops = any((s.stats.get("operating_monthly_usd") or 0) > 0 for s in mine)
    cols = ["platform", "requests", "errors", "cold %", "p50", "p90", "p99", "p99.9", "max"]
    cols += ["peak inst", "$/month", "$/M req"] + (["ops $/month"] if ops else []) + ["SLO"]
    s0 = results.summary
    caption = esc(
        f"{s0.get('scenario')}  ({s0.get('replications')} replications, "
        f"{_hours(s0.get('duration_s') or 0)} simulated each)"
    )
    head = "".join(f'<th class="{"l" if c in ("platform", "SLO") else ""}">{c}</th>' for c in cols)
    rows = []
    for s in mine:
        p = s.stats
        lat = p.get("latency_ms") or {}
        ci = p.get("latency_ms_ci95") or {}
        cells = [
            f'<td class="l"><span class="swatch" style="background:{s.color}"></span>'
            f"{esc(s.platform)}</td>",
            f"<td>{p.get('requests', 0):,}</td>",
            f"<td>{(p.get('error_rate') or 0) * 100:.2f}%</td>",
            f"<td>{(p.get('cold_start_ratio') or 0) * 100:.2f}%</td>",
        ]
        for key in ("p50", "p90", "p99", "p999", "max"):
            band = ci.get(key) if key in ("p99", "p999") else None
            extra = (
                f'<span class="ci">[{_ms(band[0])}, {_ms(band[1])}]</span>'
                if band and None not in band
                else ""
            )
            cells.append(f"<td>{_ms(lat.get(key))}{extra}</td>")
        cells += [
            f"<td>{(p.get('instances') or {}).get('peak', 0):,.0f}</td>",
            f"<td>{_usd(p.get('monthly_cost_usd'))}</td>",
            f"<td>{_usd(p.get('cost_per_million_usd'))}</td>",
        ]
        if ops:
            cells.append(f"<td>{_usd(p.get('operating_monthly_usd'))}</td>")
        cells.append(f'<td class="l">{_slo_cell(p.get("slo") or {})}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    exact = all(s.stats.get("exact_percentiles", True) for s in mine)
    foot = (
        "Percentiles are exact order statistics over all requests after warm-up"
        if exact
        else "Some percentiles come from a log-binned histogram (relative error ≤ 0.1%)"
    )
    return (
        f"<table><caption style='text-align:left;font-weight:600;padding:4px 0'>{caption}"
        f"</caption><tr>{head}</tr>{''.join(rows)}</table>"
        f'<p class="note">{foot}; [lo, hi] is the 95% CI across replications. Latency is end to '
        "end as the client sees it. $/month extrapolates the simulated window to the billing "
        "month (730 h unless the scenario's `month:` says otherwise).</p>"
    )


def _slo_cell(slo: dict[str, Any]) -> str:
    if not slo:
        return "-"
    checks = []
    for key, c in slo.items():
        if "target_ms" in c:
            checks.append(f"{key} {_ms(c.get('value_ms'))} ≤ {_ms(c['target_ms'])}")
        else:
            checks.append(f"{key} {c.get('value', 0):.4g} ≤ {c.get('target', 0):.4g}")
    title = esc("; ".join(checks))
    missed = [k for k, c in slo.items() if not c.get("met")]
    if not missed:
        return f'<span class="pass" title="{title}">pass</span>'
    return f'<span class="fail" title="{title}">FAIL</span> {esc(",".join(missed))}'


def prices(series: list[Series]) -> str:
    """Price dates and the sources of every bill line."""
    dates = []
    rows = []
    for s in series:
        date = s.stats.get("price_date")
        dates.append(f"{s.text}: prices as of {esc(date or 'unknown')}")
        for line, src in sorted((s.stats.get("price_sources") or {}).items()):
            rows.append(
                f'<tr><td class="l">{s.text}</td><td class="l">{esc(line)}</td>'
                f'<td class="l" style="white-space:normal">{esc(src)}</td></tr>'
            )
    out = '<p class="note">' + " · ".join(dates) + ". Operating cost (hatched: the scenario's "
    out += "`ops` lines, such as engineer time) is shown apart from the cloud bill.</p>"
    if rows:
        out += (
            "<details><summary>Price sources</summary><table><tr><th class='l'>platform</th>"
            "<th class='l'>line</th><th class='l'>source</th></tr>" + "".join(rows) + "</table>"
            "</details>"
        )
    return out


def scenario_echo(results: Results, named: bool) -> str:
    """The resolved scenario (every default filled in) as YAML, plus the run's notes."""
    s = results.summary
    resolved = s.get("resolved_scenario") or {}
    text = yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True, width=100)
    notes = "".join(
        f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in (s.get("notes") or {}).items()
    )
    label = f"<h3>{esc(s.get('scenario') or '')}</h3>" if named else ""
    return (
        f"{label}<p class='note'>Resolved scenario: every default filled in; quantities in SI "
        "units (seconds, requests per second, MB, cores).</p>"
        f"<pre>{esc(text)}</pre>" + (f"<ul class='note'>{notes}</ul>" if notes else "")
    )
