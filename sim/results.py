"""The results folder (design.md section 4): summary.json, requests.csv.gz, timeline.csv,
decisions.csv. Written into a temporary folder and renamed into place, so a failed run never
leaves a half-written folder behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import platform as _platform
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from sim import __version__
from sim.engine import PlatformRun
from sim.errors import InputError, Interrupted
from sim.records import OUTCOMES
from sim.scenario import Scenario, resolved_dict
from sim.statistics import summarize_platform, t_interval
from sim.verdict import defaults_used, verdict

# pandas is imported where a frame is built or read, not with this module: the sweep and the
# other studies reach sim.results through sim.simulate and never need it (~0.3 s of start-up).
if TYPE_CHECKING:
    import pandas as pd

# (requests, timeline, decisions): the three tables of a results folder
Tables = tuple["pd.DataFrame", "pd.DataFrame", "pd.DataFrame"]

TIMELINE_COLUMNS = ("time_s", "instances", "busy", "idle", "queued", "desired", "nodes")


def build_summary(
    scenario: Scenario, runs: list[PlatformRun], wall_s: float, source: str | None = None
) -> dict[str, Any]:
    by_platform: dict[str, list[PlatformRun]] = {}
    for r in runs:
        by_platform.setdefault(r.platform, []).append(r)
    units = scenario.placements if scenario.placements is not None else scenario.platforms
    platforms = {
        p.name: summarize_platform(scenario, by_platform[p.name])
        for p in units
        if p.name in by_platform
    }
    extra: dict[str, Any] = {}
    if scenario.is_system:  # per placement: per-service and per-queue figures (sim.systems)
        from sim.systems.summary import summarize_system

        extra["system"] = {
            p.name: summarize_system(by_platform[p.name], t_interval)
            for p in units
            if p.name in by_platform
        }
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "source_file": source,
        "sim_version": __version__,
        "seed": scenario.seed,
        "replications": scenario.replications,
        "duration_s": scenario.duration,
        "warmup_s": scenario.warmup,
        "wall_time_s": wall_s,
        "python": _platform.python_version(),
        "verdict": verdict(scenario, platforms, source),
        "defaults_used": defaults_used(scenario),
        "platforms": platforms,
        **extra,
        "resolved_scenario": resolved_dict(scenario),
        "notes": {
            "latency": "end-to-end as the client sees it: overhead + wait + startup + service; "
            "statistics exclude warm-up and cover ok and timed_out requests"
            + (
                " and error ones (handlers that failed after their handler time)"
                if scenario.workload.service.error_rate > 0
                else ""
            ),
            "requests": "counts are totals over all replications; cost is the mean per "
            "replication window; monthly_cost_usd extrapolates to the billing month "
            "(month_hours, 730 h by default as the providers' calculators count)",
            "ci95": "Student-t across replications (order-statistic CI with one replication)",
        },
    }


def requests_frame(runs: list[PlatformRun]) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for r in sorted(runs, key=lambda r: (r.replication, r.platform)):
        s = r.stats.sample
        if not s:
            continue
        frames.append(_rows_frame(r.replication, r.platform, s))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            columns=[
                "replication",
                "platform",
                "arrival_s",
                "start_s",
                "end_s",
                "latency_ms",
                "cold",
                "outcome",
                "instance",
            ]
        )
    )


def service_requests_frame(runs: list[PlatformRun]) -> pd.DataFrame | None:
    """A system's request rows at each service (service_requests.csv.gz): the columns of
    requests.csv.gz with `service` after `platform` (the placement); None for a single service.
    A row is one visit of a service (a call attempt, an event; a queue consumer's batch)."""
    import pandas as pd

    frames = []
    system = False
    for r in sorted(runs, key=lambda r: (r.replication, r.platform)):
        samples = (r.extra.get("system") or {}).get("requests_sample")
        if samples is None:
            continue
        system = True
        for name, s in samples.items():
            if s and s["arrival"].size:
                frames.append(_rows_frame(r.replication, r.platform, s, service=name))
    if not system:
        return None
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _rows_frame(
    replication: int, platform: str, s: dict[str, np.ndarray], service: str | None = None
) -> pd.DataFrame:
    import pandas as pd

    n = s["arrival"].size
    return pd.DataFrame(
        {
            "replication": np.full(n, replication, dtype=np.int32),
            "platform": platform,
            **({"service": service} if service is not None else {}),
            **dict(_row_columns(s, np.asarray(OUTCOMES, dtype=object))),
        }
    )


def _row_columns(s: dict[str, np.ndarray], outcomes: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """requests.csv.gz's columns after replication and platform, from a run's sample."""
    return [
        ("arrival_s", s["arrival"]),
        ("start_s", s["start"]),
        ("end_s", s["end"]),
        ("latency_ms", (s["end"] - s["arrival"] + s["overhead"]) * 1e3),
        ("cold", s["cold"]),
        ("outcome", outcomes[s["outcome"]]),
        ("instance", s["instance"]),
        ("wait_ms", s["wait"] * 1e3),
        ("startup_ms", s["startup"] * 1e3),
        ("service_ms", s["service"] * 1e3),
        ("overhead_ms", s["overhead"] * 1e3),
    ]


def timeline_frame(runs: list[PlatformRun]) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for r in sorted(runs, key=lambda r: (r.replication, r.platform)):
        tl = dict(r.timeline)
        n = len(tl.get("time_s", []))
        cols: dict[str, Any] = {
            "platform": [r.platform] * n,
            "replication": np.full(n, r.replication, dtype=np.int32),
        }
        for col in TIMELINE_COLUMNS:
            cols[col] = tl.get(col, np.full(n, np.nan))
        for col in sorted(set(tl) - set(TIMELINE_COLUMNS)):
            cols[col] = tl[col]
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def decisions_frame(runs: list[PlatformRun]) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "platform": r.platform,
            "replication": r.replication,
            "time_s": d.time_s,
            "kind": d.kind,
            "before": d.before,
            "after": d.after,
            "reason": d.reason,
        }
        for r in sorted(runs, key=lambda r: (r.replication, r.platform))
        for d in r.decisions
    ]
    return pd.DataFrame(
        rows, columns=["platform", "replication", "time_s", "kind", "before", "after", "reason"]
    )


