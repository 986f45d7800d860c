"""Wasm serverless model against closed forms and hand-worked cases (platforms.md, Wasm section)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.engine import CHUNK_SECONDS, make_workload, replication_seeds
from sim.errors import InputError
from sim.records import OK, REJECTED, TIMED_OUT

from conftest import ROOT, make_scenario, run_platform


def wasm(**platform):
    base = {"name": "w", "type": "wasm"}
    base.update(platform)
    return base


def scen(arrivals, service, *platforms, duration="1h", **top):
    data = {
        "name": "t",
        "duration": duration,
        "replications": 1,
        "seed": 7,
        "workload": {"arrivals": arrivals, "service": service},
        "platforms": list(platforms),
    }
    data.update(top)
    return make_scenario(data)


def rows(run):
    return {k: np.asarray(v) for k, v in run.stats.sample.items()}


def native(sc, rep=0):
    """The workload's own arrivals and native service times, straight from sim.workload."""
    wl = make_workload(sc, replication_seeds(sc.seed, sc.replications)[rep], ROOT)
    chunks = list(wl.chunks(sc.duration, CHUNK_SECONDS))
    return (
        np.concatenate([c.arrival for c in chunks]),
        np.concatenate([c.service for c in chunks]),
    )


GAMMA = {"duration": {"dist": "gamma", "mean": "40ms", "cv": 1.5}, "cpu_bound": 1.0}


def test_constant_instantiate_adds_exactly_its_value():
    """latency - service x slowdown - overhead == instantiate, request by request."""
    sc = scen(
        [{"steady": {"rate": "5/s"}}],
        GAMMA,
        wasm(instantiate="700us", slowdown=1.3, edge_latency="2ms"),
        duration="20m",
    )
    r = rows(run_platform(sc))
    arr, svc = native(sc)
    assert r["arrival"].size == arr.size > 5000
    assert np.array_equal(r["arrival"], arr)
    latency = r["end"] - r["arrival"] + r["overhead"]
    assert np.allclose(latency - svc * 1.3 - 0.002, 0.0007, rtol=0, atol=1e-9)
    assert np.all(r["cold"] == False)  # noqa: E712 - instantiation is not a cold start
    assert np.all(r["outcome"] == OK)


def test_lognormal_instantiate_matches_its_distribution():
    """Start-up per request ~ lognormal(median 0.3 ms, p99 2 ms): one-sample KS test."""
    median, p99 = 0.3e-3, 2e-3
    sc = scen(
        [{"steady": {"rate": "20/s"}}],
        {"duration": "10ms"},
        wasm(instantiate={"dist": "lognormal", "median": "0.3ms", "p99": "2ms"}),
        duration="20m",
    )
    r = rows(run_platform(sc))
    startup = r["start"] - r["arrival"]
    assert np.allclose(startup, r["startup"])
    sigma = math.log(p99 / median) / stats.norm.ppf(0.99)
    ks = stats.kstest(startup, stats.lognorm(s=sigma, scale=median).cdf)
    assert startup.size > 20_000
    assert ks.pvalue > 0.001, ks


@pytest.mark.parametrize("slowdown", [0.5, 1.0, 2.5])
def test_slowdown_scales_service(slowdown):
    sc = scen([{"steady": {"rate": "2/s"}}], GAMMA, wasm(slowdown=slowdown), duration="10m")
    r = rows(run_platform(sc))
    _, svc = native(sc)
    assert np.allclose(r["service"], svc * slowdown, rtol=1e-12, atol=0)
    assert np.allclose(r["end"] - r["start"], svc * slowdown, rtol=0, atol=1e-9)


def _cpu_run(cpu_limit, cpu_bound, service="5s"):
    sc = scen(
        [{"steady": {"rate": "1/min", "spacing": "uniform"}}],
        {"duration": service, "cpu_bound": cpu_bound},
        wasm(cpu_limit=cpu_limit, instantiate="0s"),
        duration="10m",
    )
    return run_platform(sc)


def test_cpu_limit_times_out_when_cpu_time_exceeds_it():
    """5 s handler, half CPU: 2.5 s of CPU > 2 s limit -> killed 4 s in, having used 2 s CPU."""
    run = _cpu_run("2s", 0.5)
    r = rows(run)
    assert run.stats.outcomes["timed_out"] == run.stats.requests == 10
    assert np.all(r["outcome"] == TIMED_OUT)
    assert np.allclose(r["end"] - r["start"], 4.0)
    # Workers bill: 10 requests x 2,000 CPU-ms in a 10-minute window.
    m = 730 * 3600 / 600  # window -> 730-h billing month
    expected = 5 + max(0, 10 * m - 10e6) * 0.30 / 1e6 + max(0, 20_000 * m - 30e6) * 0.02 / 1e6
    assert math.isclose(run.bill.monthly_usd, expected, rel_tol=1e-9)


