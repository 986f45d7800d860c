"""Google Cloud Run (`type: cloud_run`): queueing against M/M/c, the autoscaler's documented
equations, the pending limit and its 429, and both billing modes to the cent by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats
from test_equivalence import assert_same

from sim.platforms.cloud_run import recommendation
from sim.platforms.cloud_run_spec import CloudRunSpec
from sim.platforms.slots import merge_periods
from sim.pricing.cloud_run import CloudRunUsage, cloud_run_bill
from sim.studies.crossover import run_crossover
from sim.studies.sweep import Base
from sim.validation.cases import erlang_c
from sim.validation.reference import run_reference

from conftest import ROOT, make_scenario, run_platform

MONTH_S = 730 * 3600.0  # the default billing month


def scenario(platform: dict[str, Any], workload: dict[str, Any], **top: Any) -> Any:
    data = {
        "name": "cr",
        "duration": "1000s",
        "warmup": "0s",
        "replications": 1,
        "seed": 3,
        "workload": workload,
        "platforms": [{"name": "cr", "type": "cloud_run", "ingress_latency": "0s", **platform}],
        **top,
    }
    return make_scenario(data)


def spaced(rate: str, service: str) -> dict[str, Any]:
    """Evenly spaced arrivals of constant-length requests: every busy period known by hand."""
    return {
        "arrivals": [{"steady": {"rate": rate, "spacing": "uniform"}}],
        "service": {"duration": service, "cpu_bound": 0},
    }


# --- queueing: one instance with N slots is M/M/N ---------------------------------------------


def test_one_instance_with_concurrency_n_is_mmn():
    """min = max = 1, concurrency 4, exponential 1 s service at rho 0.5: Cloud Run's front end holds
    requests in one FIFO for a free slot, so P(wait) and the mean wait are Erlang C's."""
    c, lam, mu = 4, 2.0, 1.0
    est = []
    for rep in range(4):
        sc = scenario(
            {
                "concurrency": c,
                "min_instances": 1,
                "max_instances": 1,
                "pending_timeout": "1h",
                "request_timeout": "1h",
            },
            {
                "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                "service": {"duration": {"dist": "exponential", "mean": "1s"}, "cpu_bound": 0},
            },
            duration="28000s",
            seed=11 + rep,
        )
        run = run_platform(sc)
        rows = run.stats.sample
        assert rows["arrival"].size == run.stats.requests_all
        assert run.stats.outcomes["ok"] == run.stats.requests
        wait = rows["wait"]
        est.append((wait.mean(), (wait > 0).mean()))
    x = np.array(est)
    pw = erlang_c(c, lam / mu)
    for j, value in enumerate((pw / (c * mu - lam), pw)):
        half = stats.t.ppf(0.975, 3) * x[:, j].std(ddof=1) / 2.0
        assert abs(x[:, j].mean() - value) <= half, (j, x[:, j].mean(), value, half)


def test_pending_requests_get_429_after_the_pending_limit():
    """At max instances a request waits for a slot max(3.5 x mean startup, 10 s) = 10 s, then 429
    (rejected), long before the 300 s request timeout (the old Kubernetes queue: timed out)."""
    sc = scenario(
        {"concurrency": 1, "min_instances": 1, "max_instances": 1, "startup": "1s"},
        spaced("1/s", "500s"),
        duration="200s",
    )
    assert sc.platforms[0].pending_limit == 10.0
    run = run_platform(sc)
    rows = run.stats.sample
    rejected = rows["outcome"] == 2  # records.REJECTED
    assert run.stats.outcomes["ok"] + run.stats.outcomes["timed_out"] == 1  # the first request
    assert rejected.sum() == run.stats.requests_all - 1
    assert np.allclose(rows["wait"][rejected], 10.0)


def test_pending_limit_follows_the_startup_time():
    spec = CloudRunSpec.model_validate(
        {"name": "x", "type": "cloud_run", "startup": {"dist": "constant", "value": "4s"}}
    )
    assert spec.pending_limit == pytest.approx(14.0)  # 3.5 x 4 s > 10 s
    boosted = spec.model_copy(update={"startup_cpu_boost": True})
    assert boosted.pending_limit == 10.0  # 3.5 x 2 s < 10 s


