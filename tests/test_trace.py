"""Trace replay: Azure 2019 per-minute counts, Azure 2021 per-invocation rows, plain CSV."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from sim.distributions import Empirical
from sim.errors import InputError
from sim.workload import RequestChunk, Workload, WorkloadSpec

DATA = Path(__file__).parent / "data"
EXTRACT = DATA / "azure2019_extract"

# Three functions x three minutes, small enough to check by hand.
MINUTES = """HashOwner,HashApp,HashFunction,Trigger,1,2,3
o1,a1,f1aaaaaaaa,http,3,0,5
o1,a2,f2bbbbbbbb,timer,1,2,0
o2,a3,f3cccccccc,queue,0,0,7
"""
_PCT = ",".join(f"percentile_Average_{p}" for p in (0, 1, 25, 50, 75, 99, 100))
DURATIONS = f"""HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,{_PCT}
o1,a1,f1aaaaaaaa,30,8,10,200,10,10,20,30,40,100,200
o1,a2,f2bbbbbbbb,5,3,1,9,1,1,2,5,6,8,9
o2,a3,f3cccccccc,1000,7,1000,1000,1000,1000,1000,1000,1000,1000,1000
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "inv.csv").write_text(MINUTES)
    (tmp_path / "dur.csv").write_text(DURATIONS)
    return tmp_path


def workload(trace: dict, base: Path, seed: int = 0, service: object = "10ms") -> Workload:
    spec = WorkloadSpec.model_validate(
        {"arrivals": [{"trace": trace}], "service": {"duration": service}}
    )
    return Workload(spec, np.random.default_rng(seed), np.random.default_rng(seed + 1), base)


def collect(w: Workload, duration: float, chunk: float = 3600.0) -> RequestChunk:
    parts = list(w.chunks(duration, chunk))
    return RequestChunk(
        *(
            np.concatenate([getattr(p, k) for p in parts])
            for k in ("arrival", "service", "function")
        )
    )


def per_minute(c: RequestChunk, n_functions: int, n_minutes: int, minute: float = 60.0):
    m = np.floor(c.arrival / minute).astype(int)
    counts = np.zeros((n_functions, n_minutes), int)
    np.add.at(counts, (c.function, m), 1)
    return counts


# --------------------------------------------------------------------------------------------
# Azure 2019 per-minute


def test_uniform_reproduces_per_minute_counts_exactly(folder: Path) -> None:
    w = workload({"file": "inv.csv", "format": "azure2019"}, folder)
    c = collect(w, 600, chunk=50)  # chunks cut through minutes
    assert w.function_names == ["f1aaaaaaaa", "f2bbbbbbbb", "f3cccccccc"]
    np.testing.assert_array_equal(per_minute(c, 3, 3), [[3, 0, 5], [1, 2, 0], [0, 0, 7]])
    assert np.all(np.diff(c.arrival) >= 0)
    # expected count over 90 s: minute 1 whole (4) plus half of minute 2 (2 / 2)
    assert w.expected_requests(90) == pytest.approx(5.0)
    assert w.expected_requests(600) == pytest.approx(18.0)


def test_real_extract_counts_exact_and_durations_joined() -> None:
    inv = pd.read_csv(EXTRACT / "invocations.csv")
    matrix = inv[[str(m) for m in range(480, 540)]].to_numpy()
    w = workload(
        {
            "file": "azure2019_extract/invocations.csv",
            "format": "azure2019",
            "durations": "azure2019_extract/durations.csv",
            "memory": "azure2019_extract/memory.csv",
        },
        DATA,
    )
    assert w.function_names == inv["HashFunction"].tolist()
    c = collect(w, 3600, chunk=60)
    np.testing.assert_array_equal(per_minute(c, len(inv), 60), matrix)
    assert w.expected_requests(3600) == matrix.sum()
    # Service times stay within each function's [p0, p100] (ms -> s).
    dur = pd.read_csv(EXTRACT / "durations.csv").set_index("HashFunction").loc[inv["HashFunction"]]
    lo = dur["percentile_Average_0"].to_numpy()[c.function] / 1000
    hi = dur["percentile_Average_100"].to_numpy()[c.function] / 1000
    assert np.all((c.service >= lo - 1e-12) & (c.service <= hi + 1e-12))
    mem = pd.read_csv(EXTRACT / "memory.csv").set_index("HashFunction")["AverageAllocatedMb"]
    assert w.function_memory_mb == pytest.approx(mem.to_dict())


