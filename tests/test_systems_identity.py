"""Instance identity in a system's stations: which pod holds each busy slot, so that a spot
kill cuts the requests in service on its pods (sim.systems.engine.SpotPodStation), as the
Kubernetes kernel's `_spot_kill` / `_cut` do. Expected values by hand from the scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_systems import _k8s, _lambda, _system
from test_systems_cluster import _keda_workers

from sim.engine import run_one
from sim.records import OK, REJECTED, THROTTLED, TIMED_OUT
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent


def _spot_api(
    in_flight: str = "fail", interruptions: list[str] | None = None, provisioning: str = "20s"
) -> dict:
    """`api` (handler 60 s) on one HPA-held pod (min = max = 1, concurrency 2, start-up 5 s) on
    an all-spot m5.xlarge pool; two requests at 1 s. A notice at 10 s (AWS: 120 s notice, 30 s
    grace) drains the node: the pod is deleted and still finishes what it holds, its
    replacement is Pending, a node is launched at 10 s (provisioning 20 s: ready at 30 s), the
    new pod is placed at 30 s and ready at 35 s. At the grace's end (40 s) the old pod still
    holds both requests: it is killed and the node goes."""
    spot = _k8s("spot", 1, 2)
    spot.pop("replicas")
    spot["hpa"] = {"min_replicas": 1, "max_replicas": 1, "metric": "cpu", "target": "60%"}
    spot["pod"]["startup"] = "5s"
    spot["cluster"] |= {
        "node_provisioning": provisioning,
        "spot": {
            "interruptions": ["10s"] if interruptions is None else interruptions,
            "in_flight": in_flight,
        },
    }
    services = [{"name": "api", "entry": 1, "handler": "60s"}]
    data = _system(
        services, [spot], {"p": {"api": "spot"}}, replications=1, duration="10m", warmup=0
    )
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 2}}]}
    return data


def _run(data: dict, ref: bool = False) -> Any:
    models = {"system": ReferenceSystem} if ref else None
    return run_one(make_scenario(data), "p", 0, ROOT, keep_all_rows=True, models=models)


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_fails_the_requests_in_flight_at_the_kill(ref: bool) -> None:
    """in_flight fail: both requests fail (REJECTED, a 502) at the kill, 40 s: 39 s end to end;
    the service's errors rise by the 2 killed; 2 busy slots cut, both requests."""
    run = _run(_spot_api("fail"), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(s["outcome"], [REJECTED, REJECTED])
    np.testing.assert_allclose(s["end"], [40.0, 40.0], atol=1e-9)
    np.testing.assert_allclose(s["end"] - s["arrival"], [39.0, 39.0], atol=1e-9)
    sysx = run.extra["system"]
    nodes = sysx["nodes"]["spot"]
    assert (nodes["spot_slots_cut"], nodes["spot_requests_killed"]) == (2, 2)
    assert [d.time_s for d in run.decisions if "grace period over" in d.reason] == [40.0]
    out = sysx["services"]["api"]["outcomes"]
    calm = _run(_spot_api("fail", interruptions=[]), ref).extra["system"]["services"]["api"]
    assert sum(v for k, v in calm["outcomes"].items() if k != "ok") == 0
    assert sum(v for k, v in out.items() if k != "ok") == 2  # + the killed in-flight count


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_with_retry_restarts_on_the_replacement_pod(ref: bool) -> None:
    """in_flight retry: at 40 s both are sent again keeping their arrival (1 s); the replacement
    pod (ready since 35 s, concurrency 2) takes both: they run 40-100 s, ok. End to end 99 s;
    their rows start at 40 s (the run that answered), waited 39 s."""
    run = _run(_spot_api("retry"), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(s["outcome"], [OK, OK])
    np.testing.assert_allclose(s["end"], [100.0, 100.0], atol=1e-9)
    np.testing.assert_allclose(s["end"] - s["arrival"], [99.0, 99.0], atol=1e-9)
    np.testing.assert_allclose(s["start"], [40.0, 40.0], atol=1e-9)
    svc = run.extra["system"]["services"]["api"]
    assert svc["outcomes"].get("ok") == 2 and svc["requests"] == 2
    assert run.extra["system"]["nodes"]["spot"]["spot_requests_killed"] == 2


@pytest.mark.parametrize("ref", [False, True])
def test_spot_retry_with_no_ready_pod_waits_for_the_replacement(ref: bool) -> None:
    """Provisioning 50 s: the replacement is ready only at 65 s (node 10 + 50 s, pod start-up
    5 s); the requests sent again at 40 s find no ready pod and wait for it, as the kernel's
    pending queue holds them: they run 65-125 s, ok (124 s end to end, waited 64 s)."""
    run = _run(_spot_api("retry", provisioning="50s"), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(s["outcome"], [OK, OK])
    np.testing.assert_allclose(s["start"], [65.0, 65.0], atol=1e-9)
    np.testing.assert_allclose(s["end"], [125.0, 125.0], atol=1e-9)


def test_spot_kill_failure_goes_to_the_callers_retry_policy() -> None:
    """`front` (a fixed Deployment, not spot) calls `api` with 1 retry and a 1 ms backoff base:
    the first attempts fail at the kill (40 s), the retries (within 1 ms) run on the replacement
    pod (ready since 35 s) and end 60 s later: front answers ok at ~100 s."""
    data = _spot_api("fail")
    data["platforms"].append(_k8s("eks", 1, 10))
    data["services"] = [
        {
            "name": "front",
            "entry": 1,
            "handler": "1ms",
            "steps": [{"call": "api", "timeout": "10m", "retries": 1, "backoff": {"base": "1ms"}}],
        },
        {"name": "api", "handler": "60s"},
    ]
    data["placements"][0]["services"] = {"front": "eks", "api": "spot"}
    for ref in (False, True):
        run = _run(data, ref)
        s = run.stats.sample
        np.testing.assert_array_equal(s["outcome"], [OK, OK])
        np.testing.assert_allclose(s["end"], [100.0, 100.0], atol=2e-3)
        api = run.extra["system"]["services"]["api"]
        assert api["outcomes"] == {"ok": 2, "rejected": 2} | {
            k: 0 for k in api["outcomes"] if k not in ("ok", "rejected")
        }


def _spot_consumer(queue: dict, trigger: dict) -> dict:
    """`worker` (handler 60 s) consuming `jobs` (`queue`) on one KEDA-held pod (min = max = 1,
    concurrency 3, start-up 5 s) on an all-spot m5.xlarge pool (provisioning 20 s); `front`
    (fixed pods) publishes 3 messages at 1 s (its 1 ms handler: sent at 1.001 s); all three are
    received at once, one per slot, due at 61.001 s. The notice at 10 s (AWS: 120 s notice, 30 s
    grace) drains the node: the pod is deleted and finishes what it holds, its replacement is
    placed on a node launched at 10 s (ready 30 s) and ready at 35 s. At the grace's end (40 s)
    the old pod still holds the three: it is killed (no DeleteMessage, no commit)."""
    data = _keda_workers(node_provisioning="20s", spot={"interruptions": ["10s"]})
    workers = data["platforms"][1]
    workers["keda"] = {"minReplicaCount": 1, "maxReplicaCount": 1, "triggers": [trigger]}
    workers["pod"]["concurrency"] = 3
    data["queues"] = [{"name": "jobs", "consumer": "worker", **queue}]
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 3}}]}
    data["duration"] = "10m"
    return data