def _json_default(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _clean(x: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(_clean(summary), indent=2, default=_json_default, allow_nan=False)


# requests.csv.gz of a 60,000-row sample (SimFaaS's scenario, 4.9 MB of text), CPU seconds of
# its 10,000-row segments: level 6 1.252 MB in 0.23 s, level 5 1.274 MB in 0.16 s, level 4
# 1.324 MB (+4% on level 5) in 0.10 s, level 1 1.519 MB in 0.05 s.
GZIP_LEVEL = 4
SERVICE_REQUESTS = "service_requests.csv.gz"  # systems only (issue 17)
FLOAT_FORMAT = "%.9g"
_CSV_CHUNK_ROWS = 10_000  # rows formatted at a time (bounds the text; overlaps compressing)
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def tables_of(runs: list[PlatformRun]) -> Tables:
    """The (requests, timeline, decisions) frames of `runs`: the results folder's three tables."""
    return requests_frame(runs), timeline_frame(runs), decisions_frame(runs)


def _write_tables(
    folder: Path,
    runs: list[PlatformRun],
    tables: Tables | None = None,
    requests_gz: bytes | None = None,
) -> None:
    """requests.csv.gz (`requests_gz` when made already), timeline.csv and decisions.csv of
    `runs` into `folder`."""
    requests, timeline, decisions = tables if tables is not None else tables_of(runs)
    if requests_gz is not None:
        (folder / "requests.csv.gz").write_bytes(requests_gz)
    else:
        _write_gz(folder / "requests.csv.gz", requests)
    services = service_requests_frame(runs)
    if services is not None:  # a system: the rows at every service too
        _write_gz(folder / SERVICE_REQUESTS, services)
    for name, frame in (("timeline.csv", timeline), ("decisions.csv", decisions)):
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            f.writelines(csv_chunks(frame))


def _write_gz(path: Path, frame: pd.DataFrame) -> None:
    with open(path, "wb") as raw:
        _gzip(raw, path.name, csv_chunks(frame))


def _gzip(raw: Any, name: str, chunks: Iterable[str]) -> None:
    raw.write(_gzip_header(name))
    crc, size = _deflate(raw.write, chunks)
    raw.write(_gzip_trailer(crc, size))


# A .gz file sim writes is one gzip member (RFC 1952) whose deflate stream is a run of independent
# segments, one per text chunk (the header line, then each _CSV_CHUNK_ROWS rows): each compressed
# by a fresh compressor and ended by a sync flush (byte-aligned, not final), as pigz lays out its
# blocks. Any process can then compress any chunk and the file is the same bytes: a forked
# simulation worker compresses the first chunks of requests.csv.gz while its parent, done with the
# report, compresses the rest (sim.simulate). mtime=0 and a fixed name keep the bytes identical
# for the same seed.
_DEFLATE_END = b"\x03\x00"  # a final, empty fixed-Huffman block: the end of the stream


@dataclass(frozen=True)
class Deflated:
    """Compressed segments of a gzip member, and the CRC-32 and length of their text."""

    data: bytes
    crc: int
    size: int


def _gzip_header(name: str) -> bytes:
    # What gzip.GzipFile writes: the FNAME flag, mtime 0, XFL 0 (levels 2-8), OS 255 (unknown).
    fname = name.removesuffix(".gz").encode()
    return b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff" + fname + b"\x00"


def _gzip_trailer(crc: int, size: int) -> bytes:
    return _DEFLATE_END + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


def _deflate(write: Callable[[bytes], Any], chunks: Iterable[str]) -> tuple[int, int]:
    """write() each chunk's segment; return the CRC-32 and length of their text. Compressing runs
    in write_behind's thread, overlapping the formatting of the next chunk."""
    crc = size = 0

    def segment(text: bytes) -> None:
        nonlocal crc, size
        co = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        write(co.compress(text) + co.flush(zlib.Z_SYNC_FLUSH))
        crc, size = zlib.crc32(text, crc), size + len(text)

    write_behind(segment, (text.encode("utf-8") for text in chunks))
    return crc, size


def deflated(chunks: Iterable[str]) -> Deflated:
    out = io.BytesIO()
    crc, size = _deflate(out.write, chunks)
    return Deflated(out.getvalue(), crc, size)


def gzip_member(name: str, parts: Iterable[Deflated]) -> bytes:
    """The .gz file of `parts` in order (segments made by _deflate, in any process)."""
    data, crc, size = [], 0, 0
    for p in parts:
        # The CRC-32 of a concatenation (zlib's crc32_combine): the register update is linear,
        # so crc(A+B) = crc(B) ^ M^n(crc(A)), where M^n(x) = crc32(n zeros, x) ^ crc32(n zeros).
        zeros = bytes(p.size)
        crc = p.crc ^ zlib.crc32(zeros, crc) ^ zlib.crc32(zeros)
        data.append(p.data)
        size += p.size
    return _gzip_header(name) + b"".join(data) + _gzip_trailer(crc, size)


def requests_csv(runs: list[PlatformRun]) -> RequestsText | None:
    """requests_frame(runs)'s text as csv_chunks makes it, from the runs' sample arrays without
    pandas (a forked simulation worker makes it while its parent summarises and renders the
    report; it has not imported pandas). None when pandas' own writer is needed (see
    csv_chunks: a NaN cell, a text cell that needs quoting) or there is no row or the run is a
    system's: the caller then writes the frame."""
    if any("system" in r.extra for r in runs):
        return None
    return requests_text(
        [
            (r.replication, r.platform, r.stats.sample)
            for r in sorted(runs, key=lambda r: (r.replication, r.platform))
        ]
    )


def requests_text(parts: list[tuple[int, str, dict[str, np.ndarray]]]) -> RequestsText | None:
    """requests_csv of (replication, platform, sample) in the file's order (a single-service
    run's: a one-job run's parent makes it from the sample sent before the run itself)."""
    parts = [p for p in parts if p[2]]
    if not parts:
        return None
    # The text columns as numpy str arrays (no object-to-str pass over the rows): their values
    # are the platform names and the outcome names, checked for quoting once each.
    if any(_NEEDS_QUOTES.search(v) for v in (*OUTCOMES, *(p for _, p, _ in parts))):
        return None
    outcome = np.asarray(OUTCOMES)
    cols: dict[str, list[np.ndarray]] = {}
    for rep, platform, s in parts:
        n = s["arrival"].size
        for name, values in (
            ("replication", np.full(n, rep, dtype=np.int32)),
            ("platform", np.full(n, platform)),
            *_row_columns(s, outcome),
        ):
            cols.setdefault(name, []).append(values)
    fmts: list[str] = []
    columns: list[np.ndarray] = []
    for pieces in cols.values():
        values = np.concatenate(pieces)
        if values.dtype.kind == "f":
            if np.isnan(values).any():
                return None
            fmts.append(FLOAT_FORMAT)
        else:
            fmts.append("%s")
        columns.append(values)
    return RequestsText(list(cols), fmts, columns)


@dataclass(frozen=True)
class RequestsText:
    """requests.csv's columns and formats; its text by chunks of _CSV_CHUNK_ROWS rows (the
    header goes with chunk 0), which any process can compress (sim.simulate shares them)."""

    names: list[str]
    fmts: list[str]
    columns: list[np.ndarray]

    @property
    def chunks(self) -> int:
        return max(1, -(-len(self.columns[0]) // _CSV_CHUNK_ROWS))

    def part(self, start: int, stop: int | None = None) -> Deflated:
        """Chunks [start, stop) compressed."""
        return deflated(_csv_text(self.names, self.fmts, self.columns, start=start, stop=stop))


def requests_csv_gz(runs: list[PlatformRun]) -> bytes | None:
    """The bytes _write_gz writes for requests_frame(runs), made in this process (requests_csv;
    sim.simulate shares the work between the simulation worker and its parent)."""
    text = requests_csv(runs)
    if text is None:
        return None
    return gzip_member("requests.csv.gz", [text.part(0)])


def write_behind(write: Callable[[bytes], Any], chunks: Iterable[bytes]) -> None:
    """write(chunk) for each chunk in order, in a second thread, so that compressing one chunk
    (zlib releases the GIL) overlaps formatting the next: the same bytes, ~40% less wall time
    for requests.csv.gz when a second core is free. An error on either side is raised here."""
    q: queue.Queue[bytes | None] = queue.Queue(maxsize=2)  # bounds the text held in memory
    failed: list[BaseException] = []

    def drain() -> None:
        while (chunk := q.get()) is not None:
            if not failed:
                try:
                    write(chunk)
                except BaseException as exc:  # re-raised in the caller below
                    failed.append(exc)

    worker = threading.Thread(target=drain, name="sim-write-behind", daemon=True)
    worker.start()
    try:
        for chunk in chunks:
            if failed:
                break
            q.put(chunk)
    finally:
        q.put(None)
        worker.join()
    if failed:
        raise failed[0]


def csv_chunks(df: pd.DataFrame) -> Iterator[str]:
    """The text of `df.to_csv(index=False, float_format=FLOAT_FORMAT)`, in chunks, byte for byte.

    pandas formats cell by cell through its formatter machinery (~1 us a cell); one `%` per row
    with a format string built per column does the same in a tenth of the time. Frames with a text
    cell that needs CSV quoting (a comma, quote or newline, e.g. in a decision's reason) go through
    pandas itself, so the quoting rules are pandas' exactly.
    """
    import pandas as pd

    names = [str(c) for c in df.columns]
    if df.empty or any(_NEEDS_QUOTES.search(c) for c in names) or names != list(df.columns):
        yield df.to_csv(index=False, float_format=FLOAT_FORMAT)
        return
    fmts: list[str] = []
    columns: list[np.ndarray] = []
    for name in df.columns:
        col = df[name]
        kind = col.dtype.kind
        if kind in "fiub" and not isinstance(col.dtype, np.dtype):  # e.g. nullable Int64
            yield df.to_csv(index=False, float_format=FLOAT_FORMAT)
            return
        if kind == "f":
            values = col.to_numpy()
            if np.isnan(values).any():  # pandas writes NaN as an empty cell
                fmts.append("%s")
                values = np.where(
                    np.isnan(values), "", np.char.mod(FLOAT_FORMAT, values).astype(object)
                )
            else:
                fmts.append(FLOAT_FORMAT)
        elif kind in "iub":
            fmts.append("%s")
            values = col.to_numpy()
        else:
            values = col.to_numpy(dtype=object)
            missing = pd.isna(values)
            if missing.any():
                values = np.where(missing, "", values)
            text = values.astype(str)
            if any(_NEEDS_QUOTES.search(v) for v in np.unique(text)) or (
                len(df.columns) == 1 and (text == "").any()
            ):
                yield df.to_csv(index=False, float_format=FLOAT_FORMAT)
                return
            fmts.append("%s")
            values = text
        columns.append(values)
    yield from _csv_text(names, fmts, columns)


def _csv_text(
    names: list[str],
    fmts: list[str],
    columns: list[np.ndarray],
    start: int = 0,
    stop: int | None = None,
) -> Iterator[str]:
    """The header, then the rows in chunks of _CSV_CHUNK_ROWS (chunks [start, stop); the header
    goes with chunk 0): each row `fmts` of its cells. A column constant over a chunk (e.g.
    replication, platform, a zero wait) is formatted once, into that chunk's row template:
    %-formatting is most of the cost (~40% less for requests)."""
    if start == 0:
        yield ",".join(names) + "\n"
    n = len(columns[0])
    end = n if stop is None else min(n, stop * _CSV_CHUNK_ROWS)
    for i in range(start * _CSV_CHUNK_ROWS, end, _CSV_CHUNK_ROWS):
        cells: list[str] = []
        part: list[list[Any]] = []
        for fmt, column in zip(fmts, columns, strict=True):
            c = column[i : i + _CSV_CHUNK_ROWS]
            if _constant(c):
                cells.append((fmt % c[:1].tolist()[0]).replace("%", "%%"))
            else:
                cells.append(fmt)
                part.append(c.tolist())
        row = ",".join(cells) + "\n"
        yield "".join([row % r for r in zip(*part, strict=True)]) if part else (row % ()) * len(c)


def _constant(c: np.ndarray) -> bool:
    """Every cell of `c` the same value; floats bit for bit (-0.0 and 0.0 print differently)."""
    if c.dtype.kind == "f":
        c = c.view(f"i{c.itemsize}")
    return bool((c == c[0]).all())


# From this many request rows the tables are written by a forked child while this process writes
# the rest (the report): formatting 60,000 rows takes ~0.2 s, forking ~0.01 s.
BACKGROUND_MIN_ROWS = 20_000


class Forked:
    """fn(send) in a forked child (the same code and data: the same bytes). Each send(x) there
    is one recv() here, in order; wait() waits for the end. Both raise what fn raised. SIGINT is
    the parent's to handle (it stops the child)."""

    def __init__(self, fn: Callable[[Callable[[Any], None]], None]) -> None:
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)

        def child() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            die_with_parent()
            try:
                fn(lambda item: send.send((True, item)))
                send.send((False, None))
            except BaseException as exc:
                try:
                    send.send((False, exc))
                except Exception:  # an exception that does not pickle
                    send.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))

        self._proc = ctx.Process(target=child, name="sim-write", daemon=True)
        self._proc.start()
        send.close()  # the child's end: EOF here when the child dies without a word
        self._done = False

    def recv(self) -> Any:
        """The child's next send(x)."""
        if not self._done:
            try:
                item, value = self._recv.recv()
            except EOFError:
                item, value = False, RuntimeError("a forked sim process died")
            if item:
                return value
            self._done = True
            self._recv.close()
            self._proc.join()
            if value is not None:
                raise value
        raise EOFError("the child has ended")

    def ready(self) -> bool:
        """Whether recv() would return (or raise) at once."""
        return self._done or self._recv.poll()

    def wait(self) -> None:
        """Until the child ends (its remaining sends are dropped)."""
        with contextlib.suppress(EOFError):
            while True:
                self.recv()

    def stop(self) -> None:
        """Kill the child if it still runs (a joined child is not signalled again)."""
        self._proc.kill()
        self._proc.join()
        self._recv.close()


def can_fork() -> bool:
    """Fork only on Linux (macOS frameworks are not fork-safe) and only with no other thread
    alive: a lock another thread holds at the fork (e.g. a progress bar writing to stderr) would
    stay held in the child forever."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def die_with_parent() -> None:
    """Linux: this (forked) process gets SIGKILL when the one that started it ends (e.g. killed
    by a SIGTERM while waiting), instead of working on as an orphan that holds its stdout and
    stderr open."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent ended before prctl took effect
        os._exit(1)


ExtraFile = str | Callable[[], str | None]


def write_results(
    out_dir: Path,
    summary: dict[str, Any],
    runs: list[PlatformRun],
    extra_files: Mapping[str, ExtraFile] | None = None,
    tables: Tables | None = None,
    requests_gz: Callable[[], bytes | None] | None = None,
) -> Path:
    """Write everything into a temporary sibling folder, then swap it into place. `tables` are
    the run's (requests, timeline, decisions) frames when the caller has built them already;
    `requests_gz` gives requests.csv.gz's bytes (made by the simulation worker meanwhile: see
    sim.simulate) or None (then they are made here), called after the extra files.
    An extra file is its text, or a function that makes it (None: no such file), called while
    a large run's tables are written by a forked child (the report beside requests.csv.gz).

    `out_dir` may be replaced only when it is missing, empty or a results folder sim wrote
    (check_output_folder, checked again here: the folder may have changed during the run).
    SIGTERM/SIGINT while writing remove the temporary folder; the swap itself runs with both
    signals held back, so an interrupt leaves the previous results or the complete new ones.
    """
    out_dir = Path(out_dir)
    check_output_folder(out_dir, "results")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir)
    with _signals_raise():
        tmp: Path | None = None
        writer: Forked | None = None
        try:
            with _signals_held():
                tmp = Path(
                    tempfile.mkdtemp(
                        prefix=f".{out_dir.name}.{_TMP}{os.getpid()}-", dir=out_dir.parent
                    )
                )
                # mkdtemp makes it 0700; give it the mode every other output folder gets
                umask = os.umask(0)
                os.umask(umask)
                tmp.chmod(0o777 & ~umask)
            folder, extra = tmp, dict(extra_files or {})
            # a child only when this process has an extra file to make meanwhile (the report)
            overlap = any(callable(v) for v in extra.values())
            if requests_gz is not None:
                pass  # the tables after the extra files, with the worker's requests.csv.gz
            elif overlap and _sample_rows(runs) >= BACKGROUND_MIN_ROWS and can_fork():
                writer = Forked(lambda send: _write_tables(folder, runs, tables))
            else:
                _write_tables(tmp, runs, tables)
            (tmp / "summary.json").write_text(summary_json(summary) + "\n", encoding="utf-8")
            for name, item in extra.items():
                text = item() if callable(item) else item
                if text is not None:
                    (tmp / name).write_text(text, encoding="utf-8")
            if requests_gz is not None:
                _write_tables(tmp, runs, tables, requests_gz())
            if writer is not None:
                writer.wait()
            write_marker(tmp, "results")
            with _signals_held():
                check_output_folder(out_dir, "results")
                if out_dir.exists():
                    old = out_dir.with_name(f".{out_dir.name}.{_OLD}{os.getpid()}")
                    out_dir.rename(old)
                    tmp.rename(out_dir)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    tmp.rename(out_dir)
        except BaseException:
            with _signals_held():
                if writer is not None:  # stopped before its folder goes
                    writer.stop()
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out_dir


