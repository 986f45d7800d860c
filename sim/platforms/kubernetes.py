"""Kubernetes: pods behind a load balancer, fixed / HPA / KEDA replicas, nodes and the cluster bill.

The spec (`type: kubernetes`) is sim.platforms.kubernetes_spec.KubernetesSpec; the autoscalers'
decision logic is sim.platforms.autoscaling (hpa.py, keda.py). This module is the SimPy model.

Data plane (a tight loop in `advance`, platforms.md "Kubernetes"):
- A pod serves up to `pod.concurrency` requests at once. A request is assigned to a pod ON
  ARRIVAL by the entry path's balancer and waits in that pod's own FIFO queue; a freed slot takes
  the head of its own pod's queue (`_advance_pp`). `routing` (docs/model.md "Routing"):
  `random` = kube-proxy iptables (a uniform ready endpoint), `round_robin` = ALB default / IPVS
  rr / ingress-nginx, `least_request` = Envoy power of two choices (two draws with replacement,
  fewer outstanding wins, the first on a tie), `least_outstanding` = ALB least outstanding
  requests (lowest pod id on a tie); outstanding = in service + queued at the pod. The default
  follows the entry path (KubernetesSpec.default_routing). `ideal_fifo` keeps the textbook M/M/c:
  one FIFO in front of the ready pods, a freed slot takes its head, a new request goes to the pod
  with the fewest in flight (the loop in `advance`).
- With no ready pod at all, requests are held in `queue` (the KEDA HTTP add-on interceptor holds
  them, bounded by its readiness timeout) and forwarded in arrival order by the balancer when a
  pod becomes ready (`_dispatch_held`): the interceptor proxies to the Service, so with the add-on
  the balancer is kube-proxy's random pick.
- `queue_limit` caps each pod's queue and the hold queue (ideal_fifo: its one queue); an arrival
  beyond it is `rejected` (503). `request_timeout` is the client's deadline from arrival: a
  request still waiting at its deadline leaves the queue `timed_out` (with one constant timeout,
  FIFO queues hold deadlines in order, so purging the head lazily is exact; the load-aware
  balancers purge the heads they compare first, so expired requests never count as outstanding);
  a request whose service would end after its deadline is `timed_out` for the client at the
  deadline while its pod keeps working until the service really ends (and counts as outstanding).
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
finishes what it holds, including its own pod queue) -> gone. Scale-down removes pods in a
ReplicaSet's order (`_victims`: controller.ActivePodsWithRanks, pods on fuller nodes first,
log2-bucketed ready and creation times). Busy-ness is not considered (Kubernetes cannot see it).

Control plane (SimPy processes; each handler first catches the data plane up to its own time):
- `replicas: N` fixed. `hpa:` every `sync_period`. cpu: the pods as metrics-server shows them
  (`_cpu_metrics`: the CPU rate per ready pod-second between its last two scrapes, each pod's
  sample or its absence, readiness times), which hpa.py groups and rounds as the controller does.
  concurrency = (request-seconds in service + request-seconds waiting) / ready pod-seconds over
  `window` (waiting requests count, so an overloaded deployment shows above its target); rps =
  arrivals / ready pod-seconds. No ready pod-second in the window -> the metric is unavailable
  (the HPA keeps its count). `metric_failures` makes reads fail (`_read_fails`).
- `keda:` KEDA polls every `pollingInterval` (activation 0 <-> 1) and its HPA syncs every 15 s
  (1 <-> N, AverageValue by default), both with one value per trigger: request_rate = arrivals
  at the ingress in the trigger's window / window (prometheus `counts: arrivals`, http
  requestRate); completion_rate = requests the pods finished in the window / window (prometheus,
  an app-side counter); concurrency = requests in service + waiting, now; backlog = requests
  waiting, now (queue; kafka and aws-sqs-queue add those in service); cpu as the HPA's.
  The largest trigger wins (the HPA's rule, in hpa.py). Every change of the replica count goes to
  ctx.decide with the metric, target and rule; syncs that change nothing are not recorded.
- Nodes (`cluster.mode: nodes`): every node is of type `cluster.node` with allocatable = vCPU and
  memory minus `system_reserved`; all pods request the same cpu/memory, so a node holds
  floor(min(cpu_alloc / cpu, mem_alloc / mem)) pods. Placement is first-fit over ready nodes in
  launch order. Pending pods that do not fit on ready nodes or nodes already launching make the
  node autoscaler launch enough nodes for them (up to `max_nodes`), ready after
  `node_provisioning`; the scheduler places pending pods whenever a node becomes ready or a pod
  leaves. Every 10 s the node autoscaler may take nodes away (`_scale_down_nodes`: Karpenter
  consolidation or the Cluster Autoscaler's unneeded nodes; a non-empty node is drained, its pods
  replaced elsewhere), never below `min_nodes`. At time 0 the initial replicas are ready on
  enough ready nodes (a running service), at least `min_nodes`. A node is billed from its
  launch (the provisioning time is mostly instance boot, which EC2 bills) to its removal.
- Spot (`cluster.spot`, docs/model.md "Spot nodes"): each launch is on-demand or spot as a
  MixedInstancesPolicy counts it (`_spot_capacity`); a spot node gets interruption notices (a
  Poisson draw at launch, or a trace); at the notice it is drained (`_drain`), pods still working
  after the grace are killed and their requests fail or are retried (`_spot_kill`, `_cut`), and
  it goes at the end of the notice. Spot node-seconds are billed at the spot price.
- `mode: autopilot`: no nodes; a pod starts at once (ASSUMPTION: GKE Autopilot's own node
  provisioning is not modelled) and is billed on its CPU and memory requests from scheduling to
  deletion. With `cluster.spot` its pods are Autopilot Spot Pods (`_pod_node`): each gets a spot
  "node" of its own, the Spot VM under it (ASSUMPTION: one pod per VM, so pods are interrupted
  independently), and goes through the same notice, drain and kill as a spot node.

Exactness: the engine advances the data plane to the next control event, and every control
handler here calls `advance(now)` first. A data-plane event that needs the control plane (a
draining pod leaving frees room for a pending pod; a node becomes empty) schedules a SimPy event
at its own time and stops the loop there, so nothing is processed ahead of a control action.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from collections.abc import Callable
from functools import cmp_to_key
from heapq import heapify, heappop, heappush, heapreplace
from itertools import cycle
from typing import Any

import numpy as np

import sim.platforms.autoscaling as D
from sim import compiled
from sim.errors import InputError
from sim.platforms.autoscaling.hpa import HorizontalPodAutoscaler, PodMetrics, PodView
from sim.platforms.autoscaling.keda import KedaAutoscaler, TriggerInfo
from sim.platforms.base import (
    INF,
    DrawBuffer,
    PlatformModel,
    RunContext,
    constant_value,
    substream,
)
from sim.platforms.kubernetes_spec import KubernetesSpec
from sim.pricing.kubernetes import (
    KubernetesUsage,
    NodeUsage,
    autopilot_requests,
    kubernetes_bill,
)
from sim.pricing.tables import instance_type
from sim.records import OK, REJECTED, TIMED_OUT

PENDING, STARTING, READY, DRAINING, GONE = range(5)
FIFO, RANDOM, ROUND_ROBIN, LEAST_REQUEST, LEAST_OUTSTANDING = range(5)
_MODES = {
    "ideal_fifo": FIFO,
    "random": RANDOM,
    "round_robin": ROUND_ROBIN,
    "least_request": LEAST_REQUEST,
    "least_outstanding": LEAST_OUTSTANDING,
}
_EPS = 1e-9


def pods_metric(
    name: str, arrivals: float, core_s: float, in_flight_s: float, ready_s: float, pod_cpu: float
) -> float | None:
    """A per-ready-pod metric from window totals (None when no pod was ready): CPU core-seconds
    used over ready pod-seconds (x the pod's CPU request for utilisation), request-seconds in
    flight (served + waiting) or arrivals per ready pod-second. Also a system's pods'
    (sim.systems.engine)."""
    if ready_s <= _EPS:
        return None
    if name in ("cpu", "cpu_utilization"):
        return core_s / (ready_s * pod_cpu)
    if name == "cpu_cores":
        return core_s / ready_s
    if name == "concurrency":
        return in_flight_s / ready_s
    if name == "rps":
        return arrivals / ready_s
    raise ValueError(name)


def scrape_time(now: float, r: float) -> float:
    """The latest metrics-server scrape at or before `now` (scrapes at r/2 + k r: ASSUMPTION,
    see KubernetesModel._scrapes)."""
    return r / 2.0 + r * math.floor((now - r / 2.0) / r + 1e-9)


def metrics_server_view(
    s: float,
    r: float,
    core_s: float,
    ready_s: float,
    pending: int,
    starting: list[float],
    ready: list[tuple[float, float]],
    request_milli: int,
) -> PodMetrics:
    """The pods as the HPA sees them for CPU (metrics-server v0.9.0, pkg/storage): the scrape at
    s serves each running pod the CPU rate over [s - r, s] (core_s core-seconds over ready_s
    ready pod-seconds), stamped s; a pod whose container started after s - r has no sample,
    unless it is 10 s to r old at s (then its window starts at its start). ASSUMPTIONS: a
    container starts when its pod becomes ready (`pod.startup` is mostly the image pull) and uses
    no CPU before; every ready pod is served the mean CPU per ready pod-second over the window
    (the balancer spreads the work); pending and starting pods (`starting`: their scheduling
    times) are in phase Pending. `ready`: (ready since, start time) per ready pod. Also a
    system's autoscaled pods (sim.systems.engine)."""
    milli: int | None = None
    if s >= 0:
        rate = core_s / ready_s if ready_s > _EPS else 0.0
        milli = -(-int(rate * 1e9) // 1_000_000)  # nanocores -> Quantity.MilliValue (ceil)
    pods: list[PodView] = [PodView(True) for _ in range(pending)]
    pods += [PodView(True, t) for t in starting]
    for c, start in ready:
        if milli is not None and c <= s - r + 1e-6:
            pods.append(PodView(False, start, True, c, milli, s, r))
        elif milli is not None and s - c >= D.METRIC_FRESH_CONTAINER_MIN_S - 1e-6:
            pods.append(PodView(False, start, True, c, milli, s, s - c))
        else:
            pods.append(PodView(False, start, True, c, None))
    return PodMetrics(tuple(pods), request_milli)


_LONG_AGO = -1e9  # ready / created "long before the run" (the initial pods of a running service)
_FAILURE_STREAM = 31  # substream purpose of metric-read failures


class _Uniforms:
    """U[0, 1) draws for the balancer's choices, drawn in bulk: `next()`, or in a hot loop
    `buf.pop()` after `if not buf: refill()` (the list is refilled in place, so a bound `pop`
    stays valid; it holds the draws reversed, so pops hand them out in draw order)."""

    __slots__ = ("buf", "rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.buf: list[float] = []

    def refill(self) -> None:
        self.buf[:0] = self.rng.random(4096)[::-1].tolist()  # under any draws still left

    def next(self) -> float:
        if not self.buf:
            self.refill()
        return self.buf.pop()


class _Node:
    __slots__ = (
        "cordoned",
        "end",
        "id",
        "last_event",
        "launched",
        "noticed",
        "pods",
        "ready",
        "spot",
        "unneeded",
    )

    def __init__(self, node_id: int, launched: float, ready: bool, spot: bool = False) -> None:
        self.id = node_id
        self.launched = launched
        self.ready = ready
        self.end: float | None = None
        self.pods = 0  # pods bound to it, draining ones included
        self.last_event = launched  # a pod last came or went (Karpenter's lastPodEventTime)
        self.cordoned = False  # being drained: takes no new pod, goes when empty
        self.unneeded: float | None = None  # Cluster Autoscaler: unneeded since
        self.spot = spot  # spot capacity (billed at the spot price, can be interrupted)
        self.noticed: float | None = None  # when its spot interruption notice came


def spot_short(sp: Any, now: float, until: float, rng: Any) -> tuple[bool, float]:
    """No spot capacity for this launch? (short, the cache's new end): inside Karpenter's
    unavailable-offerings cache (a shortage seen less than `unavailable_ttl` ago, ending at
    `until`), inside an `unavailable_during` window, or a draw under `unavailable`; a shortage
    found now is cached. The kernel's and a system's node pool (sim.systems.nodes) share it."""
    if not sp.short_capacity():
        return False, until
    if now < until:
        return True, until
    short = any(lo <= now < hi for lo, hi in sp.unavailable_during or ())
    if not short and sp.unavailable > 0:
        short = rng.random() < sp.unavailable
    return short, (now + sp.unavailable_ttl if short else until)


class KubernetesModel(PlatformModel):
    spec: KubernetesSpec
    uses_function = False  # one Deployment serves every function of a trace
    # Outcome of an arrival no slot or queue takes (subclasses: Lambda Managed Instances throttle).
    reject_outcome = REJECTED

    def __init__(self, spec: KubernetesSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        rng = ctx.rng
        pod, cluster = spec.pod, spec.cluster
        self.conc = pod.concurrency
        cb = ctx.cpu_bound
        self.scale = (1.0 - cb) + cb / min(pod.cpu, 1.0)
        self.cpu_per_request = cb / self.scale  # cores used by one request in service
        self.timeout = spec.request_timeout if spec.request_timeout is not None else INF
        # ideal_fifo's one queue: how long a request may wait in it, and what it is when it leaves
        # at that limit (a subclass bounds it below the client's timeout: Cloud Run's 429).
        self.queue_timeout = self.timeout
        self.queue_outcome = TIMED_OUT
        self.qlimit = spec.queue_limit
        assert spec.routing is not None  # resolved by the spec from the entry path
        self.routing = spec.routing
        self.mode = _MODES[spec.routing]
        self.pp = self.mode != FIFO  # per-pod queues (every routing but ideal_fifo)
        self.track = self.mode in (LEAST_REQUEST, LEAST_OUTSTANDING)  # they keep `out`
        self.route_u = _Uniforms(substream(rng, 1))  # routing draws, their own stream
        # The interceptor's readiness wait bounds how long a request is held with no ready pod
        # (HTTP add-on only; per-pod routings: ideal_fifo's one queue is not the interceptor's).
        rt = spec.interceptor.readiness_timeout
        self.hold_timeout = (
            min(rt, self.timeout)
            if rt is not None and spec.http_add_on and self.pp
            else self.timeout
        )
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
        self.created_at: list[float] = []  # when the ReplicaSet created the pod
        self.ready_at: list[float] = []  # PodReady since (also its container start, ASSUMPTION)
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
        # Per-pod routings: `queue` holds requests while no pod is ready (the interceptor / the
        # entry path); each pod has its own FIFO; `ep` = the ready endpoints in pod-id order.
        self.pod_queue: list[deque[tuple[float, float, float, bool]]] = []
        self.out: list[int] = []  # outstanding per pod (in service + queued), if self.track
        self.ep: list[int] = []
        self.rr_next = 0  # round_robin: index in `ep` of the next pick
        self.nwait = 0  # per-pod routings: requests waiting in all queues
        # Meters (cumulative; windows are differences of two readings).
        self.n_arrivals = 0
        self.started_d = 0.0  # pod-busy seconds of every request started
        self.dequeued_wait = 0.0  # waiting seconds of requests that left a queue
        self.q_arr_sum = 0.0  # sum of arrival times of the requests waiting now
        self.ready_area = 0.0  # ready pod-seconds since 0
        self.ready_area_post = 0.0  # ... after warm-up
        self.ready_t = 0.0
        self.history: list[tuple[float, float, float, float, float, float]] = []
        self.history_t: list[float] = []
        self.max_window = 0.0
        self.n_dropped = 0  # rejected or timed out while waiting: never reach a pod
        self.n_initial = 0
        self._scraping = False
        self.last_scale_up = -INF  # the node autoscaler's last launch
        self._command_at: float | None = None  # Karpenter: a command awaiting validation
        self._node_tick: float | None = None  # the node autoscaler's next look, when armed
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
        # ... the compiled FCFS loop's entries as arrays, before those of `_fp` (_fp_an of them).
        self._fp_arrs: list[np.ndarray] = []
        self._fp_an = 0
        self._direct: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._direct_n = 0
        # Per-pod FCFS (`_advance_fcfs`): rows of `_ra`.. [lo, hi) it appended in assignment
        # order, put in the event loop's start order ((start, pod), FIFO on ties) at flush.
        self._sort_segs: list[list[int]] = []
        # ... and its slot ends per endpoint (in `ep` order), kept across consecutive intervals
        # while nothing reads the event loop's heap and `inflight` (stale meanwhile; `_settle`
        # writes them, valid at `_fc_t`). None: the event loop's state is current.
        self._fc_slots: Any = None  # list[list[float]] | np.ndarray | None
        self._fc_t = 0.0
        self._fc_next = INF  # ... when the first queued request starts (nothing changes before)
        # Accounting.
        self.pod_seconds = 0.0  # scheduled pod-seconds in the window (autopilot bill)
        self.arrivals_in_step = 0
        self.cold_in_step = 0
        # Autoscalers.
        self.hpa: HorizontalPodAutoscaler | None = None
        self.keda: KedaAutoscaler | None = None
        flags = cluster.controller
        if spec.hpa is not None:
            self.hpa = HorizontalPodAutoscaler.from_spec(spec.hpa, flags)
        elif spec.keda is not None:
            self.keda = KedaAutoscaler(spec.keda, flags=flags)
        # What the autoscalers read: metrics-server for CPU, failures of any read.
        self.resolution = cluster.metric_resolution
        self.request_milli = round(pod.cpu * 1000)
        self.failures = spec.metric_failures
        self.fail_rng = substream(rng, _FAILURE_STREAM) if self.failures.probability > 0 else None
        # Spot nodes (`cluster.spot`): capacity type per launch, interruptions, killed requests.
        self.spot = cluster.spot
        self.kill_at: list[float] = []  # per pod: when it was killed with work in hand (or INF)
        self._carry: list[dict[str, np.ndarray]] = []  # rows a later kill could still cut short
        self._retry: list[tuple[float, float, float, bool]] = []  # killed rows to send again
        self.spot_notices = 0
        self.spot_reschedules = 0  # pods replaced because their spot node was interrupted
        self.spot_killed = 0  # requests cut short on a killed pod (failed or retried)
        self.spot_pod_seconds = 0.0  # Autopilot Spot Pods' share of pod_seconds
        if self.spot is not None:
            provider = self.spot.provider(cluster.control_plane)
            sp = self.spot
            self.spot_notice = sp.notice if sp.notice is not None else D.SPOT_NOTICE_S[provider]
            grace = D.AUTOPILOT_SPOT_GRACE_S if self.autopilot else D.SPOT_GRACE_S[provider]
            grace = sp.grace if sp.grace is not None else grace
            self.spot_grace = min(grace, self.spot_notice)
            self.spot_rng = substream(rng, D.SPOT_STREAM)
            self.spot_cap_rng = substream(rng, D.SPOT_CAPACITY_STREAM)
        self.spot_fallbacks = 0  # spot launches that went on-demand: no spot capacity
        self.spot_short_until = -INF  # Karpenter's unavailable-offerings cache
        self._push = False  # the HTTP add-on's push activation (see _push_activation)
        # Set by a subclass: the next arrival calls `_on_arrival` at its time (then it clears).
        self.wake_on_arrival = False
        # Set by a subclass (Knative's activator, per-pod routings only): arrivals go to the held
        # `queue` even with ready pods (`_act_pick` places them), and a ready pod's freed slot
        # takes its head (`_take_held`). Never set for Kubernetes: its held queue is non-empty
        # only while no pod is ready.
        self.activator = False
        # Per-pod FCFS (`_advance_fcfs`): round robin or random (picks that read no state), no
        # queue limit, no spot kill, a constant ingress latency, this class only (subclasses hook
        # the data plane), and no autoscaler input that reads the busy / waiting request-seconds
        # (that path sums them in assignment order, not in event order: equal up to rounding).
        exact = spec.hpa is not None and spec.hpa.metric != "rps"
        if self.keda is not None:
            exact = any(t.measure in ("cpu_utilization", "cpu_cores") for t in self.keda.triggers)
        self.fcfs = (
            type(self) is KubernetesModel
            and self.mode in (ROUND_ROBIN, RANDOM)
            and self.qlimit is None
            and self.spot is None
            and self.ov_const is not None
            and not exact
        )
        self._kernel: Any = None  # the compiled FCFS loop (sim/platforms/kubernetes_kernel.py)
        if self.fcfs and use_kernel(ctx.expected_requests):
            from sim.platforms.kubernetes_kernel import fcfs_span

            self._kernel = fcfs_span
            # Its chunks stay arrays (a chunk's `tolist` cost ~2 ms, ~1,400 a month); the event
            # loop makes lists of the current one when it runs (`_lists`).
            self.uses_lists = False
        self._kbuf = np.empty(0, np.int64)  # (fp: scratch)
        # ... and the endpoints' pod queues (arrival, handler seconds, cold: rows of 2-D arrays,
        # endpoint j's at [qh[j], qh[j] + qn[j])) while the slots are kept; the pod queues
        # themselves are stale meanwhile (`_settle` writes them back).
        self._fc_q: tuple[np.ndarray, ...] | None = None
        self._fc_tail = 0  # ... the largest qh + qn
        self._fc_amin = INF  # ... the earliest arrival waiting
        # ... and, at the end of its last interval: (until, slots in service, sum of end - until)
        self._fc_in: tuple[float, int, float] = (math.nan, 0, 0.0)  # (nan: none)
        self._ep_arr: np.ndarray | None = None  # `ep` for the compiled loop (None: changed)
        # ... and the rows it starts from a queue, kept in arrays to the flush (not lists: ~80 an
        # interval): arrival, start, d, pod, cold; `_qn` of them, before those of `_ra`..
        self._qbuf = _row_arrays(0)
        self._qn = 0

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
        self._spot_trace()
        self._record(0.0)
        self._arm_nodes(D.NODE_AUTOSCALER_PERIOD_S)
        w: float | None
        if self.hpa is not None:
            assert spec.hpa is not None
            p, w = self.hpa.sync_period, spec.hpa.window
            self._periodic(p, self._hpa_sync)
            if spec.hpa.metric == "cpu":
                self._scrapes()
            else:
                self._marks(p, w)
        elif self.keda is not None:
            keda = self.keda
            poll, sync = keda.polling_interval, keda.hpa_sync_period
            self._push = self._push_activation()
            if self._push:
                self._keda_push(poll)
            else:
                self._periodic(poll, self._keda_poll)
            self._periodic(sync, self._keda_sync)
            for info in keda.triggers:
                if info.measure in ("cpu_utilization", "cpu_cores"):
                    self._scrapes()
                    continue
                w = self._trigger_window(info)
                if w is not None:
                    self._marks(poll, w)
                    self._marks(sync, w)

    def _initial(self, n: int) -> None:
        """Time 0: n ready pods (a running service) on enough ready nodes, at least min_nodes."""
        self.replicas = self.n_initial = n
        if not self.autopilot:
            want = max(self.min_nodes, math.ceil(n / self.pods_per_node))
            for _ in range(min(want, self.max_nodes)):
                self._launch(0.0, ready=True)
        for _ in range(n):
            pid = self._new_pod()
            node = self._pod_node(0.0) if self.autopilot else self._fit()
            if node is None and not self.autopilot:
                self.state[pid] = PENDING
                self.pending.append(pid)
                continue
            self._assign(pid, node, 0.0)
            self.created_at[pid] = self.ready_at[pid] = _LONG_AGO
            self._make_ready(pid, 0.0)
        if self.pending:
            self.ctx.decide(
                "nodes",
                len(self.nodes),
                len(self.nodes),
                f"max_nodes {self.max_nodes} reached: {len(self.pending)} of the "
                f"{n} initial pods stay pending",
            )

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
            for pid in self._victims(before - n, now):
                self._remove(pid, now)
        self.replicas = n
        self._schedule(now)
        self._arm_nodes(now)

    def _new_pod(self) -> int:
        pid = len(self.state)
        self.state.append(PENDING)
        self.inflight.append(0)
        self.node_of.append(None)
        self.scheduled_at.append(0.0)
        self.created_at.append(self.env.now)
        self.ready_at.append(INF)
        self.kill_at.append(INF)
        if self.pp:
            self.pod_queue.append(deque())
            self.out.append(0)
        return pid

    def _victims(self, k: int, now: float) -> list[int]:
        """The k pods a ReplicaSet deletes first: getPodsToDelete sorts its active pods with
        controller.ActivePodsWithRanks (kubernetes/kubernetes pkg/controller/controller_utils.go,
        rank from replica_set.go getPodsRankedByRelatedPodsOnSameNode; LogarithmicScaleDown on,
        GA since v1.31):
        1. unassigned (no node) < assigned; 2. phase Pending < Running; 3. not ready < ready;
        5. more active pods of the set on the same node first; 6. both ready: the one ready more
        recently, compared as int(log2(now - readyTime in ns)), ties by UID; 7. restarts (none
        here); 8. newer creation, log2-ranked the same way, ties by UID. Phase Pending covers a
        pod whose image is pulling (ASSUMPTION: all of `pod.startup`); UIDs are random upstream,
        here the pod id (deterministic)."""
        on_node: dict[_Node | None, int] = {}  # active pods per node (terminating ones are not)
        for pid in (*self.starting, *self.ready_order):
            node = self.node_of[pid]
            on_node[node] = on_node.get(node, 0) + 1

        def log_rank(t: float) -> int:
            d = (now - t) * 1e9  # time.Duration: nanoseconds
            return int(math.log2(d)) if d > 0 else -1

        def less(i: int, j: int) -> int:  # ActivePodsWithRanks.Less as a cmp (-1: i first)
            si, sj = self.state[i], self.state[j]
            if (si == PENDING) != (sj == PENDING):  # 1
                return -1 if si == PENDING else 1
            if (si == READY) != (sj == READY):  # 2 and 3
                return -1 if sj == READY else 1
            ri, rj = on_node.get(self.node_of[i], 0), on_node.get(self.node_of[j], 0)
            if si != PENDING and ri != rj:  # 5 (both unassigned: the same "" node)
                return -1 if ri > rj else 1
            for ti, tj, both in (
                (self.ready_at[i], self.ready_at[j], si == READY),  # 6
                (self.created_at[i], self.created_at[j], True),  # 8
            ):
                if both and ti != tj:
                    d = log_rank(ti) - log_rank(tj)
                    return (-1 if i < j else 1) if d == 0 else (-1 if d < 0 else 1)
            return -1 if i < j else 1  # equal: sort.Sort is unstable; the pod id decides

        pods = sorted((*self.pending, *self.starting, *self.ready_order), key=cmp_to_key(less))
        return pods[:k]

    def _remove(self, pid: int, now: float) -> None:
        """Delete pod pid: a pending one just goes, a starting one leaves its node, a ready one
        stops taking work and drains what it holds."""
        st = self.state[pid]
        if st == PENDING:
            self.pending.remove(pid)
            self.state[pid] = GONE
            return
        if st == STARTING:
            self.starting.remove(pid)
            self._gone(pid, now)  # its readiness event finds it gone and does nothing
            return
        self.ready_order.remove(pid)
        self._ready_change(now, -1)
        if self.pp:
            self._ep_remove(pid)  # out of the endpoints: no new requests; its queue finishes
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
        if self.state[pid] == GONE:  # killed with work in hand: its last completions come later
            return INF
        self.draining.discard(pid)
        self.state[pid] = GONE
        node = self.node_of[pid]
        self._bill_pod(pid, min(t, self.horizon))
        if node is None:
            return INF
        node.pods -= 1
        node.last_event = t
        wake = self._arm_nodes(t)
        # an Autopilot Spot Pod's own VM goes with it
        if node.pods == 0 and (node.cordoned or self.autopilot) and not self._closing:
            self._at(t, lambda: self._remove_node(node, "drained"))
            wake = t
        if self.pending and not self._closing and not node.cordoned:  # (no room on a cordoned one)
            self._at(t, lambda: self._schedule(self.env.now))
            wake = t
        return wake

    def _arm_nodes(self, t: float) -> float:
        """The node autoscaler looks every 10 s (ticks at multiples of the period) while
        something could be taken away; a change that could free a node (a pod leaves, a node
        becomes ready, a scale) arms it for the first tick >= t. Returns that tick (or INF)."""
        if self.autopilot or self._closing:
            return INF
        if self._node_tick is not None:
            return self._node_tick
        p = D.NODE_AUTOSCALER_PERIOD_S
        tick = p * math.ceil(t / p - 1e-9)
        if tick >= self.horizon:
            return INF
        self._node_tick = tick
        self._at(tick, self._node_look)
        return tick

    def _node_look(self) -> None:
        now = self.env.now
        self._node_tick = None
        if self._scale_down_nodes(now):
            self._arm_nodes(now + D.NODE_AUTOSCALER_PERIOD_S)

    # -- scheduler and node autoscaler -----------------------------------------------------------
    def _launch(self, now: float, ready: bool) -> _Node:
        spot = self._spot_capacity()
        if spot and self._spot_short(now):  # Karpenter falls back to on-demand at once
            spot = False
            self.spot_fallbacks += 1
        node = _Node(len(self.nodes), now, ready, spot)
        self.nodes.append(node)
        self.alive.append(node)
        sp = self.spot
        if node.spot and sp is not None and sp.interruptions is None:
            rate = sp.interruptions_per_node_hour
            if rate > 0:  # a Poisson process per node: the first notice after an exponential
                t = now + self.spot_rng.exponential(3600.0 / rate)
                if t < self.horizon:
                    self._at(t, lambda: self._spot_notice(node))
        return node

    # -- spot capacity and interruptions ---------------------------------------------------------
    def _spot_capacity(self) -> bool:
        """Is the next node spot? As MixedInstancesPolicy counts the running (not cordoned) nodes:
        the base is on-demand, above it on-demand = ceil((1 - share) x above)."""
        sp = self.spot
        if sp is None:
            return False
        running = [n for n in self.alive if not n.cordoned]
        return sum(1 for x in running if not x.spot) >= sp.on_demand_for(len(running) + 1)

    def _spot_short(self, now: float) -> bool:
        if self.spot is None:
            return False
        short, self.spot_short_until = spot_short(
            self.spot, now, self.spot_short_until, self.spot_cap_rng
        )
        return short

    def spot_exposure_hours(self) -> float:
        """Spot node-hours exposed to interruption: launch to notice, removal or the end."""
        h = self.horizon
        return (
            sum(
                min(n.noticed if n.noticed is not None else (n.end if n.end is not None else h), h)
                - n.launched
                for n in self.nodes
                if n.spot
            )
            / 3600.0
        )

    def _spot_trace(self) -> None:
        """Trace notices: each hits the spot node launched first among those running then."""
        sp = self.spot
        if sp is None or sp.interruptions is None:
            return
        for t in sorted(sp.interruptions):
            if t < self.horizon:
                self._at(t, self._spot_trace_hit)

    def _spot_trace_hit(self) -> None:
        node = next((n for n in self.alive if n.spot and n.noticed is None), None)
        if node is None:
            self.ctx.decide("nodes", len(self.alive), len(self.alive), "spot notice: no spot node")
            return
        self._spot_notice(node)

    def _spot_notice(self, node: _Node) -> None:
        """The interruption notice (AWS 2 min, GCP 30 s). With drain_on_notice the node is
        cordoned and drained at once (`_drain`: its pods leave the endpoints and finish what they
        hold; the ReplicaSet replaces them; the node autoscaler launches room for the new pods);
        pods still holding work after the grace period are killed; the node goes at the end of the
        notice (or as soon as it is empty). Without it, the node just goes at the end."""
        now = self.env.now
        if node.end is not None or node.noticed is not None:
            return
        node.noticed = now
        self.spot_notices += 1
        assert self.spot is not None
        if not node.ready:  # still launching: it goes at once, its room is launched again
            self._remove_node(node, "spot interruption before it was ready")
            self._schedule(now)
            return
        if self.spot.drain_on_notice:
            on_node = [p for p in (*self.starting, *self.ready_order) if self.node_of[p] is node]
            self.spot_reschedules += len(on_node)  # _drain replaces each at once
            self._drain(node, f"spot interruption notice, {self.spot_notice:g}s")
            self._schedule(now)  # an emptied node went at once: room for the replacements
            if node.end is None and self.spot_grace < self.spot_notice:
                self._at(now + self.spot_grace, lambda: self._spot_kill(node, "grace period over"))
        else:
            self.ctx.decide(
                "nodes",
                len(self.alive),
                len(self.alive),
                f"node {node.id} spot interruption notice (not handled: drain_on_notice false)",
            )
        self._at(now + self.spot_notice, lambda: self._spot_kill(node, "spot instance reclaimed"))

    def _spot_kill(self, node: _Node, why: str) -> None:
        """Kill the pods still on the node: a ready one (no drain) is replaced; requests in
        service or queued at a killed pod fail (a 502 at this time) or are sent again
        (`in_flight: retry`, keeping their arrival time). At the end of the notice the node goes."""
        now = self.env.now
        assert self.spot is not None
        if node.end is not None:
            return
        reclaimed = why == "spot instance reclaimed"
        if reclaimed:
            node.cordoned = True
        pods = [
            p
            for p in (*self.starting, *self.ready_order, *self.draining)
            if self.node_of[p] is node
        ]
        retry = self.spot.in_flight == "retry"
        held: list[tuple[float, float, float, bool]] = []
        killed: set[int] = set()
        replaced = 0
        for pid in pods:
            if self.state[pid] in (STARTING, READY):
                self._remove(pid, now)
                self.pending.append(self._new_pod())
                replaced += 1
            if self.state[pid] != DRAINING:
                continue
            self.kill_at[pid] = now
            if self.pp:  # its own queue: those requests die with it
                q = self.pod_queue[pid]
                for a, s, over, cold in q:
                    self.q_arr_sum -= a
                    self.nwait -= 1
                    if self.track:
                        self.out[pid] -= 1
                    if retry:
                        held.append((a, s, over, cold))
                    else:
                        self.dequeued_wait += now - a
                        self._reject(a, over, now, cold)
                self.spot_killed += len(q)
                q.clear()
            killed.add(pid)
            self._gone(pid, now)
        if killed:  # their requests in service stop now: out of the heap, busy up to now
            heap = self.heap
            cut = [(te, p) for te, p in heap if p in killed and te > now]
            self.started_d -= sum(te - now for te, _ in cut)
            if not retry:
                self.n_dropped += len(cut)  # never complete (the completions meter)
            heap[:] = [(te, p) for te, p in heap if p not in killed or te <= now]
            heapify(heap)
        self.spot_reschedules += replaced
        self.flush()  # rows of the killed pods are cut short now (and collected for a retry)
        held.extend(self._retry)
        self._retry.clear()
        if held:
            self._resubmit(held, now)
        if reclaimed:
            self._remove_node(node, why)
        elif pods:
            self.ctx.decide(
                "nodes",
                len(self.alive),
                len(self.alive),
                f"node {node.id}: {len(pods)} pods killed ({why})",
            )
        self._schedule(now)
        self._arm_nodes(now)

    def _resubmit(self, items: list[tuple[float, float, float, bool]], now: float) -> None:
        """The client sends killed requests again at `now` (arrival kept): they join the waiting
        line in arrival order and go to a ready pod as the balancer picks (per-pod routings) or
        to a free slot (ideal_fifo)."""
        q = self.queue
        merged = sorted([*q, *items])
        q.clear()
        q.extend(merged)
        for a, *_ in items:
            self.q_arr_sum += a
        if self.pp:
            self.nwait += len(items)
            if self.ep:
                self._dispatch_held(now)
        else:
            self._serve_queue(now)

    def _bill_pod(self, pid: int, t: float) -> None:
        """Pod-seconds (the Autopilot bill) from its scheduling to t; Spot Pods apart."""
        lo = self.scheduled_at[pid]
        if t > lo:
            self.pod_seconds += t - lo
            node = self.node_of[pid]
            if node is not None and node.spot and self.autopilot:
                self.spot_pod_seconds += t - lo
        self.scheduled_at[pid] = max(lo, t)

    def _bill_pods_to_end(self) -> None:
        """Pods still scheduled at the end are billed (autopilot) to the end of the window."""
        for pid, st in enumerate(self.state):
            if st in (STARTING, READY, DRAINING):
                self._bill_pod(pid, self.horizon)

    def _pod_node(self, now: float) -> _Node | None:
        """Autopilot: no node, or with `cluster.spot` the pod's own VM, spot or on-demand as the
        capacity rule counts the pods (`_spot_capacity`), with its interruption draw."""
        return self._launch(now, ready=True) if self.spot is not None else None

    def _fit(self) -> _Node | None:
        cap = self.pods_per_node
        for node in self.alive:
            if node.ready and not node.cordoned and node.pods < cap:
                return node
        return None

    def _assign(self, pid: int, node: _Node | None, now: float) -> None:
        self.node_of[pid] = node
        self.scheduled_at[pid] = now
        if node is not None:
            node.pods += 1
            node.last_event = now

    def _schedule(self, now: float) -> None:
        """Place pending pods (first-fit), start them; launch nodes for the ones left over."""
        while self.pending:
            if self.autopilot:
                node = self._pod_node(now)
            else:
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
        self.last_scale_up = now
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
        node.last_event = self.env.now  # initialised: Karpenter counts from here
        self._schedule(self.env.now)
        self._arm_nodes(self.env.now)

    # -- node scale-down: Karpenter consolidation or the Cluster Autoscaler ---------------------
    def _scale_down_nodes(self, now: float) -> bool:
        """One look (the data plane is caught up); returns whether to look again in 10 s.
        Nothing while pods wait for room (ASSUMPTION: both autoscalers are busy
        scaling up then) or when min_nodes would be crossed. A non-empty node is drained: it is
        cordoned, its pods are evicted (a ready one finishes the requests it holds, then goes; a
        starting one goes at once) and the ReplicaSet replaces each at once with a new pod that
        is scheduled elsewhere and starts again (`pod.startup`); the node goes when empty."""
        cluster = self.spec.cluster
        alive = self.alive
        busy = sum(1 for n in alive if n.cordoned)
        room = len(alive) - busy - self.min_nodes
        if room <= 0 or self.pending:
            return False  # a scale or a node becoming ready arms the next look
        cap = self.pods_per_node
        nodes = [n for n in alive if n.ready and not n.cordoned]
        # With no pod draining, a node's pods fit on the others iff their free room totals one
        # node's worth; if no node is empty either, nothing can go until something changes.
        idle = not self.draining and self._command_at is None
        if idle and sum(cap - n.pods for n in nodes) < cap and all(n.pods for n in nodes):
            for n in nodes:
                n.unneeded = None
            return False
        active: dict[_Node, list[int]] = {n: [] for n in nodes}
        for pid in (*self.starting, *self.ready_order):
            node = self.node_of[pid]
            if node is not None and node in active:
                active[node].append(pid)
        free = sum(cap - n.pods for n in nodes)

        def fits(n: _Node) -> bool:  # its active pods fit in the free room of the other nodes
            return len(active[n]) <= free - (cap - n.pods)

        if cluster.node_autoscaler == "karpenter":
            budget = math.ceil(D.KARPENTER_BUDGET_NODES * len(alive) - 1e-9) - busy
            if budget <= 0 or self._command_at is not None:
                return True
            due = [n for n in nodes if now >= n.last_event + cluster.consolidate_after - 1e-9]
            empty = [n for n in due if n.pods == 0][: min(budget, room)]
            if empty:
                cmd, why = empty, "empty"
            elif cluster.consolidation_policy == "WhenEmptyOrUnderutilized":
                # Single-node consolidation: the cheapest to disrupt first (fewest pods).
                movable = sorted((n for n in due if fits(n)), key=lambda n: (len(active[n]), n.id))
                if not movable:
                    return True
                cmd, why = movable[:1], "underutilised: its pods fit on the other nodes"
            else:
                return True
            self._command_at = now
            self._at(
                now + D.KARPENTER_VALIDATION_DELAY_S,
                lambda: self._karpenter_execute(cmd, why, now),
            )
            return True
        # Cluster Autoscaler: unneeded = requests below the threshold and movable.
        pod = self.spec.pod
        alloc_cpu = self.node_type.vcpu - cluster.system_reserved.cpu
        alloc_mem = self.node_type.memory_gib * 1024.0 - cluster.system_reserved.memory
        for n in nodes:
            util = max(n.pods * pod.cpu / alloc_cpu, n.pods * pod.memory / alloc_mem)
            if util < cluster.scale_down_utilization_threshold and fits(n):
                if n.unneeded is None:
                    n.unneeded = now
            else:
                n.unneeded = None
        if now < self.last_scale_up + cluster.scale_down_delay_after_add - 1e-9:
            return True
        ripe = [
            n
            for n in nodes
            if n.unneeded is not None and now - n.unneeded >= cluster.scale_down_after - 1e-9
        ]
        empty = [n for n in ripe if n.pods == 0][: min(D.CA_MAX_EMPTY_BULK_DELETE, room)]
        wait = f"unneeded for {cluster.scale_down_after:g}s"
        if empty:
            for n in empty:
                self._remove_node(n, f"empty, {wait}")
        elif ripe and not busy:  # non-empty nodes one at a time
            self._drain(
                ripe[0],
                f"requests below {cluster.scale_down_utilization_threshold:g}"
                f" of allocatable, {wait}",
            )
        return True

    def _karpenter_execute(self, cmd: list[_Node], why: str, since: float) -> None:
        """The command re-validated after the delay: nodes still there, untouched since (a pod
        came or went: invalid), empty ones still empty, movable ones still movable."""
        self._command_at = None
        now = self.env.now
        for n in cmd:
            if n.end is not None or n.cordoned or n.last_event > since + 1e-9:
                return
        if self.pending or len(self.alive) - len(cmd) < self.min_nodes:
            return
        for n in cmd:
            if n.pods == 0:
                self._remove_node(n, f"Karpenter consolidation: {why}")
            else:
                self._drain(n, f"Karpenter consolidation: {why}")
        self._schedule(now)

    def _drain(self, node: _Node, why: str) -> None:
        now = self.env.now
        node.cordoned = True
        pods = [p for p in (*self.starting, *self.ready_order) if self.node_of[p] is node]
        self.ctx.decide(
            "nodes",
            len(self.alive),
            len(self.alive),
            f"node {node.id} cordoned and drained ({why}): {len(pods)} pods evicted, replaced",
        )
        for pid in pods:
            self._remove(pid, now)
            self.pending.append(self._new_pod())
        self._schedule(now)
        if node.pods == 0:
            self._remove_node(node, "drained")

    def _remove_node(self, node: _Node, why: str) -> None:
        if node.end is not None:
            return
        alive = len(self.alive)
        node.end = self.env.now
        self.alive.remove(node)
        self.ctx.decide("nodes", alive, alive - 1, f"node {node.id} removed: {why}")

    # -- pods becoming ready ---------------------------------------------------------------------
    def _pod_ready(self, pid: int) -> None:
        if self.state[pid] != STARTING:
            return
        self.starting.remove(pid)
        self.ready_at[pid] = self.env.now
        self._make_ready(pid, self.env.now)

    def _make_ready(self, pid: int, now: float) -> None:
        self.state[pid] = READY
        self.ready_order.append(pid)
        self._ready_change(now, +1)
        if self.pp:
            self._ep_add(pid)
            self._dispatch_held(now)
            return
        self.buckets[0].add(pid)
        self.kmin = 0
        self._serve_queue(now)

    def _serve_queue(self, now: float) -> None:
        """ideal_fifo: free slots take the head of the one queue."""
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

    # -- per-pod routing --------------------------------------------------------------------------
    def _ep_add(self, pid: int) -> None:
        """A pod joins the endpoints (kept in pod-id order; round robin keeps its next pick)."""
        self._settle()  # (the FCFS slots are per endpoint)
        self._ep_arr = None
        j = bisect.bisect_left(self.ep, pid)
        self.ep.insert(j, pid)
        if j < self.rr_next:
            self.rr_next += 1

    def _ep_remove(self, pid: int) -> None:
        self._settle()
        self._ep_arr = None
        j = self.ep.index(pid)
        del self.ep[j]
        if j < self.rr_next:
            self.rr_next -= 1
        if self.rr_next >= len(self.ep):
            self.rr_next = 0

    def _pick(self) -> int:
        """The balancer's choice among the ready endpoints (self.ep non-empty); the hot loop
        inlines the same rules (docs/model.md "Routing")."""
        ep, mode = self.ep, self.mode
        n = len(ep)
        if mode == RANDOM:
            return ep[int(self.route_u.next() * n)]
        if mode == ROUND_ROBIN:
            pid = ep[self.rr_next]
            self.rr_next = self.rr_next + 1 if self.rr_next + 1 < n else 0
            return pid
        if mode == LEAST_REQUEST:
            p1 = ep[int(self.route_u.next() * n)]
            p2 = ep[int(self.route_u.next() * n)]
            return p2 if self.out[p2] < self.out[p1] else p1
        return min(ep, key=self.out.__getitem__)  # least outstanding, lowest pod id on ties

    def _dispatch_held(self, now: float) -> None:
        """Forward the requests held while no pod was ready, in arrival order, each to the pod
        the balancer picks (the interceptor forwards to the Service: kube-proxy's random pick)."""
        q = self.queue
        if q:
            self._settle()
        while q:
            a, s, over, cold = q.popleft()
            self.q_arr_sum -= a
            pid = self._pick()
            if self.track:
                self.out[pid] += 1
            if self.inflight[pid] < self.conc:
                self.dequeued_wait += now - a
                self.nwait -= 1
                self.inflight[pid] += 1
                self._start(pid, a, s, over, cold, now)
                continue
            pq = self.pod_queue[pid]
            if self.qlimit is not None and len(pq) >= self.qlimit:  # the pod's backlog is full
                if self.track:
                    self.out[pid] -= 1
                self.dequeued_wait += now - a
                self.nwait -= 1
                self._reject(a, over, now, cold)
                continue
            if pq and pq[-1][0] > a:  # a spot retry (earlier arrival): its place by arrival,
                bisect.insort(pq, (a, s, over, cold))  # so deadlines stay in queue order
            else:
                pq.append((a, s, over, cold))
            self.q_arr_sum += a
        if not self.nwait:
            self.q_arr_sum = 0.0

    def _act_pick(self) -> int:
        """A ready pod with a free slot (-1: none); only a subclass with an activator asks."""
        return -1

    def _take_held(self, pid: int, now: float) -> bool:
        """Ready pod pid freed a slot with its own queue empty: the held queue's head (past
        its deadline: timed out first) starts on it, the slot stays taken. False: none left."""
        q = self.queue
        if q[0][0] + self.hold_timeout <= now:
            self._purge_queue(q, now, -1, self.hold_timeout)
            if not q:
                return False
        a, s, over, cold = q.popleft()
        self.q_arr_sum -= a
        self.dequeued_wait += now - a
        self.nwait -= 1
        if not self.nwait:
            self.q_arr_sum = 0.0
        if self.track:
            self.out[pid] += 1
        self._start(pid, a, s, over, cold, now)
        return True

    def _start(self, pid: int, a: float, s: float, over: float, cold: bool, now: float) -> None:
        self._settle()
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
    def _record(self, now: float) -> tuple[float, float, float, float, float, float]:
        """Cumulative meters now (the data plane must be caught up and purged to now)."""
        if self.history_t and self.history_t[-1] >= now - _EPS:
            return self.history[-1]
        if self._fc_slots is None:
            ends = [e - now for e, _ in self.heap]  # a list: faster, the same sum
            n_in, rest = len(ends), sum(ends)
        else:  # per-pod FCFS (valid at now): summed in pod order (nothing it serves reads busy)
            n_in, rest = self._fc_rest(now)
        busy = self.started_d - rest
        nwait = self.waiting()
        queue = self.dequeued_wait + nwait * now - self.q_arr_sum
        ready = self.ready_area + self.nready * (now - self.ready_t)
        # Completions at the pods (what an app-side request counter counts): every arrival
        # that was not dropped and is neither waiting nor in service.
        done = self.n_arrivals - self.n_dropped - nwait - n_in
        row = (now, float(self.n_arrivals), busy, queue, ready, float(done))
        self.history.append(row)
        self.history_t.append(now)
        if len(self.history) > 4096:  # keep what the longest window still needs
            cut = bisect.bisect_left(self.history_t, now - self.max_window - 60.0)
            if cut > 0:
                del self.history[:cut]
                del self.history_t[:cut]
        return row

    def _window(self, now: float, window: float) -> tuple[float, float, float, float, float, float]:
        """(seconds, arrivals, busy request-s, waiting request-s, ready pod-s, completions) in the
        window."""
        cur = self._record(now)
        j = bisect.bisect_right(self.history_t, now - window + 1e-6) - 1
        o = self.history[max(j, 0)]
        return (  # spelt out: a generator here ran at every metric read
            cur[0] - o[0],
            cur[1] - o[1],
            cur[2] - o[2],
            cur[3] - o[3],
            cur[4] - o[4],
            cur[5] - o[5],
        )

    def waiting(self) -> int:
        return self.nwait if self.pp else len(self.queue)

    def _pods_metric(self, name: str, now: float, window: float) -> float | None:
        """A per-ready-pod metric averaged over the window (None when no pod was ready)."""
        _, arrivals, busy, waiting, ready, _ = self._window(now, window)
        cores = busy * self.cpu_per_request
        return pods_metric(name, arrivals, cores, busy + waiting, ready, self.spec.pod.cpu)

    def _trigger_window(self, info: TriggerInfo) -> float | None:
        if info.measure in ("request_rate", "completion_rate"):
            return info.window
        return None

    def _trigger_value(self, info: TriggerInfo, now: float) -> float | PodMetrics | None:
        if self._read_fails(now):
            return None
        m = info.measure
        if m in ("request_rate", "completion_rate"):
            assert info.window is not None
            w = self._window(now, info.window)
            span, count = w[0], w[1] if m == "request_rate" else w[5]  # (arrivals, completions)
            return count / span if span > 0 else 0.0
        if m == "concurrency" or m == "backlog_inflight":
            return float(self._in_service() + self.waiting())
        if m == "backlog":
            return float(self.waiting())
        return self._cpu_metrics(now)  # cpu_utilization / cpu_cores: the HPA's Resource metric

    # -- what metrics-server serves, and failed reads ------------------------------------------
    def _read_fails(self, now: float) -> bool:
        """One metric read fails: inside an outage, or with `metric_failures.probability` (its
        own random stream, drawn once per read, so runs stay reproducible)."""
        f = self.failures
        if f.outages and f.fails_at(now):
            return True
        return self.fail_rng is not None and bool(self.fail_rng.random() < f.probability)

    def _scrapes(self) -> None:
        """metrics-server scrapes every kubelet each `metric_resolution` R; meter readings at each
        scrape. ASSUMPTION: the scrapes fall half a resolution after the HPA's syncs (its clock
        is not synchronised with the controller's: on average a sample is R / 2 old)."""
        if self._scraping:
            return
        self._scraping = True
        r = self.resolution
        self.max_window = max(self.max_window, 2.0 * r)

        def loop() -> Any:
            t = r / 2.0
            while True:
                yield self.env.timeout(t - self.env.now)
                self._catch_up(self.env.now)
                self._record(self.env.now)
                t += r

        self.env.process(loop())

    def _row_at(self, t: float) -> tuple[float, float, float, float, float, float]:
        j = bisect.bisect_right(self.history_t, t + 1e-6) - 1
        return self.history[max(j, 0)]

    def _cpu_metrics(self, now: float) -> PodMetrics:
        """The pods as the HPA sees them for CPU (`metrics_server_view`), from this model's
        meters at the latest scrape."""
        r = self.resolution
        s = scrape_time(now, r)
        if abs(s - now) < 1e-6:
            self._record(now)  # a scrape at this very time: its reading, even if not yet taken
        core_s = ready_s = 0.0
        if s >= 0:
            cur, old = self._row_at(s), self._row_at(s - r)
            core_s = (cur[2] - old[2]) * self.cpu_per_request
            ready_s = cur[4] - old[4] + self.n_initial * max(0.0, r - s)  # running before 0
        ready = []
        for pid in self.ready_order:
            c = self.ready_at[pid]
            ready.append((c, _LONG_AGO if c == _LONG_AGO else self.scheduled_at[pid]))
        starting = [self.scheduled_at[pid] for pid in self.starting]
        return metrics_server_view(
            s, r, core_s, ready_s, len(self.pending), starting, ready, self.request_milli
        )

    # -- autoscaler loops ------------------------------------------------------------------------
    def _hpa_sync(self, now: float) -> None:
        self._catch_up(now)
        hpa, spec = self.hpa, self.spec.hpa
        assert hpa is not None and spec is not None
        value: float | PodMetrics | None = None
        if not self._read_fails(now):
            if spec.metric == "cpu":
                value = self._cpu_metrics(now)
            else:
                value = self._pods_metric(spec.metric, now, spec.window)
        d = hpa.recommend(now, self.replicas, self.nready, value)
        if d.desired != self.replicas:
            self._scale_to(d.desired, "hpa", _reason(d.rule, d.reason, d.metric_value, d.target))

    def _keda_poll(self, now: float) -> None:
        self._catch_up(now)
        keda = self.keda
        assert keda is not None
        if self._push and keda.scaler.quiet_poll(
            now, self._in_service() + self.waiting() > 0, self.replicas
        ):
            return  # the tick changes no replica (its one effect, lastActiveTime, is applied)
        values = [self._trigger_value(info, now) for info in keda.triggers]
        d = keda.on_poll(now, values, self.replicas, self.nready)
        if d.desired != self.replicas:
            shown = ", ".join(
                f"{i.name}={_fmt(v)} (activation > {_fmt(i.activation)})"
                for i, v in zip(keda.triggers, values, strict=True)
                if i.activation is not None and not isinstance(v, PodMetrics)
            )
            self._scale_to(d.desired, "keda", f"{d.rule}: {d.reason}; {shown}")

    # -- the HTTP add-on's push activation ------------------------------------------------------
    # The add-on's scaler is an external-push scaler: its interceptors count the requests they hold
    # or forward, the scaler reads the counts every 0.5 s (KEDA_HTTP_QUEUE_TICK_DURATION) and
    # StreamIsActive sends IsActive to KEDA every KEDA_HTTP_SCALER_STREAM_INTERVAL_MS (200 ms),
    # which KEDA acts on at once (kedacore/http-add-on scaler/handlers.go @027a622,
    # scaler/queue_pinger.go; kedacore/keda pkg/scaling/scale_handler.go startPushScalers ->
    # RequestScale). Simulated as the 0.5 s poll of D.HTTP_ACTIVATION_POLL_S, run only at the ticks
    # where it can act: with no replica and nothing held a tick is a no-op until a request reaches
    # the interceptor, so the tick that reads it is an event; a tick that keeps the replicas only
    # moves lastActiveTime (KedaScaler.quiet_poll). Decisions equal those of a poll at every tick
    # (tests/test_keda_push.py).
    def _push_activation(self) -> bool:
        """The HTTPScaledObject's own ScaledObject (concurrency triggers at the add-on's 0.5 s
        tick) with reads that never fail: the ticks can be skipped as described above."""
        keda = self.keda
        assert keda is not None
        return (
            keda.polling_interval == D.HTTP_ACTIVATION_POLL_S
            and all(t.type == "http" and t.measure == "concurrency" for t in keda.triggers)
            and self.fail_rng is None
            and not self.failures.outages
        )

    def _next_arrival(self) -> float | None:
        """The first request not yet processed among those offered (None: none offered yet)."""
        if self._i < len(self._arr):
            return float(self._arr[self._i])
        return float(self._chunks[0].arrival[0]) if self._chunks else None

    def _keda_push(self, period: float) -> None:
        def loop() -> Any:
            k = 1  # tick k at k * period (exact: period is 0.5 s), as `_periodic`'s sum
            while True:
                t = k * period
                if t > self.env.now:
                    yield self.env.timeout(t - self.env.now)
                self._keda_poll(self.env.now)
                k += 1
                if self.replicas == 0:  # nothing held (else this tick activated)
                    a = self._next_arrival()
                    if a is not None:
                        # Sleep to the last tick at or before the next arrival (a no-op: a tick
                        # reads the requests before it); the tick that reads it is then made
                        # there, a tick ahead, so it orders among same-time events (timeline
                        # samples, HPA syncs) as the tick of a 0.5 s loop does.
                        k = max(k, math.floor(a / period))
                else:
                    m = self._quiet_ticks(k, period)
                    if m > k:
                        k = m
                        # The tick left to the loop is made a tick ahead, as above: a bare wake.
                        if (k - 1) * period > self.env.now:
                            yield self.env.timeout((k - 1) * period - self.env.now)

        self.env.process(loop())

    def _quiet_ticks(self, k: int, period: float) -> int:
        """Run the ticks k, k + 1, ... here and now while each is quiet (KedaScaler.quiet_poll:
        it keeps the replicas, only lastActiveTime moves) and falls before every scheduled event
        but the driver's wake and within the offered arrivals; return the first tick left to the
        loop. Equal to a wake at each: no other event runs before the next scheduled one, the
        data plane schedules none while no pod drains (`_gone`) and reads no clock without spot
        kills, so each tick catches the data plane up to its time and reads the state its own
        wake would, and a quiet tick leaves nothing the next one would see otherwise (the driver's
        wake, then behind the data plane, advances nothing). With nothing waiting and no arrival
        or completion before a tick, the data plane has nothing to do there: the tick reads the
        requests in service. Replicas running, these ticks are the ~5M events of a month behind
        the add-on."""
        if self.draining or self.spot is not None:
            return k
        self._settle()  # (it reads the heap; so after each advance below)
        scaler = self.keda.scaler  # type: ignore[union-attr]
        env, heap, wake, fed = self.env, self.heap, self.driver_wake, self.fed_until
        queue = env._queue  # SimPy's (time, priority, eid, event)
        nxt = min((e[0] for e in queue if e[3] is not wake), default=INF)
        while True:
            t = k * period
            if t >= nxt or t > fed or self.draining:
                return k
            if not self.waiting():
                a = self._next_arrival()
                if (a is None or a >= t) and (not heap or heap[0][0] >= t):
                    if not scaler.quiet_poll(t, bool(heap), self.replicas):
                        return k
                    k += 1
                    continue
            self.advance(t)
            self._settle()
            self._purge(t)
            if not scaler.quiet_poll(t, len(heap) + self.waiting() > 0, self.replicas):
                return k
            k += 1

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

    def _on_arrival(self) -> None:
        """A request arrived while `wake_on_arrival` was set (a subclass hook)."""

    # =============================================================================================
    # data plane
    # =============================================================================================
    def _purge(self, now: float) -> None:
        """Requests still waiting at their deadline (<= now) leave their queue timed out."""
        if self.hold_timeout == INF and self.queue_timeout == INF:  # (<= the client's timeout)
            return
        if not self.pp:
            self._purge_queue(self.queue, now)
            return
        if self.queue:
            self._purge_queue(self.queue, now, -1, self.hold_timeout)
        elif not self.nwait:
            self.q_arr_sum = 0.0  # (what _purge_queue ends with: this runs at every control event)
        timeout = self.timeout
        if self.nwait and timeout != INF:
            if self._fc_q is not None:  # (the pod queues are arrays: read them only if one is due)
                if self._fc_amin + timeout > now:
                    return
                self._settle()
            pod_queue = self.pod_queue
            for pid in (*self.ep, *self.draining):
                q = pod_queue[pid]
                # The head's deadline first: a queue with nothing due is left alone (this runs at
                # every control event; _purge_queue would change nothing on a non-empty queue).
                if q and q[0][0] + timeout <= now:
                    self._purge_queue(q, now, pid)

    def _purge_queue(self, q: deque, now: float, pid: int = -1, to: float = -1.0) -> None:
        """Requests at the head of q whose deadline (arrival + to; default the client's timeout)
        is <= now leave it timed out (FIFO with one constant timeout: deadlines are in order)."""
        pp = self.pp
        if to < 0:
            to = self.timeout if pp else self.queue_timeout
        outcome = TIMED_OUT if pp else self.queue_outcome
        log = self.log
        while q and q[0][0] + to <= now:
            a, _s, over, cold = q.popleft()
            self.q_arr_sum -= a
            self.dequeued_wait += to
            self.n_dropped += 1
            if pp:
                self.nwait -= 1
                if pid >= 0 and self.track:
                    self.out[pid] -= 1
            end = a + to
            log.arrival.append(a)
            log.start.append(end)
            log.end.append(end)
            log.wait.append(to)
            log.startup.append(0.0)
            log.service.append(0.0)
            log.overhead.append(over)
            log.cold.append(cold)
            log.outcome.append(outcome)
            log.instance.append(-1)
        if not self.waiting():
            self.q_arr_sum = 0.0

    def advance(self, until: float) -> None:  # the hot loop, kept in one piece
        heap, i = self.heap, self._i
        if (
            i < len(self._arr)
            and self._arr[i] >= until
            and until < self.horizon
            and (
                (not heap or heap[0][0] >= until)
                if self._fc_slots is None
                else self._fc_next >= until  # (per-pod FCFS: no completion is an event)
            )
        ):
            if until > self._fc_t:
                self._fc_t = until
            return  # nothing happens before `until` (frequent with short control periods)
        if self.pp:
            if not (self.fcfs and self._advance_fcfs(until)):
                self._settle()
                self._advance_pp(until)
            return
        arr, svc = self._arr, self._svc
        i, n = self._i, len(arr)
        heap, queue = self.heap, self.queue
        inflight, state, buckets = self.inflight, self.state, self.buckets
        conc, kmin = self.conc, self.kmin
        scale, timeout, qlimit = self.scale, self.queue_timeout, self.qlimit  # timeout: the queue's
        ov_const, ov_draw = self.ov_const, self.ov_draw
        r_a, r_s, r_d = self._ra.append, self._rs.append, self._rd.append
        r_p, r_c, r_o = self._rp.append, self._rc.append, self._ro.append
        f_p, f_o = self._fp.append, self._fo.append
        started_d = 0.0
        narr = 0
        i0 = i
        cold_now = self.nready == 0  # the ready set changes only at control events
        tell = self.wake_on_arrival  # set only by control events
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
            if tell:  # the control plane asked to hear of the next arrival (Knative)
                tell = self.wake_on_arrival = False
                self._at(ta, self._on_arrival)
                until = ta
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
        if self._buffered() >= 65536 or until >= self.horizon:
            self.flush()

    def _advance_pp(self, until: float) -> None:
        """Per-pod queues: each arrival is assigned to a pod on arrival by the balancer's rule
        (inlined `_pick`) and waits in that pod's FIFO; a freed slot takes its own pod's head.
        The queue meters (q_arr_sum, dequeued_wait, nwait) are locals here, written back around
        every method that reads or changes them (same operations in the same order)."""
        self._lists()
        arr, svc = self._arr, self._svc
        i, n = self._i, len(arr)
        heap, hold, pqs = self.heap, self.queue, self.pod_queue
        inflight, out, state = self.inflight, self.out, self.state
        ep, nep, mode, track = self.ep, len(self.ep), self.mode, self.track
        rr_next = self.rr_next
        conc, scale, timeout, qlimit = self.conc, self.scale, self.timeout, self.qlimit
        timed = timeout != INF
        ov_const, ov_draw = self.ov_const, self.ov_draw
        drawn = ov_const is None
        ubuf, urefill = self.route_u.buf, self.route_u.refill
        upop = ubuf.pop
        r_a, r_s, r_d = self._ra.append, self._rs.append, self._rd.append
        r_p, r_c, r_o = self._rp.append, self._rc.append, self._ro.append
        f_p, f_o = self._fp.append, self._fo.append
        qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
        started_d = 0.0
        cold_now = nep == 0  # the ready set changes only at control events
        tell = self.wake_on_arrival  # set only by control events
        proxy = self.activator  # set only by control events
        rr = mode == ROUND_ROBIN and not proxy
        below = math.nextafter(until, -INF)  # te >= until <=> te > below
        narr = 0
        i0 = i
        while True:
            if i >= n:
                narr += i - i0
                if self._next_chunk():
                    self._lists()
                    arr, svc, i, n = self._arr, self._svc, 0, len(self._arr)
                    i0 = 0
                    continue
                i0 = i
                ta = INF
            else:
                ta = arr[i]
            # Completions up to the next arrival (first on a tie) and before `until`.
            lim = ta if ta < until else below
            while heap and heap[0][0] <= lim:
                te, pid = heappop(heap)
                if track:
                    out[pid] -= 1
                pq = pqs[pid]
                if pq:
                    if timed and pq[0][0] + timeout <= te:
                        self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
                        self._purge_queue(pq, te, pid)
                        qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
                    if pq:  # the freed slot takes the head of the pod's own queue
                        a, s, over, cold = pq.popleft()
                        qsum -= a
                        dwait += te - a
                        nwait -= 1
                        d = s * scale
                        heappush(heap, (te + d, pid))
                        started_d += d
                        r_a(a)
                        r_s(te)
                        r_d(d)
                        r_p(pid)
                        r_c(cold)
                        if drawn:
                            r_o(over)
                        continue
                if hold and state[pid] == READY:
                    self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
                    took = self._take_held(pid, te)
                    qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
                    if took:
                        continue  # the activator's head took the freed slot (Knative)
                k = inflight[pid] - 1
                inflight[pid] = k
                if not k and state[pid] == DRAINING:
                    wake = self._gone(pid, te)
                    if wake < until:
                        until = wake
                        below = math.nextafter(until, -INF)
                        lim = ta if ta < until else below
            if ta >= until:
                break
            s = svc[i]
            i += 1
            over = ov_draw.next() if ov_const is None else ov_const
            if tell:  # the control plane asked to hear of the next arrival (Knative)
                tell = self.wake_on_arrival = False
                self._at(ta, self._on_arrival)
                until = ta
                below = math.nextafter(until, -INF)
            if rr and nep:  # round robin, the default behind an ALB: its own short path
                pid = ep[rr_next]
                rr_next += 1
                if rr_next == nep:
                    rr_next = 0
            elif nep and (not proxy or (not hold and (pid := self._act_pick()) >= 0)):
                if proxy:
                    pass  # the activator's pick: a pod with a free slot
                elif mode == RANDOM:
                    if not ubuf:
                        urefill()
                    pid = ep[int(upop() * nep)]
                elif mode == LEAST_REQUEST:
                    if len(ubuf) < 2:
                        urefill()
                    pid = ep[int(upop() * nep)]
                    p2 = ep[int(upop() * nep)]
                    if timed and nwait:  # past their deadline: not counted
                        for p in (pid, p2):
                            q = pqs[p]
                            if q and q[0][0] + timeout <= ta:
                                self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
                                self._purge_queue(q, ta, p)
                                qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
                    if out[p2] < out[pid]:
                        pid = p2
                else:
                    if timed and nwait:
                        for p in ep:
                            q = pqs[p]
                            if q and q[0][0] + timeout <= ta:
                                self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
                                self._purge_queue(q, ta, p)
                                qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
                    pid = min(ep, key=out.__getitem__)
            else:
                pid = -1
            if pid >= 0:
                if track:
                    out[pid] += 1
                k = inflight[pid]
                if k < conc:
                    inflight[pid] = k + 1
                    d = s * scale
                    heappush(heap, (ta + d, pid))
                    started_d += d
                    f_p(pid)  # started on arrival: columns filled at flush
                    if drawn:
                        f_o(over)
                    continue
                q = pqs[pid]
                if qlimit is not None and len(q) >= qlimit:
                    if q and q[0][0] + timeout <= ta:
                        self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
                        self._purge_queue(q, ta, pid)
                        qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
                    if len(q) >= qlimit:  # the pod's backlog is full: 503
                        if track:
                            out[pid] -= 1
                        f_p(-1)
                        self._reject(ta, over)
                        continue
            else:
                q = hold
                if qlimit is not None and len(q) >= qlimit:
                    self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
                    self._purge_queue(q, ta, -1, self.hold_timeout)
                    qsum, dwait, nwait = self.q_arr_sum, self.dequeued_wait, self.nwait
                    if len(q) >= qlimit:
                        f_p(-1)
                        self._reject(ta, over)
                        continue
                if cold_now:
                    self.cold_in_step += 1
            f_p(-1)
            q.append((ta, s, over, cold_now))
            qsum += ta
            nwait += 1
        narr += i - i0
        self.q_arr_sum, self.dequeued_wait, self.nwait = qsum, dwait, nwait
        self.rr_next = rr_next
        self._i = i
        self.started_d += started_d
        self.n_arrivals += narr
        self.arrivals_in_step += narr
        if self._buffered() >= 65536 or until >= self.horizon:
            self.flush()

    def _advance_fcfs(self, until: float) -> bool:
        """`_advance_pp` for round robin and random (picks that read no state), computed per pod
        first-come first-served (docs/model.md 19.3): a pod's requests start in arrival order, so
        a request's start is known when it is assigned (its pod's earliest free slot, or its
        arrival) and no completion is an event. Each endpoint's slot ends are one small heap
        (`_fc_slots`: lists, or a 2-D array for the compiled loop), kept from one interval to the
        next while nothing reads the event loop's heap and `inflight` (`_settle` writes them when
        something does: in service = ends >= the last `until`); the pod queues are kept current
        (the requests whose start would be >= until wait there). The same rows and decisions as
        `_advance_pp` (tests/test_kubernetes_fcfs.py); the queued rows are put in its start order
        at flush (`_sort_segs`). False (nothing changed): this call needs the event loop (a
        queued request would time out, a draining pod, held requests, the arrivals end before
        `until` with no next chunk offered, the last call); with a timeout the slots are worked
        on in a copy for that."""
        arr, i, ep = self._arr, self._i, self.ep
        nep = len(ep)
        if not nep or self.queue or self.draining or self.wake_on_arrival or until >= self.horizon:
            return False
        # The chunk ends before until: with the head of the next (offered: the driver feeds the
        # chunk that holds until before advancing into it), in one pass.
        nxt = None
        if i >= len(arr) or arr[-1] < until:
            if not self._chunks or self._chunks[0].arrival[-1] < until:
                return False
            nxt = self._chunks[0]
        conc, timeout = self.conc, self.timeout
        pqs = self.pod_queue
        slots = self._fc_slots
        if slots is None:  # from the event loop's state
            pos = {p: j for j, p in enumerate(ep)}
            fresh: list[list[float]] = [[] for _ in range(nep)]
            for e, p in self.heap:
                j = pos.get(p, -1)
                if j < 0:
                    return False  # work on a pod that is not an endpoint
                fresh[j].append(e)
            for j, p in enumerate(ep):
                sl = fresh[j]
                if len(sl) < conc:
                    if pqs[p]:
                        return False  # a queue at a pod with a free slot: not the event loop's
                    sl.extend([-INF] * (conc - len(sl)))  # (an end < until: the same, free)
                heapify(sl)
            slots = fresh if self._kernel is None else np.array(fresh, dtype=np.float64)
        elif until <= self._fc_t:
            return True  # (already there)
        elif timeout != INF:  # a False below gives the event loop these (`_settle`)
            slots = slots.copy() if self._kernel is not None else [sl.copy() for sl in slots]
        src: tuple[Any, Any, int, int]  # this interval's arrivals: (times, handler s, lo, hi)
        if nxt is None:  # arrivals in [now, until): arr[i:k]
            if self._kernel is None:
                k = bisect.bisect_left(arr, until, i)
                src = (arr, self._svc, i, k)
            else:
                c = self._chunk
                assert c is not None
                k = i + int(c.arrival[i:].searchsorted(until))  # (bisect_left from i)
                src = (c.arrival, c.service, i, k)
        else:
            k = int(np.searchsorted(nxt.arrival, until))  # (bisect_left) of the next chunk
            a2, s2 = nxt.arrival[:k], nxt.service[:k]
            if self._kernel is None:
                src = (arr[i:] + a2.tolist(), self._svc[i:] + s2.tolist(), 0, len(arr) - i + k)
            else:
                c = self._chunk
                a1, s1 = (c.arrival[i:], c.service[i:]) if c is not None else (a2[:0], s2[:0])
                src = (np.concatenate((a1, a2)), np.concatenate((s1, s2)), 0, a1.size + k)
        n = src[3] - src[2]
        draws: list[float] = []
        if self.mode == RANDOM and n:  # the draws the event loop would pop, in its order
            ubuf = self.route_u.buf
            while len(ubuf) < n:
                self.route_u.refill()  # (under what is left: the same sequence)
            draws = ubuf[-n:][::-1]
            del ubuf[-n:]
        if self._kernel is None:
            got = self._fcfs_python(slots, until, src, draws)
            if got is not None:
                got = self._fcfs_commit(slots, *got)
        else:
            got = self._fcfs_compiled(slots, until, src, draws)
        if got is None:  # a request would time out in a queue: the event loop logs it
            self.route_u.buf.extend(draws[::-1])  # (the event loop draws them again)
            return False
        fp, rows = got
        n1 = n if nxt is None else len(arr) - i  # fp entries of the current chunk
        self._fp_add(fp[:n1])
        if nxt is not None:  # the next chunk current, as the event loop would make it
            self._next_chunk()
            self._fp_add(fp[n1:])
        k0 = self._qn + len(self._ra)  # (rows of the arrays come first)
        if isinstance(rows, int):  # compiled: `rows` rows in `_qbuf` from `_qn` (`_ra` empty)
            self._qn += rows
        elif rows[0]:
            qa, qs, qd, qp, qc = rows
            qc.extend([False] * (len(qa) - len(qc)))  # arrivals with a ready pod: not cold
            self._ra.extend(qa)
            self._rs.extend(qs)
            self._rd.extend(qd)
            self._rp.extend(qp)
            self._rc.extend(qc)
        k1 = self._qn + len(self._ra)
        if k1 > k0:
            segs = self._sort_segs
            if segs and segs[-1][1] == k0:
                segs[-1][1] = k1
            else:
                segs.append([k0, k1])
        self._fc_slots, self._fc_t = slots, until
        if self.mode == ROUND_ROBIN:
            self.rr_next = (self.rr_next + n) % nep
        self._i = k
        self.n_arrivals += n
        self.arrivals_in_step += n
        if self._buffered() >= 65536:
            self.flush()
        return True

    def _fcfs_commit(
        self,
        slots: list[list[float]],
        fp: list[int],
        rows: tuple[list[float], list[float], list[float], list[int]],
        took: list[int],
        new: list[list[tuple[float, float, float, bool]]],
        started_d: float,
        dwait: float,
    ) -> tuple[list[int], tuple[Any, ...]]:
        """`_fcfs_python`'s interval committed: the pod queues at until and the meters; (fp, the
        rows that started from a queue with the cold flags of those that were waiting)."""
        ep, pqs = self.ep, self.pod_queue
        nwait, qsum = self.nwait, self.q_arr_sum
        qc: list[bool] = []
        nxt = INF
        heads = [sl[0] for sl in slots]
        for j, p in enumerate(ep):
            t, w, pq = took[j], new[j], pqs[p]
            if t or w:
                for _ in range(t):
                    r = pq.popleft()
                    qsum -= r[0]
                    qc.append(r[3])
                nwait -= t
                for r in w:
                    pq.append(r)
                    qsum += r[0]
                nwait += len(w)
            if pq and heads[j] < nxt:
                nxt = heads[j]
        self._fc_next = nxt
        self.nwait = nwait
        self.q_arr_sum = qsum if nwait else 0.0
        self.dequeued_wait += dwait
        self.started_d += started_d
        return fp, (*rows, qc)

    def _fcfs_python(
        self, slots: Any, until: float, src: tuple[Any, Any, int, int], draws: list[float]
    ) -> Any:
        """The requests of an FCFS interval (those waiting now, then arrivals src[lo:hi] to their
        picks: round robin from rr_next, or the routing draws) on `slots`: (pod ids started on
        arrival or -1 per arrival; arrival, start, d, pod of the rows started from a queue, in
        assignment order; how many of each endpoint's queue started; the arrivals left waiting
        per endpoint; busy and waiting seconds), or None (a request would time out)."""
        ep, pqs = self.ep, self.pod_queue
        nep, scale, timeout = len(ep), self.scale, self.timeout
        arr, svc, lo, hi = src
        qa: list[float] = []
        qs: list[float] = []
        qd: list[float] = []
        qp: list[int] = []
        took = [0] * nep
        new: list[list[tuple[float, float, float, bool]]] = [[] for _ in range(nep)]
        started_d = dwait = 0.0
        if self.nwait:
            for j, p in enumerate(ep):
                sl = slots[j]
                for a, s, _over, _cold in pqs[p]:  # those waiting now, in order
                    f = sl[0]
                    if f >= until:
                        break
                    if a + timeout <= f:
                        return None
                    d = s * scale
                    heapreplace(sl, f + d)
                    took[j] += 1
                    qa.append(a)
                    qs.append(f)
                    qd.append(d)
                    qp.append(p)
                    started_d += d
                    dwait += f - a
        fp: list[int] = []
        f_p, q_a, q_s, q_d, q_p = fp.append, qa.append, qs.append, qd.append, qp.append
        over = self.ov_const
        assert over is not None  # (self.fcfs)
        rr = self.rr_next
        pods = [(slots[j], ep[j], new[j]) for j in range(nep)]
        picks: Any
        if self.mode == ROUND_ROBIN:
            picks = cycle(pods[rr:] + pods[:rr])  # from the next pick
        else:
            picks = [pods[int(u * nep)] for u in draws]
        for ta, s, (sl, p, w) in zip(arr[lo:hi], svc[lo:hi], picks, strict=False):
            f = sl[0]
            if f <= ta:  # a slot is free: starts on arrival
                d = s * scale
                heapreplace(sl, ta + d)
                started_d += d
                f_p(p)
            elif f < until:  # starts when the pod's earliest slot frees, before until
                if ta + timeout <= f:
                    return None
                d = s * scale
                heapreplace(sl, f + d)
                started_d += d
                dwait += f - ta
                f_p(-1)
                q_a(ta)
                q_s(f)
                q_d(d)
                q_p(p)
            else:  # still waiting at until (all its pod's slots busy past it)
                f_p(-1)
                w.append((ta, s, over, False))
        return fp, (qa, qs, qd, qp), took, new, started_d, dwait

    def _fcfs_compiled(
        self, slots: np.ndarray, until: float, src: tuple[Any, Any, int, int], draws: list[float]
    ) -> tuple[np.ndarray, int] | None:
        """`_fcfs_python` and `_fcfs_commit` by the compiled loop (sim/platforms/
        kubernetes_kernel.py) on the 2-D slot array and the pod queues as arrays (`_fc_q`, kept
        across intervals like the slots): the same results; the rows from a queue in `_qbuf`."""
        ep = self.ep
        arr, svc, i, k = src
        nep, n = len(ep), k - i
        q = self._fc_q
        if q is None or self._fc_tail + n > q[0].shape[1]:
            q = self._queues_to_arrays(n)
        qa, qs, qc, qh, qn = q
        qh, qn = qh.copy(), qn.copy()  # (a request that would time out leaves `_fc_q` as it was)
        picks = (np.array(draws) * nep).astype(np.int64) if draws else _NO_PICKS
        if self._kbuf.size < n:  # fp, kept (grown to the largest interval)
            self._kbuf = np.empty(max(n, 2 * self._kbuf.size, 1024), np.int64)
        fp = self._kbuf
        q0 = self._queued_to_arrays(n + self.nwait)  # (room for every row it may start)
        oa, os_, od, op, oc = (c[q0:] for c in self._qbuf)  # (views: the kernel writes there)
        if self._ep_arr is None:
            self._ep_arr = np.array(ep, np.int64)
        status, no, qsum, dn, started_d, dwait, nxt, amin, tail, cnt, rest = self._kernel(
            slots, until, self.timeout, self.scale, qa, qs, qc, qh, qn, self.q_arr_sum,
            arr, svc, i, k, picks, self.rr_next, self._ep_arr,
            fp, oa, os_, od, op, oc,
        )  # fmt: skip
        if status < 0:
            return None
        self._fc_q = (qa, qs, qc, qh, qn)
        self._fc_tail, self._fc_amin, self._fc_next = tail, amin, nxt
        self._fc_in = (until, cnt, rest)
        self.nwait += dn
        self.q_arr_sum = qsum if self.nwait else 0.0
        self.dequeued_wait += dwait
        self.started_d += started_d
        return fp[:n].copy(), no

    def _queues_to_arrays(self, n: int) -> tuple[np.ndarray, ...]:
        """`_fc_q` from the endpoints' pod queues (or from itself, compacted), with room for n
        more requests in each; the pod queues are stale until `_queues_back`."""
        self._queues_back()
        ep, pqs = self.ep, self.pod_queue
        lens = [len(pqs[p]) for p in ep]
        cap = 2 * (max(lens, default=0) + n) + 64
        qa, qs = np.empty((len(ep), cap)), np.empty((len(ep), cap))
        qc = np.zeros((len(ep), cap), np.bool_)
        for j, p in enumerate(ep):
            pq = pqs[p]
            if pq:  # (the overhead is the constant ov_const: not kept)
                a, s, _, c = zip(*pq, strict=True)
                qa[j, : len(pq)], qs[j, : len(pq)], qc[j, : len(pq)] = a, s, c
                pq.clear()
        q = (qa, qs, qc, np.zeros(len(ep), np.int64), np.array(lens, np.int64))
        self._fc_q, self._fc_tail = q, max(lens, default=0)
        return q

    def _queues_back(self) -> None:
        """The endpoints' pod queues from `_fc_q` (which is then dropped)."""
        q = self._fc_q
        if q is None:
            return
        self._fc_q = None
        qa, qs, qc, qh, qn = q
        over = self.ov_const
        assert over is not None  # (self.fcfs)
        for j, p in enumerate(self.ep):
            h, m = int(qh[j]), int(qn[j])
            if m:
                self.pod_queue[p].extend(
                    zip(
                        qa[j, h : h + m].tolist(),
                        qs[j, h : h + m].tolist(),
                        [over] * m,
                        qc[j, h : h + m].tolist(),
                        strict=True,
                    )
                )

    def _queued_to_arrays(self, extra: int) -> int:
        """The rows of `_ra`.. appended to `_qbuf` (so the compiled loop's rows follow them in
        the same order), with room for `extra` more; where the next row goes (`_qn`)."""
        q0, n = self._qn, len(self._ra)
        assert not self._ro  # (per-pod FCFS: a constant overhead)
        buf = self._qbuf
        if buf[0].size < q0 + n + extra:
            c = max(q0 + n + extra, 2 * buf[0].size, 1 << 17)
            grown = _row_arrays(c)
            for g, b in zip(grown, buf, strict=True):
                g[:q0] = b[:q0]
            self._qbuf = buf = grown
        if n:
            lists: tuple[list[Any], ...] = (self._ra, self._rs, self._rd, self._rp, self._rc)
            for b, lst in zip(buf, lists, strict=True):
                b[q0 : q0 + n] = lst
                lst.clear()  # in place: the hot loops hold these lists' bound `append`s
            self._qn = q0 = q0 + n
        return q0

    def _fc_rows(self) -> list[list[float]]:
        """The per-pod FCFS slot ends (`_fc_slots`, set) as lists."""
        slots = self._fc_slots
        assert slots is not None
        return slots.tolist() if isinstance(slots, np.ndarray) else slots

    def _fc_rest(self, now: float) -> tuple[int, float]:
        """How many per-pod FCFS slots are in service (end >= `_fc_t`) and the sum of their
        end - now in pod order: the compiled loop's figures when it ran to now (a control
        event's usual case), else summed here (the same subtractions, the same order)."""
        t, slots = self._fc_t, self._fc_slots
        until, cnt, rest = self._fc_in
        if until == t == now:
            return cnt, rest
        if isinstance(slots, np.ndarray):  # (row-major: the lists' order)
            ends = (slots[slots >= t] - now).tolist()
        else:
            assert slots is not None
            ends = [e - now for sl in slots for e in sl if e >= t]
        return len(ends), sum(ends)

    def _settle(self) -> None:
        """The event loop's heap and `inflight` from the per-pod FCFS slots (`_advance_fcfs`), for
        whatever reads them next: in service = the slot ends >= the time they are valid at."""
        self._queues_back()
        if self._fc_slots is None:
            return
        slots = self._fc_rows()
        self._fc_slots = None
        t, inflight = self._fc_t, self.inflight
        heap = self.heap
        heap.clear()
        add = heap.append
        for sl, p in zip(slots, self.ep, strict=True):
            n = 0
            for e in sl:
                if e >= t:  # in service at t
                    add((e, p))
                    n += 1
            inflight[p] = n
        heapify(heap)

    def _in_service(self) -> int:
        """len(self.heap), also while the per-pod FCFS slots stand in for it."""
        if self._fc_slots is None:
            return len(self.heap)
        t, slots = self._fc_t, self._fc_slots
        if self._fc_in[0] == t:  # (the compiled loop's count at the end of its interval)
            return self._fc_in[1]
        if isinstance(slots, np.ndarray):
            return int(np.count_nonzero(slots >= t))
        return sum([e >= t for sl in slots for e in sl])

    def _reject(self, t: float, over: float, now: float = -1.0, cold: bool = False) -> None:
        """A 503 at `now` (default: on arrival) for a request that arrived at t."""
        self.n_dropped += 1
        if now < t:
            now = t
        log = self.log
        log.arrival.append(t)
        log.start.append(now)
        log.end.append(now)
        log.wait.append(now - t)
        log.startup.append(0.0)
        log.service.append(0.0)
        log.overhead.append(over)
        log.cold.append(cold)
        log.outcome.append(self.reject_outcome)
        log.instance.append(-1)

    def _next_chunk(self) -> bool:
        self._direct_rows()
        if not super()._next_chunk():
            return False
        self._fp_from = 0
        if not self.uses_lists:  # (the compiled FCFS loop's: `_lists` when the event loop runs)
            c = self._chunk
            assert c is not None
            self._arr, self._svc = c.arrival, c.service  # type: ignore[assignment]
        return True

    def _lists(self) -> None:
        """The current chunk as the Python lists the event loop indexes fastest."""
        if not isinstance(self._arr, list):
            self._arr, self._svc = self._arr.tolist(), self._svc.tolist()

    def _buffered(self) -> int:
        """Rows held for the next flush."""
        return self._qn + len(self._ra) + len(self._fp) + self._fp_an + self._direct_n

    def _fp_add(self, fp: list[int] | np.ndarray) -> None:
        """The current chunk's next pod ids (per arrival; -1: queued): a list onto `_fp`, an
        array after `_fp`'s entries so far."""
        if isinstance(fp, list):
            self._fp.extend(fp)
        else:
            self._fp_tail()
            self._fp_arrs.append(fp)
            self._fp_an += fp.size

    def _fp_tail(self) -> None:
        """`_fp`'s entries to the end of `_fp_arrs` (which comes first)."""
        if self._fp:
            k = len(self._fp)
            self._fp_arrs.append(np.fromiter(self._fp, np.int64, k))  # ~15% faster than asarray
            self._fp_an += k
            self._fp.clear()  # in place: the hot loop holds its bound `append`

    def _direct_rows(self) -> None:
        """Columns of the requests that started on arrival, from the current chunk (vectorised)."""
        k = len(self._fp) + self._fp_an
        if not k or self._chunk is None:
            return
        lo, hi = self._fp_from, self._fp_from + k
        self._fp_tail()
        arrs = self._fp_arrs
        pid = arrs[0] if len(arrs) == 1 else np.concatenate(arrs)
        arrs.clear()
        self._fp_an = 0
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
        rows = {
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
        if self.spot is not None:
            rows["pod_end"] = pod_end  # for `_cut`; dropped before the recorder
        return rows

    def _add(self, rows: dict[str, np.ndarray]) -> None:
        if self.spot is not None:
            rows = self._cut(rows)
        self.ctx.recorder.add(rows)

    def _cut(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Spot: a request whose pod was killed while it was in service and its client still
        waiting fails at the kill (REJECTED: the client sees a 502/reset) or, with
        `in_flight: retry`, leaves the rows to be sent again. Rows that a later kill could still
        cut (their client waits past now) are carried to the next flush."""
        kill = np.asarray(self.kill_at)[rows["instance"]]
        start, end = rows["start"], rows["end"]
        cut = (kill >= start) & (kill < end)
        if cut.any():
            self.spot_killed += int(cut.sum())
            assert self.spot is not None
            if self.spot.in_flight == "retry":
                svc = (rows["pod_end"][cut] - start[cut]) / self.scale
                self._retry.extend(
                    zip(
                        rows["arrival"][cut].tolist(),
                        svc.tolist(),
                        rows["overhead"][cut].tolist(),
                        rows["cold"][cut].tolist(),
                        strict=True,
                    )
                )
                rows = {k: v[~cut] for k, v in rows.items()}
                kill, end = kill[~cut], rows["end"]
            else:
                rows["end"] = np.where(cut, kill, end)
                rows["service"] = np.where(cut, kill - rows["start"], rows["service"])
                rows["outcome"] = np.where(cut, REJECTED, rows["outcome"]).astype(np.uint8)
        if not self._closing:
            later = (end > self.env.now) & (kill == INF)
            if later.any():
                self._carry.append({k: v[later] for k, v in rows.items()})
                rows = {k: v[~later] for k, v in rows.items()}
        rows.pop("pod_end")
        return rows

    def flush(self) -> None:
        """Hand the buffered rows to the recorder; started requests get their columns here."""
        self._direct_rows()
        carried, self._carry = self._carry, []
        for rows in carried:
            self._add(rows)
        for a, d, pid, over in self._direct:  # started on arrival: no wait, not cold
            n = a.size
            self._add(self._rows(a, a, d, pid, np.zeros(n, dtype=np.bool_), over))
        self._direct.clear()
        self._direct_n = 0
        if self._ra or self._qn:
            n = len(self._ra)
            over = (
                np.full(self._qn + n, self.ov_const)
                if self.ov_const is not None
                else np.fromiter(self._ro, np.float64, n)
            )
            cols: tuple[np.ndarray, ...] = (
                np.fromiter(self._ra, np.float64, n),
                np.fromiter(self._rs, np.float64, n),
                np.fromiter(self._rd, np.float64, n),
                np.fromiter(self._rp, np.int64, n),
                np.fromiter(self._rc, np.bool_, n),
            )
            if self._qn:  # the compiled loop's rows (and those before them) come first
                cols = tuple(
                    np.concatenate((b[: self._qn], c))
                    for b, c in zip(self._qbuf, cols, strict=True)
                )
                self._qn = 0
            for lo, hi in self._sort_segs:  # per-pod FCFS rows: the event loop's start order
                order = start_order(cols[1][lo:hi], cols[3][lo:hi]) + lo
                for c in cols:
                    c[lo:hi] = c[order]
            self._sort_segs.clear()
            ca, cs, cd, cp, cc = cols
            self._add(self._rows(ca, cs, cd, cp, cc, over))
            # Clear in place: the hot loop holds these lists' bound `append`s.
            for lst in (self._ra, self._rs, self._rd, self._rp, self._rc, self._ro):
                lst.clear()
        super().flush()

    # =============================================================================================
    # observation and accounting
    # =============================================================================================
    def snapshot(self, now: float) -> dict[str, float]:
        self._catch_up(now)
        if (
            self._fc_slots is not None
        ):  # per-pod FCFS: pods with a slot end >= the time (in service)
            t, slots = self._fc_t, self._fc_slots
            if isinstance(slots, np.ndarray):
                busy = int(np.count_nonzero(slots.max(axis=1) >= t))
            else:
                busy = sum([max(sl) >= t for sl in slots])
        elif self.pp:
            busy = sum(1 for p in self.ep if self.inflight[p])
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
            "inflight": float(self._in_service()),
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
        self._bill_pods_to_end()
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

    def billed_requests(self) -> tuple[float, float]:
        """(vCPU, GiB) per pod on the bill: Autopilot's adjusted requests, or as given. The
        simulated pod keeps its own CPU share (ASSUMPTION: a CPU raised by Autopilot's rounding
        would only make it faster; not modelled)."""
        cpu, mem_gib = self.spec.pod.cpu, self.spec.pod.memory / 1024.0
        if self.autopilot and self.spec.cluster.autopilot_rounding:
            return autopilot_requests(cpu, mem_gib)
        return cpu, mem_gib

    def usage(self) -> KubernetesUsage:
        end = self.horizon
        cpu, mem_gib = self.billed_requests()
        on_demand_s = self.pod_seconds - self.spot_pod_seconds
        return KubernetesUsage(
            window_s=end,
            requests=self.n_arrivals,
            nodes=[
                NodeUsage(self.node_type, n.launched, n.end if n.end is not None else end, n.spot)
                for n in self.nodes
                if not self.autopilot  # Autopilot Spot Pods' VMs are not billed
            ],
            pod_cpu_seconds=on_demand_s * cpu,
            pod_memory_gib_seconds=on_demand_s * mem_gib,
            spot_pod_cpu_seconds=self.spot_pod_seconds * cpu,
            spot_pod_memory_gib_seconds=self.spot_pod_seconds * mem_gib,
            autopilot_adjusted=self.autopilot and self.spec.cluster.autopilot_rounding,
            # every arrival is answered (a failed one at full size: slightly high on errors)
            response_bytes=self.n_arrivals * self.ctx.response_bytes[0],
        )

    def bill(self) -> Any:
        c = self.spec.cluster
        assert c.control_plane is not None
        bill = kubernetes_bill(
            self.usage(),
            control_plane=c.control_plane,
            mode=c.mode,
            load_balancer=self.spec.load_balancer,
            ops=self.spec.ops,
            free_tier=self.spec.free_tier,
            settings=self.spec.cost,
            month_s=self.ctx.month_s,
            ops_profile=self.spec.ops_profile,
            spot_price=c.spot.price if c.spot is not None else None,
        )
        cpu, mem_gib = self.billed_requests()
        pod = self.spec.pod
        if (cpu, mem_gib) != (pod.cpu, pod.memory / 1024.0):
            bill = dataclasses.replace(
                bill,
                notes=(
                    *bill.notes,
                    f"Autopilot bills {cpu:g} vCPU / {mem_gib:g} GiB per pod (requested "
                    f"{pod.cpu:g} vCPU / {pod.memory / 1024.0:g} GiB)",
                ),
            )
        if self.spot is not None:  # what spot cost in service, next to its bill line
            bill = dataclasses.replace(
                bill,
                notes=(
                    *bill.notes,
                    f"spot: {self.spot_notices} interruptions in "
                    f"{self.spot_exposure_hours():.1f} spot {'pod' if self.autopilot else 'node'}"
                    "-hours, "
                    f"{self.spot_reschedules} pods rescheduled, {self.spot_killed} "
                    f"requests cut short ({self.spot.in_flight})"
                    + (
                        f", {self.spot_fallbacks} launches on-demand (no spot capacity)"
                        if self.spot.short_capacity()
                        else ""
                    ),
                ),
            )
        return bill


# Break-even of the compiled FCFS loop, in expected requests per run (docs/model.md 19.5): it
# saves ~0.3 us a request against importing numba and compiling it (or loading its cache).
KERNEL_COMPILE_AT = 16e6
KERNEL_CACHED_AT = 4e6
_NO_PICKS = np.empty(0, np.int64)  # round robin: the kernel picks itself (and: no waiting rows)
_NO_ROWS = np.empty(0)


def _row_arrays(n: int) -> tuple[np.ndarray, ...]:
    """Room for n started rows: arrival, start, d, pod, cold."""
    return tuple(np.empty(n, t) for t in (np.float64,) * 3 + (np.int64, np.bool_))


def start_order(start: np.ndarray, pod: np.ndarray) -> np.ndarray:
    """The order of rows by start, then pod, stable (a pod's queue is FIFO): the event loop's
    start order (its heap pops (end, pod) tuples). With no two equal starts that is the stable
    argsort of start, ~5x faster than lexsort on the flush's runs of nearly sorted starts."""
    order = np.argsort(start, kind="stable")
    by = start[order]
    if (by[1:] == by[:-1]).any():
        return np.lexsort((pod, start))
    return order


def use_kernel(expected: float) -> bool:
    """Whether a per-pod FCFS run takes the compiled loop (numba's build: sim.compiled)."""
    at, cached_at = KERNEL_COMPILE_AT, KERNEL_CACHED_AT
    return compiled.use_compiled(expected, "kubernetes_kernel", at, cached_at) is not None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _reason(rule: str, text: str, value: float | None, target: float | None) -> str:
    return f"{rule}: {text} [metric {_fmt(value)}, target {_fmt(target)}]"


__all__ = ["KubernetesModel", "KubernetesSpec"]