_SQS_TRIGGER = {"type": "aws-sqs-queue", "metadata": {"queueLength": "5"}}


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_leaves_sqs_messages_to_their_visibility_timeout(ref: bool) -> None:
    """Visibility timeout 100 s: the killed worker deleted nothing, so each message is visible
    again when its receive's timeout ends, 1.001 + 100 = 101.001 s (not at the kill), and the
    replacement pod (ready since 35 s, 3 free slots) receives all three at once: 101.001-161.001
    s, deleted. Receive counts 2 (6 receives, 3 deletes, 3 cut); time in queue 0 (first
    receives) and 100 s (second); the worker's rows: 3 cut at 40 s (REJECTED), 3 ok."""
    run = _run(_spot_consumer({"visibility_timeout": "100s", "batch_size": 1}, _SQS_TRIGGER), ref)
    sysx = run.extra["system"]
    q = sysx["queues"]["jobs"]
    assert (q["received"], q["deleted"], q["messages_cut"], q["dlq"]) == (6, 3, 3, 0)
    assert (q["duplicates"], q["stale_deletes"]) == (0, 0)  # nobody else held them meanwhile
    assert q["time_in_queue_ms"]["mean"] == pytest.approx((3 * 0 + 3 * 100_000) / 6, abs=1e-6)
    nodes = sysx["nodes"]["workers"]
    assert (nodes["spot_slots_cut"], nodes["spot_requests_killed"]) == (3, 0)
    assert sysx["services"]["worker"]["outcomes"]["ok"] == 3
    assert sysx["services"]["worker"]["outcomes"]["rejected"] == 3  # the cut receives
    assert sysx["async_completion_ms"]["max"] == pytest.approx(161_001 - 1_000, abs=1e-6)


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_with_max_receive_count_1_sends_the_messages_to_the_dlq(ref: bool) -> None:
    """maxReceiveCount 1: at 101.001 s each message's visibility ends after 1 receive: to the
    DLQ then, never received again (3 receives, 0 deletes, 3 in the DLQ)."""
    queue = {"visibility_timeout": "100s", "batch_size": 1, "max_receive_count": 1}
    run = _run(_spot_consumer(queue, _SQS_TRIGGER), ref)
    q = run.extra["system"]["queues"]["jobs"]
    assert (q["received"], q["deleted"], q["messages_cut"], q["dlq"]) == (3, 0, 3, 3)
    assert run.extra["system"]["async_completion_ms"]["max"] == pytest.approx(100_001, abs=1e-6)


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_on_a_fifo_queue_holds_the_group_until_the_visibility_timeout(ref: bool) -> None:
    """FIFO, one message group: the pod worker receives the first message only (one in flight
    per group), 1.001-61.001 s; killed at 40 s, the group stays locked until that receive's
    visibility timeout ends at 101.001 s, when the replacement receives it again (161.001 s),
    then the second (161.001-221.001 s) and the third (-281.001 s): 4 receives, 3 deletes; the
    last task ends 280.001 s after the entry request (1 s)."""
    queue = {"visibility_timeout": "100s", "batch_size": 1, "fifo": True, "groups": 1}
    run = _run(_spot_consumer(queue, _SQS_TRIGGER), ref)
    q = run.extra["system"]["queues"]["jobs"]
    assert (q["received"], q["deleted"], q["messages_cut"], q["dlq"]) == (4, 3, 1, 0)
    waits = [0.0, 100.0, 160.0, 220.0]  # from 1.001 s: 1.001, 101.001, 161.001, 221.001 s
    assert q["time_in_queue_ms"]["mean"] == pytest.approx(sum(waits) / 4 * 1000, abs=1e-6)
    assert run.extra["system"]["async_completion_ms"]["max"] == pytest.approx(280_001, abs=1e-6)