def test_durations_follow_the_percentile_semantics(folder: Path) -> None:
    # Many arrivals of f1 only: quantiles at the knots equal the given percentiles, and the mean
    # equals sim.distributions.Empirical's trapezoid mean for the same percentiles.
    w = workload(
        {
            "file": "inv.csv",
            "format": "azure2019",
            "functions": ["f1aaaaaaaa"],
            "rate_scale": 4000,
            "durations": "dur.csv",
        },
        folder,
    )
    s = collect(w, 180).service
    assert s.size == 8 * 4000
    np.testing.assert_allclose(np.quantile(s, [0.25, 0.5, 0.75]), [0.020, 0.030, 0.040], rtol=0.03)
    ref = Empirical(
        dist="empirical",
        percentiles={0: 0.01, 1: 0.01, 25: 0.02, 50: 0.03, 75: 0.04, 99: 0.1, 100: 0.2},
    )
    assert s.mean() == pytest.approx(ref.mean(), rel=4 * s.std() / ref.mean() / math.sqrt(s.size))
    assert s.min() >= 0.010 and s.max() <= 0.200


def test_poisson_within_minute_matches_counts_in_expectation(folder: Path) -> None:
    totals = []
    for seed in range(300):
        w = workload(
            {"file": "inv.csv", "format": "azure2019", "within_minute": "poisson"}, folder, seed
        )
        totals.append(len(collect(w, 180).arrival))
    totals = np.array(totals)
    # Sum of Poisson(k) over all cells: Poisson(18); counts vary.
    assert totals.std() > 0
    assert abs(totals.mean() - 18) < 4 * math.sqrt(18 / totals.size)
    assert totals.var(ddof=1) == pytest.approx(18, rel=0.3)


def test_rate_scale_duplicates_or_thins(folder: Path) -> None:
    w = workload({"file": "inv.csv", "format": "azure2019", "rate_scale": 2}, folder)
    np.testing.assert_array_equal(
        per_minute(collect(w, 180), 3, 3), 2 * np.array([[3, 0, 5], [1, 2, 0], [0, 0, 7]])
    )
    counts = []
    for seed in range(400):
        w = workload({"file": "inv.csv", "format": "azure2019", "rate_scale": 0.5}, folder, seed)
        counts.append(len(collect(w, 180).arrival))
    # Each of the 18 invocations kept with probability 1/2: Binomial(18, 1/2).
    assert abs(np.mean(counts) - 9) < 4 * math.sqrt(18 * 0.25 / len(counts))
    assert w.expected_requests(180) == pytest.approx(9)


def test_time_scale_window_and_start(folder: Path) -> None:
    # Trace minutes 2..3 (window [60 s, 180 s]) played twice as fast from simulated t = 100 s.
    w = workload(
        {
            "file": "inv.csv",
            "format": "azure2019",
            "window": ["1m", "3m"],
            "time_scale": 0.5,
            "start": 100,
        },
        folder,
    )
    c = collect(w, 400)
    assert c.arrival.min() >= 100 and c.arrival.max() < 160
    np.testing.assert_array_equal(
        per_minute(RequestChunk(c.arrival - 100, c.service, c.function), 3, 2, minute=30),
        [[0, 5], [2, 0], [0, 7]],
    )
    assert w.expected_requests(400) == 14
    assert w.expected_requests(115) == pytest.approx(1.0)  # half of trace minute 2's count
    # A window cutting minutes: [90 s, 150 s) holds half of minute 2 and half of minute 3.
    w = workload({"file": "inv.csv", "format": "azure2019", "window": [90, 150]}, folder)
    assert w.expected_requests(600) == pytest.approx((0 + 2 + 0) / 2 + (5 + 0 + 7) / 2)
    c = collect(w, 600)
    assert c.arrival.size <= 14 and np.all(c.arrival < 60)


