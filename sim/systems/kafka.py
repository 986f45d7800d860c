"""Kafka topics in a system (issue 17): partitions, one consumer group, offsets and lag.

A topic has `partitions` logs. A record goes to the partition of its key (the Java producer's
default partitioner: murmur2 of the key bytes, positive, modulo the partition count) or, keyless,
round robin (the producer's sticky partitioner spreads keyless batches evenly over the partitions;
below one batch per partition the simulator does not model batch.size / linger.ms, so each record
takes the next partition in turn). The consumer group is the `consumer` service:

- members: the Lambda event source mapping's pollers (one at first, re-evaluated every minute, at
  most one per partition) or the service's ready pods (fixed or KEDA-scaled);
- the range assignor (the Java consumer's first default `partition.assignment.strategy`) gives
  each member a contiguous run of partitions; members beyond the partition count idle;
- at most one record (pods) or batch (Lambda) of a partition in flight, in offset order, the
  offset committed after processing; a member runs one partition's work at a time per slot;
- a membership change is a rebalance: no member fetches for `rebalance_pause`, and a partition's
  in-flight work finishes (and commits) before its new owner fetches;
- lag = latest offset - committed offset, per partition and summed (in-flight records are lag);
- a failed batch (any record failing) is retried whole until it succeeds or
  `maximum_retry_attempts` retries have failed (then discarded, counted in `dlq`).

The per-request reference (sim.validation.reference._RefKafka) re-implements the dynamics; the
pure rules here (partitioner, assignor, KEDA's lag arithmetic) are shared, as plans are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

import numpy as np

from sim.platforms.base import every
from sim.pricing.systems import broker_volumes_bill, msk_bill
from sim.pricing.tables import Bill
from sim.records import OK, REJECTED, TIMED_OUT
from sim.systems.spec import KAFKA_ESM_EVALUATION_S, KAFKA_ESM_START_POLLERS
from sim.systems.sqs import KILLED, fits, on_spot_pod

# A throttled Lambda invocation of a batch is retried after this long (the batch stays in flight
# and is not counted as a failed attempt). ASSUMPTION: AWS documents retries, not their delay.
KAFKA_THROTTLE_RETRY_S = 1.0
_EPS = 1e-9
_M32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & _M32
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & _M32
        k ^= k >> r
        k = (k * m) & _M32
        h = (h * m) & _M32
        h ^= k
    rest = length & 3
    tail = data[length - rest :]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & _M32
    h ^= h >> 13
    h = (h * m) & _M32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def key_partition(key: int, partitions: int) -> int:
    """The default partitioner for a keyed record: toPositive(murmur2(key bytes)) % partitions
    (BuiltInPartitioner.partitionForKey); key k is the UTF-8 string of the number k."""
    return (murmur2(str(key).encode()) & 0x7FFFFFFF) % partitions


def range_assignment(partitions: int, members: int) -> list[list[int]]:
    """RangeAssignor for one topic: member i gets partitions [i*q + min(i, r), ...) of length
    q + (i < r), q = partitions // members, r = partitions % members (members in id order)."""
    if members <= 0:
        return []
    q, r = divmod(partitions, members)
    out, start = [], 0
    for i in range(members):
        n = q + (1 if i < r else 0)
        out.append(list(range(start, start + n)))
        start += n
    return out


def keda_lag(lags: list[int], committed: list[int], prev: dict[int, int], md: Any) -> float:
    """The value KEDA's kafka scaler reports (kedacore/keda pkg/scalers/kafka_scaler.go v2.20.2,
    getTotalLag / getLagForPartition): the sum of per-partition lags, a partition whose committed
    offset has not moved since the previous read counted 0 with excludePersistentLag (`prev`
    keeps the offsets read, as the scaler's previousOffsets), then capped unless
    allowIdleConsumers: `if totalLag / lagThreshold > upperBound { totalLag = upperBound *
    lagThreshold }` (int64 division) with upperBound = partitions, or the partitions with lag
    under limitToPartitionsWithLag."""
    total, with_lag = 0, 0
    for p, lag in enumerate(lags):
        if md.excludePersistentLag:
            c = committed[p]
            seen = prev.get(p)
            prev[p] = c
            if seen is not None and seen == c:
                lag = 0  # persistent: not counted for scaling
        total += lag
        if lag > 0:
            with_lag += 1
    if not md.allowIdleConsumers or md.limitToPartitionsWithLag:
        bound = with_lag if md.limitToPartitionsWithLag else len(lags)
        t = int(md.lagThreshold)
        if total // t > bound:
            total = bound * t
    return float(total)


