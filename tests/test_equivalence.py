"""The fast kernels against the per-request SimPy path (sim.reference): same scenario, same seed,
identical per-request outcomes, cold starts, instances and bills."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import run_one
from sim.reference import REFERENCE_MODELS, run_reference
from sim.scenario import load_scenario

from conftest import ROOT, make_scenario


@pytest.fixture(autouse=True)
def _keep_every_row(monkeypatch):
    """Compare every request, not a sample."""
    from sim import defaults

    monkeypatch.setattr(defaults, "REQUESTS_CSV_MAX_ROWS", 10**9)


def _rows(run):
    s = run.stats.sample
    if not s:
        return {
            c: np.zeros(0)
            for c in (
                "arrival",
                "start",
                "end",
                "wait",
                "startup",
                "service",
                "overhead",
                "outcome",
                "cold",
                "instance",
            )
        }
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
    assert fast.bill.total_usd == pytest.approx(ref.bill.total_usd, rel=1e-12)
    assert [(d.time_s, d.after) for d in fast.decisions] == [
        (d.time_s, d.after) for d in ref.decisions
    ]


BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_scenarios_kernel_equals_per_request_path(path):
    sc = load_scenario(path, ["duration=20m", "warmup=1m", "replications=1"])
    checked = 0
    for p in sc.platforms:
        if p.type not in REFERENCE_MODELS:
            continue
        assert_same(run_one(sc, p.name, 0, path.parent), run_reference(sc, p.name, 0, path.parent))
        checked += 1
    if not checked:
        pytest.skip("no platform with a reference model in this scenario")


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
    seed=st.integers(0, 2**31),
)
def test_random_lambda_scenarios_kernel_equals_per_request_path(
    rate, median_ms, spread, ka, pc, reserved, burst, retries, timeout, memory, mru, seed
):
    platform = {
        "name": "fn",
        "type": "lambda",
        "memory": memory,
        "provisioned_concurrency": pc,
        "reserved_concurrency": reserved,
        "scaling_rate": {"burst": burst, "refill": "2/s"},
        "client": {"retries": retries},
        "timeout": f"{timeout}s",
        "reuse": "mru" if mru else "lru",
        "api_gateway": "http",
        "gateway_latency": {"dist": "exponential", "mean": "3ms"},
        "keep_alive": f"{ka}s" if ka else {"dist": "uniform", "low": "60s", "high": "300s"},
    }
    sc = make_scenario(
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
                        "p99": f"{median_ms * spread}ms",
                    },
                    "cpu_bound": 0.7,
                },
            },
            "platforms": [platform],
        }
    )
    assert_same(run_one(sc, "fn", 0, ROOT), run_reference(sc, "fn", 0, ROOT))


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
