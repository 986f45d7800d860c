"""The cluster inside a system (issue 17): Kafka brokers as pods on a Kubernetes platform's nodes,
EventBridge pattern matching (`match`), and the platforms' ops lines once per placement. Every
expected value is computed by hand from the price table and the scenario, never from the
simulator's own output."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from test_systems import _bad, _k8s, _keda_sqs_workers, _lambda, _system
from test_systems_eventbridge import _bus_system
from test_systems_kafka import GOOD as KAFKA_GOOD
from test_systems_kafka import _fn
from test_systems_kafka import _system as _kafka_system

from sim.engine import run_one
from sim.systems.nodes import NodePool

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent
MONTH_H = 730
M5_XLARGE = 0.192  # USD per hour (instances.yaml)
EKS = 0.10  # control plane, USD per hour (prices.yaml)
GP3 = 0.08  # USD per GB-month (prices.yaml ebs.gp3)


def _run(data: dict, placement: str = "p") -> Any:
    return run_one(make_scenario(data), placement, 0, ROOT)


# --- Kafka on the cluster -------------------------------------------------------------------------
def _hosted(**topic: Any) -> dict:
    """front (1 pod of 1 vCPU / 1 GiB on m5.xlarge nodes) -> topic t -> Lambda worker; the topic's
    brokers on the same cluster. No load balancer line, no root volumes: nodes and control plane."""
    t = {"partitions": 2, "hosting": "cluster", "platform": "eks", **topic}
    data = _kafka_system("fn", [_fn()], t, duration="10m", month=f"{MONTH_H}h")
    data["platforms"][0].update(load_balancer={"type": "none"}, cost={"root_volume": 0})
    return data


def test_node_pool_packs_brokers_first_then_pods_by_hand() -> None:
    """m5.xlarge: 4 - 0.07 = 3.93 vCPU and 16,384 - 574 = 15,810 MB allocatable. Brokers of 2 vCPU
    / 8,192 MB: one per node (a second needs 2 > 1.93 vCPU); each broker node keeps room for
    floor(min(1.93 / 1, 7,618 / 1,024)) = 1 pod of 1 vCPU / 1 GiB; a fresh node holds 3."""
    spec = make_scenario(_hosted()).platform("eks")
    pool = NodePool(spec, [(2.0, 8192.0)] * 3)
    assert (pool.fixed_nodes, pool.room, pool.per_node) == (3, 3, 3)
    assert [pool.nodes_for(n) for n in (0, 1, 3, 4, 6, 7)] == [3, 3, 3, 4, 4, 5]
    small = NodePool(spec, [(1.0, 4096.0)] * 3)  # 3 fit one node: 0.93 vCPU left, no pod
    assert (small.fixed_nodes, small.room) == (1, 0)
    assert NodePool(spec, []).nodes_for(0) == 1  # min_nodes 1


def test_kafka_on_the_cluster_bill_by_hand_to_the_cent() -> None:
    """3 brokers of 2 vCPU / 8 GiB + front's 1 pod: 3 m5.xlarge nodes for the whole window
    (3 x 730 h x $0.192 = $420.48) + the EKS control plane ($73.00) = $493.48, split by requested
    vCPU-seconds: brokers 3 x 2 = 6 of 7. Topic: 6/7 x 493.48 = $422.98 + its volumes 3 x 100 GiB
    (Strimzi's example) x $0.08 = $24.00 -> $446.98; front: 1/7 x 493.48 = $70.50. No MSK line."""
    run = _run(_hosted(brokers=3, broker_cpu=2, broker_memory="8Gi"))
    s = run.extra["system"]
    topic, front = s["queues"]["t"], s["services"]["front"]
    cluster = 3 * MONTH_H * M5_XLARGE + MONTH_H * EKS
    assert cluster == pytest.approx(493.48, abs=1e-9)
    assert topic["monthly_breakdown_usd"]["ebs"] == pytest.approx(24.00, abs=0.005)  # volumes
    assert "instances" not in topic["monthly_breakdown_usd"]  # no MSK broker-hours
    assert topic["monthly_breakdown_usd"]["nodes"] == pytest.approx(
        6 / 7 * 3 * MONTH_H * M5_XLARGE, abs=0.005
    )
    assert topic["monthly_cost_usd"] == pytest.approx(446.98, abs=0.005)
    assert front["monthly_cost_usd"] == pytest.approx(70.50, abs=0.005)
    lines = run.bill.monthly_breakdown
    nodes = sum(v for k, v in lines.items() if k.endswith(".nodes"))
    assert nodes == pytest.approx(420.48, abs=0.005)  # 3 nodes, not 1 + MSK


def test_brokers_take_node_room_and_change_the_node_count() -> None:
    """Without brokers front's pod needs 1 node ($140.16 of m5.xlarge a month); 3 brokers of
    1 vCPU / 4 GiB fit one node with front's pod beside them? No: 3.93 - 3 = 0.93 < 1 vCPU, so
    front's pod takes a second node: 2 x 730 x $0.192 = $280.32."""
    lean = _kafka_system("fn", [_fn()], {"partitions": 2}, duration="10m", month=f"{MONTH_H}h")
    lean_nodes = _run(lean).extra["system"]["services"]["front"]["monthly_breakdown_usd"]["nodes"]
    assert lean_nodes == pytest.approx(MONTH_H * M5_XLARGE, abs=0.005)
    run = _run(_hosted(brokers=3, broker_cpu=1, broker_memory="4Gi"))
    nodes = sum(v for k, v in run.bill.monthly_breakdown.items() if k.endswith(".nodes"))
    assert nodes == pytest.approx(2 * MONTH_H * M5_XLARGE, abs=0.005)


def test_kafka_on_a_cluster_no_service_uses_is_billed_to_the_topic() -> None:
    """All services on Lambda/Wasm; the brokers still need eks: its whole cluster bill (3 broker
    nodes of m5.xlarge + control plane, $493.48) and the volumes ($24.00) are the topic's."""
    data = _hosted(brokers=3, broker_cpu=2, broker_memory="8Gi")
    data["platforms"].append({"name": "edge", "type": "wasm"})
    data["placements"][0]["services"]["front"] = "edge"
    topic = _run(data).extra["system"]["queues"]["t"]
    assert topic["monthly_cost_usd"] == pytest.approx(493.48 + 24.00, abs=0.005)


@pytest.mark.parametrize(
    "change, key, words",
    [
        (lambda d: d["queues"][0].update(hosting="cluster"), "queues[0]", "platform"),
        (
            lambda d: d["queues"][0].update(hosting="cluster", platform="nope"),
            "queues[0].platform",
            "unknown platform 'nope'",
        ),
        (
            lambda d: d["queues"][0].update(hosting="cluster", platform="fn"),
            "queues[0].platform",
            "node pool",
        ),
        (
            lambda d: d["queues"][0].update(hosting="cluster", platform="eks", broker_cpu=8),
            "queues[0].platform",
            "does not fit",
        ),
        (lambda d: d["queues"][0].update(platform="eks"), "queues[0]", "hosting cluster"),
    ],
)
def test_bad_hosting_exits_2_naming_the_key(
    tmp_path: Path, change: Any, key: str, words: str
) -> None:
    code, out = _bad(tmp_path, change, KAFKA_GOOD)
    assert code == 2, out
    assert key in out and words in out, out


# --- EventBridge pattern matching -----------------------------------------------------------------
def test_match_half_within_a_binomial_ci_and_identical_across_placements() -> None:
    """Rule `half` (match: 0.5) -> Lambda `audit`, rule `all` -> Lambda `thumbs`. N = 6,000
    PutEvents: `half` matches within 4 binomial standard deviations of N/2, `all` every one; the
    same events match whether `audit` runs on Lambda or on the cluster (common random numbers)."""
    rules = [{"name": "all", "target": "thumbs"}, {"name": "half", "target": "audit", "match": 0.5}]
    services = [{"name": "thumbs", "handler": "5ms"}, {"name": "audit", "handler": "5ms"}]
    data = _bus_system(rules, services, {"thumbs": "fn", "audit": "fn"})
    data["placements"].append(
        {"name": "q", "services": {"orders": "eks", "thumbs": "fn", "audit": "eks"}}
    )
    a, b = (_run(data, p).extra["system"]["queues"]["bus"] for p in ("p", "q"))
    n = a["sent"]
    assert n == b["sent"] == 6000
    assert a["rules"]["all"]["matched"] == n
    half = a["rules"]["half"]["matched"]
    assert abs(half - n / 2) <= 4 * math.sqrt(n * 0.25)
    assert b["rules"]["half"]["matched"] == half


# --- ops lines ------------------------------------------------------------------------------------
def _ops_system() -> dict:
    """Two pod services and one Lambda function; eks with the kubernetes-team profile and its
    platform_engineer line overridden to $12,000 (18,500 a month in all), fn with the
    serverless-team profile ($5,000)."""
    eks = {**_k8s("eks", 1), "ops_profile": "kubernetes-team", "ops": {"platform_engineer": 12000}}
    fn = {**_lambda(), "ops_profile": "serverless-team"}
    services = [
        {"name": "api", "entry": 1, "handler": "5ms", "steps": [{"call": "users"}]},
        {"name": "users", "handler": "5ms", "steps": [{"publish": "mail"}]},
        {"name": "mailer", "handler": "5ms"},
    ]
    return _system(
        services,
        [eks, fn],
        {
            "hybrid": {"api": "eks", "users": "eks", "mailer": "fn"},
            "k8s": {"api": "eks", "users": "eks", "mailer": "eks"},
        },
        replications=1,
        duration="5m",
        warmup=0,
        rate="5/s",
        queues=[{"name": "mail", "consumer": "mailer"}],
    )


def test_ops_once_per_platform_per_placement_by_hand() -> None:
    """hybrid: eks's $18,500 once (not once per pod service) + fn's $5,000 = $23,500; api and
    users have one pod each for the whole run (the same share of eks's cloud bill): $9,250 each;
    mailer $5,000. k8s: $18,500 over three equal pods. Never in the cloud bill."""
    sc = make_scenario(_ops_system())
    hybrid = run_one(sc, "hybrid", 0, ROOT)
    assert hybrid.bill.operating_monthly_usd == pytest.approx(23500.0, abs=1e-6)
    svc = hybrid.extra["system"]["services"]
    assert svc["api"]["operating_monthly_usd"] == pytest.approx(9250.0, abs=1e-6)
    assert svc["users"]["operating_monthly_usd"] == pytest.approx(9250.0, abs=1e-6)
    assert svc["mailer"]["operating_monthly_usd"] == pytest.approx(5000.0, abs=1e-6)
    cloud = sum(s["monthly_cost_usd"] for s in svc.values())
    queues = sum(q["monthly_cost_usd"] for q in hybrid.extra["system"]["queues"].values())
    assert hybrid.bill.monthly_usd == pytest.approx(cloud + queues, rel=1e-9)  # ops apart
    assert hybrid.bill.operating_breakdown["api.platform_engineer"] == pytest.approx(6000.0)
    k8s = run_one(sc, "k8s", 0, ROOT)
    assert k8s.bill.operating_monthly_usd == pytest.approx(18500.0, abs=1e-6)
    assert k8s.extra["system"]["services"]["mailer"]["operating_monthly_usd"] == pytest.approx(
        18500.0 / 3, abs=1e-6
    )


# --- node provisioning ----------------------------------------------------------------------------
def _keda_workers(nodes: str = "simulated", **cluster: Any) -> dict:
    """test_systems' KEDA aws-sqs-queue story (200 one-minute jobs at 1 s; KEDA + its HPA scale
    the workers 0 -> 1 -> 4 at 30 s, 8 at 45 s, 10 at 60 s) on m5.xlarge nodes that hold 3 pods of
    1 vCPU / 1 GiB (3.93 vCPU allocatable), min_nodes 1, nodes ready 60 s after launch."""
    workers = _keda_sqs_workers()
    workers["pod"] = {**workers["pod"], "startup": "5s"}
    workers["cluster"] = {**workers["cluster"], "node_provisioning": "60s", **cluster}
    workers["load_balancer"] = {"type": "none"}
    workers["cost"] = {"root_volume": 0, "public_ipv4": {"load_balancer": 0}}
    services = [
        {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "jobs"}]},
        {"name": "worker", "handler": "60s"},
    ]
    return _system(
        services,
        [_k8s("eks", 10, 10), workers],
        {"p": {"front": "eks", "worker": "workers"}},
        replications=1,
        duration="5m",
        warmup=0,
        month=f"{MONTH_H}h",
        workload={"arrivals": [{"batch": {"at": ["1s"], "size": 200}}]},
        # visibility 6 min >= the one-minute job (AWS's guidance): no duplicate receives here
        queues=[
            {"name": "jobs", "consumer": "worker", "batch_size": 1, "visibility_timeout": "6m"}
        ],
    ) | {
        "placements": [
            {"name": "p", "services": {"front": "eks", "worker": "workers"}, "nodes": nodes}
        ]
    }