def test_cpu_limit_not_reached():
    run = _cpu_run("3s", 0.5)  # 2.5 s of CPU
    assert run.stats.outcomes["ok"] == 10
    assert np.allclose(rows(run)["service"], 5.0)


def test_io_wait_never_hits_the_cpu_limit():
    run = _cpu_run("1ms", 0.0)
    assert run.stats.outcomes["ok"] == 10


def test_max_concurrency_rejects_a_burst_beyond_the_cap():
    """Two bursts of 12 (at 1 s and 20 s), 10 s each, cap 5: 5 run and 7 are rejected, twice."""
    sc = scen(
        [{"batch": {"at": ["1s", "20s"], "size": 12, "spread": "0s"}}],
        {"duration": "10s"},
        wasm(max_concurrency=5),
        duration="1m",
    )
    run = run_platform(sc)
    assert run.stats.outcomes == {"ok": 10, "throttled": 0, "rejected": 14, "timed_out": 0}
    assert run.instances["peak"] == 5
    tl = run.timeline
    at = {float(t): k for k, t in enumerate(tl["time_s"])}
    assert tl["instances"][at[5.0]] == 5  # 1 s + 10.0005 s still running at 5 s
    assert tl["instances"][at[12.0]] == 0
    assert tl["rejections"].sum() == 14
    # Bill only what ran: 10 requests.
    assert run.bill.requests == 10


