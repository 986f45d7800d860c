"""The Lambda kernel's plain loop (one function, no provisioned concurrency, no retries, a
constant keep-alive, MRU reuse: LambdaModel._advance_plain) against the per-request SimPy
reference, and against the general loop row for row: cold starts, reuse, keep-alive expiry,
lifetime recycling, concurrency and token throttles, timeouts (discarded environments) and the
per-chunk switch to the general loop when the invocation-rate quota can bind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_equivalence import assert_same

from sim import defaults
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
