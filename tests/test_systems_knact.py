"""Knative and Azure Flex Consumption stations in a system (sim.systems.stations_knact): queueing
theory, a KPA scale-up sequence from knative/serving's formula, a Flex month bill by hand, pods on
the system's node pool, and bad input.

Expected values are computed by hand (prices from the provider pages cited in prices.yaml), never
from the simulator's own output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_systems import _bad, _k8s, _runs, _system, erlang_c_sojourn, t_ci
from test_systems_containers import _even


def _kn(name: str = "kn", **kw: Any) -> dict:
    pod = {"cpu": 1, "memory": "1Gi", "startup": "1s", **kw.pop("pod", {})}
    return {
        "name": name,
        "type": "knative",
        "ingress_latency": 0,
        "activator_latency": 0,
        "pod": pod,
        "cluster": {"control_plane": "gke", "mode": "autopilot"},
        **kw,
    }


def _flex(name: str = "flex", **kw: Any) -> dict:
    return {"name": name, "type": "azure_flex", **kw}


def test_knative_fixed_pods_called_synchronously_are_mmc() -> None:
    """`api` (a pod that only calls) -> `svc` on a Knative revision pinned at minScale = maxScale
    = 3 pods of containerConcurrency 1 (exponential 100 ms handlers, 15/s: rho = 0.5): svc is
    M/M/3, its mean sojourn Erlang C's W."""
    services = [
        {"name": "api", "entry": 1, "handler": "0s", "steps": [{"call": "svc", "timeout": "1h"}]},
        {"name": "svc", "handler": {"dist": "exponential", "mean": "100ms"}},
    ]
    kn = _kn(container_concurrency=1, min_scale=3, max_scale=3)
    data = _system(
        services,
        [_k8s("eks", 4, concurrency=100), kn],
        {"p": {"api": "eks", "svc": "kn"}},
        rate="15/s",
        duration="2h",
        replications=4,
    )
    runs = _runs(data, "p")
    w = erlang_c_sojourn(15.0, 0.1, 3)
    per_rep = [r.extra["system"]["services"]["svc"]["latency_ms"]["mean"] / 1e3 for r in runs]
    lo, hi = t_ci(per_rep)
    assert lo <= w <= hi, (w, lo, hi)
    assert all(r.extra["system"]["services"]["svc"]["instances_peak"] == 3.0 for r in runs)


def test_kpa_scale_up_from_the_stable_window_by_hand() -> None:
    """25 requests/s evenly spaced (the first at a in [0, 0.04)), each held exactly 1 s, on a
    revision at min_scale 2 (target 10, utilisation 100%, containerConcurrency 0: unlimited).
    knative/serving knative-v1.23.0 pkg/autoscaler/scaling/autoscaler.go: desired = ceil(window
    average / target), the average over the buckets since the first write (aggregation/
    bucketing.go WindowAverage); panic when ceil(panic average / target) / ready >= 2.
    The stat of second 1 is the mean concurrency in (0, 1]: sum(1 - a - k/25, k < 25) = 13 - 25a;
    every later second 25 (periodic arrivals, 1 s each). Tick at 2 s: (13 - 25a + 25) / 2 <= 19
    -> ceil(1.9) = 2 (no change); tick at 4 s: (13 - 25a + 75) / 4 >= 21.75 -> 3, panic ratio
    3 / 2 = 1.5 < 2: stable mode 2 -> 3. Afterwards 25 / 10 -> 3: no more decisions."""
    services = [{"name": "api", "entry": 1, "handler": "1s", "cpu_bound": 0}]
    kn = _kn(min_scale=2, target=10, target_utilization_percentage=100, target_burst_capacity=0)
    run = _even(services, [kn], {"api": "kn"}, "2m", "25/s")
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "api:kpa"]
    assert steps == [(4.0, 2, 3)], steps
    assert run.extra["system"]["services"]["api"]["instances_peak"] == 3.0


