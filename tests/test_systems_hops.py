"""Hops between a system's services (sim.systems.hops): latency per `via`, the hop bill, the HPA
and KEDA on a synchronous service, bad `via`.

Every expected value is computed by hand from the documented hop latencies, the price table's
rates (prices.yaml, quoted below) and the upstream HPA formula, never from the simulator's output.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_systems import _lambda
from test_systems_equivalence import assert_same_system

from sim.cli import main
from sim.engine import run_one
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent
GIB = 2.0**30  # AWS data lines in binary GB (cost.gb: binary, the default)
MONTH_H = 730.0


def _k8s(name: str, **kw: Any) -> dict:
    return {
        "name": name,
        "type": "kubernetes",
        "replicas": 2,
        "routing": "ideal_fifo",
        "pod": {"concurrency": 8, "cpu": 1, "memory": "1Gi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
        **kw,
    }


def _system(services: list, platforms: list, placement: dict, **kw: Any) -> dict:
    return {
        "name": "hops",
        "duration": kw.pop("duration", "10m"),
        "warmup": 0,
        "replications": 1,
        "seed": 3,
        "workload": {
            "arrivals": [{"steady": {"rate": kw.pop("rate", "5/s"), "spacing": "uniform"}}]
        },
        "platforms": platforms,
        "services": services,
        "placements": [{"name": "p", "services": placement}],
        **kw,
    }


# --- latency: one chain through every kind of hop -------------------------------------------------
CHAIN_PLATFORMS = [
    _lambda("fn-gw", api_gateway="http", gateway_latency="7ms"),
    _k8s("eks", ingress_latency="3ms"),
    {
        "name": "edge",
        "type": "wasm",
        "instantiate": 0,
        "edge_latency": "2ms",
    },
]
CHAIN = [
    # a (Lambda) -> b (EKS, via the load balancer) -> c (same cluster: pod to pod) -> d (Lambda
    # through API Gateway) -> e (Lambda, SDK Invoke) -> w (Workers, at its edge route)
    {"name": "a", "entry": 1, "handler": "1ms", "steps": [{"call": "b"}]},
    {"name": "b", "handler": "2ms", "steps": [{"call": "c"}]},
    {"name": "c", "handler": "3ms", "steps": [{"call": "d", "via": "api_gateway"}]},
    {"name": "d", "handler": "4ms", "steps": [{"call": "e", "via": "invoke"}]},
    {"name": "e", "handler": "5ms", "steps": [{"call": "w"}]},
    {"name": "w", "handler": "6ms"},
]
CHAIN_PLACEMENT = {"a": "fn-gw", "b": "eks", "c": "eks", "d": "fn-gw", "e": "fn-gw", "w": "edge"}


def test_chain_latency_is_the_sum_of_hops_and_work() -> None:
    """Warm, deterministic: the client's latency = entry API Gateway 7 ms + a 1 ms
    + load balancer 3 ms + b 2 ms + pod to pod 0 + c 3 ms + API Gateway 7 ms + d 4 ms
    + Invoke 4 ms (network.invoke_latency) + e 5 ms + Wasm edge 2 ms + w 6 ms = 44 ms."""
    data = _system(CHAIN, CHAIN_PLATFORMS, CHAIN_PLACEMENT, network={"invoke_latency": "4ms"})
    run = run_one(make_scenario(data), "p", 0, ROOT)
    s = run.stats.sample
    lat = s["end"] - s["arrival"] + s["overhead"]
    assert lat.size == 3000  # 5/s x 600 s, evenly spaced
    np.testing.assert_allclose(lat, 0.044, rtol=0, atol=1e-9)
    assert run.stats.outcomes["ok"] == run.stats.requests


def test_default_vias_by_platform_pair() -> None:
    """Without `via`: Lambda -> Lambda is an SDK Invoke (5 ms, the documented ASSUMPTION), a pod
    calling a Lambda that has an API Gateway goes through it, a Lambda calling the cluster
    through its load balancer. a(fn-gw) -> b(fn-gw): 5; b -> c(eks): 3; c -> d(fn-gw): 7:
    7 (entry) + 1 + 5 + 2 + 3 + 3 + 7 + 4 = 32 ms."""
    services = [
        {"name": "a", "entry": 1, "handler": "1ms", "steps": [{"call": "b"}]},
        {"name": "b", "handler": "2ms", "steps": [{"call": "c"}]},
        {"name": "c", "handler": "3ms", "steps": [{"call": "d"}]},
        {"name": "d", "handler": "4ms"},
    ]
    data = _system(
        services, CHAIN_PLATFORMS, {"a": "fn-gw", "b": "fn-gw", "c": "eks", "d": "fn-gw"}
    )
    run = run_one(make_scenario(data), "p", 0, ROOT)
    s = run.stats.sample
    np.testing.assert_allclose(s["end"] - s["arrival"] + s["overhead"], 0.032, rtol=0, atol=1e-9)
    # a network.hops rule overrides the pair's default: fn-gw -> fn-gw through API Gateway
    data["network"] = {"hops": [{"caller": "fn-gw", "callee": "fn-gw", "via": "api_gateway"}]}
    run = run_one(make_scenario(data), "p", 0, ROOT)
    s = run.stats.sample
    np.testing.assert_allclose(s["end"] - s["arrival"] + s["overhead"], 0.034, rtol=0, atol=1e-9)


def test_chain_equals_the_per_request_reference() -> None:
    data = _system(
        CHAIN,
        CHAIN_PLATFORMS,
        CHAIN_PLACEMENT,
        network={"invoke_latency": {"dist": "exponential", "mean": "4ms"}},
        rate="40/s",
        duration="60s",
    )
    data["workload"]["arrivals"][0]["steady"]["spacing"] = "poisson"
    sc = make_scenario(data)
    fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert_same_system(fast, ref)


# --- the hop bill, by hand ------------------------------------------------------------------------
def _bill_system(network: dict) -> dict:
    services = [
        # a: a Lambda in a VPC (behind NAT) calling the cluster through its ALB, 10 KB up, 30 KB
        # down; b: pod to pod to c (1 KB + 1 KB by default), half of those hops crossing AZs;
        # c: a pod calling the Lambda d through API Gateway; a also invokes e directly (SDK).
        {
            "name": "a",
            "entry": 1,
            "handler": "1ms",
            "steps": [
                {"call": "b", "request_size": "10KB", "response_size": "30KB"},
                {"call": "e", "via": "invoke", "request_size": "4KB", "response_size": "4KB"},
            ],
        },
        {"name": "b", "handler": "1ms", "steps": [{"call": "c"}]},
        {"name": "c", "handler": "1ms", "steps": [{"call": "d", "via": "api_gateway"}]},
        {"name": "d", "handler": "1ms"},
        {"name": "e", "handler": "1ms"},
    ]
    platforms = [
        _lambda("fn-vpc", cost={"nat": {"enabled": True}}),
        _lambda("fn-api", api_gateway="http"),
        _k8s("eks", ingress_latency=0),
    ]
    placement = {"a": "fn-vpc", "b": "eks", "c": "eks", "d": "fn-api", "e": "fn-api"}
    return _system(services, platforms, placement, rate="10/s", duration="1h", network=network)


def test_hop_bill_by_hand_to_the_cent() -> None:
    """10/s evenly spaced for 1 h = 36,000 entry requests, each making every call once; a month =
    730 h = 730 windows. Rates (prices.yaml): NAT data $0.045/GB, cross-AZ $0.01/GB each way,
    API Gateway HTTP $1.00 per million, interface endpoint $0.01/GB and $0.01 per AZ-hour.
    - a's NAT data: ALB hop 36,000 x 40,000 B + Invoke hop 36,000 x 8,000 B = 1.728e9 B
      = 1.60933 GiB a window -> 1,174.81 GiB a month x $0.045 = $52.87.
    - b's cross-AZ: 36,000 x 2,048 B x 0.5 = 36,864,000 B = 0.034332 GiB a window
      -> 25.0626 GiB x $0.01 x 2 = $0.50.
    - d's API Gateway: 36,000 x 730 = 26.28M requests x $1.00/M = $26.28.
    With a `lambda` interface endpoint the Invoke hop's 2.88e8 B leave the NAT: a's NAT data is
    1.44e9 B (1,022.9 GiB a month: $44.05... by hand below), its endpoint data 2.88e8 B
    (195.80 GiB: $1.96), and the endpoint's hours 1 x 2 AZs x 730 h x $0.01 = $14.60."""
    win = 730.0  # windows of 1 h in a 730-h month
    run = run_one(make_scenario(_bill_system({"cross_az": 0.5})), "p", 0, ROOT)
    svc = run.extra["system"]["services"]
    nat = (36_000 * 40_000 + 36_000 * 8_000) / GIB * win * 0.045
    assert svc["a"]["monthly_breakdown_usd"]["nat_data"] == pytest.approx(nat, abs=0.005)
    assert round(nat, 2) == 52.87
    cross = 36_000 * 2_048 * 0.5 / GIB * win * 0.01 * 2
    assert svc["b"]["monthly_breakdown_usd"]["cross_az"] == pytest.approx(cross, abs=0.005)
    assert round(cross, 2) == 0.50
    assert svc["d"]["monthly_breakdown_usd"]["api_gateway"] == pytest.approx(26.28, abs=0.005)
    assert svc["e"]["monthly_breakdown_usd"].get("api_gateway", 0.0) == 0.0  # Invoke: no gateway
    assert "nat_data" not in svc["b"]["monthly_breakdown_usd"]  # pod to pod: no NAT

    run = run_one(
        make_scenario(_bill_system({"cross_az": 0.5, "vpc_endpoints": ["lambda"]})), "p", 0, ROOT
    )
    svc = run.extra["system"]["services"]
    a = svc["a"]["monthly_breakdown_usd"]
    assert a["nat_data"] == pytest.approx(36_000 * 40_000 / GIB * win * 0.045, abs=0.005)
    assert round(a["nat_data"], 2) == 44.06
    assert a["vpc_endpoint_data"] == pytest.approx(36_000 * 8_000 / GIB * win * 0.01, abs=0.005)
    assert round(a["vpc_endpoint_data"], 2) == 1.96
    hours = 1 * 2 * MONTH_H * 0.01
    assert hours == pytest.approx(14.60)
    assert run.bill.monthly_breakdown["network.vpc_endpoint_hours"] == pytest.approx(hours)


