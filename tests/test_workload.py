"""Arrival sources and the Workload merge: rates against closed forms, chunking, validation."""

from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from sim.workload import Workload, WorkloadSpec
from sim.workload.sources import Mmpp

DATA = Path(__file__).parent / "data"


def make(arrivals: list[dict], service: object = "100ms", seed: int = 0) -> Workload:
    spec = WorkloadSpec.model_validate({"arrivals": arrivals, "service": {"duration": service}})
    return Workload(spec, np.random.default_rng(seed), np.random.default_rng([seed, 1]), DATA)


def times(w: Workload, duration: float, chunk: float = 3600.0) -> np.ndarray:
    return np.concatenate([c.arrival for c in w.chunks(duration, chunk)])


def poisson_ok(n: float, mean: float, z: float = 4.0) -> bool:
    return abs(n - mean) <= z * math.sqrt(max(mean, 1.0))


# --------------------------------------------------------------------------------------------
# expected_count: hand-computed closed forms, and the mean of simulated counts


CASES = [
    # (source, duration, hand-computed expected count in [0, duration))
    ({"steady": {"rate": "5/s", "start": 100, "end": 700}}, 1000, 5 * 600),
    (
        {"phases": {"start": 10, "steps": [{"duration": 60, "rate": 2, "ramp_to": 8}]}},
        1000,
        60 * (2 + 8) / 2,
    ),
    (
        {"phases": [{"duration": 60, "rate": 2, "ramp_to": 8}, {"duration": 30, "rate": 4}]},
        80,
        60 * 5 + 20 * 4,
    ),
    # quarter period from the peak: m P (1/4 + 1/(2 pi)) with amplitude 1
    (
        {"diurnal": {"mean": 2, "amplitude": 1, "period": 400, "peak": 0}},
        100,
        2 * 400 * (0.25 + 1 / (2 * math.pi)),
    ),
    # base 200 s + excess 19/s * (rise/2 + hold + decay/2)
    (
        {"spike": {"at": 50, "peak": 20, "rise": 10, "hold": 20, "decay": 30, "base": 1}},
        200,
        1 * 200 + 19 * (5 + 20 + 15),
    ),
    (
        {
            "spike": {
                "at": 50,
                "peak": 20,
                "rise": 10,
                "hold": 20,
                "decay": 30,
                "decay_shape": "exponential",
            }
        },
        200,
        20 * (5 + 20 + 30 * (1 - math.exp(-120 / 30))),
    ),
    # rectangular: a jump up at 10 s and down at 30 s
    ({"spike": {"at": 10, "peak": 50, "hold": 20}}, 100, 50 * 20),
    # batches at 5, 55, 105, 155; the last is a quarter in (5 s of a 20 s spread)
    ({"batch": {"every": 50, "offset": 5, "size": 10, "spread": 20}}, 160, 10 * 3.25),
    ({"batch": {"at": [10, 50, 95], "size": 7, "spread": 10}}, 100, 7 * 2.5),
    # Poisson batches: rate * (T - spread/2) * mean size
    (
        {"batch": {"rate": 0.1, "size": {"dist": "uniform", "low": 5, "high": 15}, "spread": 10}},
        300,
        0.1 * 295 * 10,
    ),
    # on/off: stationary P(on) = 5 / (5 + 20)
    ({"mmpp": {"states": [{"rate": 10, "hold": 5}, {"rate": 0, "hold": 20}]}}, 500, 0.2 * 10 * 500),
]


@pytest.mark.parametrize(("source", "duration", "expected"), CASES)
def test_expected_count_matches_closed_form_and_simulation(
    source: dict, duration: float, expected: float
) -> None:
    assert make([source]).expected_requests(duration) == pytest.approx(expected, rel=1e-9)
    counts = np.array([times(make([source], seed=s), duration).size for s in range(200)])
    sem = counts.std(ddof=1) / math.sqrt(counts.size)
    assert abs(counts.mean() - expected) <= 4 * sem + 1e-9


def test_steady_poisson_count_and_exponential_gaps() -> None:
    t = times(make([{"steady": {"rate": "20/s"}}], seed=3), 3600)
    assert poisson_ok(t.size, 72_000)
    assert np.all((t >= 0) & (t < 3600)) and np.all(np.diff(t) >= 0)
    assert stats.kstest(np.diff(t), "expon", args=(0, 1 / 20)).pvalue > 1e-3


def test_uniform_spacing_is_exact() -> None:
    w = make([{"steady": {"rate": "4/s", "spacing": "uniform", "start": 2.5, "end": 12.5}}])
    t = times(w, 20, chunk=1.3)
    np.testing.assert_array_equal(t, 2.5 + np.arange(40) * 0.25)
    assert w.expected_requests(20) == 40