def test_pending_pods_wait_the_provisioning_time_by_hand() -> None:
    """Node 1 (up at 0) holds 3 pods. 30 s: 0 -> 1 -> 4 pods: 3 on node 1, 1 Pending -> launch 1
    node (ready at 90 s). 45 s: 4 more Pending (5): 3 places launching -> launch 1 (ready 105 s).
    60 s: 2 more (7 Pending, 6 places launching) -> launch 1 (ready 120 s). Pending pods take the
    first node ready, first come first served: at 90 s the 30 s pod (waited 60 s) and two of 45 s
    (45 s); at 105 s the other two of 45 s (60 s) and one of 60 s (45 s); at 120 s the last (60 s).
    Node lives: 0-300, 30-300, 45-300, 60-300 s = 1,065 node-seconds, all kept to the end (the
    queue is not drained): the bill's nodes line is 1,065 / 3,600 x $0.192 x 8,760 windows."""
    run = _run(_keda_workers())
    nodes = run.extra["system"]["nodes"]["workers"]
    assert sorted(nodes["pending_s"]) == sorted([60.0, 45.0, 45.0, 60.0, 60.0, 45.0, 60.0])
    assert nodes["pending_max_s"] == pytest.approx(60.0)  # = the provisioning time
    assert (nodes["launched"], nodes["nodes_peak"]) == (4, 4)
    assert nodes["node_hours"] == pytest.approx(1065 / 3600)
    worker = run.extra["system"]["services"]["worker"]["monthly_breakdown_usd"]
    windows = MONTH_H * 3600 / 300
    assert worker["nodes"] == pytest.approx(1065 / 3600 * M5_XLARGE * windows, abs=0.005)


