"""Readers: one per input format, each streaming its file into compact columns.

Formats (`FORMATS`; `detect()` picks one from the first 64 KB, or the user says `--format`):

- `lambda`: CloudWatch Logs of an AWS Lambda function, plain text (`aws logs tail`, console
  export: REPORT lines, optionally prefixed by an ISO time and the log stream) or the JSON log
  format (`platform.report` records, one JSON object per line). REPORT gives Duration, Billed
  Duration, Memory Size, Max Memory Used, Init Duration (cold start) and `Status: timeout|error`;
  "Task timed out after" lines mark timeouts too. The REPORT time is the invocation's end, so
  arrival = time - Duration - Init Duration.
- `lambda-events`: `aws logs filter-log-events` JSON (`events[].timestamp/message/logStreamName`);
  each message is parsed as above; the log stream names the execution environment.
- `lambda-insights`: a CloudWatch Logs Insights CSV export, with `@timestamp` and either
  `@message` (the raw REPORT line) or the discovered fields `@duration`, `@billedDuration`, ...
- `alb`: ALB access logs (AWS's space-separated format); arrival = request_creation_time, handler
  time = target_processing_time (-1 when no target answered: an error without a handler time).
- `nginx`: access logs in the user's `log_format` (given with --log-format); it must contain
  `$request_time` (or `$upstream_response_time`) and a time (`$time_local`, `$time_iso8601` or
  `$msec`); nginx logs at the end, so arrival = time - $request_time.
- `envoy`: Envoy's default access-log format; arrival = START_TIME, handler time =
  x-envoy-upstream-service-time (else DURATION).
- `k6`: `k6 run --out json` lines; `http_req_duration` Points (arrival = time - value).
- `prometheus`: `/api/v1/query_range` JSON: a rate series (arrival rate over time) or histogram
  buckets (series with an `le` label; per-step increments or rates, summed over time).
- `power-tuning`: AWS Lambda Power Tuning's output (`results.stats[]`: value = memory MB,
  averageDuration = ms).
- `azure2021`: the Azure Functions 2021 per-invocation trace (`app,func,end_timestamp,duration`).

Requests are summarised as they are read, in memory bounded by the logs' time span, not their
length (`Requests`, sim.fit.stream); times are UTC epoch seconds; the summaries do not depend on
the order of the rows (exports are not always in order).
"""

from __future__ import annotations

import csv
import json
import math
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.fit.io import Tally, json_items, lines, sniff
from sim.fit.stream import (
    ARRIVALS,
    COLD,
    FIRST,
    FIRST_COLD,
    REL_ERROR,
    SAMPLE_ROWS,
    Sample,
    SecondBuckets,
    add_intervals,
)
from sim.records import LogHistogram

FORMATS = (
    "lambda",
    "lambda-events",
    "lambda-insights",
    "alb",
    "nginx",
    "envoy",
    "k6",
    "prometheus",
    "power-tuning",
    "azure2021",
)
OK, ERROR, TIMEOUT = 0, 1, 2

# --------------------------------------------------------------------------------------------
# Time


_ISO = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$"
)
_CLF = re.compile(r"^(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d)(?: ([+-]\d{4}))?$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


def parse_time(text: str) -> float:
    """ISO 8601 (any fraction, Z or offset; no zone = UTC), CLF `10/Oct/2000:13:55:36 -0700`, or
    epoch seconds / milliseconds -> UTC epoch seconds. ValueError when it is none of them."""
    s = text.strip().strip("[]")
    if m := _ISO.match(s):
        day, hms, frac, zone = m.groups()
        if hms.count(":") == 1:
            hms += ":00"
        zone = "+00:00" if zone in (None, "Z") else zone
        if ":" not in zone:
            zone = zone[:3] + ":" + zone[3:]
        base = datetime.fromisoformat(f"{day}T{hms}{zone}").timestamp()
        return base + (float("0." + frac) if frac else 0.0)
    if m := _CLF.match(s):
        d, mon, y, hh, mm, ss, zone = m.groups()
        if mon not in _MONTHS:
            raise ValueError(f"unknown month {mon!r}")
        tz = timezone.utc
        if zone:
            sign = 1 if zone[0] == "+" else -1
            from datetime import timedelta

            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
        return datetime(
            int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss), tzinfo=tz
        ).timestamp()
    x = float(s)
    if not math.isfinite(x):
        raise ValueError("not a finite time")
    return x / 1000.0 if x > 1e11 else x  # epoch milliseconds (CloudWatch) or seconds


# --------------------------------------------------------------------------------------------
# What readers produce


FLUSH_ROWS = 1 << 16  # rows buffered before they are summarised
# rows kept in the buffer after a flush, so a "Task timed out" line that comes after its REPORT
# line (exports sorted newest first) still finds it
TAIL_ROWS = 4096
MAX_MEMORY_MB = 10240  # Lambda's largest memory size: Max Memory Used is counted per MB up to it
_COLS = ("arrival", "duration_ms", "status", "init_ms", "billed_ms", "max_memory_mb", "stream")
_TYPES = ("d", "d", "b", "d", "d", "d", "i")


