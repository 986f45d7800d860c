"""What the report plots, computed from a results folder's contents (never by re-simulating).

Statistics (percentiles, the CCDF, cost) come from summary.json as they are. The request sample
(requests.csv.gz) is used only for pictures that need individual requests: latency per time bucket,
the make-up of the slowest requests, and CI bands when the sample holds every request.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from plotly.colors import qualitative

from sim.statistics import t_ppf_975

if TYPE_CHECKING:
    from sim.results import Results

# Outcomes whose latency the statistics cover (sim.records._LATENCY_OUTCOMES, by name).
LATENCY_OUTCOMES = ("ok", "timed_out", "error")
PARTS = ("overhead", "wait", "startup", "service")
PALETTE = qualitative.Plotly
# Points kept per series for the scatter of slow requests (plots only; never the statistics).
MAX_SCATTER_POINTS = 1500
# Aim for this many sampled requests per time bucket (a p99 needs a few hundred to mean anything).
ROWS_PER_BUCKET = 300


def esc(text: Any) -> str:
    """HTML-escape a user-provided string (plotly renders a subset of HTML in labels)."""
    return html.escape(str(text), quote=True)


@dataclass
class Series:
    """One line in every figure: a platform of one results folder."""

    label: str  # raw, e.g. "lambda" or "campaign/lambda"; escape before display
    platform: str
    stats: dict[str, Any]  # summary["platforms"][platform]
    results: Results
    color: str

    @property
    def text(self) -> str:
        return esc(self.label)

    @property
    def replications(self) -> int:
        return int(self.results.summary.get("replications") or 1)

    @property
    def warmup(self) -> float:
        return float(self.results.summary.get("warmup_s") or 0.0)

    @property
    def duration(self) -> float:
        return float(self.results.summary.get("duration_s") or 0.0)

    # Cached: every figure asks for the same platform's rows.
    @cached_property
    def _requests(self) -> pd.DataFrame:
        return _rows_of(self.results.requests, self.platform)

    def requests(self) -> pd.DataFrame:
        return self._requests

    def timeline(self) -> pd.DataFrame:
        return _rows_of(self.results.timeline, self.platform)

    def decisions(self) -> pd.DataFrame:
        return _rows_of(self.results.decisions, self.platform)

    @cached_property
    def ccdf(self) -> Ccdf | None:
        return ccdf_of(self)

    def served_per_replication(self) -> float:
        """Requests whose latency counts (ok + timed_out + error) per replication, after warm-up."""
        failed = self.stats.get("failed") or {}
        served = (
            (self.stats.get("completed") or 0)
            + (failed.get("timed_out") or 0)
            + (failed.get("error") or 0)
        )
        return served / self.replications


def _rows_of(df: pd.DataFrame, platform: str) -> pd.DataFrame:
    if df.empty or "platform" not in df:
        return df
    return df[df["platform"] == platform]


def series_of(results: list[Results], labels: list[str] | None) -> list[Series]:
    """Flatten results into series; with several results, labels read `label/platform`."""
    prefixes = labels if labels is not None else default_labels(results)
    out: list[Series] = []
    for res, prefix in zip(results, prefixes, strict=True):
        for name, stats in (res.summary.get("platforms") or {}).items():
            label = name if len(results) == 1 else f"{prefix}/{name}"
            out.append(Series(label, name, stats, res, PALETTE[len(out) % len(PALETTE)]))
    return out


def default_labels(results: list[Results]) -> list[str]:
    """Scenario names; a name seen twice falls back to the folder name, then gets a number."""
    names = [str(r.summary.get("scenario") or "results") for r in results]
    out = []
    for r, n in zip(results, names, strict=True):
        if names.count(n) > 1 and r.folder is not None:
            n = r.folder.name
        out.append(n)
    seen: dict[str, int] = {}
    for i, n in enumerate(out):
        seen[n] = seen.get(n, 0) + 1
        if out.count(n) > 1:
            out[i] = f"{n}#{seen[n]}"
    return out


# --- the tail --------------------------------------------------------------------------------


@dataclass
class Ccdf:
    prob: np.ndarray  # tail probabilities, descending
    ms: np.ndarray  # latency exceeded with that probability (mean over replications)
    lo: np.ndarray | None  # 95% CI across replications, per probability
    hi: np.ndarray | None
    band_source: str  # where the band came from, for the caption ("" when there is none)


def ccdf_of(s: Series) -> Ccdf | None:
    """The summary's CCDF, cut where the tail probability drops below 1/n: past that point it
    only repeats the maximum, which would draw a misleading vertical line down to 1e-6."""
    c = s.stats.get("latency_ccdf") or {}
    prob = np.asarray(c.get("prob") or [], dtype=float)
    ms = np.asarray(c.get("ms") or [], dtype=float)
    n = s.served_per_replication()
    if prob.size == 0 or ms.size != prob.size or n < 1:
        return None
    keep = prob >= 1.0 / n
    per_rep, source = _per_replication_ccdf(s, prob)
    lo = hi = None
    if per_rep is not None and per_rep.shape[0] >= 2:
        lo, hi = _t_band(per_rep)
        lo, hi = lo[keep], hi[keep]
    else:
        source = ""
    return Ccdf(prob[keep], ms[keep], lo, hi, source)


def _per_replication_ccdf(s: Series, prob: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Per-replication CCDFs: from summary.json when it carries them, else from the request
    sample when that sample holds every request after warm-up (then it is exact)."""
    by_rep = (s.stats.get("latency_ccdf") or {}).get("ms_by_replication")
    if by_rep:
        arr = np.asarray(by_rep, dtype=float)
        if arr.ndim == 2 and arr.shape[1] == prob.size:
            return arr, "summary.json (per replication)"
    df = s.requests()
    if df.empty or "replication" not in df:
        return None, ""
    post = df.loc[df["arrival_s"] >= s.warmup, ["replication", "outcome", "latency_ms"]]
    if len(post) != int(s.stats.get("requests") or -1):
        return None, ""  # a sample: per-replication tails from it would not be exact
    rows = []
    for _, g in post.groupby("replication", sort=True):
        lat = np.sort(g.loc[g["outcome"].isin(LATENCY_OUTCOMES), "latency_ms"].to_numpy(float))
        if lat.size == 0:
            return None, ""
        # The rank rule of sim.records (_rank): the ceil((1-p) n)-th smallest latency.
        rank = np.clip(np.ceil((1 - prob) * lat.size).astype(np.int64) - 1, 0, lat.size - 1)
        rows.append(lat[rank])
    if len(rows) != s.replications:
        return None, ""
    return np.vstack(rows), "requests.csv.gz (every request)"


