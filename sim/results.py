"""The results folder (design.md section 4): summary.json, requests.csv.gz, timeline.csv,
decisions.csv. Written into a temporary folder and renamed into place, so a failed run never
leaves a half-written folder behind.
"""

from __future__ import annotations

import gzip
import json
import os
import platform as _platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import __version__
from sim.engine import PlatformRun
from sim.errors import InputError
from sim.records import OUTCOMES
from sim.scenario import Scenario, resolved_dict
from sim.statistics import summarize_platform

# pandas is imported where a frame is built or read, not with this module: the sweep and the
# other studies reach sim.results through sim.simulate and never need it (~0.3 s of start-up).
if TYPE_CHECKING:
    import pandas as pd

TIMELINE_COLUMNS = ("time_s", "instances", "busy", "idle", "queued", "desired", "nodes")


def build_summary(
    scenario: Scenario, runs: list[PlatformRun], wall_s: float, source: str | None = None
) -> dict[str, Any]:
    by_platform: dict[str, list[PlatformRun]] = {}
    for r in runs:
        by_platform.setdefault(r.platform, []).append(r)
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
        "platforms": {
            p.name: summarize_platform(scenario, by_platform[p.name])
            for p in scenario.platforms
            if p.name in by_platform
        },
        "resolved_scenario": resolved_dict(scenario),
        "notes": {
            "latency": "end-to-end as the client sees it: overhead + wait + startup + service; "
            "statistics exclude warm-up and cover ok and timed_out requests",
            "requests": "counts are totals over all replications; cost is the mean per "
            "replication window; monthly_cost_usd extrapolates to 30 days",
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
        n = s["arrival"].size
        frames.append(
            pd.DataFrame(
                {
                    "replication": np.full(n, r.replication, dtype=np.int32),
                    "platform": r.platform,
                    "arrival_s": s["arrival"],
                    "start_s": s["start"],
                    "end_s": s["end"],
                    "latency_ms": (s["end"] - s["arrival"] + s["overhead"]) * 1e3,
                    "cold": s["cold"],
                    "outcome": np.asarray(OUTCOMES, dtype=object)[s["outcome"]],
                    "instance": s["instance"],
                    "wait_ms": s["wait"] * 1e3,
                    "startup_ms": s["startup"] * 1e3,
                    "service_ms": s["service"] * 1e3,
                    "overhead_ms": s["overhead"] * 1e3,
                }
            )
        )
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


# requests.csv.gz of a 60,000-row sample (7.3 MB of text): level 9 1.245 MB in 0.48 s, level 6
# 1.248 MB in 0.19 s, level 5 1.271 MB (+2%) in 0.12 s, level 1 1.517 MB in 0.04 s.
GZIP_LEVEL = 5
FLOAT_FORMAT = "%.9g"
_CSV_CHUNK_ROWS = 50_000  # rows formatted at a time (bounds the text held in memory)
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _write_tables(folder: Path, runs: list[PlatformRun]) -> None:
    """requests.csv.gz, timeline.csv and decisions.csv of `runs` into `folder`."""
    # mtime=0 (and a fixed name in the header) keeps the gzip bytes identical for the same seed.
    with (
        open(folder / "requests.csv.gz", "wb") as raw,
        gzip.GzipFile("requests.csv", "wb", GZIP_LEVEL, raw, mtime=0) as gz,
    ):
        for text in csv_chunks(requests_frame(runs)):
            gz.write(text.encode("utf-8"))
    for name, frame in (("timeline.csv", timeline_frame), ("decisions.csv", decisions_frame)):
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            f.writelines(csv_chunks(frame(runs)))


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
    row = ",".join(fmts) + "\n"
    yield ",".join(names) + "\n"
    for i in range(0, len(df), _CSV_CHUNK_ROWS):
        part = [c[i : i + _CSV_CHUNK_ROWS].tolist() for c in columns]
        yield "".join([row % r for r in zip(*part, strict=True)])


def write_results(
    out_dir: Path,
    summary: dict[str, Any],
    runs: list[PlatformRun],
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write everything into a temporary sibling folder, then swap it into place."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "summary.json").write_text(summary_json(summary) + "\n", encoding="utf-8")
        _write_tables(tmp, runs)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# --- reading a results folder back (the report and the Python API read results this way) ---

_DTYPES = {"platform": str, "outcome": str, "kind": str, "reason": str}


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
    """The Results of a run before it is written: the very frames and JSON write_results writes
    (summary round-tripped through summary_json, so NaN becomes None exactly as on disk)."""
    return Results(
        summary=json.loads(summary_json(summary)),
        requests=requests_frame(runs),
        timeline=timeline_frame(runs),
        decisions=decisions_frame(runs),
    )