class Requests:
    """Per-request observations, summarised as they come in bounded memory (sim.fit.stream).

    A reader calls `add()` per request; rows wait in a buffer of FLUSH_ROWS and are then folded
    into per-second buckets, a uniform sample of SAMPLE_ROWS rows (handler time, latency), log
    histograms (percentiles within 0.1%), sums and counters, and per-log-stream (execution
    environment) bookkeeping. `keep_rows=True` also keeps every row (`columns()`), for tests and
    inspection only. Arrival times are kept exactly up to SAMPLE_ROWS requests (the replay trace
    uses them); above that the trace is built from the per-second counts.
    """

    def __init__(
        self,
        file: str = "",
        seed: int = 0,
        keep_rows: bool = False,
        sample_rows: int = SAMPLE_ROWS,
    ) -> None:
        self.file = file
        rng = np.random.default_rng(np.random.SeedSequence([seed, 20]))
        self.buf = {c: array(t) for c, t in zip(_COLS, _TYPES, strict=True)}
        self._arrival = self.buf["arrival"]
        # bound appends: the buffers stay in place (a flush deletes their head)
        self._append: tuple[Callable[[Any], None], ...] = tuple(self.buf[c].append for c in _COLS)
        self.buf_ids: dict[str, int] = {}
        self.memory_sizes: Counter = Counter()
        self.streams: dict[str, int] = {}
        self.timeout_after_s: float | None = None  # from "Task timed out after X seconds"
        self.n = 0
        self.status_counts = np.zeros(3, dtype=np.int64)
        self.t_min, self.t_max = math.inf, -math.inf
        self.exact_arrival: array | None = array("d")
        self.buckets = SecondBuckets(file)
        # (handler ms as fitted, latency ms) of the requests that log a handler time
        self.times = Sample(2, rng, sample_rows)
        self.handler_hist = LogHistogram(REL_ERROR)
        self.latency_hist = LogHistogram(REL_ERROR)
        self.init = Sample(1, rng, sample_rows)
        self.init_hist = LogHistogram(REL_ERROR)
        self.cold = 0
        self.busy_s = 0.0
        self.handler_max_ms = -math.inf
        self.timeout_max_ms = -math.inf
        self.billed_n, self.billed_sum, self.billed_sq = 0, 0.0, 0.0
        self.init_billed_ms = 0.0
        self.used_mb = np.zeros(MAX_MEMORY_MB + 1, dtype=np.int64)
        # per log stream: [first arrival, last arrival, end of the last, longest warm reuse]
        self.stream_state: dict[int, list[float]] = {}
        self.unordered_streams = 0
        self.kept: list[dict[str, np.ndarray]] | None = [] if keep_rows else None

    def add(
        self,
        arrival: float,
        duration_ms: float,
        status: int = OK,
        init_ms: float = math.nan,
        billed_ms: float = math.nan,
        max_memory_mb: float = math.nan,
        stream: str | None = None,
        rid: str | None = None,
    ) -> None:
        if rid:
            self.buf_ids[rid] = len(self._arrival)
        ap = self._append
        ap[0](arrival)
        ap[1](duration_ms)
        ap[2](status)
        ap[3](init_ms)
        ap[4](billed_ms)
        ap[5](max_memory_mb)
        ap[6](-1 if stream is None else self.streams.setdefault(stream, len(self.streams)))
        if len(self._arrival) >= FLUSH_ROWS:
            self._flush(FLUSH_ROWS - TAIL_ROWS)

    def mark_timeout(self, rid: str) -> bool:
        """Set a buffered request's status to timeout; False when it is not in the buffer."""
        i = self.buf_ids.get(rid)
        if i is None:
            return False
        self.buf["status"][i] = TIMEOUT
        return True

    def __len__(self) -> int:
        return self.n + len(self._arrival)

    def finish(self) -> Requests:
        self._flush(len(self._arrival))
        return self

    def _flush(self, m: int) -> None:
        """Fold the first `m` buffered rows into the summaries; keep the rest buffered."""
        if m <= 0:
            return
        b = self.buf
        rows = {
            c: np.frombuffer(b[c], dtype=np.dtype(t if t != "b" else "i1"))[:m].copy()
            for c, t in zip(_COLS, _TYPES, strict=True)
        }
        for c in _COLS:
            del b[c][:m]
        self.buf_ids = {k: i - m for k, i in self.buf_ids.items() if i >= m}
        if self.kept is not None:
            self.kept.append(rows)
        self._summarise(rows)

    def _summarise(self, r: dict[str, np.ndarray]) -> None:
        a, dur, st, init = r["arrival"], r["duration_ms"], r["status"], r["init_ms"]
        self.n += a.size
        self.status_counts += np.bincount(st, minlength=3)[:3]
        self.t_min, self.t_max = min(self.t_min, float(a.min())), max(self.t_max, float(a.max()))
        if self.exact_arrival is not None:
            if self.n <= self.times.k:
                self.exact_arrival.extend(a)
            else:
                self.exact_arrival = None
        d0, i0 = np.nan_to_num(dur), np.nan_to_num(init)
        busy = (d0 + i0) / 1e3
        self.busy_s += float(busy.sum())
        cold = np.isfinite(init)
        self.cold += int(cold.sum())
        sec = np.floor(a).astype(np.int64)
        bk = self.buckets
        bk.add(ARRIVALS, sec)
        bk.add(COLD, sec[cold])
        bk.reduce(FIRST, sec, a)
        bk.reduce(FIRST_COLD, sec[cold], a[cold])
        add_intervals(bk, a, a + busy)
        fin = np.isfinite(dur)
        if fin.any():
            # A timed-out invocation ran at least until the timeout (its time is censored
            # there): it enters the sample just above its logged time, so the simulation times
            # it out too.
            handler = np.where(st == TIMEOUT, dur * 1.001, dur)[fin]
            lat = (dur + i0)[fin]
            self.times.add(np.column_stack([handler, lat]))
            self.handler_hist.add(handler)
            self.latency_hist.add(lat)
            self.handler_max_ms = max(self.handler_max_ms, float(dur[fin].max()))
            tout = fin & (st == TIMEOUT)
            if tout.any():
                self.timeout_max_ms = max(self.timeout_max_ms, float(dur[tout].max()))
        if cold.any():
            self.init.add(init[cold][:, None])
            self.init_hist.add(init[cold])
        billed = r["billed_ms"]
        bf = np.isfinite(billed)
        self.billed_n += int(bf.sum())
        self.billed_sum += float(billed[bf].sum())
        self.billed_sq += float((billed[bf] ** 2).sum())
        # INIT billed apart when the REPORT's Billed Duration does not already include it.
        apart = cold & (np.nan_to_num(billed) < d0 + i0 - 1)
        self.init_billed_ms += float(np.ceil(init[apart] - 1e-9).sum())
        used = r["max_memory_mb"]
        uf = np.isfinite(used)
        if uf.any():
            mb = np.clip(np.floor(used[uf]), 0, MAX_MEMORY_MB).astype(np.int64)
            self.used_mb += np.bincount(mb, minlength=MAX_MEMORY_MB + 1)
        self._streams(r["stream"], a, a + busy)

    def _streams(self, sid: np.ndarray, a: np.ndarray, e: np.ndarray) -> None:
        """Longest warm reuse per execution environment (log stream): within one stream every
        reuse is warm. Rows are ordered within the chunk; across chunks a stream's rows must come
        in time order or reversed (CloudWatch keeps a stream in order), else the gap between two
        chunks is not counted (`unordered_streams`)."""
        has = sid >= 0
        if not has.any():
            return
        sid, a, e = sid[has], a[has], e[has]
        order = np.lexsort((a, sid))
        sid, a, e = sid[order], a[order], e[order]
        cut = np.flatnonzero(np.diff(sid)) + 1
        for lo, hi in zip(np.r_[0, cut], np.r_[cut, sid.size], strict=True):
            ga, ge = a[lo:hi], e[lo:hi]
            longest = float(np.max(ga[1:] - ge[:-1])) if hi - lo > 1 else 0.0
            k = int(sid[lo])
            s = self.stream_state.get(k)
            if s is None:
                self.stream_state[k] = [float(ga[0]), float(ga[-1]), float(ge[-1]), longest]
                continue
            first, last, last_end, best = s
            if ga[0] >= last:
                longest = max(longest, float(ga[0]) - last_end)
                s[1], s[2] = float(ga[-1]), float(ge[-1])
            elif ga[-1] <= first:
                longest = max(longest, first - float(ge[-1]))
                s[0] = float(ga[0])
            else:
                self.unordered_streams += 1
            s[3] = max(best, longest)

    def merge(self, other: Requests) -> None:
        """Add another file's summaries (both finished); its streams are renamed apart."""
        base = len(self.streams)
        for k, v in other.streams.items():
            self.streams[f"{len(self.streams)}:{k}"] = v + base
        for sid, state in other.stream_state.items():
            self.stream_state[sid + base] = state
        self.unordered_streams += other.unordered_streams
        self.memory_sizes.update(other.memory_sizes)
        self.timeout_after_s = self.timeout_after_s or other.timeout_after_s
        self.n += other.n
        self.status_counts += other.status_counts
        self.t_min, self.t_max = min(self.t_min, other.t_min), max(self.t_max, other.t_max)
        if (
            self.exact_arrival is not None
            and other.exact_arrival is not None
            and self.n <= self.times.k
        ):
            self.exact_arrival.extend(other.exact_arrival)
        else:
            self.exact_arrival = None
        self.buckets.merge(other.buckets)
        self.times.merge(other.times)
        self.init.merge(other.init)
        for h in ("handler_hist", "latency_hist", "init_hist"):
            getattr(self, h).counts += getattr(other, h).counts
        self.cold += other.cold
        self.busy_s += other.busy_s
        self.handler_max_ms = max(self.handler_max_ms, other.handler_max_ms)
        self.timeout_max_ms = max(self.timeout_max_ms, other.timeout_max_ms)
        self.billed_n += other.billed_n
        self.billed_sum += other.billed_sum
        self.billed_sq += other.billed_sq
        self.init_billed_ms += other.init_billed_ms
        self.used_mb += other.used_mb
        if self.kept is not None:
            self.kept.extend(other.kept or [])

    def columns(self) -> dict[str, np.ndarray]:
        """Every row, sorted by arrival (stable); only with keep_rows=True."""
        if self.kept is None:
            raise RuntimeError("Requests(keep_rows=True) keeps rows; this one summarises only")
        self.finish()
        cols = {c: np.concatenate([k[c] for k in self.kept]) for c in _COLS}
        order = np.argsort(cols["arrival"], kind="stable")
        return {k: v[order] for k, v in cols.items()}


