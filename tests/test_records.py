"""The recorder: exact percentiles while rows fit, a bounded-error histogram beyond."""

from __future__ import annotations

import numpy as np
import pytest

from sim.records import OK, PERCENTILES, THROTTLED, TIMED_OUT, Recorder


def _rows(rng, n, t0=0.0):
    arrival = np.sort(rng.uniform(t0, t0 + 1000, n))
    service = rng.lognormal(-2, 1.0, n)
    outcome = np.where(rng.random(n) < 0.01, THROTTLED, OK).astype(np.uint8)
    outcome[rng.random(n) < 0.002] = TIMED_OUT
    return {
        "arrival": arrival,
        "start": arrival,
        "end": arrival + service,
        "wait": np.zeros(n),
        "startup": np.zeros(n),
        "service": service,
        "overhead": np.full(n, 0.001),
        "cold": rng.random(n) < 0.05,
        "outcome": outcome,
        "instance": np.arange(n),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaming_percentiles_within_stated_error(seed):
    rng = np.random.default_rng(seed)
    chunks = [_rows(rng, 50_000, 1000 * k) for k in range(8)]
    exact = Recorder(
        0.0, max_rows=10**9, rel_error=1e-3, sample_rows=1000, rng=np.random.default_rng(0)
    )
    stream = Recorder(
        0.0, max_rows=60_000, rel_error=1e-3, sample_rows=1000, rng=np.random.default_rng(0)
    )
    for c in chunks:
        exact.add(c)
        stream.add(c)
    a, b = exact.stats(), stream.stats()
    assert a.exact and not b.exact
    assert b.requests == a.requests == 400_000
    assert b.outcomes == a.outcomes and b.cold_starts == a.cold_starts
    for name in PERCENTILES:
        assert abs(b.latency[name] / a.latency[name] - 1) <= 1e-3 + 1e-12, name
    assert b.latency["mean"] == pytest.approx(a.latency["mean"], rel=1e-12)
    assert b.latency["max"] == pytest.approx(a.latency["max"], rel=1e-12)
    assert b.sample["arrival"].size == 1000  # a uniform sample for requests.csv


def test_warmup_rows_are_excluded_from_statistics():
    rng = np.random.default_rng(5)
    rec = Recorder(
        500.0, max_rows=10**9, rel_error=1e-3, sample_rows=10**6, rng=np.random.default_rng(0)
    )
    rows = _rows(rng, 10_000)
    rec.add(rows)
    s = rec.stats()
    assert s.requests == int((rows["arrival"] >= 500).sum())
    assert s.requests_all == 10_000


def test_order_statistic_ci_brackets_the_percentile():
    rng = np.random.default_rng(9)
    rec = Recorder(
        0.0, max_rows=10**9, rel_error=1e-3, sample_rows=10, rng=np.random.default_rng(0)
    )
    rec.add(_rows(rng, 20_000))
    s = rec.stats()
    for name in PERCENTILES:
        lo, hi = s.latency_ci[name]
        assert lo <= s.latency[name] <= hi


def test_the_streamed_sample_is_the_bottom_k_of_one_key_per_row():
    """Past max_rows the sample is bottom-k on uniform keys: one key per row, drawn in row order
    from the recorder's stream, so it is the k rows with the smallest of those keys, whatever
    the chunking and however often the reservoir is joined and trimmed (computed here by hand)."""
    rng = np.random.default_rng(11)
    chunks = [_rows(rng, n, 1000 * k) for k, n in enumerate([3000, 500, 7000, 1, 2500, 4000])]
    k = 1200
    rec = Recorder(0.0, max_rows=3200, rel_error=1e-3, sample_rows=k, rng=np.random.default_rng(4))
    for c in chunks:
        rec.add(c)
    s = rec.stats()
    keys = np.random.default_rng(4).random(sum(c["arrival"].size for c in chunks))
    arrival = np.concatenate([c["arrival"] for c in chunks])
    expected = np.sort(arrival[np.argsort(keys)[:k]])
    assert not s.exact
    np.testing.assert_array_equal(s.sample["arrival"], expected)


def test_exact_percentiles_of_all_cold_and_warm_requests_are_order_statistics():
    """All, cold and warm latencies: each percentile is the ceil(q n)-th smallest of its own
    requests (counted here by hand from the definition), with ties between the two groups."""
    rng = np.random.default_rng(11)
    rows = _rows(rng, 20_000)
    # ties across cold and warm requests: latencies on a 1 ms grid
    rows["end"] = rows["arrival"] + np.round(rows["service"], 3)
    rec = Recorder(
        0.0, max_rows=10**9, rel_error=1e-3, sample_rows=10, rng=np.random.default_rng(0)
    )
    rec.add(rows)
    s = rec.stats()
    ok = (rows["outcome"] == OK) | (rows["outcome"] == TIMED_OUT)
    lat = (rows["end"] - rows["arrival"] + rows["overhead"]) * 1e3
    for got, keep in (
        (s.latency, ok),
        (s.cold_latency, ok & rows["cold"]),
        (s.warm_latency, ok & ~rows["cold"]),
    ):
        values = sorted(lat[keep].tolist())
        n = len(values)
        for name, p in PERCENTILES.items():
            k = max(-(-round(p * 10) * n // 1000), 1)  # ceil(p/100 * n), p in tenths
            assert got[name] == values[k - 1], name
        assert got["max"] == values[-1]


@pytest.mark.parametrize("expected", [0.0, 1e3, 1e6, float("inf")])
def test_kept_rows_are_the_chunks_joined_whatever_room_was_made(expected):
    # Room for far fewer rows than come (it grows), for many more, or none known: the kept
    # columns are always the chunks end to end, with np.concatenate's dtypes (an int column
    # meeting a float one is promoted).
    rng = np.random.default_rng(11)
    chunks = [_rows(rng, n, 1000 * k) for k, n in enumerate((40_000, 70_000, 3, 30_000))]
    chunks[2]["instance"] = chunks[2]["instance"] + 0.5  # a float chunk among int ones
    rec = Recorder(
        0.0,
        max_rows=10**9,
        rel_error=1e-3,
        sample_rows=10**9,
        rng=np.random.default_rng(0),
        expected_rows=expected,
    )
    for c in chunks:
        rec.add(c)
    kept = rec.sample()  # every row (sample_rows is above the count), sorted by arrival
    order = np.argsort(np.concatenate([c["arrival"] for c in chunks]), kind="stable")
    for col in chunks[0]:
        joined = np.concatenate([c[col] for c in chunks])
        assert kept[col].dtype == joined.dtype, col
        assert np.array_equal(kept[col], joined[order]), col
    assert kept["instance"].dtype == np.float64 and rec.kept == 140_003