def _sample_rows(runs: list[PlatformRun]) -> int:
    return sum(len(r.stats.sample["arrival"]) if r.stats.sample else 0 for r in runs)


# --- output folders: sim replaces or writes into only what it wrote itself -----------------------

# Written into every folder sim creates: {"written_by": "sim", "kind": ..., "sim_version": ...}.
MARKER = ".sim-output.json"
# The files each kind of folder holds (report images: any *.png / *.svg from `--images`).
OUTPUT_FILES: dict[str, frozenset[str]] = {
    "results": frozenset(
        {
            "summary.json",
            "requests.csv.gz",
            "timeline.csv",
            "decisions.csv",
            "report.html",
            SERVICE_REQUESTS,
        }
    ),
    "compare": frozenset({"report.html"}),
    "sweep": frozenset({"points.jsonl", "sweep.csv", "sweep.html"}),
    "tune": frozenset({"points.jsonl", "tune.json"}),
    "crossover": frozenset({"points.jsonl", "crossover.csv", "crossover.json", "crossover.html"}),
}
_IMAGE_SUFFIXES = (".png", ".svg")
_TMP, _OLD = "sim-tmp-", "sim-old-"


def write_marker(folder: Path, kind: str) -> None:
    doc = {"written_by": "sim", "kind": kind, "sim_version": __version__}
    (Path(folder) / MARKER).write_text(json.dumps(doc) + "\n", encoding="utf-8")