def test_phases_ramp_follows_the_integral() -> None:
    # 10/s -> 100/s over 600 s: first half integral 3000 + 0.15 * 300^2 / 2 = 9750, total 33000.
    w = make([{"phases": [{"duration": "10m", "rate": "10/s", "ramp_to": "100/s"}]}])
    t = times(w, 900)
    assert poisson_ok(np.sum(t < 300), 9750)
    assert poisson_ok(np.sum((t >= 300) & (t < 600)), 33000 - 9750)
    assert t.max() < 600  # nothing after the last phase


def test_artillery_key_names_are_accepted() -> None:
    w = make([{"phases": [{"duration": 60, "arrivalRate": 1, "rampTo": 3}]}])
    assert w.expected_requests(60) == pytest.approx(120)


def test_diurnal_daily_mean_and_peak_time() -> None:
    w = make([{"diurnal": {"mean": "20/s", "amplitude": 0.5, "peak": "14h"}}], seed=5)
    assert w.expected_requests(86400) == pytest.approx(20 * 86400)
    t = times(w, 86400)
    assert poisson_ok(t.size, 20 * 86400)
    # For rate ~ 1 + a cos(theta - theta_peak), the circular mean of theta is theta_peak and
    # E[cos(theta - theta_peak)] = a / 2.
    theta = 2 * np.pi * t / 86400
    peak = math.atan2(np.sin(theta).mean(), np.cos(theta).mean()) % (2 * np.pi)
    assert peak * 86400 / (2 * np.pi) == pytest.approx(14 * 3600, abs=300)
    assert np.cos(theta - 2 * np.pi * 14 / 24).mean() == pytest.approx(0.25, abs=0.01)


def test_spike_shape() -> None:
    src = {"spike": {"at": "45m", "peak": "800/s", "rise": "30s", "hold": "2m", "decay": "5m"}}
    t = times(make([src], seed=2), 7200)
    assert t.min() >= 2700 and t.max() < 2700 + 30 + 120 + 300
    assert poisson_ok(t.size, 800 * (15 + 120 + 150))
    assert poisson_ok(np.sum((t >= 2730) & (t < 2850)), 800 * 120)  # the hold


def test_batch_sizes_and_spread() -> None:
    w = make([{"batch": {"every": "15m", "size": 2000, "spread": "10s"}}])
    t = times(w, 3600, chunk=7)  # chunks cut every batch's spread
    batch = np.floor(t / 900)
    np.testing.assert_array_equal(np.bincount(batch.astype(int)), [2000] * 4)
    assert np.all(t - batch * 900 < 10)


def test_batch_size_distribution_mean() -> None:
    w = make([{"batch": {"every": 1, "size": {"dist": "uniform", "low": 10, "high": 20}}}])
    sizes = np.bincount(times(w, 5000).astype(int), minlength=5000)
    assert sizes.min() >= 10 and sizes.max() <= 20
    assert abs(sizes.mean() - 15) < 4 * (10 / math.sqrt(12)) / math.sqrt(5000)


def test_mmpp_long_run_rate_is_the_stationary_mix() -> None:
    src = {"mmpp": {"states": [{"rate": "10/s", "hold": "30s"}, {"rate": 0, "hold": "2m"}]}}
    horizon = 10 * 86400
    w = make([src], seed=11)
    assert w.expected_requests(horizon) == pytest.approx(0.2 * 10 * horizon)
    n = times(w, horizon).size
    # Alternating renewal: Var(time on) ~ T (m_off^2 s_on^2 + m_on^2 s_off^2) / (m_on + m_off)^3
    # with exponential sojourns (s = m); the count adds Poisson noise.
    var_on = horizon * 2 * (120**2 * 30**2) / 150**3
    sd = math.sqrt(100 * var_on + 0.2 * 10 * horizon)
    assert abs(n - 0.2 * 10 * horizon) < 4 * sd


def test_mmpp_generator_matrix_stationary_distribution() -> None:
    # A cycle 0 -> 1 -> 2 -> 0 leaving at rates 1/10, 1/20, 1/30: pi is proportional to 10:20:30.
    q = [[0, 0.1, 0], [0, 0, 0.05], [1 / 30, 0, 0]]
    cfg = Mmpp.model_validate({"states": [{"rate": 30}, {"rate": 6}, {"rate": 0}], "generator": q})
    np.testing.assert_allclose(cfg.stationary(), [1 / 6, 2 / 6, 3 / 6])
    assert cfg.mean_rate() == pytest.approx((10 * 30 + 20 * 6) / 60)
    src = {"mmpp": {"states": [{"rate": 30}, {"rate": 6}, {"rate": 0}], "generator": q}}
    counts = np.array([times(make([src], seed=s), 3600).size for s in range(40)])
    sem = counts.std(ddof=1) / math.sqrt(counts.size)
    assert abs(counts.mean() - 7 * 3600) < 4 * sem


