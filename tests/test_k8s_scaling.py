"""What the Kubernetes autoscalers see, end to end through the model (issue 15 items 3-6):
CPU from metrics-server with the HPA's readiness rules, app-side Prometheus counters, failed
metric reads and KEDA's fallback. Expected sequences are worked out by hand from the upstream
rules cited in hpa.py / keda.py, not taken from the model."""

from __future__ import annotations

import pytest

from conftest import make_scenario, run_platform


def scen(arrivals, service, platform, duration="10m"):
    return make_scenario(
        {
            "name": "t",
            "duration": duration,
            "replications": 1,
            "seed": 5,
            "workload": {"arrivals": arrivals, "service": service},
            "platforms": [platform],
        }
    )


def k8s(**kw):
    base = {"name": "k8s", "type": "kubernetes", "ingress_latency": "0s"}
    base.update(kw)
    return base


def steady(rate: str):
    return [{"steady": {"rate": rate, "spacing": "uniform"}}]


def changes(run, kind):
    return [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == kind]


def test_cpu_burst_doubles_every_second_sync():
    """Overload from 0: every pod is always busy. pod cpu 500m, cpu_bound 1: a busy pod uses
    0.5 core = 100% of its request; target 50% -> ratio 2 once a sample covers a busy window.
    metrics-server scrapes at 7.5 + 15k s; pods start in 5 s.
    t=15: scrape 7.5 covers [-7.5, 7.5], idle before 0: 250m = 50% -> ratio 1.0, keep 2.
    t=30: [7.5, 22.5] at 100% -> 4 (no behavior: at most max(2 x 2, 4)); ready at 35.
    t=45: scrape 37.5: the new pods' containers are 2.5 s old: no sample -> counted as 0 on a
          scale-up: (2 x 500) x 100 / (4 x 500) = 50% -> keep 4.
    t=60: all four sampled over [37.5, 52.5] -> 8. Then 16 at 90, 32 at 120, 64 at 150."""
    sc = scen(
        steady("1000/s"),
        {"duration": "100ms", "cpu_bound": 1.0},
        k8s(
            hpa={"min_replicas": 2, "max_replicas": 64, "metric": "cpu", "target": "50%"},
            pod={"cpu": "500m", "startup": "5s"},
            cluster={"mode": "autopilot"},
            request_timeout=None,
        ),
        duration="170s",
    )
    assert changes(run_platform(sc), "hpa") == [
        (30.0, 2, 4),
        (60.0, 4, 8),
        (90.0, 8, 16),
        (120.0, 16, 32),
        (150.0, 32, 64),
    ]


PROM = {"type": "prometheus", "metadata": {"threshold": "5"}}


@pytest.mark.parametrize(("counts", "expected"), [("arrivals", [(15.0, 1, 4)]), (None, [])])
def test_app_side_request_counter_saturates_at_capacity(counts, expected):
    """20 req/s of 1 s work on one pod (concurrency 1): the pod completes 1 req/s. Threshold 5
    per replica. Counting arrivals (an ingress counter) the first HPA read (15 s, 20/s) asks for
    ceil(20 / 5) = 4; the default app-side counter sees 1/s -> 1 replica: it never scales."""
    trig = {"type": "prometheus", "metadata": {"threshold": "5"}}
    if counts:
        trig["metadata"]["counts"] = counts
    sc = scen(
        steady("20/s"),
        {"duration": "1s"},
        k8s(
            keda={"minReplicaCount": 1, "maxReplicaCount": 10, "triggers": [trig]},
            pod={"cpu": 1, "startup": "5s"},
        ),
        duration="100s",
    )
    got = changes(run_platform(sc), "keda_hpa")
    assert got[: len(expected)] == expected if expected else got == []


def test_metric_outage_triggers_the_fallback():
    """An outage from 60 s: every read fails. Reads at 60 (KEDA poll, then the HPA sync: the
    poll's timer was set first), 75, ...: failures 1, 2, 3. failureThreshold 2 -> the HPA's
    read at 75 s is served threshold x fallback replicas = 10 x 5 -> 5 replicas, limited (no
    behavior) to max(2 x 1, 4) = 4 at 75 s and 5 at the next sync."""
    sc = scen(
        steady("1/s"),
        {"duration": "100ms"},
        k8s(
            keda={
                "minReplicaCount": 1,
                "maxReplicaCount": 10,
                "fallback": {"failureThreshold": 2, "replicas": 5},
                "triggers": [{"type": "prometheus", "metadata": {"threshold": "10"}}],
            },
            pod={"cpu": 1, "startup": "5s"},
            metric_failures={"outages": [["60s", "300s"]]},
        ),
        duration="200s",
    )
    assert changes(run_platform(sc), "keda_hpa") == [(75.0, 1, 4), (90.0, 4, 5)]


def test_random_read_failures_are_reproducible():
    plat = k8s(
        hpa={"min_replicas": 1, "max_replicas": 8, "metric": "concurrency", "target": 1},
        pod={"cpu": 1, "startup": "5s"},
        metric_failures={"probability": 0.5},
    )
    sc = scen(steady("3/s"), {"duration": "1s"}, plat, duration="5m")
    a, b = changes(run_platform(sc), "hpa"), changes(run_platform(sc), "hpa")
    assert a == b and a
