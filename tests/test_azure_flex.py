"""`type: azure_flex` (Azure Functions Flex Consumption): defaults from Microsoft's docs, the
scale controller on a step in load (by hand), fixed capacity = M/M/c, the activity meter and both
billing modes computed by hand to the cent."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from test_kubernetes_theory import _ci, erlang_c

from sim.platforms import PlatformSpec
from sim.platforms.azure_flex import ActivityMeter
from sim.pricing.azure_flex import AzureFlexUsage, azure_flex_bill

from conftest import make_scenario, run_platform

SPEC: TypeAdapter = TypeAdapter(PlatformSpec)
MONTH_S = 30 * 86400.0


def flex(**kw):
    return SPEC.validate_python({"name": "f", "type": "azure_flex", **kw})


@pytest.mark.parametrize(
    ("settings", "concurrency"),
    [
        ({}, 16),  # 2,048 MB is the default size
        ({"instance_memory": 512}, 4),
        ({"instance_memory": 2048}, 16),
        ({"instance_memory": 4096}, 32),
        ({"runtime": "python", "instance_memory": 4096}, 1),  # Python: 1 at every size
        ({"instance_memory": 512, "concurrency": 10}, 10),  # perInstanceConcurrency set
    ],
)
def test_http_concurrency_defaults_follow_microsoft(settings, concurrency):
    assert flex(**settings).http_concurrency == concurrency


def test_defaults_and_limits():
    f = flex()
    assert (f.always_ready, f.max_instances, f.request_timeout) == (0, 100, 230.0)
    for bad in ({"instance_memory": 1024}, {"max_instances": 1001}, {"concurrency": 1001}):
        with pytest.raises(ValidationError):
            flex(**bad)
    with pytest.raises(ValidationError, match="always_ready"):
        flex(always_ready=5, max_instances=4)


def _scenario(arrivals, platform, duration="30m", service="1s", seed=1):
    return make_scenario(
        {
            "name": "flex",
            "duration": duration,
            "warmup": "0s",
            "replications": 1,
            "seed": seed,
            "workload": {"arrivals": arrivals, "service": {"duration": service, "cpu_bound": 0}},
            "platforms": [{"name": "f", "type": "azure_flex", **platform}],
        }
    )


def test_step_in_load_capacity_by_hand():
    """512 MB (4 per instance), 1 s executions, evenly spaced arrivals, 1 always-ready instance.
    4/s keeps exactly 4 in flight (1 instance). At 600 s the rate steps to 16/s: the tick at 601 s
    sees the 16 arrivals of [600, 601) in flight or waiting -> ceil(16/4) = 4 instances; the
    backlog of the cold starts pushes the count higher, then 16 in flight need 4 again. At
    1200 s the rate falls back to 4/s: the last tick needing 4 is 1200 s, so with idle_timeout
    60 s the count drops to 1 at the first tick after 1260 s: 1261 s."""
    uniform = {"spacing": "uniform"}
    sc = _scenario(
        [
            {"steady": {"rate": "4/s", "end": "600s", **uniform}},
            {"steady": {"rate": "16/s", "start": "600s", "end": "1200s", **uniform}},
            {"steady": {"rate": "4/s", "start": "1200s", **uniform}},
        ],
        {"instance_memory": 512, "always_ready": 1, "idle_timeout": "60s", "cold_start": "2s"},
    )
    run = run_platform(sc)
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "azure_flex"]
    assert steps[0] == (601.0, 1, 4)
    assert max(s[2] for s in steps) > 4  # the backlog of the cold starts
    assert steps[-1] == (1261.0, 4, 1)
    tl = run.timeline
    t = tl["time_s"]
    steady = (t >= 900) & (t < 1200)
    assert (tl["desired"][steady] == 4).all() and (tl["queued"][steady] == 0).all()
    assert (tl["desired"][t < 600] == 1).all() and tl["desired"][-1] == 1
    assert run.stats.outcomes["ok"] == run.stats.requests


def test_scale_from_zero_is_cold_and_bounded_by_max_instances():
    sc = _scenario(
        [{"steady": {"rate": "40/s", "start": "10s", "spacing": "uniform"}}],
        {"instance_memory": 512, "max_instances": 3, "cold_start": "2s", "request_timeout": None},
        duration="2m",
    )
    run = run_platform(sc)
    assert run.stats.cold_starts > 0
    assert max(run.timeline["desired"]) == 3  # 40 in flight would need 10
    assert run.timeline["instances"][0] == 0


def test_fixed_capacity_is_mmc():
    """always_ready = max_instances = 2 instances of 4 slots, Poisson arrivals, exponential 1 s
    executions, no timeout: one FIFO in front of 8 slots, an M/M/8 queue (Erlang C)."""
    c, lam = 8, 6.0
    est = []
    for rep in range(8):
        sc = make_scenario(
            {
                "name": "mmc",
                "duration": f"{math.floor(58_000 / lam)}s",
                "warmup": "500s",
                "replications": 1,
                "seed": 11 + rep,
                "workload": {
                    "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                    "service": {"duration": {"dist": "exponential", "mean": "1s"}, "cpu_bound": 0},
                },
                "platforms": [
                    {
                        "name": "f",
                        "type": "azure_flex",
                        "instance_memory": 512,
                        "always_ready": 2,
                        "max_instances": 2,
                        "request_timeout": None,
                    }
                ],
            }
        )
        run = run_platform(sc)
        rows = run.stats.sample
        wait = rows["wait"][rows["arrival"] >= 500]
        est.append((wait.mean(), (wait > 0).mean()))
    pw = erlang_c(c, lam)
    for j, value in enumerate((pw / (c - lam), pw)):
        lo, hi = _ci(np.array(est)[:, j])
        assert lo <= value <= hi


def test_activity_meter_counts_an_instance_once_with_the_minimum_and_rounding():
    m = ActivityMeter(always_ready=1, horizon=100.0)
    # Instance 0 (always ready): [0, 0.25] and [0.5, 0.7] -> one period [0, 1.5] (1 s minimum
    # from each start) = 1.5 s; [3, 4.23] -> 1.23 s -> 1.3 s.
    m.add(np.array([0.0, 0.5]), np.array([0.25, 0.7]), np.array([0, 0]))
    # Instance 1 (on demand): overlapping executions [10, 12] and [11, 13] count once; in the
    # next flush [12.5, 12.9] joins the open period and holds it to 13.5 (1 s minimum), where
    # [13.5, 14] starts and holds it to 14.5: one period [10, 14.5] = 4.5 s (not 2 + 2 + ...).
    m.add(np.array([10.0, 11.0]), np.array([12.0, 13.0]), np.array([1, 1]))
    m.settle()
    m.add(np.array([3.0, 12.5, 13.5]), np.array([4.23, 12.9, 14.0]), np.array([0, 1, 1]))
    m.close()
    assert m.active[1] == pytest.approx(1.5 + 1.3)
    assert m.active[0] == pytest.approx(4.5)
    assert m.executions == [4, 3]


def test_on_demand_bill_with_free_grant_to_the_cent():
    """2,048 MB = 2 GB x 100,000 active s = 200,000 GB-s - 100,000 free = 100,000 x $0.000026
    = $2.60; 1,250,000 executions - 250,000 free = 1M x $0.40/M = $0.40: $3.00."""
    u = AzureFlexUsage(
        window_s=MONTH_S,
        memory_mb=2048,
        on_demand_active_s=100_000,
        on_demand_executions=1_250_000,
    )
    b = azure_flex_bill(u, month_s=MONTH_S)
    assert round(b.breakdown["on_demand_execution_time"], 2) == 2.60
    assert round(b.breakdown["on_demand_executions"], 2) == 0.40
    assert round(b.total_usd, 2) == 3.00
    below = azure_flex_bill(
        AzureFlexUsage(
            window_s=MONTH_S,
            memory_mb=2048,
            on_demand_active_s=40_000,
            on_demand_executions=200_000,
        ),
        month_s=MONTH_S,
    )
    assert below.total_usd == 0.0  # inside both free grants


def test_always_ready_bill_to_the_cent():
    """2 always-ready 4,096 MB instances all month: baseline 2 x 4 GB x 2,592,000 s x $0.000004
    = $82.944; active 500,000 s x 4 GB x $0.000016 = $32.00; 3M executions x $0.40/M = $1.20 (no
    free grant): $116.144 -> $116.14."""
    u = AzureFlexUsage(
        window_s=MONTH_S,
        memory_mb=4096,
        always_ready=2,
        always_ready_active_s=500_000,
        always_ready_executions=3_000_000,
    )
    b = azure_flex_bill(u, month_s=MONTH_S)
    assert round(b.breakdown["always_ready_baseline"], 3) == 82.944
    assert round(b.breakdown["always_ready_execution_time"], 2) == 32.00
    assert round(b.breakdown["always_ready_executions"], 2) == 1.20
    assert round(b.total_usd, 2) == 116.14


def test_run_bills_the_metered_activity():
    """One always-ready 2 GB instance, an execution of 0.25 s every 10 s for 1 h: 360
    periods of 1 s (the minimum) = 360 s active; baseline 2 GB x 3600 s."""
    sc = _scenario(
        [{"steady": {"rate": "0.1/s", "spacing": "uniform"}}],
        {"always_ready": 1},
        duration="1h",
        service="250ms",
    )
    run = run_platform(sc)
    assert run.stats.requests == 360
    b = run.bill
    scale = b.month_s / 3600.0
    assert b.breakdown["always_ready_baseline"] == pytest.approx(2 * 3600 * 0.000004)
    assert b.breakdown["always_ready_execution_time"] == pytest.approx(2 * 360 * 0.000016)
    assert b.breakdown["always_ready_executions"] == pytest.approx(360 * 0.4e-6)
    assert b.monthly_usd == pytest.approx(b.total_usd * scale)


def test_metered_activity_matches_an_independent_union_of_the_rows():
    """On-demand instances under Poisson load: the billed activity equals, per instance, the union
    of [start, max(end, start + 1 s)] over its executions (every row kept), each merged period
    rounded up to 100 ms - computed here from the request rows with a plain loop."""
    sc = _scenario(
        [{"steady": {"rate": "30/s"}}],
        {"instance_memory": 512, "request_timeout": None, "cold_start": "1s"},
        duration="1000s",
        service={"dist": "exponential", "mean": "200ms"},
        seed=4,
    )
    run = run_platform(sc)
    rows = run.stats.sample
    assert rows["arrival"].size == run.stats.requests_all
    by: dict[int, list[tuple[float, float]]] = {}
    for s, e, i in zip(rows["start"], rows["end"], rows["instance"], strict=True):
        by.setdefault(int(i), []).append((float(s), max(float(e), float(s) + 1.0)))
    total = 0.0
    for spans in by.values():
        spans.sort()
        lo, hi = spans[0]
        for s, e in spans[1:]:
            if s > hi:
                total += math.ceil((min(hi, 1000.0) - lo) / 0.1 - 1e-9) * 0.1
                lo, hi = s, e
            else:
                hi = max(hi, e)
        total += math.ceil((min(hi, 1000.0) - lo) / 0.1 - 1e-9) * 0.1
    b = run.bill
    scale = b.month_s / 1000.0
    gb_s = b.breakdown["on_demand_execution_time"] * scale / 0.000026 + 100_000
    assert gb_s / (0.5 * scale) == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize("kind", ["azure_flex", "lambda_managed"])
def test_kernel_equals_the_per_request_reference(kind):
    """The kernel against sim.validation.reference (one SimPy process per request) on a burst
    that scales out and back: identical rows, decisions and bill."""
    from test_equivalence import assert_same

    from sim.validation.reference import run_reference

    from conftest import ROOT

    platform = (
        {"instance_memory": 512, "idle_timeout": "2m", "max_instances": 6}
        if kind == "azure_flex"
        else {"concurrency": 4, "scale_period": "20s", "scale_down_window": "1m"}
    )
    sc = make_scenario(
        {
            "name": "eq",
            "duration": "15m",
            "warmup": "0s",
            "replications": 1,
            "seed": 9,
            "workload": {
                "arrivals": [
                    {"steady": {"rate": "3/s"}},
                    {
                        "spike": {
                            "at": "3m",
                            "peak": "30/s",
                            "rise": "30s",
                            "hold": "2m",
                            "decay": "30s",
                        }
                    },
                ],
                "service": {"duration": {"dist": "exponential", "mean": "400ms"}},
            },
            "platforms": [{"name": "p", "type": kind, **platform}],
        }
    )
    fast, ref = run_platform(sc, "p"), run_reference(sc, "p", 0, ROOT)
    assert len(fast.decisions) > 1
    assert_same(fast, ref)