def test_at_once_is_the_idealised_cluster() -> None:
    """`nodes: at_once`: every pod has a node at once. Pods start 5 s after they get a node and
    then finish a 60 s job a minute until 300 s: floor((300 - ready) / 60) each.
    at_once: 4 pods ready at 35 s (4 jobs each), 4 at 50 s (4), 2 at 65 s (3) -> 38 jobs.
    simulated: 3 at 35 s (4 each), then the Pending ones: 3 at 95 s (3), 3 at 110 s (3), 1 at
    125 s (2) -> 32 jobs; and no node stats with at_once."""
    fast = _run(_keda_workers("at_once")).extra["system"]
    slow = _run(_keda_workers()).extra["system"]
    assert not fast.get("nodes")
    assert fast["queues"]["jobs"]["deleted"] == 38
    assert slow["queues"]["jobs"]["deleted"] == 32


def test_pending_pods_are_the_same_in_the_reference() -> None:
    """The per-request reference (its PodStations share the node pool) gives the same requests,
    queue counts and decisions with 7 Pending pods and brokers hosted on the workers' nodes."""
    from test_systems_equivalence import assert_same_system

    from sim.validation.reference import ReferenceSystem

    data = _keda_workers()
    data["queues"].append(
        {"name": "t", "type": "kafka", "consumer": "sink", "hosting": "cluster"}
        | {"platform": "workers", "brokers": 2, "broker_cpu": 2}
    )
    data["services"][0]["steps"].append({"publish": "t"})
    data["services"].append({"name": "sink", "handler": "1ms"})
    data["platforms"].append(_lambda())
    data["placements"][0]["services"]["sink"] = "fn"
    sc = make_scenario(data)
    fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert fast.extra["system"]["nodes"]["workers"]["pods_pending"] > 0
    assert_same_system(fast, ref)
    assert fast.extra["system"]["nodes"] == ref.extra["system"]["nodes"]


