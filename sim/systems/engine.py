"""The system data plane (issue 17): every service of one placement in one event heap.

The single-service kernels are tight loops over pre-generated arrivals; a system needs arrivals
created by another service's completion and a caller that keeps its slot while it waits. So a
system runs as one heap of (time, seq, function, argument) processed by `advance(until)`, which
the engine's driver calls exactly as for a platform model (control loops stay SimPy processes and
see the data plane up to their own time).

- A request at a service is a generator (`_visit`): acquire a slot at the service's station
  (Lambda environment, Wasm instance, pod slot), run its steps (work, calls, publishes), release.
  A generator yields a float (sleep), or a command: acquire, call, parallel calls, or wait.
- Common random numbers: an entry request's whole plan (handler times, which calls and publishes
  happen) is drawn when it arrives, from per-service streams common to every placement; only
  platform behaviour (cold starts, keep-alive, backoff jitter) draws from the placement's stream.
- Stations: Lambda (one request per execution environment, cold start = sandbox overhead + Init,
  keep-alive reclaim, per-function concurrency limit and scaling token bucket -> throttles), Wasm
  (fresh instance per request, platform-wide max_concurrency -> rejected), Kubernetes (fixed
  replicas x pod.concurrency slots; ideal_fifo: one shared FIFO queue; round_robin/random: a FIFO
  per pod; queue_limit -> rejected).
- Hops (sim.systems.hops): each call attempt crosses by its Route's `via` (api_gateway: the
  callee's gateway latency; invoke: network.invoke_latency; load_balancer: the cluster's ingress
  latency; direct: none; Wasm: its edge latency) and counts there, for the hop bill (NAT data,
  VPC endpoint data, cross-AZ bytes; sim.pricing.hops).
- Autoscaled Kubernetes services (HPA on cpu / rps, KEDA on aws-sqs-queue / prometheus / cpu):
  one FIFO of slots, pods added after `pod.startup`, the kernel's HPA / KEDA arithmetic on the
  station's meters (cpu through the kernel's metrics_server_view).
- SQS standard queues (sim.systems.spec for the defaults and their sources), consumed by a Lambda
  event source mapping (batches, batching window, maximum concurrency, 5 concurrent batches at
  first, +5 a second while messages wait = AWS's "up to 300 more per minute", 1,000 at most) or by
  Kubernetes workers (each free pod slot receives one message at once: long polling).
"""

from __future__ import annotations

import bisect
import itertools
import math
import zlib
from collections import deque
from collections.abc import Callable, Generator
from heapq import heappop, heappush
from typing import Any

import numpy as np

try:  # C types of hot locals for the compiled build (sim.native); no-ops in Python
    import cython
except ModuleNotFoundError:  # (Cython is a build requirement only)
    from sim import _cython as cython

from sim import defaults as D
from sim.errors import InputError
from sim.platforms.autoscaling.hpa import HorizontalPodAutoscaler, PodMetrics
from sim.platforms.autoscaling.keda import KedaAutoscaler
from sim.platforms.base import INF, DrawBuffer, PlatformModel, RunContext, every, substream
from sim.platforms.kubernetes import metrics_server_view, pods_metric, scrape_time
from sim.pricing.hops import add_lines, endpoint_hours_bill, hop_bill
from sim.pricing.kubernetes import KubernetesUsage, NodeUsage, kubernetes_bill
from sim.pricing.lambda_ import LambdaUsage, lambda_bill
from sim.pricing.ops import add_operating
from sim.pricing.systems import eventbridge_bill, merge_bills, with_operating
from sim.pricing.tables import Bill, BillBuilder
from sim.pricing.wasm import WasmUsage, wasm_bill
from sim.records import OK, REJECTED, THROTTLED, TIMED_OUT, Recorder
from sim.systems.eventbridge import SEND, Bus, fifo_send, rule_group
from sim.systems.eventbridge_spec import BusSpec
from sim.systems.hops import (
    DEFAULT_CALL_BYTES,
    NetworkSpec,
    behind_nat,
    cross_az_share,
    endpoint_of,
)
from sim.systems.kafka import KafkaTopic
from sim.systems.lambda_async import AsyncQueue
from sim.systems.nodes import LOOK_S as NODE_LOOK_S
from sim.systems.nodes import NodePool, Nodes, log_rank
from sim.systems.spec import (
    CallStep,
    OneOfStep,
    ParallelStep,
    PublishStep,
    WorkStep,
    resolve_via,
)
from sim.systems.sqs import KILLED, SqsQueue, fits

# Plan step kinds (a plan is (service, handler seconds, steps), drawn at entry arrival).
WORK, CALL, PAR, PUB_Q, PUB_S, PUB_B = 0, 1, 2, 3, 4, 5
# The class of the system's SQS queues (a test's spy subclass replaces it; compiled, the name
# SqsQueue is the C type engine.pxd cimports, not a module attribute).
SQS_QUEUE = SqsQueue
# Generator commands besides a float (sleep).
ACQ, DO_CALL, DO_PAR, ATTEMPT, PARK, DETACH = 10, 11, 12, 13, 14, 15
PARKED = (PARK,)  # "resume me when a station hands me a slot" (the station holds the Proc)
_ACQUIRE: Any = object()  # _visit's `got` when it asks the station for its slot itself
_WAIT: Any = object()  # SystemModel._command: the process waits (nothing to resume it with)
MAX_TASKS_PER_REQUEST = 100_000
PLAN_BATCH = 32  # entry plans drawn together (SystemModel._plans)
MAX_PLAN_DEPTH = 200  # calls/publishes nested in one plan (a deeper draw would hit Python's stack)
_EPS = 1e-9
_NO_LIMIT: float | None = None  # (a class attribute typed for mypy, not declared for Cython)
_LONG_AGO = -1e9  # the initial pods of a running service: ready long before the run


def name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) & 0xFFFFFF


