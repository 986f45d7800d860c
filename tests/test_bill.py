"""The whole bill (issue 16): bills worked by hand, to the cent, from the published rates.

Rates used (prices.yaml, with sources): Lambda $0.20/M requests, $0.0000166667/GB-s; REST API
$3.50/M (first 333M), $2.80/M, $2.38/M (to 20B), $1.51/M; Lambda (vended) logs $0.50/GB first
10 TB, $0.25, $0.10, $0.05; log storage $0.03/GB-month; NAT $0.045/h + $0.045/GB; public IPv4
$0.005/h; c5.xlarge $0.17/h, m5.xlarge $0.192/h; EKS $0.10/h; ALB $0.0225/h + $0.008/LCU-h;
gp3 $0.08/GB-month; egress first 100 GB free then $0.09/GB; cross-AZ $0.01/GB each way;
Workers $5 incl. 10M requests + 30M CPU-ms; Fastly $0.50/M, $0.05/M vCPU-ms after 10M + 100M
free, $50 monthly minimum. A month is 730 h unless `month_s` says otherwise.
"""

from __future__ import annotations

import math

import pytest

from sim.errors import InputError
from sim.pricing import (
    Commitment,
    KubernetesCostSettings,
    KubernetesUsage,
    LambdaCostSettings,
    LambdaUsage,
    NatSettings,
    NodeUsage,
    WasmUsage,
    kubernetes_bill,
    lambda_bill,
    wasm_bill,
)
from tests.conftest import ROOT, make_scenario, run_platform

H = 3600.0
MONTH = 730 * H
GIB = 2.0**30


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --- the seed article's Lambda example -----------------------------------------------------------


def article_usage() -> LambdaUsage:
    """50M requests of 500 ms at 1 GB in a 730-h month, 50 GB of logs, 270 GB through the NAT.

    The article's $671.67 is requests $10 + duration 25M GB-s x $0.0000166667 = $416.6675 + REST
    API 50M x $3.50/M = $175 + logs 50 GB x $0.50 = $25 + NAT 730 h x $0.045 = $32.85 + $12.15 of
    NAT data. The issue quotes only the total: 270 GB (5.4 kB a request) is what $12.15 implies.
    """
    return LambdaUsage(
        requests=50_000_000,
        on_demand_billed_ms=50e6 * 500,
        window_s=MONTH,
        log_bytes=50e9,
        nat_bytes=270e9,
    )


def test_seed_article_lambda_bill_671_67_with_decimal_gb():
    settings = LambdaCostSettings(gb="decimal", nat=NatSettings(enabled=True, public_ipv4=False))
    bill = lambda_bill(article_usage(), memory_mb=1024, api_gateway="rest", settings=settings)
    m = bill.monthly_breakdown
    assert close(m["requests"], 10.0)
    assert close(m["duration"], 416.6675)
    assert close(m["api_gateway"], 175.0)
    assert close(m["logs"], 25.0)
    assert close(m["nat"], 32.85 + 12.15)
    assert close(bill.monthly_usd, 671.6675)
    assert round(bill.monthly_usd, 2) == 671.67
    assert close(bill.total_usd, bill.monthly_usd)  # the window is the 730-h month


def test_seed_article_lambda_bill_with_the_providers_conventions():
    """AWS meters data in binary GB (sim's default, an assumption facts.md records) and charges the
    NAT Gateway's public IPv4 ($0.005/h since 2024-02-01): logs 50e9 / 2^30 = 46.566 GB x $0.50 =
    $23.2831; NAT data 251.457 GB x $0.045 = $11.3156; IPv4 730 h x $0.005 = $3.65.
    Total 10 + 416.6675 + 175 + 23.2831 + 32.85 + 11.3156 + 3.65 = $672.77."""
    settings = LambdaCostSettings(nat=NatSettings(enabled=True))
    bill = lambda_bill(article_usage(), memory_mb=1024, api_gateway="rest", settings=settings)
    logs = 50e9 / GIB * 0.50
    nat = 730 * 0.045 + 270e9 / GIB * 0.045
    assert close(bill.monthly_breakdown["logs"], logs)
    assert close(bill.monthly_breakdown["nat"], nat)
    assert close(bill.monthly_breakdown["public_ipv4"], 3.65)
    assert close(bill.monthly_usd, 10 + 416.6675 + 175 + logs + nat + 3.65)
    assert round(bill.monthly_usd, 2) == 672.77
    # log retention unset: storage is not billed and the bill says why
    assert any("never expire" in n for n in bill.notes)


