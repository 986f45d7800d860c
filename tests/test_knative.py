"""Knative Serving (`type: knative`): spec, model end to end against hand-worked pod counts, the
activator's queue against M/M/c, the bill to the cent, and every command path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats
from test_equivalence import assert_same

from sim.cli import main
from sim.errors import InputError
from sim.platforms import MODELS
from sim.platforms.knative import KnativeModel
from sim.platforms.knative_spec import UNLIMITED_CONCURRENCY, KnativeSpec
from sim.validation.cases import eks_30_day_bill, erlang_c, mmc_mean_wait, mmc_sojourn_quantile
from sim.validation.reference import run_reference

from conftest import ROOT, make_scenario, run_platform


def kn(**kw):
    base = {"name": "kn", "type": "knative", "ingress_latency": "0s", "pod": {"cpu": 1}}
    base.update(kw)
    return base


def scen(arrivals, service, platform, duration="1h", **top):
    data = {
        "name": "t",
        "duration": duration,
        "warmup": "0s",
        "replications": 1,
        "seed": 3,
        "workload": {"arrivals": arrivals, "service": service},
        "platforms": [platform],
    }
    data.update(top)
    return make_scenario(data)


# -- spec ------------------------------------------------------------------------------------------


def test_registered():
    assert MODELS["knative"] == "sim.platforms.knative:KnativeModel"


def test_annotations_as_pasted_and_explicit_keys_win():
    s = KnativeSpec.model_validate(
        kn(
            annotations={
                "autoscaling.knative.dev/min-scale": "1",
                "autoscaling.knative.dev/max-scale": "10",
                "autoscaling.knative.dev/window": "30s",
                "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
                "autoscaling.knative.dev/target": "20",
                "example.com/owner": "team-a",  # not autoscaling: ignored
            },
            max_scale=5,
            container_concurrency=10,
        )
    )
    assert (s.min_scale, s.max_scale, s.window, s.target) == (1, 5, 30.0, 20.0)
    assert s.pod.concurrency == 10
    assert s.kpa_target() == pytest.approx((7.0, 10.0))  # min(20, CC 10) x 0.7


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"annotations": {"autoscaling.knative.dev/min-scal": "1"}}, "unknown annotation"),
        (
            {"annotations": {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}},
            "only the KPA",
        ),
        ({"pod": {"concurrency": 4}}, "container_concurrency"),
        ({"min_scale": 3, "max_scale": 2}, "must not exceed"),
        ({"target_burst_capacity": -0.5}, "-1 or >= 0"),
        ({"window": "5s"}, "greater than or equal to 6"),
    ],
)
def test_bad_keys(extra, words):
    with pytest.raises(ValueError, match=words):
        KnativeSpec.model_validate(kn(**extra))


def test_container_concurrency_zero_is_unlimited():
    s = KnativeSpec.model_validate(kn())
    assert s.container_concurrency == 0 and s.pod.concurrency == UNLIMITED_CONCURRENCY
    assert s.kpa_target() == (70.0, 100.0)
    assert s.request_timeout == 300.0  # revision-timeout-seconds


SERVICE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: api}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "2"
        autoscaling.knative.dev/metric: rps
        autoscaling.knative.dev/target: "150"
    spec:
      containerConcurrency: 8
      timeoutSeconds: 60
      containers:
        - image: example/api
          resources:
            requests: {cpu: 250m, memory: 256Mi}
"""


def test_service_manifest_file(tmp_path):
    (tmp_path / "svc.yaml").write_text(SERVICE)
    s = KnativeSpec.model_validate(
        {"name": "kn", "type": "knative", "service": {"file": "svc.yaml"}, "min_scale": 3},
        context={"base_dir": tmp_path},
    )
    assert (s.min_scale, s.metric, s.target, s.container_concurrency) == (3, "rps", 150.0, 8)
    assert (s.request_timeout, s.pod.cpu, s.pod.memory, s.pod.concurrency) == (60, 0.25, 256, 8)
    assert s.kpa_target() == pytest.approx((105.0, 150.0))


