# The reference keeps its own request objects in the kernels' queues (typed for the kernels'
# tuples) and attaches `chunks` to models at run time:
# mypy: disable-error-code="arg-type,attr-defined"
"""The per-request SimPy path: a slow, obviously-correct oracle for the fast kernels.

Here every request is its own SimPy process and every completion and keep-alive expiry is a SimPy
event, the way a textbook SimPy model is written. It is ~10x slower than the kernels in
sim/platforms and exists only to prove them exact: tests run both on the same scenario and seed and
require identical per-request outcomes (tests/test_equivalence.py).

Event order at equal times, as in each kernel. Lambda: completions first (earlier-started
environment first), then keep-alive expiries and control events, then arrivals (in arrival order).
Wasm: completions, then arrivals. Kubernetes (its kernel advances the data plane to a control
event's time, exclusive): requests reaching their queue deadline, control events, completions (lower
pod id first), arrivals.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Generator, Iterator
from heapq import heapify, heappop, heappush
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from sim.engine import PlatformRun, run_one
from sim.platforms.azure_flex import AzureFlexModel
from sim.platforms.base import INF, RunContext, substream
from sim.platforms.cloud_run import CloudRunModel
from sim.platforms.container_apps import ContainerAppsModel
from sim.platforms.knative import KnativeModel
from sim.platforms.kubernetes import DRAINING, READY, KubernetesModel
from sim.platforms.lambda_ import LambdaModel
from sim.platforms.lambda_managed import LambdaManagedModel
from sim.platforms.wasm import WasmModel
from sim.records import COLUMNS, OK, REJECTED, THROTTLED, TIMED_OUT, RequestLog
from sim.scenario import Scenario
from sim.systems import kafka, sqs
from sim.systems.engine import (
    CALL,
    KILLED,
    PAR,
    PUB_B,
    PUB_Q,
    PUB_S,
    WORK,
    LambdaStation,
    PodStation,
    Root,
    SpotPodStation,
    Station,
    SystemModel,
    _Uniforms,
    name_key,
)
from sim.systems.eventbridge import SEND, fifo_send
from sim.systems.spec import (
    ESM_MAX_BATCHES,
    ESM_SCALE_UP_PER_MINUTE,
    ESM_START_BATCHES,
    FIFO_DEDUP_INTERVAL_S,
    KAFKA_ESM_EVALUATION_S,
    KAFKA_ESM_START_POLLERS,
)

_ARRIVAL_PRIORITY = 2  # after SimPy's URGENT (0) and NORMAL (1) events at the same time


def _at(env: simpy.Environment, delay: float, priority: float) -> simpy.Event:
    ev = simpy.Event(env)
    ev._ok = True
    ev._value = None
    env.schedule(ev, priority, delay)
    return ev


class ReferenceLambda(LambdaModel):
    """Lambda with one SimPy process per request; shares only settings and the bill."""

    drives_itself = True

    def start(self) -> None:
        super().start()
        self.in_flight = 0
        self.idle_envs: list[list[list[Any]]] = [[] for _ in self.idle]  # [env_id, since]
        self.entry_of: dict[int, list[Any]] = {}  # idle env -> its idle_envs entry
        self.retired: set[int] = set()  # busy envs past their lifetime: not reused
        self.started_in: dict[tuple[int, int], int] = {}  # (function, second) -> invocations
        self.env.process(self._source())

    def advance(self, until: float) -> None:  # requests drive themselves
        pass

    def _source(self) -> Generator:
        for chunk in self.chunks:
            over = (
                np.full(chunk.arrival.size, self.gw_const)
                if self.gw_const is not None
                else self.spec.gateway_latency.sample(chunk.arrival.size, self.gw_rng)  # type: ignore[union-attr]
            )
            for t, s, f, o in zip(
                chunk.arrival.tolist(),
                chunk.service.tolist(),
                chunk.function.tolist(),
                over.tolist(),
                strict=True,
            ):
                if t >= self.ctx.duration:
                    return
                yield _at(self.env, t - self.env.now, _ARRIVAL_PRIORITY)
                self.env.process(self._request(t, t, s, f, o, 0))

    def _acquire(self, t: float, f: int) -> tuple[int, int, float] | None:
        got = self._acquire_env(t, f)
        if got is not None and self.spec.rate_limit is not None:
            key = (f, math.floor(t))
            self.started_in[key] = self.started_in.get(key, 0) + 1
        return got

    def _acquire_env(self, t: float, f: int) -> tuple[int, int, float] | None:
        # The quota: invocations started in this clock second, counted per (function, second).
        quota = self.spec.rate_limit  # read from the settings, not the kernel's state
        if quota is not None and self.started_in.get((f, math.floor(t)), 0) + 1 > quota + 1e-9:
            return None
        if self.in_flight >= self.limit:
            return None
        if self.pc_idle[f]:
            return self.pc_idle[f].pop(), 1, 0.0
        idle = self.idle_envs[f]
        if idle:
            env = idle.pop() if self.mru else idle.pop(0)
            env[1] = None  # no longer idle: its reaper will find it busy
            self.entry_of.pop(env[0], None)
            return env[0], 0, 0.0
        sr = self.spec.scaling_rate
        tok = min(float(sr.burst), self.tokens[f] + (t - self.tok_time[f]) * sr.refill)
        self.tok_time[f] = t
        if tok < 1.0:
            self.tokens[f] = tok
            return None
        self.tokens[f] = tok - 1.0
        init = self.startup_dist.next()
        if self.snapstart:
            self.restores += 1
        else:
            self.billed_init_ms += math.ceil(init * 1e3 - 1e-9)
        self.next_env += 1
        env_id = self.next_env
        self.created[env_id] = t
        self.live += 1
        self.peak = max(self.peak, self.live)
        lifetime = self.spec.max_environment_lifetime
        if lifetime is not None:  # the kernel's draw buffer: the same draws in the same order
            assert self.life_draw is not None  # the kernel makes one when a lifetime is set
            life = lifetime.value if lifetime.dist == "constant" else self.life_draw.next()
            self.env.process(self._recycler(env_id, f, t + life))
        return env_id, 0, self.sandbox + init

    def _recycler(self, env_id: int, f: int, when: float) -> Generator:
        """The lifetime cap as its own event: at `when` an idle environment leaves, a busy one
        is marked so that it leaves when its request ends (after completions, before arrivals)."""
        yield _at_abs(self.env, when, 1.0)
        if env_id not in self.created:
            return  # already reclaimed (keep-alive) or discarded (timeout)
        entry = self.entry_of.pop(env_id, None)
        if entry is not None:  # idle
            self.idle_envs[f].remove(entry)
            entry[1] = None  # void its reaper
            self._gone(env_id, when)
        else:
            self.retired.add(env_id)

    def _request(
        self, t: float, t0: float, s: float, f: int, over: float, attempt: int
    ) -> Generator:
        # `t` is the nominal time (SimPy's clock may differ from it in the last bit).
        got = self._acquire(t, f)
        self.attempts += 1
        if got is None:
            self.throttles += 1
            if attempt < self.spec.client.retries:
                b = self.spec.client.backoff
                t_retry = t + self.jitter.random() * min(b.cap, b.base * 2.0**attempt)
                yield _at(self.env, t_retry - self.env.now, _ARRIVAL_PRIORITY)
                yield from self._request(t_retry, t0, s, f, over, attempt + 1)
                return
            self._row(t0, t, t, t - t0, 0.0, over, 1, -1)
            return
        env_id, provisioned, startup = got
        self.in_flight += 1
        dur = s * self.scale
        outcome = OK if dur <= self.timeout else TIMED_OUT
        run = dur if outcome == OK else self.timeout
        start = t + startup
        end = start + run
        if self.track_pc and provisioned:
            self._pc_busy(start, end)
        billed = math.ceil(run * 1e3 - 1e-9)
        self.invocations += 1
        if provisioned:
            self.billed_pc_ms += billed
        else:
            self.billed_od_ms += billed
        self._row(t0, start, end, t - t0, startup, over, outcome, env_id, run)
        # Completion: URGENT-ish, earlier environments first among equal times.
        yield _at(self.env, end - self.env.now, env_id / 2.0**53)
        self.in_flight -= 1
        self._give_back(end, env_id, provisioned, outcome, f)

    def _give_back(self, end: float, env_id: int, provisioned: int, outcome: int, f: int) -> None:
        if outcome != OK:
            self.retired.discard(env_id)
            if env_id in self.created:
                self._gone(env_id, end)
            else:
                self.pc_idle[f].append(env_id)
            return
        if provisioned:
            if self.pc_retire[f]:
                self.pc_retire[f] -= 1
                self.pc_live[f] -= 1
                self.live -= 1
            else:
                self.pc_idle[f].append(env_id)
            return
        ka = self.ka_const if self.ka_const is not None else self.ka_draw.next()
        if env_id in self.retired:  # its lifetime ended while it served this request
            self.retired.discard(env_id)
            self._gone(env_id, end)
            return
        entry = [env_id, end]
        self.idle_envs[f].append(entry)
        self.entry_of[env_id] = entry
        self.env.process(self._reaper(entry, end, ka, f))

    def _reaper(self, entry: list[Any], since: float, ka: float, f: int) -> Generator:
        yield self.env.timeout(ka)
        if entry[1] == since:  # still idle since that release
            self.idle_envs[f].remove(entry)
            self.entry_of.pop(entry[0], None)
            self._gone(entry[0], self.env.now)

    def snapshot(self, now: float) -> dict[str, float]:
        return {"instances": float(self.live), "busy": float(self.in_flight)}

    def finish(self) -> None:
        for env_id in list(self.created):
            self._gone(env_id, self.ctx.duration)
        for seg_start, seg_end, level in self.pc_segments:
            lo, hi = max(seg_start, self.ctx.warmup), min(seg_end, self.ctx.duration)
            if hi > lo:
                self.pc_env_seconds += (hi - lo) * level * len(self.pc_idle)
        self.flush()


# -- Wasm and Kubernetes ---------------------------------------------------------------------------
# These two schedule their events at absolute times (the nominal float, not now + delay, which can
# differ in the last bit) with explicit priorities, so ties resolve exactly as in the kernels:
_DEADLINE = -1.0  # a request still waiting at its deadline leaves first (kernels purge `<= now`)
_HANDOFF = 0.0  # a queued request resumes once a slot was handed to it (no state change)
_COMPLETION = 1.5  # after control events (NORMAL = 1), before arrivals (2); ties by pod id
_POD_TIE = 2.0**-40


class _DataEvent(simpy.Event):
    """A data-plane event (completion, deadline, hand-off, arrival): `finish` keeps only these."""


def _at_abs(env: simpy.Environment, when: float, priority: float) -> simpy.Event:
    ev = _DataEvent(env)
    ev._ok = True
    ev._value = None
    heappush(env._queue, (when, priority, next(env._eid), ev))  # type: ignore[misc]
    return ev


def _drain(env: simpy.Environment) -> None:
    """After the window: drop the control loops (no more control actions), let accepted work end."""
    q = env._queue
    q[:] = [e for e in q if isinstance(e[3], _DataEvent)]
    heapify(q)
    env.run()


def _log(log: RequestLog, *row: Any) -> None:
    """Append one row: arrival, start, end, wait, startup, service, overhead, cold, outcome, pod."""
    for name, value in zip(COLUMNS, row, strict=True):
        getattr(log, name).append(value)


def _arrivals(model: Any) -> Iterator[tuple[float, float, int]]:
    for chunk in model.chunks:
        for t, s, f in zip(
            chunk.arrival.tolist(), chunk.service.tolist(), chunk.function.tolist(), strict=True
        ):
            if t >= model.ctx.duration:
                return
            yield t, s, f


class ReferenceWasm(WasmModel):
    """Wasm with one SimPy process per request: instantiate, run, release; shares settings, the
    draw buffers (same draws in the same order) and the bill."""

    drives_itself = True

    def __init__(self, spec: Any, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        self.in_flight = 0
        n_iso = len(self.node_last_end)
        self.iso_busy = [0] * n_iso  # requests in flight per (node, function) isolate
        self.iso_done = [-INF] * n_iso  # when its last request ended (never: -inf)

    def start(self) -> None:
        super().start()
        self.env.process(self._source())

    def advance(self, until: float) -> None:  # requests drive themselves
        pass

    def _source(self) -> Generator:
        for t, s, f in _arrivals(self):
            yield _at_abs(self.env, t, _ARRIVAL_PRIORITY)
            self.env.process(self._request(t, s, f))

    def _request(self, t: float, s: float, f: int) -> Generator:
        self.n_arrivals += 1
        over = self.over_const if self.over_const is not None else self.over_draw.next()
        if self.in_flight >= self.cap:
            self.n_rejected += 1
            _log(self.log, t, t, t, 0.0, 0.0, 0.0, over, False, REJECTED, -1)
            return
        startup = self.inst_const if self.inst_const is not None else self.inst_draw.next()
        dur, outcome = s * self.spec.slowdown, OK
        if dur > self.wall_limit:
            dur, outcome = self.wall_limit, TIMED_OUT
        cold, iso = False, -1
        if self.edge:
            node = 0
            if self.spec.edge_nodes > 1:
                if self.node_i >= len(self.node_buf):
                    self.node_buf = self.ctx.rng.integers(0, self.spec.edge_nodes, 65536).tolist()
                    self.node_i = 0
                node = self.node_buf[self.node_i]
                self.node_i += 1
            iso = node * self.nfn + f if self.nfn > 1 else node
            idle = self.iso_busy[iso] == 0
            if idle and t - self.iso_done[iso] >= self.spec.edge_idle_timeout:
                startup += self.edge_draw.next()  # type: ignore[union-attr]
                cold = True
                self.n_cold += 1
            self.iso_busy[iso] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.next_id += 1
        rid = self.next_id
        self.ran += 1
        self.service_seconds += dur
        start = t + startup
        yield _at_abs(self.env, start, _COMPLETION)  # instantiated
        end = start + dur
        yield _at_abs(self.env, end, _COMPLETION)  # handler done (or killed at the CPU limit)
        self.in_flight -= 1
        if iso >= 0:
            self.iso_busy[iso] -= 1
            self.iso_done[iso] = max(self.iso_done[iso], end)
        _log(self.log, t, start, end, 0.0, startup, dur, over, cold, outcome, rid)

    def snapshot(self, now: float) -> dict[str, float]:
        return {"instances": float(self.in_flight), "busy": float(self.in_flight)}

    def finish(self) -> None:
        _drain(self.env)
        self.flush()


class _Req:
    """A request in the Kubernetes reference: its own SimPy process waits on `ev`."""

    __slots__ = ("a", "cold", "deadline", "ev", "gen", "over", "pid", "queue", "s", "start")

    def __init__(self, a: float, s: float, over: float, ev: simpy.Event) -> None:
        self.a, self.s, self.over, self.ev = a, s, over, ev
        self.cold = False
        self.gen = 0  # bumped when a spot kill cuts its service short: the old completion is void
        self.pid = -1  # the pod serving it (-1: not started)
        self.start = 0.0
        self.queue: deque | None = None  # the FIFO it waits in
        self.deadline = INF  # when it leaves that FIFO unserved


class ReferenceKubernetes(KubernetesModel):
    """Kubernetes with one SimPy process per request: it takes a pod slot or waits in an explicit
    FIFO (with a deadline event), is served, releases the slot to the head of the queue.

    Shared with the kernel: settings, the control plane (autoscalers, scheduler, nodes, pod
    lifecycle, the ready endpoint list `ep` and the round-robin index, the meters the autoscalers
    read), the ingress and routing draw buffers and the bill. The hooks where the control plane
    touches requests (a pod becomes ready and takes held requests) are rewritten for request
    processes. ideal_fifo: least connections among equally loaded pods is the kernel's own
    tie-break (`_take_slot`: per-load pod sets, the same set operations in the same order), so pod
    ids match too. Per-pod routings: `_route` is written here from the balancers' own rules, with
    each pod's outstanding count taken from its requests (in service + in its queue), not from the
    kernel's counters.
    """

    drives_itself = True

    def advance(self, until: float) -> None:  # requests drive themselves
        pass

    def _purge(self, now: float) -> None:  # deadlines are events (_DEADLINE priority)
        pass

    def start(self) -> None:
        self._serving: dict[int, dict[_Req, None]] = {}  # per pod: its requests in service
        super().start()
        self.env.process(self._source())

    def _source(self) -> Generator:
        for t, s, _f in _arrivals(self):
            yield _at_abs(self.env, t, _ARRIVAL_PRIORITY)
            self.env.process(self._request(t, s))

    # -- one request -----------------------------------------------------------------------------
    def _request(self, t: float, s: float) -> Generator:
        self.n_arrivals += 1
        self.arrivals_in_step += 1
        over = self.ov_const if self.ov_const is not None else self.ov_draw.next()
        req = _Req(t, s, over, _DataEvent(self.env))
        if self.pp:
            q = self.queue  # no ready pod: the interceptor (the entry path) holds it
            if self.ep:
                pid = self._route()
                if self.inflight[pid] < self.conc:
                    self.inflight[pid] += 1
                    self._serve(req, pid, t)
                else:
                    q = self.pod_queue[pid]
        elif self.kmin < self.conc:
            self._serve(req, self._take_slot(), t)
        else:
            q = self.queue
        if req.pid < 0:
            full = len(q) if self.pp else self.waiting()  # per pod (or held) / in total
            if self.qlimit is not None and full >= self.qlimit:
                self._reject(t, over)
                return
            req.cold = self.nready == 0
            self._enqueue(req, q)
            yield req.ev
            if req.pid < 0:
                return  # left the queue at its deadline (logged by _expire)
        yield from self._served(req)

    def _served(self, req: _Req) -> Generator:
        """In service from req.start on pod req.pid until it completes (unless a spot kill
        cut it short meanwhile: then its generation moved on and this completion is void)."""
        gen = req.gen
        pod_end = req.start + req.s * self.scale
        yield _at_abs(self.env, pod_end, _COMPLETION + req.pid * _POD_TIE)
        if req.gen == gen:
            self._complete(req, pod_end)

    def _route(self) -> int:
        """The balancer's pick among the ready endpoints (pod-id order), from its own rule."""
        ep, n = self.ep, len(self.ep)

        def outstanding(p: int) -> int:
            return self.inflight[p] + len(self.pod_queue[p])

        if self.routing == "round_robin":
            pid = ep[self.rr_next]
            self.rr_next = (self.rr_next + 1) % n
            return pid
        if self.routing == "random":  # iptables 1/n, 1/(n-1), ...: a uniform endpoint
            return ep[math.floor(self.route_u.next() * n)]
        if self.routing == "least_request":  # Envoy unweightedHostPickNChoices, choice_count 2
            candidate = None
            for _ in range(2):
                sampled = ep[math.floor(self.route_u.next() * n)]
                if candidate is None or outstanding(sampled) < outstanding(candidate):
                    candidate = sampled
            assert candidate is not None
            return candidate
        best = ep[0]  # least outstanding, the lowest pod id on a tie
        for p in ep[1:]:
            if outstanding(p) < outstanding(best):
                best = p
        return best

    def _enqueue(self, req: _Req, q: deque) -> None:
        req.queue = q
        q.append(req)
        self.q_arr_sum += req.a
        if self.pp:
            self.nwait += 1
        if req.cold:
            self.cold_in_step += 1
        if self.pp:
            self._deadline(req, self.hold_timeout if q is self.queue else self.timeout)
        else:  # the one FIFO's own limit (Cloud Run: the pending limit)
            self._deadline(req, self.queue_timeout)

    def _deadline(self, req: _Req, to: float) -> None:
        req.deadline = req.a + to
        if to != INF:
            _at_abs(self.env, req.deadline, _DEADLINE).callbacks.append(
                lambda _ev, req=req, when=req.deadline: self._expire(req, when)  # type: ignore[misc]
            )

    def _dequeue(self, req: _Req) -> None:
        assert req.queue is not None
        req.queue.remove(req)
        req.queue = None
        self.q_arr_sum -= req.a
        if self.pp:
            self.nwait -= 1
        if not self.waiting():
            self.q_arr_sum = 0.0

    def _expire(self, req: _Req, when: float) -> None:
        if req.queue is None or req.deadline != when:  # served, or forwarded with a new deadline
            return
        self._dequeue(req)
        to = when - req.a
        self.dequeued_wait += to
        self.n_dropped += 1  # the kernel's completions meter (control plane) counts it
        outcome = TIMED_OUT if self.pp else self.queue_outcome
        _log(self.log, req.a, when, when, to, 0.0, 0.0, req.over, req.cold, outcome, -1)
        _at_abs(self.env, self.env.now, _HANDOFF).callbacks.append(lambda _ev: req.ev.succeed())

    def _serve(self, req: _Req, pid: int, now: float) -> None:
        """Start req on pod pid now (its slot is already taken)."""
        req.pid, req.start = pid, now
        d = req.s * self.scale
        heappush(self.heap, (now + d, pid))
        self.started_d += d
        self._serving.setdefault(pid, {})[req] = None

    def _hand_off(self, req: _Req, pid: int, now: float) -> None:
        """A queued request gets a slot: it leaves its queue and its process resumes."""
        self._dequeue(req)
        self.dequeued_wait += now - req.a
        self._serve(req, pid, now)
        req.ev._ok, req.ev._value = True, None
        heappush(self.env._queue, (now, _HANDOFF, next(self.env._eid), req.ev))  # type: ignore[misc]

    def _complete(self, req: _Req, te: float) -> None:
        pid = req.pid
        popped = heappop(self.heap)
        assert popped == (te, pid), (popped, te, pid)
        del self._serving[pid][req]
        deadline = req.a + self.timeout
        if te > deadline:  # the client gave up at its deadline; the pod worked on
            _log(
                self.log,
                req.a,
                req.start,
                deadline,
                req.start - req.a,
                0.0,
                deadline - req.start,
                req.over,
                req.cold,
                TIMED_OUT,
                pid,
            )
        else:
            _log(
                self.log,
                req.a,
                req.start,
                te,
                req.start - req.a,
                0.0,
                req.s * self.scale,
                req.over,
                req.cold,
                OK,
                pid,
            )
        # Release the slot: to the head of the pod's own queue (per-pod routings) or of the shared
        # queue (ideal_fifo, only while the pod is ready), else it becomes free.
        if self.pp:
            pq = self.pod_queue[pid]
            if pq:
                self._hand_off(pq[0], pid, te)
                return
            if self.queue and self.state[pid] == READY:  # Knative's activator holds requests
                self._hand_off(self.queue[0], pid, te)
                return
            self.inflight[pid] -= 1
            if not self.inflight[pid] and self.state[pid] == DRAINING:
                self._gone(pid, te)
            return
        if self.state[pid] == READY:
            if self.queue:
                self._hand_off(self.queue[0], pid, te)
                return
            k = self.inflight[pid]
            self.inflight[pid] = k - 1
            if k < self.conc:
                self.buckets[k].discard(pid)
            self.buckets[k - 1].add(pid)
            self.kmin = min(self.kmin, k - 1)
            return
        self.inflight[pid] -= 1  # draining
        if not self.inflight[pid]:
            self._gone(pid, te)

    # -- control-plane hooks that hand out queued requests ---------------------------------------
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
        while self.queue and self.kmin < self.conc:
            self._hand_off(self.queue[0], self._take_slot(), now)

    def _dispatch_held(self, now: float) -> None:
        """Requests held while no pod was ready are forwarded in arrival order, each to the pod
        the balancer picks; one that finds that pod's backlog full gets a 503 now."""
        while self.queue:
            req = self.queue[0]
            pid = self._route()
            if self.inflight[pid] < self.conc:
                self.inflight[pid] += 1
                self._hand_off(req, pid, now)
            elif self.qlimit is not None and len(self.pod_queue[pid]) >= self.qlimit:
                self._dequeue(req)
                self.dequeued_wait += now - req.a
                _log(self.log, req.a, now, now, now - req.a, 0.0, 0.0, req.over, req.cold,
                     REJECTED, -1)  # fmt: skip
                _at_abs(self.env, now, _HANDOFF).callbacks.append(
                    lambda _ev, req=req: req.ev.succeed()  # type: ignore[misc]
                )
            else:  # into that pod's queue, keeping its place in the waiting count
                self.queue.popleft()
                req.queue = pq = self.pod_queue[pid]
                j = len(pq)  # by arrival (only a spot retry arrived before the queue's tail)
                while j and pq[j - 1].a > req.a:
                    j -= 1
                pq.insert(j, req)
                self._deadline(req, self.timeout)

    # -- spot: a killed pod's requests ------------------------------------------------------------
    def _spot_kill(self, node: Any, why: str) -> None:
        """The control plane (shared) kills the pods still on the node; here their requests, from
        AWS's/Kubernetes' semantics rather than the kernel's rows: a request in service whose
        client still waits, or one queued at a killed pod, fails now (the ALB's 502) or, with
        `in_flight: retry`, is sent again now keeping its arrival time: into the held queue in
        arrival order, then to a ready pod as the balancer picks (or a free slot, ideal_fifo).
        A request whose client had already given up stays timed out (logged as it would be)."""
        now = self.env.now
        if node.end is not None:
            return
        on_node = [
            p
            for p in (*self.starting, *self.ready_order, *self.draining)
            if self.node_of[p] is node
        ]
        stash = {}  # the control plane must not see request objects in the pods' queues
        if self.pp:
            for p in on_node:
                if self.pod_queue[p]:
                    stash[p], self.pod_queue[p] = self.pod_queue[p], deque()
        super()._spot_kill(node, why)
        assert self.spot is not None
        retry = self.spot.in_flight == "retry"
        held: list[_Req] = []
        for p in on_node:
            if self.kill_at[p] != now:  # not killed (idle, or left): its queue is its own again
                if p in stash:
                    self.pod_queue[p] = stash.pop(p)
                continue
            for r in list(stash.pop(p, ())):  # queued at the pod: dies with it
                self._dequeue(r)
                self.spot_killed += 1
                if retry:
                    held.append(r)
                    continue
                self.dequeued_wait += now - r.a
                self._reject(r.a, r.over, now, r.cold)
                _at_abs(self.env, now, _HANDOFF).callbacks.append(
                    lambda _ev, r=r: r.ev.succeed()  # type: ignore[misc]
                )
            for req in list(self._serving.get(p, {})):  # in service: cut at the kill
                if req.start + req.s * self.scale <= now:
                    continue  # completes at this instant (after control events): not cut
                del self._serving[p][req]
                req.gen += 1
                deadline = req.a + self.timeout
                if deadline <= now:  # the client left at its deadline; the pod worked on
                    _log(self.log, req.a, req.start, deadline, req.start - req.a, 0.0,
                         deadline - req.start, req.over, req.cold, TIMED_OUT, p)  # fmt: skip
                    continue
                self.spot_killed += 1
                if retry:
                    req.ev = _DataEvent(self.env)
                    self.env.process(self._again(req))
                    held.append(req)
                    continue
                _log(self.log, req.a, req.start, now, req.start - req.a, 0.0, now - req.start,
                     req.over, req.cold, REJECTED, p)  # fmt: skip
        if not held:
            return
        q = self.queue
        merged = sorted([*q, *held], key=lambda r: (r.a, r.s, r.over, r.cold))
        q.clear()
        q.extend(merged)
        to = self.hold_timeout if self.pp else self.queue_timeout
        for req in held:
            req.pid, req.queue = -1, q
            self.q_arr_sum += req.a
            if self.pp:
                self.nwait += 1
            req.deadline = req.a + to
            if to != INF:  # a deadline already past fires now (the kernel purges it next)
                _at_abs(self.env, max(req.deadline, now), _DEADLINE).callbacks.append(
                    lambda _ev, req=req, when=req.deadline: self._expire(req, when)  # type: ignore[misc]
                )
        if self.pp:
            if self.ep:
                self._dispatch_held(now)
        else:
            while q and self.kmin < self.conc:
                self._hand_off(q[0], self._take_slot(), now)

    def _again(self, req: _Req) -> Generator:
        """A request cut short in service and sent again: waits for a slot, then is served."""
        yield req.ev
        if req.pid >= 0:
            yield from self._served(req)

    def finish(self) -> None:
        end = self.horizon
        self._ready_change(end, 0)
        self._closing = True
        self._bill_pods_to_end()  # as the kernel: pods billed to the end
        _drain(self.env)  # accepted work ends with the pods ready now; deadlines still fire
        leftovers = [*self.queue, *(r for q in self.pod_queue for r in q)]
        for req in leftovers:  # no deadline and no pod: unanswered at the end
            self._unanswered(req.a, req.over, req.cold, end)
        self.queue.clear()
        self.ctx.decisions.sort(key=lambda d: d.time_s)
        self.flush()


