"""Per-pod FCFS (KubernetesModel._advance_fcfs) against the event loop (_advance_pp): with round
robin a request's start is known when it is assigned, so the fast path computes it without
completion events. Same scenario and seed -> the same rows in the same order (the requests sample
is drawn in row order), the same summary, decisions, timeline and bill."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.dev import bench
from sim.engine import run_one
from sim.platforms.kubernetes import KubernetesModel, start_order

from conftest import ROOT, make_scenario


def _run(data: dict, fcfs: bool, monkeypatch) -> tuple[object, int]:
    calls = [0]
    real = KubernetesModel._advance_fcfs

    def fast(self, until):
        done = fcfs and real(self, until)
        calls[0] += bool(done)
        return done

    with monkeypatch.context() as m:
        m.setattr(KubernetesModel, "_advance_fcfs", fast)
        sc = make_scenario(data)
        run = run_one(sc, sc.platforms[0].name, 0, ROOT)
    return run, calls[0]


def _scenario(platform: dict, duration: str = "2h", rate: str = "8/s") -> dict:
    return {
        "name": "fcfs",
        "duration": duration,
        "warmup": "1m",
        "replications": 1,
        "seed": 3,
        "workload": {
            "arrivals": [
                {"steady": {"rate": rate}},
                {"spike": {"at": "40m", "peak": "40/s", "rise": "1m", "hold": "5m", "decay": "2m"}},
            ],
            "service": {"duration": {"dist": "exponential", "mean": "1.5s"}, "cpu_bound": 0.0},
        },
        "platforms": [platform],
    }


KEDA_RATE = bench.CASES["kubernetes-keda-50M"]["platform"]  # the month case's KEDA, Prometheus


def _fixed(replicas: int, timeout: str, routing: str) -> dict:
    """A fixed deployment near saturation (8/s x 1.5 s on 2-slot pods): queues and timeouts."""
    return {
        "name": "k8s",
        "type": "kubernetes",
        "replicas": replicas,
        "routing": routing,
        "request_timeout": timeout,
        "pod": {"concurrency": 2},
    }


CASES = {
    "keda-prometheus-from-zero": KEDA_RATE,
    "fixed-overloaded-timeouts": _fixed(7, "20s", "round_robin"),
    "hpa-rps-scale-down": {
        "name": "k8s",
        "type": "kubernetes",
        "pod": {"concurrency": 3},
        "hpa": {"metric": "rps", "target": 1.5, "min_replicas": 1, "max_replicas": 20},
    },
    "keda-concurrency": {
        "name": "k8s",
        "type": "kubernetes",
        "pod": {"concurrency": 1},
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 40,
            "triggers": [{"type": "http", "metadata": {"targetValue": 2}}],
        },
        "routing": "round_robin",
    },
    # random (kube-proxy): the draws are taken in the event loop's order, and given back when an
    # interval goes to the event loop; behind the HTTP add-on, held requests while at zero
    "random-fixed-timeouts": _fixed(6, "15s", "random"),
    "http-add-on-from-zero": {
        "name": "k8s",
        "type": "kubernetes",
        "pod": {"concurrency": 4},
        "keda": {
            "minReplicaCount": 0,
            "maxReplicaCount": 30,
            "cooldownPeriod": 120,
            "triggers": [{"type": "http", "metadata": {"targetValue": 4}}],
        },
    },
}


@pytest.mark.parametrize("name", list(CASES))
def test_fcfs_writes_what_the_event_loop_writes(name, monkeypatch):
    data = _scenario(CASES[name])
    fast, used = _run(data, True, monkeypatch)
    slow, unused = _run(data, False, monkeypatch)
    assert used >= 5 and unused == 0  # the fast path ran (and was off for the other run)
    _assert_same(fast, slow)


def _assert_same(fast, slow) -> None:
    a, b = fast.stats.sample, slow.stats.sample
    assert list(a) == list(b)
    for col in a:  # the same rows in the same order, bit for bit
        np.testing.assert_array_equal(np.asarray(a[col]), np.asarray(b[col]), err_msg=col)
    for f in dataclasses.fields(fast.stats):
        if f.name != "sample":
            assert getattr(fast.stats, f.name) == getattr(slow.stats, f.name), f.name
    assert fast.decisions == slow.decisions
    assert list(fast.timeline) == list(slow.timeline)
    for col in fast.timeline:
        np.testing.assert_array_equal(fast.timeline[col], slow.timeline[col], err_msg=col)
    assert fast.bill.total_usd == slow.bill.total_usd
    assert fast.instances == slow.instances


@pytest.mark.parametrize("routing", ["round_robin", "random"])
def test_fcfs_keeps_its_slots_across_intervals(routing, monkeypatch):
    """The per-pod slots are kept from one FCFS interval to the next (the event loop's heap and
    inflight are written only when read): timeline samples between the KEDA polls (a 7 s step,
    15 s polls), scale events up and down, queues at saturation, a 20 s timeout."""
    data = _scenario({**KEDA_RATE, "routing": routing, "request_timeout": "20s"}, "90m", "10/s")
    data["timeline_step"] = "7s"
    kept = [0]
    real = KubernetesModel._advance_fcfs

    def spy(self, until):
        was = self._fc_slots is not None
        done = real(self, until)
        kept[0] += was and done
        return done

    monkeypatch.setattr(KubernetesModel, "_advance_fcfs", spy)
    fast, used = _run(data, True, monkeypatch)
    slow, _ = _run(data, False, monkeypatch)
    assert kept[0] >= 100 and kept[0] < used
    assert len(fast.decisions) >= 4
    _assert_same(fast, slow)


def test_fcfs_only_where_nothing_reads_the_request_seconds(monkeypatch):
    """Busy / waiting request-seconds are summed in assignment order on the fast path: an
    autoscaler input that reads them (CPU, concurrency over a window) keeps the event loop, and
    so does every balancer whose pick reads state or draws (and ideal_fifo's one queue)."""
    seen: list[bool] = []
    init = KubernetesModel.__init__

    def spy(self, spec, ctx):
        init(self, spec, ctx)
        seen.append(self.fcfs)

    monkeypatch.setattr(KubernetesModel, "__init__", spy)

    def uses_fcfs(platform: dict) -> bool:
        sc = make_scenario(_scenario(platform, "2m"))
        run_one(sc, "k8s", 0, ROOT)
        return seen[-1]

    for metric, target, on in (("cpu", 0.7, False), ("concurrency", 2, False), ("rps", 2, True)):
        hpa = {"metric": metric, "min_replicas": 1, "max_replicas": 5, "target": target}
        assert uses_fcfs({"name": "k8s", "type": "kubernetes", "hpa": hpa}) is on, metric
    for routing in ("least_request", "least_outstanding", "ideal_fifo"):
        assert uses_fcfs({**KEDA_RATE, "routing": routing}) is False, routing
    assert uses_fcfs(KEDA_RATE) is True
    assert uses_fcfs({**KEDA_RATE, "routing": "random"}) is True
    assert uses_fcfs({**KEDA_RATE, "queue_limit": 5}) is False


@pytest.mark.parametrize("routing", ["round_robin", "random"])
def test_fcfs_crosses_the_arrival_chunks(routing, monkeypatch):
    """An interval in which the hour's chunk of arrivals ends takes the next chunk's head in
    the same pass (the driver has offered it) instead of going to the event loop."""
    data = _scenario({**KEDA_RATE, "routing": routing, "request_timeout": "20s"}, "4h", "10/s")
    crossed = [0]
    real = KubernetesModel._advance_fcfs

    def spy(self, until):
        chunk = self._chunk
        done = real(self, until)
        crossed[0] += done and self._chunk is not chunk
        return done

    monkeypatch.setattr(KubernetesModel, "_advance_fcfs", spy)
    fast, _ = _run(data, True, monkeypatch)
    slow, _ = _run(data, False, monkeypatch)
    assert crossed[0] >= 3  # (chunks end at 1 h, 2 h and 3 h)
    _assert_same(fast, slow)


def test_start_order_is_by_start_then_pod_then_row():
    """The flush's order of the rows started from a queue (the event loop's start order): by
    start, ties by pod, then by row (FIFO); worked by hand, and equal to lexsort on random starts
    with and without ties."""
    start = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 2.5])
    pod = np.array([0, 4, 1, 2, 4, 0])
    # start 1.0: rows 1 (pod 4), 3 (pod 2), 4 (pod 4) -> 3, 1, 4; then 2.0, 2.5, 3.0
    assert start_order(start, pod).tolist() == [3, 1, 4, 2, 5, 0]
    rng = np.random.default_rng(5)
    for grid in (0.0, 0.5):  # real-valued starts (no ties), then starts on a grid (many ties)
        s = rng.random(500) * 100
        if grid:
            s = np.round(s / grid) * grid
        p = rng.integers(0, 8, 500)
        np.testing.assert_array_equal(start_order(s, p), np.lexsort((p, s)))
