"""Nothing a user owns is ever destroyed (issue 11): the data-loss cases one by one, interrupts
by real signals, and random mutations of the bundled scenarios (exit 0 or 2, never 3, never a
traceback, never a hang, never a change outside the output folder)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_inputs import KEDA as KEDA_TEXT
from test_bad_inputs import LAMBDA, invoke, snapshot

from sim.results import MARKER
from sim.scenario import parse_yaml

from conftest import ROOT, SCENARIOS

RUN = ["--no-report", "--replications", "1", "--duration", "2m"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    write(tmp_path / "s.yaml", LAMBDA)
    return tmp_path


# --- sim run --out -----------------------------------------------------------------------------


def test_out_holding_the_scenario_and_notes_is_refused_and_kept(work: Path) -> None:
    write(work / "notes.md", "my notes")
    before = snapshot(work, set())
    res = invoke(["run", "s.yaml", "--out", ".", *RUN], work)
    assert res.exit_code == 2, res.stderr
    assert "did not write" in res.stderr and "--subfolder" in res.stderr
    assert snapshot(work, set()) == before


def test_out_that_is_a_file_is_refused_and_kept(work: Path) -> None:
    write(work / "report.txt", "keep me")
    res = invoke(["run", "s.yaml", "--out", "report.txt", *RUN], work)
    assert res.exit_code == 2
    assert "not a folder" in res.stderr
    assert (work / "report.txt").read_text() == "keep me"


def test_run_replaces_its_own_results_folder(work: Path) -> None:
    assert invoke(["run", "s.yaml", "--out", "out", *RUN], work).exit_code == 0
    marker = json.loads((work / "out" / MARKER).read_text())
    assert marker["written_by"] == "sim" and marker["kind"] == "results"
    first = (work / "out" / "summary.json").read_text()
    res = invoke(["run", "s.yaml", "--out", "out", *RUN, "--seed", "9"], work)
    assert res.exit_code == 0, res.stderr
    assert (work / "out" / "summary.json").read_text() != first
    assert not [p for p in work.iterdir() if p.name.startswith(".out.")]


def test_own_results_folder_with_a_user_file_added_is_refused(work: Path) -> None:
    assert invoke(["run", "s.yaml", "--out", "out", *RUN], work).exit_code == 0
    write(work / "out" / "analysis.ipynb", "{}")
    before = snapshot(work, set())
    res = invoke(["run", "s.yaml", "--out", "out", *RUN], work)
    assert res.exit_code == 2
    assert "analysis.ipynb" in res.stderr
    assert snapshot(work, set()) == before


def test_results_folder_from_before_the_marker_is_still_recognised(work: Path) -> None:
    legacy = {"sim_version": "0.1", "resolved_scenario": {}, "platforms": {}}
    write(work / "out" / "summary.json", json.dumps(legacy))
    write(work / "out" / "timeline.csv", "time_s\n")
    assert invoke(["run", "s.yaml", "--out", "out", *RUN], work).exit_code == 0
    assert (work / "out" / MARKER).is_file()


def test_another_commands_folder_is_not_replaced(work: Path) -> None:
    write(work / "sw" / MARKER, json.dumps({"written_by": "sim", "kind": "sweep"}))
    write(work / "sw" / "sweep.csv", "a\n")
    res = invoke(["run", "s.yaml", "--out", "sw", *RUN], work)
    assert res.exit_code == 2 and "sim sweep" in res.stderr
    assert (work / "sw" / "sweep.csv").read_text() == "a\n"


def test_subfolder_writes_a_new_folder_and_deletes_nothing(work: Path) -> None:
    write(work / "proj" / "notes.md", "mine")
    for expected in ("t", "t-2"):
        res = invoke(["run", "s.yaml", "--out", "proj", "--subfolder", *RUN], work)
        assert res.exit_code == 0, res.stderr
        assert (work / "proj" / expected / "summary.json").is_file()
    assert (work / "proj" / "notes.md").read_text() == "mine"


@pytest.mark.parametrize("name", ["..", ".", "../escape", ".hidden", "a/../../b"])
def test_scenario_name_never_leaves_results(work: Path, name: str) -> None:
    write(work / "s.yaml", LAMBDA.replace("name: t", f"name: {json.dumps(name)}"))
    (work / "results").mkdir()
    before = snapshot(work.parent, set())
    res = invoke(["run", "s.yaml", *RUN], work)
    assert res.exit_code == 2 and "name" in res.stderr
    assert snapshot(work.parent, set()) == before


def test_bad_out_is_caught_before_simulating(work: Path, monkeypatch) -> None:
    import sim.simulate

    def never(*a: Any, **k: Any) -> Any:
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(sim.simulate, "simulate", never)
    for out in ("", ".", "s.yaml/x", "/proc/x", "s.yaml"):
        res = invoke(["run", "s.yaml", "--out", out], work)
        assert res.exit_code == 2, (out, res.stderr)


# --- compare and the studies --------------------------------------------------------------------


def test_compare_never_replaces_a_foreign_folder(work: Path) -> None:
    write(work / "c" / "report.html", "<p>my report</p>")
    res = invoke(["compare", "s.yaml", "--out", "c"], work)
    assert res.exit_code == 2 and "did not write" in res.stderr
    assert (work / "c" / "report.html").read_text() == "<p>my report</p>"
    assert not (work / "results").exists()


def test_compare_rewrites_its_own_folder(work: Path) -> None:
    for _ in range(2):
        res = invoke(["compare", "s.yaml", "--out", "c"], work)
        assert res.exit_code == 0, res.stderr
    assert {p.name for p in (work / "c").iterdir()} == {"report.html", MARKER}


def test_sweep_writes_into_its_own_folder_only(work: Path) -> None:
    args = [
        "sweep",
        "s.yaml",
        "--param",
        "platforms.fn.memory=512,1024",
        "--duration",
        "2m",
        "--replications",
        "1",
        "--no-html",
    ]
    assert invoke([*args, "--out", "sw"], work).exit_code == 0
    assert json.loads((work / "sw" / MARKER).read_text())["kind"] == "sweep"
    res = invoke([*args, "--out", "sw", "--fresh"], work)
    assert res.exit_code == 0, res.stderr
    # a folder with the user's own points.jsonl: refused, --fresh deletes nothing there
    write(work / "theirs" / "points.jsonl", '{"mine": 1}\n')
    write(work / "theirs" / "notes.md", "x")
    res = invoke([*args, "--out", "theirs", "--fresh"], work)
    assert res.exit_code == 2
    assert (work / "theirs" / "points.jsonl").read_text() == '{"mine": 1}\n'


@pytest.mark.parametrize(
    "command",
    [
        ["tune", "s.yaml", "--param", "memory=512,1024", "--slo", "p99<5s"],
        ["crossover", "s.yaml", "--volume", "1k/month..10k/month", "--points", "2"],
    ],
    ids=["tune", "crossover"],
)
def test_tune_and_crossover_refuse_foreign_folders(work: Path, command: list[str]) -> None:
    write(work / "mine" / "data.csv", "1\n")
    before = snapshot(work, set())
    res = invoke([*command, "--out", "mine"], work)
    assert res.exit_code == 2 and "did not write" in res.stderr
    assert snapshot(work, set()) == before


# --- interrupts: real signals -------------------------------------------------------------------

# Runs `sim run` in a fresh interpreter and sends itself `sig` when the results writer reaches
# `phase` (write: while the tables are being written; swap: while the folder is renamed).
_SIGNAL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import sim.results as r
    sig, phase = getattr(signal, sys.argv[1]), sys.argv[2]
    if phase == "write":
        real = r._write_tables
        def hook(*a):
            os.kill(os.getpid(), sig)
            return real(*a)
        r._write_tables = hook
    else:
        real_check = r.check_output_folder
        calls = []
        def hook(out, kind, **k):
            calls.append(1)
            if len(calls) == 3:  # before the run, on entry, then inside the swap
                os.kill(os.getpid(), sig)
            return real_check(out, kind, **k)
        r.check_output_folder = hook
    from sim.cli import main
    sys.argv = ["sim", "run", "s.yaml", "--out", "out", "--no-report", "--seed", "5"]
    main()
    """
)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".out.") or "sim-" in p.name]