def test_lambda_with_a_compute_savings_plan():
    """1-year Compute Savings Plan: 15% off duration (and PC), not requests or API Gateway:
    $416.6675 x 0.15 = $62.500125 off; list $601.6675, effective $539.167375."""
    settings = LambdaCostSettings(commitment=Commitment(plan="compute-savings-plan", term="1y"))
    usage = LambdaUsage(requests=50_000_000, on_demand_billed_ms=50e6 * 500, window_s=MONTH)
    bill = lambda_bill(usage, memory_mb=1024, api_gateway="rest", settings=settings)
    assert close(bill.list_monthly_usd, 10 + 416.6675 + 175)
    assert close(bill.monthly_breakdown["commitment_discount"], -416.6675 * 0.15)
    assert close(bill.monthly_usd, 10 + 416.6675 * 0.85 + 175)
    assert "cloudwiry" in bill.sources["commitment_discount"]
    with pytest.raises(InputError, match="does not apply"):
        bad = LambdaCostSettings(commitment=Commitment(plan="reserved-instance"))
        lambda_bill(usage, memory_mb=1024, settings=bad)


# --- an EKS cluster ------------------------------------------------------------------------------


def eks_usage(node: str = "c5.xlarge", n: int = 3) -> KubernetesUsage:
    # 25 requests/s on average for the month: 1 new connection per request -> 1.0 LCU
    return KubernetesUsage(
        window_s=MONTH,
        requests=25 * int(MONTH),
        nodes=[NodeUsage(node, 0.0, MONTH) for _ in range(n)],
    )


def test_eks_three_c5_xlarge_with_alb_ebs_and_ipv4_for_a_month():
    """nodes 3 x $0.17 x 730 = $372.30; EKS 730 x $0.10 = $73.00; ALB 730 x $0.0225 = $16.425;
    LCU 1.0 x 730 x $0.008 = $5.84 (25 new conn/s = 1 LCU; 25 x 10 kB x 3600 / 2^30 = 0.84 GB/h);
    EBS 3 x 20 GiB x $0.08 = $4.80; IPv4 (2 for the ALB + 1 per node) 5 x 730 x $0.005 = $18.25.
    Total $490.615."""
    cost = KubernetesCostSettings(public_ipv4={"per_node": 1})
    bill = kubernetes_bill(eks_usage(), control_plane="eks", settings=cost)
    m = bill.monthly_breakdown
    assert close(m["nodes"], 372.30)
    assert close(m["control_plane"], 73.00)
    assert close(m["load_balancer"], 16.425)
    assert close(m["load_balancer_lcu"], 5.84)
    assert close(m["ebs"], 4.80)
    assert close(m["public_ipv4"], 18.25)
    assert close(bill.monthly_usd, 490.615)
    assert bill.discounts == () and close(bill.list_monthly_usd, bill.monthly_usd)


def test_eks_with_a_one_year_compute_savings_plan():
    """c5.xlarge has no dated Savings Plan rate in the table: the scenario gives its quote (30%
    off): nodes $372.30 - $111.69 = $260.61; the other lines unchanged: $490.615 - $111.69."""
    cost = {"public_ipv4": {"per_node": 1}}
    with pytest.raises(InputError, match=r"commitment\.discount"):
        plan = Commitment(plan="compute-savings-plan", term="1y")
        kubernetes_bill(eks_usage(), settings=KubernetesCostSettings(**cost, commitment=plan))
    plan = Commitment(plan="compute-savings-plan", term="1y", discount=0.30, source="my quote")
    bill = kubernetes_bill(eks_usage(), settings=KubernetesCostSettings(**cost, commitment=plan))
    assert close(bill.monthly_breakdown["commitment_discount"], -111.69)
    assert close(bill.list_monthly_usd, 490.615)
    assert close(bill.monthly_usd, 490.615 - 111.69)
    assert "my quote" in bill.sources["commitment_discount"]


