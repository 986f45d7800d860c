"""Kubernetes: pods behind a load balancer, fixed / HPA / KEDA replicas, nodes and the cluster bill.

The spec (`type: kubernetes`) is sim.platforms.kubernetes_spec.KubernetesSpec; the autoscalers'
decision logic is sim.platforms.autoscaling (hpa.py, keda.py). This module is the SimPy model.

Data plane (a tight loop in `advance`, platforms.md "Kubernetes"):
- A pod serves up to `pod.concurrency` requests at once. `routing: least_connections` (default):
  one FIFO queue in front of the ready pods, a freed slot takes the head of the queue, and a new
  request goes to the ready pod with the fewest requests in flight (an ideal least-connections
  balancer). `routing: round_robin`: each arrival goes to the next ready pod in turn and waits in
  that pod's own FIFO queue if the pod is full. With no ready pod at all, requests wait in one
  queue (the KEDA HTTP add-on interceptor holds them) and are handed out when a pod is ready.
- `queue_limit` caps the requests waiting in total (all queues); an arrival beyond it is
  `rejected` (503). `request_timeout` is the client's deadline from arrival: a request still
  waiting at its deadline leaves the queue `timed_out` (with one constant timeout, FIFO queues
  hold deadlines in order, so purging the head lazily is exact); a request whose service would
  end after its deadline is `timed_out` for the client at the deadline while its pod keeps
  working until the service really ends.
- CPU: handler time = service x ((1 - cpu_bound) + cpu_bound / min(cpu, 1)), `cpu` = the pod's
  CPU request (its CPU share; single-threaded code cannot use more than one core). Concurrent
  requests in one pod do not slow each other (ASSUMPTION: the concurrency is I/O wait; give the
  pod `concurrency: 1` for CPU-bound work). A request in service uses cpu_bound x service
  core-seconds in total, i.e. cpu_bound / factor cores while it runs: the CPU metric.
- `ingress_latency` is added to the client's latency (load balancer + kube-proxy hop); it does not
  delay the request's arrival at the queue.
- A request is "cold" when it arrived while no pod was ready (it waits for a scale-from-zero or
  for the first pod); its waiting is in `wait`, `startup` is 0 for Kubernetes.

Pods: pending (no node has room) -> starting (`pod.startup`) -> ready -> draining (no new work,
finishes what it holds, including its own queue with round_robin) -> gone. Scale-down removes pods
in Kubernetes' ReplicaSet order (controller.ActivePods): pending (not yet on a node) first, then
starting (not ready), then ready pods that became ready most recently; newest first within each
group. Busy-ness is not considered (Kubernetes cannot see it).

Control plane (SimPy processes; each handler first catches the data plane up to its own time):
- `replicas: N` fixed. `hpa:` every `sync_period` with the metric averaged over `window`: cpu =
  CPU core-seconds used / (ready pod-seconds x CPU request); concurrency = (request-seconds in
  service + request-seconds waiting) / ready pod-seconds (waiting requests count, so an overloaded
  deployment shows above its target); rps = arrivals / ready pod-seconds. No ready pod-second in
  the window -> the metric is unavailable (the HPA keeps its count).
- `keda:` KEDA polls every `pollingInterval` (activation 0 <-> 1) and its HPA syncs every 15 s
  (1 <-> N, AverageValue by default), both with one value per trigger: request_rate = arrivals
  at the ingress in the trigger's window / window (prometheus 2 min, http requestRate 1 min);
  concurrency = requests in service + waiting, now; backlog = requests waiting, now
  (kafka/queue; aws-sqs-queue adds those in service); cpu as the HPA's, over one sync period.
  The largest trigger wins (the HPA's rule, in hpa.py). Every change of the replica count goes to
  ctx.decide with the metric, target and rule; syncs that change nothing are not recorded.
- Nodes (`cluster.mode: nodes`): every node is of type `cluster.node` with allocatable = vCPU and
  memory minus `system_reserved`; all pods request the same cpu/memory, so a node holds
  floor(min(cpu_alloc / cpu, mem_alloc / mem)) pods. Placement is first-fit over ready nodes in
  launch order. Pending pods that do not fit on ready nodes or nodes already launching make the
  node autoscaler launch enough nodes for them (up to `max_nodes`), ready after
  `node_provisioning`; the scheduler places pending pods whenever a node becomes ready or a pod
  leaves. A node empty for `scale_down_after` (10 min) is removed unless that would leave fewer
  than `min_nodes`. At time 0 the initial replicas are ready on enough ready nodes (a running
  service), at least `min_nodes`. A node is billed from its launch (the provisioning time is
  mostly instance boot, which EC2 bills) to its removal.
- `mode: autopilot`: no nodes; a pod starts at once (ASSUMPTION: GKE Autopilot's own node
  provisioning is not modelled) and is billed on its CPU and memory requests from scheduling to
  deletion.

Exactness: the engine advances the data plane to the next control event, and every control
handler here calls `advance(now)` first. A data-plane event that needs the control plane (a
draining pod leaving frees room for a pending pod; a node becomes empty) schedules a SimPy event
at its own time and stops the loop there, so nothing is processed ahead of a control action.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.platforms.autoscaling.hpa import HorizontalPodAutoscaler
from sim.platforms.autoscaling.keda import KedaAutoscaler, TriggerInfo
from sim.platforms.base import INF, DrawBuffer, PlatformModel, RunContext, constant_value
from sim.platforms.kubernetes_spec import KubernetesSpec
from sim.pricing.kubernetes import KubernetesUsage, NodeUsage, kubernetes_bill
from sim.pricing.tables import instance_type
from sim.records import OK, REJECTED, TIMED_OUT

PENDING, STARTING, READY, DRAINING, GONE = range(5)
_EPS = 1e-9


class _Node:
    __slots__ = ("end", "gen", "id", "launched", "pods", "ready")

    def __init__(self, node_id: int, launched: float, ready: bool) -> None:
        self.id = node_id
        self.launched = launched
        self.ready = ready
        self.end: float | None = None
        self.pods = 0
        self.gen = 0  # bumped whenever the node becomes empty (invalidates older removal checks)


class KubernetesModel(PlatformModel):
    spec: KubernetesSpec
    uses_function = False  # one Deployment serves every function of a trace

    def __init__(self, spec: KubernetesSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        rng = ctx.rng
        pod, cluster = spec.pod, spec.cluster
        self.conc = pod.concurrency
        cb = ctx.cpu_bound
        self.scale = (1.0 - cb) + cb / min(pod.cpu, 1.0)
        self.cpu_per_request = cb / self.scale  # cores used by one request in service
        self.timeout = spec.request_timeout if spec.request_timeout is not None else INF
        self.qlimit = spec.queue_limit
        self.rr = spec.routing == "round_robin"
        self.ov_const = constant_value(spec.ingress_latency)
        self.ov_draw = DrawBuffer(spec.ingress_latency, rng)
        self.startup = DrawBuffer(pod.startup, rng, 256)
        self.provisioning = DrawBuffer(cluster.node_provisioning, rng, 64)
        self.autopilot = cluster.mode == "autopilot"
        self.horizon = ctx.duration
        self._closing = False
        # Nodes.
        self.node_type = instance_type(cluster.node)
        alloc_cpu = self.node_type.vcpu - cluster.system_reserved.cpu
        alloc_mem = self.node_type.memory_gib * 1024.0 - cluster.system_reserved.memory
        self.pods_per_node = (
            int(min(alloc_cpu / pod.cpu + _EPS, alloc_mem / pod.memory + _EPS))
            if alloc_cpu > 0 and alloc_mem > 0
            else 0
        )
        if not self.autopilot and self.pods_per_node < 1:
            raise InputError(
                f"a pod requesting cpu {pod.cpu:g} and memory {pod.memory:g}Mi does not fit on a "
                f"{cluster.node} node ({alloc_cpu:g} vCPU and {alloc_mem:g}Mi allocatable after "
                "system_reserved); use a larger `cluster.node` or smaller pod requests",
                key=f"platforms.{spec.name}.pod",
            )
        self.nodes: list[_Node] = []  # every node ever launched, in launch order (the bill)
        self.alive: list[_Node] = []  # nodes not removed (launching or ready), in launch order
        self.min_nodes = cluster.min_nodes
        self.max_nodes = cluster.max_nodes if cluster.max_nodes is not None else 1 << 30
        # Pods: per-pod columns indexed by pod id.
        self.state: list[int] = []
        self.inflight: list[int] = []
        self.node_of: list[_Node | None] = []
        self.scheduled_at: list[float] = []  # when the pod got a node (autopilot billing)
        self.pending: list[int] = []  # FIFO
        self.starting: list[int] = []  # in start order
        self.ready_order: list[int] = []  # in order of becoming ready
        self.replicas = 0  # the Deployment's replica count (pending + starting + ready)
        self.nready = 0
        self.draining: set[int] = set()
        self.peak_ready = 0
        # Data plane.
        self.heap: list[tuple[float, int]] = []  # (pod work ends, pod)
        self.queue: deque[tuple[float, float, float, bool]] = deque()  # (arrival, svc, over, cold)
        self.buckets: list[set[int]] = [set() for _ in range(self.conc)]  # ready pods by inflight
        self.kmin = self.conc  # lowest bucket with a pod; conc = no free slot
        self.pod_queue: list[deque[tuple[float, float, float, bool]]] = []  # round_robin
        self.rr_pods: list[int] = []
        self.rr_next = 0
        self.nwait = 0  # round_robin: requests waiting in all queues
        # Meters (cumulative; windows are differences of two readings).
        self.n_arrivals = 0
        self.started_d = 0.0  # pod-busy seconds of every request started
        self.dequeued_wait = 0.0  # waiting seconds of requests that left a queue
        self.q_arr_sum = 0.0  # sum of arrival times of the requests waiting now
        self.ready_area = 0.0  # ready pod-seconds since 0
        self.ready_area_post = 0.0  # ... after warm-up
        self.ready_t = 0.0
        self.history: list[tuple[float, float, float, float, float]] = []
        self.history_t: list[float] = []
        self.max_window = 0.0
        # Started requests, compact (arrival, start, pod-busy seconds, pod, cold; overhead when it
        # is drawn): the other columns follow in `flush`. Failures go to self.log in full.
        self._ra: list[float] = []
        self._rs: list[float] = []
        self._rd: list[float] = []
        self._rp: list[int] = []
        self._rc: list[bool] = []
        self._ro: list[float] = []
        # Least-connections mode: one entry per arrival of the current chunk, in order: the pod it
        # started on at once (the common case; arrival and handler time come from the chunk at
        # flush), or -1 (queued or rejected: recorded in full elsewhere). Overheads when drawn.
        self._fp: list[int] = []
        self._fo: list[float] = []
        self._fp_from = 0  # chunk index of self._fp[0]
        self._direct: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._direct_n = 0
        # Accounting.
        self.pod_seconds = 0.0  # scheduled pod-seconds in the window (autopilot bill)
        self.arrivals_in_step = 0
        self.cold_in_step = 0
        # Autoscalers.
        self.hpa: HorizontalPodAutoscaler | None = None
        self.keda: KedaAutoscaler | None = None
        if spec.hpa is not None:
            self.hpa = HorizontalPodAutoscaler.from_spec(spec.hpa)
        elif spec.keda is not None:
            self.keda = KedaAutoscaler(spec.keda)

    # =============================================================================================
    # control plane
    # =============================================================================================
    def start(self) -> None:
        spec = self.spec
        if self.hpa is not None:
            assert spec.hpa is not None
            initial = self.hpa.min_replicas
        elif self.keda is not None:
            initial = self.keda.initial_replicas
        else:
            assert spec.replicas is not None
            initial = spec.replicas
        self._initial(initial)
        self._record(0.0)
        w: float | None
        if self.hpa is not None:
            assert spec.hpa is not None
            p, w = spec.hpa.sync_period, spec.hpa.window
            self._periodic(p, self._hpa_sync)
            self._marks(p, w)
        elif self.keda is not None:
            keda = self.keda
            poll, sync = keda.polling_interval, keda.hpa_sync_period
            self._periodic(poll, self._keda_poll)
            self._periodic(sync, self._keda_sync)
            for info in keda.triggers:
                w = self._trigger_window(info)
                if w is not None:
                    self._marks(poll, w)
                    self._marks(sync, w)

    def _initial(self, n: int) -> None:
        """Time 0: n ready pods (a running service) on enough ready nodes, at least min_nodes."""
        self.replicas = n
        if not self.autopilot:
            want = max(self.min_nodes, math.ceil(n / self.pods_per_node))
            for _ in range(min(want, self.max_nodes)):
                self._launch(0.0, ready=True)
        for _ in range(n):
            pid = self._new_pod()
            node = None if self.autopilot else self._fit()
            if node is None and not self.autopilot:
                self.state[pid] = PENDING
                self.pending.append(pid)
                continue
            self._assign(pid, node, 0.0)
            self._make_ready(pid, 0.0)
        if self.pending:
            self.ctx.decide(
                "nodes",
                len(self.nodes),
                len(self.nodes),
                f"max_nodes {self.max_nodes} reached: {len(self.pending)} of the "
                f"{n} initial pods stay pending",
            )
        if not self.autopilot:
            for node in self.nodes:
                if node.pods == 0:
                    self._node_emptied(node, 0.0)

    def _periodic(self, period: float, action: Callable[[float], None]) -> None:
        def loop() -> Any:
            while True:
                yield self.env.timeout(period)
                action(self.env.now)

        self.env.process(loop())

    def _marks(self, period: float, window: float) -> None:
        """Meter readings at every window start of a reader that runs every `period`."""
        self.max_window = max(self.max_window, window)
        offset = (-window) % period
        if min(offset, period - offset) < 1e-6:
            return  # window starts fall on the reader's own readings (or before 0)

        def loop() -> Any:
            t = offset
            while True:
                if t > self.env.now:
                    yield self.env.timeout(t - self.env.now)
                self._catch_up(self.env.now)
                self._record(self.env.now)
                t += period

        self.env.process(loop())

    def _catch_up(self, now: float) -> None:
        self.advance(now)
        self._purge(now)

    def _at(self, when: float, action: Callable[[], None]) -> None:
        """Run action at time `when` (>= now) as a control event that first catches up."""

        def fire(_: Any) -> None:
            self._catch_up(self.env.now)
            action()

        ev = self.env.timeout(max(when - self.env.now, 0.0))
        ev.callbacks.append(fire)

    # -- replica changes ---------------------------------------------------------------------------
    def _scale_to(self, n: int, kind: str, reason: str) -> None:
        now = self.env.now
        before = self.replicas
        if n == before:
            return
        self.ctx.decide(kind, before, n, reason)
        if n > before:
            for _ in range(n - before):
                self.pending.append(self._new_pod())
        else:
            for _ in range(before - n):
                self._remove_one(now)
        self.replicas = n
        self._schedule(now)

    def _new_pod(self) -> int:
        pid = len(self.state)
        self.state.append(PENDING)
        self.inflight.append(0)
        self.node_of.append(None)
        self.scheduled_at.append(0.0)
        if self.rr:
            self.pod_queue.append(deque())
        return pid

    def _remove_one(self, now: float) -> None:
        """Delete one pod in ReplicaSet order: pending, starting, then most recently ready."""
        if self.pending:
            pid = self.pending.pop()
            self.state[pid] = GONE
            return
        if self.starting:
            pid = self.starting.pop()
            self._gone(pid, now)  # its readiness event finds it gone and does nothing
            return
        pid = self.ready_order.pop()
        self._ready_change(now, -1)
        if self.rr:
            self.rr_pods.remove(pid)
            self.rr_next = self.rr_next % len(self.rr_pods) if self.rr_pods else 0
            busy = self.inflight[pid] > 0 or bool(self.pod_queue[pid])
        else:
            k = self.inflight[pid]
            if k < self.conc:
                self.buckets[k].discard(pid)
            while self.kmin < self.conc and not self.buckets[self.kmin]:
                self.kmin += 1
            busy = k > 0
        if busy:
            self.state[pid] = DRAINING
            self.draining.add(pid)
        else:
            self._gone(pid, now)

    def _gone(self, pid: int, t: float) -> float:
        """A pod leaves its node. Returns the time of a control event this scheduled (or INF)."""
        self.draining.discard(pid)
        self.state[pid] = GONE
        lo, hi = self.scheduled_at[pid], min(t, self.horizon)
        if hi > lo:
            self.pod_seconds += hi - lo
        node = self.node_of[pid]
        if node is None:
            return INF
        node.pods -= 1
        wake = INF
        if node.pods == 0:
            wake = self._node_emptied(node, t)
        if self.pending and not self._closing:
            self._at(t, lambda: self._schedule(self.env.now))
            wake = t
        return wake

    # -- scheduler and node autoscaler -----------------------------------------------------------
    def _launch(self, now: float, ready: bool) -> _Node:
        node = _Node(len(self.nodes), now, ready)
        self.nodes.append(node)
        self.alive.append(node)
        return node

    def _fit(self) -> _Node | None:
        cap = self.pods_per_node
        for node in self.alive:
            if node.ready and node.pods < cap:
                return node
        return None

    def _assign(self, pid: int, node: _Node | None, now: float) -> None:
        self.node_of[pid] = node
        self.scheduled_at[pid] = now
        if node is not None:
            if node.pods == 0:
                node.gen += 1  # cancels a pending removal check
            node.pods += 1

    def _schedule(self, now: float) -> None:
        """Place pending pods (first-fit), start them; launch nodes for the ones left over."""
        while self.pending:
            node = None
            if not self.autopilot:
                node = self._fit()
                if node is None:
                    break
            pid = self.pending.pop(0)
            self._assign(pid, node, now)
            self.state[pid] = STARTING
            self.starting.append(pid)
            self._at(now + self.startup.next(), lambda pid=pid: self._pod_ready(pid))  # type: ignore[misc]
        if self.pending and not self.autopilot:
            self._provision(now)

    def _provision(self, now: float) -> None:
        cap = self.pods_per_node
        alive = self.alive
        launching = sum(cap - n.pods for n in alive if not n.ready)
        need = len(self.pending) - launching
        if need <= 0:
            return
        k = min(math.ceil(need / cap), self.max_nodes - len(alive))
        if k <= 0:
            return
        before = len(alive)
        for _ in range(k):
            node = self._launch(now, ready=False)
            self._at(now + self.provisioning.next(), lambda node=node: self._node_ready(node))  # type: ignore[misc]
        self.ctx.decide(
            "nodes",
            before,
            before + k,
            f"{len(self.pending)} pending pods, {launching} slots on launching nodes, "
            f"{cap} pods per {self.spec.cluster.node}: launch {k}",
        )

    def _node_ready(self, node: _Node) -> None:
        node.ready = True
        now = self.env.now
        self._schedule(now)
        if node.pods == 0:
            self._node_emptied(node, now)

    def _node_emptied(self, node: _Node, t: float) -> float:
        node.gen += 1
        gen = node.gen
        when = t + self.spec.cluster.scale_down_after
        if self._closing or when >= self.horizon:
            return INF
        self._at(when, lambda: self._node_check(node, gen))
        return when

    def _node_check(self, node: _Node, gen: int) -> None:
        if node.gen != gen or node.pods or node.end is not None:
            return
        alive = len(self.alive)
        if alive <= self.min_nodes:
            return
        node.end = self.env.now
        self.alive.remove(node)
        self.ctx.decide(
            "nodes",
            alive,
            alive - 1,
            f"node {node.id} empty for {self.spec.cluster.scale_down_after:g}s: removed",
        )

    # -- pods becoming ready ---------------------------------------------------------------------
    def _pod_ready(self, pid: int) -> None:
        if self.state[pid] != STARTING:
            return
        self.starting.remove(pid)
        self._make_ready(pid, self.env.now)

    def _make_ready(self, pid: int, now: float) -> None:
        self.state[pid] = READY
        self.ready_order.append(pid)
        self._ready_change(now, +1)
        if self.rr:
            self.rr_pods.append(pid)
            self._dispatch_held(now)
            return
        self.buckets[0].add(pid)
        self.kmin = 0
        q = self.queue
        while q and self.kmin < self.conc:
            a, s, over, cold = q.popleft()
            self.q_arr_sum -= a
            self.dequeued_wait += now - a
            self._start(self._take_slot(), a, s, over, cold, now)
        if not q:
            self.q_arr_sum = 0.0

    def _take_slot(self) -> int:
        b = self.buckets[self.kmin]
        pid = b.pop()
        k = self.kmin + 1
        self.inflight[pid] = k
        if k < self.conc:
            self.buckets[k].add(pid)
        if not b:
            self.kmin = k
        return pid

    def _dispatch_held(self, now: float) -> None:
        """round_robin: hand the requests held while no pod was ready to the ready pods."""
        q = self.queue
        while q:
            a, s, over, cold = q.popleft()
            pid = self.rr_pods[self.rr_next]
            self.rr_next = (self.rr_next + 1) % len(self.rr_pods)
            if self.inflight[pid] < self.conc:
                self.q_arr_sum -= a
                self.dequeued_wait += now - a
                self.nwait -= 1
                self.inflight[pid] += 1
                self._start(pid, a, s, over, cold, now)
            else:
                self.pod_queue[pid].append((a, s, over, cold))

    def _start(self, pid: int, a: float, s: float, over: float, cold: bool, now: float) -> None:
        d = s * self.scale
        heappush(self.heap, (now + d, pid))
        self.started_d += d
        self._ra.append(a)
        self._rs.append(now)
        self._rd.append(d)
        self._rp.append(pid)
        self._rc.append(cold)
        if self.ov_const is None:
            self._ro.append(over)

    def _ready_change(self, now: float, delta: int) -> None:
        dt = now - self.ready_t
        if dt > 0:
            self.ready_area += self.nready * dt
            lo = max(self.ready_t, self.ctx.warmup)
            if now > lo:
                self.ready_area_post += self.nready * (now - lo)
        self.ready_t = now
        self.nready += delta
        if self.nready > self.peak_ready:
            self.peak_ready = self.nready

    # -- metrics ----------------------------------------------------------------------------------
    def _record(self, now: float) -> tuple[float, float, float, float, float]:
        """Cumulative meters now (the data plane must be caught up and purged to now)."""
        if self.history_t and self.history_t[-1] >= now - _EPS:
            return self.history[-1]
        busy = self.started_d - sum(e - now for e, _ in self.heap)
        queue = self.dequeued_wait + self.waiting() * now - self.q_arr_sum
        ready = self.ready_area + self.nready * (now - self.ready_t)
        row = (now, float(self.n_arrivals), busy, queue, ready)
        self.history.append(row)
        self.history_t.append(now)
        if len(self.history) > 4096:  # keep what the longest window still needs
            cut = bisect.bisect_left(self.history_t, now - self.max_window - 60.0)
            if cut > 0:
                del self.history[:cut]
                del self.history_t[:cut]
        return row

    def _window(self, now: float, window: float) -> tuple[float, float, float, float, float]:
        """(seconds, arrivals, busy request-s, waiting request-s, ready pod-s) in the window."""
        cur = self._record(now)
        j = bisect.bisect_right(self.history_t, now - window + 1e-6) - 1
        old = self.history[max(j, 0)]
        return tuple(c - o for c, o in zip(cur, old, strict=True))  # type: ignore[return-value]

    def waiting(self) -> int:
        return self.nwait if self.rr else len(self.queue)

    def _pods_metric(self, name: str, now: float, window: float) -> float | None:
        """A per-ready-pod metric averaged over the window (None when no pod was ready)."""
        _, arrivals, busy, waiting, ready = self._window(now, window)
        if ready <= _EPS:
            return None
        if name in ("cpu", "cpu_utilization"):
            return busy * self.cpu_per_request / (ready * self.spec.pod.cpu)
        if name == "cpu_cores":
            return busy * self.cpu_per_request / ready
        if name == "concurrency":
            return (busy + waiting) / ready
        if name == "rps":
            return arrivals / ready
        raise ValueError(name)

    def _trigger_window(self, info: TriggerInfo) -> float | None:
        if info.measure == "request_rate":
            return info.window
        if info.measure in ("cpu_utilization", "cpu_cores"):
            assert self.keda is not None
            return self.keda.hpa_sync_period
        return None

    def _trigger_value(self, info: TriggerInfo, now: float) -> float | None:
        m = info.measure
        if m == "request_rate":
            assert info.window is not None
            span, arrivals, *_ = self._window(now, info.window)
            return arrivals / span if span > 0 else 0.0
        if m == "concurrency" or m == "backlog_inflight":
            return float(len(self.heap) + self.waiting())
        if m == "backlog":
            return float(self.waiting())
        w = self._trigger_window(info)
        assert w is not None
        return self._pods_metric(m, now, w)

    # -- autoscaler loops ------------------------------------------------------------------------
    def _hpa_sync(self, now: float) -> None:
        self._catch_up(now)
        hpa, spec = self.hpa, self.spec.hpa
        assert hpa is not None and spec is not None
        value = self._pods_metric(spec.metric, now, spec.window)
        d = hpa.recommend(now, self.replicas, self.nready, value)
        if d.desired != self.replicas:
            self._scale_to(d.desired, "hpa", _reason(d.rule, d.reason, d.metric_value, d.target))

    def _keda_poll(self, now: float) -> None:
        self._catch_up(now)
        keda = self.keda
        assert keda is not None
        values = [self._trigger_value(info, now) for info in keda.triggers]
        d = keda.on_poll(now, values, self.replicas)
        if d.desired != self.replicas:
            shown = ", ".join(
                f"{i.name}={_fmt(v)} (activation > {_fmt(i.activation)})"
                for i, v in zip(keda.triggers, values, strict=True)
                if i.activation is not None
            )
            self._scale_to(d.desired, "keda", f"{d.rule}: {d.reason}; {shown}")

    def _keda_sync(self, now: float) -> None:
        self._catch_up(now)
        keda = self.keda
        assert keda is not None
        values = [self._trigger_value(info, now) for info in keda.triggers]
        d = keda.on_hpa_sync(now, values, self.replicas, self.nready)
        if d.desired != self.replicas and self.replicas > 0:
            self._scale_to(
                d.desired, "keda_hpa", _reason(d.rule, d.reason, d.metric_value, d.target)
            )

    # =============================================================================================
    # data plane
    # =============================================================================================
    def _purge(self, now: float) -> None:
        """Requests still waiting at their deadline (<= now) leave their queue timed out."""
        if self.timeout == INF:
            return
        self._purge_queue(self.queue, now)
        if self.rr and self.nwait:
            for pid in (*self.rr_pods, *self.draining):
                q = self.pod_queue[pid]
                if q:
                    self._purge_queue(q, now)

    def _purge_queue(self, q: deque, now: float) -> None:
        to = self.timeout
        log = self.log
        while q and q[0][0] + to <= now:
            a, _s, over, cold = q.popleft()
            self.q_arr_sum -= a
            self.dequeued_wait += to
            if self.rr:
                self.nwait -= 1
            end = a + to
            log.arrival.append(a)
            log.start.append(end)
            log.end.append(end)
            log.wait.append(to)
            log.startup.append(0.0)
            log.service.append(0.0)
            log.overhead.append(over)
            log.cold.append(cold)
            log.outcome.append(TIMED_OUT)
            log.instance.append(-1)
        if not self.waiting():
            self.q_arr_sum = 0.0

    def advance(self, until: float) -> None:  # the hot loop, kept in one piece
        heap, i = self.heap, self._i
        if (
            i < len(self._arr)
            and self._arr[i] >= until
            and (not heap or heap[0][0] >= until)
            and until < self.horizon
        ):
            return  # nothing happens before `until` (frequent with short control periods)
        if self.rr:
            self._advance_rr(until)
            return
        arr, svc = self._arr, self._svc
        i, n = self._i, len(arr)
        heap, queue = self.heap, self.queue
        inflight, state, buckets = self.inflight, self.state, self.buckets
        conc, kmin = self.conc, self.kmin
        scale, timeout, qlimit = self.scale, self.timeout, self.qlimit
        ov_const, ov_draw = self.ov_const, self.ov_draw
        r_a, r_s, r_d = self._ra.append, self._rs.append, self._rd.append
        r_p, r_c, r_o = self._rp.append, self._rc.append, self._ro.append
        f_p, f_o = self._fp.append, self._fo.append
        started_d = 0.0
        narr = 0
        i0 = i
        cold_now = self.nready == 0  # the ready set changes only at control events
        while True:
            if i >= n:
                narr += i - i0
                i0 = i
                if self._next_chunk():
                    arr, svc, i, n = self._arr, self._svc, 0, len(self._arr)
                    i0 = 0
                    continue
                ta = INF
            else:
                ta = arr[i]
            while heap:  # completions up to the next arrival (and before `until`)
                te = heap[0][0]
                if te > ta or te >= until:
                    break
                pid = heappop(heap)[1]
                if state[pid] == READY:
                    if queue:
                        if queue[0][0] + timeout <= te:
                            self._purge_queue(queue, te)
                        if queue:
                            # The freed slot takes the head of the queue (pod stays as full).
                            a, s, over, cold = queue.popleft()
                            self.q_arr_sum -= a
                            self.dequeued_wait += te - a
                            if not queue:
                                self.q_arr_sum = 0.0
                            d = s * scale
                            heappush(heap, (te + d, pid))
                            started_d += d
                            r_a(a)
                            r_s(te)
                            r_d(d)
                            r_p(pid)
                            r_c(cold)
                            if ov_const is None:
                                r_o(over)
                            continue
                        self.q_arr_sum = 0.0
                    k = inflight[pid]
                    inflight[pid] = k - 1
                    if k < conc:
                        buckets[k].discard(pid)
                    buckets[k - 1].add(pid)
                    if k - 1 < kmin:
                        kmin = k - 1
                else:  # draining
                    k = inflight[pid] - 1
                    inflight[pid] = k
                    if not k:
                        wake = self._gone(pid, te)
                        if wake < until:
                            until = wake
                continue
            if ta >= until:
                break
            # An arrival.
            s = svc[i]
            i += 1
            over = ov_const if ov_const is not None else ov_draw.next()
            if kmin < conc:
                b = buckets[kmin]
                pid = b.pop()
                k = kmin + 1
                inflight[pid] = k
                if k < conc:
                    buckets[k].add(pid)
                if not b:
                    kmin = k
                d = s * scale
                heappush(heap, (ta + d, pid))
                started_d += d
                # Started on arrival: start = arrival, not cold (columns filled at flush).
                f_p(pid)
                if ov_const is None:
                    f_o(over)
                continue
            f_p(-1)
            if queue and queue[0][0] + timeout <= ta:
                self._purge_queue(queue, ta)
            if qlimit is not None and len(queue) >= qlimit:
                self._reject(ta, over)
                continue
            queue.append((ta, s, over, cold_now))
            self.q_arr_sum += ta
            if cold_now:
                self.cold_in_step += 1
        narr += i - i0
        self.kmin = kmin
        self._i = i
        self.started_d += started_d
        self.n_arrivals += narr
        self.arrivals_in_step += narr
        if len(self._ra) + len(self._fp) + self._direct_n >= 65536 or until >= self.horizon:
            self.flush()

    def _advance_rr(self, until: float) -> None:
        arr, svc = self._arr, self._svc
        i, n = self._i, len(arr)
        heap, hold, pqs = self.heap, self.queue, self.pod_queue
        inflight, state = self.inflight, self.state
        rr_pods, nrr = self.rr_pods, len(self.rr_pods)
        rr_next = self.rr_next
        conc, timeout, qlimit = self.conc, self.timeout, self.qlimit
        ov_const, ov_draw = self.ov_const, self.ov_draw
        cold_now = nrr == 0
        narr = 0
        while True:
            if i >= n:
                if self._next_chunk():
                    arr, svc, i, n = self._arr, self._svc, 0, len(self._arr)
                    continue
                ta = INF
            else:
                ta = arr[i]
            if heap and heap[0][0] <= ta:
                te = heap[0][0]
                if te >= until:
                    break
                pid = heappop(heap)[1]
                pq = pqs[pid]
                if pq and pq[0][0] + timeout <= te:
                    self._purge_queue(pq, te)
                if pq:
                    a, s, over, cold = pq.popleft()
                    self.q_arr_sum -= a
                    self.dequeued_wait += te - a
                    self.nwait -= 1
                    self._start(pid, a, s, over, cold, te)
                    continue
                k = inflight[pid] - 1
                inflight[pid] = k
                if not k and state[pid] == DRAINING:
                    wake = self._gone(pid, te)
                    if wake < until:
                        until = wake
                continue
            if ta >= until:
                break
            s = svc[i]
            i += 1
            narr += 1
            over = ov_const if ov_const is not None else ov_draw.next()
            if nrr:
                pid = rr_pods[rr_next]
                rr_next += 1
                if rr_next == nrr:
                    rr_next = 0
                if inflight[pid] < conc:
                    inflight[pid] += 1
                    self._start(pid, ta, s, over, False, ta)
                    continue
                q = pqs[pid]
            else:
                q = hold
            if qlimit is not None and self.nwait >= qlimit:
                self._purge(ta)
            if qlimit is not None and self.nwait >= qlimit:
                self._reject(ta, over)
                continue
            q.append((ta, s, over, cold_now))
            self.q_arr_sum += ta
            self.nwait += 1
            if cold_now:
                self.cold_in_step += 1
        self.rr_next = rr_next
        self._i = i
        self.n_arrivals += narr
        self.arrivals_in_step += narr
        if len(self._ra) >= 65536 or until >= self.horizon:
            self.flush()

    def _reject(self, t: float, over: float) -> None:
        log = self.log
        log.arrival.append(t)
        log.start.append(t)
        log.end.append(t)
        log.wait.append(0.0)
        log.startup.append(0.0)
        log.service.append(0.0)
        log.overhead.append(over)
        log.cold.append(False)
        log.outcome.append(REJECTED)
        log.instance.append(-1)

    def _next_chunk(self) -> bool:
        self._direct_rows()
        if not super()._next_chunk():
            return False
        self._fp_from = 0
        return True

    def _direct_rows(self) -> None:
        """Columns of the requests that started on arrival, from the current chunk (vectorised)."""
        k = len(self._fp)
        if not k or self._chunk is None:
            return
        lo, hi = self._fp_from, self._fp_from + k
        pid = np.asarray(self._fp, dtype=np.int64)
        self._fp.clear()  # in place: the hot loop holds its bound `append`
        self._fp_from = hi
        ok = pid >= 0
        a = self._chunk.arrival[lo:hi][ok]
        d = self._chunk.service[lo:hi][ok] * self.scale
        if self.ov_const is not None:
            over = np.full(a.size, self.ov_const)
        else:
            over = np.asarray(self._fo, dtype=np.float64)
            self._fo.clear()
        self._direct.append((a, d, pid[ok], over))
        self._direct_n += a.size

    def _rows(
        self,
        a: np.ndarray,
        start: np.ndarray,
        dur: np.ndarray,
        pid: np.ndarray,
        cold: np.ndarray,
        over: np.ndarray,
    ) -> dict[str, np.ndarray]:
        pod_end = start + dur
        deadline = a + self.timeout
        late = pod_end > deadline  # timed out for the client at its deadline
        end = np.where(late, deadline, pod_end)
        return {
            "arrival": a,
            "start": start,
            "end": end,
            "wait": start - a,
            "startup": np.zeros(a.size),
            "service": np.where(late, end - start, dur),
            "overhead": over,
            "cold": cold,
            "outcome": np.where(late, TIMED_OUT, OK).astype(np.uint8),
            "instance": pid,
        }

    def flush(self) -> None:
        """Hand the buffered rows to the recorder; started requests get their columns here."""
        self._direct_rows()
        for a, d, pid, over in self._direct:  # started on arrival: no wait, not cold
            n = a.size
            self.ctx.recorder.add(self._rows(a, a, d, pid, np.zeros(n, dtype=np.bool_), over))
        self._direct.clear()
        self._direct_n = 0
        if self._ra:
            n = len(self._ra)
            over = (
                np.full(n, self.ov_const)
                if self.ov_const is not None
                else np.asarray(self._ro, dtype=np.float64)
            )
            self.ctx.recorder.add(
                self._rows(
                    np.asarray(self._ra, dtype=np.float64),
                    np.asarray(self._rs, dtype=np.float64),
                    np.asarray(self._rd, dtype=np.float64),
                    np.asarray(self._rp, dtype=np.int64),
                    np.asarray(self._rc, dtype=np.bool_),
                    over,
                )
            )
            # Clear in place: the hot loop holds these lists' bound `append`s.
            for lst in (self._ra, self._rs, self._rd, self._rp, self._rc, self._ro):
                lst.clear()
        super().flush()

    # =============================================================================================
    # observation and accounting
    # =============================================================================================
    def snapshot(self, now: float) -> dict[str, float]:
        self._catch_up(now)
        if self.rr:
            busy = sum(1 for p in self.rr_pods if self.inflight[p])
        else:
            busy = self.nready - len(self.buckets[0])
        alive = self.alive
        row = {
            "instances": float(self.nready),
            "busy": float(busy),
            "idle": float(self.nready - busy),
            "queued": float(self.waiting()),
            "desired": float(self.replicas),
            "nodes": float(len(alive)),
            "nodes_ready": float(sum(1 for n in alive if n.ready)),
            "pending": float(len(self.pending)),
            "starting": float(len(self.starting)),
            "ready": float(self.nready),
            "draining": float(len(self.draining)),
            "inflight": float(len(self.heap)),
            "arrivals": float(self.arrivals_in_step),
            "cold_starts": float(self.cold_in_step),
        }
        self.arrivals_in_step = self.cold_in_step = 0
        return row

    def finish(self) -> None:
        end = self.horizon
        self._catch_up(end)
        self._ready_change(end, 0)
        self._closing = True
        # Pods still scheduled at the end are billed (autopilot) to the end of the window.
        for pid, st in enumerate(self.state):
            if st in (STARTING, READY, DRAINING):
                lo = self.scheduled_at[pid]
                if end > lo:
                    self.pod_seconds += end - lo
                self.scheduled_at[pid] = end  # nothing more is billed for it
        # Work already accepted finishes after the window with the pods that are ready (no more
        # control actions); requests no pod will take time out at their deadline (or, with no
        # timeout, are counted timed out at the end of the run).
        self.advance(INF)
        self._purge(INF)
        leftovers = list(self.queue)
        for q in self.pod_queue:
            leftovers.extend(q)
        for a, _s, over, cold in leftovers:
            self._unanswered(a, over, cold, end)
        self.queue.clear()
        self.ctx.decisions.sort(key=lambda d: d.time_s)
        self.flush()

    def _unanswered(self, a: float, over: float, cold: bool, end: float) -> None:
        log = self.log
        t = max(a, end)
        log.arrival.append(a)
        log.start.append(t)
        log.end.append(t)
        log.wait.append(t - a)
        log.startup.append(0.0)
        log.service.append(0.0)
        log.overhead.append(over)
        log.cold.append(cold)
        log.outcome.append(TIMED_OUT)
        log.instance.append(-1)

    def instance_stats(self) -> dict[str, float]:
        span = max(self.ctx.duration - self.ctx.warmup, 1e-12)
        return {"mean": self.ready_area_post / span, "peak": float(self.peak_ready)}

    def usage(self) -> KubernetesUsage:
        end = self.horizon
        cpu = self.spec.pod.cpu
        mem_gib = self.spec.pod.memory / 1024.0
        return KubernetesUsage(
            window_s=end,
            requests=self.n_arrivals,
            nodes=[
                NodeUsage(self.node_type, n.launched, n.end if n.end is not None else end)
                for n in self.nodes
            ],
            pod_cpu_seconds=self.pod_seconds * cpu,
            pod_memory_gib_seconds=self.pod_seconds * mem_gib,
            # every arrival is answered (a failed one at full size: slightly high on errors)
            response_bytes=self.n_arrivals * self.ctx.response_bytes[0],
        )

    def bill(self) -> Any:
        c = self.spec.cluster
        assert c.control_plane is not None
        return kubernetes_bill(
            self.usage(),
            control_plane=c.control_plane,
            mode=c.mode,
            load_balancer=self.spec.load_balancer,
            ops=self.spec.ops,
            free_tier=self.spec.free_tier,
            settings=self.spec.cost,
            month_s=self.ctx.month_s,
            ops_profile=self.spec.ops_profile,
        )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _reason(rule: str, text: str, value: float | None, target: float | None) -> str:
    return f"{rule}: {text} [metric {_fmt(value)}, target {_fmt(target)}]"


__all__ = ["KubernetesModel", "KubernetesSpec"]
