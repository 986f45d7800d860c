"""AWS Lambda model against closed forms and hand-worked cases (design.md section 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.records import OUTCOMES

from conftest import make_scenario, run_platform


def lam(**platform):
    base = {"name": "fn", "type": "lambda", "memory": 1769, "timeout": "900s"}
    base.update(platform)
    return base


def scen(arrivals, service, platform, duration="1h", **top):
    data = {
        "name": "t",
        "duration": duration,
        "replications": 1,
        "seed": 1,
        "workload": {"arrivals": arrivals, "service": service},
        "platforms": [platform],
    }
    data.update(top)
    return make_scenario(data)


def rows(run):
    s = run.stats.sample
    return {k: np.asarray(v) for k, v in s.items()}


def test_warm_only_lambda_is_m_g_inf():
    """No cold starts, no limits: latency = service time exactly; mean busy = rate x E[S]."""
    rate, mean_s = 5.0, 0.8
    sc = scen(
        [{"steady": {"rate": f"{rate}/s"}}],
        {"duration": {"dist": "gamma", "mean": f"{mean_s}s", "cv": 1.5}, "cpu_bound": 1.0},
        lam(provisioned_concurrency=400, account_concurrency=5000),
        duration="2h",
        replications=6,
        warmup="5m",
    )
    busy = []
    for rep in range(sc.replications):
        run = run_platform(sc, rep=rep)
        r = rows(run)
        assert run.stats.cold_starts == 0
        assert np.allclose(r["end"] - r["start"], r["service"])
        assert np.allclose(r["start"], r["arrival"])  # no wait, no start-up
        busy.append(run.busy_mean)
    m = np.mean(busy)
    half = stats.t.ppf(0.975, len(busy) - 1) * np.std(busy, ddof=1) / math.sqrt(len(busy))
    assert abs(m - rate * mean_s) <= half, (m, half)


def test_keep_alive_gap_formula_single_environment():
    """Low Poisson rate, one environment: cold iff the gap since release > keep-alive.

    With exponential gaps (memoryless) and negligible service, P(cold) = exp(-rate x keep_alive).
    """
    rate, ka = 1 / 900.0, 600.0
    sc = scen(
        [{"steady": {"rate": f"{rate * 3600}/h"}}],
        {"duration": "1ms"},
        lam(keep_alive=f"{ka}s", max_environment_lifetime=None),  # the formula has no cap
        duration="90d",
        warmup="1h",
    )
    run = run_platform(sc)
    n = run.stats.requests
    p_hat = run.stats.cold_starts / n
    p = math.exp(-rate * ka)
    se = math.sqrt(p * (1 - p) / n)
    assert abs(p_hat - p) < 4 * se, (p_hat, p, se, n)


def test_keep_alive_distribution_cold_ratio():
    """Keep-alive uniform(300s, 420s): P(cold) = E[exp(-rate K)] over K."""
    rate = 1 / 400.0
    sc = scen(
        [{"steady": {"rate": f"{rate * 3600}/h"}}],
        {"duration": "1ms"},
        lam(
            keep_alive={"dist": "uniform", "low": "5m", "high": "7m"}, max_environment_lifetime=None
        ),
        duration="120d",
    )
    run = run_platform(sc)
    n = run.stats.requests
    p = (math.exp(-rate * 300) - math.exp(-rate * 420)) / (rate * 120)
    se = math.sqrt(p * (1 - p) / n)
    assert abs(run.stats.cold_starts / n - p) < 4 * se


def _burst(size, service="10s", **platform):
    sc = scen(
        [{"batch": {"at": ["1s"], "size": size, "spread": "0s"}}],
        {"duration": service},
        lam(**platform),
        duration="1m",
    )
    return run_platform(sc)


def test_reserved_concurrency_throttles_exactly_the_excess():
    run = _burst(12, reserved_concurrency=5)
    assert run.stats.outcomes["throttled"] == 7
    assert run.stats.outcomes["ok"] == 5


def test_token_bucket_limits_new_environments():
    run = _burst(1500, account_concurrency=10_000)
    assert run.stats.outcomes["ok"] == 1000  # the 1,000-environment burst
    assert run.stats.outcomes["throttled"] == 500


def test_token_bucket_refills_continuously():
    """2,000 requests spread over 5 s: 1,000 burst + 100/s refill x 5 s = 1,500 environments."""
    sc = scen(
        [{"batch": {"at": ["0s"], "size": 2000, "spread": "5s"}}],
        {"duration": "60s"},
        lam(account_concurrency=10_000),
        duration="2m",
    )
    run = run_platform(sc)
    ok = run.stats.outcomes["ok"]
    assert 1495 <= ok <= 1500  # the last refill slice may fall after the last arrival


def test_throttled_requests_retry_with_backoff():
    run = _burst(12, reserved_concurrency=5, service="1s", client={"retries": 8})
    assert run.stats.outcomes["ok"] == 12
    r = rows(run)
    assert (r["wait"] > 0).sum() == 7


def test_provisioned_concurrency_removes_cold_starts_up_to_its_level():
    run = _burst(8, provisioned_concurrency=5)
    assert run.stats.outcomes["ok"] == 8
    assert run.stats.cold_starts == 3  # spill-over beyond the 5 provisioned
    r = rows(run)
    assert (r["startup"] == 0).sum() == 5


def test_timeout_kills_and_discards_environment():
    sc = scen(
        [{"steady": {"rate": "1/min", "spacing": "uniform"}}],
        {"duration": "5s"},
        lam(timeout="3s"),
        duration="10m",
    )
    run = run_platform(sc)
    assert run.stats.outcomes["timed_out"] == run.stats.requests
    # Every invocation is cold: a timed-out environment is reset.
    assert run.stats.cold_starts == run.stats.requests
    r = rows(run)
    assert np.allclose(r["end"] - r["start"], 3.0)


def test_memory_scales_cpu_bound_share():
    """512 MB -> vCPU 512/1769: the CPU-bound half slows by 1769/512."""
    sc = scen(
        [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
        {"duration": "100ms", "cpu_bound": 0.5},
        lam(memory=512, provisioned_concurrency=2),
        duration="1m",
    )
    r = rows(run_platform(sc))
    expected = 0.1 * (0.5 + 0.5 * 1769 / 512)
    assert np.allclose(r["service"], expected)


def test_hand_computed_bill_20rps_one_day():
    """20 req/s uniform for a day, 500 ms, 1024 MB, x86, no gateway, INIT billing off.

    requests: 1,728,000 x $0.20/M = $0.3456; duration: 1,728,000 x 0.5 s x 1 GB = 864,000 GB-s
    x $0.0000166667 = $14.4000288. Total $14.7456288 -> $14.75.
    """
    sc = scen(
        [{"steady": {"rate": "20/s", "spacing": "uniform"}}],
        {"duration": "500ms", "cpu_bound": 0.0},
        lam(memory=1024, init_billing=False),
        duration="1d",
    )
    run = run_platform(sc)
    bill = run.bill
    assert round(bill.breakdown["requests"], 2) == 0.35
    assert round(bill.breakdown["duration"], 2) == 14.40
    assert round(bill.total_usd, 2) == 14.75
    assert round(bill.monthly_usd, 2) == round(14.7456288 * 730 / 24, 2)  # a 730-h month


def test_outcomes_are_named():
    assert OUTCOMES == ("ok", "throttled", "rejected", "timed_out", "error")


@pytest.mark.parametrize("runtime", ["python3.13", "java21", "rust"])
def test_init_default_from_measured_table(runtime):
    from sim import defaults as D

    sc = scen(
        [{"steady": {"rate": "1/s"}}],
        {"duration": "1ms"},
        lam(runtime=runtime, sandbox_overhead=0),
        duration="1m",
    )
    init = sc.platforms[0].init
    p50, _, p99 = D.LAMBDA_INIT_MS[runtime]
    x = init.sample(200_000, np.random.default_rng(0)) * 1e3
    assert abs(np.median(x) / p50 - 1) < 0.02
    assert abs(np.quantile(x, 0.99) / p99 - 1) < 0.05


def test_sam_template_settings_are_read(root):
    sc = scen(
        [{"steady": {"rate": "1/s"}}],
        {"duration": "10ms"},
        {
            "name": "orders",
            "type": "lambda",
            "sam": {"file": "tests/data/sam-template.yaml", "function": "OrdersFunction"},
        },
    )
    p = sc.platforms[0]
    assert (p.memory, p.timeout, p.runtime, p.architecture) == (1024, 10, "python3.13", "arm64")
    assert (p.reserved_concurrency, p.provisioned_concurrency) == (50, 5)


def test_sam_scenario_keys_win_and_bad_refs_are_named():
    from sim.errors import InputError

    sc = scen(
        [{"steady": {"rate": "1/s"}}],
        {"duration": "10ms"},
        {
            "name": "orders",
            "type": "lambda",
            "memory": 2048,
            "sam": {"file": "tests/data/sam-template.yaml", "function": "OrdersFunction"},
        },
    )
    assert sc.platforms[0].memory == 2048
    with pytest.raises(InputError, match=r"ReportsFunction\.Properties\.Timeout"):
        scen(
            [{"steady": {"rate": "1/s"}}],
            {"duration": "10ms"},
            {
                "name": "r",
                "type": "lambda",
                "sam": {"file": "tests/data/sam-template.yaml", "function": "ReportsFunction"},
            },
        )
    with pytest.raises(InputError, match="several functions"):
        scen(
            [{"steady": {"rate": "1/s"}}],
            {"duration": "10ms"},
            {"name": "r", "type": "lambda", "sam": {"file": "tests/data/sam-template.yaml"}},
        )


def test_provisioned_concurrency_schedule_applies_at_time_of_day():
    sc = scen(
        [{"steady": {"rate": "2/s", "spacing": "uniform"}}],
        {"duration": "1s"},
        lam(provisioned_concurrency=[{"at": "00:00", "value": 0}, {"at": "00:20", "value": 4}]),
        duration="40m",
    )
    run = run_platform(sc)
    changes = [(d.time_s, d.after) for d in run.decisions if d.kind == "provisioned_concurrency"]
    assert (1200.0, 4) in changes
    bill = run.bill
    # PC configured for the last 20 minutes: 4 envs x 1200 s x 1769/1024 GB at the PC rate.
    from sim.pricing import price

    expected = 4 * 1200 * 1769 / 1024 * price("lambda.provisioned_concurrency.x86_64").rate
    assert bill.breakdown["provisioned_concurrency"] == pytest.approx(expected, rel=1e-9)


def test_provisioned_concurrency_target_tracking_scales_out_to_the_load():
    """10 req/s x 1 s service = 10 busy: target 0.7 drives PC to ceil(10/0.7) = 15."""
    sc = scen(
        [{"steady": {"rate": "10/s", "spacing": "uniform"}}],
        {"duration": "1s"},
        lam(provisioned_concurrency={"target": 0.7, "min": 2, "max": 50}),
        duration="30m",
    )
    run = run_platform(sc)
    levels = [d.after for d in run.decisions if d.kind == "provisioned_concurrency"]
    assert levels[0] == 2
    assert max(levels) >= 14
    assert all("target tracking" in d.reason for d in run.decisions)


# --- issue 15: lifetime cap, rate quota, PC schedule readiness, SnapStart rules -----------------

_FAST_COLD = {"init": "1ms", "sandbox_overhead": 0}


def test_lifetime_cap_recycles_a_busy_environment_every_t():
    """One environment under steady 1 req/s (1 ms each, keep-alive never expires between
    requests): with lifetime T = 2 h it is replaced every T, so a 10 h run has 10h / T = 5 cold
    starts, at t = 0, T, 2T, 3T, 4T (the request arriving exactly at the cap gets the new one)."""
    sc = scen(
        [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
        {"duration": "1ms"},
        lam(**_FAST_COLD),
        duration="10h",
    )
    assert sc.platforms[0].max_environment_lifetime.value == 7200.0  # the default
    r = rows(run_platform(sc))
    cold_at = r["arrival"][r["cold"]]
    assert cold_at.tolist() == [0.0, 7200.0, 14400.0, 21600.0, 28800.0]
    assert len(np.unique(r["instance"])) == 5
    off = scen(
        [{"steady": {"rate": "1/s", "spacing": "uniform"}}],
        {"duration": "1ms"},
        lam(max_environment_lifetime=None, **_FAST_COLD),
        duration="10h",
    )
    assert run_platform(off).stats.cold_starts == 1  # the idealised, never-recycled environment


def test_lifetime_cap_lets_the_request_in_flight_finish():
    """Arrivals every 20 s, 15 s each, T = 25 s. The environment born at 0 serves 0-15 and 20-35
    (the cap hits at 25, mid-request: it finishes, ok, full 15 s) and is not reused: the request
    at 40 starts a new environment. Cold, warm, cold, warm, ...: 10 of 20 requests."""
    sc = scen(
        [{"steady": {"rate": "3/min", "spacing": "uniform"}}],
        {"duration": "15s", "cpu_bound": 0.0},
        lam(max_environment_lifetime="25s", **_FAST_COLD),
        duration="400s",
    )
    run = run_platform(sc)
    r = rows(run)
    order = np.argsort(r["arrival"])
    cold, inst = r["cold"][order], r["instance"][order]
    assert run.stats.requests == 20 and run.stats.outcomes["ok"] == 20
    assert cold.tolist() == [True, False] * 10
    assert np.allclose(r["service"], 15.0)
    assert inst[1] == inst[0] and inst[2] != inst[1]


def test_invocation_rate_quota_is_ten_times_concurrency():
    """Reserved concurrency 5 -> 10 x 5 = 50 invocations per second. 200 req/s uniformly spaced,
    1 ms each (never more than one in flight): exactly 50 run in every second, 150 are throttled."""
    sc = scen(
        [{"steady": {"rate": "200/s", "spacing": "uniform"}}],
        {"duration": "1ms"},
        lam(reserved_concurrency=5, **_FAST_COLD),
        duration="10s",
    )
    run = run_platform(sc)
    r = rows(run)
    ok = r["outcome"] == OUTCOMES.index("ok")
    per_second = np.bincount(np.floor(r["arrival"][ok]).astype(int), minlength=10)
    assert per_second.tolist() == [50] * 10
    assert run.stats.outcomes["throttled"] == run.stats.requests - 500
    off = scen(
        [{"steady": {"rate": "200/s", "spacing": "uniform"}}],
        {"duration": "1ms"},
        lam(reserved_concurrency=5, invocations_per_concurrency=None, **_FAST_COLD),
        duration="10s",
    )
    assert run_platform(off).stats.outcomes["throttled"] == 0


def test_rate_throttled_requests_retry():
    """A burst of 30 at once with reserved concurrency 1 (quota 10/s, 1 ms each): 10 run in the
    first second; with retries (full-jitter back-off) every one runs eventually."""
    sc = scen(
        [{"batch": {"at": ["0.5s"], "size": 30, "spread": "0s"}}],
        {"duration": "1ms"},
        lam(reserved_concurrency=1, client={"retries": 12}, **_FAST_COLD),
        duration="2m",
    )
    run = run_platform(sc)
    assert run.stats.outcomes["ok"] == 30
    r = rows(run)
    assert (np.floor(r["start"]) == 0).sum() == 10  # the quota of the first second


def test_scheduled_provisioned_concurrency_is_ready_after_the_delay_and_billed_from_the_action():
    """Scheduled action at 00:10 -> 3 environments, ready_delay 90 s: ready at exactly 690 s.
    A request at 689.5 s spills to on-demand (cold); one at 690 s is served by PC. PC is billed
    from 600 s: 3 envs x (1200 - 600) s x 1769/1024 GB at the PC rate."""
    from sim.pricing import price

    sc = scen(
        [
            {"batch": {"at": ["689.5s"], "size": 1, "spread": "0s"}},
            {"batch": {"at": ["690s"], "size": 1, "spread": "0s"}},
        ],
        {"duration": "100ms", "cpu_bound": 0.0},
        lam(
            provisioned_concurrency=[
                {"at": "00:00", "value": 0},
                {"at": "00:10", "value": 3, "ready_delay": "90s"},
            ],
            **_FAST_COLD,
        ),
        duration="20m",
    )
    run = run_platform(sc)
    r = rows(run)
    order = np.argsort(r["arrival"])
    assert r["cold"][order].tolist() == [True, False]
    changes = [(d.time_s, d.after) for d in run.decisions if d.kind == "provisioned_concurrency"]
    assert changes == [(600.0, 3)]
    gb = 1769 / 1024
    expected = 3 * 600 * gb * price("lambda.provisioned_concurrency.x86_64").rate
    assert run.bill.breakdown["provisioned_concurrency"] == pytest.approx(expected, rel=1e-9)
    pc_duration = 0.1 * gb * price("lambda.provisioned_duration.x86_64").rate  # the 690 s one
    assert run.bill.breakdown["provisioned_duration"] == pytest.approx(pc_duration, rel=1e-9)


@pytest.mark.parametrize(
    "settings, key, words",
    [
        ({"runtime": "nodejs22.x"}, "platforms[0].runtime", "Java 11+, Python 3.12+"),
        ({"runtime": "python3.11"}, "platforms[0].runtime", "not 'python3.11'"),
        ({"runtime": "java8.al2"}, "platforms[0].runtime", "managed runtimes"),
        ({"runtime": "dotnet6"}, "platforms[0].runtime", ".NET 8+"),
        ({"provisioned_concurrency": 2}, "platforms[0].provisioned_concurrency", "provisioned"),
        (
            {"provisioned_concurrency": [{"at": "08:00", "value": 2}]},
            "platforms[0].provisioned_concurrency",
            "provisioned concurrency",
        ),
        ({"efs": True}, "platforms[0].efs", "Amazon EFS"),
        ({"cost": {"ephemeral_storage": 1024}}, "platforms[0].cost.ephemeral_storage", "512 MB"),
    ],
)
def test_snapstart_rules_refuse_with_the_key(settings, key, words):
    from sim.errors import InputError

    platform = lam(snapstart=True, runtime="java21")
    platform.update(settings)
    with pytest.raises(InputError) as exc:
        scen([{"steady": {"rate": "1/s"}}], {"duration": "1ms"}, platform)
    assert exc.value.key is not None and exc.value.key.startswith(key)
    assert words in str(exc.value)


@pytest.mark.parametrize("runtime", ["java11", "java21", "python3.12", "python3.13", "dotnet8"])
def test_snapstart_supported_runtimes_load(runtime):
    sc = scen(
        [{"steady": {"rate": "1/s"}}], {"duration": "1ms"}, lam(snapstart=True, runtime=runtime)
    )
    assert sc.platforms[0].snapstart_charged == (not runtime.startswith("java"))


def test_snapstart_python_bill_by_hand():
    """python3.12 + SnapStart, 1024 MB, 1 day: cache = 1 GB x 86,400 s x $0.0000015046 = $0.13;
    restore = restores x 1 GB x $0.0001397998; java21 has neither line (Java is not charged)."""
    from sim.pricing import price

    def run(runtime):
        sc = scen(
            [{"steady": {"rate": "1/min"}}],
            {"duration": "10ms"},
            lam(memory=1024, snapstart=True, runtime=runtime, keep_alive="30s", restore="100ms"),
            duration="1d",
        )
        return run_platform(sc)

    py = run("python3.12")
    restores = py.stats.cold_starts
    assert restores > 100  # keep-alive 30 s at 1/min: most environments expire
    assert round(py.bill.breakdown["snapstart_cache"], 2) == round(86_400 * 0.0000015046, 2)
    assert py.bill.breakdown["snapstart_cache"] == pytest.approx(86_400 * 0.0000015046)
    restore_rate = price("lambda.snapstart.restore").rate
    assert py.bill.breakdown["snapstart_restore"] == pytest.approx(restores * restore_rate)
    java = run("java21")
    assert "snapstart_cache" not in java.bill.breakdown
    assert "snapstart_restore" not in java.bill.breakdown


def test_sam_snapstart_efs_and_ephemeral_storage(tmp_path):
    from sim.errors import InputError

    (tmp_path / "t.yaml").write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      Runtime: python3.13\n"
        "      SnapStart: {ApplyOn: PublishedVersions}\n"
        "      EphemeralStorage: {Size: 2048}\n"
    )
    platform = {"name": "f", "type": "lambda", "sam": {"file": str(tmp_path / "t.yaml")}}
    with pytest.raises(InputError, match="512 MB"):
        scen([{"steady": {"rate": "1/s"}}], {"duration": "1ms"}, platform)
    sc = scen(
        [{"steady": {"rate": "1/s"}}],
        {"duration": "1ms"},
        {**platform, "snapstart": False},
    )
    assert sc.platforms[0].cost.ephemeral_storage == 2048
    (tmp_path / "e.yaml").write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Lambda::Function\n"
        "    Properties:\n"
        "      FileSystemConfigs: [{Arn: arn, LocalMountPath: /mnt/x}]\n"
    )
    sc = scen(
        [{"steady": {"rate": "1/s"}}],
        {"duration": "1ms"},
        {"name": "f", "type": "lambda", "sam": {"file": str(tmp_path / "e.yaml")}},
    )
    assert sc.platforms[0].efs is True