@pytest.mark.parametrize("ref", [False, True])
def test_spot_kill_of_a_kafka_consumer_reads_again_from_the_committed_offset(ref: bool) -> None:
    """Kafka, 3 partitions (round robin: one record each), the pod's consumer one record per
    slot: all three fetched at 1.001 s. The notice at 10 s deletes the pod: the group is empty
    (rebalance, 3 s pause); the replacement joins at 35 s (rebalance, fetching from 38 s). The
    kill at 40 s leaves the three uncommitted: the new owner reads them again from the
    committed offset (0) at once, 40-100 s, and commits: 6 fetches, 3 commits, 3 cut, lag 3
    until 100 s; 2 rebalances."""
    topic = {"type": "kafka", "partitions": 3, "rebalance_pause": "3s"}
    trigger = {"type": "kafka", "metadata": {"lagThreshold": "10"}}
    run = _run(_spot_consumer(topic, trigger), ref)
    q = run.extra["system"]["queues"]["jobs"]
    assert (q["received"], q["deleted"], q["messages_cut"], q["dlq"]) == (6, 3, 3, 0)
    assert q["rebalances"] == 2
    t, lag = q["timeline"]["time_s"], q["timeline"]["depth"]
    assert [x for x, y in zip(t, lag, strict=True) if 40 < x < 100 and y != 3] == []
    assert run.extra["system"]["async_completion_ms"]["max"] == pytest.approx(99_000, abs=1e-6)


def _killed_kafka_consumer(**topic: Any) -> dict:
    """One KEDA-held pod (concurrency 1, handler 100 ms) consuming a 1-partition topic fed 2
    records a second (at k/2 + 0.001 s); drain_on_notice false, so at the notice's end (10 +
    120 = 130 s) the pod is killed idle, without LeaveGroup; its replacement (a node launched
    at 130 s, ready 150 s, the pod ready 155 s) joins at 155 s."""
    trigger = {"type": "kafka", "metadata": {"lagThreshold": "10"}}
    data = _spot_consumer({"type": "kafka", "partitions": 1, "rebalance_pause": "3s"} | topic,
                          trigger)  # fmt: skip
    workers = data["platforms"][1]
    workers["cluster"]["spot"]["drain_on_notice"] = False
    workers["pod"]["concurrency"] = 1
    data["services"][1]["handler"] = "100ms"
    data["workload"] = {"arrivals": [{"steady": {"rate": "2/s", "spacing": "uniform"}}]}
    data["duration"] = "5m"
    return data


def _lag_growth(run: Any) -> tuple[list[float], dict]:
    """The seconds after the kill (130 s) during which the lag grew by exactly the 2 records a
    second that arrived (nothing consumed), and the topic's figures."""
    q = run.extra["system"]["queues"]["jobs"]
    t, lag = q["timeline"]["time_s"], q["timeline"]["depth"]
    at = dict(zip(t, lag, strict=True))
    assert at[130.0] == 0.0
    grew = [x for x in t if x > 130 and all(at[y] == 2 * (y - 130) for y in t if 130 < y <= x)]
    return grew, q


@pytest.mark.parametrize("ref", [False, True])
def test_killed_kafka_consumer_holds_its_partitions_for_the_session_timeout(ref: bool) -> None:
    """session.timeout.ms 45 s (the default): the killed consumer stays a member, so nobody
    consumes its partition; the replacement joining at 155 s rebalances the group with the dead
    member still in it (it keeps partition 0: 2 consumers in the timeline until 175 s); at 130 +
    45 = 175 s its session ends, the group rebalances without it and the replacement fetches
    after the 3 s pause: the lag grows for exactly 45 + 3 = 48 s, to 96 records at 178 s."""
    grew, q = _lag_growth(_run(_killed_kafka_consumer(), ref))
    assert max(grew) == 178.0
    assert q["rebalances"] == 2 and q["consumers_peak"] == 2
    t, c = q["timeline"]["time_s"], q["timeline"]["consumers"]
    assert [x for x, n in zip(t, c, strict=True) if n == 2] == [float(x) for x in range(156, 176)]
    assert q["deleted"] == q["received"] == 600  # all read once by the end (nothing cut)


@pytest.mark.parametrize("ref", [False, True])
def test_killed_kafka_consumer_with_no_session_timeout_leaves_at_once(ref: bool) -> None:
    """session_timeout 0: the kill empties the group at once (a rebalance), the replacement
    joins at 155 s (another) and fetches after the 3 s pause: the lag grows until 158 s."""
    grew, q = _lag_growth(_run(_killed_kafka_consumer(session_timeout="0s"), ref))
    assert max(grew) == 158.0
    assert q["rebalances"] == 2 and q["consumers_peak"] == 1


# --- Azure Functions Flex Consumption as a station (sim.systems.stations_flex) -----------------
MONTH_H = 730
SCALE = MONTH_H * 3600 / 60  # a 60 s window billed as a 730 h month: x 43,800
BASELINE, AR_TIME, AR_EXEC = 0.000004, 0.000016, 0.40 / 1e6  # prices.yaml azure_flex.always_ready


def _flex(at: list[str], handler: str = "300ms", **flex: Any) -> dict:
    """One HTTP function on Flex (2,048 MB = 2 GB, one always-ready instance, at most 1), one
    execution per time in `at`; a 60 s window billed as a 730 h month."""
    app = {
        "name": "flex",
        "type": "azure_flex",
        "always_ready": 1,
        "max_instances": 1,
        "cold_start": "2s",
        **flex,
    }
    services = [{"name": "fn", "entry": 1, "handler": handler}]
    data = _system(services, [app], {"p": {"fn": "flex"}}, replications=1, duration="60s", warmup=0)
    data["workload"] = {"arrivals": [{"batch": {"at": at, "size": 1}}]}
    data["month"] = f"{MONTH_H}h"
    return data


def _flex_bill(data: dict, ref: bool = False) -> dict:
    return _run(data, ref).extra["system"]["services"]["fn"]


