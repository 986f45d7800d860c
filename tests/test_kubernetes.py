"""Kubernetes model: hand-worked cases for the data plane, pod lifecycle, nodes, KEDA, HPA, bill."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import simpy
import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.platforms.base import RunContext
from sim.platforms.kubernetes import DRAINING, GONE, READY, KubernetesModel
from sim.platforms.kubernetes_spec import KubernetesSpec
from sim.records import Recorder
from sim.workload import RequestChunk

from conftest import ROOT, make_scenario, run_platform


def k8s(**kw):
    base = {"name": "k8s", "type": "kubernetes", "ingress_latency": "0s", "pod": {"cpu": 1}}
    base.update(kw)
    return base


def scen(arrivals, service, platform, duration="1h", **top):
    data = {
        "name": "t",
        "duration": duration,
        "replications": 1,
        "seed": 3,
        "workload": {"arrivals": arrivals, "service": service},
        "platforms": [platform],
    }
    data.update(top)
    return make_scenario(data)


def rows(run):
    return {k: np.asarray(v) for k, v in run.stats.sample.items()}


def at(*times):
    return [{"batch": {"at": [f"{t}s" for t in times], "size": 1}}]


# -- a white-box harness: the model alone, with scripted replica changes ---------------------------


def drive(platform, arrivals, services, actions=(), duration=2000.0, cpu_bound=1.0):
    """Run the model on fixed arrivals; `actions` = [(time, replicas)] applied as control events."""
    spec = KubernetesSpec.model_validate(platform)
    env = simpy.Environment()
    rec = Recorder(
        0.0,
        max_rows=10**6,
        rel_error=0.001,
        sample_rows=10**6,
        rng=np.random.default_rng(0),
        horizon=duration,
    )
    ctx = RunContext(
        env=env,
        rng=np.random.default_rng(1),
        recorder=rec,
        duration=duration,
        warmup=0.0,
        cpu_bound=cpu_bound,
        function_names=["f"],
    )
    model = KubernetesModel(spec, ctx)
    model.start()
    a = np.asarray(arrivals, dtype=float)
    model.offer(RequestChunk(a, np.asarray(services, dtype=float), np.zeros(a.size, np.int32)))
    seen = {}

    def script():
        for t, n in actions:
            yield env.timeout(t - env.now)
            model._catch_up(env.now)
            model._scale_to(n, "test", f"scripted {n}")
            seen[t] = [model.state[p] for p in range(len(model.state))]

    def driver():  # as the engine's: data plane up to the next control event, then yield
        while True:
            horizon = min(env.peek(), duration)
            model.advance(horizon)
            if horizon >= duration:
                return
            yield env.timeout(horizon - env.now)

    env.process(script())
    env.process(driver())
    env.run(until=duration + 1e-9)
    model.finish()
    return model, ctx, rec.stats().sample, seen


# -- data plane ------------------------------------------------------------------------------------


def test_queue_limit_rejects_exactly_the_overflow():
    """ideal_fifo: 2 pods x 1 slot, queue_limit 3 in total, 9 requests at once: 2 served, 3 wait,
    4 rejected."""
    sc = scen(
        [{"batch": {"at": ["1s"], "size": 9}}],
        {"duration": "10s"},
        k8s(replicas=2, queue_limit=3, routing="ideal_fifo"),
        duration="2m",
    )
    run = run_platform(sc)
    assert run.stats.outcomes == {"ok": 5, "throttled": 0, "rejected": 4, "timed_out": 0}
    r = rows(run)
    ok = r["outcome"] == 0
    assert sorted(r["start"][ok]) == [1, 1, 11, 11, 21]


def test_queue_limit_is_per_pod_with_per_pod_queues():
    """round_robin: 9 requests at once on 2 pods x 1 slot, queue_limit 3 per pod. Pod 0 gets
    #1, 3, 5, 7, 9: #1 runs, #3, 5, 7 wait, #9 finds its backlog full (503); pod 1 gets #2, 4, 6, 8:
    #2 runs, three wait. 8 ok, 1 rejected (a total cap of 3 rejects 4)."""
    sc = scen(
        [{"batch": {"at": ["1s"], "size": 9}}],
        {"duration": "10s"},
        k8s(replicas=2, queue_limit=3, routing="round_robin"),
        duration="2m",
    )
    run = run_platform(sc)
    assert run.stats.outcomes == {"ok": 8, "throttled": 0, "rejected": 1, "timed_out": 0}
    r = rows(run)
    ok = r["outcome"] == 0
    assert sorted(r["start"][ok]) == [1, 1, 11, 11, 21, 21, 31, 31]
    assert list(r["instance"][ok]) == [0, 1, 0, 1, 0, 1, 0, 1]