def test_selection_by_function_app_trigger_and_top(folder: Path) -> None:
    def names(**sel: object) -> list[str]:
        return workload({"file": "inv.csv", "format": "azure2019", **sel}, folder).function_names

    assert names(functions=["f2bbbb"]) == ["f2bbbbbbbb"]  # a unique prefix
    assert names(apps=["a3"]) == ["f3cccccccc"]
    assert names(triggers=["timer", "queue"]) == ["f2bbbbbbbb", "f3cccccccc"]
    assert names(top=2) == ["f1aaaaaaaa", "f3cccccccc"]  # totals 8, 3, 7
    assert names(top=1, window=["2m", "3m"]) == ["f3cccccccc"]


@pytest.mark.parametrize(
    ("trace", "key", "words"),
    [
        ({"file": "nope.csv"}, "workload.arrivals.0.trace.file", "not found"),
        (
            {"file": "inv.csv", "format": "azure2019", "functions": ["ffffffff"]},
            ".functions",
            "unknown hash",
        ),
        ({"file": "inv.csv", "format": "azure2019", "triggers": ["cron"]}, ".triggers", "cron"),
        (
            {"file": "inv.csv", "format": "azure2019", "durations": "x.csv"},
            ".durations",
            "not found",
        ),
        ({"file": "inv.csv", "format": "azure2019", "window": ["1h", "2h"]}, ".window", "after"),
        ({"file": "dur.csv", "format": "azure2019"}, ".file", "per-minute"),
        ({"file": "inv.csv", "format": "azure2021"}, ".file", "missing column"),
        ({"file": "inv.csv", "column": "when"}, ".column", "no column 'when'"),
        ({"file": "inv.csv"}, ".column", "say which one"),
    ],
)
def test_bad_trace_input_names_the_key(folder: Path, trace: dict, key: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        workload(trace, folder)
    assert info.value.key is not None and info.value.key.endswith(key)
    assert info.value.key.startswith("workload.arrivals.0.trace")
    assert words in str(info.value)


def test_durations_missing_a_function_is_an_error(folder: Path) -> None:
    (folder / "short.csv").write_text("\n".join(DURATIONS.splitlines()[:2]) + "\n")
    with pytest.raises(InputError, match=r"no row in short\.csv") as info:
        workload({"file": "inv.csv", "format": "azure2019", "durations": "short.csv"}, folder)
    assert info.value.key == "workload.arrivals.0.trace.durations"


def test_trace_options_checked_against_format() -> None:
    for bad in ({"durations": "d.csv"}, {"apps": ["a"]}, {"functions": ["f"]}):
        with pytest.raises(ValidationError):
            WorkloadSpec.model_validate({"arrivals": [{"trace": {"file": "t.csv", **bad}}]})
    # A trace with its own service times needs no service.duration.
    WorkloadSpec.model_validate({"arrivals": [{"trace": {"file": "t.csv", "format": "azure2021"}}]})


def test_minute_column_names_of_the_1350_layout(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "HashFunction,HashOwner,HashApp,minute_1,minute_2\nf9,o9,a9,2,4\n"
    )
    w = workload({"file": "t.csv", "format": "azure2019"}, tmp_path)
    np.testing.assert_array_equal(per_minute(collect(w, 120), 1, 2), [[2, 4]])


# --------------------------------------------------------------------------------------------
# Azure 2021 and CSV


def test_azure2021_arrival_is_end_minus_duration() -> None:
    raw = pd.read_csv(DATA / "azure2021_extract.csv")
    start = (raw["end_timestamp"] - raw["duration"]).to_numpy()
    order = np.argsort(start, kind="stable")
    w = workload({"file": "azure2021_extract.csv", "format": "azure2021"}, DATA)
    c = collect(w, 7200, chunk=300)
    np.testing.assert_allclose(c.arrival, start[order])
    np.testing.assert_allclose(c.service, raw["duration"].to_numpy()[order])
    names = np.array(w.function_names)[c.function]
    expected = (raw["app"] + "/" + raw["func"]).to_numpy()[order]
    np.testing.assert_array_equal(names, expected)
    assert w.expected_requests(7200) == len(raw)


def test_azure2021_select_app_and_top() -> None:
    raw = pd.read_csv(DATA / "azure2021_extract.csv")
    busiest_app = raw["app"].value_counts().index[0]
    w = workload(
        {
            "file": "azure2021_extract.csv",
            "format": "azure2021",
            "apps": [busiest_app[:10]],
            "top": 1,
        },
        DATA,
    )
    pairs = raw[raw["app"] == busiest_app].groupby("func").size()
    assert w.function_names == [f"{busiest_app}/{pairs.idxmax()}"]
    assert len(collect(w, 7200).arrival) == pairs.max()


def test_csv_seconds_unsorted_with_functions_and_durations(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("ts,fn,dur\n5.5,b,0.2\n1.0,a,0.1\n3.25,a,0.3\n")
    trace = {"file": "t.csv", "column": "ts", "function_column": "fn", "duration_column": "dur"}
    w = workload(trace, tmp_path)
    c = collect(w, 10)
    np.testing.assert_array_equal(c.arrival, [1.0, 3.25, 5.5])
    np.testing.assert_array_equal(c.service, [0.1, 0.3, 0.2])
    assert [w.function_names[i] for i in c.function] == ["a", "a", "b"]


def test_csv_iso_times_and_headerless(tmp_path: Path) -> None:
    (tmp_path / "iso.csv").write_text(
        "when\n2024-05-01T10:00:02Z\n2024-05-01T10:00:00Z\n2024-05-01T10:01:00.5Z\n"
    )
    c = collect(workload({"file": "iso.csv"}, tmp_path), 100)
    np.testing.assert_allclose(c.arrival, [0.0, 2.0, 60.5])
    np.testing.assert_array_equal(c.service, [0.01] * 3)  # drawn from service.duration
    (tmp_path / "plain.csv").write_text("7\n2\n30\n")
    c = collect(workload({"file": "plain.csv", "rate_scale": 3}, tmp_path), 100)
    np.testing.assert_array_equal(c.arrival, [2, 2, 2, 7, 7, 7, 30, 30, 30])


def test_trace_chunk_independence(folder: Path) -> None:
    trace = {"file": "inv.csv", "format": "azure2019", "durations": "dur.csv", "rate_scale": 2.5}
    a = collect(workload(trace, folder, seed=3), 200, chunk=7)
    b = collect(workload(trace, folder, seed=3), 200, chunk=3600)
    for k in ("arrival", "service", "function"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def _big_trace(folder: Path, n_fn: int = 500, minutes: int = 480) -> int:
    """An Azure 2019-format set the size of vHive's 500-function, 8-hour one (~3M requests),
    written here so the test needs no file outside the repository. Returns the total count."""
    f = np.arange(n_fn)[:, None]
    m = np.arange(minutes)[None, :]
    counts = (f * 7 + m * 3) % 25  # 0..24 per function-minute, 12 on average
    head = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(map(str, range(1, minutes + 1)))
    rows = [f"o{i},a{i},f{i:010d},http," + ",".join(map(str, counts[i])) for i in range(n_fn)]
    (folder / "invocations.csv").write_text(head + "\n" + "\n".join(rows) + "\n")
    return int(counts.sum())


def test_full_500_function_set_streams_in_bounded_memory(tmp_path: Path) -> None:
    total = _big_trace(tmp_path)
    trace = {"file": "invocations.csv", "format": "azure2019"}
    w = workload(trace, tmp_path)
    collect(workload(trace, tmp_path), 60)  # warm the file cache outside the measurement
    tracemalloc.start()
    try:
        n, largest = 0, 0
        for c in w.chunks(8 * 3600, 3600):
            n += len(c)
            largest = max(largest, len(c))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # hand count: sum over f < 500, m < 480 of (7f + 3m) mod 25
    assert n == total == w.expected_requests(8 * 3600) == 2_880_000
    # All 3M requests as arrays would be ~60 MB; one hour is ~0.4M requests (~8 MB).
    assert peak < 40e6 and largest < 500_000
