"""The Python API: docs/api.md's session runs as written, and the API is the CLI's code path
(same scenario and seed -> the same summary.json and requests file as `sim run`)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim
from sim.cli import main

from conftest import ROOT, timeless

SMALL = {
    "name": "api-small",
    "duration": "20m",
    "seed": 3,
    "workload": {
        "arrivals": [{"steady": {"rate": "10/s"}}],
        "service": {"duration": "100ms"},
    },
    "platforms": [{"name": "lambda", "type": "lambda", "memory": 1769}],
}


def _blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_docs_api_session_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(ROOT)
    blocks = _blocks((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "duraton" in out  # the typo, reported as the CLI reports it
    assert namespace["table"].index.tolist() == [p.name for p in namespace["sc"].platforms]
    grid = namespace["grid"]
    # memory 256 -> 2048 MB: more vCPU, shorter handler time (cpu_bound share)
    lam = grid[grid["platform"] == "lambda"].sort_values("platforms.lambda.memory")
    assert lam["p99_ms"].is_monotonic_decreasing
    assert {"small-api", "notebook.html", "compare.html"} <= {
        p.name for p in namespace["out"].iterdir()
    }


def test_dict_and_file_give_the_same_scenario(tmp_path: Path) -> None:
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    from sim.scenario import resolved_dict

    assert resolved_dict(sim.load_scenario(SMALL)) == resolved_dict(sim.load_scenario(f))


def test_overrides_as_strings_or_mapping() -> None:
    a = sim.load_scenario(SMALL, overrides=["platforms.lambda.memory=512", "seed=9"])
    b = sim.load_scenario(SMALL, overrides={"platforms.lambda.memory": 512, "seed": 9})
    assert a == b
    assert a.platform("lambda").memory == 512 and a.seed == 9


def test_dict_errors_name_the_key() -> None:
    with pytest.raises(sim.InputError) as err:
        sim.load_scenario({**SMALL, "platforms": [{"name": "l", "type": "lambda", "memory": 5}]})
    assert "platforms[0].memory" in str(err.value) or "memory" in str(err.value)
    assert "<scenario dict>" in str(err.value)


def test_api_run_is_the_cli_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    cli = CliRunner().invoke(main, ["run", str(f), "--out", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    res = sim.run(f)
    res.save(tmp_path / "api")

    def summary(folder: Path) -> dict:
        return timeless(json.loads((folder / "summary.json").read_text()))

    assert summary(tmp_path / "cli") == summary(tmp_path / "api")
    raw = [gzip.decompress((tmp_path / d / "requests.csv.gz").read_bytes()) for d in ("cli", "api")]
    assert raw[0] == raw[1]
    back = sim.load_results(tmp_path / "api")
    assert len(back.requests) == len(res.requests) == res.summary["platforms"]["lambda"]["requests"]


def test_results_from_a_folder_cannot_be_saved_again(tmp_path: Path) -> None:
    res = sim.run(SMALL)
    res.save(tmp_path / "r", report=False)
    assert not (tmp_path / "r" / "report.html").exists()
    with pytest.raises(sim.InputError):
        sim.load_results(tmp_path / "r").save(tmp_path / "again")
