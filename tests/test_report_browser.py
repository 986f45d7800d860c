"""The report in a real browser: headless Chromium (Debian's package) driven by playwright.

Every figure must render with data, the page must fetch nothing (only its own file:// URL),
the console must stay free of errors, and the CCDF/CDF toggle must switch the axes. Screenshots go
to test-artifacts/ for a human to look at: the whole page at desktop (1440 px) and laptop
(1366x768) widths, report-desktop.png and report-laptop.png, and each figure at laptop width
(report-laptop-fig-NAME.png), small enough to read at full size.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from sim.report import FIGURES, render_report, results_from_run
from sim.simulate import run_scenario

from conftest import ROOT, make_scenario

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "laptop": {"width": 1366, "height": 768}}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

SCENARIO = {
    "name": "browser-check",
    "description": "Three platforms <b>and</b> a spike",
    "duration": "15m",
    "warmup": "1m",
    "replications": 5,
    "seed": 9,
    "workload": {
        "arrivals": [
            {"steady": {"rate": "6/s"}},
            {"spike": {"at": "8m", "peak": "25/s", "rise": "10s", "hold": "30s", "decay": "30s"}},
        ],
        "service": {"duration": {"dist": "lognormal", "median": "40ms", "p99": "300ms"}},
    },
    "platforms": [
        {"name": "lambda", "type": "lambda", "memory": 1024},
        {"name": "workers", "type": "wasm", "pricing": "cloudflare-workers"},
        {
            "name": "eks-keda",
            "type": "kubernetes",
            "pod": {"concurrency": 4},
            "keda": {
                "minReplicaCount": 1,
                "maxReplicaCount": 10,
                "pollingInterval": 15,
                "triggers": [{"type": "prometheus", "metadata": {"threshold": "5"}}],
            },
            "ops": {"monitoring": 40},
        },
    ],
    "slo": {"p99": "400ms", "error_rate": "0.1%"},
}


@pytest.mark.browser
def test_report_renders_offline_in_chromium(tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install chromium; .ci/run does this)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package")

    sc = make_scenario(SCENARIO)
    summary, runs = run_scenario(sc, ROOT, workers=1)
    url = _page_file(tmp_path, summary, runs)

    requests: list[str] = []
    problems: list[str] = []
    with _opened(sync_api, url, "desktop", requests, problems) as page:
        page.wait_for_function(
            f"() => document.querySelectorAll('.js-plotly-plot').length >= {len(FIGURES)}",
            timeout=30_000,
        )
        rendered = page.evaluate(
            """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({
                id: d.id,
                traces: (d.data || []).length,
                points: (d._fullData || []).filter(t => t.visible === true)
                    .map(t => (t.x ? t.x.length : 0)).reduce((a, b) => a + b, 0),
                svg: d.querySelectorAll('svg.main-svg').length,
            }))"""
        )
        _screenshots(page)

        # The toggle: linear CDF, then back to the log-log CCDF.
        axes = "() => { const l = document.getElementById('fig-tail')._fullLayout; " + (
            "return [l.xaxis.type, l.yaxis.type]; }"
        )
        assert page.evaluate(axes) == ["log", "log"]
        page.click("#fig-tail .updatemenu-button >> nth=1")
        page.wait_for_function(
            "() => document.getElementById('fig-tail')._fullLayout.xaxis.type === 'linear'"
        )
        assert page.evaluate(axes) == ["linear", "linear"]
        page.click("#fig-tail .updatemenu-button >> nth=0")
        page.wait_for_function(
            "() => document.getElementById('fig-tail')._fullLayout.xaxis.type === 'log'"
        )
        title = page.title()

    assert {r["id"] for r in rendered} == {f"fig-{k}" for k in FIGURES}
    for r in rendered:
        assert r["traces"] > 0 and r["points"] > 0 and r["svg"] > 0, r
    assert requests == [url], requests  # nothing but the page itself: no CDN, no fonts
    assert not problems, problems
    assert title == "sim report: browser-check"


def _page_file(folder: Path, summary: dict, runs: list) -> str:
    page_file = folder / "report.html"
    page_file.write_text(render_report([results_from_run(summary, runs)]), encoding="utf-8")
    return page_file.resolve().as_uri()


@contextlib.contextmanager
def _opened(sync_api, url: str, viewport: str, requests: list[str], problems: list[str]):
    """The page at `url` in headless Chromium, loaded, recording what it fetches and reports."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORTS[viewport])
            _watch(page, requests, problems)
            page.goto(url, wait_until="load")
            yield page
        finally:
            browser.close()


def _watch(page, requests: list[str], problems: list[str]) -> None:
    """Record every URL the page fetches, and console errors, warnings and page errors."""
    page.on("request", lambda r: requests.append(r.url))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") or "MathJax" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def _screenshots(page) -> None:
    """The page at each width, then each figure at the last (plotly redraws on resize)."""
    out = _artifacts()
    for name, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(300)  # plotly's responsive relayout after the resize event
        page.screenshot(path=str(out / f"report-{name}.png"), full_page=True)
    for key in FIGURES:
        page.locator(f"#fig-{key}").screenshot(path=str(out / f"report-laptop-fig-{key}.png"))
    page.set_viewport_size(VIEWPORTS["desktop"])
    page.wait_for_timeout(300)


def _artifacts() -> Path:
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    return out


@pytest.mark.browser
def test_system_report_draws_the_flow_diagram_in_chromium(tmp_path: Path):
    """A system run (issue 17): the Sankey's nodes are drawn as SVG (7 per placement: the entry,
    4 services, 2 queues), every system figure renders, no JS error, nothing fetched."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install chromium; .ci/run does this)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package")
    from sim.report import SYSTEM_FIGURES
    from sim.scenario import load_scenario

    path = ROOT / "scenarios" / "system-hybrid-orders.yaml"
    sc = load_scenario(path, ["duration=5m", "warmup=1m", "replications=2"])
    summary, runs = run_scenario(sc, path.parent, workers=1)
    url = _page_file(tmp_path, summary, runs)
    keys = (*FIGURES, *SYSTEM_FIGURES)
    requests: list[str] = []
    problems: list[str] = []
    with _opened(sync_api, url, "laptop", requests, problems) as page:
        page.wait_for_function(
            f"() => document.querySelectorAll('.js-plotly-plot').length >= {len(keys)}",
            timeout=30_000,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('#fig-flow .sankey-node').length > 0",
            timeout=30_000,
        )
        nodes = page.evaluate(
            "() => Array.from(document.querySelectorAll('#fig-flow .sankey-node'))"
            ".map(n => n.querySelector('rect') ? n.querySelector('rect')"
            ".getAttribute('height') : null)"
        )
        links = page.evaluate("() => document.querySelectorAll('#fig-flow .sankey-link').length")
        ids = page.evaluate(
            "() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => d.id)"
        )
        page.locator("#fig-flow").screenshot(path=str(_artifacts() / "report-system-flow.png"))
    assert len(nodes) == 3 * 7, nodes
    assert all(h is not None and float(h) > 0 for h in nodes), nodes
    assert links == 3 * 6  # entry, call, 2 publishes, 2 deliveries per placement
    assert set(ids) == {f"fig-{k}" for k in keys}
    assert requests == [url], requests
    assert not problems, problems