def test_empty_node_goes_after_consolidate_after_and_validation_by_hand() -> None:
    """min_nodes 0, no pod at 0: no node. 6 one-minute jobs at 1 s; KEDA (0..3 pods) activates at
    30 s and its HPA asks for ceil(6 / 5) = 2: both Pending, one node launched at 30 s (3 places),
    ready at 90 s (both waited 60 s).
    When KEDA / the HPA bring the pods to 0 at t0 (their own arithmetic, tested elsewhere) the
    node is empty from t0; Karpenter (consolidate_after 25 s) sees it due at the first 10 s look
    at or after t0 + 25 and removes it 15 s later (its validation): node-seconds = that - 30."""
    data = _keda_workers(min_nodes=0, consolidate_after="25s", node_autoscaler="karpenter")
    data["platforms"][1]["keda"]["maxReplicaCount"] = 3
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 6}}]}
    data["queues"][0]["visibility_timeout"] = "10m"  # no redelivery of the one-minute jobs
    data["duration"] = "30m"
    run = _run(data)
    scale = [(d.time_s, d.after) for d in run.decisions if d.kind.startswith("worker:")]
    assert scale[:2] == [(30.0, 1), (30.0, 2)], scale
    t0 = next(t for t, n in scale if n == 0)
    gone = 10 * math.ceil((t0 + 25) / 10 - 1e-9) + 15
    assert (t0, gone) == (600.0, 645.0)  # this run: 0 pods at 600 s, look at 630 s, gone at 645 s
    nodes = run.extra["system"]["nodes"]["workers"]
    assert nodes["launched"] == 1
    assert sorted(nodes["pending_s"]) == [60.0, 60.0]
    assert nodes["node_hours"] == pytest.approx((gone - 30) / 3600)
    worker = run.extra["system"]["services"]["worker"]["monthly_breakdown_usd"]
    windows = MONTH_H * 3600 / 1800
    assert worker["nodes"] == pytest.approx((gone - 30) / 3600 * M5_XLARGE * windows, abs=0.005)


