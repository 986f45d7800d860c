"""The per-request SimPy path: a slow, obviously-correct oracle for the fast kernels.

Here every request is its own SimPy process and every completion and keep-alive expiry is a SimPy
event, the way a textbook SimPy model is written. It is ~10x slower than the kernels in
sim/platforms and exists only to prove them exact: tests run both on the same scenario and seed and
require identical per-request outcomes (tests/test_equivalence.py).

Event order at equal times, as in the kernels: completions first (earlier-started environment first),
then keep-alive expiries and control events, then arrivals (in arrival order).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from sim.engine import PlatformRun, _sampler, make_workload, platform_key, replication_seeds
from sim.engine import _stream as stream
from sim.platforms.base import RunContext
from sim.platforms.lambda_ import LambdaModel
from sim.records import OK, TIMED_OUT, Recorder
from sim.scenario import Scenario

_ARRIVAL_PRIORITY = 2  # after SimPy's URGENT (0) and NORMAL (1) events at the same time


def _at(env: simpy.Environment, delay: float, priority: float) -> simpy.Event:
    ev = simpy.Event(env)
    ev._ok = True
    ev._value = None
    env.schedule(ev, priority, delay)  # type: ignore[arg-type]
    return ev


class ReferenceLambda(LambdaModel):
    """Lambda with one SimPy process per request; shares only settings and the bill."""

    def start(self) -> None:
        super().start()
        self.in_flight = 0
        self.idle_envs: list[list[list[Any]]] = [[] for _ in self.idle]  # [env_id, since]
        self.env.process(self._source())

    def advance(self, until: float) -> None:  # requests drive themselves
        pass

    def _source(self) -> Generator:
        for chunk in self.chunks:
            over = (
                np.full(chunk.arrival.size, self.gw_const)
                if self.gw_const is not None
                else self.spec.gateway_latency.sample(chunk.arrival.size, self.gw_rng)
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
        if self.in_flight >= self.limit:
            return None
        if self.pc_idle[f]:
            return self.pc_idle[f].pop(), 1, 0.0
        idle = self.idle_envs[f]
        if idle:
            env = idle.pop() if self.mru else idle.pop(0)
            env[1] = None  # no longer idle: its reaper will find it busy
            return env[0], 0, 0.0
        sr = self.spec.scaling_rate
        tok = min(float(sr.burst), self.tokens[f] + (t - self.tok_time[f]) * sr.refill)
        self.tok_time[f] = t
        if tok < 1.0:
            self.tokens[f] = tok
            return None
        self.tokens[f] = tok - 1.0
        init = self.startup_dist.next()
        if not self.snapstart:
            self.billed_init_ms += math.ceil(init * 1e3 - 1e-9)
        self.next_env += 1
        self.created[self.next_env] = t
        self.live += 1
        self.peak = max(self.peak, self.live)
        return self.next_env, 0, self.sandbox + init

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
        entry = [env_id, end]
        self.idle_envs[f].append(entry)
        self.env.process(self._reaper(entry, end, ka, f))

    def _reaper(self, entry: list[Any], since: float, ka: float, f: int) -> Generator:
        yield self.env.timeout(ka)
        if entry[1] == since:  # still idle since that release
            self.idle_envs[f].remove(entry)
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


REFERENCE_MODELS: dict[str, type] = {"lambda": ReferenceLambda}


def run_reference(
    scenario: Scenario, platform_name: str, replication: int, base_dir: Path
) -> PlatformRun:
    """Like sim.engine.run_one, with the per-request SimPy model."""
    spec = scenario.platform(platform_name)
    rep_seq = replication_seeds(scenario.seed, scenario.replications)[replication]
    workload = make_workload(scenario, rep_seq, base_dir)
    env = simpy.Environment()
    recorder = Recorder(
        scenario.warmup,
        max_rows=10**9,
        rel_error=1e-3,
        sample_rows=10**9,
        rng=np.random.default_rng(0),
        horizon=scenario.duration,
    )
    ctx = RunContext(
        env=env,
        rng=stream(rep_seq, platform_key(platform_name)),
        recorder=recorder,
        duration=scenario.duration,
        warmup=scenario.warmup,
        cpu_bound=scenario.workload.service.cpu_bound,
        function_names=list(workload.function_names),
    )
    model = REFERENCE_MODELS[spec.type](spec, ctx)
    model.chunks = list(workload.chunks(scenario.duration))
    model.start()
    timeline: dict[str, list[float]] = {}
    assert scenario.timeline_step is not None
    env.process(_sampler(env, model, scenario.timeline_step, scenario.duration, timeline))
    env.run(until=scenario.duration + 1e-9)
    model.finish()
    stats = recorder.stats()
    return PlatformRun(
        platform=platform_name,
        replication=replication,
        stats=stats,
        instances=model.instance_stats(),
        busy_mean=stats.busy_mean,
        timeline={k: np.asarray(v) for k, v in timeline.items()},
        decisions=list(ctx.decisions),
        bill=model.bill(),
        wall_s=0.0,
    )
