"""AWS Lambda: execution environments, cold starts, keep-alive, limits, provisioned concurrency.

Model (platforms.md, Lambda section; every default in sim.defaults with its source):
- An environment serves one request at a time. An arriving request takes a provisioned (PC)
  environment if one is idle, else an idle on-demand environment (most recently used first, or
  least recently used with `reuse: lru`), else a new environment starts: cold start =
  sandbox overhead + Init (or SnapStart restore), if the concurrency limit and the scaling token
  bucket (1,000 new environments per 10 s, refilled continuously) allow. Otherwise the request is
  throttled (429) and, if the client retries, comes back after full-jitter exponential backoff.
- Idle on-demand environments are reclaimed `keep_alive` after their last request (lazily: an
  environment whose expiry has passed is never handed out and leaves the pool when next seen).
- Lifetime cap: an on-demand environment is recycled `max_environment_lifetime` after it started
  (its cold start began), busy or not: idle, it leaves then; busy, its request finishes and it is
  not reused. Provisioned environments are recycled in the background (not modelled).
- Invocation rate: at most `invocations_per_concurrency` x concurrency limit invocations start per
  function in each one-second window of the clock [k, k+1); a request beyond that is throttled
  (429), like a concurrency throttle. Throttled requests do not count.
- Handler time = service x ((1 - cpu_bound) + cpu_bound / min(vCPU, threads)), vCPU = memory/1769.
- An invocation longer than `timeout` is killed at the timeout (billed to it) and its environment
  is discarded (Lambda resets the environment after a timeout), so the next request there is cold.
- Concurrency counts in-flight invocations (initialising or running), PC included.
- Provisioned concurrency from a schedule: billed from the scheduled action's time; environments
  added are ready `ready_delay` later (as with target tracking). Decreases apply at once.
Per-function pools: a multi-function trace gives each function its own environments, token bucket
and provisioned concurrency, as separate Lambda functions with the same settings would have.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from heapq import heappop, heappush
from itertools import repeat
from typing import Any

import numpy as np

from sim import compiled
from sim import defaults as D
from sim.native import is_compiled
from sim.platforms import lambda_warm
from sim.platforms.base import (
    INF,
    DrawBuffer,
    PlatformModel,
    RunContext,
    constant_value,
    substream,
)
from sim.platforms.lambda_spec import LambdaSpec, ScheduleEntry, TargetTracking
from sim.platforms.lambda_vector import warm_block
from sim.pricing.lambda_ import AccountTotals, LambdaUsage, lambda_bill
from sim.pricing.tables import Bill
from sim.records import OK, THROTTLED, TIMED_OUT

# Kinds of busy environment in the completion heap.
_ON_DEMAND, _PROVISIONED, _DISCARD = 0, 1, 2


class LambdaModel(PlatformModel):
    spec: LambdaSpec

    def __init__(self, spec: LambdaSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)
        rng = ctx.rng
        nfn = max(len(ctx.function_names), 1)
        self.scale = (1 - ctx.cpu_bound) + ctx.cpu_bound / min(spec.vcpu, spec.threads)
        self.limit = spec.concurrency_limit
        self.timeout = spec.timeout
        self.sandbox = spec.sandbox_overhead
        # One stream per purpose: the order of draws within a purpose is the order of events.
        self.startup_dist = DrawBuffer(
            spec.restore if spec.snapstart else spec.init, substream(rng, 1)
        )
        self.snapstart = spec.snapstart
        self.ka_const = constant_value(spec.keep_alive)
        self.ka_draw = DrawBuffer(spec.keep_alive, substream(rng, 2))
        self.gw_const = constant_value(spec.gateway_latency)
        self.gw_rng = substream(rng, 3)  # one draw per arrival, in arrival order
        self.jitter = substream(rng, 4)  # backoff jitter, one draw per throttle
        self.tt_rng = substream(rng, 5)  # PC ready delays (target tracking or schedule)
        life = spec.max_environment_lifetime
        self.life_on = life is not None
        self.life_const = constant_value(life) if life is not None else None
        self.life_draw = DrawBuffer(life, substream(rng, 6)) if life is not None else None
        self.death: dict[int, float] = {}  # on-demand env -> when it is recycled (lifetime cap)
        rate = spec.rate_limit
        self.rate_on = rate is not None
        self.rate_cap = math.floor(rate + 1e-9) if rate is not None else 0
        self.rate_end = [0.0] * nfn  # per function: end of the current one-second window ...
        self.rate_n = [0] * nfn  # ... and the invocations started in it
        # Per chunk: False when no clock second of it can exceed the quota (no retries, arrivals
        # per second <= quota), so the hot loop skips the check; the counters are then brought up
        # to date at the chunk's end (_rate_carry) from its arrivals and the throttles below.
        self.rate_check = self.rate_on
        self.thr_end = [0.0] * nfn  # skip mode: throttles (concurrency, tokens) per second
        self.thr_n = [0] * nfn
        # Rows of first-attempt requests, in arrival order (the rest is computed per chunk): the
        # environment (negated for a provisioned one; 0 marks a request that went the slow way:
        # throttled/retried) and, sparse, the start-up of the cold ones (row in n_env, seconds):
        # one append per warm request in the hot loop instead of two.
        self.n_env: list[int] = []
        self.n_cold: list[tuple[int, float]] = []
        self.n_from = 0  # chunk index of the first row in the lists above
        self.over: list[float] | None = None  # gateway overhead per arrival of the chunk
        self.mru = spec.reuse == "mru"
        # The common case takes a loop without the branches for what it cannot meet (one
        # function, no provisioned concurrency, no client retries, a constant keep-alive, MRU
        # reuse): _advance_plain, the same steps in the same order.
        self.plain = (
            nfn == 1
            and spec.provisioned_concurrency == 0
            and spec.client.retries == 0
            and self.ka_const is not None
            and self.mru
        )
        # Plain runs take the compiled warm-hit kernel (sim/platforms/lambda_warm.py) when the
        # install built it, long ones numba's build of it otherwise; the chunk is then read as
        # numpy arrays and its rows kept in k_env.
        build = use_compiled(ctx.expected_requests) if self.plain else None
        self.compiled = build is not None
        if build == "native":
            self.warm_span = lambda_warm.warm_span
        elif build == "numba":
            from sim.platforms.lambda_kernel import warm_span

            self.warm_span = warm_span
        if self.compiled:
            self.uses_lists = False
            # The first chunk's _rate_mode decides, not the general loop (which would keep the
            # chunk: see _next_chunk).
            self.rate_check = False
            self._k_heap = self._k_pool = 0  # array capacities (grown by _k_load)
        self.k_env: np.ndarray | None = None  # env per arrival of a compiled chunk
        # Per function: idle on-demand pool [(expiry, env)], idle PC stack, tokens, in-flight.
        self.idle: list[deque[tuple[float, int]]] = [deque() for _ in range(nfn)]
        self.pc_idle: list[list[int]] = [[] for _ in range(nfn)]
        self.tokens = [float(spec.scaling_rate.burst)] * nfn
        self.tok_time = [0.0] * nfn
        self.busy: list[tuple[float, int, int, int]] = []  # (end, env, kind, function)
        self.retry: list[tuple[float, int, float, float, int, int, float]] = []
        self.retry_seq = 0
        self.next_env = 0
        self.created: dict[int, float] = {}  # on-demand env -> creation time (for env-seconds)
        # Provisioned concurrency (per function).
        self.pc_level = 0  # configured (billed) level
        self.pc_ready = 0  # environments ready per function (lags pc_level while preparing)
        self.pc_gen = 0  # bumps at each change; a pending ready-up of an older one is void
        self.pc_live = [0] * nfn
        self.pc_retire = [0] * nfn
        self.pc_segments: list[list[float]] = []  # [start, end, level]
        self.pc_busy_bins: dict[int, float] = {}  # minute -> PC busy seconds (target tracking)
        self.track_pc = isinstance(spec.provisioned_concurrency, TargetTracking)
        # Accounting.
        self.live = 0
        self.peak = 0
        self.env_seconds = 0.0  # after warm-up
        self.pc_env_seconds = 0.0
        self.billed_od_ms = 0.0
        self.billed_pc_ms = 0.0
        self.billed_init_ms = 0.0
        self.restores = 0  # SnapStart restores (new on-demand environments)
        self.invocations = 0
        self.attempts = 0
        self.throttles = 0
        self.cold_in_step = 0
        self.arrivals_in_step = 0

    # -- control plane ---------------------------------------------------------------------------
    def start(self) -> None:
        pc = self.spec.provisioned_concurrency
        if isinstance(pc, int):
            if pc:
                self.set_pc(pc, "constant provisioned concurrency")
        elif isinstance(pc, list):
            self.env.process(self._schedule(pc))
        else:
            self.set_pc(pc.initial if pc.initial is not None else pc.min, "target tracking start")
            self.env.process(self._target_tracking(pc))

    def set_pc(self, level: int, reason: str, ready_after: float = 0.0) -> None:
        """Configure `level` now (billed from now). Environments it adds are ready `ready_after`
        later, unless another change comes first; removed ones leave at once."""
        now = self.env.now
        if level == self.pc_level:
            return
        self.ctx.decide("provisioned_concurrency", self.pc_level, level, reason)
        if self.pc_segments:
            self.pc_segments[-1][1] = now
        if level:
            self.pc_segments.append([now, self.ctx.duration, level])
        self.pc_level = level
        self.pc_gen += 1
        if level > self.pc_ready and ready_after > 0:
            self.env.process(self._pc_ready_after(ready_after, level, self.pc_gen))
        else:
            self._ready_pc(level)

    def _pc_ready_after(self, delay: float, level: int, gen: int):  # SimPy process
        yield self.env.timeout(delay)
        if gen == self.pc_gen:
            self._ready_pc(level)

    def _ready_pc(self, level: int) -> None:
        """Make `level` provisioned environments per function ready (adding or retiring)."""
        for f in range(len(self.pc_idle)):
            have = self.pc_live[f] - self.pc_retire[f]
            if level > have:
                add = level - have
                cancel = min(add, self.pc_retire[f])  # un-retire busy ones first
                self.pc_retire[f] -= cancel
                for _ in range(add - cancel):
                    self.pc_idle[f].append(self._new_env_id())
                self.pc_live[f] += add - cancel
                self.live += add - cancel
            else:
                drop = have - level
                idle = self.pc_idle[f]
                while drop and idle:
                    idle.pop()
                    self.pc_live[f] -= 1
                    self.live -= 1
                    drop -= 1
                self.pc_retire[f] += drop  # busy ones leave when they finish
        self.pc_ready = level
        if self.live > self.peak:
            self._purge(self.env.now, before=True)  # as in a cold start
            self.peak = max(self.peak, self.live)

    def _schedule(self, entries: list[ScheduleEntry]):  # SimPy process
        """Daily schedule: the entry at or before midnight (else the day's last) holds at t=0."""
        day = 86400.0
        first = [e for e in entries if e.at <= 0.0]
        start = first[-1] if first else entries[-1]
        # In force before the window: ready at t=0.
        self.set_pc(start.value, f"schedule: {start.value} at {_hhmm(start.at)}")
        delays = [DrawBuffer(e.ready_delay, self.tt_rng, 64) for e in entries]
        consts = [constant_value(e.ready_delay) for e in entries]
        t_day = 0.0
        while t_day < self.ctx.duration:
            for k, e in enumerate(entries):
                at = t_day + e.at
                if at > self.env.now:
                    yield self.env.timeout(at - self.env.now)
                    if e.value == self.pc_level:
                        continue
                    delay = 0.0
                    if e.value > self.pc_ready:  # new environments to prepare
                        c = consts[k]
                        delay = c if c is not None else delays[k].next()
                    self.set_pc(
                        e.value,
                        f"schedule: {e.value} at {_hhmm(e.at)} (ready after {delay:.0f}s)",
                        delay,
                    )
            t_day += day

    def _target_tracking(self, tt: TargetTracking):  # SimPy process
        above = below = 0
        ready = DrawBuffer(tt.ready_delay, self.tt_rng, 64)
        pending: int | None = None
        while True:
            yield self.env.timeout(60.0)
            minute = int(self.env.now // 60) - 1
            busy = self.pc_busy_bins.pop(minute, 0.0)
            level = self.pc_level
            util = busy / (level * 60.0) if level else (1.0 if busy else 0.0)
            above = above + 1 if util > tt.target else 0
            below = below + 1 if util < tt.target * D.LAMBDA_PC_SCALE_IN_FACTOR else 0
            if above >= tt.scale_out_periods and pending is None:
                want = min(tt.max, max(level + 1, math.ceil(level * util / tt.target)))
                if want > level:
                    pending = want
                    self.env.process(self._pc_after(ready.next(), want, util, tt.target))
                above = 0
            elif below >= tt.scale_in_periods:
                want = max(tt.min, math.ceil(level * util / tt.target))
                if want < level:
                    self.set_pc(
                        want,
                        f"target tracking: utilisation {util:.2f} < "
                        f"{D.LAMBDA_PC_SCALE_IN_FACTOR}x{tt.target} for "
                        f"{tt.scale_in_periods} min",
                    )
                below = 0
            if pending is not None and self.pc_level == pending:
                pending = None

    def _pc_after(self, delay: float, level: int, util: float, target: float):
        yield self.env.timeout(delay)
        self.set_pc(
            level,
            f"target tracking: utilisation {util:.2f} > {target} for 3 min "
            f"(ready after {delay:.0f}s)",
        )

    def _new_env_id(self) -> int:
        self.next_env += 1
        return self.next_env

    # -- data plane ------------------------------------------------------------------------------
    def _next_chunk(self, kernel: bool = False) -> bool:
        """The next chunk; `kernel` (from _advance_plain): a compiled run's chunk without the
        rate check goes to the kernel as numpy arrays, its rows in k_env. Any other is read as
        lists (a chunk the general loop starts stays with the Python loops to its end)."""
        self._rows_from_chunk()
        if self.rate_on and not self.rate_check and self._chunk is not None:
            self._rate_carry(self._chunk)
        if not super()._next_chunk():
            return False
        assert self._chunk is not None
        if self.rate_on:
            self._rate_mode(self._chunk)
        n = self._chunk.arrival.size
        self.k_env = None
        if self.compiled:  # (uses_lists is off)
            c = self._chunk
            if kernel and not self.rate_check:
                self._arr, self._svc = c.arrival, c.service  # type: ignore[assignment]
                self.k_env = np.zeros(n, np.int64)
            else:
                self._arr, self._svc = c.arrival.tolist(), c.service.tolist()
                self._fn = c.function.tolist()
        if self.gw_const is None:
            assert self.spec.gateway_latency is not None
            self.over = self.spec.gateway_latency.sample(n, self.gw_rng).tolist()
        self.n_from = 0
        return True

    def advance(self, until: float) -> None:
        if self.plain and not self.rate_check and self._advance_plain(until):
            return
        arr, svc, fns = self._arr, self._svc, self._fn
        i, n = self._i, len(arr)
        busy, retry = self.busy, self.retry
        idle_pools, pc_pools = self.idle, self.pc_idle
        n_env = self.n_env.append
        scale, limit, timeout = self.scale, self.limit, self.timeout
        ka_const = self.ka_const
        mru, track_pc = self.mru, self.track_pc
        life_on, death = self.life_on, self.death
        rate_on, rate_cap = self.rate_check, self.rate_cap
        rate_end, rate_n = self.rate_end, self.rate_n
        i0 = i  # arrivals taken from the current chunk in this call (timeline `arrivals`)
        while True:
            if i >= n:
                self._i = i
                self.arrivals_in_step += i - i0
                i0 = i
                if self._next_chunk():
                    arr, svc, fns, i, n = self._arr, self._svc, self._fn, 0, len(self._arr)
                    i0 = 0
                    rate_on = self.rate_check
                    continue
                ta = INF
            else:
                ta = arr[i]
            if retry and retry[0][0] < ta:
                if retry[0][0] >= until:
                    break
                self._i = i
                self._retry(heappop(retry), until)
                continue
            if ta >= until:
                break
            t, s, f = ta, svc[i], fns[i]
            # Completions up to t free their environments first (MRU order = release order).
            while busy and busy[0][0] <= t:
                end, env_id, kind, g = heappop(busy)
                if kind == _ON_DEMAND:
                    exp = end + (ka_const if ka_const is not None else self.ka_draw.next())
                    if life_on:
                        d = death[env_id]
                        if exp > d:
                            if end >= d:  # recycled: its last request has ended
                                self._gone(env_id, end)
                                continue
                            exp = d
                    idle_pools[g].append((exp, env_id))
                else:
                    self._release((end, env_id, kind, g))
            pc_idle = pc_pools[f]
            if rate_on:
                if t >= rate_end[f]:  # a new second of the clock
                    rate_end[f] = math.floor(t) + 1.0
                    rate_n[f] = 0
                if rate_n[f] >= rate_cap:  # invocation rate quota: throttled
                    self._i = i
                    self._throttle(t, t, s, f, 0, self._overhead(i))
                    i += 1
                    n_env(0)
                    continue
            if len(busy) >= limit:
                self._i = i
                self._throttle(t, t, s, f, 0, self._overhead(i))
                i += 1
                n_env(0)
                continue
            if pc_idle:
                env_id = pc_idle.pop()
                startup = 0.0
                kind = _PROVISIONED
            else:
                kind = _ON_DEMAND
                pool = idle_pools[f]
                env_id = 0
                if mru:
                    while pool and pool[-1][0] <= t:
                        self._reclaim(pool.pop())
                    if pool:
                        env_id = pool.pop()[1]
                else:
                    while pool and pool[0][0] <= t:
                        self._reclaim(pool.popleft())
                    if pool:
                        env_id = pool.popleft()[1]
                if env_id:
                    startup = 0.0
                else:
                    cold = self._cold_start(t, f)
                    if cold is None:  # no scaling token: throttled
                        self._i = i
                        self._throttle(t, t, s, f, 0, self._overhead(i))
                        i += 1
                        n_env(0)
                        continue
                    env_id, startup = cold
                    self.n_cold.append((len(self.n_env), startup))
            if rate_on:
                rate_n[f] += 1
            start = t + startup
            dur = s * scale
            end = start + (dur if dur <= timeout else timeout)
            heappush(busy, (end, env_id, kind if dur <= timeout else _DISCARD, f))
            if track_pc and kind == _PROVISIONED:
                self._pc_busy(start, end)
            n_env(env_id if kind == _ON_DEMAND else -env_id)  # negative: provisioned
            i += 1
        self._advanced(i, i0, until)

    def _advanced(self, i: int, i0: int, until: float) -> None:
        """The end of an advance to `until` at arrival `i` (from `i0` in this chunk)."""
        busy = self.busy
        self.arrivals_in_step += i - i0
        # Completions at or before the control event about to run are visible to it.
        while busy and busy[0][0] <= until:
            self._release(heappop(busy))
        self._i = i
        rows = len(self.n_env) if self.k_env is None else i - self.n_from
        if rows >= 65536 or len(self.log) >= 65536 or until >= self.ctx.duration:
            self._rows_from_chunk()
            self.flush()

    def _advance_plain(self, until: float) -> bool:
        """advance() when self.plain and this chunk needs no invocation-rate check: the general
        loop's steps for function 0 without its branches for provisioned concurrency, retries,
        drawn keep-alives and LRU reuse. False when a
        later chunk needs the rate check: the general loop goes on from self._i.
        Each run of arrivals [i, j) before `until` in a chunk goes to _plain_span, or to the
        compiled kernel (_compiled_span) in a chunk set up for it (k_env)."""
        i, n = self._i, len(self._arr)
        while True:
            if i >= n:
                self._i = i
                if self._next_chunk(kernel=True):
                    if self.rate_check:
                        return False
                    i, n = 0, len(self._arr)
                    continue
                break
            j = bisect_left(self._arr, until, i)  # this call's arrivals in the chunk: [i, j)
            if self.k_env is not None:
                self._compiled_span(i, j)
            elif VECTOR and j - i >= VECTOR_MIN:
                self._vector_span(i, j)
            else:
                self._plain_span(i, j)
            self.arrivals_in_step += j - i
            i = j
            if j < n:
                break
        self._advanced(i, i, until)
        return True

    def _plain_span(self, i0: int, j: int, arr: Any = None, svc: Any = None) -> None:
        """Arrivals [i0, j) of the current chunk (arr, svc: its arrival and service times, if
        not self._arr and self._svc), all before the advance's `until`.
        The environment freed last before an arrival is held in `cand` instead of being pushed
        onto the idle pool: MRU reuse would pop it straight back (the usual case), so the pool
        sees it only when the arrival does not take it (throttled, or it expired meanwhile)."""
        if arr is None:
            arr, svc = self._arr, self._svc
        busy, pool = self.busy, self.idle[0]
        n_env, pop, push, keep = self.n_env.append, heappop, heappush, self.idle[0].append
        scale, limit, timeout, ka = self.scale, self.limit, self.timeout, self.ka_const
        life_on, death = self.life_on, self.death
        assert ka is not None
        cand_exp = 0.0
        for i in range(i0, j):
            t = arr[i]
            cand = 0  # the last environment freed up to t, with its expiry
            while busy and busy[0][0] <= t:
                end, env_id, kind, _ = pop(busy)
                if kind == _ON_DEMAND:
                    exp = end + ka
                    if life_on:
                        d = death[env_id]
                        if exp > d:
                            if end >= d:  # recycled: its last request has ended
                                self._gone(env_id, end)
                                continue
                            exp = d
                    if cand:
                        keep((cand_exp, cand))
                    cand, cand_exp = env_id, exp
                else:
                    self._release((end, env_id, kind, 0))
            if len(busy) >= limit:
                if cand:
                    keep((cand_exp, cand))
                self._i = i
                self._throttle(t, t, svc[i], 0, 0, self._overhead(i))
                n_env(0)
                continue
            if cand and cand_exp > t:
                env_id = cand
                start = t
            else:
                if cand:  # expired already: reclaimed, as the pool's top would be
                    self._reclaim((cand_exp, cand))
                while pool and pool[-1][0] <= t:
                    self._reclaim(pool.pop())
                if pool:
                    env_id = pool.pop()[1]
                    start = t
                else:
                    cold = self._cold_start(t, 0)
                    if cold is None:  # no scaling token: throttled
                        self._i = i
                        self._throttle(t, t, svc[i], 0, 0, self._overhead(i))
                        n_env(0)
                        continue
                    env_id, startup = cold
                    self.n_cold.append((len(self.n_env), startup))
                    start = t + startup
            dur = svc[i] * scale
            if dur <= timeout:
                push(busy, (start + dur, env_id, _ON_DEMAND, 0))
            else:
                push(busy, (start + timeout, env_id, _DISCARD, 0))
            n_env(env_id)

    def _vector_span(self, i0: int, j: int) -> None:
        """_plain_span by blocks of array arithmetic (sim/platforms/lambda_vector.py): each
        block runs the warm hits up to the first arrival that needs anything else, which goes
        to _plain_span (after a short block, with the next VECTOR_AFTER arrivals: they are often
        rare too, as after a cold start burst); a rest shorter than VECTOR_MIN goes there too."""
        assert self._chunk is not None and self.ka_const is not None
        arr, svc = self._chunk.arrival, self._chunk.service
        death = self.death if self.life_on else None
        busy, pool = self.busy, self.idle[0]
        i = i0
        while i < j:
            if j - i < VECTOR_MIN:
                self._plain_span(i, j)
                return
            hi = min(j, i + VECTOR_BLOCK)
            m, envs, new_busy, new_pool = warm_block(
                arr[i:hi], svc[i:hi] * self.scale, self.timeout, self.limit, self.ka_const,
                busy, pool, death,
            )  # fmt: skip
            if m:
                busy[:] = new_busy
                pool.clear()
                pool.extend(new_pool)
                self.n_env.extend(envs)
                i += m
            if i < j and i < hi:  # arrival i needs the general steps
                k = min(j, i + (1 if m >= VECTOR_AFTER else VECTOR_AFTER))
                self._plain_span(i, k)
                i = k

    def _compiled_span(self, i0: int, j: int) -> None:
        """_plain_span by the compiled kernel: it runs the warm hits and hands each other arrival
        (cold start, reclaim, throttle, recycle, discard) to _plain_span, one at a time."""
        rows, arr, svc = self.k_env, self._arr, self._svc
        assert rows is not None and self.ka_const is not None
        i = i0
        while i < j:
            hn, pn = self._k_load()
            i, hn, pn = self.warm_span(
                arr, svc, i, j, self.scale, self.timeout, self.limit, self.ka_const,
                self.h_end, self.h_env, self.h_kind, self.h_death, hn,
                self.p_exp, self.p_env, self.p_death, pn, rows,
            )  # fmt: skip
            self._k_store(hn, pn)
            if i < j:  # arrival i, in Python (as Python floats); its row moves to k_env
                cold = len(self.n_cold)
                self._plain_span(i, i + 1, {i: float(arr[i])}, {i: float(svc[i])})
                rows[i] = self.n_env.pop()
                if len(self.n_cold) > cold:  # its row in the chunk (n_env is empty here)
                    self.n_cold[-1] = (i - self.n_from, self.n_cold[-1][1])
                i += 1

    def _k_load(self) -> tuple[int, int]:
        """The busy heap and the idle pool into the kernel's arrays (with room to grow)."""
        busy, pool, death = self.busy, self.idle[0], self.death
        hn, pn = len(busy), len(pool)
        if self._k_heap < hn + 64:
            self._k_heap = 2 * (hn + 64)
            self.h_end, self.h_death = np.empty(self._k_heap), np.empty(self._k_heap)
            self.h_env, self.h_kind = (
                np.empty(self._k_heap, np.int64),
                np.empty(self._k_heap, np.int64),
            )
        if self._k_pool < pn + 64:
            self._k_pool = 2 * (pn + 64)
            self.p_exp, self.p_death = np.empty(self._k_pool), np.empty(self._k_pool)
            self.p_env = np.empty(self._k_pool, np.int64)
        if hn:
            ends, envs, kinds, _ = zip(*busy, strict=True)
            self.h_end[:hn], self.h_env[:hn], self.h_kind[:hn] = ends, envs, kinds
            self.h_death[:hn] = [death[e] for e in envs] if self.life_on else INF
        if pn:
            exps, envs = zip(*pool, strict=True)
            self.p_exp[:pn], self.p_env[:pn] = exps, envs
            self.p_death[:pn] = [death[e] for e in envs] if self.life_on else INF
        return hn, pn

    def _k_store(self, hn: int, pn: int) -> None:
        """The kernel's arrays back into the busy heap (a valid heapq layout: same order) and
        the idle pool (bottom first)."""
        self.busy[:] = zip(
            self.h_end[:hn].tolist(), self.h_env[:hn].tolist(), self.h_kind[:hn].tolist(),
            repeat(0, hn), strict=True,
        )  # fmt: skip
        pool = self.idle[0]
        pool.clear()
        pool.extend(zip(self.p_exp[:pn].tolist(), self.p_env[:pn].tolist(), strict=True))

    def _rate_mode(self, c: Any) -> None:
        """Check the quota per request in this chunk only where it can bind: with client retries,
        or when some (function, clock second) holds more arrivals than the quota (counting the
        invocations already started in the second that straddles the chunk boundary)."""
        if self.spec.client.retries > 0 or c.arrival.size == 0:
            self.rate_check = self.rate_on
            return
        nfn = len(self.rate_n)
        w = np.floor(c.arrival).astype(np.int64)
        w0 = int(w[0])
        key = (w - w0) * nfn + (c.function if nfn > 1 else 0)
        counts = np.bincount(key, minlength=nfn)
        for f in range(nfn):
            if self.rate_end[f] == w0 + 1.0:
                counts[f] += self.rate_n[f]
        self.rate_check = int(counts.max()) > self.rate_cap

    def _rate_carry(self, c: Any) -> None:
        """After a chunk without per-request checks: the invocations started in its last clock
        second, per function (its arrivals then, less their throttles, plus any carried in)."""
        if c.arrival.size == 0:
            return
        nfn = len(self.rate_n)
        last = math.floor(float(c.arrival[-1]))
        lo = int(np.searchsorted(c.arrival, last, side="left"))
        fns = c.function[lo:] if nfn > 1 else np.zeros(c.arrival.size - lo, dtype=np.int64)
        counts = np.bincount(fns, minlength=nfn)
        end = last + 1.0
        for f in range(nfn):
            n = int(counts[f]) - (self.thr_n[f] if self.thr_end[f] == end else 0)
            if self.rate_end[f] == end:
                n += self.rate_n[f]
            self.rate_end[f], self.rate_n[f] = end, n
            self.thr_end[f], self.thr_n[f] = 0.0, 0  # counted in: not again

    def _cold_start(self, t: float, f: int) -> tuple[int, float] | None:
        """A new environment for function f at time t, if the scaling token bucket (refilled
        continuously) has a token: (environment id, start-up seconds); None means throttled."""
        sr = self.spec.scaling_rate
        tok = min(float(sr.burst), self.tokens[f] + (t - self.tok_time[f]) * sr.refill)
        self.tok_time[f] = t
        if tok < 1.0:
            self.tokens[f] = tok
            return None
        self.tokens[f] = tok - 1.0
        init = self.startup_dist.next()
        self.next_env += 1
        env_id = self.next_env
        self.created[env_id] = t
        if self.life_on:
            life = self.life_const
            self.death[env_id] = t + (life if life is not None else self.life_draw.next())  # type: ignore[union-attr]
        self.live += 1
        if self.live > self.peak:
            # Idle environments are reclaimed lazily (at their next look-up), so `live` may still
            # count some that expired before t: drop them before raising the peak on them.
            self._purge(t, before=True)
            self.peak = max(self.peak, self.live)
        if self.snapstart:
            self.restores += 1
        else:
            self.billed_init_ms += math.ceil(init * 1e3 - 1e-9)
        self.cold_in_step += 1
        return env_id, self.sandbox + init

    def _throttle(self, t: float, t0: float, s: float, f: int, attempt: int, over: float) -> None:
        """A 429: retry after full-jitter backoff if the client still may, else record it."""
        self.throttles += 1
        if self.rate_on and not self.rate_check:  # for _rate_carry
            if t >= self.thr_end[f]:
                self.thr_end[f], self.thr_n[f] = math.floor(t) + 1.0, 0
            self.thr_n[f] += 1
        self.attempts += 1
        if attempt < self.spec.client.retries:
            backoff = self.spec.client.backoff
            cap = min(backoff.cap, backoff.base * 2.0**attempt)
            self.retry_seq += 1
            item = (t + self.jitter.random() * cap, self.retry_seq, t0, s, f, attempt + 1, over)
            heappush(self.retry, item)
            return
        self._row(t0, t, t, t - t0, 0.0, over, THROTTLED, -1)

    def _overhead(self, idx: int) -> float:
        if self.gw_const is not None:
            return self.gw_const
        assert self.over is not None
        return self.over[idx]

    def _retry(self, item: tuple, until: float) -> None:
        """A retried request: the slow, fully general path (rare)."""
        t, _seq, t0, s, f, attempt, over = item
        busy = self.busy
        while busy and busy[0][0] <= t:
            self._release(heappop(busy))
        env_id, kind, startup = 0, _ON_DEMAND, 0.0
        if self.rate_on and t >= self.rate_end[f]:
            self.rate_end[f] = math.floor(t) + 1.0
            self.rate_n[f] = 0
        if self.rate_on and self.rate_n[f] >= self.rate_cap:
            pass  # invocation rate quota: throttled
        elif len(busy) < self.limit:
            if self.pc_idle[f]:
                env_id, kind = self.pc_idle[f].pop(), _PROVISIONED
            else:
                pool = self.idle[f]
                while pool and (pool[-1][0] if self.mru else pool[0][0]) <= t:
                    self._reclaim(pool.pop() if self.mru else pool.popleft())
                if pool:
                    env_id = (pool.pop() if self.mru else pool.popleft())[1]
                else:
                    cold = self._cold_start(t, f)
                    if cold is not None:
                        env_id, startup = cold
        if not env_id:
            self._throttle(t, t0, s, f, attempt, over)
            return
        if self.rate_on:
            self.rate_n[f] += 1
        start = t + startup
        dur = s * self.scale
        outcome = OK if dur <= self.timeout else TIMED_OUT
        if outcome != OK:
            dur = self.timeout
        end = start + dur
        heappush(busy, (end, env_id, kind if outcome == OK else _DISCARD, f))
        if self.track_pc and kind == _PROVISIONED:
            self._pc_busy(start, end)
        billed = math.ceil(dur * 1e3 - 1e-9)
        self.invocations += 1
        self.attempts += 1
        if kind == _PROVISIONED:
            self.billed_pc_ms += billed
        else:
            self.billed_od_ms += billed
        self._row(t0, start, end, t - t0, startup, over, outcome, env_id, dur)

    def _row(
        self,
        arrival: float,
        start: float,
        end: float,
        wait: float,
        startup: float,
        over: float,
        outcome: int,
        env_id: int,
        service: float = 0.0,
    ) -> None:
        log = self.log
        log.arrival.append(arrival)
        log.start.append(start)
        log.end.append(end)
        log.wait.append(wait)
        log.startup.append(startup)
        log.service.append(service)
        log.overhead.append(over)
        log.cold.append(startup > 0.0)
        log.outcome.append(outcome)
        log.instance.append(env_id)

    def _rows_from_chunk(self) -> None:
        """Turn the first-attempt rows of the current chunk into log columns, vectorised."""
        lo = self.n_from
        k = len(self.n_env) if self.k_env is None else self._i - lo
        if not k or self._chunk is None:
            return
        hi = lo + k
        # (fromiter: ~15% faster than asarray)
        env = np.fromiter(self.n_env, np.int64, k) if self.k_env is None else self.k_env[lo:hi]
        st = np.zeros(k)
        if self.n_cold:
            rows, cold = zip(*self.n_cold, strict=True)
            st[list(rows)] = cold
            self.n_cold.clear()
        pc = env < 0
        ok = env != 0
        env = np.abs(env)
        # Clear in place: the hot loop holds this list's bound `append` across chunk switches.
        self.n_env.clear()
        self.n_from = hi
        a = self._chunk.arrival[lo:hi][ok]
        want = self._chunk.service[lo:hi][ok] * self.scale
        st, env, pc = st[ok], env[ok], pc[ok]
        timed_out = want > self.timeout
        dur = np.where(timed_out, self.timeout, want)
        start = a + st
        end = start + dur
        billed = np.ceil(dur * 1e3 - 1e-9)
        self.billed_pc_ms += float(billed[pc].sum())
        self.billed_od_ms += float(billed[~pc].sum())
        self.invocations += int(a.size)
        self.attempts += int(a.size)
        if self.gw_const is not None:
            over = np.full(a.size, self.gw_const)
        else:
            assert self.over is not None
            over = np.asarray(self.over[lo:hi])[ok]
        self.ctx.recorder.add(
            {
                "arrival": a,
                "start": start,
                "end": end,
                "wait": np.zeros(a.size),
                "startup": st,
                "service": dur,
                "overhead": over,
                "cold": st > 0.0,
                "outcome": np.where(timed_out, TIMED_OUT, OK).astype(np.uint8),
                "instance": env,
            }
        )

    def _release(self, item: tuple[float, int, int, int]) -> None:
        end, env_id, kind, f = item
        if kind == _ON_DEMAND:
            ka = self.ka_const if self.ka_const is not None else self.ka_draw.next()
            exp = end + ka
            if self.life_on:
                d = self.death[env_id]
                if exp > d:
                    if end >= d:  # recycled: its last request has ended
                        self._gone(env_id, end)
                        return
                    exp = d
            self.idle[f].append((exp, env_id))
        elif kind == _PROVISIONED:
            if self.pc_retire[f]:
                self.pc_retire[f] -= 1
                self.pc_live[f] -= 1
                self.live -= 1
            else:
                self.pc_idle[f].append(env_id)
        else:  # timed out: the environment is reset (discarded)
            if env_id in self.created:
                self._gone(env_id, end)
            else:  # a provisioned environment: Lambda re-initialises it in place
                self.pc_idle[f].append(env_id)

    def _reclaim(self, item: tuple[float, int]) -> None:
        expiry, env_id = item
        self._gone(env_id, expiry)

    def _gone(self, env_id: int, t: float) -> None:
        born = self.created.pop(env_id)
        self.death.pop(env_id, None)
        self.live -= 1
        lo, hi = max(born, self.ctx.warmup), min(t, self.ctx.duration)
        if hi > lo:
            self.env_seconds += hi - lo

    def _pc_busy(self, start: float, end: float) -> None:
        bins = self.pc_busy_bins
        m = int(start // 60)
        while start < end:
            edge = min(end, (m + 1) * 60.0)
            bins[m] = bins.get(m, 0.0) + edge - start
            start = edge
            m += 1

    # -- observation -----------------------------------------------------------------------------
    def _purge(self, now: float, before: bool = False) -> int:
        """Drop expired idle environments (with `before`, only those that expired before `now`:
        one ending exactly at `now` still counts at `now`, as the reference's reclaim runs after
        the arrivals of its instant); return the number of live idle on-demand ones."""
        count = 0
        lim = math.nextafter(now, -math.inf) if before else now
        for pool in self.idle:
            if self.ka_const is not None and not self.life_on:  # expiries are in release order
                while pool and pool[0][0] <= lim:
                    self._reclaim(pool.popleft())
            else:
                for item in [x for x in pool if x[0] <= lim]:
                    pool.remove(item)
                    self._reclaim(item)
            count += len(pool)
        return count

    def snapshot(self, now: float) -> dict[str, float]:
        idle_od = self._purge(now)
        idle_pc = sum(len(p) for p in self.pc_idle)
        row = {
            "instances": float(self.live),
            "busy": float(len(self.busy)),
            "idle": float(idle_od + idle_pc),
            "queued": 0.0,
            "desired": float(self.pc_level),
            "nodes": 0.0,
            "arrivals": float(self.arrivals_in_step),
            "cold_starts": float(self.cold_in_step),
            "throttles": float(self.throttles),
        }
        self.arrivals_in_step = self.cold_in_step = 0
        return row

    def finish(self) -> None:
        end = self.ctx.duration
        while self.busy:  # in-flight work completes after the window
            self._release(heappop(self.busy))
        for pool in self.idle:
            while pool:
                self._reclaim(pool.popleft())
        for env_id in list(self.created):
            self._gone(env_id, end)
        # PC environments live for their configured segments.
        for seg_start, seg_end, level in self.pc_segments:
            lo, hi = max(seg_start, self.ctx.warmup), min(seg_end, end)
            if hi > lo:
                self.pc_env_seconds += (hi - lo) * level * len(self.pc_idle)
        self.flush()

    def instance_stats(self) -> dict[str, float]:
        span = max(self.ctx.duration - self.ctx.warmup, 1e-12)
        return {"mean": (self.env_seconds + self.pc_env_seconds) / span, "peak": float(self.peak)}

    def usage(self) -> LambdaUsage:
        n_fn = len(self.pc_idle)
        return LambdaUsage(
            requests=self.invocations,
            on_demand_billed_ms=self.billed_od_ms,
            pc_billed_ms=self.billed_pc_ms,
            init_billed_ms=self.billed_init_ms,
            pc_segments=[(a, b, int(lvl) * n_fn) for a, b, lvl in self.pc_segments],
            gateway_requests=self.attempts if self.spec.api_gateway != "none" else 0,
            window_s=self.ctx.duration,
            snapstart_restores=self.restores if self.spec.snapstart_charged else 0,
            snapstart_cached_s=self.ctx.duration * n_fn if self.spec.snapstart_charged else 0.0,
            snapstart_versions=n_fn,
            response_bytes=self.invocations * self.ctx.response_bytes[0],
            streamed_excess_bytes=self.invocations * self.ctx.response_bytes[1],
        )

    def bill(self) -> Any:
        return platform_bill(self.spec, self.usage(), self.ctx.month_s)


def platform_bill(
    s: LambdaSpec, usage: LambdaUsage, month_s: float | None, account: AccountTotals | None = None
) -> Bill:
    """The bill of a `type: lambda` platform; sim.simulate re-bills with `account` totals when
    platforms share an account (duration tiers and free allowances are per account)."""
    return lambda_bill(
        usage,
        memory_mb=s.memory,
        architecture=s.architecture,
        api_gateway=s.api_gateway,
        init_billing=s.init_billing,
        free_tier=s.free_tier,
        settings=s.cost,
        month_s=month_s,
        ops=s.ops,
        ops_profile=s.ops_profile,
        account=account,
    )


def _hhmm(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}"


# The array path (_vector_span): on by default. A block costs ~70 numpy calls, about as much as
# a few hundred warm hits in the Python loop (measured: even at spans of ~400 arrivals, ~30%
# faster at ~1,400), so spans and rests shorter than VECTOR_MIN stay in the loop; after a block
# cut short, the loop takes the next VECTOR_AFTER arrivals; a block holds at most VECTOR_BLOCK
# arrivals (work past its first rare arrival is redone).
VECTOR = True
VECTOR_MIN = 512
VECTOR_AFTER = 64
VECTOR_BLOCK = 2048

# When the compiled kernel pays, in expected requests per run (docs/model.md §19.4): it saves
# ~1 us a request (CPU, whole `sim run`) against ~1.2-1.9 s of importing numba and compiling it
# (break-even ~2M requests) or ~0.3-1.3 s with numba's cache of it (~1M).
COMPILE_AT = 3e6
CACHED_AT = 1.5e6
NATIVE_KERNEL = True  # take the native build when there is one (tests turn it off for numba's)


def use_compiled(expected: float) -> str | None:
    """Which build of the warm-hit kernel a plain Lambda run takes (sim.compiled): "native",
    "numba" or None (the Python loop and its array blocks)."""
    native = NATIVE_KERNEL and is_compiled(lambda_warm)
    return compiled.use_compiled(expected, "lambda_warm", COMPILE_AT, CACHED_AT, native)