# --- per-pod placement and consolidation of underutilised nodes ---------------------------------
def _consolidation(second: list[str] | None = None, **cluster: Any) -> dict:
    """_keda_workers with KEDA 2..6 pods (queueLength 2), 12 one-minute jobs at 1 s (published at
    1.001 s), a 10-minute visibility timeout (no redelivery) and 30 minutes. Pods A, B start on node
    0 (ready at 0); at 15 s the HPA asks 4: C goes on node 0 (ready 20 s), D Pending -> node 1
    launched at 15 s (ready 75 s); at 30 s 6: E, F Pending; D, E, F placed at 75 s, ready at 80 s.
    All jobs end by 200 s; the HPA's scale-down stabilisation (300 s) then takes 6 -> 5 at 375 s,
    -> 4 at 435 s, -> 2 at 450 s (its own arithmetic, tested elsewhere; read from the decisions)."""
    data = _keda_workers(**cluster)
    k = data["platforms"][1]["keda"]
    k["minReplicaCount"], k["maxReplicaCount"] = 2, 6
    k["triggers"][0]["metadata"]["queueLength"] = "2"
    data["queues"][0]["visibility_timeout"] = "10m"
    arrivals = [{"batch": {"at": ["1s"], "size": 12}}]
    if second:
        arrivals.append({"batch": {"at": second, "size": 2}})
    data["workload"] = {"arrivals": arrivals}
    data["duration"] = "30m"
    return data