def _complete(out: Path) -> bool:
    names = {p.name for p in out.iterdir()}
    return {"summary.json", "requests.csv.gz", "timeline.csv", "decisions.csv", MARKER} <= names


@pytest.mark.parametrize("phase", ["write", "swap"])
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_leaves_old_results_or_new_complete_and_no_temporary(
    work: Path, sig: str, phase: str
) -> None:
    assert invoke(["run", "s.yaml", "--out", "out", "--no-report"], work).exit_code == 0
    old = (work / "out" / "summary.json").read_text()
    r = subprocess.run(
        [sys.executable, "-c", _SIGNAL_SCRIPT, sig, phase],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == (143 if sig == "SIGTERM" else 130), r.stderr
    assert "Traceback" not in r.stderr
    assert _leftovers(work) == []
    assert _complete(work / "out")
    new = (work / "out" / "summary.json").read_text()
    if phase == "write":
        assert new == old  # interrupted before the swap: the previous results, untouched
    else:
        assert new != old  # the swap ran to the end before the signal was taken
        assert json.loads(new)["seed"] == 5


def test_sigterm_at_random_moments(work: Path) -> None:
    """An outside SIGTERM at several moments of a real run: never a temporary folder left, and
    `out` is always the previous results or complete new ones."""
    write(work / "s.yaml", LAMBDA.replace("rate: 1/s", "rate: 2000/s").replace("10m", "20m"))
    assert invoke(["run", "s.yaml", "--out", "out", "--no-report"], work).exit_code == 0
    old = (work / "out" / "summary.json").read_text()
    for delay in (0.4, 1.2, 2.0, 3.0):
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sim",
                "run",
                "s.yaml",
                "--out",
                "out",
                "--no-report",
                "--seed",
                "3",
            ],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert b"Traceback" not in err
        assert _leftovers(work) == [], delay
        assert _complete(work / "out"), delay
        now = (work / "out" / "summary.json").read_text()
        assert now == old or json.loads(now)["seed"] == 3