def test_request_timeout_in_queue_and_in_service():
    """1 pod, service 10 s, timeout 25 s, requests at 1, 2, 3, 4.

    #1 runs 1-11 (ok); #2 waits to 11, runs to 21 (ok); #3 starts at 21, its deadline is 28: the
    client gets timed_out at 28 while the pod works to 31; #4 (deadline 29) is still waiting at its
    deadline and leaves the queue at 29.
    """
    sc = scen(
        at(1, 2, 3, 4), {"duration": "10s"}, k8s(replicas=1, request_timeout="25s"), duration="2m"
    )
    r = rows(run_platform(sc))
    assert list(r["outcome"]) == [0, 0, 3, 3]
    assert np.allclose(r["start"], [1, 11, 21, 29])
    assert np.allclose(r["end"], [11, 21, 28, 29])
    assert np.allclose(r["service"], [10, 10, 7, 0])
    assert list(r["instance"]) == [0, 0, 0, -1]


def test_pod_keeps_working_after_client_timeout():
    """The slot of a request timed out in service stays busy until the service really ends."""
    sc = scen(at(0.5, 1), {"duration": "10s"}, k8s(replicas=1, request_timeout="5s"), duration="1m")
    r = rows(run_platform(sc))
    # #1 timed out for its client at 5.5, but the pod is busy until 10.5: #2 (deadline 6) never
    # gets it and times out waiting.
    assert list(r["outcome"]) == [3, 3]
    assert np.allclose(r["end"], [5.5, 6.0])


@pytest.mark.parametrize(
    ("cpu", "cpu_bound", "factor"),
    [
        ("500m", 0.5, 0.5 + 0.5 / 0.5),
        ("250m", 1.0, 4.0),
        ("2", 1.0, 1.0),  # single-threaded: a second core does not help
        ("500m", 0.0, 1.0),  # pure I/O wait does not slow down
    ],
)
def test_cpu_share_scales_the_cpu_bound_part(cpu, cpu_bound, factor):
    sc = scen(
        at(1, 5),
        {"duration": "200ms", "cpu_bound": cpu_bound},
        k8s(replicas=1, pod={"cpu": cpu}, cluster={"node": "c5.xlarge"}),
        duration="1m",
    )
    r = rows(run_platform(sc))
    assert np.allclose(r["service"], 0.2 * factor)


def test_ideal_fifo_spreads_concurrent_requests():
    """ideal_fifo (alias least_connections): 3 pods x concurrency 2, 3 requests: one per pod
    (fewest in flight first)."""
    sc = scen(
        [{"batch": {"at": ["1s"], "size": 3}}],
        {"duration": "5s"},
        k8s(replicas=3, pod={"cpu": 1, "concurrency": 2}, routing="least_connections"),
        duration="1m",
    )
    r = rows(run_platform(sc))
    assert sorted(r["instance"]) == [0, 1, 2]
    assert np.allclose(r["wait"], 0)


def test_round_robin_ignores_idle_pods():
    """round_robin: arrivals 1, 2, 3, 4 go to pods 0, 1, 0, 1; #3 waits behind #1 on pod 0."""
    sc = scen(
        at(1, 2, 3, 4), {"duration": "10s"}, k8s(replicas=2, routing="round_robin"), duration="1m"
    )
    r = rows(run_platform(sc))
    assert list(r["instance"]) == [0, 1, 0, 1]
    assert np.allclose(r["start"], [1, 2, 11, 12])