def test_eks_m5_xlarge_savings_plan_from_the_dated_rate():
    """m5.xlarge 1-year Compute SP, no upfront: $0.122/h vs $0.192 on demand (xplorr.io, 2026):
    3 x 730 x (0.192 - 0.122) = $153.30 off $420.48 of nodes -> $267.18."""
    plan = Commitment(plan="compute-savings-plan")
    settings = KubernetesCostSettings(commitment=plan)
    bill = kubernetes_bill(eks_usage("m5.xlarge"), settings=settings)
    assert close(bill.monthly_breakdown["nodes"], 420.48)
    assert close(bill.monthly_breakdown["commitment_discount"], -153.30)
    ri = Commitment(plan="reserved-instance", term="3y", payment="all-upfront")
    bill = kubernetes_bill(eks_usage("m5.xlarge"), settings=KubernetesCostSettings(commitment=ri))
    assert close(bill.monthly_breakdown["commitment_discount"], -3 * 730 * (0.192 - 0.070))


def test_an_hourly_commitment_covers_part_and_unused_is_paid():
    """3 c5.xlarge = $0.51/h on demand; 30% off. $0.20/h buys 0.20 / 0.7 = $0.285714/h of on-demand
    usage: saving 0.3 x 0.285714 x 730 = $62.5714. $0.50/h is more than the $0.357/h the nodes
    cost at the discount: all covered ($111.69 off), (0.50 - 0.357) x 730 = $104.39 unused."""
    lb = "none"
    part = Commitment(plan="ec2-instance-savings-plan", discount=0.3, hourly=0.20)
    bill = kubernetes_bill(
        eks_usage(), load_balancer=lb, settings=KubernetesCostSettings(commitment=part)
    )
    assert close(bill.monthly_breakdown["commitment_discount"], -0.3 * 0.20 / 0.7 * 730)
    assert "commitment_unused" not in bill.monthly_breakdown
    over = Commitment(plan="ec2-instance-savings-plan", discount=0.3, hourly=0.50)
    bill = kubernetes_bill(
        eks_usage(), load_balancer=lb, settings=KubernetesCostSettings(commitment=over)
    )
    assert close(bill.monthly_breakdown["commitment_discount"], -111.69)
    assert close(bill.monthly_breakdown["commitment_unused"], (0.50 - 0.51 * 0.7) * 730)


def test_gke_flexible_cud_and_free_tier_credit():
    """Autopilot 2 vCPU + 4 GiB for a month: 64.97 + 14.37374 = $79.34374; 1-year flexible CUD 28%
    off it = $22.2162; the cluster fee $73 is covered by the $74.40 free-tier credit."""
    usage = KubernetesUsage(
        window_s=MONTH, requests=0, pod_cpu_seconds=2 * MONTH, pod_memory_gib_seconds=4 * MONTH
    )
    settings = KubernetesCostSettings(commitment=Commitment(plan="flexible-cud"))
    bill = kubernetes_bill(
        usage,
        control_plane="gke",
        mode="autopilot",
        load_balancer="none",
        free_tier=True,
        settings=settings,
    )
    pods = 2 * 730 * 0.0445 + 4 * 730 * 0.0049225
    assert close(bill.monthly_breakdown["commitment_discount"], -0.28 * pods)
    assert close(bill.monthly_breakdown["control_plane"], 0.0)
    assert close(bill.monthly_usd, 0.72 * pods)
    assert "ebs" not in bill.monthly_breakdown  # AWS lines are not put on a GKE bill


