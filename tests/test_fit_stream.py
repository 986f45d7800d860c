"""`sim fit` reads in bounded memory: per-second buckets, a bounded uniform sample and log
histograms, all independent of the order rows come in; checked against values computed here
from the generated rows themselves."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.fit.build import build_fit, write_trace
from sim.fit.fitters import fit_times
from sim.fit.io import Tally
from sim.fit.readers import FLUSH_ROWS, TIMEOUT, Observed, Requests, read
from sim.fit.stream import ARRIVALS, BLOCK_S, BUSY, COLD, COVER, REL_ERROR

T0 = 1_709_632_800.0  # 2024-03-05 10:00 UTC


def _rows(n: int, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "arrival": T0 + np.sort(rng.uniform(0, 3 * 3600, n)),
        "dur": rng.lognormal(math.log(80), 0.5, n),
        "init": np.where(rng.random(n) < 0.1, rng.uniform(100, 300, n), np.nan),
        "billed": np.zeros(n),
        "stream": rng.integers(0, 20, n),
    }


def _fill(r: dict[str, np.ndarray], order: np.ndarray, **kw) -> Requests:
    req = Requests(**kw)
    for i in order:
        req.add(
            float(r["arrival"][i]),
            float(r["dur"][i]),
            init_ms=float(r["init"][i]),
            billed_ms=float(np.ceil(r["dur"][i])),
            stream=f"s{r['stream'][i]}",
        )
    return req.finish()


def dense(req: Requests, start: int, n: int) -> np.ndarray:
    secs, ch = req.buckets.compact()
    assert np.array_equal(np.diff(secs), np.ones(secs.size - 1))  # contiguous here
    return ch[:, start - secs[0] : start - secs[0] + n]


def test_summaries_do_not_depend_on_row_order() -> None:
    r = _rows(20_000)
    n = r["arrival"].size
    rng = np.random.default_rng(1)
    runs = [
        _fill(r, o, sample_rows=3000)
        for o in (np.arange(n), np.arange(n)[::-1], rng.permutation(n))
    ]
    start = math.floor(r["arrival"][0])
    ch = [dense(q, start, 3 * 3600 + 2) for q in runs]
    for q, d in zip(runs[1:], ch[1:], strict=True):
        assert np.allclose(d, ch[0], rtol=1e-12, atol=1e-9)
        assert np.array_equal(q.handler_hist.counts, runs[0].handler_hist.counts)
        assert q.busy_s == pytest.approx(runs[0].busy_s, rel=1e-12)
        assert q.billed_sum == runs[0].billed_sum
    # per-second counts and busy seconds against the rows themselves
    sec = np.floor(r["arrival"]).astype(np.int64) - start
    assert np.array_equal(ch[0][ARRIVALS], np.bincount(sec, minlength=ch[0].shape[1]))
    cold = np.isfinite(r["init"])
    assert ch[0][COLD].sum() == cold.sum()
    busy = ch[0][BUSY] + np.cumsum(ch[0][COVER])
    total = ((r["dur"] + np.nan_to_num(r["init"])) / 1e3).sum()
    assert busy.sum() == pytest.approx(total, rel=1e-9)


@pytest.fixture(scope="module")
def big() -> tuple[dict[str, np.ndarray], Requests]:
    r = _rows(70_000)
    return r, _fill(r, np.arange(70_000), sample_rows=2000)


def test_memory_is_bounded_by_the_span_not_the_rows(big) -> None:
    _, req = big
    assert req.n == 70_000
    assert req.times.values().shape[0] == 2000 and req.init.values().shape[0] == 2000
    assert req.exact_arrival is None  # above the sample size: per-second counts only
    assert len(req.buf["arrival"]) == 0 and FLUSH_ROWS < 70_000
    assert len(req.buckets.blocks) <= math.ceil(3 * 3600 / BLOCK_S) + 1
    assert len(req.stream_state) == 20


def test_percentiles_from_the_histogram_within_its_error(big) -> None:
    r, req = big
    fit = fit_times(req.times.values()[:, 0], req.handler_hist, req.times.seen)
    assert fit.n == 70_000
    srt = np.sort(r["dur"])
    for q in (1, 50, 99, 99.9, 100):
        exact = srt[min(max(math.ceil(q / 100 * srt.size) - 1, 0), srt.size - 1)]
        assert fit.percentiles_ms[f"p{q:g}"] == pytest.approx(exact, rel=REL_ERROR)
    assert fit.chosen == "lognormal"  # the sample keeps the shape


def test_timed_out_line_after_its_report_is_matched(tmp_path: Path) -> None:
    """Exports sorted newest first put "Task timed out" after the REPORT (which, from older
    runtimes, has no Status field)."""
    rid = "6c1f9e3a-xmpl-4d2b-a1c3-7e5f9b2d4c6a"
    text = (
        f"2024-03-05T10:00:20.500Z REPORT RequestId: {rid}\tDuration: 3000.00 ms\t"
        "Billed Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\n"
        f"2024-03-05T10:00:20.499Z {rid} Task timed out after 3.00 seconds\n"
        "2024-03-05T10:00:10.000Z REPORT RequestId: 00000000-xmpl-4d2b-a1c3-7e5f9b2d4c6a\t"
        "Duration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\n"
    )
    p = tmp_path / "rev.log"
    p.write_text(text)
    c = read(p, keep_rows=True).requests.columns()  # type: ignore[union-attr]
    assert c["status"].tolist() == [0, TIMEOUT]


def test_more_than_a_month_of_blocks_is_refused() -> None:
    req = Requests("x.log")
    for k in range(700):  # one request per 4096-s block: 33 days' worth
        req.add(T0 + k * BLOCK_S, 10.0)
    with pytest.raises(InputError, match="more than 31 days' worth") as e:
        req.finish()
    assert e.value.file == "x.log"
    # sparse logs months apart are fine (the ALB documentation's examples span 5 months)
    req = Requests("y.log")
    req.add(T0, 10.0)
    req.add(T0 + 150 * 86400, 10.0)
    assert len(req.finish().buckets.blocks) == 2


def _observed(req: Requests) -> Observed:
    obs = Observed("gen.log", "lambda", Tally("gen.log", seen=req.n), requests=req)
    obs.platform = "lambda"
    return obs


@pytest.mark.parametrize(("sample_rows", "kind"), [(100_000, "exact"), (2000, "per-second counts")])
def test_replay_trace_reproduces_every_second(tmp_path: Path, sample_rows: int, kind: str) -> None:
    r = _rows(20_000)
    req = _fill(r, np.arange(20_000)[::-1], sample_rows=sample_rows)
    fit = build_fit([_observed(req)], name="gen")
    path = tmp_path / "t.csv.gz"
    assert write_trace(fit, path, seed=1) == kind
    with gzip.open(path, "rt") as fh:
        t = np.array([float(x) for x in fh.read().split()[1:]])
    assert t.size == 20_000 and t.min() >= 0 and t.max() < fit.window_s
    want = np.floor(r["arrival"] - fit.t0_epoch).astype(np.int64)
    assert np.array_equal(np.bincount(np.floor(t).astype(np.int64)), np.bincount(want))
    if kind == "exact":
        assert np.allclose(np.sort(t), r["arrival"] - fit.t0_epoch, atol=1e-6)