def test_sqs_publish_from_behind_nat_and_through_an_endpoint() -> None:
    """A Lambda in a VPC sends 36,000 x 4 KB messages an hour: NAT data 1.44e8 B a window x 730
    / 2^30 x $0.045 = $4.41 a month; with an `sqs` endpoint at $0.01/GB: $0.98."""
    data = _system(
        [
            {"name": "a", "entry": 1, "handler": "1ms", "steps": [{"publish": "q"}]},
            {"name": "w", "handler": "1ms"},
        ],
        [_lambda("fn-vpc", cost={"nat": {"enabled": True}})],
        {"a": "fn-vpc", "w": "fn-vpc"},
        rate="10/s",
        duration="1h",
        queues=[{"name": "q", "consumer": "w", "message_size": "4KB"}],
    )
    svc = run_one(make_scenario(data), "p", 0, ROOT).extra["system"]["services"]
    assert svc["a"]["monthly_breakdown_usd"]["nat_data"] == pytest.approx(
        36_000 * 4_000 / GIB * 730 * 0.045, abs=0.005
    )
    assert round(svc["a"]["monthly_breakdown_usd"]["nat_data"], 2) == 4.41
    assert "nat_data" not in svc["w"]["monthly_breakdown_usd"]  # the ESM polls, not the VPC
    data["network"] = {"vpc_endpoints": ["sqs"]}
    svc = run_one(make_scenario(data), "p", 0, ROOT).extra["system"]["services"]
    assert "nat_data" not in svc["a"]["monthly_breakdown_usd"]
    assert round(svc["a"]["monthly_breakdown_usd"]["vpc_endpoint_data"], 2) == 0.98