# The same four requests on 2 pods x 1 slot under each routing (hand-worked): #1 at 0 (10 s),
# #2 at 1 (1 s), #3 at 3 (1 s), #4 at 3.5 (1 s).
FOUR = ([0.0, 1.0, 3.0, 3.5], [10.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("routing", "pods", "starts"),
    [
        # ALB round robin: 0, 1, 0, 1 whatever the load: #3 waits behind #1 until 10.
        ("round_robin", [0, 1, 0, 1], [0, 1, 10, 3.5]),
        # ALB least outstanding: #3 -> pod 1 (0 outstanding vs 1); #4 ties at 1-1 -> lowest pod
        # id, pod 0, where it waits until 10 (pod 1 frees at 4, but the request is assigned).
        ("least_outstanding", [0, 1, 1, 0], [0, 1, 3, 10]),
        # ideal_fifo: #4 waits in the one queue and takes the first free slot (pod 1 at 4).
        ("ideal_fifo", [0, 1, 1, 1], [0, 1, 3, 4]),
    ],
)
def test_routing_assigns_on_arrival(routing, pods, starts):
    _model, _ctx, r, _seen = drive(k8s(replicas=2, routing=routing), *FOUR, cpu_bound=0.0)
    assert list(r["instance"]) == pods
    assert np.allclose(r["start"], starts)


def test_least_request_is_power_of_two_choices_with_replacement():
    """Envoy LEAST_REQUEST (choice_count 2): two uniform draws with replacement, the one with
    fewer active requests wins, the first on a tie. Pod 0 holds a 10^6 s request, so it always
    has more outstanding than pod 1 (whose 1 ms requests end before the next arrival): a request
    goes to pod 0 only when both draws hit it, P = (1/2)^2 = 1/4 (random routing: 1/2; without
    replacement: 0). Exact binomial test on 4,000 requests."""
    n = 4000
    arrivals = [0.0, *(1.0 + k for k in range(n))]
    services = [1e6, *([0.001] * n)]
    _model, _ctx, r, _seen = drive(
        k8s(replicas=2, routing="least_request", request_timeout=None),
        arrivals,
        services,
        duration=n + 10.0,
        cpu_bound=0.0,
    )
    hits = int((r["instance"][1:] == 0).sum())  # sent to pod 0 (they wait for the long one)
    assert np.allclose(r["start"][1:][r["instance"][1:] == 0] >= 1e6, True)
    from scipy import stats

    assert stats.binomtest(hits, n, 0.25).pvalue > 1e-3, hits


def test_random_routing_is_uniform_over_ready_pods():
    """kube-proxy iptables: rule i of n matches with probability 1/(n - i), the last always:
    P(pod i) = prod_{j<i} (1 - 1/(n-j)) x 1/(n-i) = 1/n. 3,000 spaced requests on 3 pods: chi-square
    against uniform counts (round robin would give exactly 1,000 each: a p-value of 1)."""
    n, pods = 3000, 3
    probs = []
    for i in range(pods):  # the iptables cascade, worked
        rest = math.prod(1 - 1 / (pods - j) for j in range(i))
        probs.append(rest * (1 / (pods - i) if i < pods - 1 else 1.0))
    assert np.allclose(probs, 1 / pods)
    _m, _c, r, _s = drive(
        k8s(replicas=pods, routing="random"),
        [float(k) for k in range(n)],
        [0.001] * n,
        duration=n + 10.0,
        cpu_bound=0.0,
    )
    counts = np.bincount(r["instance"], minlength=pods)
    from scipy import stats

    p = stats.chisquare(counts).pvalue
    assert 1e-3 < p < 0.999, counts


def test_draining_pod_finishes_its_queue_and_gets_nothing_new():
    """round_robin, 2 pods x 1 slot, 10 s requests at 1, 1.5, 2, 2.5: pod 0 runs #1 and holds #3,
    pod 1 runs #2 and holds #4. Scale to 1 at 3: both pods were created and became ready at the
    same instant, so ActivePodsWithRanks ties down to the UID, for which sim uses the pod id
    (lowest first): pod 0 leaves the endpoints but finishes #1 and its queued #3 (11-21), then
    goes; #5 at 4 goes to pod 1 only and waits behind #4 until 21.5."""
    model, _ctx, r, seen = drive(
        k8s(replicas=2, routing="round_robin", load_balancer="none"),
        [1.0, 1.5, 2.0, 2.5, 4.0],
        [10.0, 10.0, 10.0, 10.0, 1.0],
        actions=[(3.0, 1)],
        cpu_bound=0.0,
    )
    assert list(r["instance"]) == [0, 1, 0, 1, 1]
    assert np.allclose(r["start"], [1, 1.5, 11, 11.5, 21.5])
    assert seen[3.0][0] == DRAINING and model.state[0] == GONE
    assert (r["outcome"] == 0).all()


def test_held_requests_are_forwarded_to_the_first_ready_pod():
    """0 replicas; 10 s requests at 1, 2, 3, 4 are held (the interceptor / entry path); scale to
    2 at 5 with a 2 s start: both pods are ready at 7, pod 0 first. The held requests are forwarded
    when pod 0 is the only endpoint, so all four queue on it (7, 17, 27, 37) while pod 1 stays
    idle; the old global queue gave pods 0 and 1 two each (7, 7, 17, 17)."""
    _model, _ctx, r, _seen = drive(
        k8s(replicas=0, routing="random", pod={"cpu": 1, "startup": "2s"}),
        [1.0, 2.0, 3.0, 4.0],
        [10.0] * 4,
        actions=[(5.0, 2)],
        cpu_bound=0.0,
    )
    assert list(r["instance"]) == [0, 0, 0, 0]
    assert np.allclose(r["start"], [7, 17, 27, 37])
    assert r["cold"].all()


def test_interceptor_readiness_timeout_answers_504():
    """HTTP add-on, KEDA_HTTP_READINESS_TIMEOUT 1 s: a request at 100.2 is held; the pod is
    ready at 102.5 (poll 100.5 + 2 s start), after its 1 s hold limit: timed_out (504) at 101.2.
    Default (0s = no limit, http-add-on v0.15.0): it waits and is served at 102.5."""

    def run(interceptor):
        sc = scen(
            at(100.2),
            {"duration": "100ms"},
            k8s(
                keda={"file": "tests/data/keda_httpscaledobject.yaml"},
                pod={"cpu": 1, "startup": "2s"},
                interceptor=interceptor,
            ),
            duration="10m",
        )
        return rows(run_platform(sc))

    r = run({"readiness_timeout": "1s"})
    assert list(r["outcome"]) == [3] and r["end"][0] == pytest.approx(101.2)
    assert r["wait"][0] == pytest.approx(1.0)
    r = run({})
    assert list(r["outcome"]) == [0] and r["start"][0] == pytest.approx(102.5)


def test_ingress_latency_is_added_to_the_client_latency():
    sc = scen(at(1), {"duration": "100ms"}, k8s(replicas=1, ingress_latency="3ms"), duration="1m")
    run = run_platform(sc)
    assert run.stats.latency["max"] == pytest.approx(103.0)


# -- scale from zero and back (KEDA) ---------------------------------------------------------------

KEDA_PROM = {
    "pollingInterval": 30,
    "cooldownPeriod": 300,
    "triggers": [{"type": "prometheus", "metadata": {"threshold": "10"}}],
}


@pytest.mark.parametrize(
    ("min_nodes", "extra"), [(1, 0.0), (0, 40.0)], ids=["room-on-a-node", "node-provisioned"]
)
def test_scale_from_zero_waits_for_poll_startup_and_node(min_nodes, extra):
    """Idle at 0 replicas; a request at 100 s is seen by the poll at 120 s (pollingInterval 30),
    the pod starts in 5 s (+ 40 s for a node when none has room): it starts at 125 (or 165)."""
    sc = scen(
        at(100),
        {"duration": "100ms"},
        k8s(
            keda=KEDA_PROM,
            pod={"cpu": 1, "startup": "5s"},
            cluster={"min_nodes": min_nodes, "node_provisioning": "40s"},
        ),
    )
    run = run_platform(sc)
    r = rows(run)
    poll, startup = 30.0, 5.0
    assert r["cold"].all()
    assert r["start"][0] == pytest.approx(120 + startup + extra)
    assert r["wait"][0] <= poll + startup + extra  # the bound the settings imply
    first = run.decisions[0]
    assert (first.kind, first.time_s, first.before, first.after) == ("keda", 120.0, 0, 1)
    assert run.stats.cold_starts == 1


def test_scale_to_zero_after_window_plus_cooldown_then_node_removed():
    """Last request at 100.5 s; the Prometheus rate window is 2 min, polls every 30 s.

    Active polls are those whose window [p - 120, p) holds an arrival: the last is p = 210.
    KEDA scales to zero at the first poll later than 210 + cooldown 300, i.e. 540 s. The pod had
    nothing in flight, so its node (min_nodes 0) is empty from 540 s; Karpenter's look at 540 s
    (after the poll) finds it empty and removes it after the 15 s validation: 555 s.
    Node bill: launched at 120 s, removed at 555 s: 435 s x $0.096/h.
    """
    sc = scen(
        at(100, 100.5),
        {"duration": "100ms"},
        k8s(
            keda=KEDA_PROM,
            pod={"cpu": 1, "startup": "5s"},
            cluster={"min_nodes": 0, "node_provisioning": "40s"},
            load_balancer="none",
        ),
    )
    run = run_platform(sc)
    keda = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "keda"]
    assert keda == [(120.0, 0, 1), (540.0, 1, 0)]
    nodes = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "nodes"]
    assert nodes == [(120.0, 0, 1), (555.0, 1, 0)]
    assert run.bill.breakdown["nodes"] == pytest.approx(435 / 3600 * 0.096)
    tl = run.timeline
    assert tl["desired"][(tl["time_s"] > 130) & (tl["time_s"] < 540)].min() == 1
    assert tl["instances"][tl["time_s"] > 545].max() == 0