def test_bad_service_file_is_an_input_error_with_exit_2(tmp_path):
    (tmp_path / "svc.yaml").write_text(SERVICE.replace('min-scale: "2"', 'min-scal: "2"'))
    doc = {
        "name": "t",
        "duration": "1m",
        "workload": {"arrivals": [{"steady": {"rate": "1/s"}}]},
        "platforms": [{"name": "kn", "type": "knative", "service": {"file": "svc.yaml"}}],
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(main, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "svc.yaml" in r.output and "unknown annotation" in r.output
    assert "line" in r.output
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc).replace("svc.yaml", "missing.yaml"))
    r = CliRunner().invoke(main, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "missing.yaml" in r.output
    with pytest.raises(InputError):
        make_scenario(doc, base_dir=tmp_path / "nowhere")


# -- end to end: a step load, pod counts per tick by hand ------------------------------------------


def test_step_load_pod_counts_per_tick():
    """CC 0 (no limit, so no queueing), target 10 at 100% utilisation, autopilot (a pod is
    scheduled at once and ready 10 s later), min-scale 1. From t = 10.5 s, 100 requests/s evenly
    spaced, each 1 s: the concurrency averaged over a second is 0 up to 10 s,
    (10, 11]: sum over the 50 arrivals at 10.50 .. 10.99 of (11 - a) = 25 - 0.01 x 1225 = 12.75,
    (11, 12]: those 50 for (a - 10) = 37.25 plus the 100 new for (12 - a) = 50.5: 87.75, then 100.
    Ticks (ceil(x / 10); panic when dppc / ready >= 2; panic window 6 buckets):
    t=12: stable 100.5 / 12 = 8.375 -> 1, panic 100.5 / 6 = 16.75 -> 2, 2 / 1 >= 2: panic, 2.
    t=14: panic (9..14) 300.5 / 6 = 50.08 -> 6 (stable 300.5 / 14 = 21.5 -> 3): 6.
    t=16: panic (11..16) 500.5 / 6 = 83.42 -> 9: 9.   t=18: panic 600 / 6 = 100 -> 10: 10.
    Then 10 for good: the stable average rises to 100 -> 10, and panic (last over the
    threshold at t=22, 10 / 2 ready) ends at t=84 without a change."""
    sc = scen(
        [{"steady": {"rate": "100/s", "spacing": "uniform", "start": "10.5s"}}],
        {"duration": "1s", "cpu_bound": 0},
        kn(
            target=10,
            target_utilization_percentage=100,
            min_scale=1,
            pod={"cpu": 1, "startup": "10s"},
            cluster={"mode": "autopilot"},
            request_timeout=None,
        ),
        duration="120s",
    )
    run = run_platform(sc)
    kpa = [(d.time_s, d.after) for d in run.decisions if d.kind == "kpa"]
    assert kpa == [(12, 2), (14, 6), (16, 9), (18, 10)]
    tl = run.timeline
    i = {float(t): k for k, t in enumerate(tl["time_s"])}
    # Ready pods: the pods asked for at t = 12, 14, 16, 18 are ready 10 s later.
    assert [tl["ready"][i[t]] for t in (21, 22, 24, 26, 28, 119)] == [1, 2, 6, 9, 10, 10]
    assert tl["panic"][i[80]] == 1 and tl["panic"][i[90]] == 0
    assert run.stats.outcomes["ok"] == run.stats.requests  # nothing waits: CC 0


def test_scale_from_zero_pokes_and_buffers_in_the_activator():
    """At zero, the first request pokes the autoscaler at its arrival (stat 1 -> ceil(1 / 70) =
    1 pod) and waits in the activator for the pod: arrival 100 s + startup 5 s."""
    sc = scen(
        [{"batch": {"at": ["100s", "100.5s"], "size": 1}}],
        {"duration": "100ms", "cpu_bound": 0},
        kn(
            initial_scale=0,
            allow_zero_initial_scale=True,
            pod={"cpu": 1, "startup": "5s"},
            cluster={"mode": "autopilot"},
            activator_latency="2ms",
        ),
        duration="400s",
    )
    run = run_platform(sc)
    kpa = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "kpa"]
    assert kpa[0] == (100, 0, 1)
    rows = run.stats.sample
    order = np.argsort(rows["arrival"])
    wait = rows["wait"][order]
    assert wait == pytest.approx([5.0, 4.5])
    assert rows["cold"][order].all()
    # The activator is in the path (EBC = floor(0 x 100 - 211 - x) < 0): its 2 ms are added.
    assert rows["overhead"][order] == pytest.approx([0.002, 0.002])
    # Back to zero: the PA is active from the tick that saw the pod ready (106 s), inactive a
    # stable window later (166 s), and in proxy mode all along: 0 at the next tick, 168 s.
    assert kpa[-1] == (168, 1, 0)