@pytest.mark.parametrize("ref", [False, True])
def test_flex_spaced_executions_are_each_billed_the_one_second_minimum(ref: bool) -> None:
    """Six executions of 0.3 s, 10 s apart, on the always-ready instance: six activity periods
    of 1 s each (the minimum), 6 s, not 1.8 s. Month (x 43,800): baseline 1 x 2 GB x 60 s x
    $0.000004 = $21.024; execution time 6 s x 2 GB x $0.000016 = $8.4096; executions 262,800 x
    $0.40/M = $0.10512; total $29.53872."""
    svc = _flex_bill(_flex([f"{t}s" for t in (1, 11, 21, 31, 41, 51)]), ref)
    lines = svc["monthly_breakdown_usd"]
    assert lines["always_ready_baseline"] == pytest.approx(2 * 60 * SCALE * BASELINE, abs=1e-9)
    assert pytest.approx(21.024) == 2 * 60 * SCALE * BASELINE
    assert lines["always_ready_execution_time"] == pytest.approx(8.4096, abs=0.005)
    assert pytest.approx(8.4096) == 6 * 2 * SCALE * AR_TIME
    assert lines["always_ready_executions"] == pytest.approx(6 * SCALE * AR_EXEC, abs=1e-9)
    assert svc["monthly_cost_usd"] == pytest.approx(29.54, abs=0.005)


@pytest.mark.parametrize("ref", [False, True])
def test_flex_overlapping_executions_on_one_instance_are_one_period(ref: bool) -> None:
    """Executions of 0.3 s at 1 s and 1.25 s on one instance (concurrency 16): spans
    [1, 2) and [1.25, 2.25) (1 s minimum each) merge into one period of 1.25 s, rounded up to
    1.3 s (100 ms steps). Execution time 1.3 x 2 GB x 43,800 x $0.000016 = $1.82208 (two
    separate periods would be 2 s: $2.8032); executions 87,600 x $0.40/M = $0.03504; + the
    baseline $21.024 = $22.88112."""
    svc = _flex_bill(_flex(["1s", "1.25s"]), ref)
    lines = svc["monthly_breakdown_usd"]
    assert lines["always_ready_execution_time"] == pytest.approx(1.82208, abs=0.005)
    assert pytest.approx(1.82208) == 1.3 * 2 * SCALE * AR_TIME
    assert svc["monthly_cost_usd"] == pytest.approx(22.88, abs=0.005)


def test_flex_scales_out_from_zero_on_demand() -> None:
    """No always-ready instance: a request at 0.5 s waits at the front end; the scale controller
    (every 1 s) sees 1 execution waiting at 1 s, adds one instance (cold start 2 s): ready at
    3 s, the execution runs 3-3.3 s (waited 2.5 s). Billed on demand: 1 s x 2 GB = 2 GB-s a
    window, 87,600 GB-s a month, inside the 100,000 GB-s free grant: $0."""
    data = _flex(["0.5s"], always_ready=0)
    for ref in (False, True):
        run = _run(data, ref)
        s = run.stats.sample
        np.testing.assert_allclose(s["end"], [3.3], atol=1e-9)
        np.testing.assert_allclose(s["wait"], [2.5], atol=1e-9)
        lines = run.extra["system"]["services"]["fn"]["monthly_breakdown_usd"]
        assert lines["on_demand_execution_time"] == 0.0
        assert [d.time_s for d in run.decisions if d.kind == "fn:azure_flex"] == [1.0]


def test_flex_pinned_at_c_instances_is_erlang_c() -> None:
    """always_ready = max_instances = 3, concurrency 1: an M/M/3 queue behind the front end's
    one FIFO (lambda 2.4/s, mean 1 s: rho 0.8); the mean time at the service within the
    replications' 95% t interval of Erlang C's W = C(3, 2.4) / (3 - 2.4) + 1 = 2.079 s."""
    from test_systems import erlang_c_sojourn, t_ci

    data = _flex([], handler={"dist": "exponential", "mean": "1s"}, always_ready=3,
                 max_instances=3, concurrency=1)  # fmt: skip
    data |= {"duration": "2h", "warmup": "5m", "replications": 5}
    data["workload"] = {"arrivals": [{"steady": {"rate": "2.4/s"}}]}
    sc = make_scenario(data)
    runs = [run_one(sc, "p", r, ROOT) for r in range(sc.replications)]
    per_rep = [r.extra["system"]["services"]["fn"]["latency_ms"]["mean"] / 1e3 for r in runs]
    w = erlang_c_sojourn(2.4, 1.0, 3)
    lo, hi = t_ci(per_rep)
    assert lo <= w <= hi, (w, lo, hi)


@pytest.mark.parametrize(
    "at, flex",
    [
        ([f"{t}s" for t in (1, 11, 21, 31, 41, 51)], {}),
        (["1s", "1.25s", "1.4s", "30s"], {}),
        (["0.5s", "0.7s", "20s"], {"always_ready": 0, "max_instances": 3, "concurrency": 1}),
    ],
    ids=["spaced", "overlapping", "from_zero"],
)
def test_flex_station_bills_as_the_single_service_kernel(at: list[str], flex: dict) -> None:
    """The same app and executions (0.3 s each) as a one-service system and as a single-service
    scenario (sim.platforms.azure_flex): the same bill, line by line, and the same latencies."""
    data = _flex(at, **flex)
    system = _run(data)
    kernel = _kernel_run(data, "flex", "300ms", "60s")
    svc = system.extra["system"]["services"]["fn"]
    for line, usd in kernel.bill.monthly_breakdown.items():
        assert svc["monthly_breakdown_usd"].get(line, 0.0) == pytest.approx(usd, abs=1e-9), line
    np.testing.assert_allclose(
        np.sort(system.stats.sample["end"] - system.stats.sample["arrival"]),
        np.sort(kernel.stats.sample["end"] - kernel.stats.sample["arrival"]),
        atol=1e-9,
    )