class ReferenceAzureFlex(AzureFlexModel, ReferenceKubernetes):
    """Flex Consumption on the Kubernetes reference data plane (its scale controller and bill
    are the model's own); the activity meter is fed from each request's completion."""

    def _complete(self, req: _Req, te: float) -> None:
        self._done.append((req.start, te, req.pid))
        super()._complete(req, te)

    def flush(self) -> None:
        done = getattr(self, "_done", [])
        if done:
            s, e, p = (np.array(c) for c in zip(*done, strict=True))
            self.meter.add(s, e, p.astype(np.int64))
            done.clear()
        super().flush()

    def start(self) -> None:
        self._done: list[tuple[float, float, int]] = []
        super().start()


class ReferenceLambdaManaged(LambdaManagedModel, ReferenceKubernetes):
    """Lambda Managed Instances on the Kubernetes reference data plane (throttles: queue 0)."""


class _ReferenceServerless:
    """Serverless containers per request: the Kubernetes reference's request processes, with
    each instance's busy periods (what request-based billing meters) taken from the requests'
    own start and completion events instead of the rows the kernel flushes."""

    def __init__(self, spec: Any, ctx: RunContext) -> None:
        super().__init__(spec, ctx)  # type: ignore[call-arg]
        self._ref_busy: list[tuple[float, float, int]] = []

    def _complete(self, req: _Req, te: float) -> None:
        self._ref_busy.append((req.start, te, req.pid))
        super()._complete(req, te)  # type: ignore[misc]

    def _raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self._ref_busy:
            e = np.empty(0)
            return e, e, np.empty(0, dtype=np.int64)
        s, e, k = (np.asarray(c) for c in zip(*self._ref_busy, strict=True))
        return s.astype(float), e.astype(float), k.astype(np.int64)


