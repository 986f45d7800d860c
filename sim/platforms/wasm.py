"""Wasm serverless (Cloudflare Workers, Fastly Compute, Fermyon Spin): an instance per request.

Model (platforms.md, Wasm section; defaults below with their sources, facts.md section 6):
- Every accepted request gets a fresh instance: startup = `instantiate` (+ `edge_cold_start` when
  its edge isolate is cold, below), then handler time = service x `slowdown`. Nothing waits, so the
  data plane is an M/G/inf system (optionally capped): instances = requests in flight (starting or
  running), from arrival to end. Client latency = edge_latency + startup + service x slowdown.
- Edge nodes (only with `edge_cold_start`): `edge_nodes` identical nodes (isolate hosts / POPs),
  each request routed to one uniformly at random; each node holds one isolate per function. An
  isolate is cold when it has served no request for `edge_idle_timeout` (none in flight and the
  last one ended at least that long ago; one that never served is cold). A request on a cold
  isolate pays `edge_cold_start` before instantiation and is marked cold. Instantiation alone is
  not a cold start (every request pays it).
- `max_concurrency` (the whole platform, all functions): a request that arrives while that many
  are in flight is rejected at once (outcome `rejected`, 503/"exceeded resources"): serverless
  platforms shed load rather than queue it, as Lambda throttles with a 429. A request ending
  exactly when another arrives frees its slot first.
- `cpu_limit`: only the `cpu_bound` share of handler time is CPU (the rest is I/O wait, which
  Workers neither bill nor limit: "No charge or limit for duration"). CPU accrues evenly over the
  handler's wall time, so a request whose CPU time would exceed the limit is killed (`timed_out`)
  cpu_limit / cpu_bound seconds into its handler, having used exactly cpu_limit of CPU.
- `memory_limit` (Workers and Fermyon: 128 MB) is validated and echoed in the resolved scenario;
  scenarios declare no per-request memory, so it changes no request. Check your module fits.
- Billing: requests that ran (ok + timed out; rejected ones never ran) and their CPU ms =
  service x slowdown x cpu_bound x 1000 (instantiation and I/O wait are not billed), priced by
  sim.pricing.wasm (Workers Standard, Fastly Compute [secondary source], or custom rates).
"""

from __future__ import annotations

import sys
from heapq import heappop, heappush

import numpy as np

from sim.platforms.base import INF, DrawBuffer, PlatformModel, RunContext, constant_value
from sim.platforms.wasm_spec import WasmSpec
from sim.pricing.tables import Bill
from sim.pricing.wasm import WasmUsage, wasm_bill
from sim.records import OK, REJECTED, TIMED_OUT


