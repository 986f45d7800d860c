"""The nodes of a system's Kubernetes platform (issue 17): who takes a node's room, and how many.

Light (the `schema` command reaches it through sim.systems.spec): the price table only.

All the pod services a placement puts on one Kubernetes platform share its node pool, and so do
the brokers of a Kafka topic hosted there (`hosting: cluster`, Strimzi broker pods: a fixed
StatefulSet-like pool, up for the whole run). A node's allocatable room is its vCPU and memory
minus `system_reserved`, as in the Kubernetes kernel (sim.platforms.kubernetes). The nodes a
moment needs: the brokers first-fit in launch order (the kernel's placement rule), then the
service pods (all of one platform's `pod` size) in the room the brokers leave on their nodes,
then on further nodes of `pods_per_node` each; at least `min_nodes`. Each node is billed while it
is needed (pods scheduled at once: the pod's own start-up is simulated, node provisioning is not).
"""

from __future__ import annotations

import math
from typing import Any

from sim.pricing.tables import instance_type

_EPS = 1e-9


def allocatable(cluster: Any) -> tuple[float, float]:
    """(vCPU, memory MB) a pod may request on one of the cluster's nodes."""
    node = instance_type(cluster.node)
    return (
        node.vcpu - cluster.system_reserved.cpu,
        node.memory_gib * 1024.0 - cluster.system_reserved.memory,
    )


def pods_fitting(cpu: float, mem: float, pod_cpu: float, pod_mem: float) -> int:
    """Pods of (pod_cpu, pod_mem) that fit in (cpu, mem) of free room."""
    if cpu <= 0 or mem <= 0:
        return 0
    return int(min(cpu / pod_cpu + _EPS, mem / pod_mem + _EPS))


class NodePool:
    """One platform's nodes: the fixed pods' packing, and the nodes n service pods need."""

    def __init__(self, spec: Any, fixed: list[tuple[float, float]]) -> None:
        c = spec.cluster
        self.min_nodes = int(c.min_nodes)
        cpu, mem = allocatable(c)
        pod_cpu, pod_mem = float(spec.pod.cpu), float(spec.pod.memory)
        self.per_node = max(pods_fitting(cpu, mem, pod_cpu, pod_mem), 1)
        # First fit of the fixed pods (brokers), in order, over nodes in launch order.
        free: list[list[float]] = []
        for f_cpu, f_mem in fixed:
            for room in free:
                if room[0] + _EPS >= f_cpu and room[1] + _EPS >= f_mem:
                    room[0] -= f_cpu
                    room[1] -= f_mem
                    break
            else:
                free.append([cpu - f_cpu, mem - f_mem])
        self.fixed_nodes = len(free)
        self.room = sum(pods_fitting(r[0], r[1], pod_cpu, pod_mem) for r in free)

    def nodes_for(self, pods: int) -> int:
        """Nodes needed while `pods` service pods run (scheduled at once)."""
        extra = max(0, pods - self.room)
        return max(self.min_nodes, self.fixed_nodes + math.ceil(extra / self.per_node))