# --- the autoscaler's equations (cloud.google.com/run/docs/about-instance-autoscaling) ----------


@pytest.mark.parametrize(
    ("settings", "cpu", "conc", "demand", "expected"),
    [
        ({}, 0.0, 0.0, 0, (0, 0, 0, 0)),  # idle: scale to zero
        ({}, 0.0, 48.0, 0, (1, 0, 1, 0)),  # 48 = 60% of 80: one instance
        ({}, 0.0, 48.5, 0, (2, 0, 2, 0)),  # above 60% of 80: two
        ({}, 0.6, 0.0, 0, (1, 1, 0, 0)),  # 0.6 cores on 1 vCPU at 60%
        ({"cpu": 2}, 1.21, 0.0, 0, (2, 2, 0, 0)),  # ceil(1.21 / 1.2)
        ({}, 0.0, 0.0, 81, (2, 0, 0, 2)),  # on demand: 81 requests need 2 instances of 80
        ({"min_instances": 3}, 0.0, 10.0, 1, (3, 0, 1, 1)),  # min_instances floor
        ({"max_instances": 5}, 9.0, 0.0, 0, (5, 15, 0, 0)),  # max_instances cap
        ({"cpu_target": 0.9, "concurrency_target": 1.0}, 0.9, 80.0, 0, (1, 1, 1, 0)),
    ],
)
def test_recommendation_table(settings, cpu, conc, demand, expected):
    spec = CloudRunSpec.model_validate({"name": "x", "type": "cloud_run", **settings})
    assert recommendation(spec, cpu, conc, demand) == expected


def test_scale_from_zero_and_back_after_the_scale_in_delay():
    """A burst at zero starts instances on demand at the next 2 s look; after traffic stops the
    instances stay for scale_in_delay (here 120 s), then go to zero."""
    sc = scenario(
        {"concurrency": 10, "startup": "1s", "scale_in_delay": "120s"},
        {
            "arrivals": [
                {
                    "phases": [
                        {"duration": "10s", "rate": "0/s"},
                        {"duration": "60s", "rate": "40/s"},
                        {"duration": "330s", "rate": "0/s"},
                    ]
                }
            ],
            "service": {"duration": "200ms", "cpu_bound": 0},
        },
        duration="400s",
    )
    run = run_platform(sc)
    ups = [d for d in run.decisions if d.kind == "cloud_run" and d.after > d.before]
    assert ups and ups[0].time_s == pytest.approx(12.0)  # the first look after t = 10 s
    zero = [d for d in run.decisions if d.kind == "cloud_run" and d.after == 0]
    # Demand ends at 70 s; the 1-minute means see it until 130 s; then 120 s more.
    assert zero and 240.0 <= zero[0].time_s <= 256.0
    assert run.stats.outcomes["ok"] == run.stats.requests


# --- bills to the cent ------------------------------------------------------------------------


