"""Kafka topics in systems (issue 17, sim.systems.kafka): every expected value is computed by hand,
from upstream rules (Kafka's partitioner and range assignor, KEDA's kafka_scaler.go, the HPA) or
from queueing theory (Pollaczek-Khinchine), never from the simulator's own output."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_systems import _bad, _k8s

from sim.engine import run_one
from sim.platforms.autoscaling.keda import KafkaMetadata
from sim.pricing.systems import msk_bill
from sim.systems import kafka
from sim.systems.engine import SystemModel

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent


def _fn(**kw: Any) -> dict:
    return {"name": "fn", "type": "lambda", "memory": 1024, "init": 0, "sandbox_overhead": 0, **kw}


def _system(worker: str, platforms: list[dict], topic: dict, **kw: Any) -> dict:
    return {
        "name": "kafka",
        "duration": kw.pop("duration", "5m"),
        "warmup": kw.pop("warmup", "0s"),
        "replications": kw.pop("replications", 1),
        "seed": kw.pop("seed", 5),
        "workload": kw.pop("workload", {"arrivals": [{"steady": {"rate": "5/s"}}]}),
        "platforms": [_k8s("eks", 1, 500), *platforms],
        "services": [
            {"name": "front", "entry": 1, "handler": "1ms", "steps": [{"publish": "t"}]},
            {"name": "worker", "handler": kw.pop("handler", "100ms"), "cpu_bound": 0.0},
        ],
        "queues": [{"name": "t", "type": "kafka", "consumer": "worker", **topic}],
        "placements": [{"name": "p", "services": {"front": "eks", "worker": worker}}],
        **kw,
    }


class _Capture(SystemModel):
    """The heap engine, keeping every commit (partition, offset, member, fetched, committed)."""

    last: Any = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        for q in self.queues:
            q.keep_trace = True
        _Capture.last = self


def _run(data: dict) -> tuple[Any, Any]:
    run = run_one(make_scenario(data), "p", 0, ROOT, models={"system": _Capture})
    return run, _Capture.last.queues[0]


# --- upstream rules -------------------------------------------------------------------------------
def test_murmur2_matches_kafkas_own_test_vectors() -> None:
    """org.apache.kafka.common.utils.UtilsTest.testMurmur2 (the Java producer's key hash)."""
    cases = {
        "21": -973932308,
        "foobar": -790332482,
        "a-little-bit-long-string": -985981536,
        "a-little-bit-longer-string": -1486304829,
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        "abc": 479470107,
    }
    for text, want in cases.items():
        assert kafka.murmur2(text.encode()) == want, text


def test_range_assignor_by_hand() -> None:
    """RangeAssignor: 7 partitions over 3 members -> 3, 2, 2 contiguous; 5 members on 2
    partitions -> the last 3 idle."""
    assert kafka.range_assignment(7, 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert kafka.range_assignment(2, 5) == [[0], [1], [], [], []]


def test_keda_lag_arithmetic_by_hand() -> None:
    """kafka_scaler.go getTotalLag (v2.20.2): lags 25 + 0 + 3 on 3 partitions, threshold 10."""
    lags, committed = [25, 0, 3], [5, 7, 9]
    md = KafkaMetadata(lagThreshold=10)
    # 28 / 10 = 2 (int64), not > 3 partitions: served uncapped
    assert kafka.keda_lag(lags, committed, {}, md) == 28.0
    big = [100, 0, 0]  # 100 / 10 = 10 > 3: capped at 3 x 10
    assert kafka.keda_lag(big, committed, {}, md) == 30.0
    assert kafka.keda_lag(big, committed, {}, KafkaMetadata(allowIdleConsumers=True)) == 100.0
    # limitToPartitionsWithLag: 1 partition with lag -> capped at 1 x 10
    limited = KafkaMetadata(lagThreshold=10, limitToPartitionsWithLag=True)
    assert kafka.keda_lag(big, committed, {}, limited) == 10.0
    # excludePersistentLag: the first read stores the offsets; a second read with partition 0's
    # offset unchanged counts its lag as 0 (partition 2 moved: counted)
    md = KafkaMetadata(lagThreshold=10, excludePersistentLag=True)
    prev: dict[int, int] = {}
    assert kafka.keda_lag(lags, committed, prev, md) == 28.0
    assert kafka.keda_lag(lags, [5, 7, 10], prev, md) == 3.0


# --- semantics on request records ----------------------------------------------------------------
def test_order_per_partition_and_one_consumer_per_partition() -> None:
    """Keyed records on 4 partitions, 3 KEDA-free fixed pods of 2 slots: the commits of each
    partition come in offset order, and no two of a partition's records are in flight at once."""
    data = _system(
        "workers",
        [_k8s("workers", 3, 2)],
        {"partitions": 4, "keys": 7},
        handler={"dist": "exponential", "mean": "150ms"},
        workload={"arrivals": [{"steady": {"rate": "15/s"}}]},
    )
    _, topic = _run(data)
    assert len(topic.trace) > 1000
    owners: dict[int, set[int]] = {}
    for p in range(4):
        rows = [r for r in topic.trace if r[0] == p]
        offsets = [r[1] for r in rows]
        assert offsets == list(range(len(rows))), p  # committed in order, none skipped
        for a, b in itertools.pairwise(rows):
            assert b[3] >= a[4] - 1e-12  # fetched after the previous one committed
        owners[p] = {r[2] for r in rows}
    # range assignor with 3 members: p0, p1 -> member 0; p2 -> 1; p3 -> 2 (no rebalance: fixed)
    assert owners == {0: {0}, 1: {0}, 2: {1}, 3: {2}}
    # 7 keys: each partition gets the keys murmur2 sends there, nothing else
    hit = {kafka.key_partition(k, 4) for k in range(7)}
    assert {p for p in range(4) if topic.latest[p] > 0} == hit


def test_lag_by_hand_on_a_deterministic_pattern() -> None:
    """30 keyless records written at 0.501 s (round robin: 10 per partition on 3), one pod of 1
    slot, 1 s each: it takes the partition with the oldest waiting record, ties to the lowest
    partition, so all of p0, then p1, then p2; 9 are committed by t = 10 s (the 9th at 9.501 s):
    lag 21 = 1 + 10 + 10; at 20 s: 19 committed, lag 0 + 1 + 10."""
    data = _system(
        "workers",
        [_k8s("workers", 1, 1)],
        {"partitions": 3},
        handler="1s",
        workload={"arrivals": [{"batch": {"at": ["0.5s"], "size": 30}}]},
        duration="40s",
        timeline_step="1s",
    )
    run, topic = _run(data)
    tl = run.extra["system"]["queues"]["t"]["timeline"]
    i = tl["time_s"].index(10.0)
    assert tl["depth"][i] == 21.0
    assert tl["partition_lag"][i] == [1.0, 10.0, 10.0]
    assert tl["in_flight"][i] == 1.0
    j = tl["time_s"].index(20.0)
    assert tl["depth"][j] == 11.0 and tl["partition_lag"][j] == [0.0, 1.0, 10.0]
    assert [r[0] for r in topic.trace] == [0] * 10 + [1] * 10 + [2] * 10
    q = run.extra["system"]["queues"]["t"]
    assert q["lag_max"] == 30.0 and q["processed"] == 30 and q["rebalances"] == 0


def test_keda_kafka_replicas_by_hand() -> None:
    """200 records at 1 s on 4 partitions, 60 s each; KEDA kafka trigger (lagThreshold 10, 0..10
    pods, polls every 30 s; HPA syncs every 15 s, scale-up limited to max(2 x current, 4)).
    By hand: poll at 30 s sees lag 200 (in-flight records are lag) -> activate 0 -> 1; the HPA at
    30 s reads 200 / 10 = 20 > 4 partitions -> capped at 4 x 10 = 40 -> 4 pods, and stays at 4.
    With allowIdleConsumers: 200 -> 20 wanted: 4 at 30 s, 8 at 45 s, 10 at 60 s; pods beyond the
    4 partitions idle (never more than 4 records in flight)."""

    def decisions(allow: bool) -> tuple[list[tuple[float, int, int]], Any]:
        md: dict[str, Any] = {"lagThreshold": "10"}
        if allow:
            md["allowIdleConsumers"] = "true"
        workers = {
            **_k8s("workers", 0),
            "keda": {
                "minReplicaCount": 0,
                "maxReplicaCount": 10,
                "triggers": [{"type": "kafka", "metadata": md}],
            },
        }
        workers.pop("replicas")
        data = _system(
            "workers",
            [workers],
            {"partitions": 4},
            handler="60s",
            workload={"arrivals": [{"batch": {"at": ["1s"], "size": 200}}]},
            duration="5m",
        )
        run, _ = _run(data)
        steps = [
            (d.time_s, d.before, d.after) for d in run.decisions if d.kind.startswith("worker:")
        ]
        return steps, run.extra["system"]["queues"]["t"]

    steps, q = decisions(False)
    assert steps[:2] == [(30.0, 0, 1), (30.0, 1, 4)], steps
    assert max(a for _, _, a in steps) == 4
    steps, q = decisions(True)
    assert steps[:4] == [(30.0, 0, 1), (30.0, 1, 4), (45.0, 4, 8), (60.0, 8, 10)], steps
    assert max(q["timeline"]["in_flight"]) == 4.0
    assert q["consumers_peak"] == 10


def test_rebalance_pause_by_hand() -> None:
    """Lambda ESM on 2 partitions, 40 keyless records written at 0.501 s, 6 s each, no Init: one
    poller runs both partitions (one batch of 1 each at a time): fetches at 0.501, 6.501, ...,
    54.501. At the 60 s evaluation the lag grew (0 -> 30) -> a second poller joins: a rebalance,
    no fetch until 63 s, so the record due at 60.501 s is fetched at 63 s (60.501 s without the
    pause)."""

    def fetches(pause: str) -> tuple[list[float], dict]:
        data = _system(
            "fn",
            [_fn(timeout="900s")],  # 6 s handlers: past Lambda's default 3 s timeout
            {"partitions": 2, "batch_size": 1, "batching_window": 0, "rebalance_pause": pause},
            handler="6s",
            workload={"arrivals": [{"batch": {"at": ["0.5s"], "size": 40}}]},
            duration="3m",
        )
        run, topic = _run(data)
        return [r[3] for r in topic.trace if r[0] == 0], run.extra["system"]["queues"]["t"]

    got, q = fetches("3s")
    want = [0.501 + 6 * k for k in range(10)] + [63.0 + 6 * k for k in range(10)]
    assert got == pytest.approx(want, abs=1e-6)
    assert q["rebalances"] >= 1 and q["consumers_peak"] == 2
    got0, _ = fetches("0s")
    assert got0[10] == pytest.approx(60.501, abs=1e-6)


@pytest.mark.parametrize("handler, second_moment", [("500ms", 0.25), ("exp", 0.5)])
def test_one_partition_lambda_batch_one_is_mg1(handler: str, second_moment: float) -> None:
    """1 partition, Lambda consumer, BatchSize 1, no window: one invocation at a time in offset
    order = an M/G/1 FIFO queue. Poisson 1/s, service 0.5 s (deterministic: E[S^2] = 0.25;
    exponential: 0.5): Pollaczek-Khinchine Wq = lambda E[S^2] / (2 (1 - rho)) = 0.25 s / 0.5 s,
    against the time in queue (sent to fetched) within the replications' 99% CI."""
    h: Any = handler if handler != "exp" else {"dist": "exponential", "mean": "500ms"}
    data = _system(
        "fn",
        [_fn(timeout="900s")],  # no exponential draw reaches it (3 s, the default, would)
        {"partitions": 1, "batch_size": 1, "batching_window": 0},
        handler=h,
        workload={"arrivals": [{"steady": {"rate": "1/s", "spacing": "poisson"}}]},
        duration="3h",
        warmup="5m",
        replications=6,
    )
    sc = make_scenario(data)
    means = [
        run_one(sc, "p", r, ROOT).extra["system"]["queues"]["t"]["time_in_queue_ms"]["mean"] / 1e3
        for r in range(sc.replications)
    ]
    wq = 1.0 * second_moment / (2 * (1 - 0.5))
    m, se = float(np.mean(means)), float(np.std(means, ddof=1) / math.sqrt(len(means)))
    assert abs(m - wq) <= 4.03 * se + 0.01 * wq, (m, wq, se)  # t(0.995, 5) = 4.03


# --- the bill -------------------------------------------------------------------------------------
def test_msk_bill_by_hand_to_the_cent() -> None:
    """A 730-hour month: 3 kafka.m5.large x 730 h x $0.21 = $459.90, 3 x 1,000 GiB x $0.10 =
    $300.00; 2 kafka.m7g.large x 730 x $0.204 = $297.84 + 2 x 500 x $0.10 = $100.00."""
    month = 730 * 3600.0
    b = msk_bill(
        brokers=3,
        broker_type="kafka.m5.large",
        storage_gib=1000,
        window_s=3600,
        month_s=month,
    )
    assert b.monthly_breakdown["instances"] == pytest.approx(459.90, abs=0.005)
    assert b.monthly_breakdown["ebs"] == pytest.approx(300.00, abs=0.005)
    b = msk_bill(
        brokers=2, broker_type="kafka.m7g.large", storage_gib=500, window_s=600, month_s=month
    )
    assert b.monthly_usd == pytest.approx(397.84, abs=0.005)
    data = _system("fn", [_fn()], {"partitions": 2}, duration="10m", month="730h")
    run, _ = _run(data)
    assert run.extra["system"]["queues"]["t"]["monthly_cost_usd"] == pytest.approx(
        759.90, abs=0.005
    )


# --- bad input ------------------------------------------------------------------------------------
GOOD = _system("fn", [_fn(), {"name": "edge", "type": "wasm"}], {"partitions": 2})


def _cli(tmp_path: Path, change: Any) -> tuple[int, str]:
    return _bad(tmp_path, change, GOOD)


def _keda(trigger: str) -> dict:
    workers = {
        **_k8s("kw", 0),
        "keda": {"maxReplicaCount": 4, "triggers": [{"type": trigger}]},
    }
    workers.pop("replicas")
    return workers


def test_kafka_system_runs(tmp_path: Path) -> None:
    code, out = _cli(tmp_path, lambda d: None)
    assert code == 0, out


def test_keda_kafka_trigger_is_allowed_for_a_kafka_consumer(tmp_path: Path) -> None:
    def change(d: dict) -> None:
        d["platforms"].append(_keda("kafka"))
        d["placements"][0]["services"]["worker"] = "kw"

    code, out = _cli(tmp_path, change)
    assert code == 0, out


@pytest.mark.parametrize(
    "change, key, words",
    [
        (lambda d: d["queues"][0].update(consumer="zz"), "queues[0].consumer", "unknown service"),
        (lambda d: d["services"][0].update(steps=[]), "queues[0]", "nothing publishes"),
        (
            lambda d: d["placements"][0]["services"].update(worker="edge"),
            "placements[0].services.worker",
            "consumes a Kafka topic; a Wasm platform cannot",
        ),
        (
            lambda d: (
                d["platforms"].append(_keda("aws-sqs-queue")),
                d["placements"][0]["services"].update(worker="kw"),
            ),
            "placements[0].services.worker",
            "reads a Kafka topic: a kafka trigger",
        ),
        (lambda d: d["queues"][0].update(partitions=0), "queues[0]", "partitions"),
        (
            lambda d: d["queues"][0].update(broker_type="kafka.x9.huge"),
            "queues[0]",
            "no MSK price",
        ),
    ],
)
def test_bad_kafka_system_exits_2_naming_the_key(
    tmp_path: Path, change: Any, key: str, words: str
) -> None:
    code, out = _cli(tmp_path, change)
    assert code == 2, out
    assert key in out and words in out, out
    assert "Traceback" not in out


def test_summary_keeps_the_topic_figures() -> None:
    """summary.json `system.<placement>.queues.<topic>`: the SQS keys plus Kafka's own."""
    from sim.systems.summary import summarize_system

    data = _system("fn", [_fn()], {"partitions": 2, "keys": 5}, duration="3m")
    run, topic = _run(data)
    q = summarize_system([run])["queues"]["t"]
    assert q["type"] == "kafka" and q["partitions"] == 2
    assert q["processed"] == q["deleted"] == sum(topic.committed)
    assert q["rebalances"] == topic.rebalances and len(q["lag_max_by_partition"]) == 2
