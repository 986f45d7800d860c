"""Hand-computed bills. Every expected value is written out as arithmetic on the published rates
(facts.md section 1), so a reader can check it without running the code."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from sim.errors import InputError
from sim.pricing import (
    CustomWasmPricing,
    KubernetesUsage,
    LambdaCostSettings,
    LambdaUsage,
    LoadBalancerSettings,
    NodeUsage,
    OpsCosts,
    WasmUsage,
    instance_type,
    kubernetes_bill,
    lambda_bill,
    parse_bytes,
    price,
    price_table,
    tiers,
    wasm_bill,
)
from sim.pricing.lambda_ import pc_environment_seconds

DAY = 86_400.0
MONTH = 730 * 3600.0  # a billing month as AWS's and Google's calculators count it (sim's default)
HOUR = 3600.0


def cents(x: float) -> float:
    return round(x, 2)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --- Lambda ----------------------------------------------------------------------------------

# 20 req/s uniform for 1 day, 500 ms each, 1024 MB: 1,728,000 requests, 864,000 GB-s.
REQS_DAY = 20 * 86_400
assert REQS_DAY == 1_728_000


def day_usage(**kw) -> LambdaUsage:
    base = dict(requests=REQS_DAY, on_demand_billed_ms=REQS_DAY * 500.0, window_s=DAY)
    return LambdaUsage(**{**base, **kw})


def test_lambda_day_x86_no_gateway():
    bill = lambda_bill(day_usage(), memory_mb=1024)
    # requests: 1,728,000 * $0.20 / 1M = $0.3456
    assert close(bill.breakdown["requests"], 1_728_000 * 0.20 / 1e6)
    assert cents(bill.breakdown["requests"]) == 0.35
    # duration: 864,000 GB-s * $0.0000166667 = $14.4000288 (monthly 25.92M GB-s: tier 1 only)
    assert close(bill.breakdown["duration"], 864_000 * 0.0000166667)
    assert cents(bill.breakdown["duration"]) == 14.40
    assert close(bill.total_usd, 0.3456 + 14.4000288)
    # a 730-h billing month is 730 / 24 days of this window
    assert close(bill.monthly_usd, 730 / 24 * (0.3456 + 14.4000288))
    assert close(bill.total_usd, sum(bill.breakdown.values()))
    assert close(bill.per_million_usd, (0.3456 + 14.4000288) / 1.728)
    assert "api_gateway" not in bill.breakdown
    assert bill.breakdown["init"] == 0.0
    assert bill.operating_monthly_usd == 0.0
    assert "[S]" in bill.sources["duration"]
    assert bill.price_date == "2025-08-01"  # INIT-billing rule (AWS blog) is the oldest date used


def test_lambda_day_arm64():
    bill = lambda_bill(day_usage(), memory_mb=1024, architecture="arm64")
    # 864,000 GB-s * $0.0000133334 = $11.5200576
    assert close(bill.breakdown["duration"], 864_000 * 0.0000133334)
    assert cents(bill.breakdown["duration"]) == 11.52
    assert close(bill.breakdown["requests"], 0.3456)


def test_lambda_day_memory_scales_gb():
    bill = lambda_bill(day_usage(), memory_mb=512)
    # 1,728,000 * 0.5 s * 0.5 GB = 432,000 GB-s * $0.0000166667 = $7.2000144
    assert close(bill.breakdown["duration"], 432_000 * 0.0000166667)


def test_lambda_http_and_rest_api():
    http = lambda_bill(day_usage(), memory_mb=1024, api_gateway="http")
    # 1,728,000 * $1.00 / 1M = $1.728 (monthly 51.84M < 300M: first tier)
    assert close(http.breakdown["api_gateway"], 1.728)
    assert close(http.total_usd, 0.3456 + 14.4000288 + 1.728)
    rest = lambda_bill(day_usage(), memory_mb=1024, api_gateway="rest")
    # 1,728,000 * $3.50 / 1M = $6.048
    assert close(rest.breakdown["api_gateway"], 6.048)


def test_lambda_gateway_counts_throttled_requests():
    # 1,800,000 reached API Gateway, 72,000 were throttled: Lambda bills 1,728,000 invocations.
    bill = lambda_bill(day_usage(gateway_requests=1_800_000), memory_mb=1024, api_gateway="http")
    assert close(bill.breakdown["api_gateway"], 1_800_000 * 1.00 / 1e6)
    assert close(bill.breakdown["requests"], 1_728_000 * 0.20 / 1e6)


def test_http_api_metered_in_512kb_units():
    big = LambdaCostSettings(request_size="600KiB")  # 600 KiB -> 2 units of 512 KiB
    bill = lambda_bill(day_usage(), memory_mb=1024, api_gateway="http", settings=big)
    assert close(bill.breakdown["api_gateway"], 2 * 1.728)
    exact = LambdaCostSettings(request_size="512KiB")  # exactly one unit
    bill = lambda_bill(day_usage(), memory_mb=1024, api_gateway="http", settings=exact)
    assert close(bill.breakdown["api_gateway"], 1.728)


def test_provisioned_concurrency_10_envs_one_hour():
    # 10 envs configured 00:00-01:00 of a 1-day window, 1024 MB:
    # capacity 10 * 3600 s * 1 GB = 36,000 GB-s * $0.0000041667 = $0.1500012
    # 1 env-hour of work served on PC: 3,600,000 ms -> 3,600 GB-s * $0.0000097222 = $0.03499992
    usage = LambdaUsage(
        requests=7_200,
        on_demand_billed_ms=0.0,
        pc_billed_ms=3_600_000.0,
        pc_segments=[(0.0, HOUR, 10)],
        window_s=DAY,
    )
    bill = lambda_bill(usage, memory_mb=1024)
    assert close(bill.breakdown["provisioned_concurrency"], 36_000 * 0.0000041667)
    assert cents(bill.breakdown["provisioned_concurrency"]) == 0.15
    assert close(bill.breakdown["provisioned_duration"], 3_600 * 0.0000097222)
    assert close(bill.breakdown["requests"], 7_200 * 0.20 / 1e6)
    assert bill.breakdown["duration"] == 0.0


def test_pc_rounded_up_to_five_minutes_per_enablement_period():
    # 61 min enabled, disabled inside the window -> billed 65 min: 10 * 3900 s * 1 GB * rate
    usage = LambdaUsage(
        requests=0, on_demand_billed_ms=0.0, pc_segments=[(0.0, 3660.0, 10)], window_s=DAY
    )
    bill = lambda_bill(usage, memory_mb=1024)
    assert close(bill.breakdown["provisioned_concurrency"], 10 * 3900 * 0.0000041667)
    # exactly 60 min is not rounded further
    assert close(pc_environment_seconds([(0.0, 3600.0, 10)], DAY), 36_000)
    # levels changing inside one period: 5*60 + 8*60 + 6*80 = 1,260 env-s over 200 s;
    # rounded to 300 s, the extra 100 s billed at the last level (6): 1,260 + 600 = 1,860
    segs = [(0.0, 60.0, 5), (60.0, 120.0, 8), (120.0, 200.0, 6)]
    assert close(pc_environment_seconds(segs, HOUR), 1_860)
    # two separate periods of 100 s at 2 envs: each rounded to 300 s -> 2 * 300 * 2 = 1,200
    assert close(pc_environment_seconds([(0.0, 100.0, 2), (200.0, 300.0, 2)], HOUR), 1_200)
    # a zero level ends a period: same as above
    segs = [(0.0, 100.0, 2), (100.0, 200.0, 0), (200.0, 300.0, 2)]
    assert close(pc_environment_seconds(segs, HOUR), 1_200)
    # still enabled at the window's end: not rounded (10 min * 4 envs = 2,400 env-s)
    assert close(pc_environment_seconds([(3000.0, 3600.0, 4)], HOUR), 2_400)


def test_init_billing_on_and_off():
    # 1,000 cold starts * 250 ms INIT = 250,000 ms at 1 GB = 250 GB-s * $0.0000166667 = $0.004166675
    usage = day_usage(init_billed_ms=1_000 * 250.0)
    on = lambda_bill(usage, memory_mb=1024, init_billing=True)
    assert close(on.breakdown["init"], 250 * 0.0000166667)
    assert close(on.breakdown["duration"], 864_000 * 0.0000166667)
    off = lambda_bill(usage, memory_mb=1024, init_billing=False)
    assert "init" not in off.breakdown
    assert close(off.total_usd, 0.3456 + 14.4000288)


def test_free_tier_month_window():
    # A 30-day window is one month (scale 1). 3M requests * 100 ms * 0.5 GB = 150,000 GB-s
    # < 400,000 free -> duration $0; requests (3M - 1M) * $0.20/1M = $0.40
    usage = LambdaUsage(requests=3_000_000, on_demand_billed_ms=3e6 * 100, window_s=MONTH)
    bill = lambda_bill(usage, memory_mb=512, free_tier=True)
    assert close(bill.breakdown["duration"], 0.0)
    assert close(bill.breakdown["requests"], 0.40)
    # 10M requests * 200 ms * 1 GB = 2,000,000 GB-s -> (2,000,000 - 400,000) * $0.0000166667
    # = $26.66672; requests (10M - 1M) * $0.20/1M = $1.80
    usage = LambdaUsage(requests=10_000_000, on_demand_billed_ms=1e7 * 200, window_s=MONTH)
    bill = lambda_bill(usage, memory_mb=1024, free_tier=True)
    assert close(bill.breakdown["duration"], 1_600_000 * 0.0000166667)
    assert close(bill.breakdown["requests"], 1.80)
    assert close(lambda_bill(usage, memory_mb=1024).breakdown["requests"], 2.00)  # default off


def test_free_tier_applies_per_month_not_per_window():
    # 1-day window with 100,000 requests -> 3.041667M per 730-h month; (3.041667M - 1M) * $0.20/1M
    # = $0.408333 a month, so the day costs $0.408333 / (730 / 24).
    usage = LambdaUsage(requests=100_000, on_demand_billed_ms=0.0, window_s=DAY)
    bill = lambda_bill(usage, memory_mb=128, free_tier=True)
    assert close(bill.monthly_breakdown["requests"], (100_000 * 730 / 24 - 1e6) * 0.20 / 1e6)
    assert close(bill.breakdown["requests"], (100_000 - 1e6 * 24 / 730) * 0.20 / 1e6)
    # the 30-day convention on request: (3M - 1M) * $0.20/1M = $0.40, the day $0.40 / 30
    day30 = lambda_bill(usage, memory_mb=128, free_tier=True, month_s=30 * DAY)
    assert close(day30.monthly_breakdown["requests"], 0.40)
    assert close(day30.breakdown["requests"], 0.40 / 30)


def test_free_tier_not_for_pc_functions():
    usage = LambdaUsage(
        requests=1_000, on_demand_billed_ms=1_000.0, pc_segments=[(0, HOUR, 1)], window_s=MONTH
    )
    bill = lambda_bill(usage, memory_mb=1024, free_tier=True)
    assert close(bill.breakdown["requests"], 1_000 * 0.20 / 1e6)
    assert any("provisioned concurrency" in n for n in bill.notes)


def test_duration_tier_boundaries():
    # a one-month (730 h) window at 1 GB; ms = GB-s * 1000.
    def x86(gbs: float, arch: str = "x86_64") -> float:
        usage = LambdaUsage(requests=0, on_demand_billed_ms=gbs * 1000, window_s=MONTH)
        return lambda_bill(usage, memory_mb=1024, architecture=arch).breakdown["duration"]

    # 7B GB-s: 6B * $0.0000166667 + 1B * $0.0000150000 = 100,000.2 + 15,000 = $115,000.20
    assert close(x86(7e9), 6e9 * 0.0000166667 + 1e9 * 0.000015)
    assert cents(x86(7e9)) == 115_000.20
    # 16B GB-s: + 9B * $0.000015 + 1B * $0.0000133334 = 100,000.2 + 135,000 + 13,333.4
    assert close(x86(16e9), 100_000.2 + 135_000 + 13_333.4)
    # arm64 8B GB-s: 7.5B * $0.0000133334 + 0.5B * $0.0000120001 = 100,000.5 + 6,000.05
    assert close(x86(8e9, "arm64"), 100_000.5 + 6_000.05)
    # tiers apply to the month: a 1-day window with 7B/(730/24) GB-s is 7B GB-s in a 730-h month
    # and costs 115,000.20 / (730/24)
    usage = LambdaUsage(requests=0, on_demand_billed_ms=7e9 * 24 / 730 * 1000, window_s=DAY)
    day = lambda_bill(usage, memory_mb=1024)
    assert close(day.breakdown["duration"], 115_000.2 * 24 / 730)


def test_api_gateway_tier_boundaries():
    def gw(kind: str, monthly_requests: float) -> float:
        usage = LambdaUsage(requests=int(monthly_requests), on_demand_billed_ms=0, window_s=MONTH)
        return lambda_bill(usage, memory_mb=128, api_gateway=kind).breakdown["api_gateway"]

    # HTTP 400M: 300M * $1.00/M + 100M * $0.90/M = $390
    assert close(gw("http", 4e8), 300 + 90)
    # REST 400M: 333M * $3.50/M + 67M * $2.80/M = 1,165.5 + 187.6 = $1,353.10
    assert close(gw("rest", 4e8), 1_165.5 + 187.6)
    # REST 1.5B: 1,165.5 + 667M * $2.80/M + 500M * $2.38/M = 1,165.5 + 1,867.6 + 1,190
    assert close(gw("rest", 1.5e9), 1_165.5 + 1_867.6 + 1_190)


def test_logs_and_nat():
    settings = LambdaCostSettings(
        logs={"bytes_per_request": "1KiB"}, nat={"enabled": True, "bytes_per_request": 0}
    )
    bill = lambda_bill(day_usage(), memory_mb=1024, settings=settings)
    # 1,728,000 * 1,024 B = 1,769,472,000 B / 2^30 = 1.64794921875 GB * $0.50 = $0.823974609375
    assert close(bill.breakdown["logs"], 1_728_000 * 1024 / 2**30 * 0.50)
    # NAT: 24 h * $0.045 = $1.08 (no data)
    assert close(bill.breakdown["nat"], 24 * 0.045)
    # measured NAT bytes given by the platform: + 2 GB * $0.045
    bill = lambda_bill(day_usage(nat_bytes=2 * 2**30), memory_mb=1024, settings=settings)
    assert close(bill.breakdown["nat"], 1.08 + 2 * 0.045)


def test_ephemeral_storage_above_512mb():
    settings = LambdaCostSettings(ephemeral_storage="1536Mi")
    bill = lambda_bill(day_usage(), memory_mb=1024, settings=settings)
    # 864,000 s of duration * (1536 - 512)/1024 GB = 864,000 GB-s * $0.0000000309 = $0.0266976
    assert close(bill.breakdown["ephemeral_storage"], 864_000 * 0.0000000309)
    assert "ephemeral_storage" not in lambda_bill(day_usage(), memory_mb=1024).breakdown


def test_lambda_settings_validation():
    s = LambdaCostSettings.model_validate({"logs": {"bytes_per_request": "2KB"}})
    assert s.logs.bytes_per_request == 2000
    with pytest.raises(ValidationError, match="bytes_per_requets"):
        LambdaCostSettings.model_validate({"logs": {"bytes_per_requets": 1}})
    with pytest.raises(ValidationError, match="size in bytes"):
        LambdaCostSettings.model_validate({"request_size": "lots"})
    with pytest.raises(ValidationError, match="512 to 10240"):
        LambdaCostSettings.model_validate({"ephemeral_storage": 100})
    with pytest.raises(InputError, match="architecture"):
        lambda_bill(day_usage(), memory_mb=1024, architecture="sparc")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="window"):
        lambda_bill(day_usage(window_s=0), memory_mb=1024)


def test_parse_bytes():
    assert parse_bytes("2KB") == 2000
    assert parse_bytes("512KiB") == 512 * 1024
    assert parse_bytes("512Ki") == 512 * 1024
    assert parse_bytes("1MB") == 1e6
    assert parse_bytes("1GiB") == 2**30
    assert parse_bytes(100) == 100
    with pytest.raises(ValueError):
        parse_bytes("1 parsec")


# --- Wasm ------------------------------------------------------------------------------------


def test_workers_20m_requests_5ms_cpu():
    # 20M requests/month at 5 ms CPU: $5 + (20M - 10M) * $0.30/1M + (100M - 30M) * $0.02/1M
    # = 5 + 3 + 1.4 = $9.40
    bill = wasm_bill(WasmUsage(requests=20_000_000, cpu_ms_total=100e6, window_s=MONTH))
    assert close(bill.monthly_usd, 5 + 3 + 1.4)
    assert cents(bill.total_usd) == 9.40
    assert close(bill.breakdown["workers_base"], 5.0)
    assert close(bill.breakdown["workers_requests"], 3.0)
    assert close(bill.breakdown["workers_cpu"], 1.4)
    # the same traffic over a 6-day window (1/5 of a 30-day month, `month: 720h`): 4M requests,
    # 20M CPU-ms -> $9.40 / 5
    six = wasm_bill(
        WasmUsage(requests=4_000_000, cpu_ms_total=20e6, window_s=6 * DAY), month_s=30 * DAY
    )
    assert close(six.monthly_usd, 9.40)
    assert close(six.total_usd, 9.40 / 5)
    # on the default 730-h month the 6 days are 6/30.4167 of it: 20.2778M requests, 101.389M CPU-ms
    # -> 5 + 10.2778 * 0.30 + 71.389 * 0.02 = $9.5111
    six730 = wasm_bill(WasmUsage(requests=4_000_000, cpu_ms_total=20e6, window_s=6 * DAY))
    m = 730 / 144
    expected = 5 + (4e6 * m - 10e6) * 0.30 / 1e6 + (20e6 * m - 30e6) * 0.02 / 1e6
    assert close(six730.monthly_usd, expected)
    assert cents(six730.monthly_usd) == 9.51


def test_workers_below_allowance_is_the_minimum():
    bill = wasm_bill(WasmUsage(requests=1_000_000, cpu_ms_total=1e6, window_s=MONTH))
    assert close(bill.total_usd, 5.00)
    assert bill.breakdown["workers_requests"] == 0 and bill.breakdown["workers_cpu"] == 0


def test_fastly_flagged_secondary():
    # 20M requests and 200M vCPU-ms: (20M - 10M) * $0.50/1M + (200M - 100M) * $0.05/1M = 5 + 5,
    # below Fastly's $50 monthly minimum: a $40 shortfall line, $50 in all.
    bill = wasm_bill(
        WasmUsage(requests=20_000_000, cpu_ms_total=200e6, window_s=MONTH), "fastly-compute"
    )
    # usage $10.00 is below Fastly's $50 monthly minimum: a $40 shortfall line makes it $50
    assert close(bill.breakdown["fastly_requests"] + bill.breakdown["fastly_cpu"], 10.0)
    assert close(bill.breakdown["fastly_minimum_shortfall"], 40.0)
    assert close(bill.total_usd, 50.0)
    assert "[S]" in bill.sources["fastly_requests"] and "range" in bill.sources["fastly_cpu"]
    assert "about-the-charges-on-your-bill" in bill.sources["fastly_minimum_shortfall"]


def test_fastly_above_the_minimum_has_no_shortfall():
    # 110M requests, 1.1B vCPU-ms: (110M - 10M) * 0.50/1M + (1100M - 100M) * 0.05/1M = 50 + 50
    bill = wasm_bill(
        WasmUsage(requests=110_000_000, cpu_ms_total=1.1e9, window_s=MONTH), "fastly-compute"
    )
    assert close(bill.total_usd, 100.0)
    assert bill.breakdown["fastly_minimum_shortfall"] == 0.0


def test_snapstart_cache_and_restore_by_hand():
    """AWS pricing page example (its 30-day month: 2,592,000 GB-s -> $3.90), over the 730-h
    billing month: 1 GB (1024 MB) version cached all month = 730 x 3600 = 2,628,000 GB-s x
    $0.0000015046 = $3.9540888 -> $3.95; 74,400 restores x 1 GB x $0.0001397998
    = $10.40110512 -> $10.40."""
    usage = LambdaUsage(
        requests=7_440_000,
        on_demand_billed_ms=0.0,
        window_s=MONTH,
        snapstart_restores=74_400,
        snapstart_cached_s=MONTH,
    )
    bill = lambda_bill(usage, memory_mb=1024)
    assert cents(bill.breakdown["snapstart_cache"]) == 3.95
    assert close(bill.breakdown["snapstart_cache"], 3.9540888)
    assert cents(bill.breakdown["snapstart_restore"]) == 10.40
    assert close(bill.breakdown["snapstart_restore"], 10.40110512)
    # A one-day window is a month of the same: the cache line is the same monthly figure.
    day = lambda_bill(
        LambdaUsage(requests=1, on_demand_billed_ms=0.0, window_s=DAY, snapstart_cached_s=DAY),
        memory_mb=1024,
    )
    assert close(day.monthly_breakdown["snapstart_cache"], 3.9540888)
    assert close(day.breakdown["snapstart_cache"], 86_400 * 0.0000015046)
    assert "snapstart_cache" not in lambda_bill(day_usage(), memory_mb=1024).breakdown


def test_custom_wasm_pricing():
    custom = CustomWasmPricing(
        monthly_base=20,
        per_million_requests=0.5,
        per_million_cpu_ms=0.1,
        included_requests="5M",
        included_cpu_ms="10M",
    )
    # 20 + (25M - 5M) * 0.5/1M + (50M - 10M) * 0.1/1M = 20 + 10 + 4
    bill = wasm_bill(
        WasmUsage(requests=25_000_000, cpu_ms_total=50e6, window_s=MONTH), "custom", custom
    )
    assert close(bill.total_usd, 34.0)
    with pytest.raises(InputError, match="custom"):
        wasm_bill(WasmUsage(requests=1, cpu_ms_total=1, window_s=MONTH), "custom")


# --- Kubernetes -------------------------------------------------------------------------------


def test_two_t3_medium_for_a_month_with_eks():
    nodes = [NodeUsage("t3.medium", 0.0, MONTH), NodeUsage("t3.medium", 0.0, MONTH)]
    usage = KubernetesUsage(nodes=nodes, requests=0, window_s=MONTH)
    bill = kubernetes_bill(
        usage, control_plane="eks", load_balancer=LoadBalancerSettings(type="none")
    )
    # 2 * $0.0416 * 730 h + $0.10 * 730 h = 60.736 + 73 = $133.736; + 2 x 20 GiB gp3 root
    # volumes x $0.08 = $3.20 (the default root volume)
    assert close(bill.breakdown["nodes"], 2 * 0.0416 * 730)
    assert close(bill.breakdown["control_plane"], 0.10 * 730)
    assert close(bill.breakdown["ebs"], 2 * 20 * 0.08)
    assert close(bill.total_usd, 60.736 + 73 + 3.20)
    assert bill.per_million_usd is None


def test_short_node_billed_60s_and_node_at_window_end():
    # a node alive 30 s inside a 1-h window is billed 60 s: 60/3600 * $0.0416
    usage = KubernetesUsage(nodes=[NodeUsage("t3.medium", 100.0, 130.0)], requests=0, window_s=HOUR)
    bill = kubernetes_bill(
        usage, control_plane="none", load_balancer=LoadBalancerSettings(type="none")
    )
    assert close(bill.breakdown["nodes"], 60 / 3600 * 0.0416)
    # still running at the window end: only its 10 s in the window
    usage = KubernetesUsage(nodes=[NodeUsage("t3.medium", 3590.0, HOUR)], requests=0, window_s=HOUR)
    bill = kubernetes_bill(usage, control_plane="none", load_balancer="none")
    assert close(bill.breakdown["nodes"], 10 / 3600 * 0.0416)


def test_autopilot_bills_pod_requests():
    # pods requesting 2 vCPU and 4 GiB for 30 days:
    # 2 * 730 * $0.0445 + 4 * 730 * $0.0049225 = 64.97 + 14.3737 = $79.3437; + GKE fee 0.10 * 730
    usage = KubernetesUsage(
        nodes=[NodeUsage("e2-standard-4", 0.0, MONTH)],  # ignored in Autopilot
        pod_cpu_seconds=2 * MONTH,
        pod_memory_gib_seconds=4 * MONTH,
        requests=0,
        window_s=MONTH,
    )
    lb_none = LoadBalancerSettings(type="none")
    bill = kubernetes_bill(usage, control_plane="gke", mode="autopilot", load_balancer=lb_none)
    assert close(bill.breakdown["autopilot_cpu"], 64.97)
    assert close(bill.breakdown["autopilot_memory"], 14.3737)
    assert close(bill.total_usd, 64.97 + 14.3737 + 73)
    assert "nodes" not in bill.breakdown
    free = kubernetes_bill(
        usage, control_plane="gke", mode="autopilot", load_balancer=lb_none, free_tier=True
    )
    # the $74.40 monthly credit covers the $73 fee
    assert close(free.breakdown["control_plane"], 0.0)
    with pytest.raises(InputError, match=r"cluster\.mode"):
        kubernetes_bill(usage, control_plane="eks", mode="autopilot")


def test_ops_reported_apart():
    usage = KubernetesUsage(nodes=[NodeUsage("m5.large", 0.0, DAY)], requests=0, window_s=DAY)
    lb_none = LoadBalancerSettings(type="none")
    bill = kubernetes_bill(
        usage,
        control_plane="eks-extended",
        load_balancer=lb_none,
        ops={"oncall": 2000.0, "monitoring": 150.0},
    )
    # cloud bill: 24 h * ($0.096 + $0.60) = $16.704 + a 20 GiB gp3 root volume for 24 of 730 h
    # (20 * $0.08 * 24 / 730 = $0.052603); ops never added to it
    assert close(bill.total_usd, 24 * (0.096 + 0.60) + 20 * 0.08 * 24 / 730)
    assert close(bill.operating_monthly_usd, 2150.0)
    assert close(bill.operating_usd, 2150.0 / (730 / 24))
    assert bill.operating_breakdown == {"oncall": 2000.0, "monitoring": 150.0}
    assert "oncall" not in bill.breakdown


def test_alb_hourly_and_lcu():
    # 20 req/s for 30 days, defaults: 1 new connection per request, 1 s each, 10 kB per request.
    # LCU dimensions: new conn 20/25 = 0.8; active 20*1/3000; bytes 20*10,000*3600 / 2^30
    # = 0.6706 GB/h; rules 0. Max = 0.8 LCU -> 0.8 * 730 h * $0.008 = $4.672; hourly 730 * $0.0225
    usage = KubernetesUsage(requests=20 * int(MONTH), window_s=MONTH)
    bill = kubernetes_bill(usage, control_plane="none")
    assert close(bill.breakdown["load_balancer"], 730 * 0.0225)
    assert close(bill.breakdown["load_balancer_lcu"], 0.8 * 730 * 0.008)
    # the ALB's two public IPv4 addresses: 2 * 730 h * $0.005
    assert close(bill.breakdown["public_ipv4"], 2 * 730 * 0.005)
    # with keep-alive (100 requests per connection) processed bytes dominate:
    lb = LoadBalancerSettings(requests_per_connection=100)
    bill = kubernetes_bill(usage, control_plane="none", load_balancer=lb)
    assert close(bill.breakdown["load_balancer_lcu"], 20 * 10_000 * 3600 / 2**30 * 730 * 0.008)


def test_instance_table_and_errors():
    c5 = instance_type("c5.xlarge")
    assert (c5.vcpu, c5.memory_gib, c5.hourly_usd) == (4, 8, 0.17)
    m5 = instance_type("m5.large")
    assert (m5.vcpu, m5.memory_gib, m5.hourly_usd) == (2, 8, 0.096)
    with pytest.raises(InputError, match=r"unknown node type 'm9.huge'.*t3\.medium"):
        instance_type("m9.huge")
    usage = KubernetesUsage(nodes=[NodeUsage("c5.xlarge", 0.0, DAY)], requests=1, window_s=DAY)
    assert kubernetes_bill(usage).price_date == "2020-06-18"


def test_kubernetes_settings_models():
    assert LoadBalancerSettings.model_validate("none").type == "none"
    lb = LoadBalancerSettings.model_validate(
        {"bytes_per_request": "4KB", "connection_duration": "30s"}
    )
    assert (lb.bytes_per_request, lb.connection_duration) == (4000, 30)
    with pytest.raises(ValidationError):
        LoadBalancerSettings.model_validate({"type": "nlb"})
    ops = TypeAdapter(OpsCosts).validate_python({"oncall": "2k", "tools": 99})
    assert ops == {"oncall": 2000, "tools": 99}
    with pytest.raises(ValidationError):
        TypeAdapter(OpsCosts).validate_python({"oncall": -1})


# --- the price table --------------------------------------------------------------------------


def test_every_rate_has_source_date_and_secondary_flags():
    rows = price_table()
    assert rows
    for row in rows:
        assert row["source"] and row["unit"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"])
    # facts.md marks these [S] ...
    for key in ("lambda.provisioned_concurrency.x86_64", "alb.lcu", "gke.autopilot.cpu"):
        assert price(key).secondary, key
    # ... and these primary
    for key in ("workers.standard.base", "eks.control_plane", "gke.cluster_fee"):
        assert not price(key).secondary, key
    assert [t.up_to for t in tiers("lambda.duration.x86_64")] == [6e9, 1.5e10, None]


def test_no_rate_literal_in_code():
    # One source of truth: distinctive rates from prices.yaml never appear in the package's code.
    code = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "sim").rglob("*.py"))
    for literal in ("0.0000166667", "0.0000041667", "0.0416", "0.0225", "0.0445", "0.0049225"):
        assert literal not in code, literal
