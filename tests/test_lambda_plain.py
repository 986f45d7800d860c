"""The Lambda kernel's plain loop (one function, no provisioned concurrency, no retries, a
constant keep-alive, MRU reuse: LambdaModel._advance_plain) against the per-request SimPy
reference, and against the general loop row for row: cold starts, reuse, keep-alive expiry,
lifetime recycling, concurrency and token throttles, timeouts (discarded environments) and the
per-chunk switch to the general loop when the invocation-rate quota can bind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st
from test_equivalence import assert_same, random_lambda_scenario

from sim import defaults
from sim.dev.bench import CASES as BENCH
from sim.engine import run_one
from sim.platforms import lambda_ as L
from sim.validation.reference import run_reference

from conftest import ROOT, make_scenario

CASES = {
    # keep-alive 30 s at ~1 req/s between bursts: expiries, cold starts and reuse
    "keep-alive": {"keep_alive": "30s"},
    # 4 concurrent at most, a 2-token bucket: both kinds of throttle (429, no retry)
    "throttles": {"reserved_concurrency": 4, "scaling_rate": {"burst": 2, "refill": "0.5/s"}},
    # a 150 ms timeout on a 100 ms median: discarded environments come back cold
    "timeouts": {"timeout": "0.15s", "max_environment_lifetime": "2m"},
    # a 3/s quota that binds only in the burst (the second hour): that chunk takes the general
    # loop, the others the plain one
    "rate-quota": {"reserved_concurrency": 3, "invocations_per_concurrency": 1},
}
POISSON = [{"steady": {"rate": "1/s"}}, {"batch": {"every": "20m", "size": 40, "spread": "2s"}}]
ARRIVALS = {
    "rate-quota": [
        {"steady": {"rate": "1/s", "spacing": "uniform"}},
        {"batch": {"at": ["5400s"], "size": 40, "spread": "2s"}},
    ]
}


@pytest.fixture(autouse=True)
def _keep_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "REQUESTS_CSV_MAX_ROWS", 10**9)


def _scenario(settings: dict, arrivals: list = POISSON) -> Any:
    return make_scenario(
        {
            "name": "plain",
            "duration": "3h",  # three one-hour chunks
            "warmup": "1m",
            "replications": 1,
            "seed": 21,
            "workload": {
                "arrivals": arrivals,
                "service": {
                    "duration": {"dist": "lognormal", "median": "100ms", "p99": "600ms"},
                    "cpu_bound": 0.5,
                },
            },
            "platforms": [{"name": "fn", "type": "lambda", **settings}],
        }
    )


@pytest.mark.parametrize("name", list(CASES))
def test_plain_loop_equals_reference_and_general_loop(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = _scenario(CASES[name], ARRIVALS.get(name, POISSON))
    calls: list[bool] = []
    plain = L.LambdaModel._advance_plain

    def counted(self: L.LambdaModel, until: float) -> bool:
        calls.append(plain(self, until))
        return calls[-1]

    monkeypatch.setattr(L.LambdaModel, "_advance_plain", counted)
    fast = run_one(sc, "fn", 0, ROOT)
    assert calls  # the plain loop ran
    if name == "rate-quota":  # ... and handed the burst's chunk to the general loop
        assert False in calls and fast.stats.sample["outcome"].max() > 0
    assert_same(fast, run_reference(sc, "fn", 0, ROOT))

    init = L.LambdaModel.__init__

    def general(self: L.LambdaModel, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        self.plain = False

    monkeypatch.setattr(L.LambdaModel, "__init__", general)
    slow = run_one(sc, "fn", 0, ROOT)
    for col, values in slow.stats.sample.items():
        np.testing.assert_array_equal(fast.stats.sample[col], values, err_msg=col)
    assert fast.bill.to_dict() == slow.bill.to_dict()
    assert fast.instances == slow.instances
    assert [list(v) for v in fast.timeline.values()] == [list(v) for v in slow.timeline.values()]


@pytest.mark.parametrize(
    ("settings", "plain"),
    [
        ({}, True),  # the default platform
        ({"provisioned_concurrency": 1}, False),
        ({"client": {"retries": 1}}, False),
        ({"reuse": "lru"}, False),
        ({"keep_alive": {"dist": "uniform", "low": "60s", "high": "300s"}}, False),
    ],
)
def test_plain_loop_is_taken_only_where_it_applies(
    settings: dict, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    init = L.LambdaModel.__init__

    def spy(self: L.LambdaModel, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        seen.append(self.plain)

    monkeypatch.setattr(L.LambdaModel, "__init__", spy)
    run_one(_scenario(settings), "fn", 0, ROOT)
    assert seen == [plain]


# The rare events of the plain loop, each on its own (tests/test_lambda_compiled.py and
# tests/test_lambda_vector.py hold their fast paths to the Python loop on them).
SIMFAAS = BENCH["lambda-1M"]  # SimFaaS's reference scenario (sim/dev/bench.py)
RARE: dict[str, dict[str, Any]] = {
    "keep-alive": {"keep_alive": "30s"},
    # a 20 min cap at a 10 min keep-alive: environments recycled idle and busy
    "lifetime": {"keep_alive": "10m", "max_environment_lifetime": "20m"},
    "lifetime-drawn": {
        "keep_alive": "2m",
        "max_environment_lifetime": {"dist": "uniform", "low": "3m", "high": "15m"},
    },
    # a 150 ms timeout on a 100 ms median: discarded environments come back cold
    "timeouts": {"timeout": "0.15s"},
    "concurrency": {"reserved_concurrency": 4},
    "tokens": {"scaling_rate": {"burst": 2, "refill": "0.5/s"}},
    "drawn": {
        "init": {"dist": "lognormal", "median": "300ms", "p99": "2s"},
        "api_gateway": "http",
        "gateway_latency": {"dist": "exponential", "mean": "3ms"},
    },
}


def assert_same_runs(fast: Any, slow: Any) -> None:
    """Two runs of one scenario by two paths: the same request rows in the same order,
    statistics, instances, usage, bill and timeline (tests/test_lambda_compiled.py and
    tests/test_lambda_vector.py)."""
    assert fast.stats.sample["arrival"].size == slow.stats.sample["arrival"].size > 0
    for col, values in slow.stats.sample.items():  # in order, not sorted
        np.testing.assert_array_equal(fast.stats.sample[col], values, err_msg=col)
    assert fast.stats.requests_all == slow.stats.requests_all
    assert fast.stats.cold_starts == slow.stats.cold_starts
    assert fast.instances == slow.instances
    assert fast.extra["usage"] == slow.extra["usage"]
    assert fast.bill.to_dict() == slow.bill.to_dict()
    assert fast.timeline.keys() == slow.timeline.keys()
    for key, values in slow.timeline.items():
        np.testing.assert_array_equal(fast.timeline[key], values, err_msg=key)


def _simfaas(duration: str, warmup: str, **platform: Any) -> Any:
    return make_scenario(
        {
            "name": "simfaas",
            "duration": duration,
            "warmup": warmup,
            "replications": 1,
            "seed": 4,
            "workload": SIMFAAS["workload"],
            "platforms": [{**SIMFAAS["platform"], **platform}],
        }
    )


@st.composite
def random_plain_scenarios(draw: Any) -> Any:
    """A random plain-loop scenario (tests/test_equivalence.py's random_lambda_scenario): keep-
    alive, concurrency, token bucket, timeout, lifetime cap and gateway latency drawn, for the
    tests that hold a fast path to the Python loop (compiled kernel, array path)."""
    lifetime = draw(st.one_of(st.none(), st.floats(20.0, 600.0)))
    platform = {
        "name": "fn",
        "type": "lambda",
        "keep_alive": f"{draw(st.floats(1.0, 900.0))}s",
        "reserved_concurrency": draw(st.one_of(st.none(), st.integers(1, 30))),
        "scaling_rate": {"burst": draw(st.integers(1, 50)), "refill": "2/s"},
        "timeout": f"{draw(st.floats(0.2, 20.0))}s",
        "max_environment_lifetime": f"{lifetime}s" if lifetime else None,
    }
    if draw(st.booleans()):
        platform |= {
            "api_gateway": "http",
            "gateway_latency": {"dist": "exponential", "mean": "3ms"},
        }
    rate, median_ms = draw(st.floats(0.2, 30.0)), draw(st.floats(5.0, 3000.0))
    return random_lambda_scenario(platform, rate, median_ms, 5000.0, draw(st.integers(0, 2**31)))
