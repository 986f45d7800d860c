"""Azure Container Apps (`type: container_apps`): ACA's scale settings run by KEDA, the idle-rate
meter, and the Consumption bill with the free grant and a Dedicated profile to the cent."""

from __future__ import annotations

from typing import Any

import pytest

from sim.platforms.container_apps_spec import ContainerAppsSpec
from sim.pricing.container_apps import ContainerAppsUsage, container_apps_bill

from conftest import make_scenario, run_platform

MONTH_S = 730 * 3600.0


def scenario(platform: dict[str, Any], workload: dict[str, Any], duration: str = "1000s") -> Any:
    return make_scenario(
        {
            "name": "aca",
            "duration": duration,
            "warmup": "0s",
            "replications": 1,
            "seed": 4,
            "workload": workload,
            "platforms": [
                {"name": "aca", "type": "container_apps", "ingress_latency": "0s", **platform}
            ],
        }
    )


def spaced(rate: str, service: str) -> dict[str, Any]:
    return {
        "arrivals": [{"steady": {"rate": rate, "spacing": "uniform"}}],
        "service": {"duration": service, "cpu_bound": 0},
    }


def test_defaults_are_azures():
    spec = ContainerAppsSpec.model_validate({"name": "a", "type": "container_apps"})
    k = spec.kubernetes_view().keda
    assert k is not None
    assert (k.minReplicaCount, k.maxReplicaCount, k.pollingInterval, k.cooldownPeriod) == (
        0,
        10,
        30.0,
        300.0,
    )
    (t,) = k.triggers
    assert t.type == "http" and t.metadata.targetValue == 10  # concurrentRequests 10
    assert t.metadata.scalingMetric == "requestRate" and t.metadata.window == 15.0


def test_custom_rule_is_a_keda_trigger_and_bad_ones_are_named():
    spec = ContainerAppsSpec.model_validate(
        {
            "name": "a",
            "type": "container_apps",
            "scale": {
                "minReplicas": 1,
                "rules": [
                    {"name": "q", "custom": {"type": "queue", "metadata": {"lagThreshold": 5}}}
                ],
            },
        }
    )
    assert spec.kubernetes_view().keda.triggers[0].type == "queue"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"scale\.rules\.0"):
        ContainerAppsSpec.model_validate(
            {"name": "a", "type": "container_apps", "scale": {"rules": [{"custom": {"type": "x"}}]}}
        )


def test_http_rule_replicas_and_scale_to_zero_by_hand():
    """33 requests/s, concurrentRequests 10: requests in 15 s / 15 = 33 (+- 1.5) -> the HPA wants
    ceil(33 / 10) = 4 replicas (5 would need 40/s in a window: 4.7 sigma). Traffic stops at
    600 s: the last poll that sees a request in its 15 s window is at 600 s; KEDA scales to zero
    when lastActiveTime + cooldownPeriod is strictly before now (time.Before in
    pkg/scaling/executor/scale_scaledobjects.go): not at the 900 s poll, at the next, 930 s."""
    sc = scenario(
        {"concurrency": 50, "startup": "2s"},
        {
            "arrivals": [
                {
                    "phases": [
                        {"duration": "600s", "rate": "33/s"},
                        {"duration": "600s", "rate": "0/s"},
                    ]
                }
            ],
            "service": {"duration": "100ms", "cpu_bound": 0},
        },
        duration="1200s",
    )
    run = run_platform(sc)
    inst = run.timeline["instances"]
    t = run.timeline.get("time")
    assert max(inst) == 4
    zero = [d for d in run.decisions if d.after == 0 and d.before > 0]
    assert zero and zero[0].time_s == pytest.approx(930.0)
    assert t is None or len(t) == len(inst)


def test_idle_rate_meter_by_hand():
    """minReplicas = maxReplicas = 1 and a 1 s request every 10 s: the replica is active 1 s in
    10 and idle (at its minimum, no request) the rest; Consumption bills both by hand."""
    sc = scenario({"scale": {"minReplicas": 1, "maxReplicas": 1}}, spaced("0.1/s", "1s"))
    run = run_platform(sc)
    n = run.stats.outcomes["ok"]
    assert n in (99, 100)
    scale = MONTH_S / 1000.0
    b = run.bill.monthly_breakdown
    active, idle = n * 1.0 * scale, (1000.0 - n) * scale
    assert b["cpu"] == pytest.approx(active * 0.5 * 0.000024)
    assert b["memory"] == pytest.approx(active * 1.0 * 0.000003)
    assert b["idle_cpu"] == pytest.approx(idle * 0.5 * 0.000003)
    assert b["idle_memory"] == pytest.approx(idle * 1.0 * 0.000003)


def test_consumption_bill_with_the_free_grant_by_hand():
    """A month: 2 replicas of 0.5 vCPU / 1 GiB, 3,000,000 active and 1,000,000 idle
    replica-seconds, 5M requests, with the free grant (taken off active usage first)."""
    u = ContainerAppsUsage(
        window_s=MONTH_S,
        requests=5_000_000,
        vcpu=0.5,
        memory_gib=1.0,
        active_replica_s=3_000_000.0,
        idle_replica_s=1_000_000.0,
    )
    b = container_apps_bill(u, free_tier=True)
    # vCPU-s: active 1.5M - 180k free = 1.32M x 0.000024 = 31.68; idle 0.5M x 0.000003 = 1.50
    # GiB-s: active 3M - 360k = 2.64M x 0.000003 = 7.92; idle 1M x 0.000003 = 3.00
    # requests: (5M - 2M) x 0.40 / M = 1.20
    assert b.monthly_breakdown == pytest.approx(
        {
            "cpu": 31.68,
            "idle_cpu": 1.50,
            "memory": 7.92,
            "idle_memory": 3.00,
            "requests": 1.20,
        }
    )
    assert round(b.monthly_usd, 2) == 45.30
    assert round(container_apps_bill(u).monthly_usd, 2) == round(36.0 + 1.5 + 9.0 + 3.0 + 2.0, 2)


def test_dedicated_profile_bill_by_hand():
    """Dedicated: one D4 (4 vCPU, 16 GiB) all month = 730 h x (4 x 0.0571 + 16 x 0.0050) =
    $225.132, + management 730 h x $0.10 = $73.00."""
    u = ContainerAppsUsage(
        window_s=MONTH_S,
        requests=1,
        vcpu=0.5,
        memory_gib=1.0,
        profile_instance_s=MONTH_S,
        profile_vcpu=4.0,
        profile_memory_gib=16.0,
    )
    b = container_apps_bill(u, "dedicated")
    assert round(b.monthly_usd, 2) == round(730 * (4 * 0.0571 + 16 * 0.0050) + 73.0, 2)