class ReferenceCloudRun(_ReferenceServerless, ReferenceKubernetes, CloudRunModel):
    """Cloud Run: its autoscaler and pending limit (shared), requests as processes."""


class ReferenceContainerApps(_ReferenceServerless, ReferenceKubernetes, ContainerAppsModel):
    """Container Apps: KEDA (shared), requests as processes."""


class ReferenceKnative(ReferenceKubernetes, KnativeModel):
    """Knative: the Kubernetes reference's request processes under the KPA control loop (shared
    with the kernel, KnativeModel). The kernel tells the control plane of an arrival it asked
    for (`wake_on_arrival`) once the arrival is placed; here the request's process does, before
    it first waits."""

    def _request(self, t: float, s: float) -> Generator:
        proxied = self.activator and self.ep
        inner = self._proxied(t, s) if proxied else ReferenceKubernetes._request(self, t, s)
        ev = next(inner, None)  # placed: started, queued or rejected
        if self.wake_on_arrival:
            self.wake_on_arrival = False
            self._on_arrival()
        while ev is not None:
            value = yield ev
            try:
                ev = inner.send(value)
            except StopIteration:
                return

    def _proxied(self, t: float, s: float) -> Generator:
        """The activator in the path with ready pods: a free slot if nothing waits in it (the
        throttler's pick), else its FIFO; a freed slot of a ready pod takes its head."""
        self.n_arrivals += 1
        self.arrivals_in_step += 1
        over = self.ov_const if self.ov_const is not None else self.ov_draw.next()
        req = _Req(t, s, over, _DataEvent(self.env))
        pid = -1 if self.queue else self._act_pick()
        if pid >= 0:
            self.inflight[pid] += 1
            self._serve(req, pid, t)
        else:
            if self.qlimit is not None and len(self.queue) >= self.qlimit:
                self._reject(t, over)
                return
            req.cold = False
            self._enqueue(req, self.queue)
            yield req.ev
            if req.pid < 0:
                return
        yield from self._served(req)

    def _dispatch_held(self, now: float) -> None:
        """The activator sends what it holds to free slots (the throttler's pick), in order."""
        while self.queue:
            pid = self._act_pick()
            if pid < 0:
                return
            self.inflight[pid] += 1
            self._hand_off(self.queue[0], pid, now)