def test_scaled_object_manifest_file_loads_and_runs():
    """`keda: {file: ...}` with a real ScaledObject (prometheus, 1m query window, poll 15 s,
    cooldown 120 s, initialCooldownPeriod 60 s, behavior): scale from zero and back."""
    sc = scen(
        [{"spike": {"at": "5m", "peak": "200/s", "rise": "30s", "hold": "3m", "decay": "30s"}}],
        {"duration": {"dist": "exponential", "mean": "100ms"}},
        k8s(
            keda={"file": "tests/data/keda_scaledobject.yaml"},
            pod={"cpu": 1, "concurrency": 4, "startup": "5s"},
            routing="ideal_fifo",  # the shared queue: per-pod queues pin pod 0's backlog
        ),
        duration="30m",
    )
    spec = sc.platforms[0].keda
    assert (spec.pollingInterval, spec.cooldownPeriod, spec.maxReplicaCount) == (15, 120, 40)
    run = run_platform(sc)
    kinds = {d.kind for d in run.decisions}
    assert {"keda", "keda_hpa"} <= kinds
    up = next(d for d in run.decisions if d.kind == "keda")
    assert (up.before, up.after) == (0, 1) and 300 < up.time_s <= 315
    down = [d for d in run.decisions if d.kind == "keda" and d.after == 0]
    # The spike ends at 540 s; the 1-minute rate falls to <= activationThreshold 0.5 by 600 s;
    # zero at the first 15 s poll after the last active one + cooldownPeriod 120 s.
    assert len(down) == 1 and 540 + 120 < down[0].time_s <= 540 + 60 + 120 + 15
    assert run.stats.outcomes["ok"] == run.stats.requests
    # threshold 50 req/s per replica: 200/s -> 4 (10% tolerance keeps it there)
    assert max(run.timeline["desired"]) == 4