@pytest.mark.parametrize(
    "in_flight, provisioning", [("fail", "20s"), ("retry", "20s"), ("retry", "50s")]
)
def test_spot_station_cuts_as_the_single_service_kernel(in_flight: str, provisioning: str) -> None:
    """The spot timelines above as a single-service scenario (sim.platforms.kubernetes
    `_spot_kill` / `_cut`): the same outcomes, starts and ends request by request (with
    provisioning 50 s the retries wait for the replacement in both)."""
    data = _spot_api(in_flight, provisioning=provisioning)
    single = make_scenario(
        {
            "name": "k",
            "duration": "10m",
            "warmup": 0,
            "replications": 1,
            "seed": 11,
            "workload": {
                "arrivals": data["workload"]["arrivals"],
                "service": {"duration": "60s", "cpu_bound": 0},
            },
            "platforms": data["platforms"],
        }
    )
    kernel = run_one(single, "spot", 0, ROOT, keep_all_rows=True).stats.sample
    system = _run(data).stats.sample
    np.testing.assert_array_equal(system["outcome"], kernel["outcome"])
    for col in ("start", "end"):
        np.testing.assert_allclose(system[col], kernel[col], atol=1e-9, err_msg=col)


# --- Knative on spot nodes (sim.systems.stations_knact.SpotKnativeStation) ---------------------
def _knative_spot(in_flight: str, provisioning: str, interruptions: str) -> dict:
    """`api` (handler 60 s) on a Knative revision of containerConcurrency 2 (start-up 5 s, no
    activator or ingress latency) on an all-spot m5.xlarge pool (3 pods a node), one notice at
    `interruptions` (AWS: 120 s notice, 30 s grace, drained at the notice)."""
    kn = {
        "name": "kn",
        "type": "knative",
        "ingress_latency": 0,
        "activator_latency": 0,
        "container_concurrency": 2,
        "pod": {"cpu": 1, "memory": "1Gi", "startup": "5s"},
        "cluster": {
            "node": "m5.xlarge",
            "control_plane": "eks",
            "node_provisioning": provisioning,
            "spot": {"interruptions": [interruptions], "in_flight": in_flight},
        },
    }
    services = [{"name": "api", "entry": 1, "handler": "60s"}]
    return _system(services, [kn], {"p": {"api": "kn"}}, replications=1, duration="10m", warmup=0)


@pytest.mark.parametrize(
    "in_flight, provisioning, want",
    [
        ("fail", "20s", [(1.0, 1.0, 40.0, REJECTED)] * 2),
        ("retry", "20s", [(1.0, 40.0, 100.0, OK)] * 2),
        ("retry", "50s", [(1.0, 65.0, 125.0, OK)] * 2),
    ],
)
def test_knative_spot_kill_cuts_the_requests_in_flight_as_for_kubernetes_pods(
    in_flight: str, provisioning: str, want: list
) -> None:
    """minScale = maxScale = 1: two requests at 1 s run on the one pod. The notice at 10 s
    drains its node: the pod is deleted and finishes what it holds, its replacement is Pending,
    a node is launched (provisioning 20 s: ready at 30 s, the pod ready at 35 s). At the grace's
    end (40 s) the old pod still holds both: it is killed with them, as a Kubernetes pod is
    (test_spot_kill_fails_the_requests_in_flight_at_the_kill): with `fail` both fail at 40 s
    (a 502); with `retry` the activator sends them again at once to the ready replacement, 40 to
    100 s; with provisioning 50 s the replacement is ready at 65 s and the activator holds
    them until then (65 to 125 s). Both engines and the single-service kernel (which also takes
    the trace of notices now), request by request; before, the system's requests ran on to
    61 s."""
    data = _knative_spot(in_flight, provisioning, "10s")
    kn = data["platforms"][0]
    kn["min_scale"] = kn["max_scale"] = 1
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 2}}]}
    for ref in (False, True):
        run = _run(data, ref)
        assert _rows(run) == pytest.approx(want), ref
        nodes = run.extra["system"]["nodes"]["kn"]
        assert (nodes["spot_slots_cut"], nodes["spot_requests_killed"]) == (2, 2)
    assert _rows(_kernel_run(data, "kn", "60s", "10m")) == pytest.approx(want)


@pytest.mark.parametrize("in_flight", ["fail", "retry"])
def test_knative_spot_kill_from_zero_keeps_the_requests_cold(in_flight: str) -> None:
    """From zero (minScale 0, initial scale 0, one node kept), requests at 1, 2 and 3 s: the
    first pokes the KPA (1 pod, ready at 6 s: the activator held the first two, cold); panic at
    the 4 s tick (1.75 / 1.4 -> 2 pods, ready at 9 s: the third, cold). The notice at 30 s
    drains the node (both pods replaced: a node ready at 50 s, pods at 55 s); at 60 s the three
    still in service are killed: with `fail` they fail then, with `retry` they run again from
    60 s on the replacements (to 120 s), each still cold (as the kernel keeps it). Both
    engines and the single-service kernel."""
    data = _knative_spot(in_flight, "20s", "30s")
    kn = data["platforms"][0]
    kn.update(min_scale=0, max_scale=2, initial_scale=0, allow_zero_initial_scale=True)
    kn["cluster"]["min_nodes"] = 1
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s", "2s", "3s"], "size": 1}}]}
    if in_flight == "fail":
        want = [(1.0, 6.0, 60.0, REJECTED), (2.0, 6.0, 60.0, REJECTED), (3.0, 9.0, 60.0, REJECTED)]
    else:
        want = [(a, 60.0, 120.0, OK) for a in (1.0, 2.0, 3.0)]
    for run in (_run(data), _run(data, True), _kernel_run(data, "kn", "60s", "10m")):
        assert _rows(run) == pytest.approx(want)
        assert run.stats.sample["cold"].tolist() == [True] * 3


# --- Lambda Managed Instances as a station (sim.systems.stations_lmi) -----------------------------
M7G_LARGE = 0.0816  # USD per hour (instances.yaml); fee 15% of it; requests $0.20 per million