# --- the HPA and KEDA on a synchronous service ----------------------------------------------------
HPA_PLATFORM = {
    "name": "eks",
    "type": "kubernetes",
    "hpa": {"min_replicas": 1, "max_replicas": 10, "metric": "cpu", "target": "60%"},
    "pod": {"concurrency": 10, "cpu": 1, "memory": "1Gi", "startup": "5s"},
    "ingress_latency": 0,
    "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
}
STEP_LOAD = [
    {"steady": {"rate": "10/s", "spacing": "uniform"}},
    {"steady": {"rate": "20/s", "spacing": "uniform", "start": "60s"}},
]


def _hpa_system(platform: dict, duration: str = "120s") -> dict:
    data = _system(
        [
            {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"call": "api"}]},
            {"name": "api", "handler": "100ms", "cpu_bound": 1},
        ],
        [platform, _k8s("gw", ingress_latency=0)],
        {"front": "gw", "api": "eks"},
        duration=duration,
    )
    data["workload"]["arrivals"] = copy.deepcopy(STEP_LOAD)
    for p in data["placements"]:  # the autoscalers' arithmetic: no Pending pods (nodes at once)
        p["nodes"] = "at_once"
    return data


def test_hpa_replicas_on_a_synchronous_service_by_hand() -> None:
    """A step load: 10/s, 30/s from 60 s; each call to `api` works 100 ms on 1 CPU, so the pods
    use 1 core, then 3. HPA on cpu, target 60%, syncs every 15 s; pods ready 5 s after the
    decision. The metric is what metrics-server serves (as the Kubernetes kernel serves it): at
    the latest scrape s (7.5 s + k x 15 s) each ready pod gets the CPU per ready pod-second over
    [s - 15, s] in millicores (rounded up); a pod ready less than 10 s before s has no sample.
    The controller (pkg/controller/podautoscaler/replica_calculator.go): utilisation = whole
    percent of the requests; ratio = utilisation / target; outside the 0.1 tolerance -> ceil(ratio
    x pods with samples); on a scale-up pods without a sample count as 0 and the count stays when
    that ratio flips direction or lands within the tolerance; without `behavior` a scale-down
    waits for the 300 s window's largest recommendation. The initial pod ran before 0.
    - 15 s (s = 7.5): 7.5 core-s / 15 pod-s = 500m = 50% -> ratio 0.83 -> ceil(0.83) = 1: keep 1
    - 30 s (s = 22.5): 15 / 15 = 1000m = 100% -> 1.67 -> ceil(1.67) = 2 (ready at 35 s)
    - 45 s (s = 37.5): 15 / (12.5 + 2 x 2.5) = 858m on pod 1, pod 2 (2.5 s old) without a
      sample: 85% -> up, but with pod 2 at 0: 858 / 2000 = 42% -> ratio < 1 flips: keep 2
    - 60 s (s = 52.5): 15 / 30 = 500m each -> 50% -> ceil(0.83 x 2) = 2: keep 2
    - 75 s (s = 67.5): (15 + 2 x 7.5) / 30 = 1000m (999m: the front's 1 ms shifts the first
      second-source calls) -> 99-100% -> 1.65-1.67 -> ceil(3.3) = 4 (ready at 80 s)
    - 90 s (s = 82.5): 45 / (2 x 15 + 2 x 2.5) = 1286m on pods 1-2, pods 3-4 without samples:
      128% -> up; with them at 0: 2572 / 4000 = 64% -> ratio 1.07 within the tolerance: keep 4
    - 105 s (s = 97.5): 45 / 60 = 750m each -> 75% -> 1.25 -> ceil(5) = 5 (ready at 110 s)
    - 120 s (s = 112.5): 45 / (4 x 15 + 2.5) = 720m, pod 5 without a sample: 72% -> up; with it
      at 0: 2880 / 5000 = 57% -> ratio 0.96 within the tolerance: keep 5
    - 135 s (s = 127.5): 45 / 75 = 600m each -> 60% -> ratio 1: keep 5."""
    sc = make_scenario(_hpa_system(HPA_PLATFORM, duration="150s"))
    run = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    got = [(d.time_s, d.before, d.after) for d in run.decisions]
    assert got == [(30.0, 1, 2), (75.0, 2, 4), (105.0, 4, 5)]
    assert run.extra["system"]["services"]["api"]["instances_peak"] == 5
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert_same_system(run, ref)