# --- random mutations of the bundled scenarios ---------------------------------------------------

BUNDLED = sorted(SCENARIOS.glob("*.yaml"))
RETYPED = [None, True, "x", 0, -1, 1e9, [], {}, "NaN", "1e400", [1, 2], {"a": 1}]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _one_edit(word: str, draw: Any) -> str:
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    op = draw(st.sampled_from(["drop", "swap", "insert", "case"]))
    if op == "drop" and len(word) > 1:
        return word[:i] + word[i + 1 :]
    if op == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "case":
        return word[:i] + word[i : i + 1].swapcase() + word[i + 1 :]
    return word[:i] + "x" + word[i:]


@st.composite
def mutation(draw: Any) -> tuple[str, str]:
    src = draw(st.sampled_from(BUNDLED))
    data, _ = parse_yaml(src.read_text(), str(src))
    paths = _paths(data)
    target = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["delete", "rename", "retype", "duplicate"]))
    parent: Any = data
    for p in target[:-1]:
        parent = parent[p]
    key = target[-1]
    if op == "delete":
        del parent[key]
    elif op == "rename":
        parent[_one_edit(str(key), draw)] = parent.pop(key)
    elif op == "retype":
        parent[key] = draw(st.sampled_from(RETYPED))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if op == "duplicate":  # repeat one `key: value` line right after itself
        lines = text.splitlines(keepends=True)
        keyed = [i for i, ln in enumerate(lines) if ":" in ln and not ln.lstrip().startswith("-")]
        if keyed:
            i = draw(st.sampled_from(keyed))
            lines.insert(i + 1, lines[i])
        text = "".join(lines)
    return src.name, text


@contextlib.contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    """Fail (not wait forever) if a case runs longer than `seconds`: a hang, not a timing test."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutation())
def test_mutated_bundled_scenarios_exit_0_or_2(case: tuple[str, str], tmp_path_factory) -> None:
    name, text = case
    root = tmp_path_factory.mktemp("mut")
    shutil.copytree(SCENARIOS / "data", root / "data")
    write(root / name, text)
    before = snapshot(root, {root / "out"})
    with hang_guard(120):
        res = invoke(["run", name, "--out", "out", "--set", "warmup=0", *RUN], root)
    assert res.exit_code in (0, 2), (name, res.exit_code, res.stderr, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.stderr and "Traceback" not in res.output
    assert snapshot(root, {root / "out"}) == before


def test_every_bundled_scenario_is_a_mutation_source() -> None:
    assert len(BUNDLED) >= 10 and (ROOT / "scenarios" / "data").is_dir()
    assert os.environ.get("SIM_MAX_FILE_MB") is None


def test_refused_study_leaves_no_empty_folder(work: Path) -> None:
    write(work / "s.yaml", LAMBDA.replace("duration: 10m", "duration: 10m\ntimeline_step: 1us"))
    res = invoke(["sweep", "s.yaml", "--param", "platforms.fn.memory=512,1024"], work)
    assert res.exit_code == 2 and "timeline_step" in res.stderr
    assert not (work / "results" / "t-sweep").exists()


def test_event_estimate_is_the_hand_count() -> None:
    """1 h, 2 replications, timeline every 1 s, one KEDA platform polling every 30 s (its HPA
    syncs every 15 s) and a diurnal source with a 10-minute period."""
    from sim.simulate import expected_events

    from conftest import make_scenario

    data = yaml.safe_load(KEDA_TEXT)
    data.update(duration="1h", replications=2, timeline_step="1s")
    data["workload"]["arrivals"] = [
        {"diurnal": {"mean": "1/s", "amplitude": 0.5, "period": "10m", "peak": 0}}
    ]
    events = dict(expected_events(make_scenario(data)))
    assert events == {
        "timeline_step": 2 * 3600 / 1,
        "duration": 2 * 3600 / 3600,  # the workload's one-hour windows
        "platforms[0].keda.pollingInterval": 2 * (3600 / 30 + 3600 / 15),
        "workload.arrivals[0].diurnal.period": 2 * 3600 / 600,
    }