def test_max_concurrency_staggered_by_hand():
    """One arrival per second (t = 0..59), 3.5 s handler + 0.5 ms instantiation, cap 2.

    In flight at t: requests that arrived at t-1, t-2, t-3 (not t-4: it ended at t-0.4995).
    t=0,1 accepted; t=2,3 find 2 in flight -> rejected; t=4,5 accepted (the first pair is done);
    so arrivals with t mod 4 in {0, 1} run: 30 of 60.
    """
    sc = scen(
        [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
        {"duration": "3.5s"},
        wasm(max_concurrency=2, instantiate="0.5ms"),
        duration="60s",
    )
    r = rows(run_platform(sc))
    t = np.rint(r["arrival"]).astype(int)
    assert np.array_equal(t, np.arange(60))
    expected = np.where(t % 4 < 2, OK, REJECTED)
    assert np.array_equal(r["outcome"], expected)


def _peak_in_flight(arrival, end):
    """Brute force: +1 at arrival, -1 at end; an end at the same instant comes first."""
    times = np.concatenate([arrival, end])
    delta = np.concatenate([np.ones_like(arrival), -np.ones_like(end)])
    order = np.lexsort((delta, times))
    return int(np.cumsum(delta[order]).max())


def test_instances_are_requests_in_flight_m_g_inf():
    """No cap: M/G/inf. Mean instances = rate x (E[S] + instantiate) (Little), within a 95% CI."""
    rate, mean_s, inst = 20.0, 0.5, 0.002
    sc = scen(
        [{"steady": {"rate": f"{rate}/s"}}],
        {"duration": {"dist": "gamma", "mean": f"{mean_s}s", "cv": 1.5}},
        wasm(instantiate=f"{inst}s"),
        duration="1h",
        warmup="5m",
        replications=6,
    )
    means = [run_platform(sc, rep=rep).instances["mean"] for rep in range(sc.replications)]
    m = np.mean(means)
    half = stats.t.ppf(0.975, len(means) - 1) * np.std(means, ddof=1) / math.sqrt(len(means))
    assert abs(m - rate * (mean_s + inst)) <= half, (m, half)


def test_instance_peak_and_mean_equal_a_brute_force_count():
    """Peak and time-average of requests in flight, recounted from every row of the run."""
    sc = scen(
        [{"steady": {"rate": "8/s"}}],
        {"duration": {"dist": "gamma", "mean": "0.5s", "cv": 1.5}},
        wasm(),
        duration="1h",
        warmup="5m",
    )
    run = run_platform(sc)
    r = rows(run)
    assert r["arrival"].size == run.stats.requests_all  # every row kept
    assert run.instances["peak"] == _peak_in_flight(r["arrival"], r["end"])
    span = np.minimum(r["end"], sc.duration) - np.maximum(r["arrival"], sc.warmup)
    assert math.isclose(
        run.instances["mean"], span[span > 0].sum() / (sc.duration - sc.warmup), rel_tol=1e-9
    )


def test_default_has_no_edge_cold_starts():
    sc = scen([{"steady": {"rate": "10/s"}}], {"duration": "5ms"}, wasm(), duration="5m")
    run = run_platform(sc)
    r = rows(run)
    assert run.stats.cold_starts == 0
    assert np.allclose(r["startup"], 0.0005)  # Fermyon's 0.5 ms
    assert np.allclose(r["overhead"], 0.001)  # the 1 ms edge assumption


@pytest.mark.parametrize(("spacing", "expected_cold"), [("90s", 20), ("30s", 1)])
def test_edge_cold_start_by_hand(spacing, expected_cold):
    """Idle timeout 60 s: arrivals every 90 s are all cold; every 30 s only the first is."""
    gap = float(spacing[:-1])
    sc = scen(
        [{"steady": {"rate": f"{60 / gap}/min", "spacing": "uniform"}}],
        {"duration": "1ms"},
        wasm(edge_cold_start="5ms", edge_idle_timeout="60s", instantiate="0.5ms"),
        duration=f"{20 * gap}s",
    )
    run = run_platform(sc)
    r = rows(run)
    assert run.stats.cold_starts == expected_cold
    assert np.allclose(r["startup"][r["cold"]], 0.0055)
    assert np.allclose(r["startup"][~r["cold"]], 0.0005)


@pytest.mark.parametrize("nodes", [1, 4])
def test_edge_cold_ratio_poisson(nodes):
    """Poisson rate r split uniformly over k nodes: each node sees Poisson r/k, and a request is
    cold iff its node's previous request ended >= T ago: P(cold) = exp(-(r/k)(T + d)), d = the
    previous request's ~1.5 ms (its effect, < 1e-4 relative, is far below the test's 4 SE)."""
    rate, timeout = 1 / 60, 60.0
    sc = scen(
        [{"steady": {"rate": "1/min"}}],
        {"duration": "1ms"},
        wasm(edge_cold_start="5ms", edge_idle_timeout="60s", edge_nodes=nodes),
        duration="30d",
    )
    run = run_platform(sc)
    n = run.stats.requests
    p = math.exp(-rate / nodes * timeout)
    se = math.sqrt(p * (1 - p) / n)
    assert abs(run.stats.cold_starts / n - p) < 4 * se, (run.stats.cold_starts / n, p, se)


@pytest.mark.parametrize(
    ("service", "cpu_bound", "slowdown"),
    [("5ms", 1.0, 1.0), ("10ms", 0.5, 1.0), ("2.5ms", 1.0, 2.0)],
)
def test_workers_bill_20m_requests_5ms_cpu(service, cpu_bound, slowdown):
    """20M requests/month at 5 ms of CPU each on Workers Standard:
    $5 + (20M - 10M) x $0.30/M + (100M - 30M) CPU-ms x $0.02/M = 5 + 3 + 1.40 = $9.40/month.
    Window: 0.3 day = 1/100 of a 30-day month (the workload's "20M/month", billed on `month: 720h`)
    -> 200,000 evenly spaced requests. I/O wait (1 - cpu_bound) and Wasm slowdown enter as
    CPU ms = service x slowdown x cpu_bound."""
    sc = scen(
        [{"steady": {"rate": "20M/month", "spacing": "uniform"}}],
        {"duration": service, "cpu_bound": cpu_bound},
        wasm(slowdown=slowdown),
        duration="7.2h",
        month="720h",
    )
    run = run_platform(sc)
    assert run.stats.requests == 200_000
    bill = run.bill
    assert round(bill.monthly_usd, 2) == 9.40
    assert round(bill.monthly_breakdown["workers_base"], 2) == 5.00
    assert round(bill.monthly_breakdown["workers_requests"], 2) == 3.00
    assert round(bill.monthly_breakdown["workers_cpu"], 2) == 1.40
    assert round(bill.total_usd, 4) == 0.094


def test_fastly_and_custom_bills_by_hand():
    """Same traffic (20M requests, 100M CPU-ms a 30-day month, billed on `month: 720h`).
    Fastly: (20M - 10M) x $0.50/M + max(0, 100M - 100M) x $0.05/M = $5.00 of usage, below the $50
    monthly minimum: billed $50.00 ($45.00 shortfall).
    Custom: $20 + (20M - 5M) x $0.10/M + (100M - 50M) x $0.01/M = 20 + 1.5 + 0.5 = $22.00."""
    custom = {
        "monthly_base": 20,
        "per_million_requests": 0.10,
        "per_million_cpu_ms": 0.01,
        "included_requests": "5M",
        "included_cpu_ms": "50M",
    }
    sc = scen(
        [{"steady": {"rate": "20M/month", "spacing": "uniform"}}],
        {"duration": "5ms"},
        wasm(name="fastly", pricing="fastly-compute"),
        wasm(name="mine", pricing="custom", custom=custom),
        duration="7.2h",
        month="720h",
    )
    fastly = run_platform(sc, "fastly").bill
    assert round(fastly.monthly_breakdown["fastly_requests"], 2) == 5.00
    assert round(fastly.monthly_breakdown["fastly_minimum_shortfall"], 2) == 45.00
    assert round(fastly.monthly_usd, 2) == 50.00
    assert round(run_platform(sc, "mine").bill.monthly_usd, 2) == 22.00


def test_common_random_numbers_with_lambda():
    """A Lambda and a Wasm platform in one scenario see identical arrivals and service draws."""
    sc = scen(
        [
            {"steady": {"rate": "3/s"}},
            {"spike": {"at": "5m", "peak": "30/s", "rise": "10s", "hold": "30s", "decay": "30s"}},
        ],
        GAMMA,
        {
            "name": "fn",
            "type": "lambda",
            "memory": 1769,
            "timeout": "900s",
            "account_concurrency": 5000,
        },
        wasm(name="edge"),
        duration="10m",
        replications=2,
    )
    for rep in range(2):
        lam, edge = rows(run_platform(sc, "fn", rep)), rows(run_platform(sc, "edge", rep))
        assert lam["arrival"].size > 2000
        assert np.array_equal(lam["arrival"], edge["arrival"])
        # Lambda at 1769 MB = 1 vCPU runs the native time, as Wasm with slowdown 1.
        assert np.allclose(lam["service"], edge["service"], rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("platform", "words"),
    [
        (wasm(pricing="custom"), "custom"),
        (wasm(custom={"monthly_base": 1}), "pricing: custom"),
        (wasm(cpu_limit="10m"), "at most 300 s"),
        (wasm(max_concurrency=0), "max_concurrency"),
        (wasm(slowdown=0), "slowdown"),
        (wasm(pricing="aws-lambda"), "pricing"),
        (wasm(instantiate="fast"), "instantiate"),
        (wasm(edge_cold_start_ms=5), "edge_cold_start_ms"),
    ],
)
def test_bad_settings_name_the_key(platform, words):
    with pytest.raises(InputError) as info:
        scen([{"steady": {"rate": "1/s"}}], {"duration": "1ms"}, platform, duration="1m")
    assert words in str(info.value)
    assert "platforms[0]" in str(info.value)


def test_example_scenario_loads():
    from sim.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "wasm-edge.yaml")
    types = sorted(p.type for p in sc.platforms)
    assert types == ["lambda", "wasm", "wasm"]