def test_keda_prometheus_on_a_synchronous_service_by_hand() -> None:
    """KEDA prometheus, threshold 8 requests/s per replica, on the ingress counter (`counts:
    arrivals`), a 30 s window; polls every 30 s, its HPA syncs every 15 s (AverageValue:
    desired = ceil(rate / 8), tolerance 0.1 on rate / (8 x replicas); 300 s down window).
    - 15 s: 150 arrivals / 15 s (the window is cut at 0) = 10/s -> 10 / 8 = 1.25 -> ceil = 2
    - 30 s: 300 / 30 = 10/s over 2 replicas: 10 / 16 = 0.625 -> ceil(1.25) = 2: no change
    - 75 s: arrivals in (45, 75]: 10 x 30 + 20 x 15 = 600 -> 20/s -> 20 / 16 = 1.25 -> 3
    - 90 s: (60, 90]: 900 / 30 = 30/s -> 30 / 24 = 1.25 -> ceil(3.75) = 4."""
    keda = {
        "name": "eks",
        "type": "kubernetes",
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {"threshold": "8", "counts": "arrivals", "window": "30s"},
                }
            ],
        },
        "pod": {"concurrency": 10, "cpu": 1, "memory": "1Gi", "startup": "5s"},
        "ingress_latency": 0,
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    }
    sc = make_scenario(_hpa_system(keda))
    run = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    got = [(d.time_s, d.after) for d in run.decisions]
    assert got[:3] == [(15.0, 2), (75.0, 3), (90.0, 4)], got
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert_same_system(run, ref)