class _Uniforms:
    __slots__ = ("_buf", "_i", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng, self._i = rng, 0
        self._buf: list[float] = []

    def next(self) -> float:
        if self._i >= len(self._buf):
            self._buf, self._i = self._rng.random(4096).tolist(), 0
        x = self._buf[self._i]
        self._i += 1
        return x


class StationLog:
    """A station's rows, flat: eight values a visit, (arrival, start, end, wait, startup, cold,
    outcome, instance), added by add() in the hot path; take() reshapes them into the ten columns
    of a RequestLog (a visit adds no overhead: a hop's latency is the caller's; service = end -
    start, the same float64 subtraction, vectorised). float64 holds every field exactly (bools,
    outcome codes, slot numbers < 2**53). Compiled (engine.pxd), add() writes C doubles into a
    float64 buffer kept from take to take: no float objects, no list, no conversion at the end
    (the list's conversion was ~8% of a three-service run). As Python, one list.extend a row
    (eight appends would cost more; kept tuples would be the collector's to traverse)."""

    __slots__ = ("buf", "n", "rows")  # buf, n: the compiled build's (engine.pxd)
    last = "instance"  # what the eighth value is (EntryLog: the overhead)

    def __init__(self) -> None:
        self.rows: list[Any] = []  # Python: the values; compiled: unused
        if cython.compiled:
            self.buf = np.empty(8 * 1024)
            self.n = 0

    def add(
        self,
        arrival: float,
        start: float,
        end: float,
        wait: float,
        startup: float,
        cold: bool,
        outcome: int,
        last: float,
    ) -> None:
        if cython.compiled:
            n = self.n
            if n + 8 > self.buf.shape[0]:
                grown = np.empty(2 * self.buf.shape[0])
                grown[:n] = self.buf[:n]
                self.buf = grown
            buf = self.buf
            buf[n] = arrival
            buf[n + 1] = start
            buf[n + 2] = end
            buf[n + 3] = wait
            buf[n + 4] = startup
            buf[n + 5] = cold
            buf[n + 6] = outcome
            buf[n + 7] = last
            self.n = n + 8
        else:
            self.rows.extend((arrival, start, end, wait, startup, cold, outcome, last))

    def last_row(self) -> tuple[float, ...]:
        """The last row's eight values."""
        if cython.compiled:
            return tuple(np.asarray(self.buf[self.n - 8 : self.n]).tolist())
        return tuple(self.rows[-8:])

    def __len__(self) -> int:
        if cython.compiled:
            return self.n // 8
        return len(self.rows) // 8

    def take(self) -> dict[str, np.ndarray]:
        if cython.compiled:
            n = self.n // 8
            flat = np.asarray(self.buf[: 8 * n])
            self.n = 0  # the buffer stays: the copy below is what leaves
        else:
            rows, self.rows = self.rows, []
            n = len(rows) // 8
            flat = np.array(rows, np.float64)  # ~1.8x array("d", rows) and np.fromiter
        a = flat.reshape(n, 8).T.copy()
        entry = self.last == "overhead"
        return {
            "arrival": a[0],
            "start": a[1],
            "end": a[2],
            "wait": a[3],
            "startup": a[4],
            "service": a[2] - a[1],
            "overhead": a[7] if entry else np.zeros(n),
            "cold": a[5] != 0.0,
            "outcome": a[6].astype(np.uint8),
            "instance": np.zeros(n, np.int64) if entry else a[7].astype(np.int64),
        }


class EntryLog(StationLog):
    """The end-to-end rows of entry requests, flat as a station's: (arrival, start, end, wait,
    startup, cold, outcome, overhead); instance 0."""

    __slots__ = ()
    last = "overhead"


class EventHeap:
    """The engine's future events, (time, seq, fn, arg), earliest (time, seq) first (seq: the
    order of scheduling, unique, so ties never compare fn). As Python, heapq on the tuples.
    Compiled (engine.pxd), no tuple: the times and seqs in C arrays that the sift compares, fn
    and arg in two lists by heap position (heapq's tuple comparisons were ~1,100 instructions a
    push or pop, a seventh of a three-service run; the tuple and its boxed time and seq ~700 more).
    The same order either way: a binary heap ordered by the same unique keys pops the same
    sequence. put/take are the engine's; push/pop the same on tuples."""

    __slots__ = ("_args", "_fns", "_seqs", "_times", "arg", "items", "n", "t")

    def __init__(self) -> None:
        self.items: list[tuple[float, int, Callable[[Any], None], Any]] = []  # (Python)
        self.t: float = INF  # the event take() returned last: its time and arg
        self.arg: Any = None
        if cython.compiled:
            self.n = 0
            self._fns: list[Any] = []
            self._args: list[Any] = []
            self._grow(64)

    def _grow(self, size: int) -> None:
        times, seqs = np.empty(size), np.empty(size)  # seq < 2**53: exact as a float64
        if self.n:
            times[: self.n] = self._times[: self.n]  # type: ignore[has-type]
            seqs[: self.n] = self._seqs[: self.n]  # type: ignore[has-type]
        self._times, self._seqs = times, seqs

    def __len__(self) -> int:
        if cython.compiled:
            return self.n
        return len(self.items)

    def top(self) -> float:
        """The earliest event's time (INF when there is none)."""
        if cython.compiled:
            return self._times[0] if self.n else INF
        return self.items[0][0] if self.items else INF

    @cython.boundscheck(False)  # (indexes below n: the heap's own)
    @cython.wraparound(False)
    def put(self, t: float, seq: int, fn: Callable[[Any], None], arg: Any) -> None:
        if cython.compiled:
            if self.n == self._times.shape[0]:
                self._grow(2 * self.n)
            times, seqs, fns, args = self._times, self._seqs, self._fns, self._args
            fns.append(fn)
            args.append(arg)
            i = self.n
            while i > 0:  # sift up
                p = (i - 1) >> 1
                if times[p] < t or (times[p] == t and seqs[p] < seq):
                    break
                times[i], seqs[i] = times[p], seqs[p]
                fns[i], args[i] = fns[p], args[p]
                i = p
            times[i], seqs[i] = t, seq
            fns[i], args[i] = fn, arg
            self.n += 1
        else:
            heappush(self.items, (t, seq, fn, arg))

    @cython.boundscheck(False)  # (indexes below n: the heap's own)
    @cython.wraparound(False)
    def take(self) -> Callable[[Any], None]:
        """Remove the earliest event: its fn, its time and arg in self.t and self.arg."""
        if cython.compiled:
            times, seqs, fns, args = self._times, self._seqs, self._fns, self._args
            self.t = times[0]
            fn, self.arg = fns[0], args[0]
            last_fn, last_arg = fns.pop(), args.pop()
            n = self.n - 1
            self.n = n
            if n:
                t, seq = times[n], seqs[n]
                i = 0
                while True:  # sift down the last one from the root
                    c = 2 * i + 1
                    if c >= n:
                        break
                    d = c + 1  # the right child, when it sorts first
                    if d < n and (
                        times[d] < times[c] or (times[d] == times[c] and seqs[d] < seqs[c])
                    ):
                        c = d
                    if t < times[c] or (t == times[c] and seq < seqs[c]):
                        break
                    times[i], seqs[i] = times[c], seqs[c]
                    fns[i], args[i] = fns[c], args[c]
                    i = c
                times[i], seqs[i] = t, seq
                fns[i], args[i] = last_fn, last_arg
            return fn
        t, _, fn, self.arg = heappop(self.items)
        self.t = t
        return fn

    def push(self, item: tuple[float, int, Callable[[Any], None], Any]) -> None:
        self.put(item[0], item[1], item[2], item[3])

    def pop(self) -> tuple[float, int, Callable[[Any], None], Any]:
        if cython.compiled:
            seq = self._seqs[0]
            fn = self.take()
            return self.t, int(seq), fn, self.arg
        return heappop(self.items)


class Proc:
    """A running generator and what to call with its return value."""

    __slots__ = ("done", "gen")

    def __init__(self, gen: Generator, done: Callable[[Any], None] | None) -> None:
        self.gen, self.done = gen, done


class _Child(Proc):
    """A Lambda invocation's handler run under the function timeout (SystemModel.timed): the
    parallel calls it started, so that a timeout ends them too."""

    __slots__ = ("kids",)

    def __init__(self, gen: Generator, done: Callable[[Any], None] | None) -> None:
        super().__init__(gen, done)
        self.kids: list[Proc] = []

    def kill(self) -> None:
        """The function timed out: the handler stops where it is (no more work, calls, retries
        or publishes); calls already at a callee run on there, their answers dropped."""
        for p in (self, *self.kids):
            p.done = None
            p.gen.close()


class _PodRun(_Child):
    """A request's handler on a spot pod (SpotPodStation), run as a child of its visit so that
    a kill can stop it where it is (as _Child.kill: calls already at a callee run on there)."""

    __slots__ = ("parked", "proc", "request", "settled", "sys", "value", "work_end")

    def __init__(self, sys: SystemModel, proc: Proc, body: Generator, request: bool) -> None:
        super().__init__(body, self.answer)
        self.sys, self.proc, self.settled, self.parked, self.value = sys, proc, False, False, None
        self.work_end = 0.0  # the end of its current work step (the CPU meter's share)
        self.request = request  # a request's handler (False: a queue consumer's batch)

    def answer(self, outcome: Any) -> None:
        self.settled = True
        if self.parked:
            self.sys._run(self.proc, outcome)
        else:
            self.value = outcome

    def cut(self, now: float) -> None:
        """The pod is killed: the handler stops; the visit goes on once the kill is done."""
        self.settled = True
        self.kill()
        self.sys.at(now, self._resume, None)

    def _resume(self, _: Any) -> None:
        self.sys._run(self.proc, KILLED)


class _Deadline:
    """The handler's end or the function timeout, whichever first, resumes the invocation."""

    __slots__ = ("child", "parked", "proc", "settled", "sys", "value")

    def __init__(self, sys: SystemModel, proc: Proc) -> None:
        self.sys, self.proc, self.settled, self.parked, self.value = sys, proc, False, False, None
        self.child: _Child | None = None

    def answer(self, outcome: Any) -> None:
        if self.settled:
            return
        self.settled = True
        if self.parked:
            self.sys._run(self.proc, outcome)
        else:  # the handler ended before the invocation parked (no yield at all)
            self.value = outcome

    def expire(self, _: Any) -> None:
        """The timeout: stopped after the events already due now (as SimPy resumes a process
        waiting on `handler | timeout`: one event later), so a tie with another event at this
        instant (a poller tick on the same 1 s grid) resolves the same way in the reference."""
        if self.settled:
            return
        self.settled = True
        self.sys.at(self.sys.now, self._stop, None)

    def _stop(self, _: Any) -> None:
        assert self.child is not None
        self.child.kill()
        self.sys._run(self.proc, None)


class _Limit(_Deadline):
    """A station's response limit (SystemModel.limited): at the limit the visit answers
    TIMED_OUT while its handler runs on to its end (the kernels' request_timeout)."""

    __slots__ = ("late",)

    def __init__(self, sys: SystemModel, proc: Proc) -> None:
        super().__init__(sys, proc)
        self.late = False

    def _stop(self, _: Any) -> None:
        self.late = True
        self.sys._run(self.proc, TIMED_OUT)


class Root:
    """One entry request: its synchronous answer and the asynchronous work it caused."""

    __slots__ = ("arrival", "last", "pending", "sync_done")

    def __init__(self, arrival: float) -> None:
        self.arrival, self.last, self.pending, self.sync_done = arrival, arrival, 0, False


# --- stations -------------------------------------------------------------------------------------
class Station:
    """One service on its platform: slots, the service's work scale, its request log."""

    kind = ""
    metered = False  # an autoscaled pod station measures its work (PodStation.work)
    # the platform's response limit from arrival (SystemModel.limited; Flex's 230 s, Lambda
    # Managed Instances' function timeout); None: none
    response_limit = _NO_LIMIT

    def __init__(self, sys: SystemModel, index: int, svc: Any, spec: Any) -> None:
        self.sys, self.index, self.svc, self.spec = sys, index, svc, spec
        self.name = svc.name
        self.platform = spec.name
        self.scale = 1.0  # the service's work scale here (handler seconds per second of work)
        self.error_rate = float(svc.error_rate)  # (read per visit: a C field in the native build)
        self.is_lambda = self.kind == "lambda"  # (the subclass's kind: read per visit)
        self.guarded = False  # a spot kill can cut its requests (SpotPodStation)
        self.general = False  # its visits take the general path (_visit), never _fused's inline
        self.log = StationLog()
        self.calls_in = 0  # attempts that reached this station
        self.client_timeouts = 0  # attempts to it that the caller's client timeout ended
        self.busy = 0
        self.peak = 0
        self.work_s = 0.0  # handler seconds run (after scaling)
        self.on_free: list[Callable[[float], None]] = []  # queue consumers waiting for a slot
        # Flows out of this service, by target index (summary.json `flows`; whole window)
        n, nq = len(sys.scenario.services), len(sys.scenario.queues)
        self.calls_out = [0] * n  # call attempts to each service
        self.calls_ok = [0] * n  # ... answered ok
        self.events_out = [0] * n  # publishes straight to a service
        self.pub_out = [0] * nq  # publishes to each queue
        self.bus_out = [0] * nq  # PutEvents to each bus

    def acquire(self, proc: Proc, now: float) -> Any:
        """(slot, startup seconds, cold) now; an outcome code (refused); None (queued: the
        station resumes `proc` with (slot, startup, cold) later)."""
        raise NotImplementedError

    def release(self, slot: int, now: float) -> None:
        raise NotImplementedError

    def free_slot(self) -> bool:
        return False

    def overhead(self) -> float:
        return 0.0

    def instances(self, now: float) -> float:
        return float(self.busy)

    def queued(self) -> int:
        return 0


class LambdaStation(Station):
    kind = "lambda"

    def __init__(self, sys: SystemModel, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec)
        self.memory = svc.memory if svc.memory is not None else spec.memory
        vcpu = min(self.memory / D.LAMBDA_MB_PER_VCPU, D.LAMBDA_MAX_VCPU)
        self.scale = (1 - svc.cpu_bound) + svc.cpu_bound / min(vcpu, spec.threads)
        self.limit = spec.concurrency_limit
        # the account's unreserved concurrency, shared by its functions without reserved
        # concurrency ([busy, cap]: SystemModel.account_pools); None: reserved (its own limit)
        self.pool: list[int] | None = None
        self.timeout = float(spec.timeout)
        self.timeouts = 0  # invocations the function timeout ended
        self.init = DrawBuffer(spec.restore if spec.snapstart else spec.init, substream(rng, 1))
        self.keep = DrawBuffer(spec.keep_alive, substream(rng, 2))
        self.gw = (
            DrawBuffer(spec.gateway_latency, substream(rng, 3))
            if spec.api_gateway != "none" and spec.gateway_latency is not None
            else None
        )
        self.burst, self.refill = float(spec.scaling_rate.burst), spec.scaling_rate.refill
        self.tokens, self.tok_t = self.burst, 0.0
        self.idle: list[tuple[float, int]] = []  # (expiry, env), most recently used last
        self.next_env = 0
        self.live = 0
        self.env_s = 0.0  # environment-seconds (creation to reclaim) for instances
        self.invocations = 0
        self.billed_ms = 0.0
        self.init_ms = 0.0
        self.cold = 0
        self.throttles = 0
        self.gateway_requests = 0
        self.async_q = AsyncQueue(svc.async_invoke)  # events (sim.systems.lambda_async)
        self.runs: dict[int, float] = {}  # busy environments: when their handler starts

    def acquire(self, proc: Proc, now: float) -> Any:
        pool = self.pool
        if self.busy >= self.limit or (pool is not None and pool[0] >= pool[1]):
            self.throttles += 1
            return THROTTLED
        idle = self.idle
        while idle:
            exp, env = idle.pop()
            if exp > now:
                self.busy += 1
                if pool is not None:
                    pool[0] += 1
                self.peak = max(self.peak, self.busy)
                self.runs[env] = now
                return env, 0.0, False
            self.live -= 1
            self.env_s += exp
        tok = min(self.burst, self.tokens + (now - self.tok_t) * self.refill)
        self.tok_t = now
        if tok < 1.0:
            self.tokens = tok
            self.throttles += 1
            return THROTTLED
        self.tokens = tok - 1.0
        init = self.init.next()
        self.init_ms += math.ceil(init * 1e3 - 1e-9)
        self.cold += 1
        self.next_env += 1
        self.live += 1
        self.env_s -= now
        self.busy += 1
        if pool is not None:
            pool[0] += 1
        self.peak = max(self.peak, self.busy)
        startup = self.spec.sandbox_overhead + init
        self.runs[self.next_env] = now + startup
        return self.next_env, startup, True

    def release(self, slot: int, now: float) -> None:
        del self.runs[slot]
        self.busy -= 1
        if self.pool is not None:
            self.pool[0] -= 1
        self.idle.append((now + self.keep.next(), slot))

    def discard(self, slot: int, now: float) -> None:
        """An invocation the function timeout ended: Lambda resets the environment, so it is
        gone (the next request there starts cold, as the single-service kernel)."""
        del self.runs[slot]
        self.busy -= 1
        if self.pool is not None:
            self.pool[0] -= 1
        self.timeouts += 1
        self.live -= 1
        self.env_s += now

    def bill_invocation(self, ran_s: float) -> None:
        self.invocations += 1
        self.billed_ms += math.ceil(ran_s * 1e3 - 1e-9)

    def billed(self, end: float) -> tuple[int, float]:
        """(invocations, billed ms) of the window: the invocations still running at its end
        too, each billed for its time in the window (as every other station bills the
        resources in use to the end: Flex's activity, Fargate's tasks, Cloud Run's instances)."""
        ms = sum(math.ceil((end - t) * 1e3 - 1e-9) for t in self.runs.values() if end > t)
        return self.invocations + len(self.runs), self.billed_ms + ms

    def overhead(self) -> float:
        if self.gw is None:
            return 0.0
        self.gateway_requests += 1
        return self.gw.next()

    def instances(self, now: float) -> float:
        return float(self.busy + sum(1 for exp, _ in self.idle if exp > now))

    def env_seconds(self, end: float) -> float:
        alive = self.live - len(self.idle)  # busy at the end
        return self.env_s + alive * end + sum(min(exp, end) for exp, _ in self.idle)


class WasmStation(Station):
    kind = "wasm"

    def __init__(self, sys: SystemModel, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec)
        self.scale = spec.slowdown
        self.inst = DrawBuffer(spec.instantiate, substream(rng, 1))
        self.edge = DrawBuffer(spec.edge_latency, substream(rng, 3))
        self.cpu_s = 0.0
        self.ran = 0

    def acquire(self, proc: Proc, now: float) -> Any:
        group = self.sys.wasm_busy
        cap = self.spec.max_concurrency
        if cap is not None and group[self.platform] >= cap:
            return REJECTED
        group[self.platform] += 1
        self.busy += 1
        self.peak = max(self.peak, self.busy)
        self.ran += 1
        return 0, self.inst.next(), False

    def release(self, slot: int, now: float) -> None:
        self.busy -= 1
        self.sys.wasm_busy[self.platform] -= 1

    def overhead(self) -> float:
        return self.edge.next()


class PodStation(Station):
    kind = "kubernetes"

    def __init__(self, sys: SystemModel, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec)
        pod = spec.pod
        self.scale = (1 - svc.cpu_bound) + svc.cpu_bound / min(float(pod.cpu), 1.0)
        self.pods = int(spec.replicas or 0)  # KEDA: its initial replicas, below
        self.conc = int(pod.concurrency)
        self.shared = spec.routing == "ideal_fifo"
        self.random = spec.routing == "random"
        self.limit = spec.queue_limit if spec.queue_limit is not None else 1 << 60
        n = 1 if self.shared else self.pods
        self.free = [self.pods * self.conc] if self.shared else [self.conc] * self.pods
        self.waiting: list[deque[Proc]] = [deque() for _ in range(n)]
        self.rr = 0
        self.pick = _Uniforms(substream(rng, 4))
        self.ingress = DrawBuffer(spec.ingress_latency, substream(rng, 3))
        self.rejected = 0
        self.cold_wait: dict[Any, bool] = {}  # requests queued while no pod was ready (cold)
        self.lb_requests = 0  # requests from outside the cluster (through the load balancer)
        # KEDA (aws-sqs-queue triggers on the queue this service consumes; sim.systems.spec
        # refuses others): the same KedaAutoscaler as the Kubernetes kernel (KEDA's poll and the
        # HPA it creates). Pods come and go on the shared FIFO of slots (workers pull messages).
        self.keda = KedaAutoscaler(spec.keda) if spec.keda is not None else None
        # HPA (cpu or rps; sim.systems.spec refuses others) with the kernel's controller.
        self.hpa = (
            HorizontalPodAutoscaler.from_spec(spec.hpa, spec.cluster.controller)
            if spec.hpa is not None
            else None
        )
        self.autoscaled = self.metered = self.keda is not None or self.hpa is not None
        self.reads_cpu = (self.hpa is not None and spec.hpa.metric == "cpu") or (
            self.keda is not None
            and any(t.measure in ("cpu_utilization", "cpu_cores") for t in self.keda.triggers)
        )
        self.n_initial = 0
        # What the autoscalers read, as cumulative meters sampled at each read (t, arrivals,
        # CPU core-seconds, ready pod-seconds, completions): windows are differences of rows.
        self.arrived = 0
        self.done = 0
        self.cores = svc.cpu_bound / self.scale  # cores one request uses while it works
        self.work_started = 0.0  # work seconds started (scaled)
        self.work_ends: list[float] = []  # ends of work still running at the last read
        self.ready_acc = 0.0
        self.rows: list[tuple[float, float, float, float, float]] = [(0.0, 0.0, 0.0, 0.0, 0.0)]
        self.row_t: list[float] = [0.0]
        self.resolution = float(spec.cluster.metric_resolution)
        # The pods as metrics-server and the HPA see them (sim.platforms.kubernetes
        # .metrics_server_view): (ready since, start) of each ready pod, newest last (the initial
        # pods: long before the run), and when each starting pod was scheduled.
        self.ready_pods: list[tuple[float, float]] = []
        self.starting_at: list[float] = []
        self.startup = DrawBuffer(pod.startup, substream(rng, 5))
        self.starting = 0  # pods scheduled, not ready yet
        self.cancel = 0  # starting pods removed before they were ready
        self.owed = 0  # slots of removed pods still busy: dropped as they free up
        self.source: Any = None  # the SqsQueue or KafkaTopic it consumes (KEDA reads it)
        self.nodes: Any = None  # the platform's simulated node pool (sim.systems.nodes.Nodes)
        self.unplaced = 0  # new pods Pending: no node has room for them yet
        # With simulated nodes, each pod's node (sim.systems.nodes): the ready pods' (parallel to
        # ready_pods), the starting pods' (parallel to starting_at), deleted pods still finishing
        # requests [node, busy slots], and the start-up ends of deleted starting pods (void).
        self.ready_nodes: list[Any] = []
        self.start_nodes: list[Any] = []
        self.drain_q: deque[list[Any]] = deque()
        self.void: dict[float, int] = {}
        self.orphan = 0  # busy slots of pods killed with their spot node (no node to free)
        self.ps_acc, self.ps_t = 0.0, 0.0  # pod-seconds so far, and when last counted
        if self.autoscaled:
            self.pods = (
                self.keda.initial_replicas if self.keda is not None else self.hpa.min_replicas  # type: ignore[union-attr]
            )
            self.shared = True
            self.free = [self.pods * self.conc]
            self.waiting = [deque()]
            self.ready_pods = [(_LONG_AGO, _LONG_AGO)] * self.pods
            self.n_initial = self.pods
        self.pods_peak = self.pods

    def acquire(self, proc: Proc, now: float) -> Any:
        return self.take_slot(proc, now)

    def take_slot(self, proc: Proc, now: float) -> Any:
        """acquire's body, for the engine's direct calls on a plain PodStation (compiled: a C
        call without cpdef's override check, which misses when two stations share a call site)."""
        self.arrived += 1
        if self.pods == 0:
            self.rejected += 1
            return REJECTED
        if self.shared:
            p = 0
        elif self.random:
            p = min(int(self.pick.next() * self.pods), self.pods - 1)
        else:
            p = self.rr
            self.rr = (p + 1) % self.pods
        if self.free[p] > 0:
            self.free[p] -= 1
            busy = self.busy = self.busy + 1
            if busy > self.peak:
                self.peak = busy
            return p, 0.0, False
        q = self.waiting[p]
        if len(q) >= self.limit:
            self.rejected += 1
            return REJECTED
        q.append(proc)
        return None

    def release(self, slot: int, now: float) -> None:
        self.give_slot(slot, now)

    def give_slot(self, slot: int, now: float) -> None:
        """release's body (as take_slot)."""
        self.done += 1
        if self.owed:  # the slot of a removed pod: gone
            self.owed -= 1
            self.busy -= 1
            if self.drain_q or self.orphan:
                self._repay(now)
            return
        q = self.waiting[slot]
        if q:  # the slot passes straight to the next in line (cold: it queued at zero pods)
            p = q.popleft()
            self.sys.resume_at(now, p, (slot, 0.0, self.cold_wait.pop(p, False)))
            return
        self.free[slot] += 1
        self.busy -= 1
        for kick in self.on_free:
            kick(now)

    def free_slot(self) -> bool:
        return any(f > 0 for f in self.free)

    def take_free(self) -> int:
        for p, f in enumerate(self.free):
            if f > 0:
                self.free[p] -= 1
                self.busy += 1
                self.peak = max(self.peak, self.busy)
                return p
        raise RuntimeError("no free slot")

    def overhead(self) -> float:
        self.lb_requests += 1
        return self.ingress.next()

    # -- KEDA ----------------------------------------------------------------------------------
    @property
    def replicas(self) -> int:
        return self.pods + self.starting - self.cancel + self.unplaced

    def work(self, now: float, dt: float) -> None:
        """A work step of dt seconds starts now (CPU for the autoscalers' meters)."""
        self.work_started += dt
        self.work_ends.append(now + dt)

    def _record(self, now: float) -> tuple[float, float, float, float, float]:
        if self.row_t[-1] >= now - _EPS:
            return self.rows[-1]
        ends = [e for e in self.work_ends if e > now]
        self.work_ends = ends
        cpu = (self.work_started - sum(e - now for e in ends)) * self.cores
        ready = self.ready_acc + self.pods * (now - self.ps_t)
        row = (now, float(self.arrived), cpu, ready, float(self.done))
        self.rows.append(row)
        self.row_t.append(now)
        if len(self.rows) > 4096:  # keep an hour: longer than any window the triggers read
            cut = bisect.bisect_left(self.row_t, now - 3600.0)
            del self.rows[:cut], self.row_t[:cut]
        return row

    def _window(self, now: float, window: float) -> tuple[float, ...]:
        """(seconds, arrivals, CPU core-seconds, ready pod-seconds, completions) in the window
        ending now (from the row at or before its start, as the kernel's meters)."""
        cur = self._record(now)
        j = bisect.bisect_right(self.row_t, now - window + 1e-6) - 1
        old = self.rows[max(j, 0)]
        return tuple(c - o for c, o in zip(cur, old, strict=True))

    def _pods_metric(self, name: str, now: float, window: float) -> float | None:
        _, arrivals, cpu, ready, _ = self._window(now, window)
        return pods_metric(name, arrivals, cpu, 0.0, ready, float(self.spec.pod.cpu))

    def scrape(self, now: float) -> None:
        """metrics-server's scrape: a reading of the meters (every metric_resolution)."""
        self._record(now)

    def _row_at(self, t: float) -> tuple[float, ...]:
        j = bisect.bisect_right(self.row_t, t + 1e-6) - 1
        return self.rows[max(j, 0)]

    def _cpu_view(self, now: float) -> PodMetrics:
        """The CPU metric as the Kubernetes kernel serves it to the HPA: the latest scrape's
        CPU per ready pod-second over metric_resolution, per pod with its readiness."""
        r = self.resolution
        s = scrape_time(now, r)
        if abs(s - now) < 1e-6:
            self._record(now)
        core_s = ready_s = 0.0
        if s >= 0:
            cur, old = self._row_at(s), self._row_at(s - r)
            core_s = cur[2] - old[2]
            ready_s = cur[3] - old[3] + self.n_initial * max(0.0, r - s)  # running before 0
        starting = self.starting_at[: len(self.starting_at) - self.cancel]
        milli = round(float(self.spec.pod.cpu) * 1000)
        return metrics_server_view(s, r, core_s, ready_s, 0, starting, self.ready_pods, milli)

    def _metrics(self, now: float) -> list[float | None]:
        """One value per KEDA trigger: aws-sqs-queue ApproximateNumberOfMessages (+
        ...NotVisible with scaleOnInFlight, the default) of the simulated queue it consumes
        (kedacore/keda pkg/scalers/aws_sqs_queue_scaler.go); prometheus a request or completion
        rate over its window; cpu the pods' CPU over metrics-server's resolution."""
        assert self.keda is not None
        out: list[float | None] = []
        for i, info in enumerate(self.keda.triggers):
            m = info.measure
            if m in ("backlog", "backlog_inflight"):
                q = self.source
                assert q is not None
                if q.spec.type == "kafka":  # the topic's lag as kafka_scaler.go sums it
                    out.append(float(q.keda_metric(self.spec.keda.triggers[i].metadata)))
                else:
                    out.append(
                        float(len(q.visible) + (q.inflight if m == "backlog_inflight" else 0))
                    )
            elif m in ("request_rate", "completion_rate"):
                assert info.window is not None
                span, arrivals, _, _, done = self._window(now, info.window)
                n = arrivals if m == "request_rate" else done
                out.append(n / span if span > 0 else 0.0)
            else:  # cpu_utilization / cpu_cores: the HPA's Resource metric
                out.append(self._cpu_view(now))  # type: ignore[arg-type]
        return out

    def poll(self, now: float) -> None:
        assert self.keda is not None
        d = self.keda.on_poll(now, self._metrics(now), self.replicas, self.pods)
        if d.desired != self.replicas:
            self.scale_to(d.desired, now, "keda", f"{d.rule}: {d.reason}")

    def sync(self, now: float) -> None:
        assert self.keda is not None
        d = self.keda.on_hpa_sync(now, self._metrics(now), self.replicas, self.pods)
        if d.desired != self.replicas and self.replicas > 0:
            self.scale_to(d.desired, now, "keda_hpa", f"{d.rule}: {d.reason}")

    def hpa_sync(self, now: float) -> None:
        """The HPA's sync (pkg/controller/podautoscaler via sim.platforms.autoscaling.hpa): cpu
        = CPU used / CPU requested by the ready pods over metrics-server's resolution, rps =
        arrivals per ready pod-second over the HPA's `window`."""
        hpa, spec = self.hpa, self.spec.hpa
        assert hpa is not None and spec is not None
        value: float | PodMetrics | None = (
            self._cpu_view(now)
            if spec.metric == "cpu"
            else self._pods_metric(spec.metric, now, spec.window)
        )
        d = hpa.recommend(now, self.replicas, self.pods, value)
        if d.desired != self.replicas:
            self.scale_to(d.desired, now, "hpa", f"{d.rule}: {d.reason}")

    def _count(self, now: float) -> None:
        self.ready_acc += self.pods * (now - self.ps_t)
        self.ps_acc += self.node_pods() * (now - self.ps_t)
        self.ps_t = now

    def pod_seconds(self, end: float) -> float:
        return self.ps_acc + self.node_pods() * (end - self.ps_t)

    def scale_to(self, n: int, now: float, kind: str, reason: str) -> None:
        self._count(now)
        before = self.replicas
        self.sys.ctx.decide(f"{self.name}:{kind}", before, n, reason)
        for _ in range(n - before):  # new pods: on a node (or Pending), then start-up
            if self.nodes is not None:
                self.unplaced += 1
                self.nodes.request(self, now)  # calls placed() now or when a node has room
            else:
                self._start_pod(now)
        for _ in range(before - n):  # fewer: pending pods first, then starting, then ready
            if self.unplaced and self.nodes.withdraw(self):
                self.unplaced -= 1
                continue
            if self.nodes is not None:  # a pod on a node: the ReplicaSet's victim
                self._delete(self._victim(now), now)
                continue
            if self.starting - self.cancel > 0:
                self.cancel += 1
                continue
            self.pods -= 1
            if self.ready_pods:
                self.ready_pods.pop()  # the newest ready pod first (ActivePodsWithRanks)
            self._leave(len(self.ready_pods), None, now)
        self.sys.pods_changed(self.platform, now)

    def _start_pod(self, now: float) -> None:
        """A pod on its node: ready after the pod's start-up time."""
        self.starting += 1
        self.starting_at.append(now)
        self.sys.at(now + self.startup.next(), self._ready, now)

    # -- the pods' nodes (sim.systems.nodes.Nodes) ---------------------------------------------
    def initial_node(self, node: Any) -> None:
        """Time 0: one of the initial (ready) pods is on `node`."""
        self.ready_nodes.append(node)

    def placed(self, now: float, node: Any) -> None:
        """The node pool found room on `node` for a Pending pod of this service."""
        self._count(now)
        self.unplaced -= 1
        self._start_pod(now)
        self.start_nodes.append(node)
        self.sys.pods_changed(self.platform, now)

    def _victim(self, now: float) -> tuple[bool, int]:
        """The pod a ReplicaSet deletes first (after Pending ones), as the Kubernetes kernel's
        `_victims` (controller.ActivePodsWithRanks, kubernetes pkg/controller/controller_utils.go,
        LogarithmicScaleDown): not ready before ready; more active pods of the set on the same
        node first; the more recently ready, then the newer, in int(log2(age ns)) buckets; then
        the older in list order (the pod id). (starting?, index)."""
        on: dict[Any, int] = {}
        for node in (*self.ready_nodes, *self.start_nodes):
            on[node] = on.get(node, 0) + 1
        if self.start_nodes:  # ASSUMPTION: created when scheduled (log-ranked by that time)
            j = min(
                range(len(self.start_nodes)),
                key=lambda j: (-on[self.start_nodes[j]], log_rank(now, self.starting_at[j]), j),
            )
            return True, j
        rp = self.ready_pods
        j = min(
            range(len(self.ready_nodes)),
            key=lambda j: (
                -on[self.ready_nodes[j]],
                log_rank(now, rp[j][0]),
                log_rank(now, rp[j][1]),
                j,
            ),
        )
        return False, j

    def _delete(self, victim: tuple[bool, int], now: float) -> None:
        """Delete one pod with a node: a starting one leaves its node at once (its readiness
        event is void); a ready one stops taking work, finishes the requests it holds (graceful
        termination: its busy slots, as `owed`) and leaves its node when they end."""
        starting, j = victim
        nodes = self.nodes
        if starting:
            at = self.starting_at.pop(j)
            node = self.start_nodes.pop(j)
            self.starting -= 1
            self.void[at] = self.void.get(at, 0) + 1
            nodes.release(node, now)
            return
        node = self.ready_nodes.pop(j)
        del self.ready_pods[j]
        self.pods -= 1
        self._leave(j, node, now)

    def _leave(self, j: int, node: Any, now: float) -> None:
        """Ready pod j (just taken off the ready lists; on `node`, None without simulated
        nodes) deleted: it takes free slots of the shared FIFO, the rest are its busy ones
        (PodIdentity: its own)."""
        take = min(self.free[0], self.conc)
        self.free[0] -= take
        busy = self.conc - take
        self.owed += busy
        if node is None:
            return
        if busy:
            self.drain_q.append([node, busy])
            self.nodes.draining(node)
        else:
            self.nodes.release(node, now)

    def _repay(self, now: float) -> None:
        """A busy slot of a deleted pod is done (or taken over by a new pod): the oldest
        deleted pod's; it leaves its node with its last. ASSUMPTION: the shared FIFO of slots
        does not say which pod a request is on, so deleted pods finish in deletion order."""
        if self.orphan:
            self.orphan -= 1
            return
        head = self.drain_q[0]
        head[1] -= 1
        if head[1] == 0:
            self.drain_q.popleft()
            self.nodes.release(head[0], now, drained=True)

    def evict(self, node: Any, now: float) -> None:
        """`node` is drained: this service's pods there are deleted (as `_delete`) and each is
        replaced at once by a new pod the node pool schedules elsewhere (the ReplicaSet)."""
        if not self.autoscaled:
            return
        self._count(now)
        k = 0
        for j in range(len(self.start_nodes) - 1, -1, -1):
            if self.start_nodes[j] is node:
                self._delete((True, j), now)
                k += 1
        for j in range(len(self.ready_nodes) - 1, -1, -1):
            if self.ready_nodes[j] is node:
                self._delete((False, j), now)
                k += 1
        for _ in range(k):
            self.unplaced += 1
            self.nodes.request(self, now)
        if k:
            self.sys.pods_changed(self.platform, now)

    def abandon(self, node: Any) -> int:
        """`node` is killed (spot, sim.systems.nodes `Nodes._kill`, after `evict` deleted this
        station's pods there) while deleted pods still finish requests on it. This base is for
        stations without pod identity (none on a spot cluster now: SpotPodStation and Knative's
        SpotKnativeStation cut their requests instead): the one FIFO of slots does not say which
        requests run on that node, so they run on to their end and free their slots then, with
        no node to release (`orphan`). Returns those busy slots (counted in spot_slots_cut)."""
        cut = sum(b for n, b in self.drain_q if n is node)
        if cut:
            self.drain_q = deque(e for e in self.drain_q if e[0] is not node)
            self.orphan += cut
        return cut

    def _ready(self, scheduled: Any) -> None:
        self._count(self.sys.now)
        if self.void.get(scheduled):  # a starting pod deleted before it was ready
            self.void[scheduled] -= 1
            return
        self.starting -= 1
        if self.start_nodes:
            i = self.starting_at.index(scheduled)
            del self.starting_at[i]
            self.ready_nodes.append(self.start_nodes.pop(i))
        else:
            self.starting_at.remove(scheduled)
        if self.cancel:
            self.cancel -= 1
            self.sys.pods_changed(self.platform, self.sys.now)
            return
        self.pods += 1
        now = self.sys.now
        self.ready_pods.append((now, scheduled))
        self._open(now)
        self.pods_peak = max(self.pods_peak, self.pods)
        for kick in self.on_free:
            kick(now)

    def _open(self, now: float) -> None:
        """A new ready pod's slots: to removed pods' busy slots, the queue, or free."""
        for _ in range(self.conc):
            if self.owed:  # a busy slot of a removed pod carries on as this pod's
                self.owed -= 1
                if self.drain_q or self.orphan:
                    self._repay(now)
                continue
            q = self.waiting[0]
            if q:
                self.busy += 1
                p = q.popleft()
                self.sys.resume_at(now, p, (0, 0.0, self.cold_wait.pop(p, False)))
            else:
                self.free[0] += 1

    def instances(self, now: float) -> float:
        return float(self.pods)

    def node_pods(self) -> int:
        return self.pods + self.starting  # a starting pod holds its node

    def queued(self) -> int:
        return sum(len(q) for q in self.waiting)


class PodIdentity:
    """Which pod (instance) holds each busy slot of an autoscaled pod station's shared FIFO (a
    mixin before PodStation or one of its subclasses). A request takes a free slot of the ready
    pod with the fewest in flight, the lowest id on a tie (the Kubernetes kernel's `ideal_fifo`
    pick); a freed slot takes the queue's head on its own pod; a deleted pod finishes its own
    requests, then leaves (its node, if any). `_begin` / `_end`: an execution starts / ends on a
    pod (Flex's activity meter)."""

    hold_at_zero = False  # no ready pod: queue (Flex's front end) or refuse (no endpoints)
    cold_at_zero = False  # a request queued while no pod is ready is cold (Knative's activator)

    def _init_identity(self: Any) -> None:
        self.ids: list[int] = []  # the ready pods' ids, parallel to ready_pods (ready_nodes)
        self.pod_free: dict[int, int] = {}  # free slots of each ready pod, in id order
        self.held: dict[int, int] = {}  # busy slots of each pod, ready or deleted
        self.going: dict[int, Any] = {}  # deleted pods still finishing requests: their node
        self.next_id = 0

    def _new_pod(self: Any, free: int) -> int:
        pid = self.next_id
        self.next_id += 1
        self.ids.append(pid)
        self.held[pid] = 0
        self.pod_free[pid] = free
        self.free[0] += free
        return pid

    def _begin(self, pid: int, now: float) -> None:
        pass

    def _take(self: Any, now: float) -> int:
        best, low = -1, 1 << 60
        held = self.held
        for pid, f in self.pod_free.items():
            if f and held[pid] < low:
                best, low = pid, held[pid]
        if best >= 0:
            self.pod_free[best] -= 1
            self.free[0] -= 1
            held[best] += 1
            self.busy += 1
            self.peak = max(self.peak, self.busy)
            self._begin(best, now)
        return best

    def acquire(self: Any, proc: Proc, now: float, hold: bool = False) -> Any:
        """`hold`: queued while no pod is ready, whatever the station's hold_at_zero (a request
        sent again after a spot kill: _spot_visit)."""
        self.arrived += 1
        if self.pods == 0 and not (self.hold_at_zero or hold):
            self.rejected += 1
            return REJECTED
        pid = self._take(now)
        if pid >= 0:
            return pid, 0.0, False
        q = self.waiting[0]
        if len(q) >= self.limit:
            self.rejected += 1
            return REJECTED
        q.append(proc)
        if self.cold_at_zero and self.pods == 0:
            self.cold_wait[proc] = True  # it waits for a pod to start: cold
        return None

    def take_free(self: Any) -> int:
        pid = self._take(self.sys.now)
        if pid < 0:
            raise RuntimeError("no free slot")
        return pid

    def release(self: Any, slot: int, now: float) -> None:
        self.done += 1
        if slot in self.pod_free:  # a ready pod: the next in line, or free
            q = self.waiting[0]
            if q:
                self._begin(slot, now)
                p = q.popleft()
                self.sys.resume_at(now, p, (slot, 0.0, self.cold_wait.pop(p, False)))
                return
            self.pod_free[slot] += 1
            self.free[0] += 1
            self.held[slot] -= 1
            self.busy -= 1
            for kick in self.on_free:
                kick(now)
            return
        self.busy -= 1
        if slot in self.going:  # a deleted pod: it leaves with its last request
            self.held[slot] -= 1
            if self.held[slot] == 0:
                del self.held[slot]
                node = self.going.pop(slot)
                if node is not None:
                    self.nodes.release(node, now, drained=True)

    def _leave(self: Any, j: int, node: Any, now: float) -> None:
        pid = self.ids.pop(j)
        self.free[0] -= self.pod_free.pop(pid)
        if self.held[pid]:
            self.going[pid] = node
            if node is not None:
                self.nodes.draining(node)
        else:
            del self.held[pid]
            if node is not None:
                self.nodes.release(node, now)

    def _open(self: Any, now: float) -> None:
        pid = self._new_pod(0)
        q = self.waiting[0]
        for _ in range(self.conc):
            if q:
                self.busy += 1
                self.held[pid] += 1
                self._begin(pid, now)
                p = q.popleft()
                self.sys.resume_at(now, p, (pid, 0.0, self.cold_wait.pop(p, False)))
            else:
                self.pod_free[pid] += 1
                self.free[0] += 1


class SpotPodStation(PodIdentity, PodStation):
    """A KEDA- or HPA-scaled service on a node pool with spot capacity (`cluster.spot`): with
    PodIdentity, a spot kill cuts the requests in service on its pods, as the Kubernetes
    kernel's `_spot_kill` / `_cut`: they fail at the kill (a 502) or, with `in_flight: retry`,
    are sent again at once keeping their arrival time (their handler runs again from its first
    step, on a pod with a free slot or the next to get ready; with no ready pod it waits for
    one, as the kernel's pending queue holds it). Queue consumers' batches (SQS, Kafka) on a
    killed pod are cut too: nothing deleted or committed, so their messages come back (SQS:
    after their visibility timeout; Kafka: from the committed offset). Both engines run the
    handlers through SystemModel.on_pod / ReferenceSystem._on_pod_ref."""

    def __init__(self, sys: SystemModel, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec, rng)
        self.guarded = self.general = True
        self._init_identity()
        self.free = [0]  # the initial pods' slots come with their ids (initial_node)
        self.retry = spec.cluster.spot.in_flight == "retry"
        self.runs: dict[int, list[Any]] = {}  # requests in service on each pod (_PodRun)
        self.killed = 0  # requests in service cut by a kill (failed or sent again)

    def initial_node(self, node: Any) -> None:
        super().initial_node(node)
        self._new_pod(self.conc)

    def enter(self, pid: int, run: Any) -> bool:
        """A request starts its handler on pod `pid`; False: the pod was killed meanwhile (a
        slot handed on at the instant of the kill), its slot gone."""
        if pid not in self.held:
            self.busy -= 1
            return False
        self.runs.setdefault(pid, []).append(run)
        return True

    def leave(self, pid: int, run: Any) -> None:
        runs = self.runs.get(pid)
        if runs:
            runs.remove(run)
            if not runs:
                del self.runs[pid]

    def work(self, now: float, dt: float) -> None:
        super().work(now, dt)
        run = self.sys.running()
        if run is not None:
            run.work_end = now + dt

    def abandon(self, node: Any) -> int:
        """`node` is killed (spot): the requests and queue batches in service on this
        service's pods there stop now (their unrun work leaves the CPU meter); requests fail or
        are sent again, batches are left undeleted / uncommitted (sim.systems.sqs `cut_batch`,
        KafkaTopic.cut); their slots go. Returns the busy slots the kill found."""
        now = self.sys.env.now
        cut = 0
        for pid, at in list(self.going.items()):
            if at is not node:
                continue
            del self.going[pid]
            cut += self.held.pop(pid)
            for run in self.runs.pop(pid, ()):
                self.busy -= 1
                self.killed += run.request
                if run.work_end > now:
                    self.work_started -= run.work_end - now
                    self.work_ends.remove(run.work_end)
                run.cut(now)
        return cut


# The station of each platform type (sim.systems.spec refuses the others); Cloud Run and Fargate
# register theirs from sim.systems.stations_containers (imported with this module by sim.engine).
STATIONS: dict[str, Any] = {"lambda": LambdaStation, "wasm": WasmStation, "kubernetes": PodStation}
# ... on a cluster with `cluster.spot`: pod identity, so that a kill cuts its pods' requests
# (Knative's registers from sim.systems.stations_knact)
SPOT_STATIONS: dict[str, Any] = {"kubernetes": SpotPodStation}
# Platform types whose pods run on a cluster (its node pool and bill): Knative's are Kubernetes
# pods (sim.systems.stations_knact).
CLUSTER_TYPES = ("kubernetes", "knative")


# --- hops ---------------------------------------------------------------------------------------


class Route:
    """How calls from one service's step to another service cross (sim.systems.hops): the
    `via`, the attempts made, the mean bytes of one (request + response) and which charges
    apply to them (nat / endpoint: 0 or 1; cross: the share crossing AZs)."""

    __slots__ = ("bytes", "cross", "dst", "endpoint", "n", "nat", "src", "via")

    def __init__(self, sys: SystemModel, src: Station, dst: Station, cs: CallStep | None) -> None:
        net = sys.network
        self.src, self.dst, self.n = src.index, dst.index, 0
        self.via = via = resolve_via(cs, src.spec, dst.spec, net)
        req = cs.request_size if cs is not None else None
        resp = cs.response_size if cs is not None else None
        if req is None and net is not None:
            req = net.request_size
        if resp is None and net is not None:
            resp = net.response_size
        if resp is None:
            resp = sys.scenario.workload.service.response_size
        self.bytes = (float(req.mean()) if req is not None else DEFAULT_CALL_BYTES) + (
            float(resp.mean()) if resp is not None else DEFAULT_CALL_BYTES
        )
        public = via != "direct" and behind_nat(src.spec)
        endpoints = net.vpc_endpoints if net is not None else []
        private = endpoint_of(via) in endpoints
        self.nat = float(public and not private)
        self.endpoint = float(public and private)
        self.cross = cross_az_share(net, dst.spec) if via == "direct" else 0.0


class Call:
    """What the engine reads of a call step per attempt, as plain fields (a pydantic model's
    attribute goes through its __getattr__ hook: ~330 instructions): its retries and client
    timeout; and the Route its attempts cross (_call_hop)."""

    __slots__ = ("retries", "route", "step", "timeout")

    def __init__(self, step: CallStep) -> None:
        self.step = step
        self.retries = int(step.retries)
        self.timeout = float(step.timeout)
        self.route: Route | None = None


# --- the model ------------------------------------------------------------------------------------
class SystemModel(PlatformModel):
    """One placement of a system for one replication."""

    uses_function = False
    fast = True  # the fused visit (_fused); False: the general path only (tests compare them)

    def __init__(self, scenario: Any, placement: Any, ctx: RunContext, common: Any) -> None:
        super().__init__(placement, ctx)
        self.scenario = scenario
        self.warmup = ctx.warmup
        self.end = ctx.duration
        self.heap = EventHeap()
        self.seq = 0
        self.now = 0.0
        # The end of a sleep, the heap's commonest event: (t, seq, self.wake, proc) runs
        # self._run(proc) (value None) with no (proc, value) tuple nor a method of its own.
        self.wake = self._run
        self.cur: Any = None  # a Proc while one runs (see _run)
        self.timeouts: dict[float, _Timeouts] = {}  # client timeouts, one FIFO per timeout value
        services = scenario.services
        self.names = [s.name for s in services]
        self.index = {n: i for i, n in enumerate(self.names)}
        sqs_specs = [q for q in scenario.queues if not isinstance(q, BusSpec)]
        bus_specs = [q for q in scenario.queues if isinstance(q, BusSpec)]
        qnames = [q.name for q in sqs_specs]
        self.wasm_busy: dict[str, int] = {}
        self.stations: list[Station] = []
        rng = ctx.rng
        for i, svc in enumerate(services):
            spec = scenario.platform(placement.services[svc.name])
            srng = substream(rng, 100 + name_key(svc.name))
            kind = STATIONS[spec.type]
            if spec.type in SPOT_STATIONS and spec.cluster.spot is not None:
                kind = SPOT_STATIONS[spec.type]  # (sim.systems.spec: autoscaled, simulated nodes)
            st = kind(self, i, svc, spec, srng)
            if spec.type == "wasm":
                self.wasm_busy[spec.name] = 0
            self.stations.append(st)
        self.account_pools()
        self.queues: list[Any] = [
            KafkaTopic(
                self,
                q,
                self.stations[self.index[q.consumer]],
                _Uniforms(substream(common, 600 + name_key(q.name))),
            )
            if q.type == "kafka"
            else SQS_QUEUE(self, q, self.stations[self.index[q.consumer]])
            for q in sqs_specs
        ]
        self.qindex = {n: k for k, n in enumerate(qnames)}
        self.gates = [getattr(q, "gate", None) for q in self.queues]  # FIFO sends (sqs.SendGate)
        # EventBridge buses (sim.systems.eventbridge): rule matches from a common stream per bus,
        # latencies and backoff jitter from the placement's.
        self.buses = [
            Bus(
                b,
                _Uniforms(substream(common, 600 + name_key(b.name))),
                _Uniforms(substream(rng, 610 + name_key(b.name))),
                DrawBuffer(b.latency, substream(rng, 620 + name_key(b.name))),
            )
            for b in bus_specs
        ]
        self.bindex = {b.name: k for k, b in enumerate(self.buses)}
        self.group_pick = [
            _Uniforms(substream(common, 700 + name_key(q.name)))
            if q.type == "sqs" and q.fifo and q.groups > 1
            else None
            for q in sqs_specs
        ]
        # a rule's target: (True, queue index) or (False, service index)
        self.bus_targets = [
            [
                (True, self.qindex[r.target])
                if r.target in self.qindex
                else (False, self.index[r.target])
                for r in b.rules
            ]
            for b in bus_specs
        ]
        for q in self.queues:
            if isinstance(q.st, PodStation):
                q.st.source = q
        self.node_pools = self._node_pools(scenario, placement, rng)
        for st in self.stations:  # Lambda Managed Instances: its capacity provider's instances
            view = getattr(st, "instances_view", None)  # (sim.systems.stations_lmi)
            if view is not None:
                prng = substream(rng, 800 + name_key(st.platform) + name_key(st.name))
                draws = DrawBuffer(view.cluster.node_provisioning, prng)
                pool = Nodes(self, view, [], [st], draws, prng)
                st.nodes = pool  # type: ignore[attr-defined]
                self.node_pools[f"{st.platform}:{st.name}"] = pool
        # Pods per Kubernetes platform over time [(t, pods)]: the nodes they need, for the bill.
        self.pod_seg: dict[str, list[tuple[float, int]]] = {}
        for st in self.stations:
            if isinstance(st, PodStation) and st.platform not in self.pod_seg:
                self.pods_changed(st.platform, 0.0)
        # Common streams (same draws in every placement): per-service handler times and branch
        # decisions, failures, and the pick of entry service.
        self.handler = [
            DrawBuffer(s.handler, substream(common, 200 + name_key(s.name))) for s in services
        ]
        self.decide = [_Uniforms(substream(common, 300 + name_key(s.name))) for s in services]
        self.fail = [_Uniforms(substream(common, 400 + name_key(s.name))) for s in services]
        self.entry_pick = _Uniforms(substream(common, 1))
        self.jitter = _Uniforms(substream(rng, 2))
        weights = np.array([s.entry for s in services], dtype=float)
        self.entry_cum = (np.cumsum(weights) / weights.sum()).tolist()
        self.entries = [i for i, s in enumerate(services) if s.entry > 0]
        self.one_entry = self.entries[0] if len(self.entries) == 1 else None
        self.compiled = [self._compile(s) for s in services]
        # The fused visit (_fused) unless switched off (the general path, for the tests)
        self.visit: Callable[..., Generator[Any, Any, Any]] = (
            self._fused if self.fast else self._visit
        )
        # work-only callees _fused may run in its caller's process (not on pods a kill can cut)
        self.leaf = [
            all(op[0] == WORK for op in ops) and not st.general
            for ops, st in zip(self.compiled, self.stations, strict=True)
        ]
        self.meter = [st.kind == "wasm" or st.metered for st in self.stations]  # see _meter
        # Entry plans drawn PLAN_BATCH at a time (_plans) when they draw handler times only
        self.batch = self.one_entry is not None and self._static(self.one_entry, set())
        self._ready: list[tuple[int, float, list]] = []  # drawn plans, the next one last
        self.recorders = [
            Recorder(
                ctx.warmup,
                max_rows=D.MAX_KEPT_ROWS,
                rel_error=D.HISTOGRAM_REL_ERROR,
                # service_requests.csv.gz: REQUESTS_CSV_MAX_ROWS per placement, all services
                sample_rows=max(
                    1, D.REQUESTS_CSV_MAX_ROWS // (scenario.replications * len(services))
                ),
                rng=substream(rng, 500 + i),
                horizon=ctx.duration,
            )
            for i in range(len(services))
        ]
        self.completions: list[float] = []
        self.entry_log = EntryLog()  # the entry requests' rows (the run's RequestLog)
        self.task_count = 0
        self.depth = 0  # plans being drawn, one inside the other
        # Hops (sim.systems.hops): one Route per (caller, callee, call step), made on first use.
        self.network: NetworkSpec = getattr(scenario, "network", None) or NetworkSpec()
        self.invoke = DrawBuffer(self.network.invoke_latency, substream(rng, 6))
        self.routes: dict[tuple[int, int, int], Route] = {}
        self.entered = [0] * len(services)  # arrivals at each entry service (whole window)

    def _node_pools(self, scenario: Any, placement: Any, rng: Any) -> dict[str, Nodes]:
        """A simulated node pool per Kubernetes platform (mode nodes) that runs pods or hosts a
        Kafka topic's brokers; none with the placement's `nodes: at_once`."""
        if getattr(placement, "nodes", "simulated") != "simulated":
            return {}
        # Cloud Run / Fargate / Container Apps / Flex stations are PodStations without nodes.
        pods = [
            st
            for st in self.stations
            if isinstance(st, PodStation) and st.spec.type in CLUSTER_TYPES
        ]
        topics = [q for q in self.queues if q.spec.type == "kafka" and q.spec.platform]
        names = dict.fromkeys([st.platform for st in pods] + [q.spec.platform for q in topics])
        pools: dict[str, Nodes] = {}
        for name in names:
            spec = scenario.platform(name)
            if spec.cluster.mode != "nodes":
                continue
            mine = [st for st in pods if st.platform == name]
            fixed = self._broker_pods(name)
            prng = substream(rng, 800 + name_key(name))
            draws = DrawBuffer(spec.cluster.node_provisioning, prng)
            pool = Nodes(self, spec, fixed, mine, draws, prng)  # (spot: substreams of prng)
            for st in mine:
                st.nodes = pool
            pools[name] = pool
        return pools

    def _hosted(self, platform: str) -> list[Any]:
        """The Kafka topics whose brokers run on `platform` (`hosting: cluster`)."""
        return [q for q in self.queues if q.spec.type == "kafka" and q.spec.platform == platform]

    def _broker_pods(self, platform: str) -> list[tuple[float, float]]:
        """(vCPU, memory MB) requested by each broker pod on `platform`, topic by topic."""
        return [
            (q.spec.broker_cpu, q.spec.broker_memory)
            for q in self._hosted(platform)
            for _ in range(q.spec.brokers)
        ]

    def account_pools(self) -> None:
        """Lambda's concurrency is per account and Region (lambda/latest/dg/lambda-concurrency
        .html: "all functions in your account in this Region share this pool"): the functions of
        one `account` (unset: the placement's one default account) without reserved concurrency
        share account_concurrency minus what the others reserve; a reserved function has its
        own reserved concurrency (its `limit`). So one function's burst throttles another."""
        accounts: dict[str, list[LambdaStation]] = {}
        for st in self.stations:
            if isinstance(st, LambdaStation):
                accounts.setdefault(st.spec.account or "", []).append(st)
        for group in accounts.values():
            size = min(st.spec.account_concurrency for st in group)
            reserved = sum(
                st.spec.reserved_concurrency
                for st in group
                if st.spec.reserved_concurrency is not None
            )
            pool = [0, max(0, size - reserved)]
            for st in group:
                if st.spec.reserved_concurrency is None:
                    st.pool = pool

    def pods_changed(self, platform: str, now: float) -> None:
        n = sum(
            st.node_pods()
            for st in self.stations
            if isinstance(st, PodStation) and st.platform == platform
        )
        seg = self.pod_seg.setdefault(platform, [])
        if seg and seg[-1][0] == now:
            seg[-1] = (now, n)
        else:
            seg.append((now, n))
        for q in self.queues:  # a Kafka consumer group follows its pods (a rebalance)
            if q.st.platform == platform and q.st.kind != "lambda":
                q.kick(now)

    def start(self) -> None:
        env = self.env
        for pool in self.node_pools.values():  # the node autoscaler's looks
            env.process(every(env, NODE_LOOK_S, pool.look))
        for q in self.queues:
            q.start()
        for st in self.stations:
            if isinstance(st, PodStation) and st.keda is not None:
                k = st.keda
                env.process(every(env, k.polling_interval, st.poll, first=0.0))
                env.process(every(env, k.hpa_sync_period, st.sync))
            elif isinstance(st, PodStation) and st.hpa is not None:
                env.process(every(env, st.hpa.sync_period, st.hpa_sync))
            if isinstance(st, PodStation) and st.reads_cpu:
                r = st.resolution
                env.process(every(env, r, st.scrape, first=r / 2.0))
            control = getattr(st, "control", None)  # sim.systems.stations_containers
            if control is not None:
                control(env)

    # -- plans -----------------------------------------------------------------------------------
    def _compile(self, svc: Any) -> list[tuple[Any, ...]]:
        """Steps -> tuples for the plan drawer; without work steps all work comes first."""
        out: list[tuple[Any, ...]] = []
        if not any(isinstance(s, WorkStep) for s in svc.steps):
            out.append((WORK, 1.0))
        for s in svc.steps:
            if isinstance(s, WorkStep):
                out.append((WORK, s.work))
            elif isinstance(s, CallStep):
                out.append((CALL, s.probability, s.count, s, self.index[s.call], Call(s)))
            elif isinstance(s, ParallelStep):
                out.append((PAR, [(c, self.index[c.call]) for c in s.parallel]))
            elif isinstance(s, PublishStep):
                out.append(self._pub(s))
            elif isinstance(s, OneOfStep):
                branches = [
                    (b.probability, (CALL, 1.0, b.count, b, self.index[b.call], Call(b)))
                    if isinstance(b, CallStep)
                    else (b.probability, self._pub(b, always=True))
                    for b in s.one_of
                ]
                out.append((-1, branches))
        return out

    def _pub(self, s: PublishStep, always: bool = False) -> tuple[Any, ...]:
        p = 1.0 if always else s.probability  # a one_of branch: its probability picked it
        if s.publish in self.qindex:
            return (PUB_Q, p, s.count, self.qindex[s.publish])
        if s.publish in self.bindex:
            return (PUB_B, p, s.count, self.bindex[s.publish])
        return (PUB_S, p, s.count, self.index[s.publish])

    def plan(self, i: int) -> tuple[int, float, list[tuple[Any, ...]]]:
        """Draw what a request at service i does: (service, handler s, resolved steps)."""
        self.task_count += 1
        self.depth += 1
        if self.task_count > MAX_TASKS_PER_REQUEST or self.depth > MAX_PLAN_DEPTH:
            raise InputError(
                f"one request caused more than {MAX_TASKS_PER_REQUEST:,} tasks or a chain of "
                f"more than {MAX_PLAN_DEPTH} calls and publishes: the asynchronous publishes "
                "loop back with probability 1; lower a publish `probability`",
                key="services",
            )
        h = self.handler[i].next()
        u = self.decide[i]
        steps: list[tuple[Any, ...]] = []
        for op in self.compiled[i]:
            # The commonest ops inline, without a call to _resolve: work, and a call or a queue
            # publish that always happens once (no decision drawn; the same draws, in order).
            kind = op[0]
            if kind == WORK:
                steps.append((WORK, op[1] * h))
            elif kind == CALL and op[2] == 1 and op[1] >= 1.0:
                steps.append((CALL, op[3], self.plan(op[4]), op[5]))
            elif kind == PUB_Q and op[2] == 1 and op[1] >= 1.0:
                k = op[3]
                steps.append((PUB_Q, k, self.plan(self.queues[k].st.index), self.group(k)))
            else:
                self._resolve(op, h, u, steps)
        self.depth -= 1
        return i, h, steps

    def _resolve(self, op: tuple[Any, ...], h: float, u: _Uniforms, steps: list) -> None:
        kind = op[0]
        if kind == WORK:
            steps.append((WORK, op[1] * h))
        elif kind == CALL:
            if op[1] >= 1.0 or u.next() < op[1]:
                for _ in range(op[2]):
                    steps.append((CALL, op[3], self.plan(op[4]), op[5]))
        elif kind == PAR:
            steps.append((PAR, [(c, self.plan(j)) for c, j in op[1]]))
        elif kind == PUB_Q:  # the message's plan at the consumer, and its FIFO group
            if op[1] >= 1.0 or u.next() < op[1]:
                target = self.queues[op[3]].st.index
                for _ in range(op[2]):
                    steps.append((kind, op[3], self.plan(target), self.group(op[3])))
        elif kind == PUB_S:
            if op[1] >= 1.0 or u.next() < op[1]:
                for _ in range(op[2]):
                    steps.append((kind, op[3], self.plan(op[3])))
        elif kind == PUB_B:  # each rule matching the event: its target's plan
            if op[1] >= 1.0 or u.next() < op[1]:
                bus, targets = self.buses[op[3]], self.bus_targets[op[3]]
                for _ in range(op[2]):
                    hits = []
                    for k in bus.match():
                        is_q, j = targets[k]
                        if is_q:
                            fifo = getattr(self.queues[j], "fifo", False)  # Kafka: none
                            g = rule_group(op[3], k) if fifo else 0
                            hits.append((k, self.plan(self.queues[j].st.index), g))
                        else:
                            hits.append((k, self.plan(j), 0))
                    steps.append((PUB_B, op[3], hits))
        else:  # one_of
            x, acc = u.next(), 0.0
            for p, branch in op[1]:
                acc += p
                if x < acc:
                    self._resolve(branch, h, u, steps)
                    break

    def _static(self, i: int, seen: set[int]) -> bool:
        """Whether a plan at service i draws nothing but one handler time per service (every
        op happens exactly once, no FIFO group, no bus, no service twice in the tree): then n
        plans can be drawn together, service by service, in the order n plan(i) would."""
        if i in seen:
            return False
        seen.add(i)
        for op in self.compiled[i]:
            kind = op[0]
            if kind == WORK:
                continue
            if kind == PAR:
                if not all(self._static(j, seen) for _, j in op[1]):
                    return False
            elif kind in (CALL, PUB_S) and op[1] >= 1.0 and op[2] == 1:
                if not self._static(op[4] if kind == CALL else op[3], seen):
                    return False
            elif kind == PUB_Q and op[1] >= 1.0 and op[2] == 1 and self.group_pick[op[3]] is None:
                if not self._static(self.queues[op[3]].st.index, seen):
                    return False
            else:
                return False
        return len(seen) <= MAX_PLAN_DEPTH

    def _plans(self, i: int, n: int) -> list[tuple[int, float, list[tuple[Any, ...]]]]:
        """n plans at service i for a _static tree: each service's n handler times in one take
        (each service occurs once in the tree, so its k-th draw is the k-th plan's, as with
        plan()), one column of steps per op (w * h: the same float product)."""
        h = self.handler[i].take(n)
        cols: list[list[tuple[Any, ...]]] = []
        for op in self.compiled[i]:
            kind = op[0]
            if kind == WORK:
                w = op[1]
                cols.append([(WORK, w * x) for x in h])
            elif kind == CALL:
                cs, call = op[3], op[5]
                cols.append([(CALL, cs, p, call) for p in self._plans(op[4], n)])
            elif kind == PAR:
                branches = [[(c, p) for p in self._plans(j, n)] for c, j in op[1]]
                cols.append([(PAR, list(b)) for b in zip(*branches, strict=True)])
            elif kind == PUB_Q:
                k = op[3]
                cols.append([(PUB_Q, k, p, 0) for p in self._plans(self.queues[k].st.index, n)])
            else:  # PUB_S
                j = op[3]
                cols.append([(PUB_S, j, p) for p in self._plans(j, n)])
        steps: list[Any] = list(zip(*cols, strict=True)) if cols else [() for _ in h]  # read only
        return list(zip([i] * n, h, steps, strict=True))

    def group(self, q: int) -> int:
        """A message's MessageGroupId (FIFO; drawn uniformly from a common stream), else 0."""
        pick = self.group_pick[q]
        if pick is None:
            return 0
        n = self.queues[q].spec.groups
        return min(int(pick.next() * n), n - 1)

    # -- heap ------------------------------------------------------------------------------------
    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> None:
        self.seq += 1
        self.heap.put(t, self.seq, fn, arg)

    def resume_at(self, t: float, proc: Proc, value: Any) -> None:
        self.seq += 1
        self.heap.put(t, self.seq, self._resume, (proc, value))

    def spawn(self, gen: Generator, done: Callable[[Any], None] | None) -> None:
        self._run(Proc(gen, done), None)

    def _resume(self, arg: tuple[Proc, Any]) -> None:
        self._run(arg[0], arg[1])

    def _run(self, proc: Proc, value: Any = None) -> None:
        gen = proc.gen
        while True:
            self.cur = proc  # the running process: what _visit queues at a station
            if value is None and proc.done is None:
                for cmd in gen:  # noqa: B007  (one turn, see advance; cmd is read below)
                    break
                else:
                    return
            else:
                try:
                    cmd = next(gen) if value is None else gen.send(value)
                except StopIteration as stop:
                    if proc.done is not None:
                        proc.done(stop.value)
                    return
            if type(cmd) is float:
                self.seq += 1
                self.heap.put(self.now + cmd, self.seq, self.wake, proc)
                return
            value = self._command(proc, cmd)
            if value is _WAIT:
                return

    def _command(self, proc: Proc, cmd: tuple) -> Any:
        """Carry out a command `proc` yielded: the value to resume it with now, or _WAIT (a
        station, an answer or a timer resumes it later)."""
        kind = cmd[0]
        if kind == PARK:
            return _WAIT
        if kind == ACQ:
            value = cmd[1].acquire(proc, self.now)
            return _WAIT if value is None else value
        if kind == ATTEMPT:  # start the callee after the hop; the answer or timeout resumes
            _, plan, root, hop, timeout = cmd
            token = _Attempt(self, proc, self.stations[plan[0]])
            now = self.now
            if hop > 0:
                self.at(now + hop, token.start, (plan, root))
            else:
                self._run(Proc(self.visit(plan, root), token.answer), None)
            self._client_timeout(token, now, timeout)
        elif kind == DETACH:  # _fused's callee, slot asked for: a process of its own now
            _, kid, plan, root, got, timeout = cmd
            token = _Attempt(self, proc, self.stations[plan[0]])
            now = self.now
            kid.gen, kid.done = self._visit(plan, root, got), token.answer
            if got is None:  # queued at the station (which holds `kid`): wait there
                kid.gen.send(None)
            else:
                self._run(kid, None)
            self._client_timeout(token, now, timeout)
        elif kind == DO_CALL:  # a call as a process of its own (_steps uses yield from)
            self.spawn(self._call(cmd[1], cmd[2], cmd[3], cmd[4]), _Resumer(self, proc))
        else:  # DO_PAR
            join = _Join(self, proc, len(cmd[1]))
            kids = proc.kids if type(proc) is _Child or type(proc) is _PodRun else None
            for cs, plan in cmd[1]:
                kid = Proc(self._call(cs, plan, cmd[2], cmd[3]), join.one)
                if kids is not None:
                    kids.append(kid)
                self._run(kid, None)
        return _WAIT

    def _client_timeout(self, token: _Attempt, now: float, timeout: float) -> None:
        """An attempt's client timeout, unless it answered already or the run ends first."""
        if now + timeout < self.end and not token.settled:
            timers = self.timeouts.get(timeout)
            if timers is None:
                timers = self.timeouts[timeout] = _Timeouts(self)
            self.seq += 1
            timers.add(now + timeout, self.seq, token)

    # -- processes -------------------------------------------------------------------------------
    def _visit(
        self, plan: tuple[int, float, list], root: Root, got: Any = _ACQUIRE
    ) -> Generator[Any, Any, Any]:
        """A request at one station: wait for a slot, run the steps, answer. Returns an outcome.
        `got`: what the station's acquire answered already (_fused's callees), else it asks."""
        st = self.stations[plan[0]]
        if st.guarded:  # pods a spot kill can cut (_fused never hands it a slot: `got` unset)
            return (yield from self._spot_visit(st, plan, root))  # type: ignore[arg-type]
        arrival = self.now
        if got is _ACQUIRE:
            st.calls_in += 1
            got = st.acquire(self.cur, arrival)  # self.cur: the process running this generator
        if got is None:  # queued: the station's release resumes this process with the slot
            got = yield PARKED
        if type(got) is int:  # refused on arrival, or after waiting (Cloud Run's 429)
            now = self.now
            self._row(st, arrival, now, now, now - arrival, 0.0, False, got, 0)
            return got
        slot, startup, cold = got
        start = self.now
        if startup > 0:
            yield startup
        ran_from = self.now
        if st.is_lambda and not fits(st, [plan]):  # None: the function timeout ended it
            outcome = yield from self.timed(st, self._steps(plan, st, root))
        elif st.response_limit is not None:
            args = (slot, arrival, start, ran_from, startup, cold)
            return (yield from self.limited(st, plan, root, args))
        else:
            outcome = yield from self._steps(plan, st, root)
        return self._close(st, plan[0], outcome, slot, arrival, start, ran_from, startup, cold)

    def _close(
        self,
        st: Station,
        i: int,
        outcome: Any,
        slot: int,
        arrival: float,
        start: float,
        ran_from: float,
        startup: float,
        cold: bool,
    ) -> int:
        """A visit's handler ended now with `outcome` (None: the function timeout ended it):
        the handler's error draw, the bill, the slot back, its row. Returns the outcome."""
        rate = st.error_rate
        if outcome == OK and rate > 0 and self.fail[i].next() < rate:
            outcome = REJECTED  # the handler answered an error
        end = self.now
        if st.is_lambda:
            st.bill_invocation(end - ran_from)  # type: ignore[attr-defined]
        if outcome is None:
            outcome = TIMED_OUT
            st.discard(slot, end)  # type: ignore[attr-defined]
        elif type(st) is PodStation:
            pod = st
            pod.give_slot(slot, end)
        else:
            st.release(slot, end)
        st.log.add(arrival, ran_from, end, start - arrival, startup, cold, outcome, slot)
        return outcome

    @cython.locals(
        st=Station,
        dst=Station,
        i=cython.Py_ssize_t,
        j=cython.Py_ssize_t,
        arrival=cython.double,
        start=cython.double,
        ran_from=cython.double,
        startup=cython.double,
        dt=cython.double,
        now=cython.double,
        hop=cython.double,
        c_startup=cython.double,
        c_from=cython.double,
        attempt=cython.Py_ssize_t,
        root=Root,
        call=Call,
        pod=PodStation,
    )
    def _fused(
        self, plan: tuple[int, float, list], root: Root, over: float | None = None
    ) -> Generator[Any, Any, Any]:
        """_visit with its steps in this generator (no _steps / _call / _Attempt per visit), and
        a synchronous call without hop latency to a work-only callee (SystemModel.leaf) that
        gets its slot at once and whose known run ends before the client timeout run here too:
        its slot, work and row, no process of its own and no timer (the timer would never
        fire); else the callee becomes a process of its own with its timer (DETACH), as the
        general path's ATTEMPT from there on. `over` (an entry visit: its gateway / ingress
        latency): the entry row written here (as _EntryDone). The same events at the same times
        in the same order, the same draws, as the general path (SystemModel.fast = False)."""
        i = plan[0]
        st = self.stations[i]
        if st.general:  # spot pods, a response limit (entries: see _arrive)
            return (yield from self._visit(plan, root))
        st.calls_in += 1
        arrival = self.now
        if type(st) is PodStation:
            pod = st
            got = pod.take_slot(self.cur, arrival)
        else:
            got = st.acquire(self.cur, arrival)
        if got is None:
            got = yield PARKED
        if type(got) is int:  # refused on arrival, or after waiting (Cloud Run's 429)
            ran_from = start = self.now
            self._row(st, arrival, start, start, start - arrival, 0.0, False, got, 0)
            outcome = got
            startup, cold = 0.0, False
        else:
            slot, startup, cold = got
            start = self.now
            if startup > 0:
                yield startup
            ran_from = self.now
            if st.is_lambda and not fits(st, [plan]):
                outcome = yield from self.timed(st, self._steps(plan, st, root))
            else:
                outcome = OK
                meter = self.meter
                for step in plan[2]:
                    kind = step[0]
                    if kind == WORK:
                        dt = step[1] * st.scale
                        st.work_s += dt
                        if meter[i]:
                            self._meter(st, dt)
                        if dt > 0:
                            yield dt
                    elif kind == CALL:  # _call's attempts, each in this process when it can be
                        cs, cplan, call = step[1], step[2], step[3]
                        j = cplan[0]
                        dst = self.stations[j]
                        for attempt in range(call.retries + 1):
                            if attempt:
                                cap = min(cs.backoff.cap, cs.backoff.base * 2 ** (attempt - 1))
                                yield self.jitter.next() * cap
                            st.calls_out[j] += 1
                            hop = self._call_hop(st, dst, call)
                            if hop > 0 or not self.leaf[j]:
                                outcome = yield (ATTEMPT, cplan, root, hop, call.timeout)
                            else:
                                now = self.now
                                dst.calls_in += 1
                                kid = Proc(None, None)  # type: ignore[arg-type]  # if queued
                                if type(dst) is PodStation:
                                    pod = dst
                                    got = pod.take_slot(kid, now)
                                else:
                                    got = dst.acquire(kid, now)
                                if type(got) is int:  # refused: the callee's row, its answer
                                    self._row(dst, now, now, now, 0.0, 0.0, False, got, 0)
                                    outcome = got
                                elif got is not None and self._quick(dst, cplan, got[1], call):
                                    c_slot, c_startup, c_cold = got
                                    if c_startup > 0:
                                        yield c_startup
                                    c_from = self.now
                                    for w in cplan[2]:
                                        dt = self._work(dst, j, w[1])
                                        if dt > 0:
                                            yield dt
                                    outcome = self._close(
                                        dst, j, OK, c_slot, now, now, c_from, c_startup, c_cold
                                    )
                                else:
                                    outcome = yield (DETACH, kid, cplan, root, got, call.timeout)
                            if outcome == OK:
                                st.calls_ok[j] += 1
                                break
                        if outcome != OK:
                            break
                    elif kind == PAR:
                        outcome = yield (DO_PAR, step[1], st, root)
                        if outcome != OK:
                            break
                    else:
                        outcome = self._publish(step, st, root)
                        if outcome != OK:
                            break
            outcome = self._close(st, i, outcome, slot, arrival, start, ran_from, startup, cold)
        if over is not None:
            self._entry_done(root, over, outcome, ran_from, start - arrival, startup, cold)
        return outcome

    def _quick(self, dst: Station, plan: tuple, startup: float, call: Call) -> bool:
        """Whether a work-only callee starting now (after `startup`) answers before the client
        timeout fires (or the run ends first: no timer), and a Lambda's within its timeout."""
        now = self.now
        end = now + startup if startup > 0 else now  # the float its sleeps will reach
        for step in plan[2]:
            dt = step[1] * dst.scale
            if dt > 0:
                end += dt
        deadline = now + call.timeout
        if not (end < deadline or deadline >= self.end):
            return False
        return not dst.is_lambda or fits(dst, [plan])

    def _work(self, st: Station, i: int, w: float) -> float:
        """A work step of w handler seconds starts now at station i: its seconds, counted."""
        dt = w * st.scale
        st.work_s += dt
        if self.meter[i]:
            self._meter(st, dt)
        return dt

    def _meter(self, st: Station, dt: float) -> None:
        """A work step of dt seconds starts now: Wasm's CPU time, an autoscaler's meters."""
        if st.kind == "wasm":
            st.cpu_s += dt * st.svc.cpu_bound  # type: ignore[attr-defined]
        elif st.metered:
            st.work(self.now, dt)  # type: ignore[attr-defined]

    def _spot_visit(
        self, st: SpotPodStation, plan: tuple[int, float, list], root: Root
    ) -> Generator[Any, Any, Any]:
        """_visit on a SpotPodStation: the handler runs as a _PodRun on its pod; a kill of the
        pod ends the visit with REJECTED at the kill (`in_flight: fail`) or sends the request
        again at once (`retry`: a new slot, the same plan, the arrival kept)."""
        st.calls_in += 1
        arrival = self.now
        again = False  # sent again after a kill: held while no pod is ready, as the kernel
        cold = None  # the first slot's (a request sent again keeps it, as the kernel's _cut)
        while True:
            proc = self.cur
            got = st.acquire(proc, self.now, again)
            if got is None:
                got = yield PARKED
            if type(got) is int:
                self._row(st, arrival, self.now, self.now, self.now - arrival, 0.0, False, got, 0)
                return got
            slot = got[0]
            if cold is None:
                cold = got[2]
            start = self.now
            outcome = yield from self.on_pod(st, slot, self._steps(plan, st, root))
            if outcome != KILLED:
                break
            if not st.retry:
                self._row(st, arrival, start, self.now, start - arrival, 0.0, cold, REJECTED, slot)
                return REJECTED
            again = True
        rate = st.error_rate
        if outcome == OK and rate > 0 and self.fail[plan[0]].next() < rate:
            outcome = REJECTED  # the handler answered an error
        end = self.now
        st.release(slot, end)
        self._row(st, arrival, start, end, start - arrival, 0.0, cold, outcome, slot)
        return outcome

    def on_pod(
        self, st: SpotPodStation, slot: int, body: Generator, request: bool = True
    ) -> Generator[Any, Any, Any]:
        """Run `body` (a request's handler, or a queue consumer's batch: `request` False) on pod
        `slot` as a _PodRun child of the running process: its outcome, or KILLED when a spot
        kill cut it (or the pod was gone when it started)."""
        proc = self.cur
        run = _PodRun(self, proc, body, request)
        if not st.enter(slot, run):
            return KILLED
        self._run(run, None)
        self.cur = proc
        if run.settled:
            outcome = run.value
        else:
            run.parked = True
            outcome = yield PARKED
        st.leave(slot, run)
        return outcome

    def running(self) -> Any:
        """The _PodRun whose handler is running now (None: another process)."""
        cur = self.cur
        return cur if type(cur) is _PodRun else None

    def timed(self, st: Any, body: Generator) -> Generator[Any, Any, Any]:
        """Run a Lambda handler `body` under the function timeout (lambda/latest/dg/
        configuration-timeout.html: "Lambda stops the function at the timeout"); its outcome, or
        None when the timeout ended it (then now = start + timeout). Callers skip it for a body
        that cannot reach the timeout (sim.systems.sqs.fits)."""
        token = _Deadline(self, self.cur)
        child = token.child = _Child(body, token.answer)
        self.at(self.now + st.timeout, token.expire, None)
        return (yield from self._under(token, child))

    def _under(self, token: _Deadline, child: Proc) -> Generator[Any, Any, Any]:
        """Run `child` now and wait for `token` to settle (the child's answer or the token's
        deadline): its value at once when the child ended without yielding, else parked."""
        self._run(child, None)
        self.cur = token.proc
        if token.settled:
            return token.value
        token.parked = True
        return (yield PARKED)

    def limited(
        self, st: Station, plan: tuple[int, float, list], root: Root, args: tuple
    ) -> Generator[Any, Any, Any]:
        """A handler under the station's `response_limit` from the visit's arrival
        (the kernels' request_timeout, sim.platforms.kubernetes: "timed_out for the client at
        the deadline while its pod keeps working"): its outcome, or TIMED_OUT at the limit; the
        handler runs on to its end in a child (its calls and publishes too), which closes the
        visit's slot (the visit's row is written at the limit, when the client has its answer)."""
        assert st.response_limit is not None
        token = _Limit(self, self.cur)
        slot, arrival, start, ran_from, startup, cold = args
        self.at(max(arrival + st.response_limit, self.now), token.expire, None)
        child = Proc(self._run_on(st, plan, root, args, token), token.answer)
        outcome = yield from self._under(token, child)
        if token.late:
            st.timeouts += 1  # type: ignore[attr-defined]
            now = self.now
            self._row(st, arrival, ran_from, now, start - arrival, startup, cold, outcome, slot)
        return outcome

    def _run_on(
        self, st: Station, plan: tuple, root: Root, args: tuple, token: _Limit
    ) -> Generator[Any, Any, Any]:
        outcome = yield from self._steps(plan, st, root)
        if token.settled:  # the limit answered first (and writes the row): the slot back
            st.release(args[0], self.now)
            return TIMED_OUT
        return self._close(st, plan[0], outcome, *args)

    def _steps(
        self, plan: tuple[int, float, list], st: Station, root: Root
    ) -> Generator[Any, Any, Any]:
        scale = st.scale
        metered = self.meter[st.index]
        for step in plan[2]:
            kind = step[0]
            if kind == WORK:
                dt = step[1] * scale
                st.work_s += dt
                if metered:
                    self._meter(st, dt)
                if dt > 0:
                    yield dt
            elif kind == CALL:  # in this process: its attempts resume this generator
                r = yield from self._call(step[1], step[2], st, root)
                if r != OK:
                    return r
            elif kind == PAR:
                r = yield (DO_PAR, step[1], st, root)
                if r != OK:
                    return r
            else:
                r = self._publish(step, st, root)
                if r != OK:
                    return r
        return OK

    def _publish(self, step: tuple[Any, ...], st: Station, root: Root) -> int:
        """A publish step (the caller goes on): OK, or THROTTLED (a FIFO queue's send quota)."""
        kind = step[0]
        if kind == PUB_Q:
            q = self.queues[step[1]]
            gate = self.gates[step[1]]
            if gate is not None:  # a FIFO queue's send quota and deduplication
                g = gate.check(step, self.now)
                if g == 2:
                    return THROTTLED  # ThrottlingException: the request fails here
                if g == 1:  # accepted, not delivered
                    q.sent += 1
                    st.pub_out[step[1]] += 1
                    return OK
            root.pending += 1
            st.pub_out[step[1]] += 1
            now = self.now
            if type(q) is SqsQueue:  # (the compiled build's C call, its fields typed)
                sq = q
                sq.sent += 1
                sq.put([step[2], root, now, now, 0, step[3], sq.sent], now)
            else:
                q.sent += 1
                q.put([step[2], root, now, now, 0, step[3], q.sent], now)
        elif kind == PUB_S:  # an event straight to a service, fire and forget
            root.pending += 1
            st.events_out[step[2][0]] += 1
            self.spawn(self._async(step[2], root, st), _TaskDone(self, root))
        else:  # PUB_B: PutEvents; each matched rule's delivery after its latency
            bus = self.buses[step[1]]
            st.bus_out[step[1]] += 1
            root.pending += len(step[2])
            now = self.now
            ev = [now]  # this PutEvents entry: its event id (a FIFO target's deduplication)
            for (k, plan, g), lat in zip(step[2], bus.put([h[0] for h in step[2]]), strict=True):
                self.at(now + lat, self._bus_deliver, (step[1], k, plan, root, now, g, ev, 0))
        return OK

    def _bus_deliver(self, arg: tuple) -> None:
        b, k, plan, root, put_t, group, ev, failures = arg
        bus = self.buses[b]
        is_q, j = self.bus_targets[b][k]
        now = self.now
        if is_q:  # SendMessage: the queue has it (and settles the task)
            q, gate = self.queues[j], self.gates[j]  # a FIFO queue's quota and deduplication
            check = 0 if gate is None else gate.check(ev, now)
            sent = fifo_send(bus, q, check, k, failures, put_t, now, self.warmup)
            if type(sent) is float:  # throttled: EventBridge retries the delivery
                arg = (b, k, plan, root, put_t, group, ev, failures + 1)
                self.at(now + sent, self._bus_deliver, arg)
            elif sent != SEND:  # a duplicate (accepted, not delivered) or retries out: the DLQ
                self.task_done(root, now)
            else:
                q.put([plan, root, now, now, 0, group, q.sent], now)
        elif self.stations[j].kind == "lambda":  # accepted into Lambda's async queue
            bus.done(k, put_t, now, self.warmup)
            self.spawn(self._lambda_event(plan, root), _TaskDone(self, root))
        else:
            self.spawn(self._api_destination(b, k, plan, root, put_t), _TaskDone(self, root))

    def _lambda_event(self, plan: tuple, root: Root) -> Generator[Any, Any, Any]:
        """An asynchronous invocation: attempts until success, retries used up or the maximum
        event age (sim.systems.lambda_async)."""
        aq = self.stations[plan[0]].async_q
        aq.events += 1
        t0, tries = self.now, [0, 0]
        while True:
            outcome = yield from self.visit(plan, root)
            delay = aq.after(outcome, t0, self.now, tries)
            if delay is None:
                return outcome
            yield delay
            aq.waiting -= 1

    def _api_destination(
        self, b: int, k: int, plan: tuple, root: Root, put_t: float
    ) -> Generator[Any, Any, Any]:
        """An EventBridge API destination: paced HTTP requests with the retry policy."""
        bus = self.buses[b]
        dst = self.stations[plan[0]]
        failures = 0
        while True:
            start = bus.slot(k, self.now)
            if start > self.now:
                yield start - self.now
            bus.invocations += 1
            bus.inflight += 1
            outcome = yield (ATTEMPT, plan, root, dst.overhead(), bus.spec.http_timeout)
            bus.inflight -= 1
            if outcome == OK:
                bus.done(k, put_t, self.now, self.warmup)
                return OK
            failures += 1
            delay = bus.retry(k, failures, put_t, self.now)
            if delay is None:
                return outcome
            if delay > 0:
                yield delay

    def _hop(self, src: Station, dst: Station, cs: CallStep | None = None) -> float:
        """The latency of one call attempt (or event) from src to dst, counted on its Route."""
        return self._cross(self._route(src, dst, cs), dst)

    def _route(self, src: Station, dst: Station, cs: CallStep | None) -> Route:
        key = (src.index, dst.index, id(cs))
        route = self.routes.get(key)
        if route is None:  # (self.routes: in first-use order, the order the bill sums them)
            route = self.routes[key] = Route(self, src, dst, cs)
        return route

    def _call_hop(self, src: Station, dst: Station, call: Call) -> float:
        """_hop of a call step: its Route kept on the step's Call (no key to build and hash)."""
        route = call.route
        if route is None or route.src != src.index or route.dst != dst.index:
            route = call.route = self._route(src, dst, call.step)
        return self._cross(route, dst)

    def _cross(self, route: Route, dst: Station) -> float:
        route.n += 1
        via = route.via
        if via == "direct":
            return 0.0  # pod to pod
        if via == "invoke":
            return self.invoke.next()
        return dst.overhead()  # API Gateway, the load balancer, the Wasm edge

    def _call(
        self, cs: CallStep, plan: tuple, src: Station, root: Root
    ) -> Generator[Any, Any, Any]:
        """A synchronous call with a client timeout and full-jitter retries (AWS SDK standard)."""
        dst = self.stations[plan[0]]
        outcome = OK
        for attempt in range(cs.retries + 1):
            if attempt:
                cap = min(cs.backoff.cap, cs.backoff.base * 2 ** (attempt - 1))
                yield self.jitter.next() * cap
            src.calls_out[dst.index] += 1
            outcome = yield (ATTEMPT, plan, root, self._hop(src, dst, cs), cs.timeout)
            if outcome == OK:
                src.calls_ok[dst.index] += 1
                return OK
        return outcome

    def _async(self, plan: tuple, root: Root, src: Station) -> Generator[Any, Any, Any]:
        """An event to a service (Lambda asynchronous invocation; a pod's fire-and-forget)."""
        dst = self.stations[plan[0]]
        hop = self._hop(src, dst)
        if hop > 0:
            yield hop
        if dst.kind == "lambda":
            return (yield from self._lambda_event(plan, root))
        return (yield from self.visit(plan, root))

    def _row(
        self,
        st: Station,
        arrival: float,
        start: float,
        end: float,
        wait: float,
        startup: float,
        cold: bool,
        outcome: int,
        inst: int,
    ) -> None:
        st.log.add(arrival, start, end, wait, startup, cold, outcome, inst)

    def _entry_done(
        self,
        root: Root,
        over: float,
        outcome: int,
        start: float,
        wait: float,
        startup: float,
        cold: bool,
    ) -> None:
        """The entry request answered now: its row in the end-to-end log (start, wait, startup,
        cold: the entry visit's)."""
        now = self.now
        self.entry_log.add(root.arrival, start, now, wait, startup, cold, outcome, over)
        root.sync_done = True
        if root.pending == 0 and root.arrival >= self.warmup:
            self.completions.append(now - root.arrival)

    def task_done(self, root: Root, now: float) -> None:
        root.pending -= 1
        if now > root.last:
            root.last = now
        if root.pending == 0 and root.sync_done and root.arrival >= self.warmup:
            self.completions.append(root.last - root.arrival)

    # -- entry -----------------------------------------------------------------------------------
    def entry_service(self) -> int:
        """The service the next arrival enters (a draw only when several take arrivals)."""
        if self.one_entry is not None:
            i = self.one_entry
        else:
            x = self.entry_pick.next()
            i = 0
            last = len(self.entry_cum) - 1  # (the last share may round below 1.0)
            for c in self.entry_cum:  # the first service whose cumulative share exceeds x
                if x < c or i == last:
                    break
                i += 1
        self.entered[i] += 1
        return i

    def _arrive(self, t: float) -> None:
        i = self.entry_service()
        if self.batch:
            if not self._ready:
                self._ready = self._plans(i, PLAN_BATCH)[::-1]
            plan = self._ready.pop()
        else:
            self.task_count = 0
            plan = self.plan(i)
        root = Root(t)
        st = self.stations[i]
        over = st.overhead()
        if self.fast and not st.general:  # spot pods, a response limit: the general visit
            self._run(Proc(self._fused(plan, root, over), None), None)
        else:
            self._run(Proc(self._visit(plan, root), _EntryDone(self, root, st, over)), None)

    @cython.locals(
        i=cython.Py_ssize_t,
        ta=cython.double,
        lim=cython.double,
        t=cython.double,
        until=cython.double,
        proc=Proc,
        heap=EventHeap,
        arr=list,
    )
    def advance(self, until: float) -> None:
        heap, wake = self.heap, self.wake
        arr, i = self._arr, self._i
        while True:
            if i < len(arr):
                ta = arr[i]
            elif self._next_chunk():
                arr, i = self._arr, 0
                ta = arr[0]
            else:
                ta = INF
            # heap events before the next arrival (on a tie the arrival goes first) and `until`
            lim = ta if ta < until else until
            while heap.top() < lim:
                fn = heap.take()
                t = heap.t
                arg = heap.arg
                self.now = t
                if fn is not wake:
                    fn(arg)
                    continue
                # a sleep ended (the commonest event): _run's first turn here, without a call
                proc = arg
                self.cur = proc
                if proc.done is None:
                    # its value unused (fused entry visits, SQS batches: most ends): a for's one
                    # turn, whose end raises no StopIteration to catch (~1,400 instructions)
                    for cmd in proc.gen:  # noqa: B007  (cmd is read below)
                        break
                    else:
                        continue
                else:
                    try:
                        cmd = next(proc.gen)  # (send(None) without the method lookup)
                    except StopIteration as stop:
                        proc.done(stop.value)
                        continue
                if type(cmd) is float:
                    self.seq += 1
                    heap.put(t + cmd, self.seq, wake, proc)
                    continue
                value = self._command(proc, cmd)
                if value is not _WAIT:
                    self._run(proc, value)
            if ta >= until:
                break
            self.now = ta
            i += 1
            self._arrive(ta)
        self._i = i
        self.now = max(self.now, min(until, self.end))
        if len(self.entry_log) > 50_000:
            self.flush_all()

    def flush(self) -> None:
        super().flush()  # the reference's rows (it logs as the kernels do)
        if len(self.entry_log):
            self.ctx.recorder.add(self.entry_log.take())

    def flush_all(self) -> None:
        self.flush()
        for st, rec in zip(self.stations, self.recorders, strict=True):
            if len(st.log):
                rec.add(st.log.take())

    # -- reporting -------------------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, float]:
        for q in self.queues:
            q.sample(now)
        for bus in self.buses:
            bus.sample(now)
        inst = sum(st.instances(now) for st in self.stations)
        busy = sum(st.busy for st in self.stations)
        queued = sum(st.queued() for st in self.stations) + sum(q.backlog() for q in self.queues)
        queued += sum(b.pending for b in self.buses)
        return {
            "instances": inst,
            "busy": float(busy),
            "idle": inst - busy,
            "queued": float(queued),
        }

    def finish(self) -> None:
        self.flush_all()

    def instance_stats(self) -> dict[str, float]:
        span = max(self.end, _EPS)
        mean = 0.0
        for st in self.stations:
            if isinstance(st, LambdaStation):
                mean += st.env_seconds(self.end) / span
            elif isinstance(st, PodStation):
                mean += st.pod_seconds(self.end) / span
            else:
                mean += st.work_s / span
        peak = float(
            sum(st.pods_peak if isinstance(st, PodStation) else st.peak for st in self.stations)
        )
        return {"mean": mean, "peak": peak}

    def first_of(self, platform: str) -> Station:
        """The platform's first service (in the system's order): the one a cost shared by all
        of them (a VPC's NAT Gateway hours) is billed on."""
        return next(st for st in self.stations if st.platform == platform)

    def bills(self) -> dict[str, Bill]:
        """The bill of each service, and of each queue, for the window."""
        month = self.ctx.month_s
        out: dict[str, Bill] = {}
        for st in self.stations:
            s = st.spec
            if isinstance(st, LambdaStation):
                requests, billed_ms = st.billed(self.end)
                usage = LambdaUsage(
                    requests=requests,
                    on_demand_billed_ms=billed_ms,
                    window_s=self.end,
                    init_billed_ms=st.init_ms,
                    gateway_requests=st.gateway_requests,
                    # the functions of one platform share its VPC's gateway: its hours (and
                    # IPv4) once, on the platform's first function; data per function
                    nat_gateway_hours=self.first_of(st.platform) is st,
                )
                out[st.name] = lambda_bill(
                    usage,
                    memory_mb=st.memory,
                    architecture=s.architecture,
                    api_gateway=s.api_gateway,
                    init_billing=s.init_billing,
                    free_tier=s.free_tier,
                    settings=s.cost,
                    month_s=month,
                )
        for st in self.stations:
            own = getattr(st, "own_bill", None)  # sim.systems.stations_containers
            if own is not None:
                out[st.name] = own(self.end, month)
        for name in self.wasm_busy:  # one Workers/Fastly account per platform, shared pro rata
            group = [st for st in self.stations if st.platform == name]
            spec = group[0].spec
            wasm_usage = WasmUsage(
                requests=sum(st.ran for st in group),  # type: ignore[attr-defined]
                cpu_ms_total=sum(st.cpu_s for st in group) * 1e3,  # type: ignore[attr-defined]
                window_s=self.end,
            )
            bill = wasm_bill(wasm_usage, spec.pricing, spec.custom, month_s=month)
            total = max(wasm_usage.requests, 1)
            for st in group:
                out[st.name] = _share(bill, st.ran / total)  # type: ignore[attr-defined]
        clusters = {st.platform for st in self.stations if st.spec.type in CLUSTER_TYPES}
        hosted = {
            q.spec.platform for q in self.queues if q.spec.type == "kafka" and q.spec.platform
        }
        shares: dict[str, Bill] = {}
        for name in sorted(clusters | hosted):
            shares.update(self._cluster_bill(name))
        out.update({k: b for k, b in shares.items() if not k.startswith("queue:")})
        cloud = {k: b.monthly_usd for k, b in {**out, **shares}.items()}  # before the hops
        self._hop_bills(out)
        for q in self.queues:
            own = q.bill(self.end, month)  # SQS requests, MSK brokers, or hosted brokers' volumes
            share = shares.get(f"queue:{q.name}")
            out[f"queue:{q.name}"] = own if share is None else add_lines(own, share)
        for bus in self.buses:
            out[f"queue:{bus.name}"] = eventbridge_bill(
                events=bus.sent,
                event_size=bus.spec.event_size,
                api_invocations=bus.invocations,
                window_s=self.end,
                month_s=month,
            )
        self._operating(out, cloud, hosted)
        return out

    def _operating(self, out: dict[str, Bill], cloud: dict[str, float], hosted: set[str]) -> None:
        """Each platform's `ops` / `ops_profile` once per placement that uses it (its services,
        or the brokers of a topic it hosts), apart from the cloud bill, split over its services
        (and hosted topics) by their share of its cloud bill (equal shares when that is 0)."""
        for name in dict.fromkeys([st.platform for st in self.stations] + sorted(hosted)):
            spec = self.scenario.platform(name)
            if not (getattr(spec, "ops", None) or getattr(spec, "ops_profile", None)):
                continue
            b = BillBuilder(self.end, self.ctx.month_s)
            add_operating(b, spec.ops, spec.ops_profile)
            ops = b.build(0)
            users = [st.name for st in self.stations if st.platform == name]
            users += [f"queue:{q.name}" for q in self._hosted(name)]
            weights = [cloud.get(u, 0.0) for u in users]
            total = sum(weights)
            for u, w in zip(users, weights, strict=True):
                out[u] = with_operating(out[u], ops, w / total if total > 0 else 1 / len(users))

    def _hop_bills(self, out: dict[str, Bill]) -> None:
        """Each caller's hop lines (NAT data, VPC endpoint data, cross-AZ) on its own bill, and
        the VPC endpoints' hours as the `network` part (sim.systems.hops)."""
        net = self.network
        endpoints = set(net.vpc_endpoints) if net is not None else set()
        n = len(self.stations)
        nat_b, ep_b, az_b = [0.0] * n, [0.0] * n, [0.0] * n
        for r in self.routes.values():
            b = r.n * r.bytes
            nat_b[r.src] += b * r.nat
            ep_b[r.src] += b * r.endpoint
            az_b[r.src] += b * r.cross
        for st in self.stations:  # SQS: sends of callers behind NAT, receives of pod workers
            if not behind_nat(st.spec):
                continue
            i = st.index
            for k, q in enumerate(self.queues):
                b = self.stations[i].pub_out[k] * q.spec.message_size
                if q.st is st and not q.lambda_esm:
                    b += q.received * q.spec.message_size
                if "sqs" in endpoints:
                    ep_b[i] += b
                else:
                    nat_b[i] += b
        for st in self.stations:
            i = st.index
            if nat_b[i] or ep_b[i] or az_b[i]:
                gb: Any = getattr(getattr(st.spec, "cost", None), "gb", "binary")
                hops = hop_bill(nat_b[i], ep_b[i], az_b[i], self.end, self.ctx.month_s, gb)
                out[st.name] = add_lines(out[st.name], hops)
        if endpoints:
            azs = net.endpoint_azs
            out["network"] = endpoint_hours_bill(len(endpoints), azs, self.end, self.ctx.month_s)

    def _cluster_bill(self, name: str) -> dict[str, Bill]:
        """The platform's cluster bill (sim.systems.nodes: its services' pods and the brokers of
        the Kafka topics it hosts share the nodes), split by requested vCPU-seconds: a service's
        pods (pod-seconds x pod.cpu), a topic's broker pods (brokers x broker_cpu x the run)."""
        spec = self.scenario.platform(name)
        c = spec.cluster
        group = [st for st in self.stations if st.platform == name]
        topics = self._hosted(name)
        lives: list[Any]
        if name in self.node_pools:  # the simulated nodes' lives
            lives = self.node_pools[name].usage(self.end)
        else:
            lives = self._ideal_nodes(name, NodePool(spec, self._broker_pods(name)))
        nodes = [NodeUsage(c.node, *life) for life in lives]  # (start, end[, spot])
        usage = KubernetesUsage(
            window_s=self.end,
            requests=sum(st.lb_requests for st in group),  # type: ignore[attr-defined]
            nodes=nodes,
        )
        assert c.control_plane is not None
        bill = kubernetes_bill(
            usage,
            control_plane=c.control_plane,
            mode=c.mode,
            load_balancer=spec.load_balancer,
            free_tier=spec.free_tier,
            settings=spec.cost,
            month_s=self.ctx.month_s,
            spot_price=c.spot.price if c.spot is not None else None,
        )
        cpu = float(spec.pod.cpu)
        names = [st.name for st in group] + [f"queue:{q.name}" for q in topics]
        used = [st.pod_seconds(self.end) * cpu for st in group]  # type: ignore[attr-defined]
        used += [q.spec.brokers * q.spec.broker_cpu * self.end for q in topics]
        total = sum(used)
        return {
            n: _share(bill, u / total if total else 1 / len(names))
            for n, u in zip(names, used, strict=True)
        }

    def _ideal_nodes(self, name: str, pool: NodePool) -> list[tuple[float, float]]:
        """`nodes: at_once`: enough nodes for the platform's pods at every moment, each billed
        while it is needed: (start, end) of each node's life."""
        lives: list[tuple[float, float]] = []
        opened: list[float] = []  # start of node k's current life
        seg = [*self.pod_seg.get(name, [(0.0, 0)]), (self.end, -1)]
        for (t, pods), (t_next, _) in itertools.pairwise(seg):
            want = pool.nodes_for(pods)
            while len(opened) > want:
                lives.append((opened.pop(), t))
            while len(opened) < want:
                opened.append(t)
            if t_next >= self.end:
                break
        return lives + [(t0, self.end) for t0 in opened]

    def bill(self) -> Bill:
        return merge_bills(self.bills(), self.end, self.ctx.month_s)

    def system_stats(self) -> dict[str, Any]:
        """Per-service and per-queue figures of this run (summary.json `system`)."""
        services = {}
        samples = {}
        bills = self.bills()
        for st, rec in zip(self.stations, self.recorders, strict=True):
            stats = rec.stats()
            samples[st.name] = stats.sample
            services[st.name] = {
                "platform": st.platform,
                "type": st.kind,
                "requests": stats.requests,
                "attempts": st.calls_in,  # requests that reached it, warm-up included
                "outcomes": dict(stats.outcomes),
                "latency_ms": dict(stats.latency),
                "latency_ci": dict(stats.latency_ci),  # order-statistic 95% CI of this run
                "cold_starts": stats.cold_starts,
                "instances_peak": float(st.pods_peak if isinstance(st, PodStation) else st.peak),
                "throttles": getattr(st, "throttles", 0),
                # whole window, as `attempts`: invocations the Lambda function timeout ended, and
                # attempts to this service a caller's client timeout (or EventBridge's) ended
                "timeouts": {
                    "function": getattr(st, "timeouts", 0),
                    "client": st.client_timeouts,
                },
                **({"async": st.async_q.stats()} if isinstance(st, LambdaStation) else {}),
                "monthly_cost_usd": bills[st.name].monthly_usd,
                "monthly_breakdown_usd": dict(bills[st.name].monthly_breakdown),
                "operating_monthly_usd": bills[st.name].operating_monthly_usd,
            }
        queues = {}
        for q in self.queues:
            b = bills[f"queue:{q.name}"]
            w = np.asarray(q.waits) * 1e3
            queues[q.name] = {**q.stats(b), "time_in_queue_ms": _pcts(w)}
        for bus in self.buses:
            queues[bus.name] = self._bus_stats(bus, bills[f"queue:{bus.name}"])
        comp = np.asarray(self.completions) * 1e3
        return {
            "services": services,
            "queues": queues,
            "async_completion_ms": _pcts(comp),
            "async_completed": int(comp.size),
            "window_s": self.end,
            "flows": self.flows(),
            "nodes": {name: pool.stats(self.end) for name, pool in self.node_pools.items()},
            # the request sample at each service (service_requests.csv.gz; not in summary.json)
            "requests_sample": samples,
        }

    def flows(self) -> list[dict[str, Any]]:
        """Every edge of the system with its count over the whole window (warm-up included, as
        the bill): entry -> service, call attempts (and how many answered ok), events to a
        service, publishes to a queue. Edges out of queues come from the queue figures
        (sim.systems.summary), so every queue type reports them the same way."""
        out: list[dict[str, Any]] = []
        names = self.names
        for i, n in enumerate(self.entered):
            if n:
                out.append({"from": "entry", "to": names[i], "kind": "entry", "count": n})
        for st in self.stations:
            for j, n in enumerate(st.calls_out):
                if n:
                    out.append(
                        {
                            "from": st.name,
                            "to": names[j],
                            "kind": "call",
                            "count": n,
                            "ok": st.calls_ok[j],
                        }
                    )
            for j, n in enumerate(st.events_out):
                if n:
                    out.append({"from": st.name, "to": names[j], "kind": "event", "count": n})
            for k, n in enumerate(st.pub_out):
                if n:
                    q = self.queues[k].name
                    out.append({"from": st.name, "to": f"queue:{q}", "kind": "publish", "count": n})
            for k, n in enumerate(st.bus_out):
                if n:
                    b = self.buses[k].name
                    out.append({"from": st.name, "to": f"queue:{b}", "kind": "publish", "count": n})
        return out

    def _bus_consumers(self, bus: Bus) -> dict[str, int]:
        """Events delivered per target (a service, or `queue:<name>` for an SQS target)."""
        out: dict[str, int] = {}
        targets = self.bus_targets[self.buses.index(bus)]
        for (is_q, j), n in zip(targets, bus.per_rule, strict=True):
            name = f"queue:{self.queues[j].name}" if is_q else self.names[j]
            out[name] = out.get(name, 0) + n[1]
        return out

    def _bus_stats(self, bus: Bus, b: Bill) -> dict[str, Any]:
        """A bus's figures under the SQS key names where they mean the same (time_in_queue_ms:
        PutEvents to delivery; depth: matched events not yet delivered or dropped)."""
        return {
            "type": "eventbridge",
            "sent": bus.sent,
            "matched": bus.matched,
            "delivered": bus.delivered,
            "invocations": bus.invocations,
            "retries": bus.retries,
            "dlq": bus.dlq,
            # deliveries per target (sim.systems.summary draws the bus's edges from them)
            "consumers": self._bus_consumers(bus),
            "rules": {
                r.name: {"target": r.target, "matched": n[0], "delivered": n[1], "dlq": n[2]}
                for r, n in zip(bus.rules, bus.per_rule, strict=True)
            },
            "time_in_queue_ms": _pcts(np.asarray(bus.waits) * 1e3),
            "depth_max": float(bus.pending_max),
            "timeline": {k: list(v) for k, v in bus.rows.items()},
            "monthly_cost_usd": b.monthly_usd,
            "monthly_breakdown_usd": dict(b.monthly_breakdown),
        }


def _pcts(ms: np.ndarray) -> dict[str, float | None]:
    if ms.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "p999": None, "max": None}
    p50, p90, p99, p999 = np.percentile(ms, [50, 90, 99, 99.9])
    return {
        "mean": float(ms.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "p999": float(p999),
        "max": float(ms.max()),
    }


def _share(bill: Bill, share: float) -> Bill:
    from sim.pricing.systems import scaled_bill

    return scaled_bill(bill, share)


class _Resumer:
    __slots__ = ("proc", "sys")

    def __init__(self, sys: SystemModel, proc: Proc) -> None:
        self.sys, self.proc = sys, proc

    def __call__(self, outcome: Any) -> None:
        self.sys._run(self.proc, outcome)


class _Join:
    """A parallel fan-out: resume the caller when every call has answered, with the worst
    outcome (timed_out > rejected > throttled > ok)."""

    __slots__ = ("left", "outcome", "proc", "sys")

    def __init__(self, sys: SystemModel, proc: Proc, n: int) -> None:
        self.sys, self.proc, self.left, self.outcome = sys, proc, n, OK

    def one(self, outcome: Any) -> None:
        if outcome > self.outcome:  # the worst, whatever the order of the answers
            self.outcome = outcome
        self.left -= 1
        if self.left == 0:
            self.sys._run(self.proc, self.outcome)


class _Attempt:
    """One attempt of a call: the callee's answer or the client timeout, whichever first."""

    __slots__ = ("dst", "proc", "settled", "sys")

    def __init__(self, sys: SystemModel, proc: Proc, dst: Station) -> None:
        self.sys, self.proc, self.settled, self.dst = sys, proc, False, dst

    def start(self, arg: tuple) -> None:
        plan, root = arg
        self.sys.spawn(self.sys.visit(plan, root), self.answer)

    def answer(self, outcome: Any) -> None:
        if not self.settled:
            self.settled = True
            self.sys._run(self.proc, outcome)

    def expire(self, _: Any) -> None:
        if not self.settled:
            self.settled = True
            # a closed generator has no frame: its caller was stopped (gi_frame, not
            # inspect.getgeneratorstate: Cython's compiled generators have no gi_suspended)
            if self.proc.gen.gi_frame is not None:  # type: ignore[attr-defined]
                self.dst.client_timeouts += 1  # (Lambda's timeout ended it: no client is left)
            self.sys._run(self.proc, TIMED_OUT)


class _Timeouts:
    """The client timeouts of one timeout value, oldest first. Deadlines (now + timeout) and
    seqs only grow, so only the oldest pending one sits in the heap, with the (time, seq) it was
    given at its attempt: the heap pops it exactly when it would pop a timer of its own, and
    timers of attempts answered meanwhile are dropped here without a push or pop each (most
    calls answer long before their timeout: the heap stays small)."""

    __slots__ = ("armed", "pending", "sys")

    def __init__(self, sys: SystemModel) -> None:
        self.sys, self.armed = sys, False
        self.pending: deque[tuple[float, int, _Attempt]] = deque()

    def add(self, t: float, seq: int, token: _Attempt) -> None:
        self.pending.append((t, seq, token))
        if not self.armed:
            self.armed = True
            self.sys.heap.put(t, seq, self.fire, None)

    def fire(self, _: Any) -> None:
        pending = self.pending
        pending.popleft()[2].expire(None)  # the armed one: its deadline is now
        while pending and pending[0][2].settled:
            pending.popleft()
        if pending:
            t, seq, _token = pending[0]
            self.sys.heap.put(t, seq, self.fire, None)
        else:
            self.armed = False


class _TaskDone:
    __slots__ = ("root", "sys")

    def __init__(self, sys: SystemModel, root: Root) -> None:
        self.sys, self.root = sys, root

    def __call__(self, outcome: Any) -> None:
        self.sys.task_done(self.root, self.sys.now)


class _EntryDone:
    """The entry request answered: its row in the end-to-end log."""

    __slots__ = ("over", "root", "st", "sys")

    def __init__(self, sys: SystemModel, root: Root, st: Station, over: float) -> None:
        self.sys, self.root, self.st, self.over = sys, root, st, over

    def __call__(self, outcome: Any) -> None:
        # the entry visit's own row, the last eight values
        _, start, _, wait, startup, cold, _, _ = self.st.log.last_row()
        self.sys._entry_done(self.root, self.over, outcome, start, wait, startup, bool(cold))