def esm_pollers(pollers: int, lag: int, last_lag: int, partitions: int) -> int:
    """Lambda's on-demand Kafka poller count after a one-minute evaluation (kafka-scaling-modes
    .html): one more when the offset lag grew over the minute ("the partition is receiving
    messages faster than Lambda can process them"), at most one per partition; one fewer when
    there is no lag, at least one. ASSUMPTION: one poller per evaluation, applied at once (AWS:
    "within three minutes of evaluation"; the step size is not documented)."""
    if lag > last_lag and pollers < partitions:
        return pollers + 1
    if lag == 0 and pollers > KAFKA_ESM_START_POLLERS:
        return pollers - 1
    return pollers


class Member:
    """One consumer of the group: its partitions and how many of them it is processing; `dead`:
    killed, still a member until its session times out (KafkaTopic.kill)."""

    __slots__ = ("busy", "dead", "parts")

    def __init__(self) -> None:
        self.parts: list[int] = []
        self.busy = 0
        self.dead = False


class KafkaTopic:
    """A topic and its consumer group in the heap engine (sim.systems.engine)."""

    keep_trace = False  # tests: keep (partition, offset, member, start, end) per commit

    def __init__(self, sys: Any, spec: Any, consumer: Any, keys: Any) -> None:
        self.sys, self.spec, self.st = sys, spec, consumer
        self.name = spec.name
        n = spec.partitions
        self.parts: list[deque[list[Any]]] = [deque() for _ in range(n)]  # waiting, in order
        self.inflight_p = [0] * n  # records of partition p being processed (0 or more: 1 batch)
        self.latest = [0] * n  # offsets: records written
        self.committed = [0] * n  # offsets: records processed (or discarded) and committed
        self.keda_prev: dict[int, int] = {}  # excludePersistentLag: offsets KEDA read last
        self.rr = 0
        self.keys = keys  # uniforms for the record keys (common to placements)
        self.key_part = (
            [key_partition(k, n) for k in range(spec.keys)]
            if spec.keys is not None and spec.keys <= 100_000
            else None
        )
        self.lambda_esm = consumer.kind == "lambda"
        # a member's parallel slots: a Lambda poller runs one batch per partition it owns at a
        # time; a pod's consumer one record per pod slot (pod.concurrency)
        self.per_member = 1 << 30 if self.lambda_esm else int(consumer.conc)
        self.members: list[Member] = []
        self.zombies = 0  # killed members whose session has not timed out (kill)
        self.pollers = KAFKA_ESM_START_POLLERS if self.lambda_esm else 0
        self.pause_until = 0.0
        self.rebalances = 0
        self.members_peak = 0
        self.last_lag = 0
        self.armed = [False] * n  # a batching-window timer pending for partition p
        self.sent = self.received = self.deleted = self.dlq = self.batches = 0
        self.messages_cut = 0  # fetched by a pod consumer that a spot kill cut (cut)
        self.waits: list[float] = []
        self.trace: list[tuple[int, int, int, float, float]] = []
        self.rows = new_rows()
        if not self.lambda_esm:
            consumer.on_free.append(self.kick)
        self.sync_members(0.0, initial=True)

    # -- group membership ------------------------------------------------------------------------
    def wanted_members(self) -> int:
        return min(self.pollers, len(self.parts)) if self.lambda_esm else int(self.st.pods)

    def sync_members(self, now: float, initial: bool = False) -> None:
        """A membership change is a rebalance: range-assign the partitions, pause fetching. A
        member leaving (a pod deleted: LeaveGroup on close) is the newest live one; its in-flight
        work finishes and commits. Killed members stay until their session times out."""
        n = self.wanted_members() + self.zombies
        members = self.members
        if n == len(members):
            return
        if n > len(members):
            self.members = members + [Member() for _ in range(n - len(members))]
        else:
            drop = len(members) - n
            keep: list[Member] = []
            for m in reversed(members):
                if drop and not m.dead:
                    drop -= 1
                else:
                    keep.append(m)
            self.members = keep[::-1]
        self._assign(now, initial)

    def _assign(self, now: float, initial: bool = False) -> None:
        n = len(self.members)
        for m, parts in zip(self.members, range_assignment(len(self.parts), n), strict=True):
            m.parts = parts
        self.members_peak = max(self.members_peak, n)
        if initial:
            return
        self.rebalances += 1
        self.pause_until = now + self.spec.rebalance_pause
        if self.spec.rebalance_pause > 0:
            self.sys.at(self.pause_until, self._resume, None)

    def _resume(self, _: Any) -> None:
        self.kick(self.sys.now)

    def kill(self, k: int, now: float) -> None:
        """k of the consumer's ready pods are killed (a spot kill, before the pods are removed):
        no LeaveGroup, so the broker keeps k members (ASSUMPTION: the newest live ones, as the
        model's members are not tied to pods) until their session times out; their partitions
        are not consumed meanwhile, then a rebalance hands them to the others (_expire): the
        broker removes a member from which no heartbeat came within session.timeout.ms and
        rebalances (kafka.apache.org/documentation/#consumerconfigs_session.timeout.ms; default
        45 s since Kafka 3.0, KIP-735). A deleted pod's consumer closes and leaves at once."""
        timeout = self.spec.session_timeout
        if timeout <= 0 or self.lambda_esm or k <= 0:
            return
        dead = [m for m in reversed(self.members) if not m.dead][:k]
        for m in dead:
            m.dead = True
        self.zombies += len(dead)
        if dead:
            self.sys.at(now + timeout, self._expire, dead)

    def _expire(self, dead: list[Member]) -> None:
        """The killed members' session timed out: they leave, and the group rebalances."""
        now = self.sys.now
        gone = set(dead)  # Member keeps object identity for == and hash: these very members
        self.members = [m for m in self.members if m not in gone]
        self.zombies -= len(dead)
        if self.wanted_members() + self.zombies != len(self.members):
            self.sync_members(now)  # (pods joined or left meanwhile: one rebalance for all)
        else:
            self._assign(now)
        self.kick(now)

    def evaluate(self, now: float) -> None:
        """Lambda's on-demand poller scaling, every minute (esm_pollers); a change rebalances."""
        lag = sum(self.lag_by_partition())
        before = self.pollers
        self.pollers = esm_pollers(self.pollers, lag, self.last_lag, len(self.parts))
        if self.pollers != before:
            why = f"offset lag {self.last_lag} -> {lag}"
            self.sys.ctx.decide(f"{self.name}:esm_pollers", before, self.pollers, why)
        self.last_lag = lag
        self.sync_members(now)
        self.kick(now)

    # -- records ---------------------------------------------------------------------------------
    def partition_of_next(self) -> int:
        n = len(self.parts)
        if self.spec.keys is None:
            p = self.rr
            self.rr = (p + 1) % n
            return p
        k = min(int(self.keys.next() * self.spec.keys), self.spec.keys - 1)
        return self.key_part[k] if self.key_part is not None else key_partition(k, n)

    def put(self, msg: list[Any], now: float) -> None:
        p = self.partition_of_next()
        msg[5:] = [p, self.latest[p]]  # its partition and offset (in place of SQS's FIFO fields)
        self.latest[p] += 1
        self.parts[p].append(msg)
        self.kick(now)

    def start(self) -> None:
        # a control loop, like KEDA's polls: a SimPy process that sees the data plane up to now
        if self.lambda_esm:
            env = self.sys.env
            env.process(every(env, KAFKA_ESM_EVALUATION_S, self.evaluate))

    def kick(self, now: float) -> None:
        """Hand waiting records to free members, partition by partition (oldest head first)."""
        if not self.lambda_esm and self.st.pods + self.zombies != len(self.members):
            self.sync_members(now)  # a pod joined or left the group
        if now + _EPS < self.pause_until:
            return
        parts, inflight = self.parts, self.inflight_p
        spec = self.spec
        for mi, m in enumerate(self.members):
            while m.busy < self.per_member and not m.dead:
                best, head = -1, 0.0
                for p in m.parts:
                    q = parts[p]
                    if q and not inflight[p] and (best < 0 or q[0][2] < head):
                        best, head = p, q[0][2]
                if best < 0:
                    break
                q = parts[best]
                if self.lambda_esm:
                    size = spec.batch_size
                    if spec.batching_window > 0 and len(q) < size:
                        due = q[0][2] + spec.batching_window
                        if now + _EPS < due:
                            if not self.armed[best]:
                                self.armed[best] = True
                                self.sys.at(due, self._window, best)
                            break
                    batch = [q.popleft() for _ in range(min(size, len(q)))]
                    slot = None
                else:
                    if not self.st.free_slot():
                        return
                    slot = self.st.take_free()
                    batch = [q.popleft()]
                m.busy += 1
                inflight[best] = len(batch)
                self._start(now, m, mi, best, batch, slot)

    def _window(self, p: int) -> None:
        self.armed[p] = False
        self.kick(self.sys.now)

    def _start(self, now: float, m: Member, mi: int, p: int, batch: list, slot: Any) -> None:
        warm = self.sys.warmup
        for r in batch:
            self.received += 1
            if r[4] == 0 and r[2] >= warm:
                self.waits.append(now - r[2])
            r[4] += 1
        self.batches += 1
        self.sys.spawn(run_batch(self.sys, self, m, mi, p, batch, slot), None)

    def settle(self, m: Member, mi: int, p: int, batch: list, ok: bool, start: float) -> bool:
        """After an attempt: commit (ok, or retries used up: discarded): True; retry: False."""
        now = self.sys.now
        most = self.spec.maximum_retry_attempts
        if not ok and (most is None or batch[0][4] <= most):
            for r in batch:
                r[4] += 1
                self.received += 1
            self.batches += 1
            return False
        for r in batch:
            if ok:
                self.deleted += 1
            else:
                self.dlq += 1
            self.sys.task_done(r[1], now)
            if self.keep_trace:
                self.trace.append((p, r[6], mi, start, now))
        self.committed[p] += len(batch)
        self.inflight_p[p] = 0
        m.busy -= 1
        self.kick(now)
        return True

    def cut(self, m: Member, p: int, batch: list) -> None:
        """A spot kill cut the pod consumer holding `batch` of partition `p` before it committed
        (the model commits after processing: enable.auto.commit=false and commitSync, KafkaConsumer
        javadoc, "Offsets and Consumer Position": the committed position "is the offset that the
        consumer will recover to" should the process fail): the records go back to the head of
        the partition, and its owner after the rebalance reads them again (duplicates)."""
        self.parts[p].extendleft(reversed(batch))
        self.inflight_p[p] = 0
        m.busy -= 1
        self.messages_cut += len(batch)
        self.kick(self.sys.now)

    # -- metrics ---------------------------------------------------------------------------------
    def lag_by_partition(self) -> list[int]:
        return [a - c for a, c in zip(self.latest, self.committed, strict=True)]

    def backlog(self) -> int:
        return sum(len(q) for q in self.parts)

    def keda_metric(self, md: Any) -> float:
        return keda_lag(self.lag_by_partition(), self.committed, self.keda_prev, md)

    def sample(self, now: float) -> None:
        sample_topic(self, now)

    def bill(self, window_s: float, month_s: float | None) -> Bill:
        return topic_bill(self, window_s, month_s)

    def stats(self, bill: Bill) -> dict[str, Any]:
        return topic_stats(self, bill)