class WasmModel(PlatformModel):
    spec: WasmSpec

    def __init__(self, spec: WasmSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        rng = ctx.rng
        cb = ctx.cpu_bound
        self.cpu_bound = cb
        # Wall time into the handler at which the CPU limit is reached (never, if no CPU share).
        assert spec.cpu_limit is not None  # resolved by WasmSpec
        self.wall_limit = spec.cpu_limit / cb if cb > 0 else INF
        self.cap = spec.max_concurrency if spec.max_concurrency is not None else sys.maxsize
        self.inst_const = constant_value(spec.instantiate)
        self.inst_draw = DrawBuffer(spec.instantiate, rng)
        self.over_const = constant_value(spec.edge_latency)
        self.over_draw = DrawBuffer(spec.edge_latency, rng)
        self.edge = spec.edge_cold_start is not None
        self.edge_draw = DrawBuffer(spec.edge_cold_start, rng) if self.edge else None
        # When the last request of each (function, node) isolate ended; never = -inf (cold).
        self.nfn = max(len(ctx.function_names), 1)
        self.node_last_end = [-INF] * (spec.edge_nodes * self.nfn)
        self.node_buf: list[int] = []
        self.node_i = 0
        self.busy: list[float] = []  # heap: end times of requests in flight
        # Accounting.
        self.peak = 0
        self.busy_seconds = 0.0  # in-flight request-seconds within [warmup, duration]
        self.service_seconds = 0.0  # handler wall time of requests that ran (CPU = x cpu_bound)
        self.ran = 0
        self.next_id = 0
        self.n_arrivals = self.n_cold = self.n_rejected = 0
        self._seen = (0, 0, 0)  # counters at the previous snapshot
        # Default settings (constant instantiation and edge latency, no edge cold starts, no
        # cap): every request is independent, so a step is array arithmetic (_serve), exactly
        # what the loop would compute; otherwise the per-request loop.
        self.uses_lists = not (
            self.cap == sys.maxsize
            and not self.edge
            and self.inst_const is not None
            and self.over_const is not None
        )
        self._rows_pending: list[dict[str, np.ndarray]] = []
        self._pending_n = 0

    # -- data plane ------------------------------------------------------------------------------
    def advance(self, until: float) -> None:
        if self.uses_lists:
            self._advance_loop(until)
        else:
            self._advance_vectorised(until)

    def _advance_vectorised(self, until: float) -> None:
        """Exactly the loop below for the default settings, in numpy."""
        while True:
            c = self._chunk
            if c is None or self._i >= c.arrival.size:
                if not self._next_chunk():
                    break
                continue
            lo = self._i
            hi = lo + int(np.searchsorted(c.arrival[lo:], until, side="left"))
            if hi > lo:
                self._serve(c.arrival[lo:hi], c.service[lo:hi])
            self._i = hi
            if hi < c.arrival.size:
                break
        if self._pending_n >= 65536 or until >= self.ctx.duration:
            self.flush()

    def _serve(self, t: np.ndarray, s: np.ndarray) -> None:
        m = t.size
        dur = s * self.spec.slowdown
        late = dur > self.wall_limit
        dur = np.where(late, self.wall_limit, dur)
        startup = np.full(m, self.inst_const)
        start = t + startup
        end = start + dur
        # In flight at each arrival (itself included): earlier requests not yet ended. Ends at or
        # before the arrival are gone, as the loop pops them.
        old = np.asarray(self.busy, dtype=np.float64)
        ends = np.sort(np.concatenate([old, end]))
        inflight = old.size + np.arange(1, m + 1) - np.searchsorted(ends, t, side="right")
        self.peak = max(self.peak, int(inflight.max()))
        self.busy = ends[np.searchsorted(ends, t[-1], side="right") :].tolist()  # sorted: a heap
        ids = np.arange(self.next_id + 1, self.next_id + m + 1, dtype=np.int64)
        self.next_id += m
        self.service_seconds += float(dur.sum())
        self.ran += m
        self.n_arrivals += m
        self._rows_pending.append(
            {
                "arrival": t,
                "start": start,
                "end": end,
                "wait": np.zeros(m),
                "startup": startup,
                "service": dur,
                "overhead": np.full(m, self.over_const),
                "cold": np.zeros(m, dtype=np.bool_),
                "outcome": np.where(late, TIMED_OUT, OK).astype(np.uint8),
                "instance": ids,
            }
        )
        self._pending_n += m

    def _advance_loop(self, until: float) -> None:  # the hot loop, kept in one piece
        arr, svc, fns = self._arr, self._svc, self._fn
        i, n = self._i, len(arr)
        busy = self.busy
        log = self.log
        l_arr, l_start, l_end = log.arrival.append, log.start.append, log.end.append
        l_wait, l_startup, l_svc = log.wait.append, log.startup.append, log.service.append
        l_over, l_cold, l_out, l_inst = (
            log.overhead.append,
            log.cold.append,
            log.outcome.append,
            log.instance.append,
        )
        slow, wall_limit, cap = self.spec.slowdown, self.wall_limit, self.cap
        inst_const, over_const = self.inst_const, self.over_const
        inst_next, over_next = self.inst_draw.next, self.over_draw.next
        edge = self.edge
        if edge:
            edge_next = self.edge_draw.next  # type: ignore[union-attr]
            idle_timeout = self.spec.edge_idle_timeout
            last_end, k_nodes, nfn = self.node_last_end, self.spec.edge_nodes, self.nfn
            node_buf, node_i, node = self.node_buf, self.node_i, 0
        peak, svc_sum, rid = self.peak, 0.0, self.next_id
        n_arr = n_cold = n_rej = 0
        while True:
            if i >= n:
                if self._next_chunk():
                    arr, svc, fns, i, n = self._arr, self._svc, self._fn, 0, len(self._arr)
                    continue
                break
            t = arr[i]
            if t >= until:
                break
            s = svc[i]
            i += 1
            n_arr += 1
            while busy and busy[0] <= t:
                heappop(busy)
            over = over_const if over_const is not None else over_next()
            if len(busy) >= cap:
                n_rej += 1
                l_arr(t), l_start(t), l_end(t), l_wait(0.0), l_startup(0.0), l_svc(0.0)
                l_over(over), l_cold(False), l_out(REJECTED), l_inst(-1)
                continue
            startup = inst_const if inst_const is not None else inst_next()
            cold = False
            dur = s * slow
            outcome = OK
            if dur > wall_limit:
                dur, outcome = wall_limit, TIMED_OUT
            if edge:
                if k_nodes > 1:  # uniform routing, drawn in bulk
                    if node_i >= len(node_buf):
                        node_buf, node_i = self.ctx.rng.integers(0, k_nodes, 65536).tolist(), 0
                    node = node_buf[node_i]
                    node_i += 1
                iso = node * nfn + fns[i - 1] if nfn > 1 else node
                if t - last_end[iso] >= idle_timeout:
                    startup += edge_next()
                    cold = True
                    n_cold += 1
                end = t + startup + dur
                if end > last_end[iso]:
                    last_end[iso] = end
            else:
                end = t + startup + dur
            heappush(busy, end)
            if len(busy) > peak:
                peak = len(busy)
            svc_sum += dur
            rid += 1
            l_arr(t), l_start(t + startup), l_end(end), l_wait(0.0), l_startup(startup)
            l_svc(dur), l_over(over), l_cold(cold), l_out(outcome), l_inst(rid)
        self._i = i
        if edge:
            self.node_buf, self.node_i = node_buf, node_i
        self.peak, self.next_id = peak, rid
        self.service_seconds += svc_sum
        self.ran += n_arr - n_rej
        self.n_arrivals += n_arr
        self.n_cold += n_cold
        self.n_rejected += n_rej
        if len(log) >= 65536 or until >= self.ctx.duration:
            self.flush()

    def flush(self) -> None:
        pending = self._rows_pending
        if len(self.log):
            pending.append(self.log.take())
        for rows in pending:
            # Time-average in flight = sum of each request's [arrival, end] inside the window.
            span = np.minimum(rows["end"], self.ctx.duration) - np.maximum(
                rows["arrival"], self.ctx.warmup
            )
            self.busy_seconds += float(span[span > 0].sum())
            self.ctx.recorder.add(rows)
        pending.clear()
        self._pending_n = 0

    # -- observation -----------------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, float]:
        busy = self.busy
        while busy and busy[0] <= now:
            heappop(busy)
        arrivals, cold, rejected = self._seen
        row = {
            "instances": float(len(busy)),
            "busy": float(len(busy)),
            "idle": 0.0,
            "queued": 0.0,
            "desired": 0.0,
            "nodes": 0.0,
            "arrivals": float(self.n_arrivals - arrivals),
            "cold_starts": float(self.n_cold - cold),
            "rejections": float(self.n_rejected - rejected),
        }
        if self.edge:
            timeout = self.spec.edge_idle_timeout
            row["warm_isolates"] = float(sum(now - e < timeout for e in self.node_last_end))
        self._seen = (self.n_arrivals, self.n_cold, self.n_rejected)
        return row

    def finish(self) -> None:
        self.flush()  # requests still in flight at the end complete after it (and are billed)

    def instance_stats(self) -> dict[str, float]:
        span = max(self.ctx.duration - self.ctx.warmup, 1e-12)
        return {"mean": self.busy_seconds / span, "peak": float(self.peak)}

    def usage(self) -> WasmUsage:
        return WasmUsage(
            requests=self.ran,
            cpu_ms_total=self.service_seconds * self.cpu_bound * 1e3,
            window_s=self.ctx.duration,
        )

    def bill(self) -> Bill:
        s = self.spec
        return wasm_bill(
            self.usage(),
            pricing=s.pricing,
            custom=s.custom,
            month_s=self.ctx.month_s,
            ops=s.ops,
            ops_profile=s.ops_profile,
        )