def _t_band(per_rep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Student-t 95% interval across replications at each tail probability (as sim.statistics)."""
    r = per_rep.shape[0]
    mean = per_rep.mean(axis=0)
    half = t_ppf_975(r - 1) * per_rep.std(axis=0, ddof=1) / math.sqrt(r)
    return mean - half, mean + half


# --- where the tail comes from ---------------------------------------------------------------


def parts_of(s: Series) -> tuple[dict[str, float], dict[str, float] | None, int]:
    """Mean of each latency part over all requests (summary.json), and over the slowest 1% of
    the request sample (None when the sample has fewer than 100 requests after warm-up)."""
    summary_parts = s.stats.get("latency_parts_ms") or {}
    mean_all = {p: float((summary_parts.get(p) or {}).get("mean") or 0.0) for p in PARTS}
    df = _served(s)
    cols = [f"{p}_ms" for p in PARTS]
    if len(df) < 100 or not all(c in df for c in cols):
        return mean_all, None, 0
    cut = np.percentile(df["latency_ms"].to_numpy(float), 99)
    slow = df[df["latency_ms"] >= cut]
    return mean_all, {p: float(slow[f"{p}_ms"].mean()) for p in PARTS}, len(slow)


def _served(s: Series) -> pd.DataFrame:
    df = s.requests()
    if df.empty:
        return df
    return df[(df["arrival_s"] >= s.warmup) & df["outcome"].isin(LATENCY_OUTCOMES)]


# --- over time -------------------------------------------------------------------------------


def latency_buckets(s: Series, duration: float) -> pd.DataFrame:
    """p50 and p99 of sampled latencies per time bucket (by arrival), all replications pooled."""
    df = s.requests()
    if df.empty or duration <= 0:
        return pd.DataFrame(columns=["t", "p50", "p99", "n"])
    df = df[df["outcome"].isin(LATENCY_OUTCOMES)]
    nb = int(np.clip(len(df) // ROWS_PER_BUCKET, 10, 120))
    width = duration / nb
    b = np.minimum((df["arrival_s"].to_numpy(float) // width).astype(np.int64), nb - 1)
    g = df["latency_ms"].groupby(b)
    out = pd.DataFrame(
        {"p50": g.quantile(0.5), "p99": g.quantile(0.99), "n": g.size()}
    ).reset_index(names="bucket")
    out["t"] = (out["bucket"] + 0.5) * width
    return out[out["n"] >= 20]


def slow_requests(s: Series) -> pd.DataFrame:
    """Sampled requests slower than the platform's p99, thinned evenly to a plottable number."""
    df = s.requests()
    p99 = (s.stats.get("latency_ms") or {}).get("p99")
    if df.empty or p99 is None:
        return df.iloc[0:0]
    slow = df[df["outcome"].isin(LATENCY_OUTCOMES) & (df["latency_ms"] > p99)]
    if len(slow) > MAX_SCATTER_POINTS:
        slow = slow.iloc[np.linspace(0, len(slow) - 1, MAX_SCATTER_POINTS).astype(int)]
    return slow.sort_values("arrival_s")


def first_replication(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the lowest replication number: one run shown as it happened (decisions line up
    with the instance counts they changed, which a mean over replications would blur)."""
    if df.empty or "replication" not in df:
        return df
    return df[df["replication"] == df["replication"].min()]


def timeline_of(s: Series) -> pd.DataFrame:
    """The first replication's timeline, one row per sample time, with arrivals per second."""
    tl = first_replication(s.timeline())
    if tl.empty or "time_s" not in tl:
        return tl
    tl = tl.groupby("time_s", as_index=False).last()  # a time sampled twice keeps its last row
    if "arrivals" in tl and len(tl) > 1:
        step = np.diff(tl["time_s"].to_numpy(float), prepend=np.nan)
        tl["arrival_rate"] = tl["arrivals"].to_numpy(float) / step
        tl.loc[~np.isfinite(tl["arrival_rate"]), "arrival_rate"] = np.nan
    return tl


def time_unit(duration_s: float) -> tuple[str, float]:
    """A readable unit for the time axis and its length in seconds."""
    if duration_s <= 900:
        return "s", 1.0
    if duration_s <= 48 * 3600:
        return "min", 60.0
    return "h", 3600.0


# --- the bill --------------------------------------------------------------------------------


def bill_lines(s: Series) -> tuple[dict[str, float], dict[str, float], float | None]:
    """Monthly cloud-bill lines, monthly operating lines, and the factor turning a monthly
    amount into dollars per million requests (None when the bill is zero).

    Every line's monthly figure is its window cost times the same window-to-month factor, so
    cost_per_million / monthly_cost converts any monthly line to its share per million requests.
    """
    monthly = {k: float(v) for k, v in (s.stats.get("monthly_breakdown_usd") or {}).items()}
    operating = {k: float(v) for k, v in (s.stats.get("operating_breakdown_usd") or {}).items()}
    total = s.stats.get("monthly_cost_usd") or 0.0
    per_m = s.stats.get("cost_per_million_usd")
    factor = per_m / total if per_m is not None and total > 0 else None
    return monthly, operating, factor