# --- reporting, shared with the reference (sim.validation.reference._RefKafka) -------------------
def sample_topic(q: Any, now: float) -> None:
    r = q.rows
    lags = [a - c for a, c in zip(q.latest, q.committed, strict=True)]
    heads = [part[0][2] for part in q.parts if part]
    r["time_s"].append(now)
    r["depth"].append(float(sum(lags)))
    r["in_flight"].append(float(sum(q.inflight_p)))
    r["oldest_s"].append(now - min(heads) if heads else 0.0)
    r["consumers"].append(float(len(q.members)))
    r["partition_lag"].append([float(x) for x in lags])


def topic_bill(q: Any, window_s: float, month_s: float | None) -> Bill:
    """MSK: its broker-hours and storage; on the cluster: the brokers' volumes (their share of
    the nodes is added by the system's cluster bill)."""
    s = q.spec
    if s.hosting == "cluster":
        return broker_volumes_bill(
            brokers=s.brokers,
            storage_gib=s.storage_gib,
            window_s=window_s,
            month_s=month_s,
            records=q.sent,
        )
    return msk_bill(
        brokers=s.brokers,
        broker_type=s.broker_type,
        storage_gib=s.storage_gib,
        window_s=window_s,
        month_s=month_s,
        records=q.sent,
    )


