"""A system's metrics and report (issue 17 item 5): flows per edge, per-service CIs, queue
figures, service_requests.csv.gz, and the report's system figures.

Expected rates are computed by hand from the scenario (evenly spaced arrivals, call counts,
retries that always time out), never from the simulator's own output.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sim.report import FIGURES, SYSTEM_FIGURES, build_figures, render_report, results_from_run
from sim.report.system import UNATTRIBUTED
from sim.results import SERVICE_REQUESTS, write_results
from sim.scenario import load_scenario
from sim.simulate import run_scenario
from sim.statistics import t_interval
from sim.systems.summary import summarize_system

from conftest import ROOT, make_scenario

# 10 req/s evenly spaced for 9 minutes (5,400 arrivals: 9/s over the window), then a quiet minute
# so that every call, retry and message started in the window finishes in it: the window is 600 s.
ARRIVALS, WINDOW = 5400, 600.0
RETRIES = 2


def _flat(replications: int = 3, seed: int = 5) -> dict[str, Any]:
    k8s = {
        "name": "k8s",
        "type": "kubernetes",
        "replicas": 60,
        "routing": "ideal_fifo",
        "pod": {"concurrency": 1, "cpu": 1, "memory": "1Gi"},
        "ingress_latency": 0,
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    }
    lam = {"name": "fn", "type": "lambda", "memory": 1024, "runtime": "python3.13"}
    services = [
        {
            "name": "front",
            "entry": 1,
            "handler": "2ms",
            "steps": [
                {"call": "back", "count": 2},  # 2 calls a request: 18/s, all answered
                {"publish": "jobs", "probability": 0.5},  # a coin per request: ~4.5/s
                {"publish": "audit"},  # an event straight to a service: 9/s
                # always times out (1 s of work, 0.1 s client timeout): 1 + retries attempts
                {"call": "slow", "timeout": "100ms", "retries": RETRIES},
            ],
        },
        {"name": "back", "handler": "1ms"},
        {"name": "slow", "handler": "1s"},
        {"name": "audit", "handler": "1ms"},
        {"name": "worker", "handler": "3ms"},
    ]
    return {
        "name": "flows",
        "duration": "10m",
        "warmup": "1m",
        "replications": replications,
        "seed": seed,
        "workload": {"arrivals": [{"steady": {"rate": "10/s", "spacing": "uniform", "end": "9m"}}]},
        "platforms": [k8s, lam],
        "services": services,
        "queues": [{"name": "jobs", "consumer": "worker", "message_size": "2KB"}],
        "placements": [
            {"name": "pods", "services": {s["name"]: "k8s" for s in services}},
            {
                "name": "mixed",
                "services": {**{s["name"]: "k8s" for s in services}, "worker": "fn"},
            },
        ],
    }


@pytest.fixture(scope="module")
def flat() -> tuple[dict, list]:
    sc = make_scenario(_flat())
    return run_scenario(sc, ROOT, workers=1)


def _edges(system: dict) -> dict[tuple[str, str], dict]:
    return {(f["from"], f["to"]): f for f in system["flows"]}


def test_flows_are_the_hand_computed_rates(flat) -> None:
    summary, _ = flat
    for placement in ("pods", "mixed"):
        e = _edges(summary["system"][placement])
        reps = 3
        assert e[("entry", "front")]["count"] == reps * ARRIVALS
        assert e[("entry", "front")]["per_s"] == pytest.approx(ARRIVALS / WINDOW)  # 9/s
        back = e[("front", "back")]
        assert (back["count"], back["ok"]) == (reps * 2 * ARRIVALS, reps * 2 * ARRIVALS)
        assert back["per_s"] == pytest.approx(18.0)
        slow = e[("front", "slow")]
        assert slow["count"] == reps * (1 + RETRIES) * ARRIVALS and slow["ok"] == 0
        assert slow["per_s"] == pytest.approx(27.0) and slow["ok_per_s"] == 0
        assert e[("front", "audit")]["per_s"] == pytest.approx(9.0)
        assert e[("front", "audit")]["kind"] == "event"
        # the coin: 4.5/s within the t CI, and within 4 binomial sigmas of 2,700 a replication
        pub = e[("front", "queue:jobs")]
        lo, hi = pub["per_s_ci95"]
        assert lo <= 4.5 <= hi
        sigma = math.sqrt(reps * ARRIVALS * 0.25)
        assert abs(pub["count"] - reps * ARRIVALS / 2) < 4 * sigma
        # every message received once (the worker never fails), nothing to the DLQ
        deliver = e[("queue:jobs", "worker")]
        assert deliver["kind"] == "deliver" and deliver["count"] == pub["count"]
        assert not any(t.startswith("dlq:") for _, t in e)


def test_sankey_links_are_the_edge_rates(flat) -> None:
    summary, runs = flat
    figs = build_figures([results_from_run(summary, runs)])
    assert set(figs) == set(FIGURES) | set(SYSTEM_FIGURES)
    flow = figs["flow"].to_plotly_json()
    sankeys = [t for t in flow["data"] if t["type"] == "sankey"]
    assert [t["meta"]["series"] for t in sankeys] == ["pods", "mixed"]
    expected = {
        ("entry", "front"): 9.0,
        ("front", "back"): 18.0,
        ("front", "slow"): 27.0,
        ("front", "audit"): 9.0,
    }
    for t in sankeys:
        links = {
            (a, b): v for (a, b, _), v in zip(t["meta"]["edges"], t["link"]["value"], strict=True)
        }
        for edge, rate in expected.items():
            assert links[edge] == pytest.approx(rate), edge
        assert 4.0 < links[("front", "queue:jobs")] < 5.0
        assert links[("queue:jobs", "worker")] == links[("front", "queue:jobs")]
        labels = list(t["node"]["label"])
        # a node per service and queue (plus the entry), each link between two of them
        assert len(labels) == 7 and "queue jobs" in labels
        n = len(labels)
        assert all(0 <= i < n for i in (*t["link"]["source"], *t["link"]["target"]))


def test_per_service_and_queue_cis_are_the_t_interval(flat) -> None:
    summary, runs = flat
    sysx = summary["system"]["pods"]
    per = sorted((r for r in runs if r.platform == "pods"), key=lambda r: r.replication)
    # back: 1 ms of work, never waits (60 pods): every percentile is 1 ms in every replication
    back = sysx["services"]["back"]
    assert back["latency_ms"]["p99"] == pytest.approx(1.0)
    p99s = [r.extra["system"]["services"]["front"]["latency_ms"]["p99"] for r in per]
    assert sysx["services"]["front"]["latency_ms_ci95"]["p99"] == pytest.approx(t_interval(p99s))
    q = sysx["queues"]["jobs"]
    assert {"time_in_queue_ms", "time_in_queue_ms_ci95", "dlq", "timeline_replication_0"} <= set(q)
    p50s = [r.extra["system"]["queues"]["jobs"]["time_in_queue_ms"]["p50"] for r in per]
    assert q["time_in_queue_ms_ci95"]["p50"] == pytest.approx(t_interval(p50s))
    assert "async_completion_ms_ci95" in sysx


def test_one_replication_takes_the_order_statistic_ci() -> None:
    sc = make_scenario(_flat(replications=1))
    summary, runs = run_scenario(sc, ROOT, workers=1)
    front = summary["system"]["pods"]["services"]["front"]
    run = next(r for r in runs if r.platform == "pods")
    assert (
        front["latency_ms_ci95"]["p99"]
        == run.extra["system"]["services"]["front"]["latency_ci"]["p99"]
    )
    assert front["latency_ms_ci95"]["p99"] is not None


def test_bill_stacks_to_the_placement_total_to_the_cent() -> None:
    path = ROOT / "scenarios" / "system-hybrid-orders.yaml"
    sc = load_scenario(path, overrides=["duration=10m", "warmup=2m", "replications=2"])
    summary, runs = run_scenario(sc, path.parent, workers=1)
    fig = build_figures([results_from_run(summary, runs)])["service_bill"].to_plotly_json()
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    parts = {t["meta"]["part"] for t in bars}
    assert UNATTRIBUTED not in parts  # every line of the bill belongs to a service or a queue
    assert {"orders", "payments", "thumbnails", "emails"} <= parts
    assert {"queue:email-jobs", "queue:order-events"} <= parts
    for i, name in enumerate(bars[0]["x"]):
        total = summary["platforms"][name]["monthly_cost_usd"]
        assert round(sum(float(t["y"][i]) for t in bars), 2) == round(total, 2), name
    # and the summary's own split: services' bills + queues' = the placement's total
    for name, sysx in summary["system"].items():
        split = sum(sysx["monthly_cost_by_service_usd"].values())
        assert split == pytest.approx(summary["platforms"][name]["monthly_cost_usd"], abs=0.005)


def test_service_requests_file_for_systems_only(flat, tmp_path: Path) -> None:
    summary, runs = flat
    out = write_results(tmp_path / "sys", summary, runs)
    rows = pd.read_csv(out / SERVICE_REQUESTS)
    assert list(rows.columns[:3]) == ["replication", "platform", "service"]
    assert set(rows["service"]) == {"front", "back", "slow", "audit", "worker"}
    assert set(rows["platform"]) == {"pods", "mixed"}
    assert "service" not in pd.read_csv(out / "requests.csv.gz").columns
    # 60,000 rows a placement: 4,000 per service and replication (3 x 5); `back` has 10,800
    # visits (sampled down to 4,000), `worker` one per message (~2,700: all kept)
    one = rows[(rows["platform"] == "pods") & (rows["replication"] == 0)]
    back = one[one["service"] == "back"]
    assert len(back) == 60_000 // (3 * 5)
    assert back["latency_ms"].to_numpy() == pytest.approx(1.0)
    pods0 = next(r for r in runs if (r.platform, r.replication) == ("pods", 0)).extra["system"]
    sent = next(f["count"] for f in pods0["flows"] if f["to"] == "queue:jobs")
    assert (one["service"] == "worker").sum() == sent
    with gzip.open(out / SERVICE_REQUESTS, "rb") as f:  # fixed mtime: same bytes every time
        first = f.read()
    again = write_results(tmp_path / "again", summary, runs)
    with gzip.open(again / SERVICE_REQUESTS, "rb") as f:
        assert f.read() == first
    assert (out / SERVICE_REQUESTS).read_bytes() == (again / SERVICE_REQUESTS).read_bytes()


def test_single_service_run_has_no_system_parts(tmp_path: Path) -> None:
    sc = make_scenario(
        {
            "name": "one",
            "duration": "5m",
            "warmup": "1m",
            "replications": 2,
            "workload": {
                "arrivals": [{"steady": {"rate": "5/s"}}],
                "service": {"duration": "20ms"},
            },
            "platforms": [{"name": "lambda", "type": "lambda"}],
        }
    )
    summary, runs = run_scenario(sc, ROOT, workers=1)
    out = write_results(tmp_path / "one", summary, runs)
    assert not (out / SERVICE_REQUESTS).exists() and "system" not in summary
    res = results_from_run(summary, runs)
    assert set(build_figures([res])) == set(FIGURES)
    html = render_report([res])
    assert 'id="system"' not in html and "fig-flow" not in html


def test_generic_queue_dicts_never_crash() -> None:
    """A queue type that reports other keys (a Kafka-like `lag` timeline, `consumers` per
    target, no `received`): read what is there."""

    class Run:
        def __init__(self, rep: int) -> None:
            self.replication = rep
            self.extra = {"system": _fake_system(rep)}

    out = summarize_system([Run(0), Run(1)], t_interval)
    topic = out["queues"]["orders-topic"]
    assert topic["sent"] == 200 + 210 and topic["lag_max"] == 7.0
    assert topic["timeline_replication_0"]["lag"] == [0.0, 7.0, 2.0]
    e = _edges(out)
    assert e[("queue:orders-topic", "billing")]["count"] == 190 + 200
    assert e[("queue:orders-topic", "billing")]["per_s"] == pytest.approx((1.9 + 2.0) / 2)
    assert ("queue:bare", "x") not in e  # no consumer key: no edge, no error
    assert out["queues"]["bare"] == {"sent": 2}
    summary = {
        "scenario": "fake",
        "replications": 2,
        "duration_s": 100.0,
        "platforms": {"p": {"monthly_cost_usd": 1.0, "latency_ms": {}}},
        "system": {"p": out},
    }
    res = results_from_run(json.loads(json.dumps(summary)), [])
    figs = build_figures([res])
    queues = figs["queues"].to_plotly_json()
    assert any(t["meta"]["kind"] == "queue_depth" for t in queues["data"])
    render_report([res])


def test_queue_settings_and_peaks_are_not_summed_over_replications() -> None:
    """Two replications of a 12-partition topic and a standard SQS queue: the partitions and
    the `fifo` flag are the queue's own (12, false), a peak and a per-partition maximum are the
    largest of the two (5; [4, 9]), only counts add up (300 + 310)."""

    def system(rep: int) -> dict[str, Any]:
        d = _fake_system(rep)
        d["queues"] = {
            "topic": {
                "type": "kafka",
                "partitions": 12,
                "sent": 300 + 10 * rep,
                "consumers_peak": 5 - rep,
                "lag_max_by_partition": [4.0, 9.0] if rep else [3.0, 1.0],
            },
            "jobs": {"type": "sqs", "fifo": False, "sent": 7},
        }
        return d

    class Run:
        def __init__(self, rep: int) -> None:
            self.replication = rep
            self.extra = {"system": system(rep)}

    q = summarize_system([Run(0), Run(1)], t_interval)["queues"]
    assert q["topic"]["partitions"] == 12
    assert q["topic"]["consumers_peak"] == 5
    assert q["topic"]["lag_max_by_partition"] == [4.0, 9.0]
    assert q["topic"]["sent"] == 610
    assert q["jobs"]["fifo"] is False and q["jobs"]["sent"] == 14


def _fake_system(rep: int) -> dict[str, Any]:
    return {
        "services": {
            "billing": {
                "platform": "p",
                "type": "kubernetes",
                "requests": 10,
                "attempts": 10,
                "outcomes": {"ok": 10},
                "latency_ms": {"p50": 1.0 + rep, "p99": 2.0 + rep},
                "cold_starts": 0,
                "throttles": 0,
                "instances_peak": 1.0,
                "monthly_cost_usd": 0.5,
                "monthly_breakdown_usd": {"nodes": 0.5},
            }
        },
        "queues": {
            "orders-topic": {
                "type": "kafka",
                "sent": 200 + 10 * rep,
                "consumers": {"billing": 190 + 10 * rep},
                "lag_max": 7.0 - rep,
                "timeline": {"time_s": [0.0, 50.0, 100.0], "lag": [0.0, 7.0 - rep, 2.0]},
                "monthly_cost_usd": 0.5,
            },
            "bare": {"sent": 1},
        },
        "async_completion_ms": {"p50": 5.0},
        "async_completed": 3,
        "window_s": 100.0,
        "flows": [],
    }


def test_readme_documents_the_system_sections() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Systems", 1)[1].split("\n## ", 1)[0]
    for key in (
        "flows",
        "per_s_ci95",
        "latency_ms_ci95",
        "time_in_queue_ms_ci95",
        "async_completion_ms_ci95",
        "timeline_replication_0",
        SERVICE_REQUESTS,
        "dlq",
    ):
        assert key in section, key
    # the sample table is generated (sim.dev.docsgen), not typed
    assert re.search(r"<!-- system-table:begin -->.*<!-- system-table:end -->", section, re.S)
