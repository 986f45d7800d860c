"""The fast kernels against the per-request SimPy path (sim.validation.reference): same scenario,
same seed, identical per-request outcomes, cold starts, instances and bills."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_systems_equivalence import assert_same_system

from sim.engine import run_one
from sim.platforms import MODELS
from sim.records import COLUMNS
from sim.scenario import load_scenario
from sim.validation.reference import REFERENCE_MODELS, ReferenceSystem, run_reference

from conftest import ROOT, make_scenario


@pytest.fixture(autouse=True)
def _keep_every_row(monkeypatch):
    """Compare every request, not a sample."""
    from sim import defaults

    monkeypatch.setattr(defaults, "REQUESTS_CSV_MAX_ROWS", 10**9)


def _rows(run):
    s = run.stats.sample
    if not s:
        return {c: np.zeros(0) for c in COLUMNS}
    order = np.lexsort((s["instance"], s["arrival"]))
    return {k: np.asarray(v)[order] for k, v in s.items()}


def assert_same(fast, ref):
    a, b = _rows(fast), _rows(ref)
    assert a["arrival"].size == b["arrival"].size
    for col in ("outcome", "cold", "instance"):
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    for col in ("arrival", "start", "end", "wait", "startup", "service", "overhead"):
        np.testing.assert_allclose(a[col], b[col], rtol=0, atol=1e-9, err_msg=col)
    assert fast.stats.cold_starts == ref.stats.cold_starts
    assert fast.instances["peak"] == ref.instances["peak"]
    assert fast.instances["mean"] == pytest.approx(ref.instances["mean"], rel=1e-9)
    # the two paths sum thousands of CPU-ms terms in another order: 1e-12 apart has been seen
    assert fast.bill.total_usd == pytest.approx(ref.bill.total_usd, rel=1e-9)
    assert [(d.time_s, d.after) for d in fast.decisions] == [
        (d.time_s, d.after) for d in ref.decisions
    ]


BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_scenarios_kernel_equals_per_request_path(path):
    sc = load_scenario(path, ["duration=20m", "warmup=1m", "replications=1"])
    if sc.is_system:  # every placement against the per-request ReferenceSystem
        for pl in sc.placements:
            fast = run_one(sc, pl.name, 0, path.parent, keep_all_rows=True)
            models = {"system": ReferenceSystem}
            ref = run_one(sc, pl.name, 0, path.parent, keep_all_rows=True, models=models)
            assert_same_system(fast, ref)
        return
    for p in sc.platforms:
        assert p.type in REFERENCE_MODELS, f"no reference model for type {p.type}"
        assert_same(run_one(sc, p.name, 0, path.parent), run_reference(sc, p.name, 0, path.parent))


def test_every_platform_type_has_a_reference_model():
    assert set(REFERENCE_MODELS) == set(MODELS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.05, 40.0),
    median_ms=st.floats(5.0, 3000.0),
    spread=st.floats(1.05, 8.0),
    ka=st.one_of(st.floats(1.0, 900.0), st.just(None)),
    pc=st.integers(0, 8),
    reserved=st.one_of(st.none(), st.integers(1, 30)),
    burst=st.integers(1, 50),
    retries=st.integers(0, 3),
    timeout=st.floats(0.2, 20.0),
    memory=st.integers(128, 4096),
    mru=st.booleans(),
    lifetime=st.one_of(
        st.none(),
        st.floats(20.0, 600.0),
        st.just({"dist": "uniform", "low": "30s", "high": "300s"}),
    ),
    rate_per=st.one_of(st.none(), st.floats(0.05, 3.0)),
    schedule=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_random_lambda_scenarios_kernel_equals_per_request_path(
    rate,
    median_ms,
    spread,
    ka,
    pc,
    reserved,
    burst,
    retries,
    timeout,
    memory,
    mru,
    lifetime,
    rate_per,
    schedule,
    seed,
):
    pcs = (
        [
            {"at": "00:00", "value": pc},
            {
                "at": "00:05",
                "value": pc + 3,
                "ready_delay": {"dist": "uniform", "low": "10s", "high": "90s"},
            },
            {"at": "00:06", "value": pc + 5, "ready_delay": "30s"},
            {"at": "00:10", "value": 1, "ready_delay": "0s"},
        ]
        if schedule
        else pc
    )
    # AWS refuses provisioned concurrency above reserved concurrency (at any time of the schedule)
    assume(reserved is None or (pc + 5 if schedule else pc) <= reserved)
    platform = {
        "name": "fn",
        "type": "lambda",
        "memory": memory,
        "provisioned_concurrency": pcs,
        "max_environment_lifetime": f"{lifetime}s" if isinstance(lifetime, float) else lifetime,
        "invocations_per_concurrency": rate_per,
        "reserved_concurrency": reserved,
        "scaling_rate": {"burst": burst, "refill": "2/s"},
        "client": {"retries": retries},
        "timeout": f"{timeout}s",
        "reuse": "mru" if mru else "lru",
        "api_gateway": "http",
        "gateway_latency": {"dist": "exponential", "mean": "3ms"},
        "keep_alive": f"{ka}s" if ka else {"dist": "uniform", "low": "60s", "high": "300s"},
    }
    sc = random_lambda_scenario(platform, rate, median_ms, median_ms * spread, seed)
    assert_same(run_one(sc, "fn", 0, ROOT), run_reference(sc, "fn", 0, ROOT))


def random_lambda_scenario(
    platform: dict, rate: float, median_ms: float, p99_ms: float, seed: int
) -> Any:
    """15 minutes of Poisson arrivals at `rate` plus a batch of 25 every 4 minutes, lognormal
    handler times, on one Lambda platform (also tests/test_lambda_compiled.py)."""
    return make_scenario(
        {
            "name": "eq",
            "duration": "15m",
            "warmup": "1m",
            "replications": 1,
            "seed": seed,
            "workload": {
                "arrivals": [
                    {"steady": {"rate": f"{rate}/s"}},
                    {"batch": {"every": "4m", "size": 25, "spread": "2s"}},
                ],
                "service": {
                    "duration": {
                        "dist": "lognormal",
                        "median": f"{median_ms}ms",
                        "p99": f"{p99_ms}ms",
                    },
                    "cpu_bound": 0.7,
                },
            },
            "platforms": [platform],
        }
    )


def test_multi_chunk_run_keeps_every_request():
    """Arrivals span several 1-hour chunks; a Lambda and a Wasm platform record the same ones."""
    sc = make_scenario(
        {
            "name": "chunks",
            "duration": "5h",
            "replications": 1,
            "seed": 3,
            "workload": {
                "arrivals": [{"steady": {"rate": "3/s"}}],
                "service": {"duration": {"dist": "exponential", "mean": "0.5s"}},
            },
            "platforms": [
                {"name": "fn", "type": "lambda", "timeout": "60s"},
                {"name": "w", "type": "wasm"},
            ],
            "timeline_step": "7m",
        }
    )
    a, b = run_one(sc, "fn", 0, ROOT), run_one(sc, "w", 0, ROOT)
    assert a.stats.requests_all == b.stats.requests_all > 50_000
    np.testing.assert_array_equal(
        np.sort(a.stats.sample["arrival"]), np.sort(b.stats.sample["arrival"])
    )


def test_multi_chunk_lambda_equals_per_request_path():
    sc = make_scenario(
        {
            "name": "chunks",
            "duration": "3h",
            "replications": 1,
            "seed": 4,
            "workload": {
                "arrivals": [
                    {"steady": {"rate": "1/s"}},
                    {"batch": {"every": "20m", "size": 40, "spread": "1s"}},
                ],
                "service": {"duration": {"dist": "lognormal", "median": "300ms", "p99": "3s"}},
            },
            "platforms": [
                {
                    "name": "fn",
                    "type": "lambda",
                    "reserved_concurrency": 12,
                    "client": {"retries": 2},
                    "keep_alive": "90s",
                }
            ],
            "timeline_step": "13m",
        }
    )
    assert_same(run_one(sc, "fn", 0, ROOT), run_reference(sc, "fn", 0, ROOT))


@pytest.mark.parametrize("retries", [0, 2])
def test_multi_chunk_rate_quota_equals_per_request_path(retries):
    """The quota (1 x reserved 3 = 3/s) binds only in the bursts (300 in 2 s; 2/s evenly spaced
    otherwise): without retries the kernel checks it per request only in the chunks with a
    burst, and must carry the per-second counts across chunks exactly."""
    sc = make_scenario(
        {
            "name": "rate-chunks",
            "duration": "3h",
            "replications": 1,
            "seed": 11,
            "workload": {
                "arrivals": [
                    {"steady": {"rate": "2/s", "spacing": "uniform"}},
                    {"batch": {"at": ["5400s", "10799s"], "size": 300, "spread": "2s"}},
                ],
                "service": {"duration": {"dist": "exponential", "mean": "50ms"}},
            },
            "platforms": [
                {
                    "name": "fn",
                    "type": "lambda",
                    "reserved_concurrency": 3,
                    "invocations_per_concurrency": 1,
                    "client": {"retries": retries},
                    "max_environment_lifetime": "20m",
                }
            ],
        }
    )
    fast, ref = run_one(sc, "fn", 0, ROOT), run_reference(sc, "fn", 0, ROOT)
    r = fast.stats.sample
    ok = np.asarray(r["outcome"]) == 0
    attempt = np.asarray(r["arrival"]) + np.asarray(r["wait"])  # when the attempt that ran came
    per_second = np.bincount(np.floor(attempt[ok]).astype(int))
    assert per_second.max() == 3  # the quota binds
    assert_same(fast, ref)


def _workload(rate: float, median_ms: float, spread: float, cpu_bound: float = 0.7) -> dict:
    """Steady traffic with bursts and an on/off phase: scale-ups, queues, scale-downs in 15 min."""
    return {
        "arrivals": [
            {"steady": {"rate": f"{rate}/s"}},
            {"batch": {"every": "3m", "size": 60, "spread": "3s"}},
            {
                "mmpp": {
                    "states": [
                        {"name": "on", "rate": f"{rate * 3}/s", "hold": "90s"},
                        {"name": "off", "rate": "0/s", "hold": "2m"},
                    ]
                }
            },
        ],
        "service": {
            "duration": {
                "dist": "lognormal",
                "median": f"{median_ms}ms",
                "p99": f"{median_ms * spread}ms",
            },
            "cpu_bound": cpu_bound,
        },
    }


def _check(platform: dict, seed: int, workload: dict, duration: str = "15m") -> None:
    sc = make_scenario(
        {
            "name": "eq",
            "duration": duration,
            "warmup": "1m",
            "replications": 1,
            "seed": seed,
            "workload": workload,
            "platforms": [platform],
        }
    )
    name = platform["name"]
    assert_same(run_one(sc, name, 0, ROOT), run_reference(sc, name, 0, ROOT))


_SCALERS = st.sampled_from(
    [
        "fixed",
        "hpa-cpu",
        "hpa-concurrency",
        "hpa-rps",
        "keda-rate",
        "keda-zero",
        "keda-backlog",
        "keda-http",
    ]
)
_ROUTINGS = st.sampled_from(
    ["random", "round_robin", "least_request", "least_outstanding", "ideal_fifo"]
)


def _scaler(kind: str, replicas: int) -> dict:
    if kind == "fixed":
        return {"replicas": replicas}
    if kind.startswith("hpa"):
        metric = kind.split("-")[1]
        target = {"cpu": "60%", "concurrency": 2, "rps": 5}[metric]
        return {
            "hpa": {
                "min_replicas": max(replicas, 1),
                "max_replicas": 12,
                "metric": metric,
                "target": target,
                "downscale_stabilization": "20s",
            }
        }
    trigger = (
        {"type": "kafka", "metadata": {"lagThreshold": "5"}}
        if kind == "keda-backlog"
        else {"type": "http", "metadata": {"targetValue": "3"}}
        if kind == "keda-http"  # behind the HTTP add-on's interceptor, from zero
        else {"type": "prometheus", "metadata": {"threshold": "4", "activationThreshold": "0"}}
    )
    return {
        "interceptor": {"readiness_timeout": "3s"} if kind == "keda-http" else {},
        "keda": {
            "pollingInterval": 10,
            "cooldownPeriod": 30,
            "minReplicaCount": 0 if kind in ("keda-zero", "keda-http") else 1,
            "maxReplicaCount": 12,
            "triggers": [trigger],
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 20}}
                }
            },
        },
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scaler=_SCALERS,
    replicas=st.integers(0, 6),
    concurrency=st.integers(1, 6),
    cpu=st.sampled_from(["250m", "500m", "1"]),
    routing=_ROUTINGS,
    queue_limit=st.one_of(st.none(), st.integers(0, 40)),
    timeout=st.one_of(st.none(), st.floats(0.3, 60.0)),
    startup=st.one_of(st.just("4s"), st.just({"dist": "uniform", "low": "2s", "high": "20s"})),
    nodes=st.sampled_from(["m5.large", "t3.medium", "autopilot"]),
    min_nodes=st.integers(0, 2),
    extra_nodes=st.one_of(st.none(), st.integers(0, 3)),
    rate=st.floats(0.2, 30.0),
    median_ms=st.floats(5.0, 800.0),
    spread=st.floats(1.05, 10.0),
    seed=st.integers(0, 2**31),
)
def test_random_kubernetes_scenarios_kernel_equals_per_request_path(
    scaler,
    replicas,
    concurrency,
    cpu,
    routing,
    queue_limit,
    timeout,
    startup,
    nodes,
    min_nodes,
    extra_nodes,
    rate,
    median_ms,
    spread,
    seed,
):
    cluster = (
        {"mode": "autopilot"}
        if nodes == "autopilot"
        else {
            "node": nodes,
            "min_nodes": min_nodes,
            "max_nodes": None if extra_nodes is None else max(min_nodes + extra_nodes, 1),
            "node_provisioning": {"dist": "uniform", "low": "20s", "high": "90s"},
            "scale_down_after": "2m",
        }
    )
    platform = {
        "name": "k8s",
        "type": "kubernetes",
        **_scaler(scaler, replicas),
        "pod": {"concurrency": concurrency, "cpu": cpu, "memory": "512Mi", "startup": startup},
        "routing": routing,
        "queue_limit": queue_limit,
        "request_timeout": f"{timeout}s" if timeout else None,
        "ingress_latency": {"dist": "exponential", "mean": "2ms"},
        "cluster": cluster,
    }
    _check(platform, seed, _workload(rate, median_ms, spread))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_concurrency=st.one_of(st.none(), st.integers(1, 60)),
    cpu_limit=st.floats(0.005, 5.0),
    cpu_bound=st.sampled_from([0.0, 0.3, 1.0]),
    slowdown=st.floats(0.5, 3.0),
    edge=st.one_of(
        st.none(), st.just("5ms"), st.just({"dist": "uniform", "low": "1ms", "high": "30ms"})
    ),
    edge_idle=st.floats(0.05, 120.0),
    edge_nodes=st.integers(1, 8),
    rate=st.floats(0.2, 40.0),
    median_ms=st.floats(1.0, 800.0),
    spread=st.floats(1.05, 10.0),
    seed=st.integers(0, 2**31),
)
def test_random_wasm_scenarios_kernel_equals_per_request_path(
    max_concurrency,
    cpu_limit,
    cpu_bound,
    slowdown,
    edge,
    edge_idle,
    edge_nodes,
    rate,
    median_ms,
    spread,
    seed,
):
    platform = {
        "name": "w",
        "type": "wasm",
        "max_concurrency": max_concurrency,
        "cpu_limit": f"{cpu_limit}s",
        "slowdown": slowdown,
        "edge_cold_start": edge,
        "edge_idle_timeout": f"{edge_idle}s",
        "edge_nodes": edge_nodes,
        "instantiate": {"dist": "exponential", "mean": "0.5ms"},
        "edge_latency": {"dist": "uniform", "low": "0.5ms", "high": "2ms"},
    }
    _check(platform, seed, _workload(rate, median_ms, spread, cpu_bound))


# Ties: on a lattice of binary-exact times (evenly spaced arrivals, batches, constant service,
# start-up, provisioning, timeouts and control periods) many events fall at the same instant, so
# these check the tie rules (deadline, control, completion, arrival), which random times never hit.
def _lattice_workload(rate: int, size: int, service: float, cpu_bound: float) -> dict:
    return {
        "arrivals": [
            {"steady": {"rate": f"{rate}/s", "spacing": "uniform", "end": "5m"}},
            {"steady": {"rate": f"{rate * 2}/s", "spacing": "uniform", "start": "8m"}},
            {"batch": {"every": "1m", "size": size}},
        ],
        "service": {"duration": f"{service}s", "cpu_bound": cpu_bound},
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scaler=_SCALERS,
    replicas=st.integers(0, 4),
    concurrency=st.integers(1, 4),
    routing=_ROUTINGS,
    queue_limit=st.one_of(st.none(), st.integers(0, 30)),
    timeout=st.sampled_from([None, 0.5, 1.0, 2.0, 8.0]),
    nodes=st.sampled_from(["m5.large", "autopilot"]),
    rate=st.sampled_from([1, 2, 4, 8]),
    size=st.sampled_from([4, 16, 64]),
    service=st.sampled_from([0.125, 0.25, 0.5, 1.0, 2.0]),
    cpu_bound=st.sampled_from([0.0, 0.5]),
    seed=st.integers(0, 2**31),
)
def test_kubernetes_ties_kernel_equals_per_request_path(
    scaler,
    replicas,
    concurrency,
    routing,
    queue_limit,
    timeout,
    nodes,
    rate,
    size,
    service,
    cpu_bound,
    seed,
):
    cluster = (
        {"mode": "autopilot"}
        if nodes == "autopilot"
        else {"node": nodes, "min_nodes": 0, "max_nodes": 3, "node_provisioning": "32s"}
    )
    platform = {
        "name": "k8s",
        "type": "kubernetes",
        **_scaler(scaler, replicas),
        "pod": {"concurrency": concurrency, "cpu": "500m", "memory": "512Mi", "startup": "4s"},
        "routing": routing,
        "queue_limit": queue_limit,
        "request_timeout": f"{timeout}s" if timeout else None,
        "ingress_latency": "1ms",
        "cluster": cluster,
    }
    _check(platform, seed, _lattice_workload(rate, size, service, cpu_bound))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lifetime=st.sampled_from([None, 2.0, 4.0, 30.0]),
    rate_per=st.sampled_from([None, 0.5, 1.0, 10.0]),
    reserved=st.sampled_from([None, 2, 8]),
    ka=st.sampled_from([0.5, 1.0, 60.0]),
    init=st.sampled_from(["0.125s", "0.25s"]),
    mru=st.booleans(),
    retries=st.integers(0, 2),
    pc=st.sampled_from([0, 2]),
    rate=st.sampled_from([1, 2, 4, 8]),
    size=st.sampled_from([4, 16]),
    service=st.sampled_from([0.125, 0.25, 0.5, 1.0]),
    seed=st.integers(0, 2**31),
)
def test_lambda_ties_kernel_equals_per_request_path(
    lifetime, rate_per, reserved, ka, init, mru, retries, pc, rate, size, service, seed
):
    """Lifetime caps, rate windows, keep-alive expiries, completions and arrivals on one lattice."""
    assume(reserved is None or pc + 2 <= reserved)  # AWS refuses PC above reserved concurrency
    platform = {
        "name": "fn",
        "type": "lambda",
        "init": init,
        "sandbox_overhead": 0,
        "keep_alive": f"{ka}s",
        "reuse": "mru" if mru else "lru",
        "max_environment_lifetime": f"{lifetime}s" if lifetime else None,
        "invocations_per_concurrency": rate_per,
        "reserved_concurrency": reserved,
        "client": {"retries": retries},
        "provisioned_concurrency": [
            {"at": "00:00", "value": pc},
            {"at": "00:04", "value": pc + 2, "ready_delay": "64s"},
        ],
        "timeout": "900s",
    }
    _check(platform, seed, _lattice_workload(rate, size, service, 0.0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_concurrency=st.one_of(st.none(), st.integers(1, 40)),
    cpu_limit=st.sampled_from([0.125, 0.5, 30.0]),
    slowdown=st.sampled_from([1.0, 2.0]),
    instantiate=st.sampled_from(["0s", "0.125s"]),
    edge=st.one_of(st.none(), st.just("0.25s")),
    edge_idle=st.sampled_from([0.25, 1.0, 60.0]),
    edge_nodes=st.integers(1, 3),
    rate=st.sampled_from([1, 2, 4, 8]),
    size=st.sampled_from([4, 16, 64]),
    service=st.sampled_from([0.125, 0.25, 0.5, 1.0, 2.0]),
    seed=st.integers(0, 2**31),
)
def test_wasm_ties_kernel_equals_per_request_path(
    max_concurrency,
    cpu_limit,
    slowdown,
    instantiate,
    edge,
    edge_idle,
    edge_nodes,
    rate,
    size,
    service,
    seed,
):
    platform = {
        "name": "w",
        "type": "wasm",
        "max_concurrency": max_concurrency,
        "cpu_limit": f"{cpu_limit}s",
        "slowdown": slowdown,
        "instantiate": instantiate,
        "edge_cold_start": edge,
        "edge_idle_timeout": f"{edge_idle}s",
        "edge_nodes": edge_nodes,
    }
    _check(platform, seed, _lattice_workload(rate, size, service, 1.0))


_SPOT = st.fixed_dictionaries(
    {
        "share": st.sampled_from([1.0, 0.5]),
        "on_demand_base": st.integers(0, 1),
        "drain_on_notice": st.booleans(),
        "in_flight": st.sampled_from(["fail", "retry"]),
        "grace": st.sampled_from(["5s", "30s", "200s"]),
        "unavailable": st.sampled_from([0.0, 0.5]),
        "unavailable_ttl": st.sampled_from(["0s", "3m"]),
    }
)


def _spot_platform(spot: dict, routing: str, concurrency: int, scaler: str, timeout) -> dict:
    return {
        "name": "k8s",
        "type": "kubernetes",
        **_scaler(scaler, 4),
        "pod": {"concurrency": concurrency, "cpu": "500m", "memory": "512Mi", "startup": "4s"},
        "routing": routing,
        "request_timeout": f"{timeout}s" if timeout else None,
        "ingress_latency": {"dist": "exponential", "mean": "2ms"},
        "cluster": {
            "node": "m5.large",
            "min_nodes": 1,
            "node_provisioning": {"dist": "uniform", "low": "20s", "high": "60s"},
            "scale_down_after": "2m",
            "spot": spot,
        },
    }


# Spot notices: a rate per node-hour, or a trace of 1-4 notice times.
_NOTICES = st.one_of(
    st.floats(2.0, 30.0).map(lambda r: {"interruptions_per_node_hour": r}),
    st.lists(st.floats(60.0, 840.0), min_size=1, max_size=4).map(
        lambda ts: {"interruptions": [f"{t}s" for t in ts]}
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spot=_SPOT,
    notices=_NOTICES,
    routing=_ROUTINGS,
    concurrency=st.integers(1, 4),
    scaler=st.sampled_from(["fixed", "hpa-concurrency", "keda-rate"]),
    timeout=st.one_of(st.none(), st.floats(2.0, 60.0)),
    rate=st.floats(0.5, 12.0),
    median_ms=st.floats(50.0, 8000.0),
    seed=st.integers(0, 2**31),
)
def test_random_spot_scenarios_kernel_equals_per_request_path(
    spot, notices, routing, concurrency, scaler, timeout, rate, median_ms, seed
):
    """Spot pools with interruptions (a rate or a trace), with and without a handler, killed
    requests failing or retried: the kernel's rows (`_cut`, `_resubmit`) against the reference's
    request processes cut short at the kill."""
    platform = _spot_platform({**spot, **notices}, routing, concurrency, scaler, timeout)
    _check(platform, seed, _workload(rate, median_ms, 3.0, cpu_bound=0.0))


def _autopilot_spot_platform(spot: dict, routing: str, concurrency: int, scaler: str) -> dict:
    """GKE Autopilot Spot Pods: each pod on a Spot VM of its own (30 s notice, 25 s grace)."""
    return {
        "name": "k8s",
        "type": "kubernetes",
        **_scaler(scaler, 3),
        "pod": {"concurrency": concurrency, "cpu": "500m", "memory": "2Gi", "startup": "4s"},
        "routing": routing,
        "ingress_latency": {"dist": "exponential", "mean": "2ms"},
        "load_balancer": "none",
        "cluster": {"mode": "autopilot", "spot": spot},
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spot=st.fixed_dictionaries(
        {
            "share": st.sampled_from([1.0, 0.5]),
            "on_demand_base": st.integers(0, 1),
            "drain_on_notice": st.booleans(),
            "in_flight": st.sampled_from(["fail", "retry"]),
            "grace": st.sampled_from(["5s", "25s", "200s"]),
        }
    ),
    notices=_NOTICES,
    routing=_ROUTINGS,
    concurrency=st.integers(1, 4),
    scaler=st.sampled_from(["fixed", "hpa-concurrency", "keda-rate"]),
    rate=st.floats(0.5, 12.0),
    median_ms=st.floats(50.0, 8000.0),
    seed=st.integers(0, 2**31),
)
def test_random_autopilot_spot_pods_kernel_equals_per_request_path(
    spot, notices, routing, concurrency, scaler, rate, median_ms, seed
):
    """Autopilot Spot Pods (a pod per Spot VM: the node mechanics of spot per pod) in both
    engines, request by request, bill included."""
    platform = _autopilot_spot_platform({**spot, **notices}, routing, concurrency, scaler)
    _check(platform, seed, _workload(rate, median_ms, 3.0, cpu_bound=0.0))


@pytest.mark.parametrize("in_flight", ["fail", "retry"])
@pytest.mark.parametrize("routing", ["ideal_fifo", "round_robin"])
@pytest.mark.parametrize("drain", [True, False])
@pytest.mark.parametrize("mode", ["nodes", "autopilot"])
def test_spot_kills_in_flight_requests_in_both_engines(in_flight, routing, drain, mode):
    """Long requests (median 20 s) on an all-spot pool (or Autopilot Spot Pods) with 3 notices:
    requests are cut short (so the comparison covers kills) and both engines agree request by
    request."""
    spot = {"interruptions": ["200s", "400s", "600s"], "grace": "5s"}
    spot |= {"in_flight": in_flight, "drain_on_notice": drain}
    if mode == "nodes":
        platform = _spot_platform(spot, routing, 2, "fixed", None)
    else:
        platform = _autopilot_spot_platform(spot, routing, 2, "fixed")
    sc = make_scenario(
        {
            "name": "eq",
            "duration": "15m",
            "warmup": "1m",
            "replications": 1,
            "seed": 7,
            "workload": _workload(0.3, 20000.0, 3.0, cpu_bound=0.0),
            "platforms": [platform],
        }
    )
    fast, ref = run_one(sc, "k8s", 0, ROOT), run_reference(sc, "k8s", 0, ROOT)
    assert_same(fast, ref)
    note = next(n for n in fast.bill.notes if n.startswith("spot:"))
    assert note == next(n for n in ref.bill.notes if n.startswith("spot:"))
    killed = int(note.split("rescheduled, ")[1].split(" requests")[0])
    assert killed > 0, note
