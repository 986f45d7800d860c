"""Columnar per-request records, collected cheaply from a platform's hot loop.

A platform model appends to plain Python lists in `RequestLog` (the fastest append there is) and
hands the log to a `Recorder` every so often; the recorder turns the lists into numpy arrays, keeps
them while the run is small, and past `max_rows` keeps only a log-binned latency histogram (relative
error <= rel_error), running sums and a uniform sample of rows for requests.csv.gz. Either way the
statistics of a replication come out of `Recorder.stats()` in the same shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, THROTTLED, REJECTED, TIMED_OUT, ERROR = 0, 1, 2, 3, 4
OUTCOMES = ("ok", "throttled", "rejected", "timed_out", "error")
# Latency statistics cover requests whose client waited for an answer: ok, timed_out and error (the
# handler failed after its handler time). Throttled and rejected requests fail fast and are counted
# in error_rate instead; error and timed_out count there too.
_LATENCY_OUTCOMES = (OK, TIMED_OUT, ERROR)
# Outcomes listed in the statistics only when they occurred (added later: a run without them keeps
# its summary byte for byte).
OPTIONAL_OUTCOMES = ("error",)
_ERROR_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def handler_errors(arrival: np.ndarray, rate: float, key: int) -> np.ndarray:
    """Which requests' handlers fail (`workload.service.error_rate`): u < rate, u uniform on [0, 1)
    from SplitMix64 (Steele et al. 2014; the finaliser of java.util.SplittableRandom) of the
    request's arrival time (its float64 bits) mixed with `key`, a per-replication draw from the
    workload's service stream. A counter-based draw: the same request fails on every platform
    (common random numbers) without the kernels carrying a flag, and raising the rate only adds
    failures. Requests arriving at the same instant share their draw."""
    m = np.uint64(0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = arrival.astype(np.float64).view(np.uint64) ^ np.uint64(key & int(m))
        z = z + np.uint64(_ERROR_MIX[0])
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_ERROR_MIX[1])
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_ERROR_MIX[2])
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 < rate


PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
# Tail probabilities at which the CCDF is stored for plots (1 down to 1e-6).
# (sorted(set()), not np.unique: numpy 2's unique imports numpy.ma, ~0.03 s of every start-up)
CCDF_PROBS = np.array(
    sorted(set(np.logspace(0, -6, 121).tolist()) | {0.5, 0.1, 0.01, 0.001}), dtype=float
)[::-1]

COLUMNS = (
    "arrival",
    "start",
    "end",
    "wait",
    "startup",
    "service",
    "overhead",
    "cold",
    "outcome",
    "instance",
)


class RequestLog:
    """Append-only buffers for the hot loop. All times in seconds.

    arrival: when the request reached the platform; start: when its handler began (after any
    queueing and cold start); end: when the platform answered or failed it; wait: queueing,
    throttle back-off or scale-up wait; startup: cold start / instantiation; service: handler time
    actually spent (after CPU scaling); overhead: gateway/ingress latency added on the client path.
    Client latency = end - arrival + overhead.
    """

    __slots__ = COLUMNS
    # Declared for type checkers only; __init__ creates the slots with setattr.
    arrival: list[float]
    start: list[float]
    end: list[float]
    wait: list[float]
    startup: list[float]
    service: list[float]
    overhead: list[float]
    cold: list[bool]
    outcome: list[int]
    instance: list[int]

    def __init__(self) -> None:
        for name in COLUMNS:
            setattr(self, name, [])

    def __len__(self) -> int:
        return len(self.arrival)

    def take(self) -> dict[str, np.ndarray]:
        """Move the buffered rows out as arrays and start empty again. np.fromiter with the
        length: the same values as np.asarray, a third less time on a list of Python floats."""
        out = {
            "arrival": _column(self.arrival, np.float64),
            "start": _column(self.start, np.float64),
            "end": _column(self.end, np.float64),
            "wait": _column(self.wait, np.float64),
            "startup": _column(self.startup, np.float64),
            "service": _column(self.service, np.float64),
            "overhead": _column(self.overhead, np.float64),
            "cold": _column(self.cold, np.bool_),
            "outcome": _column(self.outcome, np.uint8),
            "instance": _column(self.instance, np.int64),
        }
        for name in COLUMNS:
            setattr(self, name, [])
        return out


def _column(values: list[Any], dtype: Any) -> np.ndarray:
    return np.fromiter(values, dtype, len(values))


class LogHistogram:
    """Latency histogram on log-spaced bins: any quantile read from it is within rel_error."""

    def __init__(self, rel_error: float, lo_ms: float = 1e-3, hi_ms: float = 1e9) -> None:
        self.lo = lo_ms
        self.growth = (1 + rel_error) / (1 - rel_error)
        self.log_growth = math.log(self.growth)
        self.nbins = math.ceil(math.log(hi_ms / lo_ms) / self.log_growth) + 2
        self.counts = np.zeros(self.nbins, dtype=np.int64)

    def add(self, ms: np.ndarray) -> None:
        idx = np.floor(np.log(np.maximum(ms, self.lo) / self.lo) / self.log_growth).astype(np.int64)
        self.counts += np.bincount(np.minimum(idx, self.nbins - 1), minlength=self.nbins)

    def value_at_rank(self, ranks: np.ndarray) -> np.ndarray:
        """Value of the k-th smallest sample (0-based ranks).

        A bin [lo g^b, lo g^(b+1)) is read as lo 2 g^(b+1) / (g + 1) (DDSketch's estimate): its
        relative error is at most (g - 1)/(g + 1) = rel_error for any sample in the bin.
        """
        cum = np.cumsum(self.counts)
        b = np.searchsorted(cum, np.asarray(ranks) + 1, side="left")
        return self.lo * 2.0 * self.growth ** (b + 1) / (self.growth + 1.0)


@dataclass
class RepStats:
    """What one (replication, platform) run contributes to the summary."""

    requests: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    cold_starts: int = 0
    latency: dict[str, float] = field(default_factory=dict)  # mean, p50.., max (ms)
    latency_ci: dict[str, list[float]] = field(default_factory=dict)  # order-statistic 95% CIs
    ccdf_ms: list[float] = field(default_factory=list)  # latency at CCDF_PROBS
    parts_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # mean/p99 per part
    cold_latency: dict[str, float] = field(default_factory=dict)
    warm_latency: dict[str, float] = field(default_factory=dict)
    exact: bool = True
    requests_all: int = 0  # including warm-up (cost covers the whole window)
    busy_mean: float = 0.0  # time-average requests in start-up or service (M/G/inf check)
    sample: dict[str, np.ndarray] = field(default_factory=dict)  # rows for requests.csv.gz


def _order_stat_ci(n: int, q: float) -> tuple[int, int]:
    """Distribution-free 95% CI for the q-quantile of n samples, as 0-based ranks."""
    lo = _binom_ppf(0.025, n, q) - 1
    hi = _binom_ppf(0.975, n, q)
    return max(lo, 0), min(hi, n - 1)


def _binom_cdf(n: int, q: float) -> tuple[int, np.ndarray]:
    """P(Binomial(n, q) <= k) for k = lo, lo + 1, ... over the window holding all but ~1e-26 of
    the mass (mean +- 40 sd + 40: Bernstein's bound), as (lo, cdf).

    The pmf comes from its ratio pmf(j + 1) / pmf(j) = (n - j) / (j + 1) * q / (1 - q), summed in
    logs from the window's start and normalised by its total, so no lgamma(n) cancels (at n = 5e7
    that would cost ~1e-7 of relative precision). Pure numpy: scipy.special costs ~0.3 s of CPU to
    import, a third of a short `sim run`.
    """
    if q <= 0.0 or n == 0:
        return 0, np.ones(1)
    if q >= 1.0:
        return n, np.ones(1)
    mu, sd = n * q, math.sqrt(n * q * (1.0 - q))
    lo = max(0, math.floor(mu - 40.0 * sd - 40.0))
    hi = min(n, math.ceil(mu + 40.0 * sd + 40.0))
    j = np.arange(lo, hi, dtype=float)  # ratios from j to j + 1
    logw = np.concatenate(([0.0], np.cumsum(np.log((n - j) / (j + 1.0)) + math.log(q / (1 - q)))))
    w = np.exp(logw - logw.max())
    cdf = np.cumsum(w)
    return lo, cdf / cdf[-1]


def _binom_ppf(a: float, n: int, q: float) -> int:
    """scipy.stats.binom.ppf(a, n, q): the smallest k with P(Binomial(n, q) <= k) >= a."""
    lo, cdf = _binom_cdf(n, q)
    return lo + min(int(np.searchsorted(cdf, a, side="left")), cdf.size - 1)


def binom_cdf(k: int, n: int, q: float) -> float:
    """P(Binomial(n, q) <= k) (scipy.stats.binom.cdf), to ~1e-14."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    lo, cdf = _binom_cdf(n, q)
    return 0.0 if k < lo else float(cdf[min(k - lo, cdf.size - 1)])


class Recorder:
    """Collects the rows of one (replication, platform) run; statistics exclude the warm-up."""

    def __init__(
        self,
        warmup: float,
        *,
        max_rows: int,
        rel_error: float,
        sample_rows: int,
        rng: np.random.Generator,
        horizon: float = float("inf"),
        error_rate: float = 0.0,
        error_key: int = 0,
        expected_rows: float = 0.0,
    ) -> None:
        self.warmup = warmup
        self.error_rate, self.error_key = error_rate, error_key
        self.horizon = horizon
        self.busy_seconds = 0.0  # time in start-up or service within [warmup, horizon]
        self.max_rows = max_rows
        self.sample_rows = sample_rows
        self.rng = rng
        # The kept rows, column by column, in arrays made once for the rows the run expects
        # (np.empty: pages are allocated as rows are written, so room to spare costs nothing).
        # Each chunk is copied in and freed: kept as a list joined at the end, the rows were held
        # twice at the peak (1M requests: 235 -> 196 MB; docs/model.md 19.13).
        self._cols: dict[str, np.ndarray] = {}
        expected = expected_rows if math.isfinite(expected_rows) else 0.0
        self._room = int(min(max_rows, max(expected, 0.0) * 1.25 + 65_536))  # the first columns
        self.kept = 0
        self.streaming = False
        self.hist = LogHistogram(rel_error)
        self.hist_cold = LogHistogram(rel_error)
        self.total = 0
        self.counts = np.zeros(len(OUTCOMES), dtype=np.int64)
        self.cold = 0
        self.lat_sum = 0.0
        self.lat_n = 0
        self.lat_max = 0.0
        self.part_sums = {"overhead": 0.0, "wait": 0.0, "startup": 0.0, "service": 0.0}
        self.seen_all = 0  # rows including warm-up, for the requests.csv sample
        self._sample: dict[str, np.ndarray] | None = None  # made once, by sample()

    def add(self, rows: dict[str, np.ndarray]) -> None:
        n_all = rows["arrival"].size
        if n_all == 0:
            return
        if self.error_rate > 0:  # served requests whose handler failed (after its handler time)
            failed = (rows["outcome"] == OK) & handler_errors(
                rows["arrival"], self.error_rate, self.error_key
            )
            if failed.any():
                rows = {
                    **rows,
                    "outcome": np.where(failed, ERROR, rows["outcome"]).astype(np.uint8),
                }
        self.seen_all += n_all
        served = rows["outcome"] != THROTTLED
        busy = np.minimum(rows["end"], self.horizon) - np.maximum(
            rows["start"] - rows["startup"], self.warmup
        )
        self.busy_seconds += float(np.clip(busy[served], 0, None).sum())
        post = rows["arrival"] >= self.warmup
        rows_stat = rows if post.all() else {k: v[post] for k, v in rows.items()}
        n = rows_stat["arrival"].size
        self.total += n
        self.counts += np.bincount(rows_stat["outcome"], minlength=len(OUTCOMES))[: len(OUTCOMES)]
        self.cold += int(rows_stat["cold"].sum())
        outcome = rows_stat["outcome"]
        lat_mask = (outcome == OK) | (outcome == TIMED_OUT) | (outcome == ERROR)
        lat = (
            rows_stat["end"][lat_mask]
            - rows_stat["arrival"][lat_mask]
            + rows_stat["overhead"][lat_mask]
        ) * 1e3
        self.lat_sum += float(lat.sum())
        self.lat_n += lat.size
        if lat.size:
            self.lat_max = max(self.lat_max, float(lat.max()))
        for part in self.part_sums:
            self.part_sums[part] += float(rows_stat[part][lat_mask].sum())
        self.hist.add(lat)
        self.hist_cold.add(lat[rows_stat["cold"][lat_mask]])
        if not self.streaming and self.kept + n_all <= self.max_rows:
            self._keep(rows, n_all)
        else:
            if not self.streaming:
                self.streaming = True
                self._reservoir_init()
            self._reservoir_add(rows)

    def _keep(self, rows: dict[str, np.ndarray], n: int) -> None:
        """Rows appended to the kept columns (the same values and dtypes np.concatenate of the
        chunks gives: a column whose dtype changes is promoted as concatenate would)."""
        cols, k = self._cols, self.kept
        if not cols:
            cols = {c: np.empty(max(self._room, n), v.dtype) for c, v in rows.items()}
        elif k + n > cols["arrival"].size or any(
            cols[c].dtype != np.result_type(cols[c], v) for c, v in rows.items()
        ):
            room = max(cols["arrival"].size, 2 * (k + n))
            grown = {c: np.empty(room, np.result_type(cols[c], v)) for c, v in rows.items()}
            for c, v in grown.items():
                v[:k] = cols[c][:k]
            cols = grown
        for c, v in rows.items():
            cols[c][k : k + n] = v
        self._cols, self.kept = cols, k + n

    def kept_rows(self) -> dict[str, np.ndarray]:
        """The rows kept so far (views of the columns, in the order added), {} without any."""
        return {c: v[: self.kept] for c, v in self._cols.items()} if self.kept else {}

    # Uniform sample of rows once the run is too large to keep (for requests.csv.gz only).
    def _reservoir_init(self) -> None:
        kept = self.kept_rows()
        self._cols = {}
        self.kept = 0
        n = kept["arrival"].size if kept else 0
        # The sample's rows and keys as pieces, joined only at a trim: joining at every flush
        # copied the whole reservoir (~2 x sample_rows rows) once per 65,536 simulated rows.
        self._res_parts = [kept] if kept else []
        self._key_parts = [self.rng.random(n) if n else np.zeros(0)]
        self._res_n = n
        self._reservoir_trim()

    def _reservoir_add(self, rows: dict[str, np.ndarray]) -> None:
        """Bottom-k sampling on uniform keys: a row whose key is above the k-th smallest key seen
        so far can never be in the sample, so most rows are dropped before any copy."""
        keys = self.rng.random(rows["arrival"].size)
        if self._res_n >= self.sample_rows:
            m = keys < self._tau
            if not m.any():
                return
            rows = {k: v[m] for k, v in rows.items()}
            keys = keys[m]
        self._res_parts.append(rows)
        self._key_parts.append(keys)
        self._res_n += keys.size
        if self._res_n > 2 * self.sample_rows:
            self._reservoir_trim()

    def _reservoir_trim(self) -> None:
        res = _concat(self._res_parts)
        keys = np.concatenate(self._key_parts) if len(self._key_parts) > 1 else self._key_parts[0]
        if keys.size > self.sample_rows:
            keep = np.argpartition(keys, self.sample_rows)[: self.sample_rows]
            keep.sort()
            res = {k: v[keep] for k, v in res.items()}
            keys = keys[keep]
        self._res_parts = [res] if res else []
        self._key_parts = [keys]
        self._res_n = keys.size
        self._tau = float(keys.max()) if keys.size >= self.sample_rows else 1.0

    def sample(self) -> dict[str, np.ndarray]:
        """The requests.csv rows (sorted by arrival), drawn once: stats() holds the same. Made
        before the rest of the statistics, they can be sent on meanwhile (sim.simulate)."""
        if self._sample is None:
            if self.streaming:
                self._reservoir_trim()
                self._sample = _sort_by_arrival(_concat(self._res_parts))
            else:
                rows = self.kept_rows()
                self._sample = _downsample(rows, self.sample_rows, self.rng) if rows else {}
        return self._sample

    def stats(self) -> RepStats:
        s = RepStats(
            requests=self.total,
            cold_starts=self.cold,
            exact=not self.streaming,
            requests_all=self.seen_all,
        )
        if math.isfinite(self.horizon) and self.horizon > self.warmup:
            s.busy_mean = self.busy_seconds / (self.horizon - self.warmup)
        s.outcomes = {
            name: int(c)
            for name, c in zip(OUTCOMES, self.counts, strict=True)
            if c or name not in OPTIONAL_OUTCOMES
        }
        n = self.lat_n
        s.sample = self.sample()
        if self.streaming:
            s.latency, s.latency_ci, s.ccdf_ms = self._hist_quantiles(self.hist, n)
            s.cold_latency = self._hist_quantiles(self.hist_cold, int(self.hist_cold.counts.sum()))[
                0
            ]
        else:
            rows = self.kept_rows()
            if rows:
                post = rows["arrival"] >= self.warmup
                ok = post & np.isin(rows["outcome"], _LATENCY_OUTCOMES)
                if not ok.all():  # (usually every row counts: the columns, not copies)
                    rows = {c: rows[c][ok] for c in ("end", "arrival", "cold", *self.part_sums)}
                lat = (rows["end"] - rows["arrival"] + rows["overhead"]) * 1e3
                cold = rows["cold"]
                # Each subset sorted once; all of them is the merge of the two sorted runs
                # (timsort merges two runs in linear time): the same array as sorting `lat`.
                cold_srt, warm_srt = np.sort(lat[cold]), np.sort(lat[~cold])
                srt = np.sort(np.concatenate([warm_srt, cold_srt]), kind="stable")
                s.latency, s.latency_ci, s.ccdf_ms = _sorted_quantiles(srt)
                s.cold_latency = _sorted_quantiles(cold_srt)[0]
                s.warm_latency = _sorted_quantiles(warm_srt)[0]
                s.parts_ms = {part: _part_ms(rows[part]) for part in self.part_sums}
        if n:
            s.latency["mean"] = self.lat_sum / n
            s.latency["max"] = self.lat_max
            if not s.parts_ms:
                s.parts_ms = {p: {"mean": v / n * 1e3} for p, v in self.part_sums.items()}
        return s

    @staticmethod
    def _hist_quantiles(h: LogHistogram, n: int) -> tuple[dict, dict, list]:
        if n == 0:
            return {}, {}, []
        out, ci = {}, {}
        for name, p in PERCENTILES.items():
            q = p / 100
            out[name] = float(h.value_at_rank(np.array([_rank(n, q)]))[0])
            lo, hi = _order_stat_ci(n, q)
            ci[name] = [float(x) for x in h.value_at_rank(np.array([lo, hi]))]
        ranks = np.array([_rank(n, 1 - p) for p in CCDF_PROBS])
        return out, ci, [float(x) for x in h.value_at_rank(ranks)]


def _rank(n: int, q: float) -> int:
    return min(max(math.ceil(q * n) - 1, 0), n - 1)


def _part_ms(seconds: np.ndarray) -> dict[str, float]:
    """A latency part's mean and p99 in ms (0 without requests)."""
    if not seconds.size:
        return {"mean": 0.0, "p99": 0.0}
    return {
        "mean": float(seconds.mean() * 1e3),
        "p99": float(np.percentile(seconds, 99) * 1e3),
    }


def _sorted_quantiles(srt: np.ndarray) -> tuple[dict, dict, list]:
    """Percentiles with their order-statistic CIs, mean, max and CCDF of sorted latencies."""
    n = srt.size
    if n == 0:
        return {}, {}, []
    out, ci = {}, {}
    for name, p in PERCENTILES.items():
        q = p / 100
        out[name] = float(srt[_rank(n, q)])
        lo, hi = _order_stat_ci(n, q)
        ci[name] = [float(srt[lo]), float(srt[hi])]
    out["mean"] = float(srt.mean())
    out["max"] = float(srt[-1])
    ccdf = [float(srt[_rank(n, 1 - p)]) for p in CCDF_PROBS]
    return out, ci, ccdf


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    chunks = [c for c in chunks if c]
    if not chunks:
        return {}
    if len(chunks) == 1:
        return chunks[0]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _sort_by_arrival(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not rows:
        return {}
    order = np.argsort(rows["arrival"], kind="stable")
    return {k: v[order] for k, v in rows.items()}


def _downsample(rows: dict[str, np.ndarray], k: int, rng: np.random.Generator) -> dict:
    n = rows["arrival"].size
    if n <= k:
        return _sort_by_arrival(rows)
    keep = np.sort(rng.choice(n, size=k, replace=False))
    return _sort_by_arrival({c: v[keep] for c, v in rows.items()})