# -- closed form: CC 1, fixed scale = M/M/c --------------------------------------------------------


@pytest.mark.validation
def test_cc1_fixed_scale_is_mmc():
    """containerConcurrency 1 and min-scale = max-scale = c behind the activator (its throttler
    holds requests in one FIFO breaker queue and sends each to a pod with a free slot): M/M/c,
    Erlang C. Each replication its own seed, every row kept; the 95% t-interval over
    replications must hold the theoretical value."""
    c, lam, mu, reps, warmup = 3, 2.4, 1.0, 10, 500.0
    duration = math.floor(58_000 / lam)
    est = []
    for rep in range(reps):
        sc = make_scenario(
            {
                "name": "mmc",
                "duration": f"{duration}s",
                "warmup": f"{warmup}s",
                "replications": 1,
                "seed": 100 + rep,
                "workload": {
                    "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                    "service": {"duration": {"dist": "exponential", "mean": "1s"}},
                },
                "platforms": [
                    kn(
                        container_concurrency=1,
                        min_scale=c,
                        max_scale=c,
                        request_timeout=None,
                        queue_limit=None,
                        activator_latency="0s",
                    )
                ],
            }
        )
        run = run_platform(sc)
        rows = run.stats.sample
        assert rows["arrival"].size == run.stats.requests_all
        assert not [d for d in run.decisions if d.kind == "kpa"]  # bounds hold the scale
        wait = rows["wait"][rows["arrival"] >= warmup]
        est.append((wait.mean(), (wait > 0).mean(), run.stats.latency["p99"] / 1e3))
    x = np.array(est)
    expected = [
        mmc_mean_wait(c, lam, mu),
        erlang_c(c, lam / mu),
        mmc_sojourn_quantile(0.99, c, lam, mu),
    ]
    for j, value in enumerate(expected):
        half = stats.t.ppf(0.975, reps - 1) * x[:, j].std(ddof=1) / math.sqrt(reps)
        assert x[:, j].mean() - half <= value <= x[:, j].mean() + half, (j, value, x[:, j])


# -- the bill --------------------------------------------------------------------------------------


def test_bill_to_the_cent_is_the_cluster_bill():
    """Two pods fixed by min/max-scale on two t3.medium nodes for 30 days with an EKS control
    plane and no load balancer: the Kubernetes cluster bill worked by hand in
    sim.validation.cases.eks_30_day_bill (720 h x (2 nodes + control plane) + 2 x 20 GiB gp3).
    A few requests on the first day only: the idle month runs in a few thousand events (the
    collector sleeps while nothing changes)."""
    sc = scen(
        [{"steady": {"rate": "1/min", "end": "1h"}}],
        {"duration": "100ms", "cpu_bound": 0},
        kn(
            min_scale=2,
            max_scale=2,
            pod={"cpu": "1", "memory": "512Mi"},
            load_balancer="none",
            cluster={"node": "t3.medium", "min_nodes": 2, "max_nodes": 2, "control_plane": "eks"},
        ),
        duration="30d",
    )
    run = run_platform(sc)
    assert round(run.bill.total_usd, 2) == round(eks_30_day_bill(), 2)


