"""The results folder's tables: sim's own CSV writer gives pandas' `to_csv` text byte for byte
(pandas is the reference implementation here), and the same seed gives byte-identical files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.results import (
    FLOAT_FORMAT,
    csv_chunks,
    decisions_frame,
    requests_frame,
    timeline_frame,
    write_results,
)
from sim.simulate import run_scenario

from conftest import make_scenario

SMALL = {
    "name": "tables",
    "duration": "10m",
    "warmup": "1m",
    "replications": 2,
    "seed": 3,
    "workload": {
        "arrivals": [{"steady": {"rate": "6/s"}}],
        "service": {"duration": {"dist": "lognormal", "median": "40ms", "p99": "300ms"}},
    },
    "platforms": [
        {"name": "fn", "type": "lambda", "memory": 1024},
        {"name": "edge", "type": "wasm"},
        {
            "name": "k8s",
            "type": "kubernetes",
            "pod": {"concurrency": 2},
            "hpa": {"min_replicas": 1, "max_replicas": 6, "metric": "cpu", "target": "50%"},
        },
    ],
}


def _pandas(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format=FLOAT_FORMAT)


@pytest.fixture(scope="module")
def runs() -> tuple[dict, list]:
    return run_scenario(make_scenario(SMALL), Path.cwd(), workers=1)


def test_edge_values_are_written_as_pandas_writes_them():
    f = np.array([0.1, -0.0, np.inf, -np.inf, 1e-300, 123456789012.5, np.pi, 2.0, 1e21, -5e-7])
    df = pd.DataFrame(
        {
            "replication": np.arange(10, dtype=np.int32),
            "platform": pd.Categorical(["a", "b"] * 5),
            "x": f,
            "with_nan": np.where(np.arange(10) % 3 == 0, np.nan, f),
            "cold": np.arange(10) % 2 == 0,
            "outcome": np.asarray(["ok", "throttled"] * 5, dtype=object),
            "small": np.arange(10, dtype=np.uint8),
            "maybe": pd.Series(["x", None] * 5, dtype=object),
            "text": pd.Series(["u", "v"] * 5, dtype="str"),
        }
    )
    assert "".join(csv_chunks(df)) == _pandas(df)


def test_columns_constant_over_a_chunk_match_pandas(monkeypatch: pytest.MonkeyPatch):
    """A column constant over a chunk is formatted once into the row template: a `%` in it,
    -0.0 beside 0.0 (equal, printed differently), NaN runs and all-constant chunks still read
    as pandas writes them."""
    monkeypatch.setattr("sim.results._CSV_CHUNK_ROWS", 4)
    n = 12
    df = pd.DataFrame(
        {
            "zero": np.zeros(n),
            "signed": np.where(np.arange(n) == 5, -0.0, 0.0),
            "all_neg_zero": np.full(n, -0.0),
            "pct": ["50%"] * n,
            "k": np.full(n, 7, dtype=np.int64),
            "nan_run": np.where(np.arange(n) < 8, np.nan, 1.5),
            "flag": np.arange(n) >= 4,
            "x": np.where(np.arange(n) < 4, 2.0, np.arange(n) / 7),
        }
    )
    assert "".join(csv_chunks(df)) == _pandas(df)
    constant = df[["zero", "pct", "k"]]
    assert "".join(csv_chunks(constant)) == _pandas(constant)


def test_cells_that_need_quoting_and_odd_frames_match_pandas():
    reasons = pd.DataFrame({"t": [1.5, 2.0], "reason": ['cpu 60% > 50%, "scale"', "a\nb"]})
    one_empty = pd.DataFrame({"only": ["", "x"]})
    nullable = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "f": [0.5, 1.0]})
    empty = pd.DataFrame(columns=["a", "b"])
    for df in (reasons, one_empty, nullable, empty, pd.DataFrame()):
        assert "".join(csv_chunks(df)) == _pandas(df)


def test_written_tables_are_pandas_text_and_byte_identical_for_a_seed(
    runs: tuple[dict, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    summary, rs = runs
    # Several chunks per file, so the chunked writing is exercised too.
    monkeypatch.setattr("sim.results._CSV_CHUNK_ROWS", 1000)
    a = write_results(tmp_path / "a", summary, rs)
    b = write_results(tmp_path / "b", summary, rs)
    raw = (a / "requests.csv.gz").read_bytes()
    assert raw == (b / "requests.csv.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip MTIME 0: no clock in the file
    assert len(requests_frame(rs)) > 5000
    assert gzip.decompress(raw).decode() == _pandas(requests_frame(rs))
    assert (a / "timeline.csv").read_text() == _pandas(timeline_frame(rs))
    assert (a / "decisions.csv").read_text() == _pandas(decisions_frame(rs))
    assert len(decisions_frame(rs)) > 0