def _lmi(arrivals: list[dict], handler: str = "1s", cpu_bound: float = 0.0, **lmi: Any) -> dict:
    """One function on Managed Instances: 2 GB environments (1 vCPU at 2 GB per vCPU) of
    concurrency 1 on one m7g.large instance (2 vCPU, 8 GiB: 2 environments), 1 environment
    kept; a 60 s window billed as a 730 h month."""
    plat = {
        "name": "lmi",
        "type": "lambda_managed",
        "memory": 2048,
        "concurrency": 1,
        "min_instances": 1,
        "min_environments": 1,
        **lmi,
    }
    services = [{"name": "fn", "entry": 1, "handler": handler, "cpu_bound": cpu_bound}]
    data = _system(services, [plat], {"p": {"fn": "lmi"}}, replications=1, duration="60s", warmup=0)
    data["workload"] = {"arrivals": arrivals}
    data["month"] = f"{MONTH_H}h"
    return data


@pytest.mark.parametrize("ref", [False, True])
def test_lmi_throttles_at_once_when_every_slot_is_busy_and_bills_the_instance(ref: bool) -> None:
    """3 invocations of 1 s at 1 s on 1 environment of concurrency 1: one runs (1-2 s), two are
    throttled at once (no queue, no cold start). Bill: the instance all month, 730 h x $0.0816 =
    $59.568, management fee 15% = $8.9352, 3 requests x 43,800 = 131,400 x $0.20/M = $0.02628."""
    run = _run(_lmi([{"batch": {"at": ["1s"], "size": 3}}]), ref)
    s = run.stats.sample
    np.testing.assert_array_equal(np.sort(s["outcome"]), [OK, THROTTLED, THROTTLED])
    np.testing.assert_allclose(np.sort(s["end"]), [1.0, 1.0, 2.0], atol=1e-9)
    lines = run.extra["system"]["services"]["fn"]["monthly_breakdown_usd"]
    assert lines["instances"] == pytest.approx(MONTH_H * M7G_LARGE, abs=0.005)
    assert lines["management_fee"] == pytest.approx(0.15 * MONTH_H * M7G_LARGE, abs=0.005)
    assert lines["requests"] == pytest.approx(3 * SCALE * 0.20 / 1e6, abs=1e-9)


@pytest.mark.parametrize(
    "arrivals, lmi",
    [
        ([{"steady": {"rate": "1.5/s", "spacing": "uniform"}}], {}),
        (
            [
                {"steady": {"rate": "3/s", "spacing": "uniform"}},
                {"batch": {"at": ["20s"], "size": 8}},
            ],
            {
                "scale_period": "5s",
                "scale_up_window": "5s",
                "target_utilization": 0.4,
                "instance_launch": "3s",
                "environment_init": "1s",
            },
        ),
    ],
    ids=["steady", "burst_scales_out"],
)
def test_lmi_station_runs_as_the_single_service_kernel(arrivals: list, lmi: dict) -> None:
    """The same function and invocations (0.95 s, cpu-bound) as a one-service system and as a
    single-service scenario (sim.platforms.lambda_managed): the same scaler decisions (the burst:
    2, 4, 5, 8, 9 environments at 5-25 s, instances launched 2, 3, 4, 5), outcomes and bill,
    line by line."""
    data = _lmi(arrivals, handler="950ms", cpu_bound=1.0, **lmi)  # (no tie with an arrival)
    system = _run(data)
    single = make_scenario(
        {
            "name": "lmi",
            "duration": "60s",
            "warmup": 0,
            "replications": 1,
            "seed": 11,
            "month": f"{MONTH_H}h",
            "workload": {"arrivals": arrivals, "service": {"duration": "950ms", "cpu_bound": 1}},
            "platforms": data["platforms"],
        }
    )
    kernel = run_one(single, "lmi", 0, ROOT, keep_all_rows=True)

    def scaled(run: Any) -> list[tuple[float, float]]:
        return [(d.time_s, d.after) for d in run.decisions if d.kind.endswith("lambda_managed")]

    assert scaled(system) == scaled(kernel)
    launched = [d.after for d in system.decisions if d.kind == "nodes:lmi"]
    assert launched == [d.after for d in kernel.decisions if d.kind == "nodes"]
    got = system.stats.sample
    want = kernel.stats.sample
    done = want["end"] <= 60.0  # (a system's rows are the requests answered in the window)
    np.testing.assert_array_equal(np.sort(got["outcome"]), np.sort(want["outcome"][done]))
    svc = system.extra["system"]["services"]["fn"]
    for line, usd in kernel.bill.monthly_breakdown.items():
        assert svc["monthly_breakdown_usd"].get(line, 0.0) == pytest.approx(usd, abs=1e-9), line


def _kernel_run(data: dict, name: str, handler: str, duration: str) -> Any:
    """The one-service system `data` as a single-service scenario of platform `name`."""
    single = make_scenario(
        {
            "name": name,
            "duration": duration,
            "warmup": 0,
            "replications": 1,
            "seed": 11,
            "month": f"{MONTH_H}h",
            "workload": {
                "arrivals": data["workload"]["arrivals"],
                "service": {"duration": handler, "cpu_bound": 0},
            },
            "platforms": data["platforms"],
        }
    )
    return run_one(single, name, 0, ROOT, keep_all_rows=True)


def _rows(run: Any) -> list[tuple[float, float, float, int]]:
    s = run.stats.sample
    keys = ("arrival", "start", "end", "outcome")
    return sorted(zip(*(s[k].tolist() for k in keys), strict=True))