def folder_kind(folder: Path) -> str | None:
    """The kind of output sim wrote into `folder` (its marker), or None when sim did not write it.
    A results folder from before the marker is recognised by its summary.json."""
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if (
            isinstance(doc, dict)
            and doc.get("written_by") == "sim"
            and doc.get("kind") in (OUTPUT_FILES)
        ):
            return str(doc["kind"])
    except (OSError, ValueError):
        pass
    try:
        summary = (folder / "summary.json").read_text(encoding="utf-8")
        doc = json.loads(summary)
        if isinstance(doc, dict) and {"sim_version", "resolved_scenario", "platforms"} <= set(doc):
            return "results"
    except (OSError, ValueError):
        pass
    return None


def _foreign(entries: list[str], kind: str) -> list[str]:
    own = OUTPUT_FILES[kind] | {MARKER}
    return sorted(
        e
        for e in entries
        if e not in own and not (kind == "compare" and e.endswith(_IMAGE_SUFFIXES))
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_output_folder(out: Path, kind: str, *, option: str = "--out") -> None:
    """Refuse (InputError, before any work) an output path sim may not write: an empty path, a
    file, a symlink, a folder sim did not write (or that holds files sim did not write), or a
    place this process cannot create a folder in."""
    text = str(out)
    if not text.strip() or "\x00" in text:
        raise InputError("expected a folder path, got an empty one", key=option)
    out = Path(out)
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise InputError(
            "cannot write here: a parent of this path is a file, not a folder",
            file=text,
            key=option,
        ) from None
    except OSError as exc:
        raise InputError(f"cannot use this folder: {_why(exc)}", file=text, key=option) from None
    if st is not None:
        import stat as _stat

        if _stat.S_ISLNK(st.st_mode):
            raise InputError(
                "is a symbolic link; sim writes only into a real folder (give its target)",
                file=text,
                key=option,
            )
        if not _stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"exists and is not a folder; sim never replaces a file (choose another {option})",
                file=text,
                key=option,
            )
        try:
            entries = os.listdir(out)
        except OSError as exc:
            raise InputError(
                f"cannot list this folder: {_why(exc)}", file=text, key=option
            ) from None
        if entries:
            found = folder_kind(out)
            if found is None:
                raise InputError(
                    f"is a folder sim did not write (it holds {_listing(sorted(entries))}); sim "
                    f"replaces only its own output: choose another {option}, or add --subfolder "
                    "to write into a new folder inside it",
                    file=text,
                    key=option,
                )
            if found != kind:
                raise InputError(
                    f"holds `sim {'run' if found == 'results' else found}` output, not "
                    f"`sim {'run' if kind == 'results' else kind}` output; choose another {option}",
                    file=text,
                    key=option,
                )
            extra = _foreign(entries, kind)
            if extra:
                raise InputError(
                    f"is a sim {kind} folder but also holds files sim did not write "
                    f"({_listing(extra)}); move them out or choose another {option}",
                    file=text,
                    key=option,
                )
    _check_creatable(out, option)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _check_creatable(out: Path, option: str) -> None:
    """Try, now, to create a folder where sim will write (its temporaries live beside `out`)."""
    anc = out.parent if out.name not in ("", ".", "..") else out
    while True:
        try:
            os.stat(anc)
            break
        except FileNotFoundError:
            if anc.parent == anc:
                break
            anc = anc.parent
        except NotADirectoryError:
            anc = anc.parent
        except OSError as exc:
            raise InputError(f"cannot write here: {_why(exc)}", file=str(out), key=option) from None
    if not anc.is_dir():
        raise InputError(
            f"cannot write here: {anc} is a file, not a folder", file=str(out), key=option
        )
    try:
        probe = tempfile.mkdtemp(prefix=".sim-probe-", dir=anc)
        os.rmdir(probe)
    except OSError as exc:
        raise InputError(
            f"cannot write here: {_why(exc)} (in {anc})", file=str(out), key=option
        ) from None