REFERENCE_MODELS: dict[str, type] = {
    "lambda": ReferenceLambda,
    "wasm": ReferenceWasm,
    "kubernetes": ReferenceKubernetes,
    "azure_flex": ReferenceAzureFlex,
    "lambda_managed": ReferenceLambdaManaged,
    "cloud_run": ReferenceCloudRun,
    "container_apps": ReferenceContainerApps,
    "knative": ReferenceKnative,
}


def run_reference(
    scenario: Scenario, platform_name: str, replication: int, base_dir: Path
) -> PlatformRun:
    """Like sim.engine.run_one (same seeds, streams and accounting), with the per-request models,
    keeping every request row."""
    return run_one(
        scenario, platform_name, replication, base_dir, models=REFERENCE_MODELS, keep_all_rows=True
    )


# --- AWS Fargate (issue 19 item 1): the Fargate control plane on the per-request data plane ------

from sim.platforms.fargate import FargateModel  # noqa: E402


class ReferenceFargate(FargateModel, ReferenceKubernetes):
    """FargateModel's scaling, Spot and bill over ReferenceKubernetes's request processes; the
    one hook touching requests (a Spot kill: the requests queued at the task) is rewritten."""

    def _kill(self, pid: int) -> None:
        spot = self.fargate.spot
        if self.state[pid] != DRAINING or not self.pp or spot is None:
            return
        now = self.env.now
        for req in list(self.pod_queue[pid]):
            if spot.queued == "retry":  # to the held queue, in arrival order, same deadline
                req.queue.remove(req)
                req.queue = self.queue
                j = len([r for r in self.queue if r.a <= req.a])
                self.queue.insert(j, req)
                self.n_retried += 1
                continue
            self._dequeue(req)
            self.dequeued_wait += now - req.a
            self.n_dropped += 1
            _log(self.log, req.a, now, now, now - req.a, 0.0, 0.0, req.over, req.cold,
                 REJECTED, -1)  # fmt: skip
            _at_abs(self.env, now, _HANDOFF).callbacks.append(
                lambda _ev, req=req: req.ev.succeed()  # type: ignore[misc]
            )
        if self.queue and self.ep:
            self._dispatch_held(now)


REFERENCE_MODELS["fargate"] = ReferenceFargate