def _scale_downs(run: Any) -> list[tuple[float, int]]:
    return [(d.time_s, d.after) for d in run.decisions if d.kind == "worker:keda_hpa"][2:]


def test_underutilised_node_is_consolidated_and_its_pod_restarts_by_hand() -> None:
    """Which pod each scale-down deletes is the ReplicaSet's rank (ActivePodsWithRanks, as the
    kernel): more pods of the set on the same node first, then the more recently ready in log2(ns)
    buckets, then the pod id. 375 s: 3 + 3 pods, C (ready 20 s, age 2^38.4 ns) and D, E, F (80 s,
    2^38.1) share bucket 38 ahead of A, B (ready long ago); id order: C goes (node 0: 2). 435 s:
    node 1 has more: D. 450 s: 2 + 2, E (bucket 38) before A, B: E; then node 0 has more: A.
    Left: B on node 0, F on node 1, one pod each, idle.
    Karpenter (consolidate_after 0, WhenEmptyOrUnderutilized): its look at 450 s (after the HPA's
    sync of that instant, scheduled earlier) finds both nodes movable (1 pod, 2 free places on the
    other); the fewest pods, then launch order: node 0. Validated 15 s later: at 465 s node 0 is
    cordoned, B evicted, its replacement B' placed on node 1 at once and ready at 470 s (5 s
    start-up); B is idle, so node 0 goes at 465 s. Node-seconds 465 + (1800 - 15) = 2,250.
    Two more jobs at 466 s (published 466.001 s): F takes one at once, the other waits for B' until
    470 s: 3.999 s. With the old pool (no consolidation) B would take it at once."""
    run = _run(_consolidation(["466s"]))
    assert _scale_downs(run) == [(375.0, 5), (435.0, 4), (450.0, 2)]
    drains = [(d.time_s, d.reason) for d in run.decisions if "drained (" in d.reason]
    assert [t for t, _ in drains] == [465.0] and drains[0][1].startswith("node 0 cordoned")
    removed = [d.time_s for d in run.decisions if d.reason.startswith("node 0 removed: drained")]
    assert removed == [465.0]
    nodes = run.extra["system"]["nodes"]["workers"]
    assert (nodes["nodes_drained"], nodes["pods_evicted"]) == (1, 1)
    assert nodes["node_hours"] == pytest.approx(2250 / 3600)
    # time in queue: 0, 0, 18.999, 60 x 2, 78.999 x 4, 120 x 2, 138.999; then 0 and 3.999
    first = 18.999 + 2 * 60 + 4 * 78.999 + 2 * 120 + 138.999
    q = run.extra["system"]["queues"]["jobs"]
    assert q["deleted"] == 14
    assert q["time_in_queue_ms"]["mean"] * 14 / 1000 == pytest.approx(first + 3.999, abs=1e-6)


def test_cluster_autoscaler_drains_a_node_under_the_utilisation_threshold_by_hand() -> None:
    """The same pods under the Cluster Autoscaler (scale_down_after 60 s, delay after add 60 s):
    2 pods of 1 vCPU on 3.93 allocatable is 0.509, not below 0.5; one pod (0.254) is. From the
    450 s look both nodes are unneeded (their pod fits on the other); at 510 s (60 s later, long
    after the 15 s scale-up) the first in launch order, node 0, is drained, one at a time; its
    idle pod leaves at once. Node-seconds 510 + 1,785 = 2,295."""
    run = _run(_consolidation(node_autoscaler="cluster-autoscaler", **_CA_FAST))
    assert _scale_downs(run) == [(375.0, 5), (435.0, 4), (450.0, 2)]
    drains = [d.time_s for d in run.decisions if "drained (requests below 0.5" in d.reason]
    assert drains == [510.0]
    assert run.extra["system"]["nodes"]["workers"]["node_hours"] == pytest.approx(2295 / 3600)


_CA_FAST = {"scale_down_after": "60s", "scale_down_delay_after_add": "60s"}