def test_http_scaled_object_polls_every_half_second():
    sc = scen(
        at(100.2),
        {"duration": "100ms"},
        k8s(
            keda={"file": "tests/data/keda_httpscaledobject.yaml"}, pod={"cpu": 1, "startup": "2s"}
        ),
        duration="10m",
    )
    r = rows(run_platform(sc))
    assert r["start"][0] == pytest.approx(100.5 + 2.0)


# -- HPA -------------------------------------------------------------------------------------------


def test_hpa_first_sync_is_rate_limited_to_four():
    """10 req/s of 1 s work on 1 pod: concurrency far above target 1; an HPA without behavior
    scales at most to max(2 x 1, 4) = 4 at the first sync (15 s)."""
    sc = scen(
        [{"steady": {"rate": "10/s", "spacing": "uniform"}}],
        {"duration": "1s"},
        k8s(
            hpa={"min_replicas": 1, "max_replicas": 30, "metric": "concurrency", "target": 1},
            pod={"cpu": 1, "startup": "2s"},
            routing="ideal_fifo",  # per-pod queues keep pod 0's early backlog (and the metric)
        ),
        duration="10m",
    )
    run = run_platform(sc)
    first = run.decisions[0]
    assert (first.kind, first.time_s, first.before, first.after) == ("hpa", 15.0, 1, 4)
    assert "rate-limit-up" in first.reason
    # Steady state: 10 busy slots; concurrency target 1 -> about 10 pods (tolerance 10%).
    assert 10 <= run.timeline["desired"][-1] <= 11