# --- systems (issue 17) ---------------------------------------------------------------------------
class _RefSqs:
    """An SQS queue the textbook way (AWS SQS Developer Guide): visible messages oldest first; a
    receive counts, hides a message and gives it a new receipt; a SimPy process per receive ends
    its visibility timeout: each message of it not deleted meanwhile is visible again (even while
    its consumer still runs it: a duplicate when received again) or, received maxReceiveCount
    times, in the DLQ; a delete with an old receipt deletes nothing. Consumed by a Lambda event
    source mapping (batches of up to BatchSize, the batching window from the oldest visible
    message, a scaler process: 5 concurrent batches, +5 a second while messages wait, at most
    min(MaximumConcurrency, 1,000, the function's limit): AWS services-sqs-scaling.html,
    services-sqs-parameters.html; ReportBatchItemFailures: only the failed messages stay) or by
    pod workers (one message per free pod slot at once: long polling)."""

    def __init__(self, ref: ReferenceSystem, spec: Any, consumer: Station) -> None:
        self.ref, self.spec, self.st, self.name = ref, spec, consumer, spec.name
        # [plan, root, sent, visible since, receives, group, send number]; its state apart
        self.visible: deque[list[Any]] = deque()
        self.fifo = spec.fifo
        self.rbif = "ReportBatchItemFailures" in spec.function_response_types
        self.out: dict[int, int] = {}  # FIFO: messages in flight per group
        self.hidden: set[int] = set()  # send numbers of messages received and not visible again
        self.gone: set[int] = set()  # send numbers of messages deleted or moved to the DLQ
        self.running: dict[int, int] = {}  # send number -> consumers processing it now
        self.inflight = 0  # received and not deleted, or waiting out the visibility timeout
        self.sent = self.received = self.deleted = self.dlq = self.batches = 0
        self.duplicates = self.stale_deletes = self.messages_cut = 0
        self.send_throttled = self.deduplicated = 0
        self.per_second: dict[int, int] = {}  # FIFO: SendMessage calls per one-second window
        self.accepted: dict[int, tuple[float, Any]] = {}  # FIFO: id(plan step) -> accepted at
        self.waits: list[float] = []
        self.rows: dict[str, list[float]] = {"time_s": [], "depth": [], "in_flight": []}
        self.rows["oldest_s"] = []
        self.esm = consumer.kind == "lambda"
        most = spec.maximum_concurrency or ESM_MAX_BATCHES
        self.ceiling = min(most, ESM_MAX_BATCHES, getattr(consumer, "limit", ESM_MAX_BATCHES))
        # concurrent batches allowed now (FIFO: the ceiling; the free groups limit it)
        self.pollers = self.ceiling if self.fifo else min(ESM_START_BATCHES, self.ceiling)
        self.batches_running = 0  # batches being processed
        self.scaler: simpy.Process | None = None
        self.window: simpy.Process | None = None

    def start(self) -> None:
        pass

    def kick(self, _now: float) -> None:  # the heap engine's name (SystemModel.pods_changed)
        self.deliver()

    def admit(self, step: Any) -> str:
        """A FIFO SendMessage: "throttled" past the quota of its one-second window, "duplicate"
        when this publish (the same plan step) was accepted within the 5-minute interval."""
        if not self.fifo:
            return "send"
        now = self.ref.env.now
        quota = self.spec.sends_per_second
        if quota is not None:
            second = math.floor(now)
            if self.per_second.get(second, 0) >= quota:
                self.send_throttled += 1
                return "throttled"
            self.per_second[second] = self.per_second.get(second, 0) + 1
        if self.spec.deduplication:
            first = self.accepted.get(id(step))
            if first is not None and now - first[0] < FIFO_DEDUP_INTERVAL_S:
                self.deduplicated += 1
                return "duplicate"
            self.accepted[id(step)] = (now, step)
        return "send"

    def send(self, msg: list[Any]) -> None:
        self.visible.append(msg)
        self.deliver()

    def deliver(self) -> None:
        """Hand visible messages to the consumer as far as it takes them now."""
        ref, vis = self.ref, self.visible
        now = ref.env.now
        if self.fifo:
            self._deliver_fifo()
            return
        if not self.esm:
            while vis:
                slot = ref.take_slot(self.st)
                if slot is None:
                    return
                self._receive([vis.popleft()], slot)
            return
        size, wait = self.spec.batch_size, self.spec.batching_window
        while vis and self.batches_running < self.pollers:
            if wait > 0 and len(vis) < size and now + 1e-9 < vis[0][3] + wait:
                if self.window is None:  # a short batch waits out the window
                    self.window = ref.env.process(self._window(vis[0][3] + wait))
                break
            self.batches_running += 1
            self._receive([vis.popleft() for _ in range(min(size, len(vis)))], None)
        # ticking at the ceiling too: the tick that finds the queue empty scales back to 5
        if (
            vis
            and (self.pollers < self.ceiling or self.pollers > ESM_START_BATCHES)
            and (self.scaler is None)
        ):
            self.scaler = ref.env.process(self._scale())

    def _fifo_batch(self, size: int) -> list[list[Any]]:
        """SQS FIFO: messages of groups with nothing in flight; as many of one group as
        possible, the group of the oldest such message first; kept in queue order."""
        free = [m for m in self.visible if not self.out.get(m[5])]
        chosen: list[list[Any]] = []
        for g in dict.fromkeys(m[5] for m in free):
            chosen += [m for m in free if m[5] == g][: size - len(chosen)]
            if len(chosen) == size:
                break
        ids = {m[6] for m in chosen}
        self.visible = deque(m for m in self.visible if m[6] not in ids)
        for m in chosen:
            self.out[m[5]] = self.out.get(m[5], 0) + 1
        return [m for m in free if m[6] in ids]

    def _deliver_fifo(self) -> None:
        ref = self.ref
        if not self.esm:
            while self.visible and ref.has_slot(self.st):
                batch = self._fifo_batch(1)  # one message per free pod slot
                if not batch:
                    return
                self._receive(batch, ref.take_slot(self.st))
            return
        while self.visible and self.batches_running < self.pollers:
            batch = self._fifo_batch(self.spec.batch_size)
            if not batch:
                return
            self.batches_running += 1
            self._receive(batch, None)

    def _window(self, due: float) -> Generator[Any, Any, Any]:
        yield self.ref.env.timeout(due - self.ref.env.now)
        self.window = None
        self.deliver()

    def _scale(self) -> Generator[Any, Any, Any]:
        yield self.ref.env.timeout(1.0)
        self.scaler = None
        if self.visible:  # still waiting: 300 more a minute
            self.pollers = min(self.ceiling, self.pollers + ESM_SCALE_UP_PER_MINUTE // 60)
            self.deliver()
        else:
            self.pollers = min(self.ceiling, max(ESM_START_BATCHES, self.batches_running))

    def _receive(self, batch: list[list[Any]], slot: Any) -> None:
        ref = self.ref
        now = ref.env.now
        receipts = []
        for m in batch:
            m[4] += 1
            receipts.append(m[4])
            self.hidden.add(m[6])
            if self.running.get(m[6], 0) > 0:
                self.duplicates += 1
            self.running[m[6]] = self.running.get(m[6], 0) + 1
            self.received += 1
            if m[2] >= ref.warmup:
                self.waits.append(now - m[2])
        self.inflight += len(batch)
        self.batches += 1
        ref.env.process(self._visibility(batch, receipts))
        if slot is None:  # the event source mapping invokes the function now
            got = self.st.acquire(None, now)
            if isinstance(got, int):  # throttled: back after the visibility timeout
                self.settle(batch, [False] * len(batch), receipts)
                return
            slot = ("esm", got)
        ref.env.process(ref._batch_ref(self, batch, receipts, slot))

    def _visibility(self, batch: list[list[Any]], receipts: list[int]) -> Generator[Any, Any, Any]:
        """The receive's visibility timeout: what it hid and nobody deleted comes back."""
        env = self.ref.env
        yield env.timeout(self.spec.visibility_timeout)
        self.ref.now = env.now
        most = self.spec.max_receive_count
        back = False
        for m, r in zip(batch, receipts, strict=True):
            if m[6] in self.gone or m[6] not in self.hidden or m[4] != r:
                continue
            self.hidden.discard(m[6])
            self.inflight -= 1
            if self.fifo:
                self.out[m[5]] -= 1
            if most is not None and m[4] >= most:
                self.gone.add(m[6])
                self.dlq += 1
                self.ref.task_done(m[1], env.now)
                continue
            m[3] = env.now
            back = True
            if self.fifo:  # back in send order
                self.visible = deque(sorted([*self.visible, m], key=lambda x: x[6]))
            else:
                self.visible.append(m)
        if back:
            self.deliver()

    def settle(self, batch: list[list[Any]], oks: list[bool], receipts: list[int]) -> None:
        """Delete each message that succeeded if this receive's receipt is its latest; the
        others wait for their visibility timeout."""
        ref = self.ref
        now = ref.env.now
        if self.esm:
            self.batches_running -= 1
        for m, ok, r in zip(batch, oks, receipts, strict=True):
            self.running[m[6]] -= 1
            if not ok:
                continue
            if m[6] in self.gone or m[4] != r:
                self.stale_deletes += 1
                continue
            if m[6] in self.hidden:
                self.hidden.discard(m[6])
                self.inflight -= 1
                if self.fifo:
                    self.out[m[5]] -= 1
            else:  # visible again and not received since: this receipt is still the latest
                self.visible = deque(x for x in self.visible if x is not m)
            self.gone.add(m[6])
            self.deleted += 1
            ref.task_done(m[1], now)
        self.deliver()

    def backlog(self) -> int:
        return len(self.visible)

    def sample(self, now: float) -> None:
        r, vis = self.rows, self.visible
        r["time_s"].append(now)
        r["depth"].append(float(len(vis)))
        r["in_flight"].append(float(self.inflight))
        r["oldest_s"].append(now - vis[0][2] if vis else 0.0)

    def bill(self, window_s: float, month_s: float | None) -> Any:
        return sqs.queue_bill(self, window_s, month_s)

    def stats(self, bill: Any) -> dict[str, Any]:
        return sqs.queue_stats(self, bill)


class _RefKafka:
    """A Kafka topic and its consumer group the textbook way: a deque per partition (offset
    order), committed and latest offsets, group members (the event source mapping's pollers, or
    the consumer's ready pods) holding range-assigned partitions; a member fetches from a
    partition only when nothing of it is in flight and no rebalance pause runs (a SimPy process
    ends the pause); each fetched batch is a SimPy process that invokes the function (or takes a
    pod slot), runs its records in turn, and is retried whole until it succeeds or its retries
    are used up; Lambda's poller count is re-evaluated by a process every minute. Shared with the
    heap engine: the partitioner, the range assignor, the poller rule and KEDA's lag arithmetic
    (sim.systems.kafka), and the reporting."""

    def __init__(self, ref: ReferenceSystem, spec: Any, consumer: Station, common: Any) -> None:
        self.ref, self.spec, self.st, self.name = ref, spec, consumer, spec.name
        n = spec.partitions
        self.parts: list[deque[list[Any]]] = [deque() for _ in range(n)]
        self.inflight_p = [0] * n
        self.latest = [0] * n
        self.committed = [0] * n
        self.keda_prev: dict[int, int] = {}
        self.next_rr = 0
        self.key_draws = _Uniforms(substream(common, 600 + name_key(spec.name)))
        self.esm = consumer.kind == "lambda"
        self.pollers = KAFKA_ESM_START_POLLERS
        # member i: [its partitions, its batches in flight, killed (until its session ends)]
        self.group: list[list[Any]] = []
        self.dead = 0
        self.paused_until = 0.0
        self.rebalances = self.members_peak = 0
        self.lag_at_last_look = 0
        self.windows: dict[int, simpy.Process] = {}  # a partition's short batch waiting
        self.sent = self.received = self.deleted = self.dlq = self.batches = 0
        self.messages_cut = 0
        self.waits: list[float] = []
        self.trace: list[tuple[int, int, int, float, float]] = []
        self.rows = kafka.new_rows()
        self._regroup(initial=True)

    @property
    def members(self) -> list[list[Any]]:
        return self.group

    def _size(self) -> int:
        return min(self.pollers, len(self.parts)) if self.esm else int(self.st.pods) + self.dead

    def _regroup(self, initial: bool = False) -> None:
        n = self._size()
        if n == len(self.group):
            return
        if n > len(self.group):
            self.group += [[[], 0, False] for _ in range(n - len(self.group))]
        else:  # the newest live members leave; killed ones wait for their session's end
            leaving = [m for m in self.group if not m[2]][n - len(self.group) :]
            self.group = [m for m in self.group if not any(m is x for x in leaving)]
        self._assign(initial)

    def _assign(self, initial: bool = False) -> None:
        n = len(self.group)
        assigned = kafka.range_assignment(len(self.parts), n)
        for member, owned in zip(self.group, assigned, strict=True):
            member[0] = owned
        self.members_peak = max(self.members_peak, n)
        if initial:
            return
        self.rebalances += 1
        env = self.ref.env
        self.paused_until = env.now + self.spec.rebalance_pause
        if self.spec.rebalance_pause > 0:
            env.process(self._pause(self.spec.rebalance_pause))

    def _pause(self, pause: float) -> Generator[Any, Any, Any]:
        # after the sampler and control loops at that time, as a heap event (their advance(t)
        # stops before t)
        env = self.ref.env
        if env.now + pause >= self.ref.end:  # the heap engine stops before the end's events
            return
        yield _at_abs(env, env.now + pause, _ARRIVAL_PRIORITY)
        self.ref.now = self.ref.env.now
        self.deliver()

    def kill(self, k: int, now: float) -> None:
        """k member pods killed: the newest k live members stay in the group, fetching nothing,
        until their session times out; then the group rebalances without them."""
        timeout = self.spec.session_timeout
        if timeout <= 0 or self.esm or k <= 0:
            return
        dead = [m for m in self.group if not m[2]][-k:]
        for m in dead:
            m[2] = True
        self.dead += len(dead)
        if now + timeout < self.ref.end:  # (the heap engine stops before the end's events)
            self.ref.env.process(self._session(dead, now + timeout))

    def _session(self, dead: list[list[Any]], until: float) -> Generator[Any, Any, Any]:
        yield _at_abs(self.ref.env, until, _ARRIVAL_PRIORITY)
        self.ref.now = self.ref.env.now
        self.group = [m for m in self.group if not any(m is d for d in dead)]
        self.dead -= len(dead)
        if self._size() != len(self.group):
            self._regroup()
        else:
            self._assign()
        self.deliver()

    def start(self) -> None:
        if self.esm:
            self.ref.env.process(self._scaler())

    def _scaler(self) -> Generator[Any, Any, Any]:
        env = self.ref.env
        while True:  # a control loop (NORMAL priority), as in the heap engine
            yield env.timeout(KAFKA_ESM_EVALUATION_S)
            self.ref.now = env.now
            lag = sum(a - c for a, c in zip(self.latest, self.committed, strict=True))
            before = self.pollers
            self.pollers = kafka.esm_pollers(before, lag, self.lag_at_last_look, len(self.parts))
            if self.pollers != before:
                why = f"offset lag {self.lag_at_last_look} -> {lag}"
                self.ref.ctx.decide(f"{self.name}:esm_pollers", before, self.pollers, why)
            self.lag_at_last_look = lag
            self._regroup()
            self.deliver()

    def send(self, msg: list[Any]) -> None:
        n = len(self.parts)
        if self.spec.keys is None:
            p, self.next_rr = self.next_rr, (self.next_rr + 1) % n
        else:
            k = min(int(self.key_draws.next() * self.spec.keys), self.spec.keys - 1)
            p = kafka.key_partition(k, n)
        msg[5:] = [p, self.latest[p]]  # partition and offset (in place of SQS's FIFO fields)
        self.latest[p] += 1
        self.parts[p].append(msg)
        self.deliver()

    def kick(self, _now: float) -> None:  # the heap engine's name (SystemModel.pods_changed)
        self.deliver()

    def deliver(self) -> None:
        ref = self.ref
        now = ref.env.now
        if not self.esm and self._size() != len(self.group):
            self._regroup()
        if now + 1e-9 < self.paused_until:
            return
        cap = 1 << 30 if self.esm else int(self.st.conc)
        size, wait = self.spec.batch_size, self.spec.batching_window
        for i, member in enumerate(self.group):
            while member[1] < cap and not member[2]:
                ready = [p for p in member[0] if self.parts[p] and not self.inflight_p[p]]
                if not ready:
                    break
                p = min(ready, key=lambda j: (self.parts[j][0][2], j))
                part = self.parts[p]
                if self.esm:
                    if wait > 0 and len(part) < size and now + 1e-9 < part[0][2] + wait:
                        if p not in self.windows:
                            self.windows[p] = ref.env.process(self._window(p, part[0][2] + wait))
                        break
                    batch = [part.popleft() for _ in range(min(size, len(part)))]
                    slot = None
                else:
                    slot = ref.take_slot(self.st)
                    if slot is None:
                        return
                    batch = [part.popleft()]
                member[1] += 1
                self.inflight_p[p] = len(batch)
                for r in batch:
                    self.received += 1
                    if r[4] == 0 and r[2] >= ref.warmup:
                        self.waits.append(now - r[2])
                    r[4] += 1
                self.batches += 1
                ref.env.process(ref._kafka_ref(self, member, i, p, batch, slot))

    def _window(self, p: int, due: float) -> Generator[Any, Any, Any]:
        yield self.ref.env.timeout(due - self.ref.env.now)
        self.ref.now = self.ref.env.now
        del self.windows[p]
        self.deliver()

    def done(
        self, member: list[Any], i: int, p: int, batch: list[list[Any]], ok: bool, fetched: float
    ) -> bool:
        """Commit the batch's offsets (processed, or discarded after its last retry): True; or
        count another attempt: False."""
        ref = self.ref
        most = self.spec.maximum_retry_attempts
        if not ok and (most is None or batch[0][4] - 1 < most):
            for r in batch:
                r[4] += 1
            self.received += len(batch)
            self.batches += 1
            return False
        now = ref.env.now
        for r in batch:
            if ok:
                self.deleted += 1
            else:
                self.dlq += 1
            ref.task_done(r[1], now)
            if kafka.KafkaTopic.keep_trace:
                self.trace.append((p, r[6], i, fetched, now))
        self.committed[p] += len(batch)
        self.inflight_p[p] = 0
        member[1] -= 1
        self.deliver()
        return True

    def cut(self, member: list[Any], p: int, batch: list[list[Any]]) -> None:
        """Its consumer killed before the commit: the records wait again at the head of the
        partition, read again from the committed offset by its next owner."""
        self.parts[p] = deque([*batch, *self.parts[p]])
        self.inflight_p[p] = 0
        member[1] -= 1
        self.messages_cut += len(batch)
        self.deliver()

    def backlog(self) -> int:
        return sum(len(q) for q in self.parts)

    def keda_metric(self, md: Any) -> float:
        lags = [a - c for a, c in zip(self.latest, self.committed, strict=True)]
        return kafka.keda_lag(lags, self.committed, self.keda_prev, md)

    def sample(self, now: float) -> None:
        kafka.sample_topic(self, now)

    def bill(self, window_s: float, month_s: float | None) -> Any:
        return kafka.topic_bill(self, window_s, month_s)

    def stats(self, bill: Any) -> dict[str, Any]:
        return kafka.topic_stats(self, bill)


_DATA_PRIORITY = 1.5  # a system's data-plane events: after the control loops at an instant


def _data_after_control(env: simpy.Environment, control: set[Any]) -> None:
    """Schedule a system reference's data-plane events after the control plane's at the same
    instant, as the heap engine orders them (its driver runs the data plane up to, not
    including, the time of the next SimPy event: the control loops and the timeline sampler at
    t see the state before t's data events). The control plane waits on Timeouts of its own
    processes (`every` loops, the sampler, the node pool's timers: code outside this module,
    and the `control` code objects); every other NORMAL event (a request's timer, a process
    ending, a condition, a slot handed on, also from control code) is data. Among data
    events, and among control events, the order stays SimPy's (time, eid)."""
    schedule = env.schedule
    here = __file__

    def ordered(event: simpy.Event, priority: Any = simpy.events.NORMAL, delay: float = 0) -> None:
        if priority == simpy.events.NORMAL:
            proc = env.active_process
            code = proc._generator.gi_code if proc is not None else None
            if not (
                type(event) is simpy.Timeout
                and code is not None
                and (code.co_filename != here or code in control)
            ):
                priority = _DATA_PRIORITY
        schedule(event, priority, delay)

    env.schedule = ordered  # type: ignore[method-assign]


class _RefPodRun:
    """A request's handler on a spot pod in the reference: its process, and the event a kill
    of the pod fires (SpotPodStation.abandon calls `cut`)."""

    def __init__(self, env: simpy.Environment, request: bool) -> None:
        self.proc: Any = None
        self.killed = env.event()
        self.work_end = 0.0
        self.request = request  # a request's handler (False: a queue consumer's batch)

    def cut(self, now: float) -> None:
        self.killed.succeed()
        if self.proc.is_alive:
            self.proc.interrupt()


class ReferenceSystem(SystemModel):
    """A system with one SimPy process per request at a service, per call, per event and per
    queue batch: the textbook way, against sim.systems.engine's single heap of generators.

    Shared with the heap engine: the per-request plans (the common random numbers, like the
    workload's chunks), the Lambda stations' environment pools (cold start, keep-alive, limits),
    a KEDA-scaled station's pod slots and its KedaAutoscaler (the decision arithmetic) and the
    bills. Written here: arrivals, waiting for a pod slot of a fixed Deployment (a simpy.Resource
    per FIFO: one for ideal_fifo, one per pod for round_robin/random, queue_limit), work,
    synchronous calls with their client timeouts (`visit | timeout`), retries and backoff,
    fan-outs (`all_of`), events to services, and SQS queues with their consumers (_RefSqs).
    """

    drives_itself = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        for st in self.stations:  # the heap engine's queues registered themselves: not here
            st.on_free.clear()
        common = args[3]
        self.queues = [
            _RefKafka(self, q.spec, q.st, common)
            if q.spec.type == "kafka"
            else _RefSqs(self, q.spec, q.st)
            for q in self.queues
        ]
        self.pod_runs: dict[Any, _RefPodRun] = {}  # spot pods' handlers, by their process
        _data_after_control(self.env, {_RefKafka._scaler.__code__})
        self.consumers: dict[int, list[_RefSqs]] = {}
        for q in self.queues:
            self.consumers.setdefault(q.st.index, []).append(q)
            if isinstance(q.st, PodStation):
                q.st.source = q
                q.st.on_free.append(lambda _now, q=q: q.deliver())  # type: ignore[misc]

    def start(self) -> None:
        super().start()  # KEDA's polls and HPA syncs
        env = self.env
        self.slots: dict[int, list[simpy.Resource]] = {}
        for st in self.stations:
            if isinstance(st, PodStation) and not st.autoscaled:
                fifos = 1 if st.shared else st.pods
                per = st.pods * st.conc if st.shared else st.conc
                self.slots[st.index] = [
                    simpy.Resource(env, capacity=max(1, per)) for _ in range(fifos)
                ]
        env.process(self._source())

    def advance(self, until: float) -> None:  # requests drive themselves
        self.now = self.env.now

    def at(self, t: float, fn: Any, arg: Any) -> None:  # a KEDA pod getting ready
        self.env.process(self._later(t, fn, arg))

    def _later(self, t: float, fn: Any, arg: Any) -> Generator[Any, Any, Any]:
        yield self.env.timeout(max(0.0, t - self.env.now))
        self.now = self.env.now
        fn(arg)

    def resume_at(self, t: float, proc: Any, value: Any) -> None:  # a KEDA station's queue
        proc.succeed(value)

    def has_slot(self, st: Station) -> bool:
        if st.index not in self.slots:
            return st.free_slot()
        return any(res.count < res.capacity for res in self.slots[st.index])

    def take_slot(self, st: Station) -> Any:
        """A free pod slot for a queue worker now, or None."""
        if st.index not in self.slots:  # KEDA: the station's own slots
            return st.take_free() if st.free_slot() else None
        for res in self.slots[st.index]:
            if res.count < res.capacity:
                return res, res.request()  # granted at once
        return None

    def _freed(self, st: Station, slot: Any) -> None:
        if isinstance(slot, tuple):
            slot[0].release(slot[1])
            for q in self.consumers.get(st.index, ()):
                q.deliver()
        else:
            st.release(slot, self.env.now)

    def _source(self) -> Generator[Any, Any, Any]:
        env = self.env
        for chunk in self.chunks:
            for t in chunk.arrival.tolist():
                yield env.timeout(t - env.now)
                env.process(self._entry(t))

    def _entry(self, t: float) -> Generator[Any, Any, Any]:
        self.now = t
        i = self.entry_service()
        self.task_count = 0
        plan = self.plan(i)
        root = Root(t)
        over = self.stations[i].overhead()
        outcome, start, wait, startup, cold = yield self.env.process(self._visit_ref(plan, root))
        end = self.env.now
        _log(self.log, t, start, end, wait, startup, end - start, over, cold, outcome, 0)
        root.sync_done = True
        if root.pending == 0 and root.arrival >= self.warmup:
            self.completions.append(end - root.arrival)

    def _pod_slot(self, st: PodStation) -> Generator[Any, Any, Any]:
        """A fixed Deployment's slot: (resource, request), or an outcome when refused."""
        fifos = self.slots[st.index]
        if st.shared:
            p = 0
        elif st.random:
            p = min(int(st.pick.next() * st.pods), st.pods - 1)
        else:
            p, st.rr = st.rr, (st.rr + 1) % st.pods
        res = fifos[p]
        if res.count >= res.capacity and len(res.queue) >= st.limit:
            st.rejected += 1
            return REJECTED
        req = res.request()
        yield req
        return res, req

    def _visit_ref(self, plan: tuple, root: Root) -> Generator[Any, Any, Any]:
        env = self.env
        st = self.stations[plan[0]]
        if isinstance(st, SpotPodStation):
            return (yield from self._spot_visit_ref(st, plan, root))
        st.calls_in += 1
        arrival = env.now
        self.now = env.now
        if isinstance(st, PodStation) and st.index in self.slots:
            got = yield from self._pod_slot(st)
            if not isinstance(got, int):
                got = (got, 0.0, False)
        else:
            handed = env.event()  # queued at a KEDA station: its release hands the slot on
            got = st.acquire(handed, env.now)
            if got is None:
                got = yield handed
        self.now = env.now
        if isinstance(got, int):  # refused on arrival, or after waiting (Cloud Run's 429)
            now = env.now
            self._row(st, arrival, now, now, now - arrival, 0.0, False, got, 0)
            return got, now, now - arrival, 0.0, False
        slot, startup, cold = got
        start = env.now
        if startup > 0:
            yield env.timeout(startup)
        ran_from = env.now
        if isinstance(st, LambdaStation):  # the function timeout (None: it ended the run)
            outcome = yield from self._timed_ref(st, self._steps_ref(plan, st, root))
        elif st.response_limit is not None:  # a response limit from arrival: `handler | limit`
            run = env.process(self._steps_ref(plan, st, root))
            until = max(arrival + st.response_limit, env.now)
            fired = yield run | env.timeout(until - env.now)
            if run not in fired:  # TIMED_OUT now; the handler runs on, then frees its slot
                env.process(self._run_on_ref(run, st, slot))
                st.timeouts += 1
                self.now = now = env.now
                inst = 0 if isinstance(slot, tuple) else slot
                wait = start - arrival
                self._row(st, arrival, ran_from, now, wait, startup, cold, TIMED_OUT, inst)
                return TIMED_OUT, ran_from, wait, startup, cold
            outcome = fired[run]
        else:
            outcome = yield from self._steps_ref(plan, st, root)
        self.now = env.now
        # a handler that got its answers may still fail (one draw per such run)
        rate = st.svc.error_rate
        if outcome == OK and rate > 0 and self.fail[plan[0]].next() < rate:
            outcome = REJECTED
        end = env.now
        if isinstance(st, LambdaStation):
            st.bill_invocation(end - ran_from)
        if outcome is None:
            outcome = TIMED_OUT
            st.discard(slot, end)
        else:
            self._freed(st, slot)
        inst = 0 if isinstance(slot, tuple) else slot
        self._row(st, arrival, ran_from, end, start - arrival, startup, cold, outcome, inst)
        return outcome, ran_from, start - arrival, startup, cold

    def _run_on_ref(self, run: Any, st: Any, slot: Any) -> Generator[Any, Any, Any]:
        """A handler past its station's response limit: its slot back at its end."""
        yield run
        self.now = self.env.now
        self._freed(st, slot)

    def _spot_visit_ref(
        self, st: SpotPodStation, plan: tuple, root: Root
    ) -> Generator[Any, Any, Any]:
        """A request at a pod station on spot nodes: the handler as a process of its own
        (`handler | killed`); a spot kill interrupts it (its calls stop retrying) and the visit
        fails at the kill or, with `in_flight: retry`, waits for a slot again."""
        env = self.env
        st.calls_in += 1
        arrival = env.now
        again = False  # sent again after a kill: held while no pod is ready
        cold = None  # the first slot's (kept by a request sent again)
        while True:
            self.now = env.now
            handed = env.event()
            got = st.acquire(handed, env.now, again)
            if got is None:
                got = yield handed
            self.now = env.now
            if isinstance(got, int):
                self._row(st, arrival, env.now, env.now, env.now - arrival, 0.0, False, got, 0)
                return got, env.now, env.now - arrival, 0.0, False
            slot = got[0]
            if cold is None:
                cold = got[2]
            start = env.now
            outcome = yield from self._on_pod_ref(st, slot, self._steps_ref(plan, st, root))
            if outcome != KILLED:
                break
            if not st.retry:
                end = env.now
                self._row(st, arrival, start, end, start - arrival, 0.0, cold, REJECTED, slot)
                return REJECTED, start, start - arrival, 0.0, cold
            again = True
        rate = st.svc.error_rate
        if outcome == OK and rate > 0 and self.fail[plan[0]].next() < rate:
            outcome = REJECTED
        end = env.now
        st.release(slot, end)
        self._row(st, arrival, start, end, start - arrival, 0.0, cold, outcome, slot)
        return outcome, start, start - arrival, 0.0, cold

    def _on_pod_ref(
        self, st: SpotPodStation, slot: int, body: Generator
    ) -> Generator[Any, Any, Any]:
        """A request's handler on spot pod `slot` as a process of its own, `handler | killed`:
        its outcome, or KILLED when a kill of the pod interrupted it (or the pod was gone)."""
        env = self.env
        run = _RefPodRun(env, True)
        outcome = KILLED
        if st.enter(slot, run):
            run.proc = env.process(self._guarded(body))
            self.pod_runs[run.proc] = run
            fired = yield run.proc | run.killed
            del self.pod_runs[run.proc]
            st.leave(slot, run)
            if run.killed not in fired:
                outcome = fired[run.proc]
        self.now = env.now
        return outcome

    def _batch_on_pod_ref(
        self, st: SpotPodStation, slot: int, body: Generator[Any, Any, Any]
    ) -> Generator[Any, Any, Any]:
        """A queue consumer's batch on spot pod `slot`, inline in the batch's process (so that
        it ends at the event of its last step, as the heap engine's child does): a kill
        interrupts that process, which goes on one event later (the heap engine resumes it after
        the kill's instant's queued events). Its outcome, or KILLED."""
        env = self.env
        run = _RefPodRun(env, False)
        if not st.enter(slot, run):
            return KILLED
        run.proc = env.active_process
        self.pod_runs[run.proc] = run
        try:
            outcome = yield from body
        except simpy.Interrupt:
            outcome = KILLED
        del self.pod_runs[run.proc]
        st.leave(slot, run)
        if outcome == KILLED:
            yield env.timeout(0)
        self.now = env.now
        return outcome

    def running(self) -> Any:
        """The spot pod handler (_RefPodRun) of the process running now, if any."""
        return self.pod_runs.get(self.env.active_process)

    def _steps_ref(self, plan: tuple, st: Station, root: Root) -> Generator[Any, Any, Any]:
        env = self.env
        for step in plan[2]:
            kind = step[0]
            if kind == WORK:
                dt = step[1] * st.scale
                st.work_s += dt
                if st.kind == "wasm":  # Wasm bills CPU time (the handler's cpu-bound share)
                    st.cpu_s += dt * st.svc.cpu_bound
                elif st.metered:  # an autoscaled pod station's CPU meter
                    st.work(env.now, dt)
                if dt > 0:
                    yield env.timeout(dt)
            elif kind == CALL:
                call = env.process(self._call_ref(step[1], step[2], st, root))
                outcome = yield from self._wait_calls([call], call)
                if outcome != OK:
                    return outcome
            elif kind == PAR:
                calls = [env.process(self._call_ref(c, p, st, root)) for c, p in step[1]]
                done = yield from self._wait_calls(calls, env.all_of(calls))
                outcome = max(done[c] for c in calls)
                if outcome != OK:
                    return outcome
            elif kind == PUB_Q:  # SendMessage: the request goes on at once
                q = self.queues[step[1]]
                admit = q.admit(step) if isinstance(q, _RefSqs) else "send"
                if admit == "throttled":
                    return THROTTLED
                q.sent += 1
                st.pub_out[step[1]] += 1
                if admit == "duplicate":
                    continue
                root.pending += 1
                q.send([step[2], root, env.now, env.now, 0, step[3], q.sent])
            elif kind == PUB_S:
                root.pending += 1
                st.events_out[step[2][0]] += 1
                env.process(self._event_ref(step[2], root, st))
                yield env.timeout(0)  # the event is sent before this request goes on
            elif kind == PUB_B:  # PutEvents: one process per matched rule's delivery
                bus = self.buses[step[1]]
                st.bus_out[step[1]] += 1
                root.pending += len(step[2])
                lats = bus.put([h[0] for h in step[2]])
                ev = [env.now]  # this PutEvents entry: its event id
                for (k, plan, g), lat in zip(step[2], lats, strict=True):
                    env.process(self._bus_ref(step[1], k, plan, root, env.now, lat, g, ev))
        return OK

    def _bus_ref(
        self, b: int, k: int, plan: tuple, root: Root, put_t: float, lat: float, group: int,
        ev: list[float],
    ) -> Generator[Any, Any, Any]:  # fmt: skip
        """One rule's delivery of one event (sim.systems.eventbridge): after the latency, into
        the SQS queue, into Lambda's asynchronous queue, or to an API destination."""
        env = self.env
        yield env.timeout(lat)
        self.now = env.now
        bus = self.buses[b]
        is_q, j = self.bus_targets[b][k]
        if is_q:  # SendMessage; a FIFO queue's quota and deduplication, retried when throttled
            q = self.queues[j]
            for failures in itertools.count():
                admit = q.admit(ev) if isinstance(q, _RefSqs) else "send"
                check = {"send": 0, "duplicate": 1, "throttled": 2}[admit]
                sent = fifo_send(bus, q, check, k, failures, put_t, env.now, self.warmup)
                if not isinstance(sent, float):
                    break
                yield env.timeout(sent)
                self.now = env.now
            if sent == SEND:
                q.send([plan, root, env.now, env.now, 0, group, q.sent])
            else:
                self.task_done(root, env.now)
            return
        if self.stations[j].kind == "lambda":
            bus.done(k, put_t, env.now, self.warmup)
            yield from self._lambda_event_ref(plan, root)
        else:
            yield from self._api_destination_ref(bus, k, plan, root, put_t)
        self.task_done(root, env.now)

    def _lambda_event_ref(self, plan: tuple, root: Root) -> Generator[Any, Any, Any]:
        """Lambda's asynchronous invocation: the event waits in the function's queue for each
        retry (sim.systems.lambda_async: the schedule)."""
        env = self.env
        aq = self.stations[plan[0]].async_q
        aq.events += 1
        t0, tries = env.now, [0, 0]
        while True:
            outcome = (yield from self._visit_ref(plan, root))[0]
            self.now = env.now
            delay = aq.after(outcome, t0, env.now, tries)
            if delay is None:
                return outcome
            yield env.timeout(delay)
            self.now = env.now
            aq.waiting -= 1

    def _api_destination_ref(
        self, bus: Any, k: int, plan: tuple, root: Root, put_t: float
    ) -> Generator[Any, Any, Any]:
        """An API destination: requests paced to the rule's rate, each `visit | timeout`, retried
        with the rule's backoff until delivered or sent to the DLQ."""
        env = self.env
        dst = self.stations[plan[0]]
        failures = 0
        while True:
            start = bus.slot(k, env.now)
            if start > env.now:
                yield env.timeout(start - env.now)
            self.now = env.now
            bus.invocations += 1
            bus.inflight += 1
            visit = env.process(self._after(dst.overhead(), plan, root))
            timer = env.timeout(bus.spec.http_timeout)
            fired = yield visit | timer
            self.now = env.now
            if visit not in fired:
                dst.client_timeouts += 1
            outcome = fired[visit][0] if visit in fired else TIMED_OUT
            bus.inflight -= 1
            if outcome == OK:
                bus.done(k, put_t, env.now, self.warmup)
                return
            failures += 1
            delay = bus.retry(k, failures, put_t, env.now)
            if delay is None:
                return
            if delay > 0:
                yield env.timeout(delay)

    def _batch_ref(
        self, q: _RefSqs, batch: list[list[Any]], receipts: list[int], slot: Any
    ) -> Generator[Any, Any, Any]:
        """One receive: one Lambda invocation (or one pod worker) runs its messages in turn; the
        batch succeeds or fails as a whole, or per message with ReportBatchItemFailures (a FIFO
        handler stops at its first failure); a function timeout fails it whole."""
        env, st = self.env, q.st
        received = env.now
        self.now = env.now
        startup, cold = 0.0, False
        if isinstance(slot, tuple) and slot[0] == "esm":  # its environment (_RefSqs._receive)
            slot, startup, cold = slot[1]
            if startup > 0:
                yield env.timeout(startup)
        ran_from = env.now
        oks: list[bool] = []
        body = self._messages_ref(q, batch, oks)
        if isinstance(st, LambdaStation):
            outcome = yield from self._timed_ref(st, body)
        elif isinstance(st, SpotPodStation):  # killed with its pod: nothing deleted
            outcome = yield from self._batch_on_pod_ref(st, slot, body)
            if outcome == KILLED:
                st.calls_in += 1
                self._row(st, received, ran_from, env.now, 0.0, 0.0, False, REJECTED, slot)
                q.messages_cut += len(batch)
                q.settle(batch, [False] * len(batch), receipts)
                return
        else:
            outcome = yield from body
        end = env.now
        self.now = end
        if isinstance(st, LambdaStation):
            st.bill_invocation(end - ran_from)
        st.calls_in += 1
        inst = 0 if isinstance(slot, tuple) else slot
        if outcome is None:  # timed out: no response, every message stays
            st.discard(slot, end)
            self._row(st, received, ran_from, end, 0.0, startup, cold, TIMED_OUT, inst)
            q.settle(batch, [False] * len(batch), receipts)
            return
        if not q.rbif:
            oks = [all(oks)] * len(oks)
        code = OK if all(oks) else REJECTED
        self._row(st, received, ran_from, end, 0.0, startup, cold, code, inst)
        if q.esm:  # the function returned; the ESM deletes what succeeded
            self._freed(st, slot)
            q.settle(batch, oks, receipts)
        else:  # a worker deletes its message, then takes the next
            q.settle(batch, oks, receipts)
            self._freed(st, slot)

    def _messages_ref(
        self, q: _RefSqs, batch: list[list[Any]], oks: list[bool]
    ) -> Generator[Any, Any, Any]:
        st = q.st
        rate = st.svc.error_rate
        for m in batch:
            if q.fifo and q.rbif and False in oks:  # FIFO: the rest after a failure unprocessed
                oks.append(False)
                continue
            r = yield from self._steps_ref(m[0], st, m[1])
            self.now = self.env.now
            oks.append(r == OK and not (rate > 0 and self.fail[st.index].next() < rate))
        return OK

    def _timed_ref(self, st: LambdaStation, body: Generator) -> Generator[Any, Any, Any]:
        """A Lambda handler under the function timeout: `handler | timeout`; at the timeout the
        handler's process is interrupted (it stops its calls' retries); None: timed out."""
        env = self.env
        run = env.process(self._guarded(body))
        timer = env.timeout(st.timeout)
        fired = yield run | timer
        self.now = env.now
        if run in fired:
            return fired[run]
        if run.is_alive:  # (a handler ending at the very instant of the timeout has timed out)
            run.interrupt()
        return None

    def _guarded(self, body: Generator) -> Generator[Any, Any, Any]:
        try:
            return (yield from body)
        except simpy.Interrupt:
            return None

    def _kafka_ref(
        self, q: _RefKafka, member: list[Any], i: int, p: int, batch: list[list[Any]], slot: Any
    ) -> Generator[Any, Any, Any]:
        """One fetched Kafka batch: a Lambda invocation (throttled: invoked again after
        KAFKA_THROTTLE_RETRY_S) or a pod slot runs its records in turn; retried whole on failure
        until _RefKafka.done commits it."""
        env, st = self.env, q.st
        fetched = env.now
        rate = st.svc.error_rate
        while True:
            self.now = env.now
            startup, cold, env_id = 0.0, False, slot
            if slot is None:
                got = st.acquire(None, env.now)
                if isinstance(got, int):
                    yield env.timeout(kafka.KAFKA_THROTTLE_RETRY_S)
                    continue
                env_id, startup, cold = got
                if startup > 0:
                    yield env.timeout(startup)
            ran_from = env.now
            oks: list[bool] = []
            body = self._records_ref(st, batch, oks, rate)
            if slot is None:  # a Lambda invocation: under the function timeout
                done = yield from self._timed_ref(st, body)
            elif isinstance(st, SpotPodStation):  # killed with its pod: nothing committed
                done = yield from self._batch_on_pod_ref(st, slot, body)
                if done == KILLED:
                    st.calls_in += 1
                    self._row(st, fetched, ran_from, env.now, 0.0, 0.0, False, REJECTED, slot)
                    q.cut(member, p, batch)
                    return
            else:
                done = yield from body
            ok = done is not None and all(oks)
            end = env.now
            self.now = end
            if isinstance(st, LambdaStation):
                st.bill_invocation(end - ran_from)
            st.calls_in += 1
            if slot is None:
                if done is None:
                    st.discard(env_id, end)
                else:
                    self._freed(st, env_id)
            inst = 0 if isinstance(env_id, tuple) else env_id
            code = OK if ok else (REJECTED if done is not None else TIMED_OUT)
            self._row(st, fetched, ran_from, end, 0.0, startup, cold, code, inst)
            if q.done(member, i, p, batch, ok, fetched):
                if slot is not None:
                    self._freed(st, slot)
                return
            fetched = env.now

    def _wait_calls(self, calls: list[Any], ev: Any) -> Generator[Any, Any, Any]:
        """Wait for a call (or fan-out); a function timeout interrupting the caller interrupts
        them too (no more retries; attempts already at a callee run on there)."""
        try:
            return (yield ev)
        except simpy.Interrupt:
            for c in calls:
                if c.is_alive:
                    c.interrupt()
            raise

    def _records_ref(
        self, st: Any, batch: list[list[Any]], oks: list[bool], rate: float
    ) -> Generator[Any, Any, Any]:
        for r in batch:
            res = yield from self._steps_ref(r[0], st, r[1])
            self.now = self.env.now
            oks.append(not (res != OK or (rate > 0 and self.fail[st.index].next() < rate)))
        return OK

    def _call_ref(self, cs: Any, plan: tuple, src: Any, root: Root) -> Generator[Any, Any, Any]:
        try:
            return (yield from self._call_attempts(cs, plan, src, root))
        except simpy.Interrupt:
            return TIMED_OUT  # its caller timed out: nobody waits for this answer

    def _call_attempts(
        self, cs: Any, plan: tuple, src: Any, root: Root
    ) -> Generator[Any, Any, Any]:
        env = self.env
        dst = self.stations[plan[0]]
        outcome = OK
        for attempt in range(cs.retries + 1):
            if attempt:
                self.now = env.now
                cap = min(cs.backoff.cap, cs.backoff.base * 2 ** (attempt - 1))
                yield env.timeout(self.jitter.next() * cap)
            self.now = env.now
            hop = self._hop(src, dst, cs)
            src.calls_out[dst.index] += 1
            visit = env.process(self._after(hop, plan, root))
            timer = env.timeout(cs.timeout)
            fired = yield visit | timer
            if visit not in fired:
                dst.client_timeouts += 1
            outcome = fired[visit][0] if visit in fired else TIMED_OUT
            if outcome == OK:
                src.calls_ok[dst.index] += 1
                return OK
        return outcome

    def _after(self, hop: float, plan: tuple, root: Root) -> Generator[Any, Any, Any]:
        if hop > 0:
            yield self.env.timeout(hop)
        return (yield self.env.process(self._visit_ref(plan, root)))

    def _event_ref(self, plan: tuple, root: Root, src: Any) -> Generator[Any, Any, Any]:
        self.now = self.env.now
        dst = self.stations[plan[0]]
        hop = self._hop(src, dst)
        if dst.kind == "lambda":  # Lambda's asynchronous invocation path
            if hop > 0:
                yield self.env.timeout(hop)
            self.now = self.env.now
            yield from self._lambda_event_ref(plan, root)
        else:
            yield self.env.process(self._after(hop, plan, root))
        self.task_done(root, self.env.now)
