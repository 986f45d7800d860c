"""The report reads at a glance (issue 14 item 9): log axes labelled 1, 2, 5 per decade, and bill
lines in colours far apart, one per line name."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sim.report.data import Series
from sim.report.figures import BILL_COLOR, BILL_PALETTE, bill_colors, bill_figure
from sim.report.plot import log_ticks

ROOT = Path(__file__).resolve().parents[1]


def _lab(color: str) -> np.ndarray:
    """sRGB hex -> CIE L*a*b* (D65), the textbook formulas (IEC 61966-2-1, CIE 15)."""
    c = np.array([int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)])
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_delta_e(colors: list[str]) -> float:
    pairs = itertools.combinations(colors, 2)
    return min(float(np.linalg.norm(_lab(a) - _lab(b))) for a, b in pairs)


def test_lab_conversion_matches_known_values():
    # sRGB white, black and pure red: L*a*b* (100, 0, 0), (0, 0, 0), (53.24, 80.09, 67.20)
    assert _lab("#ffffff") == pytest.approx([100, 0, 0], abs=0.05)
    assert _lab("#000000") == pytest.approx([0, 0, 0], abs=0.05)
    assert _lab("#ff0000") == pytest.approx([53.24, 80.09, 67.20], abs=0.1)


def _names_in_pricing() -> set[str]:
    """Every bill line the pricing code can write: b.line("name", ...) and b.discount(...)."""
    names: set[str] = set()
    for path in (ROOT / "sim" / "pricing").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"b\.(?:line|discount)\(\s*\"([a-z0-9_]+)\"", text))
        names |= set(re.findall(r"_overage\(\s*b,\s*\"([a-z0-9_]+)\"", text))
    return names


def test_every_pricing_line_has_its_own_colour():
    names = _names_in_pricing()
    assert {"duration", "load_balancer", "workers_cpu", "control_plane", "nodes"} <= names
    assert names <= BILL_COLOR.keys(), names - BILL_COLOR.keys()
    assert len({BILL_COLOR[n] for n in names}) == len(names)  # no two cloud lines share one


def test_palette_colours_are_far_apart():
    # CIE76 ΔE 20 is far past "clearly different" (2.3 is just noticeable)
    assert _min_delta_e(list(BILL_PALETTE)) >= 20
    assert len(BILL_PALETTE) >= 40  # more than Dark24's 24, which the old bill cycled through
    for c in BILL_PALETTE:  # readable on white, not a highlighter
        lab = _lab(c)
        assert 25 < lab[0] < 85 and math.hypot(lab[1], lab[2]) < 85, c


def _series(label: str, cloud: list[str], ops: list[str]) -> Series:
    stats = {
        "monthly_breakdown_usd": {k: 1.0 for k in cloud},
        "operating_breakdown_usd": {k: 2.0 for k in ops},
        "monthly_cost_usd": float(len(cloud)),
        "cost_per_million_usd": float(len(cloud)) / 10,
        "operating_monthly_usd": 2.0 * len(ops),
    }
    return Series(label=label, platform=label, stats=stats, results=None, color="#000000")  # type: ignore[arg-type]


PROFILE_OPS = ["platform_engineer", "networking_tools", "monitoring", "security_scanning"]
PROFILE_OPS += ["ci_cd", "incident_time", "training"]


def test_bill_figure_lines_are_distinct_and_stable_per_name():
    lam = ["duration", "init", "requests", "api_gateway", "logs", "log_storage", "nat"]
    lam += ["data_transfer_out", "provisioned_concurrency", "snapstart_cache"]
    wasm = ["workers_base", "workers_requests", "workers_cpu"]
    k8s = ["nodes", "control_plane", "load_balancer", "load_balancer_lcu", "ebs", "public_ipv4"]
    k8s += ["cross_az", "nat", "data_transfer_out", "commitment_discount", "commitment_unused"]
    fig = bill_figure(
        [_series("fn", lam, PROFILE_OPS), _series("edge", wasm, []), _series("k8s", k8s, ["x"])]
    ).to_dict()
    color: dict[tuple[str, bool], str] = {}
    for t in fig["data"]:
        if (t.get("meta") or {}).get("kind") != "bill":
            continue
        key = (t["meta"]["line"], t["meta"]["operating"])
        # one trace per line name and subplot: both subplots show it in the same colour
        assert color.setdefault(key, t["marker"]["color"]) == t["marker"]["color"]
    # 32 lines: the old bill cycled Dark24's 24 colours by position, so lines shared colours
    assert len(color) == len(set(lam + wasm + k8s)) + len(PROFILE_OPS) + 1 > 24
    assert len(set(color.values())) == len(color)  # no two lines share a colour
    assert _min_delta_e(list(color.values())) >= 20
    # the pairs, once near-identical pinks
    for a, b in (("load_balancer", "workers_cpu"), ("control_plane", "workers_requests")):
        dist = np.linalg.norm(_lab(color[(a, False)]) - _lab(color[(b, False)]))
        assert dist >= 20, (a, b, dist)
    # a line keeps its colour whatever else is on the bill
    alone = bill_figure([_series("k8s", ["load_balancer"], [])]).to_dict()["data"][0]
    assert alone["marker"]["color"] == color[("load_balancer", False)]


def test_bill_colours_resolve_collisions_deterministically():
    # "platform_engineer" (the first name past the palette) wraps onto "nodes"' colour; with
    # both on a bill it moves on
    assert BILL_COLOR["platform_engineer"] == BILL_COLOR["nodes"]
    both = bill_colors(["nodes", "platform_engineer"])
    assert both["nodes"] == BILL_PALETTE[BILL_COLOR["nodes"]]
    assert both["platform_engineer"] != both["nodes"]
    assert bill_colors(["nodes", "platform_engineer"]) == both
    unknown = bill_colors(["my_own_line"])["my_own_line"]
    assert unknown in BILL_PALETTE and bill_colors(["my_own_line"])["my_own_line"] == unknown


def test_log_ticks_read_1_2_5_per_decade():
    t = log_ticks(3.0, 2500.0)
    assert t["tickmode"] == "array"
    pairs = dict(zip(t["tickvals"], t["ticktext"], strict=True))
    want = {1: "1", 2: "2", 5: "5", 10: "10", 20: "20", 50: "50", 100: "100", 200: "200"}
    want |= {500: "500", 1000: "1,000", 2000: "2,000", 5000: "5,000"}
    for v, text in want.items():
        assert any(math.isclose(k, v) and s == text for k, s in pairs.items()), (v, text)
    assert t["minor"]["dtick"] == "D1"  # unlabelled ticks at every digit
    p = dict(zip(log_ticks(2e-4, 1.0)["tickvals"], log_ticks(2e-4, 1.0)["ticktext"], strict=True))
    assert [p[k] for k in sorted(p) if 1e-4 * 0.99 <= k <= 1.01] == [
        "10⁻⁴", "2×10⁻⁴", "5×10⁻⁴", "0.001", "0.002", "0.005", "0.01", "0.02", "0.05",
        "0.1", "0.2", "0.5", "1",
    ]  # fmt: skip
    wide = log_ticks(0.01, 1e7)["ticktext"]  # past five decades: powers of ten only
    assert wide == ["0.01", "0.1", "1", "10", "100", "1,000", "10k", "100k", "1M", "10M"]
    assert log_ticks(0.0, 1.0) == {} and log_ticks(5.0, 1.0) == {}
    for text in log_ticks(1e-6, 1e9)["ticktext"]:
        assert "e+" not in text and "e-" not in text


def test_crossover_p99_axis_reads_1_2_5() -> None:
    """The studies' crossover page labels its p99 log axis as the report does (1, 2, 5 per
    decade, no "2e+3"), over the at-least-a-decade range it spans."""
    from sim.studies.plots import crossover_figure

    rows = [
        {"volume_per_month": v, "platform": p, "monthly_cost_usd": c, "p99_ms": ms}
        for v in (1e6, 1e7, 1e8)
        for p, c, ms in (("lambda", v * 2e-6, 180.0), ("eks", 150.0, 210.0))
    ]
    fig = crossover_figure(
        {"platforms": ["lambda", "eks"], "rows": rows, "crossovers": []}, "t"
    ).to_go()
    axis = fig.layout.yaxis2
    assert axis.type == "log" and axis.tickmode == "array"
    assert list(axis.ticktext) and not any("e+" in t or "e-" in t for t in axis.ticktext)
    lo, hi = axis.range
    assert hi - lo >= 1.0 - 1e-9  # at least a decade
    labelled = [v for v in axis.tickvals if 10**lo <= v <= 10**hi]
    assert {f"{v:g}"[0] for v in labelled} <= {"1", "2", "5"} and len(labelled) >= 3