# -- every command path ----------------------------------------------------------------------------

SMALL = {
    "name": "kn-small",
    "duration": "10m",
    "warmup": "0s",
    "replications": 1,
    "seed": 5,
    "workload": {
        "arrivals": [{"steady": {"rate": "20/s"}}],
        "service": {"duration": {"dist": "lognormal", "median": "50ms", "p99": "300ms"}},
    },
    "platforms": [
        {
            "name": "kn",
            "type": "knative",
            "container_concurrency": 4,
            "pod": {"cpu": "500m", "memory": "512Mi"},
            "cluster": {"node": "m5.large", "min_nodes": 1, "max_nodes": 4},
        },
        {"name": "k8s", "type": "kubernetes", "replicas": 2, "pod": {"concurrency": 4}},
    ],
    "slo": {"p99": "2s"},
}


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(yaml.safe_dump(SMALL))
    return tmp_path


def _ok(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    return r


def test_run_and_report(small):
    _ok(["run", "s.yaml", "--out", "out"])
    summary = json.loads(Path("out/summary.json").read_text())
    assert "kn" in json.dumps(summary)
    assert "kn" in Path("out/report.html").read_text()


def test_compare(small):
    _ok(["run", "s.yaml", "--out", "a"])
    _ok(["compare", "a/summary.json", "s.yaml", "--out", "cmp"])


def test_sweep(small):
    _ok(["sweep", "s.yaml", "--param", "platforms.kn.min_scale=1,2", "--out", "sw"])


def test_tune(small):
    r = CliRunner().invoke(
        main, ["tune", "s.yaml", "--platform", "kn", "--param", "min_scale=1:2:1", "--out", "t"]
    )
    assert r.exit_code in (0, 1), r.output  # 1: no point meets the SLO (still a full answer)
    assert json.loads(Path("t/tune.json").read_text())


def test_crossover(small):
    _ok(["crossover", "s.yaml", "--volume", "100k/month..10M/month", "--out", "x"])


def test_trace_replay(small):
    data = dict(SMALL)
    data["workload"] = {
        "arrivals": [
            {
                "trace": {
                    "file": str(ROOT / "scenarios/data/azure2019-hour/invocations.csv"),
                    "format": "azure2019",
                    "durations": str(ROOT / "scenarios/data/azure2019-hour/durations.csv"),
                    "top": 3,
                    "within_minute": "uniform",
                }
            }
        ]
    }
    Path("tr.yaml").write_text(yaml.safe_dump(data))
    _ok(["run", "tr.yaml", "--out", "tr"])


def test_quiescent_skipping_changes_nothing(monkeypatch):
    """The collector's sleep over idle stretches gives the same requests and decisions as
    scraping every second."""
    sc = scen(
        [
            {"steady": {"rate": "5/s", "end": "3m"}},
            {"steady": {"rate": "20/s", "start": "20m", "end": "22m"}},
            {"batch": {"at": ["40m", "2400.5s", "55m"], "size": 1}},
        ],
        {"duration": {"dist": "exponential", "mean": "200ms"}, "cpu_bound": 0},
        kn(container_concurrency=2, pod={"cpu": 1, "startup": "3s"},
           cluster={"node": "m5.large", "min_nodes": 0, "max_nodes": 3}),
    )  # fmt: skip
    fast = run_platform(sc)

    monkeypatch.setattr(KnativeModel, "_quiescent", lambda self, now: False)
    slow = run_platform(sc)
    key = [(d.time_s, d.kind, d.before, d.after, d.reason) for d in fast.decisions]
    assert key == [(d.time_s, d.kind, d.before, d.after, d.reason) for d in slow.decisions]
    assert len([d for d in fast.decisions if d.kind == "kpa" and d.after == 0]) >= 3
    for col in ("arrival", "start", "end", "overhead", "instance"):
        assert np.array_equal(fast.stats.sample[col], slow.stats.sample[col]), col


@pytest.mark.parametrize(
    ("routing", "tbc"),
    [("ideal_fifo", 200), ("round_robin", 200), ("round_robin", 0), ("least_request", 4)],
)
def test_kernel_equals_per_request_reference(routing, tbc):
    """Scale from zero (pokes), panic, the collector's sleep, the activator's latency and (TBC 0
    and 4) the activator leaving and re-entering the path: the kernel and the per-request SimPy
    reference (sim.validation.reference) agree request by request."""
    sc = scen(
        [
            {"steady": {"rate": "8/s", "end": "3m"}},
            {"steady": {"rate": "30/s", "start": "10m", "end": "12m"}},
            {"batch": {"at": ["1500s", "1500.5s"], "size": 1}},
        ],
        {"duration": {"dist": "lognormal", "median": "80ms", "p99": "600ms"}, "cpu_bound": 0},
        kn(container_concurrency=3, routing=routing, ingress_latency={"dist": "exponential",
           "mean": "1ms"}, pod={"cpu": 1, "startup": "4s"}, request_timeout="20s",
           target_burst_capacity=tbc,
           cluster={"node": "m5.xlarge", "min_nodes": 0, "max_nodes": 3}),
        duration="30m",
    )  # fmt: skip
    run = run_platform(sc)
    sks = [d.after for d in run.decisions if d.kind == "sks"]
    assert (len(sks) >= 3) == (tbc < 200), sks  # the path switches (and back) when it can
    assert_same(run, run_reference(sc, "kn", 0, ROOT))


def test_a_missed_slo_suggests_a_tune_command_that_parses(small):
    from sim.scenario import load_scenario
    from sim.studies.sweep import parse_param
    from sim.verdict import tune_params

    spec = load_scenario(Path("s.yaml")).platform("kn")
    params = tune_params(spec, {})
    assert params == [
        f"min_scale={spec.min_scale}:{spec.min_scale + 3}:1",
        "target_utilization_percentage=50,60,70",
    ]
    for p in params:
        parse_param(p)


# -- the activator leaves and re-enters the path (SKS serve / proxy) ----------------------------


def test_activator_leaves_and_reenters_the_path_at_the_ticks_ebc_crosses_0():
    """Fixed 4 pods, CC 10 at 100% (total 10 a pod: capacity 40), TBC 20: EBC = floor(40 - 20 -
    panic) with the panic average over 6 one-second buckets (each the second's mean concurrency;
    1 s requests, evenly spaced: concurrency = the rate). 10/s from 0.5 s, 30/s from 30 s, 10/s
    from 60 s; a bucket spanning a change is the mean of the two (20).
    t=2: buckets 1..2 = (1.25 + 8.75) / 2 = 5 -> EBC 15 >= 0: serve (a revision starts in proxy).
    t=32: 27..32 = (4 x 10 + 20 + 30) / 6 = 15 -> EBC 5: serve.  t=34: (2 x 10 + 20 + 3 x 30) / 6
    = 21.67 -> EBC floor(-1.67) = -2: proxy.  t=62: (4 x 30 + 20 + 10) / 6 = 25 -> -5: proxy.
    t=64: (2 x 30 + 20 + 3 x 10) / 6 = 18.33 -> EBC 1: serve."""
    sc = scen(
        [
            {"steady": {"rate": "10/s", "spacing": "uniform", "start": "0.5s", "end": "30s"}},
            {"steady": {"rate": "30/s", "spacing": "uniform", "start": "30s", "end": "60s"}},
            {"steady": {"rate": "10/s", "spacing": "uniform", "start": "60s"}},
        ],
        {"duration": "1s", "cpu_bound": 0},
        kn(container_concurrency=10, target_utilization_percentage=100, min_scale=4,
           max_scale=4, initial_scale=4, target_burst_capacity=20, activator_latency="5ms",
           pod={"cpu": 1, "startup": "1s"}, cluster={"mode": "autopilot"}),
        duration="90s",
    )  # fmt: skip
    run = run_platform(sc)
    sks = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind == "sks"]
    assert sks == [(2, 1, 0), (34, 0, 1), (64, 1, 0)]
    assert "ebc -2 < 0" in next(d.reason for d in run.decisions if d.kind == "sks" and d.after)
    assert not [d for d in run.decisions if d.kind == "kpa"]
    rows = run.stats.sample
    a, over = rows["arrival"], rows["overhead"]
    proxied = (a < 2) | ((a > 34) & (a < 64))
    assert over[proxied] == pytest.approx(0.005)  # the activator's hop, only while in the path
    assert over[~proxied & (np.abs(a - 34) > 1e-6) & (np.abs(a - 64) > 1e-6)].max() == 0
    assert run.stats.outcomes["ok"] == run.stats.requests
    assert (rows["wait"] == 0).all()  # 30 in flight never fill 40 slots
    tl = run.timeline
    i = {float(t): k for k, t in enumerate(tl["time_s"])}
    assert [tl["activator"][i[t]] for t in (1, 10, 33, 40, 63, 80)] == [1, 0, 0, 1, 1, 0]