# --- issue 15: platform presets and limits -------------------------------------------------------


@pytest.mark.parametrize(
    "preset, seconds",
    [("cloudflare-workers", 0.005), ("fastly-compute", 0.00005), ("fermyon-spin", 0.0005)],
)
def test_instantiate_presets_are_the_vendors_figures(preset, seconds):
    """Cloudflare: isolate warm-up "under 5 milliseconds" (upper bound 5 ms); Fastly/Lucet "under
    50 microseconds"; Spin 0.5 ms."""
    sc = scen(
        [{"steady": {"rate": "2/s"}}], {"duration": "10ms"}, wasm(instantiate=preset), duration="1m"
    )
    r = rows(run_platform(sc))
    assert np.all(r["startup"] == seconds)


def test_fastly_cpu_limit_defaults_to_50ms():
    """docs.fastly.com compute-resource-limits: 50 ms CPU per execution. A 100 ms CPU-bound
    handler is killed at 50 ms on Fastly; on Workers (30 s) it runs."""
    sc = scen(
        [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
        {"duration": "100ms", "cpu_bound": 1.0},
        wasm(name="fastly", pricing="fastly-compute"),
        wasm(name="workers", pricing="cloudflare-workers"),
        duration="1m",
    )
    assert sc.platforms[0].cpu_limit == 0.05 and sc.platforms[1].cpu_limit == 30.0
    fastly = run_platform(sc, "fastly")
    assert fastly.stats.outcomes["timed_out"] == fastly.stats.requests
    assert np.allclose(rows(fastly)["service"], 0.05)
    assert run_platform(sc, "workers").stats.outcomes["timed_out"] == 0


def test_unknown_instantiate_preset_is_named():
    with pytest.raises(InputError, match="instantiate preset"):
        scen([{"steady": {"rate": "1/s"}}], {"duration": "1ms"}, wasm(instantiate="lucet"))
