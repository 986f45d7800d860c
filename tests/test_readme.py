"""The README's commands work when pasted, and its sample output is what `sim run` prints.

Every ```bash block of README.md runs in a fresh folder holding a copy of scenarios/, with a
`sim` on PATH (this interpreter, this checkout), under `bash -e`. `pip install` and the test
suite itself are skipped. The default suite runs each block with a short `--duration` (and one
replication) added to every simulating command, which checks that the command lines parse and
run; `-m slow` runs them exactly as written.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```bash\n(.*?)^```", README, flags=re.S | re.M)
SIMULATING = re.compile(r"^(\s*sim (?:run|sweep|tune|crossover|compare)\b.*?)(\s+#.*)?$")
SHORT = " --duration 10m --set warmup=1m --replications 1"


def _lines(block: str) -> list[str]:
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        kept = [
            part
            for part in line.split(" && ")
            if not part.strip().startswith("pip ") and "pytest" not in part
        ]
        if kept:
            out.append(" && ".join(kept))
    return out


def _script(block: str, short: bool) -> str:
    lines = []
    for line in _lines(block):
        m = SIMULATING.match(line)
        if short and m:
            line = m.group(1) + SHORT
        lines.append(line)
    if "_SIM_COMPLETE" in block:
        lines.append("complete -p sim >/dev/null")  # the completion really was registered
    return "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a console script like pip's: argv[0] is `sim`, so click's completion variable is
    # _SIM_COMPLETE as the README says
    sim = bin_dir / "sim"
    sim.write_text(f"#!{sys.executable}\nimport sys\nfrom sim.cli import main\nsys.exit(main())\n")
    sim.chmod(0o755)
    return tmp_path


def _run(script: str, folder: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=folder / "work" if (folder / "work").is_dir() else folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_the_readme_has_command_blocks() -> None:
    assert len(BLOCKS) >= 4
    # every SLO on a command line is quoted: unquoted, `<` is a shell redirect
    for line in (ln for b in BLOCKS for ln in b.splitlines()):
        for m in re.finditer(r"--slo\s+(\S+)", line):
            assert m.group(1)[0] in "'\"", line


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_with_a_short_duration(index: int, folder: Path) -> None:
    r = _run(_script(BLOCKS[index], short=True), folder)
    assert r.returncode == 0, f"block {index}:\n{BLOCKS[index]}\n{r.stdout[-2000:]}\n{r.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_as_written(index: int, folder: Path) -> None:
    r = _run(_script(BLOCKS[index], short=False), folder)
    assert r.returncode == 0, f"block {index}:\n{BLOCKS[index]}\n{r.stdout[-2000:]}\n{r.stderr}"


def test_sample_output_is_what_sim_run_prints(folder: Path) -> None:
    m = re.search(r"^## Sample output\n\n```\n\$ (sim run [^\n]+)\n(.*?)^```", README, re.S | re.M)
    assert m, "the Sample output section"
    command, shown = m.groups()
    r = _run(command + "\n", folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip("\n") == shown.rstrip("\n")