def output_folder(
    out: Path | None, default: Path, kind: str, *, name: str, subfolder: bool = False
) -> Path:
    """The folder a command writes, checked before any simulation: `out` (or `default`, which
    must stay under results/). With `subfolder`, a new folder inside `out`: `<name>`, or
    `<name>-2`, `<name>-3`, ... when taken."""
    if out is None:
        root = default.parent.resolve()
        if default.resolve().parent != root or default.name in ("", ".", ".."):
            raise InputError(f"folder name {default.name!r} leaves {default.parent}/", key="name")
        target = default
    else:
        target = Path(out)
    if subfolder:
        check_output_folder_parent(target)
        base = target / name
        target, n = base, 1
        while os.path.lexists(target):
            n += 1
            target = base.with_name(f"{name}-{n}")
    check_output_folder(target, kind)
    return target


def check_output_folder_parent(folder: Path) -> None:
    """--subfolder: `folder` must be a folder (or not exist yet)."""
    if not str(folder).strip():
        raise InputError("expected a folder path, got an empty one", key="--out")
    if os.path.lexists(folder) and not Path(folder).is_dir():
        raise InputError("exists and is not a folder", file=str(folder), key="--out")


def claim_output_folder(out: Path, kind: str) -> None:
    """Create (if needed) a folder a study writes into and mark it as sim's; checked first."""
    check_output_folder(out, kind)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).exists():
        write_marker(out, kind)


