"""sweep.csv is written without pandas: the text is pandas' `DataFrame(rows).to_csv(index=False)`
for every kind of column a sweep produces (pandas is the reference here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from sim.studies.sweep import write_csv

ROWS = [
    {
        "platforms.fn.memory": 512,
        "label": "a,b",
        "platform": "fn",
        "requests": 1000,
        "p99_ms": 123.456789012345,
        "p99_ci_lo": None,
        "peak_instances": 3,
        "mixed": 1,
        "slo_met": True,
        "maybe": True,
        "tiny": 1e-7,
        "nothing": None,
    },
    {
        "platforms.fn.memory": 1024,
        "label": 'say "hi"',
        "platform": "fn",
        "requests": 2000,
        "p99_ms": float("nan"),
        "p99_ci_lo": 4,
        "peak_instances": 5,
        "mixed": 2.5,
        "slo_met": False,
        "maybe": None,
        "tiny": 1e16,
        "nothing": None,
        "late": "only here",
    },
]


def test_sweep_csv_is_pandas_text(tmp_path: Path):
    for rows in (ROWS, ROWS[:1], []):
        path = tmp_path / "sweep.csv"
        write_csv(rows, path)
        assert path.read_text() == pd.DataFrame(list(rows)).to_csv(index=False)


def test_a_sweep_does_not_import_pandas():
    code = (
        "import sys, sim.cli.sweep, sim.studies.sweep, sim.studies.plots, sim.simulate; "
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
