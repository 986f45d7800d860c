"""What every platform model shares: the run context, chunk feeding, control loops, snapshots.

A model's data plane runs in `advance(until)`: a tight loop over arrivals and completions with time
< until, appending to a RequestLog. Its control plane (autoscalers, provisioned-concurrency
changes, node provisioning) are SimPy processes started in `start()`. The engine's driver always
advances the data plane to the next control event before SimPy runs that event (sim.engine).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from sim.records import Recorder, RequestLog

if TYPE_CHECKING:
    from sim.workload import RequestChunk

INF = float("inf")


@dataclass
class Decision:
    """A control-plane action, for the timeline and the report: what changed and why."""

    time_s: float
    kind: str  # e.g. "provisioned_concurrency", "keda_activation", "hpa", "node"
    before: float
    after: float
    reason: str


@dataclass
class RunContext:
    env: simpy.Environment
    rng: np.random.Generator  # this platform's own stream (never the workload's)
    recorder: Recorder
    duration: float
    warmup: float
    cpu_bound: float
    function_names: list[str]
    decisions: list[Decision] = field(default_factory=list)
    # Billing (issue 16): month length for monthly figures (None: the 730 h default) and the
    # expected response bytes (mean, and mean beyond 6 MB for Lambda response streaming).
    month_s: float | None = None
    response_bytes: tuple[float, float] = (0.0, 0.0)
    # The workload's analytic mean request count for this run: a model may pick a compiled
    # kernel when the run is long enough to pay for compiling it (LambdaModel).
    expected_requests: float = 0.0

    def decide(self, kind: str, before: float, after: float, reason: str) -> None:
        self.decisions.append(Decision(self.env.now, kind, before, after, reason))


class DrawBuffer:
    """Bulk pre-drawn samples of a distribution, handed out one at a time in the hot loop."""

    __slots__ = ("_buf", "_dist", "_i", "_n", "_rng")

    def __init__(self, dist: Any, rng: np.random.Generator, n: int = 4096) -> None:
        self._dist, self._rng, self._n = dist, rng, n
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._dist.sample(self._n, self._rng).tolist()
            self._i = 0
        x = self._buf[self._i]
        self._i += 1
        return x

    def take(self, n: int) -> list[float]:
        """The next n samples, the very values n calls of next() would return."""
        out = self._buf[self._i : self._i + n]
        self._i += len(out)
        while len(out) < n:
            self._buf = self._dist.sample(self._n, self._rng).tolist()
            self._i = min(self._n, n - len(out))
            out += self._buf[: self._i]
        return out


def substream(rng: np.random.Generator, purpose: int) -> np.random.Generator:
    """An independent child stream of a platform's stream, one per purpose (init, keep-alive,
    gateway, jitter, ...), so the order of draws of one purpose never shifts another's."""
    seq = rng.bit_generator.seed_seq
    assert isinstance(seq, np.random.SeedSequence)
    child = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, 7000 + purpose))
    return np.random.default_rng(child)


def constant_value(dist: Any) -> float | None:
    """The value of a constant distribution, else None (lets hot loops skip a draw)."""
    return float(dist.value) if getattr(dist, "dist", None) == "constant" else None


def every(
    env: simpy.Environment,
    period: float,
    action: Callable[[float], None],
    first: float | None = None,
) -> Generator:
    """A periodic control loop: call action(now) at first, first+period, ..."""
    yield env.timeout(period if first is None else first)
    while True:
        action(env.now)
        yield env.timeout(period)


class PlatformModel:
    """Base class. Subclasses implement start, advance, finish, snapshot, usage and bill."""

    uses_function = True  # does the data plane read RequestChunk.function?
    uses_lists = True  # does the data plane loop over the chunk as Python lists?
    # The per-request models of sim.validation.reference schedule their own arrivals from
    # `chunks` (set by the engine) instead of being fed and advanced by the driver.
    drives_itself = False
    # Set by the engine's driver before it sleeps: its pending wake and how far arrivals are
    # offered (-INF: not driven). A control loop may run quiet steps in place up to there.
    driver_wake: Any = None
    fed_until = -INF

    def __init__(self, spec: Any, ctx: RunContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.env = ctx.env
        self.chunks: list[RequestChunk] = []
        self.log = RequestLog()
        # Arrivals not yet processed: the current chunk as Python lists (fast indexing) + cursor.
        self._chunks: list[RequestChunk] = []
        self._arr: list[float] = []
        self._svc: list[float] = []
        self._fn: list[int] = []
        self._i = 0
        self._chunk: RequestChunk | None = None  # the current chunk's arrays

    # -- feeding ---------------------------------------------------------------------------------
    def offer(self, chunk: RequestChunk) -> None:
        if chunk.arrival.size:
            self._chunks.append(chunk)

    def _next_chunk(self) -> bool:
        """Make the next offered chunk current; False when none is left."""
        if not self._chunks:
            return False
        c = self._chunks.pop(0)
        self._chunk = c
        self._i = 0
        if self.uses_lists:  # plain lists index fastest in a Python loop
            self._arr = c.arrival.tolist()
            self._svc = c.service.tolist()
            # Function ids only for models that keep per-function state.
            self._fn = c.function.tolist() if self.uses_function else []
        return True

    def flush(self) -> None:
        if len(self.log):
            self.ctx.recorder.add(self.log.take())

    # -- to implement ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start control-plane processes."""

    def advance(self, until: float) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """The run is over at ctx.duration: settle accounting, flush the log."""
        self.flush()

    def snapshot(self, now: float) -> dict[str, float]:
        """Timeline row: instances, busy, idle, queued, desired, nodes (+ model extras)."""
        raise NotImplementedError

    def instance_stats(self) -> dict[str, float]:
        """{'mean': time-average instances after warm-up, 'peak': max}."""
        raise NotImplementedError

    def bill(self) -> Any:
        """A sim.pricing Bill for the whole simulated window."""
        raise NotImplementedError

    def usage(self) -> Any:
        """The billable quantities behind bill() (an account's platforms are re-billed on them)."""
        raise NotImplementedError
