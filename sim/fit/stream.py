"""Bounded-memory summaries of a request log, filled chunk by chunk in any order.

`sim fit` never holds one row per request: a reader's rows go through a small buffer into
- `SecondBuckets`: per-second sums on the epoch clock (arrivals, cold starts, busy time, first
  arrival and last end of each second), kept in blocks of BLOCK_S seconds that hold data. Sums,
  minima and maxima do not depend on the order rows come in, so unsorted exports need no
  reordering window. Memory is bounded by the time the logs cover (about 260 KB per 68 minutes
  that hold a request, 5.5 MB per day), not by the number of requests; more than MAX_SPAN_DAYS
  of such blocks are refused.
- `Sample`: a uniform sample of at most SAMPLE_ROWS rows (bottom-k on uniform keys from a seeded
  generator: deterministic, and two samples merge into a uniform sample of the union). Below
  SAMPLE_ROWS rows it holds every row, so small logs are fitted exactly.
- `sim.records.LogHistogram` (the recorder's): every percentile read from it is within
  REL_ERROR (0.1%) of the exact order statistic, at any size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from sim.errors import InputError

SAMPLE_ROWS = 200_000
REL_ERROR = 1e-3
BLOCK_S = 4096
MAX_SPAN_DAYS = 31
_MAX_BLOCKS = math.ceil(MAX_SPAN_DAYS * 86400 / BLOCK_S) + 1

# SecondBuckets channels
ARRIVALS, COLD, BUSY, COVER, CARRY, FIRST, FIRST_COLD, LAST_END = range(8)
_SUM = (ARRIVALS, COLD, BUSY, COVER, CARRY)
_EMPTY = np.array([0, 0, 0, 0, 0, math.inf, math.inf, -math.inf])


class SecondBuckets:
    """Per-second sums over epoch seconds: ARRIVALS and COLD counts, BUSY (seconds of work that
    fall inside the second, partial seconds only), COVER (a difference array: seconds fully inside
    a request), CARRY (a difference array: seconds a request started earlier is still running
    into), FIRST / FIRST_COLD (earliest arrival / earliest cold arrival) and LAST_END (latest end
    of the requests that end in the second)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.blocks: dict[int, np.ndarray] = {}

    def _block(self, b: int) -> np.ndarray:
        blk = self.blocks.get(b)
        if blk is None:
            if len(self.blocks) >= _MAX_BLOCKS:
                raise InputError(
                    f"requests in more than {MAX_SPAN_DAYS} days' worth of {BLOCK_S}-second "
                    "blocks: fit a shorter window (or check the times)",
                    file=self.file,
                )
            blk = self.blocks[b] = np.repeat(_EMPTY[:, None], BLOCK_S, axis=1)
        return blk

    def _groups(self, sec: np.ndarray) -> Iterator[tuple[int, Any, np.ndarray]]:
        b = sec // BLOCK_S
        lo, hi = int(b.min()), int(b.max())
        if lo == hi:
            yield lo, slice(None), sec - lo * BLOCK_S
            return
        for k in np.unique(b):
            sel = b == k
            yield int(k), sel, sec[sel] - int(k) * BLOCK_S

    def add(self, ch: int, sec: np.ndarray, w: np.ndarray | float = 1.0) -> None:
        """Sum `w` into channel `ch` at the seconds `sec` (int64 epoch seconds)."""
        if sec.size == 0:
            return
        wa = np.broadcast_to(np.asarray(w, dtype=float), sec.shape)
        for k, sel, off in self._groups(sec):
            self._block(k)[ch] += np.bincount(off, weights=wa[sel], minlength=BLOCK_S)

    def reduce(self, ch: int, sec: np.ndarray, v: np.ndarray) -> None:
        """min (FIRST, FIRST_COLD) or max (LAST_END) of `v` into channel `ch`."""
        if sec.size == 0:
            return
        op = np.maximum if ch == LAST_END else np.minimum
        for k, sel, off in self._groups(sec):
            op.at(self._block(k)[ch], off, v[sel])

    def merge(self, other: SecondBuckets) -> None:
        for k, blk in other.blocks.items():
            mine = self._block(k)
            mine[list(_SUM)] += blk[list(_SUM)]
            mine[FIRST] = np.minimum(mine[FIRST], blk[FIRST])
            mine[FIRST_COLD] = np.minimum(mine[FIRST_COLD], blk[FIRST_COLD])
            mine[LAST_END] = np.maximum(mine[LAST_END], blk[LAST_END])

    def compact(self) -> tuple[np.ndarray, np.ndarray]:
        """(epoch seconds, channels) of the blocks that hold data, in time order: shape (n,) and
        (channels, n). Seconds without data inside a block are there, empty; whole empty blocks
        are left out (the running sums of COVER and CARRY stay right across them)."""
        keys = sorted(self.blocks)
        if not keys:
            return np.zeros(0, dtype=np.int64), np.repeat(_EMPTY[:, None], 0, axis=1)
        secs = np.concatenate([np.arange(k * BLOCK_S, (k + 1) * BLOCK_S) for k in keys])
        return secs, np.concatenate([self.blocks[k] for k in keys], axis=1)


