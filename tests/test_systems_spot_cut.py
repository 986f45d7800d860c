"""The pieces a spot kill of a queue consumer goes through, on their own: sim.systems.sqs
`on_spot_pod` (the kill's call record, shared by SQS and Kafka consumers) and
sim.systems.kafka `KafkaTopic.kill` / `_expire` (killed members leave when their session times
out, each kill on its own clock). Expected values by hand."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sim.records import OK, REJECTED
from sim.systems.kafka import KafkaTopic
from sim.systems.sqs import KILLED, on_spot_pod


class _Sys:
    """What on_spot_pod and KafkaTopic touch of the heap engine: the clock, timers, rows."""

    def __init__(self, outcome: Any = OK) -> None:
        self.now = 0.0
        self.outcome = outcome
        self.timers: list[tuple[float, Any, Any]] = []
        self.rows: list[tuple] = []

    def on_pod(self, st: Any, env: Any, body: Any, request: bool) -> Any:
        yield 5.0  # the batch runs 5 s, then ends (or is cut) with self.outcome
        self.now += 5.0
        return self.outcome

    def _row(self, *row: Any) -> None:
        self.rows.append(row)

    def at(self, t: float, fn: Any, arg: Any) -> None:
        self.timers.append((t, fn, arg))


def _drive(gen: Any) -> Any:
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def test_a_cut_batch_is_one_call_failed_at_the_kill() -> None:
    """Received at 1 s, running from 3 s after a 2 s cold start, cut at 5 s: one call in, one
    REJECTED row (1 s, 3 s, 5 s, the start-up and the pod as they were); KILLED returned."""
    sys = _Sys(KILLED)
    sys.now = 0.0
    st = SimpleNamespace(calls_in=0)
    out = _drive(on_spot_pod(sys, st, 7, iter(()), 1.0, 3.0, 2.0, True))
    assert out == KILLED and st.calls_in == 1
    assert sys.rows == [(st, 1.0, 3.0, 5.0, 0.0, 2.0, True, REJECTED, 7)]


def test_a_batch_the_kill_missed_is_left_to_the_caller() -> None:
    sys = _Sys(OK)
    st = SimpleNamespace(calls_in=0)
    assert _drive(on_spot_pod(sys, st, 7, iter(()), 1.0, 3.0, 0.0, False)) == OK
    assert st.calls_in == 0 and sys.rows == []


def _topic(sys: _Sys, pods: int) -> tuple[KafkaTopic, Any]:
    spec = SimpleNamespace(
        name="t", partitions=4, keys=None, session_timeout=45.0, rebalance_pause=0.0
    )
    st = SimpleNamespace(kind="pods", conc=1, pods=pods, on_free=[])
    return KafkaTopic(sys, spec, st, keys=None), st


def test_each_kill_expires_its_own_members_after_the_session_timeout() -> None:
    """4 partitions, 3 pods: range assignment [0, 1], [2], [3]. A kill of one pod at 0 s marks
    the newest member dead (it keeps [3]) until 0 + 45 s; the group does not change at the kill
    (no LeaveGroup), and the pod count drops to 2 with the member kept. A second kill at 10 s
    marks the next newest (it keeps [2]) until 55 s; pods 1. At 45 s only the first leaves:
    2 members (range: [0, 1], [2, 3]), the second still dead, holding [2, 3]; one rebalance. At
    55 s it leaves too: the live one holds all 4; two rebalances."""
    sys = _Sys()
    topic, st = _topic(sys, 3)
    a, b, c = topic.members
    assert [m.parts for m in topic.members] == [[0, 1], [2], [3]]
    topic.kill(1, 0.0)
    st.pods = 2
    sys.now = 10.0
    topic.kill(1, 10.0)
    st.pods = 1
    assert (c.dead, b.dead, a.dead) == (True, True, False)
    assert [(t, arg) for t, _, arg in sys.timers] == [(45.0, [c]), (55.0, [b])]
    for t, fn, arg in sys.timers:
        sys.now = t
        fn(arg)
        if t == 45.0:
            assert topic.members == [a, b] and b.dead and topic.zombies == 1
            assert [m.parts for m in topic.members] == [[0, 1], [2, 3]]
            assert topic.rebalances == 1
    assert topic.members == [a] and a.parts == [0, 1, 2, 3]
    assert topic.zombies == 0 and topic.rebalances == 2