def test_knative_scales_from_zero_through_the_activator() -> None:
    """min_scale 0, initial_scale 0 (allow_zero_initial_scale): `api` calls `svc` at 0.5 s and
    finds no pod; the activator's stat of 1 pokes the KPA (multiscaler.go Poke): ceil(1 / (100 x
    0.7)) = 1 pod at once (the decision row at the arrival's time), ready 1 s later. The call pays
    the activator's 5 ms hop (arrives at 0.505 s), waits for the pod (1.505 s) and works 10 ms:
    `svc` sees 1,010 ms, `api` 1,015 ms."""
    services = [
        {"name": "api", "entry": 1, "handler": "0s", "steps": [{"call": "svc", "timeout": "1h"}]},
        {"name": "svc", "handler": "10ms", "cpu_bound": 0},
    ]
    kn = _kn(initial_scale=0, allow_zero_initial_scale=True, activator_latency="5ms")
    eks = _k8s("eks", 1, concurrency=10)
    run = _even(services, [eks, kn], {"api": "eks", "svc": "kn"}, "10s", "1/s", start=0.5, end=1)
    per = run.extra["system"]["services"]
    assert per["api"]["latency_ms"]["max"] == pytest.approx(1015.0, abs=1e-6)
    assert per["svc"]["latency_ms"]["max"] == pytest.approx(1010.0, abs=1e-6)
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "svc:kpa"]
    assert steps[0] == (0.505, 0, 1), steps


def test_knative_pods_take_the_system_node_pool() -> None:
    """Knative pods are Kubernetes pods: on a `cluster.mode: nodes` platform the revision's
    min_scale 3 pods of 1.5 vCPU need three m5.large nodes (2 vCPU each, 1.93 allocatable), and
    the platform's cluster bill carries them."""
    services = [{"name": "api", "entry": 1, "handler": "10ms"}]
    kn = _kn(min_scale=3, max_scale=3, pod={"cpu": 1.5, "memory": "1Gi"})
    kn["cluster"] = {"node": "m5.large", "control_plane": "eks", "mode": "nodes"}
    run = _even(services, [kn], {"api": "kn"}, "1h", "1/s")
    got = run.extra["system"]["services"]["api"]["monthly_breakdown_usd"]
    # aws.amazon.com/ec2/pricing/on-demand, us-east-1: m5.large $0.096/h; EKS $0.10/h.
    assert got["nodes"] == pytest.approx(3 * 0.096 * 730, abs=0.005), got
    assert got["control_plane"] == pytest.approx(0.10 * 730, abs=0.005), got


@pytest.mark.parametrize(
    "change, key, words",
    [
        (
            lambda d: (
                d["platforms"].append(_kn()),
                d["placements"][0]["services"].update(c="kn"),
            ),
            "c",
            "Knative Serving does not consume an SQS queue",
        ),
        (
            lambda d: (
                d["platforms"].append(_flex()),
                d["placements"][0]["services"].update(c="flex"),
            ),
            "c",
            "Flex Consumption does not consume an SQS queue",
        ),
        (
            lambda d: (
                d["platforms"].append({"name": "lmi", "type": "lambda_managed"}),
                d["placements"][0]["services"].update(c="lmi"),
            ),
            "c",
            "Lambda Managed Instances consuming an SQS queue",
        ),
    ],
    ids=["knative_reads_sqs", "azure_flex_reads_sqs", "lambda_managed_reads_sqs"],
)
def test_unsupported_placements_exit_2_naming_the_key(
    tmp_path: Path, change: Any, key: str, words: str
) -> None:
    code, out = _bad(tmp_path, change)
    assert code == 2, out
    assert f"placements[0].services.{key}" in out and words in out, out
    assert "Traceback" not in out and "KeyError" not in out


def test_a_call_into_knative_goes_through_its_front_end(tmp_path: Path) -> None:
    platform = _kn()

    def change(d: dict) -> None:
        d["platforms"].append(platform)
        d["placements"][0]["services"].update(b=platform["name"])
        d["services"][0]["steps"][0]["via"] = "invoke"

    code, out = _bad(tmp_path, change)
    assert code == 2, out
    assert "is called via load_balancer" in out and "Traceback" not in out, out