def add_intervals(bk: SecondBuckets, start: np.ndarray, end: np.ndarray) -> None:
    """Busy intervals [start, end) (epoch seconds) into BUSY / COVER / CARRY / LAST_END, so that
    busy(second k) = BUSY[k] + cumsum(COVER)[k] and a request from an earlier second is running
    at some point of second k iff cumsum(CARRY)[k] > 0."""
    ks = np.floor(start).astype(np.int64)
    ke = np.floor(end).astype(np.int64)
    one = ke == ks
    bk.add(BUSY, ks[one], end[one] - start[one])
    many = ~one
    s, e, a, b = start[many], end[many], ks[many], ke[many]
    bk.add(BUSY, a, (a + 1) - s)
    bk.add(BUSY, b, e - b)
    bk.add(COVER, a + 1, 1.0)
    bk.add(COVER, b, -1.0)
    bk.add(CARRY, a + 1, 1.0)
    bk.add(CARRY, b + 1, -1.0)
    bk.reduce(LAST_END, ke, end)


class Sample:
    """A uniform sample of at most `k` rows of `width` floats (bottom-k on seeded uniform keys)."""

    def __init__(self, width: int, rng: np.random.Generator, k: int = SAMPLE_ROWS) -> None:
        self.k, self.rng = k, rng
        self.keys = np.zeros(0)
        self.rows = np.zeros((0, width))
        self.seen = 0
        self._tau = 1.0

    @property
    def complete(self) -> bool:
        """True while the sample holds every row seen."""
        return self.seen <= self.k

    def add(self, rows: np.ndarray) -> None:
        if not rows.shape[0]:
            return
        self.seen += rows.shape[0]
        keys = np.asarray(self.rng.random(rows.shape[0]))
        if self.keys.size >= self.k:  # a key above the k-th smallest can never be kept
            keep = keys < self._tau
            rows, keys = rows[keep], keys[keep]
        self.keys = np.concatenate([self.keys, keys])
        self.rows = np.concatenate([self.rows, rows])
        if self.keys.size > 2 * self.k:
            self._trim()

    def merge(self, other: Sample) -> None:
        self.seen += other.seen
        self.keys = np.concatenate([self.keys, other.keys])
        self.rows = np.concatenate([self.rows, other.rows])
        self._trim()

    def _trim(self) -> None:
        if self.keys.size > self.k:
            keep = np.sort(np.argpartition(self.keys, self.k)[: self.k])
            self.keys, self.rows = self.keys[keep], self.rows[keep]
        self._tau = float(self.keys.max()) if self.keys.size >= self.k else 1.0

    def values(self) -> np.ndarray:
        self._trim()
        return self.rows