def test_eks_auto_mode_nat_cross_az_and_egress():
    """Auto Mode fee 12% of $372.30 = $44.676; NAT 730 h x $0.045 + its IPv4 $3.65; cross-AZ half of
    the 10 kB per request crosses: 65.7M x 10 kB x 0.5 = 328.5 GB (decimal) x $0.02 = $6.57;
    egress 65.7M x 20 kB = 1,314 GB: (1,314 - 100) x $0.09 = $109.26."""
    usage = eks_usage()
    usage.response_bytes = usage.requests * 20e3
    cost = KubernetesCostSettings(
        auto_mode=True, nat={"enabled": True}, cross_az=0.5, gb="decimal", root_volume=0
    )
    bill = kubernetes_bill(usage, load_balancer="none", settings=cost)
    m = bill.monthly_breakdown
    assert close(m["auto_mode_fee"], 0.12 * 372.30)
    assert close(m["nat"], 730 * 0.045)
    assert close(m["public_ipv4"], 3.65)
    assert close(m["cross_az"], 328.5 * 0.02)
    assert close(m["data_transfer_out"], (1314 - 100) * 0.09)
    assert "ebs" not in m


# --- the lines teams forget, Lambda side ---------------------------------------------------------


def test_rest_api_over_20_billion_and_log_tiers_and_storage():
    """21B REST requests: 333M x 3.50 + 667M x 2.80 + 19B x 2.38 + 1B x 1.51 = $49,763.10.
    20 TiB of logs: 10,240 x 0.50 + 10,240 x 0.25 = $7,680; 30-day retention keeps 30 days of
    them: 20,480 GB x 720/730 x $0.03 = $605.98."""
    usage = LambdaUsage(
        requests=0, on_demand_billed_ms=0, window_s=MONTH, gateway_requests=21_000_000_000
    )
    bill = lambda_bill(usage, memory_mb=128, api_gateway="rest")
    assert close(bill.monthly_breakdown["api_gateway"], 1165.5 + 1867.6 + 45220 + 1510)
    logs = LambdaUsage(requests=0, on_demand_billed_ms=0, window_s=MONTH, log_bytes=20 * 2**40)
    settings = LambdaCostSettings(logs={"retention": "30d"})
    bill = lambda_bill(logs, memory_mb=128, settings=settings)
    assert close(bill.monthly_breakdown["logs"], 7680.0)
    assert close(bill.monthly_breakdown["log_storage"], 20480 * 720 / 730 * 0.03)


def test_lambda_egress_and_response_streaming():
    """1M responses of 10 MiB: 10,000,000 MiB = 9,765.625 GB out: (9,765.625 - 100) x $0.09 =
    $869.90625; streamed, 4 MiB of each beyond 6 MiB: 3,906.25 GB x $0.008 = $31.25."""
    n = 1_000_000
    usage = LambdaUsage(
        requests=n,
        on_demand_billed_ms=0,
        window_s=MONTH,
        response_bytes=n * 10 * 2**20,
        streamed_excess_bytes=n * 4 * 2**20,
    )
    bill = lambda_bill(usage, memory_mb=128, settings=LambdaCostSettings(response_streaming=True))
    assert close(bill.monthly_breakdown["data_transfer_out"], (9765.625 - 100) * 0.09)
    assert close(bill.monthly_breakdown["response_streaming"], 3906.25 * 0.008)
    plain = lambda_bill(usage, memory_mb=128)
    assert "response_streaming" not in plain.monthly_breakdown


# --- Workers and Fastly below and above their minimums -------------------------------------------


def test_workers_below_and_above_the_minimum():
    # below: 1M requests, 1M CPU-ms -> the $5 minimum; above: 20M, 100M -> 5 + 3 + 1.40 = $9.40
    low = wasm_bill(WasmUsage(requests=1_000_000, cpu_ms_total=1e6, window_s=MONTH))
    assert close(low.monthly_usd, 5.0)
    high = wasm_bill(WasmUsage(requests=20_000_000, cpu_ms_total=100e6, window_s=MONTH))
    assert close(high.monthly_usd, 9.40)