@pytest.mark.validation
def test_serve_mode_round_robin_is_per_pod_queues_not_erlang_c():
    """CC 1, c = 3 fixed pods, TBC 0 (EBC 0: the activator leaves the path at the first tick):
    the ingress's round robin gives each pod every 3rd Poisson arrival, an Erlang-3 stream
    queued at that pod's queue-proxy: E3/M/1 (GI/M/1: P(wait) = sigma, the root in (0, 1) of
    sigma = (3r / (3r + mu (1 - sigma)))^3 with r = lam / 3; mean wait sigma / (mu (1 -
    sigma))), not the activator's one FIFO (M/M/3, Erlang C, a shorter mean wait)."""
    from scipy.optimize import brentq

    c, lam, mu, reps, warmup = 3, 2.4, 1.0, 10, 500.0
    sigma = brentq(lambda x: x - (lam / (lam + mu * (1 - x))) ** 3, 1e-9, 1 - 1e-9)
    e3m1 = (sigma / (mu * (1 - sigma)), sigma)
    assert e3m1[0] > 1.5 * mmc_mean_wait(c, lam, mu)  # the two are far apart at this load
    duration = math.floor(58_000 / lam)
    est = []
    for rep in range(reps):
        sc = scen(
            [{"steady": {"rate": f"{lam}/s"}}],
            {"duration": {"dist": "exponential", "mean": "1s"}},
            kn(container_concurrency=1, min_scale=c, max_scale=c, target_burst_capacity=0,
               request_timeout=None, queue_limit=None, activator_latency="0s"),
            duration=f"{duration}s", warmup=f"{warmup}s", seed=200 + rep,
        )  # fmt: skip
        run = run_platform(sc)
        assert [(d.time_s, d.after) for d in run.decisions if d.kind == "sks"] == [(2, 0)]
        rows = run.stats.sample
        wait = rows["wait"][rows["arrival"] >= warmup]
        est.append((wait.mean(), (wait > 0).mean()))
    x = np.array(est)
    for j, value in enumerate(e3m1):
        half = stats.t.ppf(0.975, reps - 1) * x[:, j].std(ddof=1) / math.sqrt(reps)
        assert x[:, j].mean() - half <= value <= x[:, j].mean() + half, (j, value, x[:, j])