def test_when_empty_policy_keeps_underutilised_nodes() -> None:
    """consolidation_policy WhenEmpty: no node is empty (B and F stay), so both live to the end:
    1,800 + 1,785 node-seconds, no drain."""
    run = _run(_consolidation(consolidation_policy="WhenEmpty"))
    nodes = run.extra["system"]["nodes"]["workers"]
    assert nodes["nodes_drained"] == 0
    assert nodes["node_hours"] == pytest.approx(3585 / 3600)


def test_consolidation_is_the_same_in_the_reference() -> None:
    from test_systems_equivalence import assert_same_system

    from sim.validation.reference import ReferenceSystem

    for cluster in ({}, {"node_autoscaler": "cluster-autoscaler", **_CA_FAST}):
        data = _consolidation(["466s"], **cluster)
        sc = make_scenario(data)
        fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
        ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
        assert fast.extra["system"]["nodes"]["workers"]["nodes_drained"] == 1
        assert_same_system(fast, ref)
        assert fast.extra["system"]["nodes"] == ref.extra["system"]["nodes"]


# --- spot capacity inside a system -------------------------------------------------------------
SPOT_AWS = 0.50  # spot / on-demand (prices.yaml spot.aws.price_ratio)


def test_spot_notice_drains_the_node_and_bills_spot_to_the_cent() -> None:
    """The same pods on an all-spot pool (share 1) with one notice at 100 s (a trace: it hits
    the oldest spot node, node 0). AWS: 120 s notice, 30 s grace. At 100 s node 0 is cordoned,
    A, B, C are deleted and replaced (3 reschedules); the replacements find no room (node 1 is
    full) -> node 2 launched at 100 s (ready 160 s). A and B finish their jobs at 121.001 s, C
    (its job received at 80 s, due at 140 s) is still busy at the grace's end (130 s): it is
    killed before its DeleteMessage (one slot cut, one message cut) and node 0 goes at 130 s.
    Receives (published 1.001 s): 0, 0, 18.999, 60 x 2, 78.999 x 4; the 3 left wait for D, E, F
    until 140 s (138.999 each); C's job is visible again when its receive's 10-minute visibility
    timeout ends, 80 + 600 = 680 s, and received at once by an idle pod (678.999 s since sent, its
    second receive): 13 receives, 12 deletes. Nodes: 0-130, 15-465 (consolidated as before),
    100-1800 s = 2,280 spot node-seconds; exposed to notices 100 + 450 + 1,700 = 2,250 s.
    Bill (the worker is the only pod service on `workers`): 2,280 / 3,600 h x $0.192 x 0.50 x
    (730 h / 30 min = 1,460 windows) = $88.77 on `spot_nodes`, no on-demand `nodes`."""
    run = _run(_consolidation(spot={"interruptions": ["100s"]}))
    nodes = run.extra["system"]["nodes"]["workers"]
    assert (nodes["spot_notices"], nodes["spot_reschedules"], nodes["spot_slots_cut"]) == (1, 3, 1)
    assert [d.time_s for d in run.decisions if "spot interruption notice" in d.reason] == [100.0]
    assert [d.time_s for d in run.decisions if "grace period over" in d.reason] == [130.0]
    assert nodes["spot_node_hours"] == pytest.approx(2280 / 3600)
    assert nodes["spot_exposure_hours"] == pytest.approx(2250 / 3600)
    q = run.extra["system"]["queues"]["jobs"]
    waits = 18.999 + 2 * 60 + 4 * 78.999 + 3 * 138.999 + 678.999
    assert (q["received"], q["deleted"], q["messages_cut"], q["dlq"]) == (13, 12, 1, 0)
    assert q["time_in_queue_ms"]["mean"] * 13 / 1000 == pytest.approx(waits, abs=1e-6)
    bill = run.extra["system"]["services"]["worker"]["monthly_breakdown_usd"]
    spot = 2280 / 3600 * M5_XLARGE * SPOT_AWS * (MONTH_H * 3600 / 1800)
    assert spot == pytest.approx(88.768, abs=1e-9)
    assert bill["spot_nodes"] == pytest.approx(88.77, abs=0.005)
    assert bill.get("nodes", 0.0) == 0.0