def test_fastly_below_and_above_the_minimum():
    """below: 20M requests, 100M vCPU-ms = (10M x $0.50/M) + 0 = $5 of usage -> $50 minimum ($45
    shortfall); above: 200M requests, 1B vCPU-ms = 190 x 0.50 + 900 x 0.05 = $140, no shortfall."""
    low = wasm_bill(
        WasmUsage(requests=20_000_000, cpu_ms_total=100e6, window_s=MONTH), "fastly-compute"
    )
    assert close(low.monthly_breakdown["fastly_minimum_shortfall"], 45.0)
    assert close(low.monthly_usd, 50.0)
    high = wasm_bill(
        WasmUsage(requests=200_000_000, cpu_ms_total=1e9, window_s=MONTH), "fastly-compute"
    )
    assert high.monthly_breakdown.get("fastly_minimum_shortfall", 0.0) == 0.0
    assert close(high.monthly_usd, 140.0)


# --- operating cost and the month, from a scenario -----------------------------------------------


def scen(platform: dict, **top: object):
    data = {
        "name": "t",
        "duration": "1h",
        "replications": 1,
        "seed": 3,
        "workload": {
            "arrivals": [{"steady": {"rate": "10/s", "spacing": "uniform"}}],
            "service": {"duration": "50ms", "cpu_bound": 0, "response_size": "20KB"},
        },
        "platforms": [platform],
    }
    data.update(top)
    return make_scenario(data)


def test_ops_profile_is_apart_from_the_cloud_bill():
    """The kubernetes-team profile adds up to the article's $16,500 a month, as operating cost."""
    platform = {
        "name": "w",
        "type": "wasm",
        "ops_profile": "kubernetes-team",
        "ops": {"ci_cd": 900},
    }
    bill = run_platform(scen(platform)).bill
    assert close(bill.operating_monthly_usd, 16_500 - 500 + 900)  # own ci_cd replaces the profile's
    assert "an article's estimate" in bill.sources["operating_profile"]
    assert "ci_cd" not in bill.breakdown
    serverless = run_platform(scen({**platform, "ops_profile": "serverless-team", "ops": {}})).bill
    assert close(serverless.operating_monthly_usd, 5000.0)
    with pytest.raises(InputError, match="ops_profile"):
        scen({**platform, "ops_profile": "nope"})


def test_month_setting_and_response_size_from_a_scenario():
    """36,000 responses of 20 kB (decimal) in an hour; Lambda 128 MB, 50 ms: a 730-h month bills
    730 x the hour's usage, a 720-h month 720 x; egress 36,000 x 20 kB x 730 = 525.6 GB decimal =
    489.5 GB binary -> (489.5 - 100) x $0.09."""
    fn = {"name": "fn", "type": "lambda", "memory": 128, "init_billing": False}
    run730 = run_platform(scen(fn))
    run720 = run_platform(scen(fn, month="720h"))
    assert run730.bill.month_s == 730 * H and run720.bill.month_s == 720 * H
    assert close(
        run730.bill.monthly_breakdown["requests"] / 730,
        run720.bill.monthly_breakdown["requests"] / 720,
    )
    gb = 36_000 * 20e3 * 730 / GIB
    assert close(run730.bill.monthly_breakdown["data_transfer_out"], (gb - 100) * 0.09)
    # the window's own cost of a line without tiers is the same whatever the month
    assert close(run730.bill.breakdown["duration"], run720.bill.breakdown["duration"])


def test_gke_free_tier_reachable_from_a_scenario():
    gke = {
        "name": "gke",
        "type": "kubernetes",
        "replicas": 1,
        "cluster": {"mode": "autopilot"},
        "load_balancer": "none",
        "free_tier": True,
    }
    bill = run_platform(scen(gke)).bill
    assert close(bill.monthly_breakdown["control_plane"], 0.0)
    assert "74.40" in bill.sources["control_plane"]


# --- account-level tiers and free allowances -----------------------------------------------------


