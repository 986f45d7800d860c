"""The nodes of a system's Kubernetes platform (issue 17): who takes a node's room, and how many.

All the pod services a placement puts on one Kubernetes platform share its node pool, and so do
the brokers of a Kafka topic hosted there (`hosting: cluster`, Strimzi broker pods: fixed pods, up
for the whole run). A node's allocatable room is its vCPU and memory minus `system_reserved`, as
in the Kubernetes kernel (sim.platforms.kubernetes); the brokers go first-fit in launch order (the
kernel's placement rule), the service pods (all of the platform's `pod` size) in the room left.
- `Nodes`: the simulated pool (placement `nodes: simulated`, the default): Pending pods, node
  provisioning, each pod on its node, scale-down of empty nodes, consolidation of underutilised
  ones, spot capacity and its interruptions (docs/model.md 18.5).
- `NodePool`: the idealised count (placement `nodes: at_once`): the nodes a moment needs for the
  pods running then, at least `min_nodes`, each billed while it is needed.
Light (sim.systems.spec reaches it to check a broker fits): the price table only.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import sim.platforms.autoscaling as K
from sim.platforms.kubernetes import spot_short
from sim.pricing.tables import instance_type

_EPS = 1e-9
LOOK_S = K.NODE_AUTOSCALER_PERIOD_S  # the node autoscaler looks every 10 s


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
        self.rooms = [pods_fitting(r[0], r[1], pod_cpu, pod_mem) for r in free]  # per fixed node
        self.fixed_nodes = len(free)
        self.room = sum(self.rooms)

    def nodes_for(self, pods: int) -> int:
        """Nodes needed while `pods` service pods run (scheduled at once)."""
        extra = max(0, pods - self.room)
        return max(self.min_nodes, self.fixed_nodes + math.ceil(extra / self.per_node))


class _Node:
    __slots__ = (
        "cap",
        "cordoned",
        "draining",
        "end",
        "fixed",
        "id",
        "last_event",
        "launched",
        "noticed",
        "pods",
        "ready",
        "spot",
        "unneeded",
    )

    def __init__(self, node_id: int, launched: float, cap: int, ready: bool) -> None:
        self.id, self.launched, self.cap, self.ready = node_id, launched, cap, ready
        self.pods = 0  # service pods placed here, draining ones included (brokers: in `cap`)
        self.draining = 0  # of those, pods deleted that still finish their requests
        self.fixed = False  # holds fixed pods (brokers, a fixed Deployment's): never drained
        self.cordoned = False  # being drained: takes no new pod, goes when empty
        self.end: float | None = None
        self.last_event = launched  # Karpenter's consolidateAfter counts from the last change
        self.unneeded: float | None = None  # the Cluster Autoscaler's mark
        self.spot = False  # spot capacity (the spot price; can be interrupted)
        self.noticed: float | None = None  # its spot interruption notice


def log_rank(now: float, t: float) -> int:
    """ActivePodsWithRanks' time buckets (LogarithmicScaleDown): int(log2(age in ns)), as
    sim.platforms.kubernetes `_victims` (kubernetes pkg/controller/controller_utils.go)."""
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


class Nodes:
    """A platform's simulated node pool in a system (placement `nodes: simulated`, the default).

    The Kubernetes kernel's rules (sim.platforms.kubernetes, `_schedule` / `_provision` /
    `_scale_down_nodes` / `_drain`) on a platform whose pods all have one size: a new pod goes
    first-fit on a ready, uncordoned node in launch order, or waits Pending; pending pods that the
    room on nodes already launching cannot take make the node autoscaler launch enough nodes at
    once (`max_nodes` at most), each ready after a `node_provisioning` draw; a node becoming ready
    or a pod leaving places pending pods first-come first-served. Each pod is on its own node
    (the station keeps which): a pod that goes frees its own node's room, a deleted pod that still
    finishes requests (graceful termination) holds it until they end. Every 10 s the node
    autoscaler looks (never while pods are pending, never below `min_nodes`): Karpenter takes the
    nodes due `consolidate_after` after their last pod event: empty ones (10% of the nodes at a
    time), else with `WhenEmptyOrUnderutilized` the one with the fewest pods among those whose
    pods fit on the other nodes (single-node consolidation), executed after its 15 s validation
    if untouched; the Cluster Autoscaler those below `scale_down_utilization_threshold` whose pods
    fit elsewhere, after `scale_down_after` (not within `scale_down_delay_after_add` of a launch;
    10 empty ones at a time, non-empty ones one at a time). A drained node is cordoned, its pods
    are evicted and replaced at once by new pods scheduled elsewhere (`pod.startup` again); it
    goes when empty. Nodes holding fixed pods (Kafka brokers, a fixed Deployment's pods) are
    never drained (ASSUMPTION: only autoscaled services' pods are evicted). At time 0 the initial
    pods are ready on enough ready nodes (a running system), at least `min_nodes`.

    Shared by the heap engine and the reference: their PodStations call it from their scaling
    decisions and slot releases, and its own events (a node ready, Karpenter's validated command)
    are SimPy events too, so both engines see the same Pending delays and decision times."""

    def __init__(
        self,
        sys: Any,
        spec: Any,
        fixed: list[tuple[float, float]],
        stations: list[Any],
        draws: Any,
        rng: Any = None,
    ) -> None:
        c = spec.cluster
        self.sys, self.spec, self.cluster = sys, spec, c
        self.spot = c.spot  # `cluster.spot`: a mixed on-demand + spot pool (rng: its streams)
        self.spot_notices = 0
        self.spot_reschedules = 0  # pods replaced because their spot node was interrupted
        self.spot_cut = 0  # busy slots on killed pods (requests and queue batches cut)
        self.spot_fallbacks = 0  # spot launches that went on-demand (no spot capacity)
        self.short_until = -1e18  # Karpenter's unavailable-offerings cache
        if self.spot is not None:
            from sim.platforms.base import substream  # (numpy / simpy: not at import)

            sp = self.spot
            provider = sp.provider(c.control_plane)
            self.notice = sp.notice if sp.notice is not None else K.SPOT_NOTICE_S[provider]
            grace = sp.grace if sp.grace is not None else K.SPOT_GRACE_S[provider]
            self.grace = min(grace, self.notice)
            self.spot_rng = substream(rng, K.SPOT_STREAM)
            self.cap_rng = substream(rng, K.SPOT_CAPACITY_STREAM)
            for t in sorted(sp.interruptions or ()):  # a trace: the oldest spot node running
                if t < sys.end:
                    self._after(t, self._trace_hit, None)
        pool = NodePool(spec, fixed)
        self.per_node = pool.per_node
        self.min_nodes = int(c.min_nodes)
        self.max_nodes = int(c.max_nodes) if c.max_nodes is not None else 1 << 30
        self.provisioning = draws
        self.karpenter = c.node_autoscaler == "karpenter"
        self.nodes: list[_Node] = []  # every node launched, in launch order (the bill)
        self.alive: list[_Node] = []
        self.pending: list[Any] = []  # stations waiting for room, one entry per pod, FIFO
        self.last_scale_up = -1e18
        self.command_at: float | None = None  # Karpenter: a command being validated
        self.waits: list[float] = []  # Pending time of each pod that waited for room
        self._since: list[float] = []  # when each pending pod asked
        self.stations = stations  # the pod services on this platform (evicted from a drain)
        self.drained = 0  # nodes drained by consolidation
        self.evicted = 0  # pods evicted from drained nodes (each replaced)
        # Time 0: the fixed pods' nodes (less room), then enough for the initial pods.
        rooms = pool.rooms
        initial = sum(st.node_pods() for st in stations)
        want = max(self.min_nodes, pool.nodes_for(initial), len(rooms))
        for k in range(want):
            node = self._launch(0.0, ready=True, cap=rooms[k] if k < len(rooms) else None)
            node.fixed = k < len(rooms)
        for st in stations:  # first fit, station by station (each keeps its pods' nodes)
            for _ in range(st.node_pods()):
                at = next((n for n in self.alive if n.pods < n.cap), None)
                if at is None:
                    break
                at.pods += 1
                at.fixed = at.fixed or not st.autoscaled
                st.initial_node(at)

    def _launch(self, now: float, ready: bool, cap: int | None = None) -> _Node:
        node = _Node(len(self.nodes), now, self.per_node if cap is None else cap, ready)
        sp = self.spot
        if sp is not None:  # capacity type as the kernel's `_launch` / `_spot_capacity`
            running = [n for n in self.alive if not n.cordoned]
            node.spot = sum(1 for x in running if not x.spot) >= sp.on_demand_for(len(running) + 1)
            if node.spot and self._short(now):
                node.spot = False
                self.spot_fallbacks += 1
            if node.spot and sp.interruptions is None and sp.interruptions_per_node_hour > 0:
                # a Poisson process per node: the first notice after an exponential
                t = now + self.spot_rng.exponential(3600.0 / sp.interruptions_per_node_hour)
                if t < self.sys.end:
                    self._after(t - now, self._notice, node)
        self.nodes.append(node)
        self.alive.append(node)
        return node

    # -- spot ------------------------------------------------------------------------------------
    def _short(self, now: float) -> bool:
        """No spot capacity for this launch (Karpenter falls back to on-demand at once)."""
        short, self.short_until = spot_short(self.spot, now, self.short_until, self.cap_rng)
        return short

    def _trace_hit(self, _: Any) -> None:
        node = next((n for n in self.alive if n.spot and n.noticed is None), None)
        if node is not None:
            self._notice(node)

    def _notice(self, node: _Node) -> None:
        """The interruption notice (AWS 2 min, GCP 30 s), as the kernel's `_spot_notice`: with
        `drain_on_notice` the node is drained at once (its pods replaced elsewhere), pods still
        busy after the grace are killed; the node goes at the end of the notice (or when empty).
        A node still launching goes at once and its room is launched again."""
        now = self.sys.env.now
        if node.end is not None or node.noticed is not None:
            return
        node.noticed = now
        self.spot_notices += 1
        if not node.ready:
            self._remove(node, now, "spot interruption before it was ready")
            self._schedule(now)
            return
        if self.spot.drain_on_notice:
            self.spot_reschedules += node.pods - node.draining
            self._drain(node, now, f"spot interruption notice, {self.notice:g}s")
            if node.end is None and self.grace < self.notice:
                self._after(self.grace, self._kill, (node, "grace period over"))
        self._after(self.notice, self._kill, (node, "spot instance reclaimed"))

    def _kill(self, arg: tuple[_Node, str]) -> None:
        """The pods still on the node are killed: active ones (no handler) are replaced; the
        requests in service on them are cut (SpotPodStation.abandon: they fail or are sent
        again, `in_flight`, as the kernel's `_spot_kill`), and so are queue consumers' batches
        (nothing deleted or committed); their busy slots are counted; a Kafka consumer on a
        killed ready pod stays in its group until its session times out (KafkaTopic.kill: no
        LeaveGroup). The node goes."""
        node, why = arg
        now = self.sys.env.now
        if node.end is not None:
            return
        node.cordoned = True
        self.spot_reschedules += node.pods - node.draining
        for st in self.stations:
            topic = st.source
            if topic is not None and topic.spec.type == "kafka":  # killed consumers: no LeaveGroup
                topic.kill(sum(1 for n in st.ready_nodes if n is node), now)
            st.evict(node, now)
            self.spot_cut += st.abandon(node)
        node.pods = node.draining = 0
        self._remove(node, now, why)
        self._schedule(now)

    def spot_exposure_hours(self, end: float) -> float:
        """Spot node-hours exposed to interruption: launch to notice, removal or the end."""
        return (
            sum(
                min(
                    n.noticed if n.noticed is not None else (n.end if n.end is not None else end),
                    end,
                )
                - n.launched
                for n in self.nodes
                if n.spot
            )
            / 3600.0
        )

    # -- pods ------------------------------------------------------------------------------------
    def request(self, st: Any, now: float) -> None:
        """A new pod of station `st`: placed now (st.placed(now, node)) or Pending until room."""
        self.pending.append(st)
        self._since.append(now)
        self._schedule(now)

    def withdraw(self, st: Any) -> bool:
        """A pending pod of `st` deleted (a scale down): the newest one. False if none."""
        for k in range(len(self.pending) - 1, -1, -1):
            if self.pending[k] is st:
                del self.pending[k], self._since[k]
                return True
        return False

    def draining(self, node: _Node) -> None:
        """A pod on `node` was deleted but still finishes its requests: it keeps its place."""
        node.draining += 1

    def release(self, node: _Node, now: float, drained: bool = False) -> None:
        """A service pod leaves `node` (`drained`: one that was finishing its requests)."""
        node.pods -= 1
        if drained:
            node.draining -= 1
        node.last_event = now
        if node.cordoned and node.pods == 0:
            self._remove(node, now, "drained")
        # A deleted pod's last request ends in the data plane (the heap engine's clock is ahead
        # of the control plane's there): place pending pods now, launch nodes at the next look.
        self._schedule(now, provision=not drained)

    def _fit(self) -> _Node | None:
        for node in self.alive:
            if node.ready and not node.cordoned and node.pods < node.cap:
                return node
        return None

    def _schedule(self, now: float, provision: bool = True) -> None:
        while self.pending:
            node = self._fit()
            if node is None:
                break
            node.pods += 1
            node.last_event = now
            node.unneeded = None
            st = self.pending.pop(0)
            asked = self._since.pop(0)
            if now > asked:  # it waited Pending
                self.waits.append(now - asked)
            st.placed(now, node)
        if self.pending and provision:
            self._provision(now)

    def _provision(self, now: float) -> None:
        launching = sum(n.cap - n.pods for n in self.alive if not n.ready)
        need = len(self.pending) - launching
        if need <= 0:
            return
        k = min(math.ceil(need / self.per_node), self.max_nodes - len(self.alive))
        if k <= 0:
            return
        before = len(self.alive)
        self.last_scale_up = now
        for _ in range(k):
            node = self._launch(now, ready=False)
            self._after(max(0.0, self.provisioning.next()), self._ready, node)
        self.sys.ctx.decide(
            f"nodes:{self.spec.name}",
            before,
            before + k,
            f"{len(self.pending)} pending pods, {launching} places on launching nodes, "
            f"{self.per_node} pods per {self.cluster.node}: launch {k}",
        )

    def _after(self, delay: float, action: Any, arg: Any) -> None:
        """A node autoscaler event `delay` from now, on the control plane's SimPy clock (as the
        HPA's and KEDA's loops): the same times in both engines, to the last bit."""
        env = self.sys.env

        def wait() -> Generator[Any, Any, Any]:
            yield env.timeout(delay)
            action(arg)

        env.process(wait())

    def _ready(self, node: _Node) -> None:
        now = self.sys.env.now
        node.ready = True
        node.last_event = now
        self._schedule(now)

    # -- scale-down ------------------------------------------------------------------------------
    def look(self, now: float) -> None:
        """The node autoscaler's look (every 10 s), as the kernel's `_scale_down_nodes`."""
        c = self.cluster
        if self.pending:  # launches a drained pod's end could not make (in the data plane)
            self._provision(now)
            return
        busy = sum(1 for n in self.alive if n.cordoned)
        room = len(self.alive) - busy - self.min_nodes
        if room <= 0:
            return
        nodes = [n for n in self.alive if n.ready and not n.cordoned]
        free = sum(n.cap - n.pods for n in nodes)

        def fits(n: _Node) -> bool:  # its active pods fit in the free room of the other nodes
            return not n.fixed and n.pods - n.draining <= free - (n.cap - n.pods)

        if self.karpenter:
            budget = math.ceil(K.KARPENTER_BUDGET_NODES * len(self.alive) - 1e-9) - busy
            if budget <= 0 or self.command_at is not None:
                return
            due = [n for n in nodes if now >= n.last_event + c.consolidate_after - _EPS]
            cmd = [n for n in due if n.pods == 0 and not n.fixed][: min(budget, room)]
            why = "empty"
            if not cmd and c.consolidation_policy == "WhenEmptyOrUnderutilized":
                # Single-node consolidation: the cheapest to disrupt first (fewest pods).
                movable = sorted((n for n in due if fits(n)), key=lambda n: (n.pods, n.id))
                cmd, why = movable[:1], "underutilised: its pods fit on the other nodes"
            if cmd:
                self.command_at = now
                self._after(K.KARPENTER_VALIDATION_DELAY_S, self._execute, (cmd, now, why))
            return
        # Cluster Autoscaler: unneeded = requests below the threshold and movable.
        cpu, mem = allocatable(c)
        pod_cpu, pod_mem = float(self.spec.pod.cpu), float(self.spec.pod.memory)
        for n in nodes:
            util = max(n.pods * pod_cpu / cpu, n.pods * pod_mem / mem)
            if util < c.scale_down_utilization_threshold and fits(n):
                if n.unneeded is None:
                    n.unneeded = now
            else:
                n.unneeded = None
        if now < self.last_scale_up + c.scale_down_delay_after_add - _EPS:
            return
        ripe = [
            n
            for n in nodes
            if n.unneeded is not None and now - n.unneeded >= c.scale_down_after - _EPS
        ]
        wait = f"unneeded for {c.scale_down_after:g}s"
        empty = [n for n in ripe if n.pods == 0][: min(K.CA_MAX_EMPTY_BULK_DELETE, room)]
        if empty:
            for n in empty:
                self._remove(n, now, f"empty, {wait}")
        elif ripe and not busy:  # non-empty nodes one at a time
            why = f"requests below {c.scale_down_utilization_threshold:g} of allocatable, {wait}"
            self._drain(ripe[0], now, why)

    def _execute(self, arg: tuple[list[_Node], float, str]) -> None:
        """Karpenter's command after validation: the nodes still there and untouched since (a
        pod came or went: invalid), as the kernel's `_karpenter_execute`."""
        cmd, since, why = arg
        now = self.sys.env.now
        self.command_at = None
        for n in cmd:
            if n.end is not None or n.cordoned or n.last_event > since + _EPS:
                return
        if self.pending or len(self.alive) - len(cmd) < self.min_nodes:
            return
        for n in cmd:
            if n.pods == 0:
                self._remove(n, now, f"Karpenter consolidation: {why}")
            else:
                self._drain(n, now, f"Karpenter consolidation: {why}")

    def _drain(self, node: _Node, now: float, why: str) -> None:
        """Cordon `node` and evict its pods: each station deletes its pods there (a starting one
        goes at once, a ready one finishes what it holds) and asks for a replacement at once
        (the ReplicaSet), scheduled elsewhere; the node goes when empty (kernel `_drain`)."""
        node.cordoned = True
        moved = node.pods - node.draining
        self.drained += 1
        self.evicted += moved
        self.sys.ctx.decide(
            f"nodes:{self.spec.name}",
            len(self.alive),
            len(self.alive),
            f"node {node.id} cordoned and drained ({why}): {moved} pods evicted, replaced",
        )
        for st in self.stations:
            st.evict(node, now)
        if node.pods == 0:
            self._remove(node, now, "drained")
        self._schedule(now)

    def _remove(self, node: _Node, now: float, why: str) -> None:
        if node.end is not None:
            return
        from sim.platforms.base import Decision  # (simpy: not at import, sim.systems.spec is light)

        alive = len(self.alive)
        node.end = now
        self.alive.remove(node)
        # stamped `now`: a drained node's last pod may leave in the data plane
        self.sys.ctx.decisions.append(
            Decision(
                now, f"nodes:{self.spec.name}", alive, alive - 1, f"node {node.id} removed: {why}"
            )
        )

    def usage(self, end: float) -> list[tuple[float, float, bool]]:
        """(launched, end, spot) of every node, for the bill."""
        return [(n.launched, n.end if n.end is not None else end, n.spot) for n in self.nodes]

    def stats(self, end: float) -> dict[str, Any]:
        """`system.nodes.<platform>` of one replication."""
        lives = self.usage(end)
        peak, alive = 0, 0
        for _, d in sorted(
            [(a, 1) for a, _, _ in lives] + [(b, -1) for _, b, _ in lives if b < end]
        ):
            alive += d
            peak = max(peak, alive)
        out = {
            "launched": len(self.nodes),
            "nodes_peak": peak,
            "node_hours": sum(b - a for a, b, _ in lives) / 3600.0,
            "pods_pending": len(self.waits),
            "pending_s": list(self.waits),  # each Pending pod's wait for a node
            "pending_max_s": max(self.waits, default=0.0),
            "nodes_drained": self.drained,  # by consolidation or a spot notice
            "pods_evicted": self.evicted,  # pods moved off drained nodes (each replaced)
        }
        if self.spot is not None:
            out |= {
                "spot_node_hours": sum(b - a for a, b, s in lives if s) / 3600.0,
                "spot_exposure_hours": self.spot_exposure_hours(end),
                "spot_notices": self.spot_notices,
                "spot_reschedules": self.spot_reschedules,
                "spot_slots_cut": self.spot_cut,
                # of those, requests in service cut short (failed or sent again: `in_flight`)
                "spot_requests_killed": sum(getattr(st, "killed", 0) for st in self.stations),
                "spot_fallbacks": self.spot_fallbacks,
            }
        return out
