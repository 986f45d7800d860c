"""The results folder (design.md section 4): summary.json, requests.csv.gz, timeline.csv,
decisions.csv. Written into a temporary folder and renamed into place, so a failed run never
leaves a half-written folder behind.
"""

from __future__ import annotations

import json
import os
import platform as _platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import __version__
from sim.engine import PlatformRun
from sim.errors import InputError
from sim.records import OUTCOMES
from sim.scenario import Scenario, resolved_dict
from sim.statistics import summarize_platform

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
            "replication window; monthly_cost_usd extrapolates to the billing month "
            "(month_hours, 730 h by default as the providers' calculators count)",
            "ci95": "Student-t across replications (order-statistic CI with one replication)",
        },
    }


def requests_frame(runs: list[PlatformRun]) -> pd.DataFrame:
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
    frames = []
    for r in sorted(runs, key=lambda r: (r.replication, r.platform)):
        tl = dict(r.timeline)
        n = len(tl.get("time_s", []))
        df = pd.DataFrame(
            {"platform": [r.platform] * n, "replication": np.full(n, r.replication, dtype=np.int32)}
        )
        for col in TIMELINE_COLUMNS:
            df[col] = tl.get(col, np.full(n, np.nan))
        for col in sorted(set(tl) - set(TIMELINE_COLUMNS)):
            df[col] = tl[col]
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def decisions_frame(runs: list[PlatformRun]) -> pd.DataFrame:
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
        # mtime=0 keeps the gzip bytes identical across runs with the same seed.
        requests_frame(runs).to_csv(
            tmp / "requests.csv.gz",
            index=False,
            compression={"method": "gzip", "mtime": 0},
            float_format="%.9g",
        )
        timeline_frame(runs).to_csv(tmp / "timeline.csv", index=False, float_format="%.9g")
        decisions_frame(runs).to_csv(tmp / "decisions.csv", index=False, float_format="%.9g")
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