@dataclass
class RateSeries:
    """A request rate over time (Prometheus): rate[i] holds over [t[i], t[i] + step)."""

    t: np.ndarray
    rate: np.ndarray
    step: float


@dataclass
class Histogram:
    """Cumulative counts at bucket upper bounds (seconds); the last bound may be +Inf."""

    le: np.ndarray
    cumulative: np.ndarray


@dataclass
class PowerTuning:
    memory_mb: np.ndarray
    duration_ms: np.ndarray


@dataclass
class Observed:
    """Everything read from one input file."""

    file: str
    format: str
    tally: Tally
    requests: Requests | None = None
    rate: RateSeries | None = None
    histogram: Histogram | None = None
    power: PowerTuning | None = None
    platform: str | None = None  # "lambda" when the logs come from Lambda
    seed: int = 0  # of the row sample (sim.fit.stream.Sample)
    keep_rows: bool = False

    def start_requests(self) -> Requests:
        self.requests = Requests(self.file, self.seed, self.keep_rows)
        return self.requests


# --------------------------------------------------------------------------------------------
# Detection


_ALB_LINE = re.compile(r"^(?:http|https|h2|grpcs|ws|wss) \d{4}-\d\d-\d\dT\S+ \S+ ")
_ENVOY_LINE = re.compile(r'^\[\d{4}-\d\d-\d\dT[^\]]+\] "')
_CLF_LINE = re.compile(r"^\S+ \S+ \S+ \[\d\d/\w{3}/\d{4}:")