def _spot_pool(rate: float, hours: int, **spot: Any) -> dict:
    """KEDA workers held at 3 pods (min = max = 3) filling one m5.xlarge spot node; nodes ready at
    once (provisioning 0 s), so every notice finds a ready node: it is drained, its 3 idle pods
    replaced on a new node at once, and the old node goes at once (empty). One node is alive at
    every moment: spot node-hours = exposure = the run's hours."""
    data = _keda_workers(node_provisioning="0s", spot={"interruptions_per_node_hour": rate, **spot})
    k = data["platforms"][1]["keda"]
    k["minReplicaCount"] = k["maxReplicaCount"] = 3
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 3}}]}
    data["duration"] = f"{hours}h"
    data["services"][1]["handler"] = "1s"
    return data


def test_spot_interruptions_follow_the_rate_within_the_ci() -> None:
    """rate 2 per node-hour over 50 node-hours: notices ~ Poisson(100), within 4 sd (40); each
    reschedules the node's 3 pods; node-hours exactly 50 (one node at every moment)."""
    run = _run(_spot_pool(2.0, 50))
    nodes = run.extra["system"]["nodes"]["workers"]
    n = nodes["spot_notices"]
    assert abs(n - 100) <= 4 * math.sqrt(100), n
    assert nodes["spot_reschedules"] == 3 * n
    assert nodes["launched"] == n + 1
    assert nodes["spot_node_hours"] == pytest.approx(50.0)
    assert nodes["spot_exposure_hours"] == pytest.approx(50.0)
    assert nodes["node_hours"] == pytest.approx(50.0)


def test_mixed_pool_on_demand_base_is_never_interrupted() -> None:
    """on_demand_base 1, share 1: the first node is on-demand: no notice, no spot node-hours, the
    whole bill on `nodes` (MixedInstancesPolicy's OnDemandBaseCapacity)."""
    run = _run(_spot_pool(2.0, 5, on_demand_base=1))
    nodes = run.extra["system"]["nodes"]["workers"]
    assert (nodes["spot_notices"], nodes["spot_node_hours"]) == (0, 0.0)
    bill = run.extra["system"]["services"]["worker"]["monthly_breakdown_usd"]
    assert bill.get("spot_nodes", 0.0) == 0.0 and bill["nodes"] > 0


def test_spot_shortage_falls_back_to_on_demand() -> None:
    """unavailable 1: every spot launch finds no capacity and Karpenter launches on-demand: the
    initial node included, so nothing is ever interrupted."""
    run = _run(_spot_pool(2.0, 5, unavailable=1.0))
    nodes = run.extra["system"]["nodes"]["workers"]
    assert (nodes["spot_notices"], nodes["spot_fallbacks"], nodes["launched"]) == (0, 1, 1)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["platforms"][0]["cluster"].update(spot={}), "fixed Deployment on spot"),
        (lambda d: d["placements"][0].update(nodes="at_once"), "spot nodes are simulated"),
    ],
    ids=["fixed_deployment", "at_once"],
)
def test_spot_in_a_system_refuses_what_it_cannot_simulate(change: Any, key: str) -> None:
    from sim.errors import InputError

    data = _spot_pool(2.0, 1)
    change(data)
    with pytest.raises(InputError, match=key):
        make_scenario(data)


def test_spot_is_the_same_in_the_reference() -> None:
    from test_systems_equivalence import assert_same_system

    from sim.validation.reference import ReferenceSystem

    for spot in (
        {"interruptions": ["100s"]},
        {"interruptions_per_node_hour": 3, "drain_on_notice": False},
        {"interruptions_per_node_hour": 2, "share": 0.5, "unavailable": 0.5},
    ):
        data = _consolidation(["466s"], spot=spot)
        sc = make_scenario(data)
        fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
        ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
        assert_same_system(fast, ref)
        assert fast.extra["system"]["nodes"] == ref.extra["system"]["nodes"]
