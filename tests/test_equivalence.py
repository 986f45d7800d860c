"""The fast kernels against the per-request SimPy path (sim.reference): same scenario, same seed,
identical per-request outcomes, cold starts, instances and bills."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, make_scenario
from sim.engine import run_one
from sim.reference import REFERENCE_MODELS, run_reference
from sim.scenario import load_scenario


def _rows(run):
    s = run.stats.sample
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