def topic_stats(q: Any, bill: Bill) -> dict[str, Any]:
    """`system.<placement>.queues.<topic>`: the SQS keys (depth = lag: latest - committed
    offset, summed over partitions; the engine adds time_in_queue_ms) and Kafka's own
    (partitions, rebalances, consumers, the per-partition lag)."""
    rows = q.rows
    n = len(q.parts)
    per_part = np.asarray(rows["partition_lag"], dtype=float).reshape(-1, n)
    return {
        "type": "kafka",
        "consumer": q.st.name,
        "partitions": n,
        "sent": q.sent,
        "received": q.received,
        "deleted": q.deleted,
        "processed": q.deleted,
        "dlq": q.dlq,
        "depth_max": max(rows["depth"], default=0.0),
        "lag_max": max(rows["depth"], default=0.0),
        "lag_max_by_partition": per_part.max(axis=0).tolist() if per_part.size else [0.0] * n,
        "oldest_age_max_s": max(rows["oldest_s"], default=0.0),
        "rebalances": q.rebalances,
        "consumers_peak": q.members_peak,
        **({"messages_cut": q.messages_cut} if q.st.guarded else {}),  # on spot pods
        "timeline": {k: list(v) for k, v in rows.items()},
        "monthly_cost_usd": bill.monthly_usd,
        "monthly_breakdown_usd": dict(bill.monthly_breakdown),
    }