def test_flex_http_limit_times_out_from_arrival_while_the_instance_runs_on() -> None:
    """The 230 s HTTP limit (request_timeout's default). One instance of concurrency 1, handler
    300 s, requests at 1, 2 and 240 s: the first is TIMED_OUT at 231 s, its instance busy to
    301 s; the second, held in the front end, leaves it TIMED_OUT at 232 s; the third waits,
    runs from 301 s and is TIMED_OUT at 240 + 230 = 470 s. Both engines and the single-service
    kernel; 3 `function` timeouts, the entry sees 230 s each."""
    data = _flex(["1s", "2s", "240s"], handler="300s", concurrency=1)
    data["duration"] = "11m"
    want = [(1.0, 1.0, 231.0, TIMED_OUT), (2.0, 232.0, 232.0, TIMED_OUT)]
    want.append((240.0, 301.0, 470.0, TIMED_OUT))
    for ref in (False, True):
        run = _run(data, ref)
        assert _rows(run) == pytest.approx(want), ref
        assert run.extra["system"]["services"]["fn"]["timeouts"]["function"] == 3
        entry = run.stats.sample  # (a one-service system: its entry is the station)
        np.testing.assert_allclose(entry["end"] - entry["arrival"], [230.0] * 3)
    assert _rows(_kernel_run(data, "flex", "300s", "11m")) == pytest.approx(want)


def test_lmi_function_timeout_answers_at_the_timeout_and_holds_the_environment() -> None:
    """timeout 3 s, handler 5 s, one environment of concurrency 1: the invocation at 1 s is
    TIMED_OUT at 4 s while its environment runs to 6 s, so the one at 5 s is throttled at
    once; the one at 7 s times out at 10 s. Both engines and the single-service kernel."""
    data = _lmi([{"batch": {"at": ["1s", "5s", "7s"], "size": 1}}], handler="5s", timeout="3s")
    want = [(1.0, 1.0, 4.0, TIMED_OUT), (5.0, 5.0, 5.0, THROTTLED), (7.0, 7.0, 10.0, TIMED_OUT)]
    for ref in (False, True):
        run = _run(data, ref)
        assert _rows(run) == pytest.approx(want), ref
        assert run.extra["system"]["services"]["fn"]["timeouts"]["function"] == 2
    assert _rows(_kernel_run(data, "lmi", "5s", "60s")) == pytest.approx(want)


def test_lmi_environment_ready_at_an_arrivals_instant_takes_it_in_both_engines() -> None:
    """Ties: invocations arriving exactly when an environment gets ready. One environment of
    concurrency 1, handler 20 s, scale_period 5 s (doubling per 5 s), target 50%,
    environment_init 1 s, instance_launch 2 s. The invocation at 1 s runs to 21 s. At 5 s the
    slots in use are 4 s / 5 s = 0.8 environments -> ceil(0.8 / 0.5) = 2: the second fits the
    instance (2 per m7g.large), ready at 6 s, so of the two invocations at 6 s the first runs
    (6-26 s) and the second is throttled; the one at 7 s is throttled. At 10 s: (5 + 4) / 5 =
    1.8 -> 4 environments, the cap 2 x 2: a second instance (launched 10 s, up at 12 s) holds
    both, ready at 13 s: of the three invocations at 13 s two run (13-33 s), one is throttled.
    The readiness goes first, as the single-service kernel orders it; both engines and the
    kernel, request by request."""
    at = ["1s", "6s", "6s", "7s", "13s", "13s", "13s"]
    lmi = {"scale_period": "5s", "scale_up_window": "5s", "environment_init": "1s"}
    data = _lmi([{"batch": {"at": at, "size": 1}}], handler="20s", timeout="60s", **lmi)
    data["platforms"][0]["instance_launch"] = "2s"
    want = [(1.0, 1.0, 21.0, OK), (6.0, 6.0, 6.0, THROTTLED), (6.0, 6.0, 26.0, OK)]
    want += [(7.0, 7.0, 7.0, THROTTLED), (13.0, 13.0, 13.0, THROTTLED)]
    want += [(13.0, 13.0, 33.0, OK)] * 2
    for ref in (False, True):
        assert _rows(_run(data, ref)) == pytest.approx(want), ref
    assert _rows(_kernel_run(data, "lmi", "20s", "60s")) == pytest.approx(want)


@pytest.mark.parametrize("ref", [False, True])
def test_fargate_at_zero_tasks_answers_the_albs_503_at_once(ref: bool) -> None:
    """`tasks: 0`: the target group has no registered target, so the ALB answers 503 (AWS,
    load-balancer-troubleshooting.html) at once: a request at 1 s is REJECTED at 1 s."""
    ecs = {"name": "ecs", "type": "fargate", "tasks": 0, "ingress_latency": 0}
    ecs["task"] = {"cpu": 1, "memory": 2048, "concurrency": 1, "startup": "30s"}
    services = [{"name": "api", "entry": 1, "handler": "100ms"}]
    data = _system(services, [ecs], {"p": {"api": "ecs"}}, replications=1, duration="60s", warmup=0)
    data["workload"] = {"arrivals": [{"batch": {"at": ["1s"], "size": 1}}]}
    assert _rows(_run(data, ref)) == [(1.0, 1.0, 1.0, REJECTED)]