ALL_KINDS = [
    {"steady": {"rate": 3}},
    {"steady": {"rate": 3, "spacing": "uniform"}},
    {"phases": [{"duration": 300, "rate": 1, "ramp_to": 5}, {"duration": 900, "rate": 2}]},
    {"diurnal": {"mean": 3, "amplitude": 0.9, "period": "20m", "peak": "5m"}},
    {"spike": {"at": 0, "peak": 30, "rise": 60, "hold": 60, "decay": 600, "base": 1}},
    {"batch": {"every": 70, "size": 40, "spread": 45}},
    {"batch": {"rate": 0.02, "size": {"dist": "exponential", "mean": 30}, "spread": 30}},
    {"mmpp": {"states": [{"rate": 8, "hold": 40}, {"rate": 0.5, "hold": 90}]}},
]


@pytest.mark.parametrize("source", ALL_KINDS)
def test_start_and_end_are_honoured(source: dict) -> None:
    kind = next(iter(source))
    body = source[kind]
    limited = {"steps": body} if isinstance(body, list) else dict(body)
    limited.update(start=600, end=1500)
    t = times(make([{kind: limited}], seed=4), 3600)
    assert t.size > 0 and t.min() >= 600 and t.max() < 1500


def _all_sources() -> list[dict]:
    trace = {
        "trace": {
            "file": "azure2019_extract/invocations.csv",
            "format": "azure2019",
            "durations": "azure2019_extract/durations.csv",
            "window": ["10m", "40m"],
            "time_scale": 2,
        }
    }
    return [*ALL_KINDS, trace]


def test_chunk_size_does_not_change_anything() -> None:
    service = {"dist": "lognormal", "median": "100ms", "p99": "1s"}
    runs = []
    for chunk in (60.0, 3600.0, 7.3):
        w = make(_all_sources(), service=service, seed=9)
        chunks = list(w.chunks(3600, chunk))
        runs.append(
            [
                np.concatenate([getattr(c, k) for c in chunks])
                for k in ("arrival", "service", "function")
            ]
        )
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    arrival, service_s, function = runs[0]
    assert np.all(np.diff(arrival) >= 0) and np.all(service_s >= 0)
    assert function.dtype == np.int32 and arrival.dtype == np.float64


def test_same_rngs_identical_and_rngs_untouched() -> None:
    spec = WorkloadSpec.model_validate(
        {"arrivals": _all_sources(), "service": {"duration": {"dist": "exponential", "mean": 0.1}}}
    )
    a_rng, s_rng = np.random.default_rng(1), np.random.default_rng(2)
    before = (a_rng.bit_generator.state, s_rng.bit_generator.state)
    w1, w2 = Workload(spec, a_rng, s_rng, DATA), Workload(spec, a_rng, s_rng, DATA)
    assert (a_rng.bit_generator.state, s_rng.bit_generator.state) == before
    first = list(w1.chunks(1800, 600))
    again = list(w1.chunks(1800, 600))  # a second pass replays the same requests
    other = list(w2.chunks(1800, 600))
    for x, y, z in zip(first, again, other, strict=True):
        for k in ("arrival", "service", "function"):
            np.testing.assert_array_equal(getattr(x, k), getattr(y, k))
            np.testing.assert_array_equal(getattr(x, k), getattr(z, k))
    assert w1.function_names[0] == "default" and len(w1.function_names) == 21


def test_adding_a_source_keeps_the_others_arrivals() -> None:
    alone = times(make([{"steady": {"rate": 5}}], seed=8), 600)
    both = make([{"steady": {"rate": 5}}, {"batch": {"every": 100, "size": 3}}], seed=8)
    chunks = list(both.chunks(600))
    t = np.concatenate([c.arrival for c in chunks])
    # The batch adds exactly 6 x 3 arrivals at 0, 100, ..., 500; the steady ones are unchanged.
    batch_times = np.repeat(np.arange(0, 600, 100.0), 3)
    np.testing.assert_array_equal(np.sort(np.concatenate([alone, batch_times])), t)


def test_service_drawn_for_requests_without_their_own() -> None:
    w = make([{"steady": {"rate": 50}}], service={"dist": "exponential", "mean": "200ms"})
    s = np.concatenate([c.service for c in w.chunks(600)])
    assert s.mean() == pytest.approx(0.2, rel=4 / math.sqrt(s.size))
    assert w.spec.service.cpu_bound == 1.0


# --------------------------------------------------------------------------------------------
# Speed and memory


def test_one_million_poisson_arrivals_are_fast() -> None:
    w = make([{"steady": {"rate": "10000/s"}}], service="1ms")
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        n = sum(len(c) for c in w.chunks(100, 100))
        best = min(best, time.perf_counter() - t0)
    assert poisson_ok(n, 1e6)
    assert best < 0.5


