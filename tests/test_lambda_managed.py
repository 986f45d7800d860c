"""`type: lambda_managed` (Lambda Managed Instances): defaults from AWS's docs, the scaler on a
step in load (by hand), one environment with N slots = Erlang B loss system, and the bill with
and without a Savings Plan computed by hand to the cent."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from scipy import stats
from test_kubernetes_theory import _ci

from sim.platforms import PlatformSpec
from sim.pricing.commitments import Commitment
from sim.pricing.kubernetes import NodeUsage
from sim.pricing.lambda_managed import LambdaManagedUsage, lambda_managed_bill
from sim.records import THROTTLED

from conftest import make_scenario, run_platform

SPEC: TypeAdapter = TypeAdapter(PlatformSpec)
MONTH_S = 30 * 86400.0


def lmi(**kw):
    return SPEC.validate_python({"name": "m", "type": "lambda_managed", **kw})


@pytest.mark.parametrize(
    ("settings", "vcpu", "concurrency"),
    [
        ({}, 1.0, 64),  # Node.js, 2 GB at 2 GiB per vCPU
        ({"runtime": "python"}, 1.0, 16),
        ({"runtime": "dotnet"}, 1.0, 32),
        ({"runtime": "java"}, 1.0, 32),
        ({"memory": "4Gi"}, 2.0, 128),  # 64 per vCPU
        ({"memory": "8Gi", "memory_per_vcpu": 4}, 2.0, 128),
        ({"concurrency": 10}, 1.0, 10),
    ],
)
def test_per_runtime_concurrency_per_vcpu(settings, vcpu, concurrency):
    m = lmi(**settings)
    assert (m.vcpu, m.env_concurrency) == (vcpu, concurrency)


def test_defaults_and_limits():
    m = lmi()
    assert (m.min_instances, m.min_environments) == (3, 3)  # AZ resiliency
    for bad in (
        {"memory": "1Gi"},  # the smallest function is 2 GB / 1 vCPU
        {"memory_per_vcpu": 9},
        {"concurrency": 1601},
        {"instance_type": "x9.huge"},
        {"commitment": {"plan": "flexible-cud"}},
        {"commitment": {"plan": "compute-savings-plan"}},  # no dated rate for m7g.large
    ):
        with pytest.raises(ValidationError):
            lmi(**bad)
    sp = {"plan": "compute-savings-plan", "discount": 0.3}  # a quote of your own
    assert lmi(commitment=sp).commitment.discount == 0.3
    assert lmi(instance_type="m5.xlarge", commitment={"plan": "compute-savings-plan"})


def _scenario(arrivals, platform, duration="30m", service="1s", seed=1):
    return make_scenario(
        {
            "name": "lmi",
            "duration": duration,
            "warmup": "0s",
            "replications": 1,
            "seed": seed,
            "workload": {"arrivals": arrivals, "service": {"duration": service, "cpu_bound": 0}},
            "platforms": [{"name": "m", "type": "lambda_managed", **platform}],
        }
    )


def test_step_in_load_capacity_by_hand():
    """10 slots per environment, 1 s invocations, evenly spaced arrivals. 10/s = 10 in flight =
    1 environment of work / target 0.5 -> 2, kept at min_environments 3 (on 3 m7g.large, 2
    environments each). At 600 s the rate steps to 100/s: over the 60 s before the 660 s tick,
    100 in flight = 10 environments of work / 0.5 -> 20, but at most 2x
    the count of 300 s before: 6 at 660 s, 12 at 960 s (2 x the 6 of 660 s), 20 at 1260 s. Until
    capacity catches up the excess is throttled at once (no queue, no cold start)."""
    uniform = {"spacing": "uniform"}
    sc = _scenario(
        [
            {"steady": {"rate": "10/s", "end": "600s", **uniform}},
            {"steady": {"rate": "100/s", "start": "600s", **uniform}},
        ],
        {"concurrency": 10, "environment_init": "1s", "instance_launch": "30s", "timeout": "30s"},
    )
    run = run_platform(sc)
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "lambda_managed"]
    assert steps == [(660.0, 3, 6), (960.0, 6, 12), (1260.0, 12, 20)]
    nodes = [d for d in run.decisions if d.kind == "nodes"]
    # 3 instances hold 6 environments: the first launch is for the 6 more of 960 s (3 instances),
    # then 8 more at 1260 s (4 instances): 10 in all.
    assert [(d.time_s, d.before, d.after) for d in nodes] == [(960.0, 3, 6), (1260.0, 6, 10)]
    tl = run.timeline
    t = tl["time_s"]
    assert (tl["desired"][t < 660] == 3).all() and (tl["nodes"][t < 660] == 3).all()
    assert tl["nodes"][-1] == 10 and tl["instances"][-1] == 20
    out = run.stats.outcomes
    assert out["throttled"] > 0 and out.get("rejected", 0) == 0
    assert out["ok"] + out["throttled"] == run.stats.requests
    # Before the step nothing is throttled; from 991 s (960 + 30 s launch + 1 s Init) 12
    # environments = 120 slots hold the 100 in flight.
    rows = run.stats.sample
    thr = rows["outcome"] == THROTTLED
    assert not thr[rows["arrival"] < 600].any() and not thr[rows["arrival"] > 992].any()


def test_one_environment_is_erlang_b():
    """One environment with N = 10 slots on one instance, no queue: arrivals beyond the slots
    are throttled, an M/M/10/10 loss system. P(throttle) = Erlang B(10, a) with a = 7 (the
    scaler keeps 1 environment: 7 in flight / 10 slots / target 1 <= 1)."""
    n, lam = 10, 7.0
    b = stats.poisson.pmf(n, lam) / stats.poisson.cdf(n, lam)
    est = []
    for rep in range(8):
        sc = make_scenario(
            {
                "name": "erlang-b",
                "duration": "8000s",
                "warmup": "200s",
                "replications": 1,
                "seed": 21 + rep,
                "workload": {
                    "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                    "service": {"duration": {"dist": "exponential", "mean": "1s"}, "cpu_bound": 0},
                },
                "platforms": [
                    {
                        "name": "m",
                        "type": "lambda_managed",
                        "concurrency": n,
                        "min_instances": 1,
                        "min_environments": 1,
                        "target_utilization": 1.0,
                        "timeout": "900s",
                    }
                ],
            }
        )
        run = run_platform(sc)
        assert not [d for d in run.decisions if d.kind == "lambda_managed"]
        rows = run.stats.sample
        post = rows["arrival"] >= 200
        est.append((rows["outcome"][post] == THROTTLED).mean())
    lo, hi = _ci(np.array(est))
    assert lo <= b <= hi, f"Erlang B {b:.4f} outside [{lo:.4f}, {hi:.4f}]"


def _usage(it: str) -> LambdaManagedUsage:
    return LambdaManagedUsage(
        window_s=MONTH_S,
        requests=10_000_000,
        instances=[NodeUsage(it, 0.0, MONTH_S) for _ in range(3)],
    )


def test_bill_on_demand_to_the_cent():
    """3 m7g.large x 720 h x $0.0816 = $176.256; fee 15% = $26.4384; 10M requests x $0.20/M =
    $2.00: $204.6944 -> $204.69."""
    b = lambda_managed_bill(_usage("m7g.large"), month_s=MONTH_S)
    assert round(b.breakdown["instances"], 3) == 176.256
    assert round(b.breakdown["management_fee"], 4) == 26.4384
    assert round(b.breakdown["requests"], 2) == 2.00
    assert round(b.total_usd, 2) == 204.69


def test_bill_with_a_savings_plan_to_the_cent():
    """3 m5.xlarge x 720 h: on demand $0.192/h = $414.72; 1-year Compute Savings Plan, no
    upfront, $0.122/h = $263.52 (discount $151.20); the fee stays on the on-demand price: 15% x
    $414.72 = $62.208; requests $2.00: $327.728 -> $327.73."""
    sp = Commitment(plan="compute-savings-plan")
    b = lambda_managed_bill(_usage("m5.xlarge"), commitment=sp, month_s=MONTH_S)
    assert round(b.breakdown["instances"], 2) == 414.72
    assert round(-b.breakdown["commitment_discount"], 2) == 151.20
    assert round(b.breakdown["management_fee"], 3) == 62.208
    assert round(b.total_usd, 2) == 327.73
    assert round(b.list_usd, 2) == 478.93


def test_run_bills_three_instances_and_the_requests():
    sc = _scenario(
        [{"steady": {"rate": "5/s", "spacing": "uniform"}}], {}, duration="1h", service="100ms"
    )
    run = run_platform(sc)
    b = run.bill
    assert b.breakdown["instances"] == pytest.approx(3 * 0.0816)
    assert b.breakdown["management_fee"] == pytest.approx(3 * 0.0816 * 0.15)
    assert b.breakdown["requests"] == pytest.approx(18_000 * 0.2e-6)
    assert run.stats.cold_starts == 0 and run.stats.outcomes["ok"] == 18_000
