"""Instance identity in a system's stations: which pod holds each busy slot, so that a spot
kill cuts the requests in service on its pods (sim.systems.engine.SpotPodStation), as the
Kubernetes kernel's `_spot_kill` / `_cut` do. Expected values by hand from the scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_systems import _k8s, _system

from sim.engine import run_one
from sim.records import OK, REJECTED
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent


def _spot_api(
    in_flight: str = "fail", interruptions: list[str] | None = None, provisioning: str = "20s"
) -> dict:
    """`api` (handler 60 s) on one HPA-held pod (min = max = 1, concurrency 2, start-up 5 s) on
    an all-spot m5.xlarge pool; two requests at 1 s. A notice at 10 s (AWS: 120 s notice, 30 s
    grace) drains the node: the pod is deleted and still finishes what it holds, its
    replacement is Pending, a node is launched at 10 s (provisioning 20 s: ready at 30 s), the
    new pod is placed at 30 s and ready at 35 s. At the grace's end (40 s) the old pod still
    holds both requests: it is killed and the node goes."""
    spot = _k8s("spot", 1, 2)
    spot.pop("replicas")
    spot["hpa"] = {"min_replicas": 1, "max_replicas": 1, "metric": "cpu", "target": "60%"}
    spot["pod"]["startup"] = "5s"
    spot["cluster"] |= {
        "node_provisioning": provisioning,
        "spot": {
            "interruptions": ["10s"] if interruptions is None else interruptions,
            "in_flight": in_flight,
        },
    }
    services = [{"name": "api", "entry": 1, "handler": "60s"}]
    data = _system(
        services, [spot], {"p": {"api": "spot"}}, replications=1, duration="10m", warmup=0
    )
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 2}}]}
    return data


def _run(data: dict, ref: bool = False) -> Any:
    models = {"system": ReferenceSystem} if ref else None
    return run_one(make_scenario(data), "p", 0, ROOT, keep_all_rows=True, models=models)


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_fails_the_requests_in_flight_at_the_kill(ref: bool) -> None:
    """in_flight fail: both requests fail (REJECTED, a 502) at the kill, 40 s: 39 s end to end;
    the service's errors rise by the 2 killed; 2 busy slots cut, both requests."""
    run = _run(_spot_api("fail"), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(s["outcome"], [REJECTED, REJECTED])
    np.testing.assert_allclose(s["end"], [40.0, 40.0], atol=1e-9)
    np.testing.assert_allclose(s["end"] - s["arrival"], [39.0, 39.0], atol=1e-9)
    sysx = run.extra["system"]
    nodes = sysx["nodes"]["spot"]
    assert (nodes["spot_slots_cut"], nodes["spot_requests_killed"]) == (2, 2)
    assert [d.time_s for d in run.decisions if "grace period over" in d.reason] == [40.0]
    out = sysx["services"]["api"]["outcomes"]
    calm = _run(_spot_api("fail", interruptions=[]), ref).extra["system"]["services"]["api"]
    assert sum(v for k, v in calm["outcomes"].items() if k != "ok") == 0
    assert sum(v for k, v in out.items() if k != "ok") == 2  # + the killed in-flight count


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_with_retry_restarts_on_the_replacement_pod(ref: bool) -> None:
    """in_flight retry: at 40 s both are sent again keeping their arrival (1 s); the replacement
    pod (ready since 35 s, concurrency 2) takes both: they run 40-100 s, ok. End to end 99 s;
    their rows start at 40 s (the run that answered), waited 39 s."""
    run = _run(_spot_api("retry"), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(s["outcome"], [OK, OK])
    np.testing.assert_allclose(s["end"], [100.0, 100.0], atol=1e-9)
    np.testing.assert_allclose(s["end"] - s["arrival"], [99.0, 99.0], atol=1e-9)
    np.testing.assert_allclose(s["start"], [40.0, 40.0], atol=1e-9)
    svc = run.extra["system"]["services"]["api"]
    assert svc["outcomes"].get("ok") == 2 and svc["requests"] == 2
    assert run.extra["system"]["nodes"]["spot"]["spot_requests_killed"] == 2


@pytest.mark.parametrize("ref", [False, True])
def test_spot_retry_with_no_ready_pod_is_refused(ref: bool) -> None:
    """Provisioning 50 s: the replacement is ready only at 65 s; the requests sent again at 40 s
    find no ready pod (no endpoints: refused at once, as any request then)."""
    run = _run(_spot_api("retry", provisioning="50s"), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(s["outcome"], [REJECTED, REJECTED])
    np.testing.assert_allclose(s["end"], [40.0, 40.0], atol=1e-9)


def test_spot_kill_failure_goes_to_the_callers_retry_policy() -> None:
    """`front` (a fixed Deployment, not spot) calls `api` with 1 retry and a 1 ms backoff base:
    the first attempts fail at the kill (40 s), the retries (within 1 ms) run on the replacement
    pod (ready since 35 s) and end 60 s later: front answers ok at ~100 s."""
    data = _spot_api("fail")
    data["platforms"].append(_k8s("eks", 1, 10))
    data["services"] = [
        {
            "name": "front",
            "entry": 1,
            "handler": "1ms",
            "steps": [{"call": "api", "timeout": "10m", "retries": 1, "backoff": {"base": "1ms"}}],
        },
        {"name": "api", "handler": "60s"},
    ]
    data["placements"][0]["services"] = {"front": "eks", "api": "spot"}
    for ref in (False, True):
        run = _run(data, ref)
        s = run.stats.sample
        np.testing.assert_array_equal(s["outcome"], [OK, OK])
        np.testing.assert_allclose(s["end"], [100.0, 100.0], atol=2e-3)
        api = run.extra["system"]["services"]["api"]
        assert api["outcomes"] == {"ok": 2, "rejected": 2} | {
            k: 0 for k in api["outcomes"] if k not in ("ok", "rejected")
        }