def write_file_atomic(path: Path, text: str) -> None:
    """Write a text file beside its final name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{_TMP}{os.getpid()}")
    with _signals_raise():
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            with _signals_held():
                tmp.unlink(missing_ok=True)
            raise


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary folders of an earlier sim killed by SIGKILL (its process is gone)."""
    prefix = f".{out.name}.{_TMP}"
    try:
        entries = os.listdir(out.parent)
    except OSError:
        return
    for e in entries:
        if not e.startswith(prefix):
            continue
        pid = e[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(out.parent / e, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While writing: SIGTERM raises (as SIGINT does), so `except BaseException` cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise Interrupted(f"signal {signum}")

    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then take effect. Python-level, not a
    signal mask: a process-directed signal may land on any thread, and Python runs handlers in
    the main thread at the next bytecode, so recording it there is what holds it back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def record(signum: int, frame: Any) -> None:
        pending.append(signum)

    held = (signal.SIGINT, signal.SIGTERM)
    previous: dict[int, Any] = {s: signal.signal(s, record) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in pending[:1]:
            handler = previous[s]
            if callable(handler):
                handler(s, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(s)


# --- reading a results folder back (the report and the Python API read results this way) ---

_DTYPES = {"platform": str, "outcome": str, "kind": str, "reason": str}


R = TypeVar("R", bound="Results")


@dataclass
class Results:
    """One results folder's contents (or the same frames straight from a run)."""

    summary: dict[str, Any]
    requests: pd.DataFrame
    timeline: pd.DataFrame
    decisions: pd.DataFrame
    folder: Path | None = None

    def __post_init__(self) -> None:
        # Categories: the report filters these frames by platform many times (cheap this way).
        # Shallow copies, so the caller's frames are left as they were.
        self.requests, self.timeline, self.decisions = (
            _categorical(df) for df in (self.requests, self.timeline, self.decisions)
        )

    @property
    def name(self) -> str:
        return str(self.summary.get("scenario") or (self.folder.name if self.folder else ""))

    @classmethod
    def from_run(
        cls: type[R],
        summary: dict[str, Any],
        runs: list[Any],
        frames: Tables | None = None,
        /,
        **fields: Any,
    ) -> R:
        """The Results of a run before it is written: the very frames and JSON write_results
        writes (summary round-tripped through summary_json, so NaN becomes None exactly as on
        disk). `frames` are the tables when already built; `fields` a subclass's own."""
        requests, timeline, decisions = frames if frames is not None else tables_of(runs)
        return cls(
            summary=json.loads(summary_json(summary)),
            requests=requests,
            timeline=timeline,
            decisions=decisions,
            **fields,
        )


def _categorical(df: pd.DataFrame) -> pd.DataFrame:

    cols = [c for c in ("platform", "outcome", "kind") if c in df]
    if not cols:
        return df
    df = df.copy(deep=False)
    for c in cols:
        df[c] = df[c].astype("category")
    return df


def load_results(folder: str | Path) -> Results:
    """Read a results folder written by `sim run`. Only summary.json is required."""
    folder = Path(folder)
    path = folder / "summary.json"
    if not path.is_file():
        raise InputError("not a results folder (no summary.json in it)", file=str(folder))
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable summary.json: {exc}", file=str(path)) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("platforms"), dict):
        raise InputError(
            "expected the summary.json of `sim run` (a mapping with `platforms`)", file=str(path)
        )
    return Results(
        summary=summary,
        requests=_read_csv(folder / "requests.csv.gz"),
        timeline=_read_csv(folder / "timeline.csv"),
        decisions=_read_csv(folder / "decisions.csv"),
        folder=folder,
    )


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        return pd.DataFrame()
    try:
        df = pd.read_csv(path, dtype=_DTYPES, keep_default_na=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"unreadable results file: {exc}", file=str(path)) from None
    if "cold" in df:
        df["cold"] = df["cold"].astype(str).str.lower().isin(("true", "1"))
    return df


def results_from_run(summary: dict[str, Any], runs: list[Any]) -> Results:
    """The Results of a run before it is written (Results.from_run)."""
    return Results.from_run(summary, runs)
