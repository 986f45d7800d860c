"""Whole-process speed (issue 13) without changing a byte: the simulation runs in a forked worker
while `sim run` imports the report, the tables are written by a forked child while the report is
rendered, and start-up runs without the cyclic garbage collector. Each test compares the
overlapped path with the plain serial one (the same files), or checks that the overlap happened
(a worker process alive while the caller's own work runs); none measures time."""

from __future__ import annotations

import gc
import gzip
import json
import multiprocessing
import shutil
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import api
from sim import results as R
from sim import simulate as S
from sim.cli import common

from conftest import timeless

SMALL = {
    "name": "wholeproc",
    "duration": "10m",
    "replications": 2,
    "seed": 4,
    "workload": {
        "arrivals": [{"steady": {"rate": "40/s"}}],
        "service": {"duration": {"dist": "exponential", "mean": "200ms"}},
    },
    "platforms": [{"name": "fn", "type": "lambda", "memory": 1024}],
}


def _files(folder: Path) -> dict[str, bytes]:
    out = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    summary = timeless(json.loads(out.pop("summary.json")))
    out["summary.json"] = json.dumps(summary, sort_keys=True).encode()
    return out


@pytest.fixture
def may_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork even if an earlier test left a thread behind in this process (a Dask client's):
    can_fork refuses then, and these tests would not see the overlapped path."""
    from sim.studies import sweep

    for module in (R, S, sweep):
        monkeypatch.setattr(module, "can_fork", lambda: True)


def test_simulate_overlaps_prepare_with_a_forked_worker(
    monkeypatch: pytest.MonkeyPatch, may_fork: None
) -> None:
    """With `prepare`, the jobs run in a forked worker while prepare runs here; the runs are
    those of the serial path, request for request."""
    monkeypatch.setattr(S, "OVERLAP_MIN_REQUESTS", 0)
    sc = api.load_scenario(SMALL)
    seen: list[int] = []

    def prepare() -> None:
        seen.append(len(multiprocessing.active_children()))

    forked = S.simulate(sc, Path.cwd(), workers=1, expected=1.0, prepare=prepare)
    serial = S.simulate(sc, Path.cwd(), workers=1, expected=1.0)
    assert seen == [1]  # called once, with the worker alive
    assert [(r.platform, r.replication) for r in forked] == [
        (r.platform, r.replication) for r in serial
    ]
    for a, b in zip(forked, serial, strict=True):
        assert a.stats.requests_all == b.stats.requests_all
        for col, values in b.stats.sample.items():
            np.testing.assert_array_equal(a.stats.sample[col], values)
        assert a.bill.to_dict() == b.bill.to_dict()


def test_prepare_runs_once_when_the_run_is_small() -> None:
    """Below OVERLAP_MIN_REQUESTS nothing forks; prepare still runs, once."""
    sc = api.load_scenario(SMALL)
    seen: list[int] = []
    S.simulate(sc, Path.cwd(), workers=1, expected=1.0, prepare=lambda: seen.append(1))
    assert seen == [1]


def test_the_background_writer_writes_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, may_fork: None
) -> None:
    """The tables written by a forked child while the report renders here: the same bytes as
    written in this process; the report is rendered while the child is alive."""
    res = api.run(SMALL)
    alive: list[int] = []

    def report() -> str:
        alive.append(len(multiprocessing.active_children()))
        return "<html></html>"

    monkeypatch.setattr(R, "BACKGROUND_MIN_ROWS", 1)
    res.save(tmp_path / "forked", report=False, extra_files={"report.html": report})
    monkeypatch.setattr(R, "BACKGROUND_MIN_ROWS", 10**12)
    res.save(tmp_path / "serial", report=False, extra_files={"report.html": report})
    assert alive == [1, 0]
    forked, serial = _files(tmp_path / "forked"), _files(tmp_path / "serial")
    assert forked == serial
    assert gzip.decompress(forked["requests.csv.gz"]).startswith(b"replication,platform,")


def test_no_child_without_work_to_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts only (nothing to make meanwhile): the tables are written here, not forked."""
    res = api.run(SMALL)
    monkeypatch.setattr(R, "BACKGROUND_MIN_ROWS", 1)
    forks: list[int] = []
    monkeypatch.setattr(R, "Forked", lambda fn: forks.append(1))
    res.save(tmp_path / "out", report=False, extra_files={"note.txt": "x"})
    assert forks == []
    assert (tmp_path / "out" / "requests.csv.gz").is_file()


def test_an_extra_file_function_returning_none_writes_no_file(tmp_path: Path) -> None:
    res = api.run(SMALL)
    res.save(tmp_path / "out", report=False, extra_files={"report.html": lambda: None})
    assert not (tmp_path / "out" / "report.html").exists()
    assert (tmp_path / "out" / "requests.csv.gz").is_file()


def test_a_failure_in_the_background_writer_is_raised_and_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, may_fork: None
) -> None:
    """The child's exception comes back as itself; no temporary folder stays behind, and the
    previous results are left as they were."""
    res = api.run(SMALL)
    res.save(tmp_path / "out", report=False)
    before = _files(tmp_path / "out")

    def broken(folder: Path, runs: Any, tables: Any = None) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(R, "BACKGROUND_MIN_ROWS", 1)
    monkeypatch.setattr(R, "_write_tables", broken)  # the forked child inherits it
    with pytest.raises(OSError, match="No space left"):
        res.save(tmp_path / "out", report=False, extra_files={"report.html": lambda: "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert _files(tmp_path / "out") == before


def test_start_up_runs_without_the_garbage_collector() -> None:
    """Off during start-up, on (with start-up's objects frozen out of collections) from
    startup_done(), and as it was once the command returns."""
    assert gc.isenabled()
    with common.no_gc_during_startup():
        assert not gc.isenabled()
        common.startup_done()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        common.startup_done()  # a second call changes nothing
        assert gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    common.startup_done()  # outside the CLI: the caller's collector is left alone
    assert gc.get_freeze_count() == 0


def test_a_command_that_fails_early_leaves_the_collector_on(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sim.cli import main

    result = CliRunner().invoke(main, ["run", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_sweep_overlaps_prepare_with_a_forked_worker(may_fork: None) -> None:
    """One worker: the jobs run in a forked process while `prepare` runs here."""
    from sim.studies.sweep import _run_local, single_platform

    sc = api.load_scenario(SMALL)
    args = {"a": (single_platform(sc, "fn"), "fn", str(Path.cwd()))}
    seen: list[int] = []
    out = list(_run_local(args, 1, lambda: seen.append(len(multiprocessing.active_children()))))
    assert seen == [1]
    serial = list(_run_local(args, 1))
    assert [k for k, _, _ in out] == ["a"]
    assert out[0][1] == serial[0][1]  # the same metrics


def test_ccdf_probabilities_are_numpy_unique_of_the_same_values() -> None:
    from sim.records import CCDF_PROBS

    want = np.unique(np.concatenate([np.logspace(0, -6, 121), [0.5, 0.1, 0.01, 0.001]]))[::-1]
    assert CCDF_PROBS.dtype == want.dtype
    assert CCDF_PROBS.tobytes() == want.tobytes()


def test_the_sim_process_exits_with_the_documented_codes(tmp_path: Path) -> None:
    """`python -m sim` ends with os._exit after flushing (no interpreter tear-down): the exit
    status and every byte of stdout and stderr are those of main()."""
    import subprocess
    import sys

    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    run = [sys.executable, "-m", "sim", "run", "s.yaml", "--json", "--out", "out"]
    ok = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["scenario"] == "wholeproc"
    assert {"summary.json", "requests.csv.gz", "report.html"} <= {
        p.name for p in (tmp_path / "out").iterdir()
    }
    bad = subprocess.run(
        [sys.executable, "-m", "sim", "run", "missing.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("sim: error: ")
    version = subprocess.run(
        [sys.executable, "-m", "sim", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("sim, version ")


def test_entry_runs_atexit_handlers_and_skips_the_tear_down() -> None:
    import subprocess
    import sys

    code = (
        "import atexit, sys\n"
        "class Torn:\n"
        "    def __del__(self):\n"
        "        sys.stderr.write('torn down\\n')\n"
        "kept = Torn()\n"
        "atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
        "sys.argv = ['sim', '--version']\n"
        "from sim.cli import entry\n"
        "entry()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.startswith("sim, version ")
    assert "atexit ran" in out.stderr
    assert "torn down" not in out.stderr  # module globals are not freed one by one


TWO = {
    **SMALL,
    "platforms": [
        {"name": "fn", "type": "lambda", "memory": 1024, "reserved_concurrency": 3},
        {"name": "wasm", "type": "wasm"},
    ],
}


def test_requests_gz_without_pandas_is_the_frames_file_byte_for_byte(tmp_path: Path) -> None:
    """Two replications x two platforms (throttles: outcome text, instance -1, cold flags):
    the bytes the worker makes from the sample arrays are those of the frame written through
    csv_chunks (itself checked against pandas' to_csv in test_results_files)."""
    runs = api.run(TWO).runs
    assert any((r.stats.sample["outcome"] != 0).any() for r in runs)
    R._write_gz(tmp_path / "requests.csv.gz", R.requests_frame(runs))
    made = R.requests_csv_gz(runs)
    assert made is not None and made == (tmp_path / "requests.csv.gz").read_bytes()
    rows = sum(len(r.stats.sample["arrival"]) for r in runs)
    assert gzip.decompress(made).count(b"\n") == 1 + rows


def test_requests_gz_leaves_to_pandas_what_needs_it() -> None:
    """A NaN cell or a platform name that needs CSV quoting: None (the frame is written)."""
    runs = api.run(SMALL).runs
    start = runs[0].stats.sample["start"].copy()
    start[0] = np.nan
    runs[0].stats.sample = {**runs[0].stats.sample, "start": start}
    assert R.requests_csv_gz(runs) is None
    runs = api.run(SMALL).runs
    for r in runs:
        r.platform = 'f,"n"'
    assert R.requests_csv_gz(runs) is None
    assert R.requests_csv_gz([]) is None


def test_the_worker_formats_requests_gz_and_the_folder_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, may_fork: None
) -> None:
    """will_save (sim run): the one-worker overlapped run formats requests.csv.gz in its worker
    after the jobs; the folder is the one the serial path writes, byte for byte."""
    monkeypatch.setattr(S, "OVERLAP_MIN_REQUESTS", 0)
    made: list[bool] = []
    forked = api.run(TWO, workers=1, will_save=True, prepare=lambda: made.append(True))
    assert made == [True] and forked.requests_gz is not None  # the worker's bytes
    assert forked.requests_gz() == forked.requests_gz()  # received once, kept
    forked.save(tmp_path / "forked", report=False)
    serial = api.run(TWO, workers=1)
    assert serial.requests_gz is None
    serial.save(tmp_path / "serial", report=False)
    assert _files(tmp_path / "forked") == _files(tmp_path / "serial")


@pytest.mark.parametrize("prepare_s", [0.0, 0.5])
def test_a_one_job_run_shares_requests_gz_chunks_and_the_folder_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, may_fork: None, prepare_s: float
) -> None:
    """One job (one platform, one replication): the worker sends its requests sample before the
    statistics and both processes compress chunks of requests.csv.gz, whichever is free (a
    slow prepare leaves more to the worker). The folder is the serial path's, byte for byte;
    the sample spans several 10,000-row chunks, so both can take some."""
    monkeypatch.setattr(S, "OVERLAP_MIN_REQUESTS", 0)
    one = {**SMALL, "replications": 1, "duration": "25m"}  # ~60,000 requests: the full sample
    made: list[int] = []
    forked = api.run(
        one, workers=1, will_save=True, prepare=lambda: made.append(time.sleep(prepare_s) or 1)
    )
    assert made == [1] and forked.requests_gz is not None
    assert len(forked.runs[0].stats.sample["arrival"]) > 3 * R._CSV_CHUNK_ROWS
    forked.save(tmp_path / "forked", report=False)
    serial = api.run(one, workers=1)
    serial.save(tmp_path / "serial", report=False)
    assert _files(tmp_path / "forked") == _files(tmp_path / "serial")


def test_gz_segments_made_anywhere_are_one_member_gzip_reads(tmp_path: Path) -> None:
    """requests.csv.gz is one gzip member of independent deflate segments, one per text chunk:
    wherever the chunks are split between processes the bytes are the same, and the file is
    what the gzip tool, Python's gzip and a single-member zlib read accept, with zlib's CRC-32
    of the whole text (computed here from the text, not from the segments)."""
    runs = api.run(TWO).runs
    chunks = list(R.csv_chunks(R.requests_frame(runs)))[:3]  # the header and two chunks
    chunks += [c[:50_000].upper() for c in chunks[1:]] * 2  # and a few more, shorter
    text = "".join(chunks).encode()
    whole = R.gzip_member("requests.csv.gz", [R.deflated(chunks)])
    for k in range(len(chunks) + 1):
        parts = [R.deflated(chunks[:k]), R.deflated(chunks[k:])]
        assert R.gzip_member("requests.csv.gz", parts) == whole
    assert gzip.decompress(whole) == text
    d = zlib.decompressobj(wbits=31)  # gzip framing, one member
    assert d.decompress(whole) == text and d.eof and d.unused_data == b""
    assert int.from_bytes(whole[-8:-4], "little") == zlib.crc32(text)
    assert int.from_bytes(whole[-4:], "little") == len(text)
    (tmp_path / "r.csv.gz").write_bytes(whole)
    if shutil.which("gzip"):
        out = subprocess.run(["gzip", "-dc", str(tmp_path / "r.csv.gz")], capture_output=True)
        assert out.returncode == 0 and out.stdout == text
    assert whole[3] == 0x08 and whole[10:23] == b"requests.csv\x00"  # FNAME, as GzipFile's