def test_request_and_instance_based_bills_by_hand():
    """One month, one 1 vCPU / 512 MiB instance kept warm (min 1): active 1,000,000 s, idle the
    other 1,628,000 s, 10M requests."""
    u = CloudRunUsage(
        window_s=MONTH_S,
        requests=10_000_000,
        vcpu=1.0,
        memory_gib=0.5,
        active_instance_s=1_000_000.0,
        idle_min_instance_s=MONTH_S - 1_000_000.0,
        instance_s=MONTH_S,
    )
    req = cloud_run_bill(u, "request")
    # cpu 1e6 x 0.000024 = 24.00; memory 0.5e6 x 0.0000025 = 1.25; idle cpu 1.628e6 x 0.0000025
    # = 4.07; idle memory 0.814e6 x 0.0000025 = 2.035; requests 10 x 0.40 = 4.00
    assert req.monthly_breakdown == pytest.approx(
        {"cpu": 24.0, "memory": 1.25, "idle_cpu": 4.07, "idle_memory": 2.035, "requests": 4.0}
    )
    assert round(req.monthly_usd, 2) == 35.36
    inst = cloud_run_bill(u, "instance")
    # cpu 2.628e6 x 0.000018 = 47.304; memory 1.314e6 x 0.000002 = 2.628; no request fee
    assert inst.monthly_breakdown == pytest.approx({"cpu": 47.304, "memory": 2.628})
    assert round(inst.monthly_usd, 2) == 49.93
    free = cloud_run_bill(u, "request", free_tier=True)
    # (1e6 - 180k) x 0.000024 = 19.68; (500k - 360k) x 0.0000025 = 0.35; (10M - 2M) x 0.4/M = 3.2
    assert free.monthly_breakdown["cpu"] == pytest.approx(19.68)
    assert free.monthly_breakdown["memory"] == pytest.approx(0.35)
    assert free.monthly_breakdown["requests"] == pytest.approx(3.2)
    assert round(free.monthly_usd, 2) == 29.34
    free_inst = cloud_run_bill(u, "instance", free_tier=True)
    # (2.628e6 - 240k) x 0.000018 = 42.984; (1.314e6 - 450k) x 0.000002 = 1.728
    assert round(free_inst.monthly_usd, 2) == round(42.984 + 1.728, 2)


@pytest.mark.parametrize(("service", "seconds", "billed"), [("1s", 1.0, 1.0), ("250ms", 0.25, 0.3)])
def test_active_time_meter_by_hand(service, seconds, billed):
    """One warm instance, a request every 10 s: active time = requests x service rounded up to
    100 ms, idle = the rest; instance-based bills the whole 1000 s."""
    sc = scenario({"min_instances": 1, "max_instances": 1}, spaced("0.1/s", service))
    run = run_platform(sc)
    n = run.stats.outcomes["ok"]
    assert n in (99, 100)
    bill = run.bill
    active, idle = n * billed, 1000.0 - n * seconds
    scale = MONTH_S / 1000.0
    assert bill.monthly_breakdown["cpu"] == pytest.approx(active * scale * 0.000024)
    assert bill.monthly_breakdown["idle_cpu"] == pytest.approx(idle * scale * 0.0000025)
    assert bill.monthly_breakdown["requests"] == pytest.approx(n * scale * 0.4e-6)


def test_crossover_where_instance_based_becomes_cheaper():
    """One instance (min = max = 1, 1 vCPU, 512 MiB), evenly spaced 1 s requests: busy a share
    lambda x 1 s of the time. Per second, request-based costs lambda (0.00002525 - 0.00000375)
    + 0.00000375 + lambda 0.4e-6 and instance-based 0.000019, equal at lambda* = 0.00001525 /
    0.0000219 = 0.69635/s = 1,829,999 requests per 730-h billing month (crossover volumes are
    per billing month)."""
    data = {
        "name": "cr-x",
        "duration": "600s",
        "warmup": "0s",
        "replications": 1,
        "seed": 5,
        "workload": spaced("0.5/s", "1s"),
        "platforms": [
            {"name": "request", "type": "cloud_run", "min_instances": 1, "max_instances": 1},
            {
                "name": "instance",
                "type": "cloud_run",
                "min_instances": 1,
                "max_instances": 1,
                "billing": "instance",
            },
        ],
    }
    volumes = [1.6e6, 1.7e6, 1.8e6, 1.9e6, 2.0e6]
    res = run_crossover(Base(data, "<test>", ROOT), volumes, workers=1)
    (x,) = res["crossovers"]
    assert (x["below"], x["above"]) == ("request", "instance")
    hand = 0.00001525 / 0.0000219 * 2_628_000  # volume per 730-h billing month
    assert x["volume_per_month"] == pytest.approx(hand, rel=0.01)