def new_rows() -> dict[str, list[Any]]:
    keys = ("time_s", "depth", "in_flight", "oldest_s", "consumers", "partition_lag")
    return {k: [] for k in keys}


def run_batch(
    sys: Any, topic: KafkaTopic, m: Member, mi: int, p: int, batch: list, slot: Any
) -> Generator[Any, Any, Any]:
    """The heap engine's process for one fetched batch (a generator of engine commands): a Lambda
    invocation (or a pod slot) runs the records in turn; the batch fails as a whole and is
    retried until `settle` commits it."""
    st = topic.st
    fetched = sys.now
    while True:
        startup, cold = 0.0, False
        if slot is None:  # a Lambda invocation: an environment at once, or a throttle
            got = st.acquire(None, sys.now)
            if type(got) is int:  # throttled: the batch waits and is invoked again
                yield KAFKA_THROTTLE_RETRY_S
                continue
            env, startup, cold = got
            if startup > 0:
                yield startup
        else:
            env = slot
        ran_from = sys.now
        oks: list[bool] = []
        body = _records(sys, st, batch, oks)
        if slot is None and not fits(st, [r[0] for r in batch]):  # None: the timeout ended it
            done = yield from sys.timed(st, body)
        elif st.guarded:  # a consumer on spot pods: a kill cuts it before its commit
            done = yield from on_spot_pod(sys, st, slot, body, fetched, ran_from, 0.0, False)
            if done == KILLED:
                topic.cut(m, p, batch)
                return  # its slot went with the pod
        else:
            done = yield from body
        ok = done is not None and all(oks)
        end = sys.now
        if st.kind == "lambda":
            st.bill_invocation(end - ran_from)
        st.calls_in += 1
        if slot is None:
            if done is None:
                st.discard(env, end)
            else:
                st.release(env, end)
        code = OK if ok else (REJECTED if done is not None else TIMED_OUT)
        sys._row(st, fetched, ran_from, end, 0.0, startup, cold, code, env)
        if topic.settle(m, mi, p, batch, ok, fetched):
            if slot is not None:
                st.release(slot, end)
            return
        fetched = sys.now


def _records(sys: Any, st: Any, batch: list, oks: list[bool]) -> Generator[Any, Any, Any]:
    """The handler over a fetched batch: each record's work in turn, its success in `oks`."""
    fail = sys.fail[st.index]
    rate = st.error_rate
    for r in batch:
        res = yield from sys._steps(r[0], st, r[1])
        oks.append(not (res != OK or (rate > 0 and fail.next() < rate)))
    return OK