def detect(path: Path, log_format: str | None = None) -> str:
    """The format of `path`, from its content."""
    text = sniff(path)
    head = text.lstrip("\ufeff \t\r\n")
    first = next((ln for ln in head.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if head.startswith(("{", "[")):
        if '"resultType"' in head or re.match(r'^\{\s*"status"\s*:\s*"error"', head):
            return "prometheus"  # an answer, or the API's error envelope
        if '"events"' in head and '"message"' in head:
            return "lambda-events"
        if '"results"' in head and ('"stats"' in head or '"power"' in head):
            return "power-tuning"
        if re.match(r'^\{\s*"type"\s*:\s*"(?:Point|Metric)"', first):
            return "k6"
        if '"platform.' in head:
            return "lambda"
    if first.replace('"', "").startswith("@timestamp") or ("@timestamp" in first and "," in first):
        return "lambda-insights"
    if first.strip().startswith("app,func,end_timestamp,duration"):
        return "azure2021"
    if "REPORT RequestId:" in head or '"platform.report"' in head:
        return "lambda"
    if _ALB_LINE.match(first):
        return "alb"
    if _ENVOY_LINE.match(first):
        return "envoy"
    if log_format is not None:
        return "nginx"
    if _CLF_LINE.match(first):
        raise InputError(
            "this looks like an nginx/Apache access log: give its log_format with --log-format "
            "(it must contain $request_time)",
            file=str(path),
        )
    raise InputError(
        "unrecognised content: expected Lambda REPORT lines or JSON logs, a filter-log-events "
        "or Logs Insights export, ALB/nginx/Envoy access logs, k6 JSON, Prometheus query_range "
        "JSON, a Power Tuning result or an Azure 2021 trace (or say --format); line 1 reads "
        f"{first[:80]!r}",
        file=str(path),
    )


def read(
    path: Path,
    fmt: str | None = None,
    log_format: str | None = None,
    *,
    seed: int = 0,
    keep_rows: bool = False,
) -> Observed:
    """Read one file; request logs come back summarised (`Observed.requests`, finished), with
    every row too when `keep_rows`. `seed` seeds the row sample (give each file its own)."""
    fmt = fmt or detect(path, log_format)
    if fmt not in READERS:
        raise InputError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}", key="--format")
    sniff(path)  # empty / binary / corrupt gzip: refused before reading
    tally = Tally(str(path))
    obs = Observed(str(path), fmt, tally, seed=seed, keep_rows=keep_rows)
    if fmt == "nginx":
        if not log_format:
            raise InputError("format nginx needs --log-format", key="--log-format")
        _read_nginx(path, obs, log_format)
    else:
        READERS[fmt](path, obs)
    if obs.requests is not None:
        obs.requests.finish()
    return obs


# --------------------------------------------------------------------------------------------
# AWS Lambda


_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_REPORT = re.compile(
    r"REPORT RequestId:\s*(?P<id>\S+)\s+Duration:\s*" + _NUM.replace("(", "(?P<dur>", 1) + r" ms"
    r"\s+Billed Duration:\s*" + _NUM.replace("(", "(?P<billed>", 1) + r" ms"
    r"\s+Memory Size:\s*(?P<mem>[0-9]+) MB\s+Max Memory Used:\s*(?P<used>[0-9]+) MB"
    r"(?:\s+Init Duration:\s*" + _NUM.replace("(", "(?P<init>", 1) + r" ms)?"
    r"(?:\s+Restore Duration:\s*[0-9.]+ ms)?"
    r"(?:\s+Billed Restore Duration:\s*[0-9.]+ ms)?"
    r"(?:\s+Status:\s*(?P<status>\w+))?"
)
_TIMED_OUT = re.compile(
    r"(?:(?P<id>\w{8}-[\w-]{20,})\s+)?Task timed out after ([0-9]+(?:\.[0-9]+)?) seconds"
)
_PREFIX_TIME = re.compile(r"^\s*(\d{4}-\d\d-\d\d[T ][0-9:.,]+(?:Z|[+-]\d\d:?\d\d)?)\s+(.*)$")
_STATUS = {"success": OK, "timeout": TIMEOUT, "error": ERROR, "failure": ERROR}


class _LambdaParser:
    """Parses Lambda messages (REPORT text or JSON records) into a Requests table."""

    def __init__(self, obs: Observed) -> None:
        self.obs = obs
        self.req = obs.start_requests()
        self.timed_out: set[str] = set()  # ids of "Task timed out" lines whose REPORT is to come
        obs.platform = "lambda"

    def message(self, line_no: int, msg: str, when: float | None, stream: str | None) -> None:
        t = self.obs.tally
        if "Task timed out after" in msg:
            m = _TIMED_OUT.search(msg)
            if m:
                rid = m.group("id")
                if rid and not self.req.mark_timeout(rid):
                    self.timed_out.add(rid)
                self.req.timeout_after_s = float(m.group(2))
            return
        if "REPORT RequestId" in msg:
            t.seen += 1
            m = _REPORT.search(msg)
            if not m:
                t.fail(line_no, "REPORT line without Duration/Billed Duration/Memory Size fields")
                return
            if when is None:
                t.fail(line_no, "REPORT line without a timestamp (export with times)")
                return
            status = _STATUS.get((m.group("status") or "success").lower(), ERROR)
            self._add(
                m.group("id"),
                when,
                float(m.group("dur")),
                float(m.group("billed")),
                float(m.group("mem")),
                float(m.group("used")),
                float(m.group("init")) if m.group("init") else math.nan,
                status,
                stream,
            )
            return
        if '"platform.report"' in msg:
            t.seen += 1
            try:
                rec = json.loads(msg[msg.index("{") :])
                r = rec["record"]
                mt = r["metrics"]
                when = parse_time(rec["time"]) if "time" in rec else when
                if when is None:
                    raise KeyError("time")
                status = _STATUS.get(str(r.get("status", "success")).lower(), ERROR)
                self._add(
                    str(r.get("requestId", "")),
                    when,
                    float(mt["durationMs"]),
                    float(mt.get("billedDurationMs", math.nan)),
                    float(mt.get("memorySizeMB", math.nan)),
                    float(mt.get("maxMemoryUsedMB", math.nan)),
                    float(mt.get("initDurationMs", math.nan)),
                    status,
                    stream,
                )
            except (ValueError, KeyError, TypeError) as exc:
                t.fail(
                    line_no,
                    f"platform.report record without {exc} (expected time, "
                    "record.metrics.durationMs)",
                )

    def _add(
        self,
        rid: str,
        end: float,
        dur: float,
        billed: float,
        mem: float,
        used: float,
        init: float,
        status: int,
        stream: str | None,
    ) -> None:
        # The REPORT is written when the invocation ends; INIT runs before the handler.
        start = end - dur / 1e3 - (0.0 if math.isnan(init) else init / 1e3)
        if rid in self.timed_out:
            self.timed_out.discard(rid)
            status = TIMEOUT
        self.req.add(start, dur, status, init, billed, used, stream, rid)
        if not math.isnan(mem):
            self.req.memory_sizes[int(mem)] += 1

    def finish(self) -> None:
        self.obs.tally.check("Lambda REPORT lines or platform.report records")


def _read_lambda(path: Path, obs: Observed) -> None:
    p = _LambdaParser(obs)
    for n, line in lines(path):
        if not line.strip():
            continue
        when: float | None = None
        stream: str | None = None
        body = line
        if m := _PREFIX_TIME.match(line):
            try:
                when = parse_time(m.group(1))
                body = m.group(2)
            except ValueError:
                when = None
            # `aws logs tail` puts the log stream between the time and the message
            first, _, rest = body.partition(" ")
            if "[" in first and "]" in first and rest:
                stream, body = first, rest
        p.message(n, body, when, stream)
    p.finish()


def _read_lambda_events(path: Path, obs: Observed) -> None:
    p = _LambdaParser(obs)
    for i, ev in json_items(path, "events"):
        if not isinstance(ev, dict) or "message" not in ev:
            obs.tally.seen += 1
            obs.tally.fail(i, "event without a message")
            continue
        try:
            when = parse_time(str(ev["timestamp"])) if "timestamp" in ev else None
        except ValueError:
            when = None
        p.message(i, str(ev["message"]), when, ev.get("logStreamName"))
    p.finish()


_INSIGHTS_FIELDS = {
    "@duration": "dur",
    "@billedDuration": "billed",
    "@memorySize": "mem",
    "@maxMemoryUsed": "used",
    "@initDuration": "init",
}


class _Numbered:
    """Feeds csv.reader line texts while remembering the current line number."""

    def __init__(self, source: Iterator[tuple[int, str]]) -> None:
        self.source, self.n = source, 0

    def __iter__(self) -> Iterator[str]:
        for n, text in self.source:
            self.n = n
            yield text


def _read_lambda_insights(path: Path, obs: Observed) -> None:
    p = _LambdaParser(obs)
    src = _Numbered(lines(path))
    reader = csv.reader(src)
    header = next(reader, None)
    if not header or "@timestamp" not in header:
        raise InputError("line 1: expected a CSV header with @timestamp", file=str(path))
    col = {h: i for i, h in enumerate(header)}
    for row in reader:
        n = src.n
        if not row or not any(c.strip() for c in row):
            continue
        try:
            when = parse_time(row[col["@timestamp"]])
        except (ValueError, IndexError):
            obs.tally.seen += 1
            obs.tally.fail(n, f"@timestamp is not a time: {row[:1]!r}")
            continue
        if "@message" in col:
            p.message(
                n,
                row[col["@message"]] if col["@message"] < len(row) else "",
                when,
                row[col["@logStream"]] if "@logStream" in col else None,
            )
            continue
        obs.tally.seen += 1
        try:
            vals = {
                k: row[col[c]] if c in col and col[c] < len(row) else ""
                for c, k in _INSIGHTS_FIELDS.items()
            }
            dur = float(vals["dur"])
            num = {k: float(v) if v.strip() else math.nan for k, v in vals.items()}
        except ValueError:
            obs.tally.fail(n, "expected numbers in @duration/@billedDuration/...")
            continue
        # Insights reports @memorySize and @maxMemoryUsed in bytes.
        mem = num["mem"] / 1e6 if num["mem"] > 1e5 else num["mem"]
        used = num["used"] / 1e6 if num["used"] > 1e5 else num["used"]
        p._add("", when, dur, num["billed"], mem, used, num["init"], OK, None)
    p.finish()


# --------------------------------------------------------------------------------------------
# Load balancers and proxies


def _log_records(path: Path, tally: Tally) -> Iterator[tuple[int, str]]:
    """An access log's records (ALB, nginx, Envoy): its non-blank lines that are not `#`
    comments, each counted as seen."""
    for n, line in lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        tally.seen += 1
        yield n, line


_ALB_FIELDS = re.compile(r'"[^"]*"|\S+')


def _read_alb(path: Path, obs: Observed) -> None:
    req = obs.start_requests()
    t = obs.tally
    for n, line in _log_records(path, t):
        f = _ALB_FIELDS.findall(line)
        try:
            rpt, tpt, spt = float(f[5]), float(f[6]), float(f[7])
            code = f[8]
            created = f[21] if len(f) > 21 and f[21][:1].isdigit() else None
            end = parse_time(f[1])
        except (IndexError, ValueError):
            t.fail(
                n,
                "expected the ALB fields: type time elb client target "
                "request_processing_time target_processing_time response_processing_time "
                "elb_status_code ...",
            )
            continue
        # -1: the load balancer could not dispatch the request or the target did not answer.
        status = OK if code[:1] in "123" else (TIMEOUT if code == "504" else ERROR)
        handler = tpt * 1e3 if tpt >= 0 else math.nan
        if created is not None:
            try:
                start = parse_time(created)
            except ValueError:
                start = end - max(rpt, 0) - max(tpt, 0) - max(spt, 0)
        else:
            start = end - max(rpt, 0) - max(tpt, 0) - max(spt, 0)
        req.add(start, handler, status)
    t.check("ALB access-log entries")


_NGINX_VAR = re.compile(r"\$([a-z_][a-z0-9_]*)")
_NGINX_TIME_VARS = ("time_iso8601", "time_local", "msec")


def nginx_pattern(log_format: str) -> re.Pattern[str]:
    """A regex with one named group per $variable of an nginx `log_format`."""
    names = _NGINX_VAR.findall(log_format)
    if "request_time" not in names and "upstream_response_time" not in names:
        raise InputError(
            "log_format must contain $request_time or $upstream_response_time", key="--log-format"
        )
    if not any(v in names for v in _NGINX_TIME_VARS):
        raise InputError(
            "log_format must contain $time_local, $time_iso8601 or $msec", key="--log-format"
        )
    out, pos, seen = [], 0, set()
    for m in _NGINX_VAR.finditer(log_format):
        lit = log_format[pos : m.start()]
        out.append(re.escape(lit).replace(r"\ ", " "))
        name = m.group(1)
        quoted = lit.endswith('"')
        bracket = lit.endswith("[")
        body = r'[^"]*' if quoted else (r"[^\]]*" if bracket else r"\S*")
        if name.startswith("upstream_") and not quoted:  # several upstreams: "0.010, 0.020"
            body = r"\S*(?:\s*[,:]\s*\S+)*"
        if name in seen:
            out.append(f"(?:{body})")
        else:
            out.append(f"(?P<{name}>{body})")
            seen.add(name)
        pos = m.end()
    out.append(re.escape(log_format[pos:]).replace(r"\ ", " "))
    return re.compile("^" + "".join(out) + r"\s*$")


def _ms(value: str) -> float:
    """nginx seconds ('0.123'; '-' none; '0.010, 0.020' several upstreams: their sum)."""
    parts = [p.strip() for p in value.replace(":", ",").split(",") if p.strip() not in ("", "-")]
    if not parts:
        return math.nan
    return sum(float(p) for p in parts) * 1e3


def _read_nginx(path: Path, obs: Observed, log_format: str) -> None:
    pat = nginx_pattern(log_format)
    req = obs.start_requests()
    t = obs.tally
    for n, line in _log_records(path, t):
        m = pat.match(line)
        if not m:
            t.fail(n, "does not match the given log_format")
            continue
        g = m.groupdict()
        try:
            tvar = next(v for v in _NGINX_TIME_VARS if g.get(v))
            when = parse_time(g[tvar])
            total = _ms(g["request_time"]) if g.get("request_time") else math.nan
            up = _ms(g["upstream_response_time"]) if g.get("upstream_response_time") else math.nan
        except (StopIteration, ValueError):
            t.fail(n, "time or $request_time is not a number")
            continue
        handler = up if not math.isnan(up) else total
        elapsed = total if not math.isnan(total) else (0.0 if math.isnan(up) else up)
        code = g.get("status") or "200"
        status = OK if code[:1] in "123" else (TIMEOUT if code == "504" else ERROR)
        # $msec / $time_local are taken when the request is logged, i.e. at its end.
        req.add(when - elapsed / 1e3, handler, status)
    t.check("access-log lines in the given log_format")


_ENVOY = re.compile(
    r'^\[(?P<start>[^\]]+)\] "(?P<req>[^"]*)" (?P<code>\d+) (?P<flags>\S+) (?P<rx>\S+) '
    r"(?P<tx>\S+) (?P<dur>\S+) (?P<ust>\S+)"
)


def _read_envoy(path: Path, obs: Observed) -> None:
    req = obs.start_requests()
    t = obs.tally
    for n, line in _log_records(path, t):
        m = _ENVOY.match(line)
        try:
            if not m:
                raise ValueError
            start = parse_time(m.group("start"))
            dur = float(m.group("dur")) if m.group("dur") != "-" else math.nan
            ust = float(m.group("ust")) if m.group("ust") != "-" else math.nan
        except ValueError:
            t.fail(
                n,
                'expected Envoy\'s default format: [START_TIME] "METHOD PATH PROTOCOL" '
                "RESPONSE_CODE RESPONSE_FLAGS BYTES_RECEIVED BYTES_SENT DURATION "
                "UPSTREAM_SERVICE_TIME ...",
            )
            continue
        code, flags = m.group("code"), m.group("flags")
        status = OK if code[:1] in "123" else ERROR
        if "UT" in flags.split(",") or code == "504":
            status = TIMEOUT
        req.add(start, ust if not math.isnan(ust) else dur, status)
    t.check("Envoy access-log lines")


# --------------------------------------------------------------------------------------------
# Load tests and metrics


def _read_k6(path: Path, obs: Observed) -> None:
    req = obs.start_requests()
    t = obs.tally
    for n, line in lines(path):
        if '"http_req_duration"' not in line or '"Point"' not in line:
            continue
        t.seen += 1
        try:
            rec = json.loads(line)
            d = rec["data"]
            value = float(d["value"])
            end = parse_time(d["time"])
            tags = d.get("tags") or {}
        except (ValueError, KeyError, TypeError):
            t.fail(n, "expected {type: Point, metric: http_req_duration, data: {time, value}}")
            continue
        code = str(tags.get("status", "200"))
        status = OK if code[:1] in "123" else ERROR
        req.add(end - value / 1e3, value, status)
    t.check("k6 http_req_duration points")


def _read_prometheus(path: Path, obs: Observed) -> None:
    t = obs.tally
    try:
        with open(path, "rb") as fh:
            raw = fh.read(2)
        if raw == b"\x1f\x8b":
            import gzip

            with gzip.open(path, "rt", encoding="utf-8") as g:
                doc = json.load(g)
        else:
            with open(path, encoding="utf-8") as fh2:
                doc = json.load(fh2)
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError, OSError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(
            f"line {line}: invalid query_range JSON ({exc})" if line else f"invalid JSON: {exc}",
            file=str(path),
        ) from exc
    data = doc.get("data") if isinstance(doc, dict) else None
    if doc.get("status") == "error" if isinstance(doc, dict) else False:
        raise InputError(f"the query failed: {doc.get('error')}", file=str(path))
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise InputError(
            "expected data.resultType 'matrix' (a /api/v1/query_range answer)", file=str(path)
        )
    series = data.get("result") or []
    if not series:
        raise InputError("data.result is empty: the query matched no series", file=str(path))
    t.seen = len(series)
    if any("le" in (s.get("metric") or {}) for s in series):
        by_le: dict[float, float] = {}
        for i, s in enumerate(series, 1):
            le_txt: Any = (s.get("metric") or {}).get("le")
            try:
                edge = float(le_txt)
                vals = [float(v[1]) for v in s.get("values", [])]
            except (TypeError, ValueError, IndexError):
                t.fail(i, f"series {i}: le={le_txt!r} or its values are not numbers")
                continue
            by_le[edge] = by_le.get(edge, 0.0) + float(np.nansum(vals))
        t.check("histogram bucket series")
        le = np.array(sorted(by_le))
        cum = np.array([by_le[x] for x in le])
        bad = np.nonzero(np.diff(cum) < -1e-9 * max(1.0, cum.max()))[0]
        if bad.size:
            j = int(bad[0])
            raise InputError(
                f"histogram buckets are not cumulative: le={le[j]:g} holds {cum[j]:g} but "
                f"le={le[j + 1]:g} holds {cum[j + 1]:g} (expected non-decreasing counts)",
                file=str(path),
            )
        if cum[-1] <= 0:
            raise InputError("histogram buckets hold no observations", file=str(path))
        obs.histogram = Histogram(le, cum)
        return
    ts: dict[float, float] = {}
    for i, s in enumerate(series, 1):
        try:
            for tv, v in s.get("values", []):
                x = float(v)
                if math.isfinite(x):
                    ts[float(tv)] = ts.get(float(tv), 0.0) + x
        except (TypeError, ValueError):
            t.fail(i, f'series {i}: values are not [time, "number"] pairs')
    t.check("rate series")
    tt = np.array(sorted(ts))
    if tt.size < 2:
        raise InputError("a rate series needs at least two samples", file=str(path))
    rate = np.array([ts[x] for x in tt])
    if np.any(rate < 0):
        raise InputError("negative request rate in the series", file=str(path))
    obs.rate = RateSeries(tt, rate, float(np.median(np.diff(tt))))


def _read_power_tuning(path: Path, obs: Observed) -> None:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid JSON: {exc}", file=str(path)) from exc
    res = doc.get("results", doc) if isinstance(doc, dict) else None
    stats = res.get("stats") if isinstance(res, dict) else None
    if not isinstance(stats, list) or not stats:
        raise InputError(
            "expected results.stats [{value, averageDuration}] (run Power Tuning with "
            "includeOutputResults: true)",
            file=str(path),
        )
    mem, dur = [], []
    for i, s in enumerate(stats, 1):
        obs.tally.seen += 1
        try:
            m, d = float(s["value"]), float(s["averageDuration"])
            if m < 128 or d <= 0:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            obs.tally.fail(i, "stats entry needs value (MB >= 128) and averageDuration (ms > 0)")
            continue
        mem.append(m)
        dur.append(d)
    obs.tally.check("Power Tuning stats entries")
    if len(mem) < 2:
        raise InputError(
            "Power Tuning needs at least two memory sizes to fit cpu_bound", file=str(path)
        )
    obs.power = PowerTuning(np.array(mem), np.array(dur))
    obs.platform = "lambda"


def _read_azure2021(path: Path, obs: Observed) -> None:
    req = obs.start_requests()
    t = obs.tally
    src = _Numbered(lines(path))
    reader = csv.reader(src)
    header = next(reader, None) or []
    col = {h.strip(): i for i, h in enumerate(header)}
    if not {"end_timestamp", "duration"} <= set(col):
        raise InputError(
            "line 1: expected the header app,func,end_timestamp,duration", file=str(path)
        )
    ie, idur = col["end_timestamp"], col["duration"]
    for row in reader:
        if not row:
            continue
        t.seen += 1
        try:
            end, dur = float(row[ie]), float(row[idur])
            if not (math.isfinite(end) and math.isfinite(dur)) or dur < 0:
                raise ValueError
        except (IndexError, ValueError):
            t.fail(src.n, "end_timestamp/duration must be numbers, duration >= 0")
            continue
        req.add(end - dur, dur * 1e3)  # trace seconds from its own origin
    t.check("invocation rows")


READERS: dict[str, Callable[[Path, Observed], None]] = {
    "lambda": _read_lambda,
    "lambda-events": _read_lambda_events,
    "lambda-insights": _read_lambda_insights,
    "alb": _read_alb,
    "envoy": _read_envoy,
    "k6": _read_k6,
    "prometheus": _read_prometheus,
    "power-tuning": _read_power_tuning,
    "azure2021": _read_azure2021,
    "nginx": lambda p, o: None,  # needs the log_format: see read()
}