def test_duration_tiers_apply_to_the_account_not_the_function():
    """1B GB-s a month of this function, 6B of others in the account (same region, x86): the
    account's 7B cost 6B x $0.0000166667 + 1B x $0.000015 = $115,000.20, this function pays 1/7 =
    $16,428.6 (alone it would pay 1B x $0.0000166667 = $16,666.70)."""
    usage = LambdaUsage(requests=0, on_demand_billed_ms=1e9 * 1000, window_s=MONTH)
    alone = lambda_bill(usage, memory_mb=1024)
    assert close(alone.monthly_breakdown["duration"], 16_666.7)
    settings = LambdaCostSettings(account_usage={"gb_seconds": 6e9})
    shared = lambda_bill(usage, memory_mb=1024, settings=settings)
    assert close(shared.monthly_breakdown["duration"], 115_000.2 / 7)
    assert any("account" in n for n in shared.notes)


def test_free_tier_is_shared_by_the_functions_of_an_account():
    """Two functions of 300,000 GB-s and 800,000 requests a month share 400,000 free GB-s and 1M
    free requests: (600,000 - 400,000) x $0.0000166667 / 2 = $1.66667 each for duration and
    (1.6M - 1M) x $0.20/M / 2 = $0.06 each for requests."""
    usage = LambdaUsage(requests=800_000, on_demand_billed_ms=300_000 * 1000, window_s=MONTH)
    settings = LambdaCostSettings(account_usage={"gb_seconds": 300_000, "requests": 800_000})
    bill = lambda_bill(usage, memory_mb=1024, free_tier=True, settings=settings)
    assert close(bill.monthly_breakdown["duration"], 200_000 * 0.0000166667 / 2)
    assert close(bill.monthly_breakdown["requests"], 0.06)


def test_platforms_sharing_an_account_in_a_scenario():
    """Two Lambda platforms with `account: main` and the free tier: n requests in the hour each,
    n x 730 a month; the account's 1M free requests are shared: each pays
    (2 n x 730 - 1M) x $0.20/M / 2. Without `account` each gets its own 1M."""
    fn = {"type": "lambda", "memory": 128, "init_billing": False, "free_tier": True}
    data = {
        "name": "t",
        "duration": "1h",
        "replications": 1,
        "seed": 3,
        "workload": {
            "arrivals": [{"steady": {"rate": "10/s", "spacing": "uniform"}}],
            "service": {"duration": "50ms", "cpu_bound": 0},
        },
        "platforms": [
            {**fn, "name": "a", "account": "main"},
            {**fn, "name": "b", "account": "main"},
        ],
    }
    from sim.simulate import simulate

    runs = simulate(make_scenario(data), ROOT, workers=1)
    n = runs[0].bill.requests
    for run in runs:
        assert close(run.bill.monthly_breakdown["requests"], (2 * n * 730 - 1e6) * 0.20 / 1e6 / 2)
    data["platforms"] = [{**fn, "name": "a"}, {**fn, "name": "b"}]
    for run in simulate(make_scenario(data), ROOT, workers=1):
        assert close(run.bill.monthly_breakdown["requests"], (n * 730 - 1e6) * 0.20 / 1e6)


def test_a_commitment_without_a_rate_is_refused_at_load_time():
    eks = {
        "name": "eks",
        "type": "kubernetes",
        "replicas": 1,
        "cluster": {"node": "c5.xlarge"},
        "cost": {"commitment": {"plan": "compute-savings-plan"}},
    }
    with pytest.raises(InputError, match=r"give `commitment\.discount`") as err:
        scen(eks)
    assert "cost" in str(err.value)
    scen({**eks, "cost": {"commitment": {"plan": "compute-savings-plan", "discount": "30%"}}})
    lam = {"name": "fn", "type": "lambda", "cost": {"commitment": {"plan": "reserved-instance"}}}
    with pytest.raises(InputError, match="compute-savings-plan only"):
        scen(lam)