def test_long_runs_hold_about_one_chunk_in_memory() -> None:
    # One day at 50/s is 4.3M requests (~86 MB as arrays); 1-hour chunks are ~3.6 MB each.
    w = make(
        [
            {"steady": {"rate": "30/s"}},
            {"diurnal": {"mean": "20/s", "amplitude": 0.5, "peak": "14h"}},
        ],
        service={"dist": "exponential", "mean": 0.1},
    )
    tracemalloc.start()
    try:
        n = 0
        for c in w.chunks(86400, 3600):
            n += len(c)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert poisson_ok(n, 50 * 86400)
    assert peak < 25e6


# --------------------------------------------------------------------------------------------
# Bad input


def error_of(data: dict) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as info:
        WorkloadSpec.model_validate(data)
    err = info.value.errors()[0]
    return err["loc"], err["msg"]


def wl(*arrivals: dict) -> dict:
    return {"arrivals": list(arrivals), "service": {"duration": "100ms"}}


@pytest.mark.parametrize(
    ("data", "loc", "words"),
    [
        (wl({"steady": {"rate": 1}, "spike": {"at": 1, "peak": 2}}), ("arrivals", 0), "one source"),
        (wl({"stedy": {"rate": 1}}), ("arrivals", 0), "unknown arrival source 'stedy'"),
        (wl({"steady": None}), ("arrivals", 0), "needs its settings"),
        (wl({"steady": {"rate": "fast"}}), ("arrivals", 0, "steady", "rate"), "expected a rate"),
        (wl({"steady": {"rate": 1, "burst": 2}}), ("arrivals", 0, "steady", "burst"), "Extra"),
        (wl({"steady": {"rate": -1}}), ("arrivals", 0, "steady", "rate"), "greater than"),
        (wl({"steady": {"rate": 1, "start": 10, "end": 5}}), ("arrivals", 0, "steady"), "`end`"),
        (
            wl({"batch": {"every": 10, "rate": 1, "size": 5}}),
            ("arrivals", 0, "batch"),
            "exactly one",
        ),
        (wl({"batch": {"every": 10, "size": "lots"}}), ("arrivals", 0, "batch", "size"), "number"),
        (wl({"batch": {"rate": 1, "offset": 5, "size": 2}}), ("arrivals", 0, "batch"), "offset"),
        (
            wl({"spike": {"at": 0, "peak": 1, "base": 5, "rise": 1}}),
            ("arrivals", 0, "spike"),
            "peak",
        ),
        (wl({"spike": {"at": 0, "peak": 1}}), ("arrivals", 0, "spike"), "positive"),
        (
            wl({"diurnal": {"mean": 1, "amplitude": 1.5, "peak": "14h"}}),
            ("arrivals", 0, "diurnal", "amplitude"),
            "less than or equal",
        ),
        (
            wl({"diurnal": {"mean": 1, "amplitude": 0.5}}),
            ("arrivals", 0, "diurnal", "peak"),
            "required",
        ),
        (
            wl(
                {
                    "mmpp": {
                        "states": [{"rate": 1, "hold": 1}, {"rate": 0}],
                        "generator": [[0, 1], [1, 0]],
                    }
                }
            ),
            ("arrivals", 0, "mmpp"),
            "not both",
        ),
        (
            wl({"mmpp": {"states": [{"rate": 1}, {"rate": 0}], "generator": [[0, 1], [0, 0]]}}),
            ("arrivals", 0, "mmpp"),
            "left",
        ),
        (wl({"phases": []}), ("arrivals", 0, "phases", "steps"), "at least 1"),
        ({"arrivals": []}, ("arrivals",), "at least 1"),
        ({"arrivals": [{"steady": {"rate": 1}}]}, (), "service.duration"),
        (
            wl({"trace": {"file": "x.csv", "triggers": ["http"]}}),
            ("arrivals", 0, "trace"),
            "azure2019",
        ),
    ],
)
def test_bad_input_names_the_key(data: dict, loc: tuple, words: str) -> None:
    got_loc, msg = error_of(data)
    assert got_loc == loc
    assert words in msg


def test_bare_duration_means_constant_service() -> None:
    spec = WorkloadSpec.model_validate(wl({"steady": {"rate": 1}}))
    assert spec.service.duration is not None and spec.service.duration.mean() == 0.1
    dumped = spec.model_dump()
    assert dumped["arrivals"] == [
        {"steady": {"start": 0.0, "end": None, "rate": 1.0, "spacing": "poisson"}}
    ]
    schema = WorkloadSpec.model_json_schema()
    assert schema["$defs"]["ArrivalSource"]["maxProperties"] == 1