@pytest.mark.parametrize("ref", [False, True])
def test_flex_handler_running_past_the_window_keeps_its_instance_billed_to_the_end(
    ref: bool,
) -> None:
    """A 240 s window (x 10,950 to a 730 h month), one always-ready instance of concurrency 1,
    handler 300 s, requests at 1 s and 235 s. The first is TIMED_OUT at 231 s (the 230 s
    limit) while its execution runs on past the window's end, holding the slot: the second
    waits in the front end and is never answered in the window (no row, no execution). The
    instance is active from 1 s to the end, 239 s: execution time 239 x 2 GB x 10,950 x
    $0.000016 = $83.7456 (as the single-service kernel bills it: its periods clipped at the
    window's end); baseline 2 GB x 240 s x 10,950 x $0.000004 = $21.024; 1 execution x 10,950 x
    $0.40/M = $0.00438."""
    data = _flex(["1s", "235s"], handler="300s", concurrency=1)
    data["duration"] = "240s"
    run = _run(data, ref)
    assert _rows(run) == pytest.approx([(1.0, 1.0, 231.0, TIMED_OUT)])
    svc = run.extra["system"]["services"]["fn"]
    assert (svc["attempts"], svc["timeouts"]["function"]) == (2, 1)
    scale = MONTH_H * 3600 / 240
    lines = svc["monthly_breakdown_usd"]
    assert lines["always_ready_execution_time"] == pytest.approx(239 * 2 * scale * AR_TIME)
    assert pytest.approx(83.7456) == 239 * 2 * scale * AR_TIME
    assert lines["always_ready_baseline"] == pytest.approx(2 * 240 * scale * BASELINE)
    assert lines["always_ready_executions"] == pytest.approx(scale * AR_EXEC)
    assert svc["monthly_cost_usd"] == pytest.approx(104.77, abs=0.005)
    kernel = _kernel_run(data, "flex", "300s", "240s")
    assert kernel.bill.monthly_breakdown["always_ready_execution_time"] == pytest.approx(83.7456)


def test_flex_bills_the_executions_started_in_the_window_in_every_engine() -> None:
    """A 60 s window (x 43,800), one always-ready 2,048 MB instance of concurrency 1, handler
    10 s, requests at 1, 52 and 55 s: the first runs 1-11 s, the second 52-62 s (in flight at
    the end), the third would start at 62 s, after the window. Billed: 2 executions x 43,800 x
    $0.40/M = $0.03504 (the kernel, which runs the third after the window, counted 3:
    $0.05256); active (10 + 8) s x 2 GB x 43,800 x $0.000016 = $25.2288; baseline 2 GB x 60 s
    x 43,800 x $0.000004 = $21.024. Both system engines and the single-service kernel."""
    data = _flex(["1s", "52s", "55s"], handler="10s", concurrency=1)
    want = {
        "always_ready_executions": 0.03504,
        "always_ready_execution_time": 25.2288,
        "always_ready_baseline": 21.024,
    }
    assert pytest.approx(want["always_ready_executions"]) == 2 * SCALE * AR_EXEC
    assert pytest.approx(want["always_ready_execution_time"]) == 18 * 2 * SCALE * AR_TIME
    for ref in (False, True):
        lines = _flex_bill(data, ref)["monthly_breakdown_usd"]
        assert {k: lines[k] for k in want} == pytest.approx(want), ref
    kernel = _kernel_run(data, "flex", "10s", "60s").bill.monthly_breakdown
    assert {k: kernel[k] for k in want} == pytest.approx(want)


@pytest.mark.parametrize("ref", [False, True])
def test_lmi_handler_running_past_the_window_holds_its_environment_to_the_end(ref: bool) -> None:
    """A 5 s window (x 525,600 to a 730 h month), timeout 3 s, handler 5 s, one environment of
    concurrency 1: the invocation at 1 s is TIMED_OUT at 4 s and its handler runs to 6 s, past
    the window, so the one at 4.5 s is throttled at once. The instance is billed for the whole
    window (730 h x $0.0816 = $59.568, fee 15% $8.9352); both invocations are requests (as the
    single-service kernel counts its arrivals): 2 x 525,600 x $0.20/M = $0.21024."""
    data = _lmi([{"batch": {"at": ["1s", "4.5s"], "size": 1}}], handler="5s", timeout="3s")
    data["duration"] = "5s"
    run = _run(data, ref)
    assert _rows(run) == pytest.approx([(1.0, 1.0, 4.0, TIMED_OUT), (4.5, 4.5, 4.5, THROTTLED)])
    svc = run.extra["system"]["services"]["fn"]
    assert (svc["timeouts"]["function"], svc["throttles"]) == (1, 1)
    lines = svc["monthly_breakdown_usd"]
    assert lines["instances"] == pytest.approx(MONTH_H * M7G_LARGE, abs=0.005)
    assert lines["management_fee"] == pytest.approx(0.15 * MONTH_H * M7G_LARGE, abs=0.005)
    assert lines["requests"] == pytest.approx(2 * MONTH_H * 3600 / 5 * 0.20 / 1e6)


@pytest.mark.parametrize("ref", [False, True])
def test_lambda_invocation_running_past_the_window_is_billed_its_time_in_the_window(
    ref: bool,
) -> None:
    """A 60 s window (x 43,800 to a 730 h month), 1,769 MB, no free tier, timeout 900 s: a 20 s
    invocation at 10 s is billed whole (20 s); one at 50 s is still running at the window's end:
    billed as a request and for its 10 s in the window, as the other stations bill what is in
    use at the end (no row: it is not answered in the window). Duration (20 + 10) s x 1,769/1,024
    GB x 43,800 x $0.0000166667 = $37.833; requests 2 x 43,800 x $0.20/M = $0.01752."""
    services = [{"name": "fn", "entry": 1, "handler": "20s"}]
    fn = _lambda(free_tier=False, timeout="900s")
    data = _system(services, [fn], {"p": {"fn": "fn"}}, replications=1, duration="60s", warmup=0)
    data["workload"] = {"arrivals": [{"batch": {"at": ["10s", "50s"], "size": 1}}]}
    data["month"] = f"{MONTH_H}h"
    run = _run(data, ref)
    assert _rows(run) == pytest.approx([(10.0, 10.0, 30.0, OK)])
    lines = run.extra["system"]["services"]["fn"]["monthly_breakdown_usd"]
    assert lines["duration"] == pytest.approx(30 * 1769 / 1024 * SCALE * 0.0000166667, abs=1e-6)
    assert pytest.approx(37.833, abs=5e-4) == 30 * 1769 / 1024 * SCALE * 0.0000166667
    assert lines["requests"] == pytest.approx(2 * SCALE * 0.20 / 1e6)
