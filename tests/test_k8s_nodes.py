"""Node scale-down as Karpenter and the Cluster Autoscaler do it (issue 15 item 7): hand-worked
timelines from Karpenter v1.14.1 (NodePool disruption defaults, 10 s disruption polling, 15 s
command validation) and the Cluster Autoscaler FAQ (10 s scan, unneeded time 10 min,
utilisation threshold 0.5)."""

from __future__ import annotations

from test_kubernetes import drive, k8s

from sim.platforms.kubernetes import GONE, READY
from sim.platforms.kubernetes_spec import KubernetesSpec


def nodes(ctx):
    return [(d.time_s, d.before, d.after) for d in ctx.decisions if d.kind == "nodes"]


def two_nodes(**cluster):
    """4 ready pods of 500m at 0: 3 on node 0, 1 on node 1 (an m5.large holds 3). Scale to 3 at
    20 s: the ReplicaSet deletes a pod of node 0 (more pods of the set there): node 0 keeps 2,
    node 1 keeps 1 - node 1's pod fits in node 0's free slot."""
    platform = k8s(
        replicas=4,
        pod={"cpu": "500m", "startup": "5s"},
        cluster={"min_nodes": 1, **cluster},
        load_balancer="none",
    )
    return drive(platform, [1.0], [0.1], actions=[(20.0, 3)], duration=1500.0)


def test_karpenter_consolidates_an_underutilised_node():
    """WhenEmptyOrUnderutilized, consolidateAfter 0s. At 10 s nothing moves (no free room). At
    20 s (after the scale-down) node 1's one pod fits on node 0: the command (fewest pods
    first) is validated at 35 s: node 1 is cordoned, its pod evicted and replaced by pod 4,
    which starts on node 0 (ready at 40 s); node 1, empty, goes at 35 s."""
    model, ctx, _, seen = two_nodes()
    assert seen[20.0] == [GONE, READY, READY, READY]
    assert nodes(ctx) == [(35.0, 2, 2), (35.0, 2, 1)]
    assert model.state[3] == GONE and model.state[4] == READY
    assert model.node_of[4] is model.nodes[0] and model.ready_at[4] == 40.0
    assert [(n.start_s, n.end_s) for n in model.usage().nodes] == [(0.0, 1500.0), (0.0, 35.0)]


def test_karpenter_when_empty_keeps_a_busy_node():
    model, ctx, _, _ = two_nodes(consolidation_policy="WhenEmpty")
    assert nodes(ctx) == []
    assert len(model.alive) == 2


def test_cluster_autoscaler_removes_a_node_below_half_after_ten_minutes():
    """Node 1: one pod of 500m on 1.93 allocatable vCPU = 26% < 50%, movable from 20 s: unneeded
    since the 20 s scan, removed (drained) at the first scan >= 10 min later: 620 s. Node 0 at
    2 x 500m / 1.93 = 52% stays needed."""
    model, ctx, _, _ = two_nodes(node_provisioning="cluster-autoscaler")
    assert nodes(ctx) == [(620.0, 2, 2), (620.0, 2, 1)]
    assert model.state[3] == GONE and model.ready_at[4] == 625.0


def test_node_autoscaler_follows_the_provisioning_preset():
    spec = KubernetesSpec.model_validate(k8s(replicas=1))
    assert spec.cluster.node_autoscaler == "karpenter"
    assert spec.cluster.consolidation_policy == "WhenEmptyOrUnderutilized"
    assert spec.cluster.consolidate_after == 0.0
    ca = KubernetesSpec.model_validate(
        k8s(replicas=1, cluster={"node_provisioning": "cluster-autoscaler"})
    )
    assert ca.cluster.node_autoscaler == "cluster-autoscaler"
    assert (ca.cluster.scale_down_after, ca.cluster.scale_down_utilization_threshold) == (
        600.0,
        0.5,
    )