# --- bad input ------------------------------------------------------------------------------------
def _cli(tmp_path: Path, data: dict) -> tuple[int, str]:
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    res = CliRunner().invoke(main, ["run", str(f), "--out", str(tmp_path / "o"), "--no-html"])
    return res.exit_code, res.output


def _bad_chain(change: Any) -> dict:
    data = _system(copy.deepcopy(CHAIN), copy.deepcopy(CHAIN_PLATFORMS), dict(CHAIN_PLACEMENT))
    data["duration"] = "10s"
    change(data)
    return data


@pytest.mark.parametrize(
    "change, key, words",
    [
        (  # a Lambda without API Gateway cannot be called through one
            lambda d: d["platforms"][0].update(api_gateway="none"),
            "services[2].steps[0].via",
            "api_gateway: none",
        ),
        (
            lambda d: d["services"][0]["steps"][0].update(via="invoke"),
            "services[0].steps[0].via",
            "load_balancer or direct",
        ),
        (
            lambda d: d["services"][4]["steps"][0].update(via="direct"),
            "services[4].steps[0].via",
            "edge route",
        ),
        (
            lambda d: d["services"][0]["steps"][0].update(via="direct"),
            "services[0].steps[0].via",
            "pod to pod",
        ),
        (
            lambda d: d["services"][0]["steps"][0].update(via="carrier-pigeon"),
            "services[0].steps[0].via",
            "expected 'api_gateway', 'invoke', 'load_balancer' or 'direct'",
        ),
        (
            lambda d: d.update(
                network={"hops": [{"caller": "fn", "callee": "eks", "via": "direct"}]}
            ),
            "network.hops[0].caller",
            "unknown platform 'fn'",
        ),
        (
            lambda d: d.update(
                network={"hops": [{"caller": "fn-gw", "callee": "eks", "via": "invoke"}]}
            ),
            "network.hops[0].via",
            "load_balancer or direct",
        ),
    ],
)
def test_bad_via_exits_2_naming_the_key(tmp_path: Path, change: Any, key: str, words: str) -> None:
    code, out = _cli(tmp_path, _bad_chain(change))
    assert code == 2, out
    assert key in out and words in out, out
    assert "Traceback" not in out


def test_unsupported_autoscaler_on_a_service_exits_2(tmp_path: Path) -> None:
    platform = copy.deepcopy(HPA_PLATFORM)
    platform["hpa"] = {"min_replicas": 1, "max_replicas": 4, "metric": "concurrency", "target": 4}
    code, out = _cli(tmp_path, _hpa_system(platform))
    assert code == 2, out
    assert "placements[0].services.api" in out and "concurrency: not yet" in out, out


def test_month_is_730_hours() -> None:
    assert math.isclose(MONTH_H * 3600, make_scenario(_bill_system({})).month)