def test_a_per_month_rate_means_the_billing_month():
    """`50M/month` is 50M requests in the scenario's billing month: 50e6 / (730 x 3600) =
    19.0259/s by default, 50e6 / (720 x 3600) = 19.2901/s with `month: 720h`. An hour of evenly
    spaced arrivals then bills 50M requests x $0.20/M = $10.00 a month in either convention (the
    30-day reading of `/month` billed 50M x 730/720 = 50.69M requests = $10.14 in a 730-h month).
    One request more or less in the hour moves the month by 730 x $0.0000002 = $0.000146."""
    fn = {"name": "fn", "type": "lambda", "memory": 128, "init_billing": False}
    workload = {
        "arrivals": [{"steady": {"rate": "50M/month", "spacing": "uniform"}}],
        "service": {"duration": "50ms", "cpu_bound": 0},
    }
    for month, hours in ((None, 730), ("720h", 720)):
        top = {"month": month} if month else {}
        sc = scen(fn, workload=workload, **top)
        assert close(sc.workload.arrivals[0].steady.rate, 50e6 / (hours * H))
        bill = run_platform(sc).bill
        assert abs(bill.monthly_breakdown["requests"] - 10.00) < 2 * hours * 0.2e-6
    per_day = {**workload, "arrivals": [{"steady": {"rate": "3M/day"}}]}
    assert close(scen(fn, workload=per_day).workload.arrivals[0].steady.rate, 3e6 / 86400)


def test_a_month_outside_a_scenario_is_the_730_h_billing_month():
    """A rate parsed without a scenario (the sweep's numbers, an HPA spec validated alone, a
    crossover volume) means the same 730-h month the bills use (prices.yaml billing.month_hours),
    not 30 days: `730/month` is one per hour, 1/3600 = 0.000277778/s (30 days gave 0.000281636)."""
    from sim import units
    from sim.platforms.autoscaling.hpa import HPASpec
    from sim.pricing import price
    from sim.studies.crossover import parse_volume_range
    from sim.studies.sweep import parse_param

    assert price("billing.month_hours").rate * H == units.BILLING_MONTH_S
    assert close(units.parse_rate("730/month"), 1 / H)
    assert close(units.parse_rate("730/mo"), 1 / H)
    assert close(units.parse_rate("720/month", month_s=720 * H), 1 / H)
    spec = HPASpec.model_validate({"max_replicas": 5, "metric": "rps", "target": "7.3M/month"})
    assert close(spec.target, 7.3e6 / MONTH)  # 2.7778/s
    assert parse_param("k=730/month,1460/month").numeric == pytest.approx((1 / H, 2 / H))
    assert parse_param("k=730/month", month_s=720 * H).numeric == pytest.approx((730 / (720 * H),))
    lo, hi = parse_volume_range("100k/month..500M/month")
    assert close(lo, 1e5) and close(hi, 5e8)


def test_a_scenarios_month_sets_its_hpa_rps_target_and_its_sweep_numbers(tmp_path):
    """In a scenario, an HPA rps target per month follows the scenario's `month:`: 7.2M/month is
    7.2e6 / (720 x 3600) = 2.7778/s with `month: 720h`, 7.2e6 / (730 x 3600) = 2.7397/s without;
    a sweep over `/month` values reads them on the same month."""
    import yaml

    from sim.studies.sweep import Base, parse_param

    kube = {
        "name": "k",
        "type": "kubernetes",
        "load_balancer": "none",
        "hpa": {"min_replicas": 1, "max_replicas": 4, "metric": "rps", "target": "7.2M/month"},
    }
    for month, hours in ((None, 730), ("720h", 720)):
        top = {"month": month} if month else {}
        sc = scen(kube, **top)
        assert close(sc.platforms[0].hpa.target, 7.2e6 / (hours * H))
        data = {"name": "t", **top, "workload": {"arrivals": [{"steady": {"rate": "1/s"}}]}}
        path = tmp_path / f"s{hours}.yaml"
        path.write_text(yaml.safe_dump({**data, "platforms": [kube]}))
        base = Base.load(path)
        assert base.month_s == hours * H
        p = parse_param("workload.arrivals.0.steady.rate=7.2M/month", month_s=base.month_s)
        assert p.numeric == pytest.approx((7.2e6 / (hours * H),))
