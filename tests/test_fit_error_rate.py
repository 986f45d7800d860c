"""`workload.service.error_rate` (written by `sim fit` from the logs' handler errors): a share of
requests whose handler fails after its handler time; outcome `error`, the same requests on every
platform, billed by Lambda, counted in latency and in error_rate; 0 leaves results unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from sim.engine import run_one
from sim.records import ERROR, OK, handler_errors
from sim.statistics import summarize_platform
from sim.validation.reference import run_reference

from conftest import ROOT, make_scenario


def _scenario(rate: float) -> object:
    return make_scenario(
        {
            "name": "errors",
            "duration": "30m",
            "replications": 1,
            "seed": 3,
            "workload": {
                "arrivals": [{"steady": {"rate": "5/s"}}],
                "service": {
                    "duration": {"dist": "lognormal", "median": "100ms", "p99": "600ms"},
                    "error_rate": rate,
                },
            },
            "platforms": [
                {"name": "fn", "type": "lambda", "memory": 512, "timeout": "1s"},
                {"name": "edge", "type": "wasm", "pricing": "cloudflare-workers"},
                {
                    "name": "k8s",
                    "type": "kubernetes",
                    "replicas": 2,
                    "pod": {"concurrency": 8, "cpu": "1", "memory": "1Gi"},
                    "cluster": {"node": "c5.xlarge", "min_nodes": 1, "max_nodes": 1},
                },
            ],
        }
    )


def _by_arrival(run) -> dict[str, np.ndarray]:
    s = run.stats.sample
    order = np.argsort(s["arrival"], kind="stable")
    return {k: np.asarray(v)[order] for k, v in s.items()}


def test_draw_is_uniform_and_monotone_in_the_rate() -> None:
    t = np.sort(np.random.default_rng(1).uniform(0, 3600, 200_000))
    lo, hi = handler_errors(t, 0.05, 12345), handler_errors(t, 0.2, 12345)
    for mask, p in ((lo, 0.05), (hi, 0.2)):
        # binomial 99.9% interval around the rate
        a, b = sps.binom.interval(0.999, t.size, p)
        assert a <= mask.sum() <= b
    assert not (lo & ~hi).any()  # raising the rate only adds failures
    assert not handler_errors(t, 0.0, 12345).any() and handler_errors(t, 1.0, 12345).all()
    assert (handler_errors(t, 0.2, 999) != hi).any()  # the key (per replication) matters


@pytest.fixture(scope="module")
def runs() -> dict[float, dict[str, object]]:
    out = {}
    for rate in (0.0, 0.25):
        sc = _scenario(rate)
        out[rate] = {p.name: run_one(sc, p.name, 0, ROOT, keep_all_rows=True) for p in sc.platforms}
    return out


def test_the_same_requests_fail_on_every_platform(runs) -> None:
    rows = {name: _by_arrival(r) for name, r in runs[0.25].items()}
    base = {name: _by_arrival(r) for name, r in runs[0.0].items()}
    arrival = base["fn"]["arrival"]
    for name in rows:  # every platform sees the same requests, once each
        assert np.array_equal(rows[name]["arrival"], arrival)
        assert np.array_equal(base[name]["arrival"], arrival)
    # only requests that would have been ok fail (Lambda's 1 s timeouts stay timeouts) ...
    for name, r in rows.items():
        err = r["outcome"] == ERROR
        assert (base[name]["outcome"][err] == OK).all()
        assert np.array_equal(r["outcome"][~err], base[name]["outcome"][~err])
    # ... and among the requests ok everywhere, the same ones fail on every platform
    ok_all = np.logical_and.reduce([b["outcome"] == OK for b in base.values()])
    failed = [r["outcome"][ok_all] == ERROR for r in rows.values()]
    assert np.array_equal(failed[0], failed[1]) and np.array_equal(failed[0], failed[2])
    a, b = sps.binom.interval(0.999, int(ok_all.sum()), 0.25)
    assert a <= failed[0].sum() <= b


def test_errors_are_billed_timed_and_counted(runs) -> None:
    sc = _scenario(0.25)
    fn0, fn = runs[0.0]["fn"], runs[0.25]["fn"]
    # the handler ran its full time: same bill, same latencies (errors count in latency)
    assert fn.bill.total_usd == fn0.bill.total_usd
    assert fn.stats.latency == fn0.stats.latency
    s = summarize_platform(sc, [fn])
    n_err = fn.stats.outcomes["error"]
    assert s["failed"]["error"] == n_err > 0
    assert s["error_rate"] == pytest.approx(sum(s["failed"].values()) / s["requests"])
    assert s["completed"] == fn.stats.outcomes["ok"]
    # error_rate 0: no `error` entry at all (summaries of older scenarios keep their bytes)
    s0 = summarize_platform(_scenario(0.0), [fn0])
    assert "error" not in s0["failed"] and "error" not in fn0.stats.outcomes


def test_kernel_equals_per_request_path_with_errors() -> None:
    sc = _scenario(0.25)
    for p in sc.platforms:
        fast = _by_arrival(run_one(sc, p.name, 0, ROOT, keep_all_rows=True))
        ref = _by_arrival(run_reference(sc, p.name, 0, ROOT))
        np.testing.assert_array_equal(fast["arrival"], ref["arrival"])
        np.testing.assert_array_equal(fast["outcome"], ref["outcome"], err_msg=p.name)
        assert (fast["outcome"] == ERROR).any()