def test_hpa_cpu_metric_is_busy_cpu_over_requested_cpu():
    """cpu 500m, cpu_bound 0.5: a request runs 1.5x as long using 0.5/1.5 = 1/3 core; one pod
    busy all the time uses 1/3 / 0.5 = 67% of its request: within 10% of a 67% target, no
    change; against 30% it scales up."""

    def run(target):
        sc = scen(
            [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
            {"duration": f"{1 / 1.5}s", "cpu_bound": 0.5},
            k8s(
                hpa={"min_replicas": 1, "max_replicas": 5, "metric": "cpu", "target": target},
                pod={"cpu": "500m", "startup": "1s"},
            ),
            duration="2m",
        )
        return run_platform(sc).decisions

    assert run("67%") == []
    assert run("30%")[0].after == 3  # ceil(1 x 0.667 / 0.3) = 3


# -- pod lifecycle and nodes -----------------------------------------------------------------------


def test_scale_down_order_and_draining():
    """3 ready pods at 0 (one m5.large holds 3 pods of 500m); scale to 5 at 10 s: pods 3, 4 wait
    for a second node (20 s) and start (5 s): ready at 35. Scale to 2 at 50 s: 3 victims in
    ReplicaSet order (controller_utils.go ActivePodsWithRanks): all 5 are assigned, Running and
    ready; rule 5 puts the pods on the node with more active pods of the set first (node 0: 3,
    node 1: 2), so pods 0, 1, 2 go, not the most recently ready 4, 3, 2. Pod 2 holds the 99 s
    request and drains until 100 s. Karpenter (consolidateAfter 0s) sees node 0 at its 50 s
    look as movable (no active pod), re-validates 15 s later and cordons it at 65 s; it goes
    when pod 2 leaves, at 100 s."""
    platform = k8s(
        replicas=3,
        pod={"cpu": "500m", "startup": "5s"},
        cluster={"min_nodes": 1, "node_provisioning": "20s"},
        load_balancer="none",
        routing="ideal_fifo",
    )
    model, ctx, r, seen = drive(
        platform,
        [1.0, 1.0, 1.0, 10.0],
        [1.0, 1.0, 99.0, 1.0],
        actions=[(10.0, 5), (50.0, 2)],
        duration=2000.0,
        cpu_bound=0.0,
    )
    long_pod = int(r["instance"][np.argmax(r["service"])])
    assert r["end"].max() == pytest.approx(100.0)
    assert long_pod in (0, 1, 2)
    for pid in (0, 1, 2):
        assert seen[50.0][pid] == (DRAINING if pid == long_pod else GONE)
    assert [seen[50.0][p] for p in (3, 4)] == [READY, READY]
    assert model.state[long_pod] == GONE
    assert (r["outcome"] == 0).all()
    node_events = [(d.time_s, d.before, d.after) for d in ctx.decisions if d.kind == "nodes"]
    assert node_events == [(10.0, 1, 2), (65.0, 2, 2), (100.0, 2, 1)]
    usage = model.usage()
    assert [(n.start_s, n.end_s) for n in usage.nodes] == [(0.0, 100.0), (10.0, 2000.0)]


def test_scale_down_ranks_ready_time_in_log2_buckets():
    """LogarithmicScaleDown: ready times compare as int(log2(age in ns)); within one bucket the
    UID (here the pod id) decides. Pod 1 ready at 15 s, pod 2 at 25 s, all on one node; at 95 s
    their ages 80 s and 70 s are both bucket 36 (2^36 ns = 68.7 s), so pod 1 goes, although pod
    2 became ready more recently. Pod 0 (ready long before) stays."""
    platform = k8s(replicas=1, pod={"cpu": "500m", "startup": "5s"}, load_balancer="none")
    assert int(math.log2(80e9)) == int(math.log2(70e9)) == 36
    _, _, _, seen = drive(platform, [1.0], [0.1], actions=[(10.0, 2), (20.0, 3), (95.0, 2)])
    assert seen[95.0] == [READY, GONE, READY]


def test_pending_pods_are_removed_first():
    """Scale 3 -> 5 at 10 s (2 pods pending for a node), back to 3 at 12 s: the pending ones go;
    the node launched for them comes up at 30 s empty; Karpenter's 30 s look finds it empty
    (consolidateAfter 0s) and removes it after the 15 s validation, at 45 s."""
    platform = k8s(
        replicas=3,
        pod={"cpu": "500m", "startup": "5s"},
        cluster={"min_nodes": 1, "node_provisioning": "20s"},
    )
    _, ctx, _, seen = drive(platform, [1.0], [1.0], actions=[(10.0, 5), (12.0, 3)])
    assert seen[12.0] == [READY, READY, READY, GONE, GONE]
    nodes = [(d.time_s, d.before, d.after) for d in ctx.decisions if d.kind == "nodes"]
    assert nodes == [(10.0, 1, 2), (45.0, 2, 1)]


def test_pending_pod_takes_the_room_a_draining_pod_leaves():
    """One pod fits on a node (cpu 1.5 of 1.93) and max_nodes is 1. Pod 0 holds a request 1-101.
    Scale to 0 at 10 s (pod 0 drains), to 1 at 20 s (pod 1 pending, no room, no new node). Pod 0
    leaves at 101 s; pod 1 is placed at once and ready 5 s later: a request at 50 s (cold: no pod
    ready) starts at 106 s exactly."""
    platform = k8s(
        replicas=1,
        pod={"cpu": 1.5, "startup": "5s"},
        cluster={"min_nodes": 1, "max_nodes": 1},
        request_timeout=None,
    )
    _, _, r, _ = drive(platform, [1.0, 50.0], [100.0, 1.0], actions=[(10.0, 0), (20.0, 1)])
    assert np.allclose(r["start"], [1.0, 106.0])
    assert list(r["cold"]) == [False, True]
    assert list(r["instance"]) == [0, 1]


def test_pod_too_big_for_the_node_is_an_input_error():
    from sim.errors import InputError

    sc = scen(at(1), {"duration": "1s"}, k8s(replicas=1, pod={"cpu": 4}))
    with pytest.raises(InputError, match="does not fit"):
        run_platform(sc)


def test_timeline_has_the_kubernetes_columns():
    sc = scen([{"steady": {"rate": "5/s"}}], {"duration": "100ms"}, k8s(replicas=2), duration="10m")
    tl = run_platform(sc).timeline
    for col in (
        "instances",
        "busy",
        "idle",
        "queued",
        "desired",
        "nodes",
        "starting",
        "pending",
        "ready",
        "draining",
        "arrivals",
        "cold_starts",
    ):
        assert col in tl, col
    assert (tl["instances"] == 2).all() and (tl["nodes"] == 2).all()  # 1 pod of 1 cpu per node
    assert tl["arrivals"].sum() == run_platform(sc).stats.requests_all


# -- the bill --------------------------------------------------------------------------------------


def test_hand_computed_bill_fixed_replicas_one_day():
    """4 pods of 500m / 512Mi on m5.large (1.93 vCPU allocatable -> 3 pods per node): 2 nodes.

    nodes: 2 x 24 h x $0.096 = $4.608; EKS control plane: 24 h x $0.10 = $2.40; no load balancer;
    two 20 GiB gp3 root volumes for 24 of a 730-h month: 2 x 20 x $0.08 x 24 / 730 = $0.105205.
    Total $7.113205 -> $7.11; the 730-h month: 2 x $0.096 x 730 + $0.10 x 730 + 2 x 20 x $0.08
    = 140.16 + 73.00 + 3.20 = $216.36.
    """
    sc = scen(
        [{"steady": {"rate": "2/s"}}],
        {"duration": "100ms"},
        k8s(replicas=4, pod={"cpu": "500m", "memory": "512Mi"}, load_balancer="none"),
        duration="1d",
    )
    bill = run_platform(sc).bill
    assert round(bill.breakdown["nodes"], 2) == 4.61
    assert round(bill.breakdown["control_plane"], 2) == 2.40
    assert round(bill.breakdown["ebs"], 2) == 0.11
    assert round(bill.total_usd, 2) == 7.11
    assert round(bill.monthly_usd, 2) == 216.36


def test_hand_computed_bill_autopilot():
    """Autopilot bills pod requests: 4 x 0.5 vCPU x 24 h x $0.0445 = $2.136; 4 x 0.5 GiB x 24 h x
    $0.0049225 = $0.23628; GKE fee 24 x $0.10 = $2.40. Total $4.77228 -> $4.77."""
    sc = scen(
        [{"steady": {"rate": "2/s"}}],
        {"duration": "100ms"},
        k8s(
            replicas=4,
            pod={"cpu": "500m", "memory": "512Mi"},
            load_balancer="none",
            cluster={"mode": "autopilot"},
        ),
        duration="1d",
    )
    run = run_platform(sc)
    assert round(run.bill.total_usd, 2) == 4.77
    assert run.bill.breakdown["autopilot_cpu"] == pytest.approx(2.136)
    assert (run.timeline["nodes"] == 0).all()


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"replica": 3}, "replica"),
        ({"pod": {"cpu": "lots"}}, "pod.cpu"),
        ({"hpa": {"max_replicas": 3}}, "exactly one of"),
        ({"cluster": {"node": "m9.huge"}}, "unknown node type"),
        ({"routing": "fastest"}, "routing"),
        ({"replicas": 2, "keda": {"file": "missing.yaml"}}, "file not found"),
        ({"keda": {"triggers": [{"type": "prometheus", "metadata": {}}]}}, "threshold"),
    ],
)
def test_bad_fields_exit_2_with_a_clear_message(tmp_path: Path, change, needle):
    platform = {"name": "eks", "type": "kubernetes", "replicas": 2}
    platform.update(change)
    if "keda" in change and "replicas" not in change:
        platform.pop("replicas")
    data = {
        "name": "bad",
        "duration": "1m",
        "workload": {"arrivals": [{"steady": {"rate": "1/s"}}], "service": {"duration": "10ms"}},
        "platforms": [platform],
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output


def test_scenarios_load():
    from sim.scenario import load_scenario

    for name in ("k8s-fixed", "k8s-hpa", "k8s-keda-spiky"):
        sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
        assert all(p.type == "kubernetes" for p in sc.platforms)


def test_same_seed_same_result():
    sc = scen(
        [{"mmpp": {"states": [{"rate": "20/s", "hold": "2m"}, {"rate": "0/s", "hold": "5m"}]}}],
        {"duration": {"dist": "exponential", "mean": "200ms"}},
        k8s(keda=KEDA_PROM, pod={"cpu": 1, "concurrency": 2}),
        duration="1h",
    )
    a, b = run_platform(sc), run_platform(sc)
    assert a.stats.latency == b.stats.latency
    assert [(d.time_s, d.after) for d in a.decisions] == [(d.time_s, d.after) for d in b.decisions]
    assert math.isfinite(a.bill.total_usd)
