"""SQS queues in a system (issue 17): visibility, receipts, duplicates, the DLQ, and the consumer.

The rules (Amazon SQS Developer Guide, "Amazon SQS visibility timeout"; DeleteMessage API):
- a receive hides a message for `visibility_timeout` from the receive and gives a new receipt
  handle; when the timeout ends and the message was not deleted it is visible again, whether its
  consumer failed or is still working: another consumer may receive it while the first one still
  runs (at-least-once delivery: `duplicates` counts receives of a message still being processed);
- a delete must carry the most recent receipt handle ("otherwise, the request succeeds, but the
  message will not be deleted"): a consumer that finishes after its message was received again
  deletes nothing (`stale_deletes`); one that finishes after its message reappeared but before
  anyone received it again deletes it (its handle is still the latest);
- redrive: a message whose visibility ends after `max_receive_count` receives goes to the DLQ
  then. ASSUMPTION: at once (a long-polling consumer receives as soon as it is visible; AWS moves
  it on the receive that would exceed the count);
- a Lambda event source mapping's failed batch returns whole, or with
  `function_response_types: [ReportBatchItemFailures]` only its failed messages
  (lambda/latest/dg/services-sqs-errorhandling.html); on a FIFO queue the function stops at the
  first failure and reports it and the rest (AWS's guidance for FIFO partial batch responses).
  A function that times out or is throttled returns no response: the whole batch.

The heap engine's queue is SqsQueue with run_batch; the per-request reference
(sim.validation.reference._RefSqs) re-implements the dynamics. A message is [plan, root, sent,
visible since, receives, group, send number, state, consumers running it].
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Generator
from typing import Any

try:  # C types of hot locals for the compiled build (sim.native); no-ops in Python
    import cython
except ModuleNotFoundError:  # (Cython is a build requirement only)
    from sim import _cython as cython

from sim.pricing.systems import sqs_bill
from sim.pricing.tables import Bill
from sim.records import OK, REJECTED, TIMED_OUT
from sim.systems.spec import (
    ESM_MAX_BATCHES,
    ESM_SCALE_UP_PER_MINUTE,
    ESM_START_BATCHES,
    FIFO_DEDUP_INTERVAL_S,
)
from sim.systems.sqs_fifo import hold, put_back, release, take

VISIBLE, INFLIGHT, GONE = 0, 1, 2
RECEIVES, STATE, RUNNING = 4, 7, 8
RBIF = "ReportBatchItemFailures"
KILLED = -1  # a handler cut by a spot kill (SpotPodStation): not an outcome code
_FRESH = (VISIBLE, 0)
_EPS = 1e-9


def on_receive(q: Any, batch: list[list[Any]], now: float, warmup: float) -> list[int]:
    """Count a receive of `batch` (one ReceiveMessage) and return its receipts."""
    receipts = []
    for m in batch:
        r = m[4] + 1  # RECEIVES
        m[4] = r
        receipts.append(r)
        m[7] = INFLIGHT  # STATE
        if m[8]:  # RUNNING: received again while a consumer still processes it
            q.duplicates += 1
        m[8] += 1
        if m[2] >= warmup:
            q.waits.append(now - m[2])
    q.received += len(batch)
    q.inflight += len(batch)
    q.batches += 1
    return receipts


def on_expire(q: Any, batch: list[list[Any]], receipts: list[int], now: float) -> bool:
    """A receive's visibility timeout ended: its messages not deleted become visible again, or
    go to the DLQ; True when some became visible (the caller delivers)."""
    back = False
    mrc = q.spec.max_receive_count
    for m, r in zip(batch, receipts, strict=True):
        if m[STATE] != INFLIGHT or m[RECEIVES] != r:
            continue
        q.inflight -= 1
        if q.fifo:
            release(q.busy_groups, m)
        if mrc is not None and m[RECEIVES] >= mrc:
            m[STATE] = GONE
            q.dlq += 1
            q.task_done(m[1], now)
            continue
        m[STATE] = VISIBLE
        m[3] = now
        if q.fifo:
            put_back(q.visible, m)
        else:
            q.visible.append(m)
        back = True
    return back


def on_settle(
    q: Any, batch: list[list[Any]], ok: bool | list[bool], receipts: list[int], now: float
) -> int:
    """A consumer finished a receive: delete its successful messages (when its receipt is the
    latest); a failed message waits out its visibility timeout. Returns how many of the batch
    were deleted while hidden (the receive's visibility timeout has that many fewer to bring
    back)."""
    oks = ok if type(ok) is list else None
    hidden = 0
    fifo = q.fifo
    for i, m in enumerate(batch):
        m[8] -= 1  # RUNNING
        if not (ok if oks is None else oks[i]):
            continue
        state = m[7]
        if state == GONE or m[4] != receipts[i]:
            q.stale_deletes += 1  # DeleteMessage with an old receipt handle: not deleted
            continue
        if state == INFLIGHT:
            q.inflight -= 1
            hidden += 1
            if fifo:
                release(q.busy_groups, m)
        else:  # visible again, nobody received it since: the handle is still the latest
            q.visible.remove(m)
        m[7] = GONE
        q.deleted += 1
        q.task_done(m[1], now)
    return hidden


def cut_batch(q: Any, n: int) -> None:
    """A spot kill cut the pod worker holding a receive of `n` messages (sim.systems.engine
    SpotPodStation): it dies before DeleteMessage, so the caller settles the receive as failed
    (nothing deleted): each message comes back when the visibility timeout of its receive ends,
    that receive counted (maxReceiveCount -> the DLQ applies), a FIFO group locked until then
    (SQS Developer Guide, "Amazon SQS visibility timeout", "Using dead-letter queues"). What
    the batch had done (publishes, calls) stays done: at-least-once."""
    q.messages_cut += n


def on_spot_pod(
    sys: Any,
    st: Any,
    env: Any,
    body: Generator[Any, Any, Any],
    fetched: float,
    ran_from: float,
    startup: float,
    cold: bool,
) -> Generator[Any, Any, Any]:
    """A consumer's batch `body` run on spot pod `env` (SpotPodStation): its outcome, or KILLED
    when a spot kill cut it, that call then recorded as failed at the kill. The caller hands the
    batch back (SQS: cut_batch and a failed settle; Kafka: KafkaTopic.cut); its slot went with
    the pod, so nothing is released."""
    outcome = yield from sys.on_pod(st, env, body, False)
    if outcome == KILLED:
        st.calls_in += 1
        sys._row(st, fetched, ran_from, sys.now, 0.0, startup, cold, REJECTED, env)
    return outcome


def batch_outcome(q: Any, results: list[bool]) -> bool | list[bool]:
    """What the function returns for a batch: all-or-nothing, or per message (RBIF)."""
    if q.rbif:
        return results
    return all(results)


def fits(st: Any, plans: list[tuple]) -> bool:
    """True when a Lambda invocation running `plans` cannot reach the function timeout: only
    work and publishes (its run time known before it runs), less than the timeout. Such an
    invocation needs no timeout timer (most do)."""
    total = 0.0
    for plan in plans:
        for step in plan[2]:
            k = step[0]
            if k == 0:  # WORK (sim.systems.engine)
                total += step[1]
            elif k == 1 or k == 2:  # CALL, PAR: the run time is not known
                return False
    return total * st.scale < st.timeout - _EPS


def queue_bill(q: Any, window_s: float, month_s: float | None) -> Bill:
    """Sends, and a ReceiveMessage + DeleteMessageBatch per receive (duplicates and stale
    deletes included: each is a request AWS bills)."""
    return sqs_bill(
        sent=q.sent,
        receives=q.batches,
        message_size=q.spec.message_size,
        batch_messages=q.received / q.batches if q.batches else 1.0,
        window_s=window_s,
        month_s=month_s,
        fifo=q.spec.fifo,
    )


def queue_stats(q: Any, bill: Bill) -> dict[str, Any]:
    """`system.<placement>.queues.<queue>` for an SQS queue (the engine adds time_in_queue_ms)."""
    return {
        "type": "sqs",
        "fifo": q.fifo,
        "consumer": q.st.name,
        "sent": q.sent,
        "received": q.received,
        "deleted": q.deleted,
        "dlq": q.dlq,
        "duplicates": q.duplicates,
        "stale_deletes": q.stale_deletes,
        **({"deduplicated": q.deduplicated, "send_throttled": q.send_throttled} if q.fifo else {}),
        **({"messages_cut": q.messages_cut} if q.st.guarded else {}),  # on spot pods
        "depth_max": max(q.rows["depth"], default=0.0),
        "oldest_age_max_s": max(q.rows["oldest_s"], default=0.0),
        "timeline": {k: list(v) for k, v in q.rows.items()},
        "monthly_cost_usd": bill.monthly_usd,
        "monthly_breakdown_usd": dict(bill.monthly_breakdown),
    }


def new_rows() -> dict[str, list[float]]:
    return {"time_s": [], "depth": [], "in_flight": [], "oldest_s": []}


def sample_queue(q: Any, now: float) -> None:
    r, vis = q.rows, q.visible
    r["time_s"].append(now)
    r["depth"].append(float(len(vis)))
    r["in_flight"].append(float(q.inflight))
    r["oldest_s"].append(now - vis[0][2] if vis else 0.0)


class SendGate:
    """A FIFO queue's SendMessage checks, before a message enters the queue: the send quota
    (calls per second; ASSUMPTION: counted in whole one-second windows [k, k+1), AWS does not
    document its algorithm; over it: ThrottlingException, an error to the publisher, counted in
    `send_throttled`; the SDK's own retries of it are not modelled) and deduplication (a publish
    of one plan step already accepted less than 5 minutes ago - the same request retried, a
    message processed again - is accepted and not delivered: `deduplicated`)."""

    __slots__ = ("dedup", "limit", "n", "q", "seen", "window")

    def __init__(self, q: Any) -> None:
        self.q = q
        self.limit = q.spec.sends_per_second
        self.dedup = q.spec.deduplication
        self.window, self.n = -1, 0
        self.seen: OrderedDict[int, tuple[float, Any]] = OrderedDict()  # id(step) -> (at, step)
        q.send_throttled = q.deduplicated = 0

    def check(self, step: Any, now: float) -> int:
        """0: enqueue; 1: accepted, not delivered (a duplicate); 2: throttled."""
        if self.limit is not None:
            w = int(now)
            if w != self.window:
                self.window, self.n = w, 0
            if self.n >= self.limit:
                self.q.send_throttled += 1
                return 2
            self.n += 1
        if self.dedup:
            seen = self.seen
            got = seen.get(id(step))
            if got is not None and now - got[0] < FIFO_DEDUP_INTERVAL_S:
                self.q.deduplicated += 1
                return 1
            # The step kept: its id stays its own. Re-inserted at the end, so the (ordered) dict
            # is in send-time order and what left the 5-minute interval goes from its front (a
            # scan of the whole dict per send was quadratic at thousands of sends an interval).
            seen.pop(id(step), None)
            seen[id(step)] = (now, step)
            while now - next(iter(seen.values()))[0] >= FIFO_DEDUP_INTERVAL_S:
                seen.popitem(last=False)
        return 0


def send_gate(q: Any) -> SendGate | None:
    spec = q.spec
    if spec.type != "sqs" or not spec.fifo:
        return None
    if spec.sends_per_second is None and not spec.deduplication:
        return None
    return SendGate(q)


class SqsQueue:
    """An SQS queue (standard: oldest first; FIFO: sim.systems.sqs_fifo) and its consumer, in the
    heap engine (sim.systems.engine)."""

    def __init__(self, sys: Any, spec: Any, consumer: Any) -> None:
        self.sys, self.spec, self.st = sys, spec, consumer
        self.name = spec.name
        self.visible: deque[list[Any]] = deque()
        self.fifo = spec.fifo
        self.batch_size = spec.batch_size  # (read on every send: C fields in the native build)
        self.batching_window = float(spec.batching_window)
        self.visibility_timeout = float(spec.visibility_timeout)
        self.rbif = RBIF in spec.function_response_types
        self.busy_groups: dict[int, int] = {}  # FIFO: group -> its messages in flight
        self.inflight = 0  # received, not deleted and not visible again
        self.sent = 0
        self.received = 0  # receives (a message received twice counts twice)
        self.deleted = 0
        self.dlq = 0
        self.duplicates = 0
        self.stale_deletes = 0
        self.messages_cut = 0  # received by a pod worker that a spot kill cut (cut_batch)
        self.batches = 0  # ReceiveMessage/DeleteMessageBatch pairs
        self.send_throttled = self.deduplicated = 0
        self.gate = send_gate(self)  # FIFO: quota and deduplication of sends
        self.waits: list[float] = []  # time in queue of each received message (post warm-up)
        self.lambda_esm = consumer.kind == "lambda"
        self.active = 0  # batches being processed (Lambda ESM)
        cap = spec.maximum_concurrency if spec.maximum_concurrency is not None else 1 << 30
        self.cap = min(cap, ESM_MAX_BATCHES, getattr(consumer, "limit", 1 << 30))
        # FIFO: no ramp - concurrency follows the groups with messages, up to the cap
        self.level = self.cap if self.fifo else min(ESM_START_BATCHES, self.cap)
        self.ticking = False
        self.window_armed = False
        self.expiries: deque[tuple[float, int, list[Any]]] = deque()  # see _arm
        self.expiry_armed = False
        self.task_done = sys.task_done
        if not self.lambda_esm:
            consumer.on_free.append(self.kick)
        self.rows = new_rows()

    def start(self) -> None:
        pass  # no process of its own: receives follow sends and free consumers

    def put(self, msg: list[Any], now: float) -> None:
        msg += _FRESH  # [..., state, consumers running it]
        self.visible.append(msg)
        self.kick(now)

    def kick(self, now: float) -> None:
        vis = self.visible
        if not vis:
            return
        if self.fifo:
            self._kick_fifo(now)
            return
        if not self.lambda_esm:
            st = self.st
            while vis and st.free_slot():
                slot = st.take_free()
                self._start(now, [vis.popleft()], (slot, 0.0, False))
            return
        while vis and self.active < self.level:
            if self.batching_window > 0 and len(vis) < self.batch_size:
                due = vis[0][3] + self.batching_window
                if now + _EPS < due:
                    if not self.window_armed:
                        self.window_armed = True
                        self.sys.at(due, self._window, None)
                    break
            batch = [vis.popleft() for _ in range(min(self.batch_size, len(vis)))]
            self.active += 1
            self._start(now, batch, None)
        # The scaler ticks while messages wait: to scale up below the cap, and at the cap too, so
        # that the tick that finds the queue empty scales back to 5 (services-sqs-scaling.html:
        # "When traffic is low, Lambda scales back the processing to five concurrent batches").
        if vis and (self.level < self.cap or self.level > ESM_START_BATCHES) and not self.ticking:
            self.ticking = True
            self.sys.at(now + 1.0, self._scale, None)

    def _kick_fifo(self, now: float) -> None:
        """FIFO: receives take free groups only; a pod slot takes one message."""
        vis, busy = self.visible, self.busy_groups
        if not self.lambda_esm:
            st = self.st
            while vis and st.free_slot():
                batch = take(vis, busy, 1)
                if not batch:
                    return
                hold(busy, batch)
                self._start(now, batch, (st.take_free(), 0.0, False))
            return
        while vis and self.active < self.level:
            batch = take(vis, busy, self.spec.batch_size)
            if not batch:
                return
            hold(busy, batch)
            self.active += 1
            self._start(now, batch, None)

    def _window(self, _: Any) -> None:
        self.window_armed = False
        self.kick(self.sys.now)

    def _scale(self, _: Any) -> None:
        """Poller scale-up: +300 concurrent batches a minute (5 a second) while messages wait;
        back to the starting 5 when the queue is empty (AWS services-sqs-scaling.html)."""
        self.ticking = False
        now = self.sys.now
        if self.visible:
            self.level = min(self.cap, self.level + ESM_SCALE_UP_PER_MINUTE // 60)
            self.kick(now)
        else:
            self.level = min(self.cap, max(ESM_START_BATCHES, self.active))

    def _start(self, now: float, batch: list[list[Any]], slot: Any) -> None:
        receipts = on_receive(self, batch, now, self.sys.warmup)
        # its visibility timeout: [batch, receipts, messages still hidden under this receive]
        rx = [batch, receipts, len(batch)]
        self._arm(now + self.visibility_timeout, rx)
        self.sys.spawn(run_batch(self.sys, self, batch, rx, slot), None)

    def _arm(self, t: float, rx: list[Any]) -> None:
        """Receives' visibility timeouts end in receive order (one timeout per queue), so only
        the oldest pending one sits in the heap, with the (time, seq) it got at its receive (as
        sim.systems.engine._Timeouts); one whose messages were all deleted is dropped unseen."""
        sys = self.sys
        sys.seq += 1
        self.expiries.append((t, sys.seq, rx))
        if not self.expiry_armed:
            self.expiry_armed = True
            sys.heap.put(t, sys.seq, self._expire, None)

    def _expire(self, _: Any) -> None:
        pending = self.expiries
        rx = pending.popleft()[2]
        if rx[2] and on_expire(self, rx[0], rx[1], self.sys.now):
            self.kick(self.sys.now)
        while pending and not pending[0][2][2]:
            pending.popleft()
        if pending:
            t, seq, _rx = pending[0]
            self.sys.heap.put(t, seq, self._expire, None)
        else:
            self.expiry_armed = False

    def settle(
        self, batch: list[list[Any]], ok: bool | list[bool], now: float, rx: list[Any]
    ) -> None:
        if self.lambda_esm:
            self.active -= 1
        rx[2] -= on_settle(self, batch, ok, rx[1], now)
        if not rx[2]:  # nothing left for its visibility timeout: let the messages go now
            rx[0] = rx[1] = None
        self.kick(now)

    def backlog(self) -> int:
        return len(self.visible)

    def sample(self, now: float) -> None:
        sample_queue(self, now)

    def bill(self, window_s: float, month_s: float | None) -> Bill:
        return queue_bill(self, window_s, month_s)

    def stats(self, bill: Bill) -> dict[str, Any]:
        return queue_stats(self, bill)


@cython.locals(q=SqsQueue, received=cython.double, ran_from=cython.double, end=cython.double)
def run_batch(
    sys: Any, q: SqsQueue, batch: list[list[Any]], rx: list[Any], slot: Any
) -> Generator[Any, Any, Any]:
    """One receive of `batch` (a generator of engine commands): one Lambda invocation (or one pod
    worker) runs the messages in turn, under the function's timeout on Lambda."""
    st = q.st
    received = sys.now
    got = slot if slot is not None else st.acquire(None, received)
    if type(got) is int:  # throttled: the messages return after the visibility timeout
        q.settle(batch, False, sys.now, rx)
        return
    env, startup, cold = got
    if startup > 0:
        yield startup
    ran_from = sys.now
    results: list[bool] = []
    body = _messages(sys, q, batch, results)
    if st.is_lambda and not fits(st, [m[0] for m in batch]):
        outcome = yield from sys.timed(st, body)  # None: the function timeout ended it
    elif st.guarded:  # a worker on spot pods: a kill cuts it before its delete
        outcome = yield from on_spot_pod(sys, st, env, body, received, ran_from, startup, cold)
        if outcome == KILLED:
            cut_batch(q, len(batch))
            q.settle(batch, False, sys.now, rx)
            return  # its slot went with the pod
    else:
        outcome = yield from body
    end = sys.now
    if st.is_lambda:
        st.bill_invocation(end - ran_from)
    st.calls_in += 1
    ok: bool | list[bool]
    if outcome is None:  # no response: the whole batch returns
        st.discard(env, end)
        ok, code = False, TIMED_OUT
    else:
        ok = batch_outcome(q, results)
        code = OK if (ok if isinstance(ok, bool) else all(ok)) else REJECTED
        if slot is None:  # the function returned: its environment is free for the next batch
            st.release(env, end)
    sys._row(st, received, ran_from, end, 0.0, startup, cold, code, env)
    q.settle(batch, ok, end, rx)
    if slot is not None:  # a worker deletes its message before it receives the next one
        st.release(env, end)


@cython.locals(q=SqsQueue, i=cython.Py_ssize_t, rate=cython.double, dt=cython.double)
def _messages(
    sys: Any, q: SqsQueue, batch: list[list[Any]], results: list[bool]
) -> Generator[Any, Any, Any]:
    """The function's handler over a batch: each message's work in turn, its success in
    `results` (a FIFO partial-batch handler stops at its first failure)."""
    st = q.st
    i = st.index
    fail = sys.fail[i]
    rate = st.error_rate
    stop = q.fifo and q.rbif
    # a work-only handler (SystemModel.leaf): its sleeps from here, no _steps generator per
    # message (the same sleeps, counts and draws; SystemModel.fast = False keeps _steps)
    leaf = sys.fast and sys.leaf[i]
    work = sys._work
    for m in batch:
        if stop and results and not results[-1]:
            results.append(False)  # unprocessed after a failure: reported failed
            continue
        if leaf:
            for step in m[0][2]:
                dt = work(st, i, step[1])
                if dt > 0:
                    yield dt
            r = OK
        else:
            r = yield from sys._steps(m[0], st, m[1])
        results.append(r == OK and not (rate > 0 and fail.next() < rate))
    return OK