@pytest.mark.parametrize(
    "platform",
    [
        {"type": "cloud_run", "concurrency": 2, "max_instances": 3, "startup": "5s"},
        {"type": "cloud_run", "min_instances": 1, "concurrency": 4, "scale_in_delay": "30s"},
        {"type": "container_apps", "concurrency": 4, "scale": {"minReplicas": 1}},
        {"type": "container_apps", "concurrency": 2, "plan": "dedicated"},
    ],
    ids=["cr-429s", "cr-min1", "aca-min1", "aca-dedicated"],
)
def test_kernel_equals_per_request_reference(platform):
    """Request by request, the kernel and the per-request SimPy model agree (outcomes incl. the
    429s, pods, decisions, and the bill built from their own busy periods)."""
    sc = make_scenario(
        {
            "name": "eq",
            "duration": "15m",
            "warmup": "0s",
            "replications": 1,
            "seed": 21,
            "workload": {
                "arrivals": [
                    {"steady": {"rate": "2/s"}},
                    {"spike": {"at": "5m", "peak": "30/s", "rise": "10s", "hold": "1m"}},
                ],
                "service": {"duration": {"dist": "exponential", "mean": "300ms"}},
            },
            "platforms": [{"name": "p", **platform}],
        }
    )
    fast, ref = run_platform(sc), run_reference(sc, "p", 0, ROOT)
    assert_same(fast, ref)
    if platform.get("max_instances") == 3:
        assert fast.stats.outcomes["rejected"] > 0  # the pending limit's 429s happened


def test_default_concurrency_is_80_per_vcpu():
    """gcloud and Terraform create a service with 80 x vCPUs concurrent requests, at most 1000."""
    spec = CloudRunSpec.model_validate({"name": "x", "type": "cloud_run", "cpu": 4})
    assert spec.concurrency == 320
    assert CloudRunSpec.model_validate({"name": "x", "type": "cloud_run"}).concurrency == 80
    given = CloudRunSpec.model_validate(
        {"name": "x", "type": "cloud_run", "cpu": 4, "concurrency": 10}
    )
    assert given.concurrency == 10


def test_startup_is_billed_as_active_time():
    """Request-based billing charges an instance "when it starts". A request a second at zero: the
    first starts one instance (startup 5 s); the requests that start when it is ready run
    together (one 100 ms busy period, touching the start-up); every later request is its own
    100 ms period. Active time = 5 s + 0.1 s + 0.1 s x (the later requests)."""
    sc = scenario(
        {"startup": "5s", "concurrency": 80, "scale_in_delay": "1h"},
        spaced("1/s", "100ms"),
        duration="100s",
    )
    run = run_platform(sc)
    starts = [d for d in run.decisions if d.kind == "cloud_run" and d.after > d.before]
    assert [(d.before, d.after) for d in starts] == [(0, 1)]
    rows = run.stats.sample
    assert (rows["outcome"] == 0).all()  # records.OK
    ready = float(rows["start"].min())  # the instance's ready time: 2 s (first look) + 5 s
    assert ready == pytest.approx(7.0)
    batch = int((rows["start"] == ready).sum())  # those that waited, and one arriving at 7 s
    active = 5.0 + 0.1 + 0.1 * (rows["start"].size - batch)
    cpu_s = run.bill.monthly_breakdown["cpu"] / (MONTH_S / 100.0) / 0.000024
    assert cpu_s == pytest.approx(active, abs=1e-6)


def test_busy_periods_merge_per_instance_by_hand():
    """Overlapping and touching requests on one instance make one period; other instances' do
    not merge with it."""
    s = np.array([0.0, 0.5, 2.0, 3.0, 0.2, 1.0])
    e = np.array([1.0, 2.0, 2.5, 4.0, 0.3, 5.0])
    k = np.array([0, 0, 0, 0, 1, 2])
    ms, me, mk = merge_periods(s, e, k)
    assert list(zip(ms, me, mk, strict=True)) == [
        (0.0, 2.5, 0),  # [0,1] + [0.5,2] + [2,2.5] (touching)
        (3.0, 4.0, 0),
        (0.2, 0.3, 1),
        (1.0, 5.0, 2),
    ]
