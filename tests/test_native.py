"""sim's compiled modules (sim/native.py): loaded only for the source they were compiled from,
never instead of an edited one; off with SIM_NATIVE=0; the same results as Python."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sim.platforms
from sim import native
from sim.platforms import lambda_warm

from conftest import ROOT, timeless

NAME = "sim.platforms.lambda_warm"
SOURCE = ROOT / "sim" / "platforms" / "lambda_warm.py"


def _built() -> bool:
    return (Path(native.FOLDER) / native.compiled_name(NAME)).is_file()


def test_ci_runs_the_native_build() -> None:
    """CI (.ci/run sets SIM_REQUIRE_NATIVE=1) installs with a C compiler: every listed module
    must load compiled there, or the tests comparing them with Python would skip unseen."""
    if not os.environ.get("SIM_REQUIRE_NATIVE"):
        pytest.skip("outside CI an install may lack a C compiler")
    assert os.environ.get("SIM_NATIVE", "1") != "0"
    assert set(native.read_manifest(native.FOLDER)) == set(native.MODULES)
    assert native.is_compiled(lambda_warm), "the install built no native modules"


def test_every_listed_module_is_a_source_that_needs_no_file_path() -> None:
    """A compiled module's __file__ is its build in sim/_native/, not its folder: none of them
    may find data beside itself."""
    for name in native.MODULES:
        path = ROOT / (name.replace(".", "/") + ".py")
        assert path.is_file(), name
        assert "__file__" not in path.read_text(), name


def test_source_key_sees_any_edit() -> None:
    data = native.source_bytes(str(SOURCE))
    assert data.startswith(SOURCE.read_bytes()) and data.endswith(
        SOURCE.with_suffix(".pxd").read_bytes()
    )
    assert native.source_key(data) == native.source_key(bytes(data))
    assert native.source_key(data) != native.source_key(data.replace(b"<=", b"< ", 1))
    assert native.source_key(data) != native.source_key(data + b"\n")


def test_the_build_loads_only_for_its_own_source(tmp_path: Path) -> None:
    """The finder, on a copy of the package folder: the unchanged source gets the compiled
    module, an edited one its own .py (never a stale build), an unlisted module the normal
    import."""
    if not _built():
        pytest.skip("this install has no native build")
    key = native.source_key(native.source_bytes(str(SOURCE)))
    finder = native._Finder(native.FOLDER, {NAME: key})
    build = os.path.join(native.FOLDER, native.compiled_name(NAME))
    spec = finder.find_spec(NAME, sim.platforms.__path__)
    assert spec is not None and spec.origin == build
    copy, pxd = tmp_path / "lambda_warm.py", tmp_path / "lambda_warm.pxd"
    shutil.copyfile(SOURCE, copy)
    shutil.copyfile(SOURCE.with_suffix(".pxd"), pxd)
    spec = finder.find_spec(NAME, [str(tmp_path)])
    assert spec is not None and spec.origin == build  # the same bytes, anywhere
    pxd.write_text(pxd.read_text() + "\n# edited\n")  # its C types changed: Python
    spec = finder.find_spec(NAME, [str(tmp_path)])
    assert spec is not None and spec.origin == str(copy)
    shutil.copyfile(SOURCE.with_suffix(".pxd"), pxd)
    copy.write_text(SOURCE.read_text() + "\n# edited\n")
    spec = finder.find_spec(NAME, [str(tmp_path)])
    assert spec is not None and spec.origin == str(copy)  # Python: the source as it is now
    assert finder.find_spec("sim.platforms.lambda_", sim.platforms.__path__) is None
    assert finder.loaded == {NAME}


def test_a_build_needs_the_modules_it_cimports_unchanged(tmp_path: Path) -> None:
    """The system engine's build has the C layouts of sim.platforms.base's classes (its .pxd
    cimports them): with base.py edited (Python), the engine runs as Python too; the build
    would refuse base's Python classes at import ("size changed")."""
    engine, base = "sim.systems.engine", "sim.platforms.base"
    manifest = native.read_manifest(native.FOLDER)
    if set(manifest) != set(native.MODULES):
        pytest.skip("this install has no native build of every module")
    for name in native.MODULES:  # the compiled modules' sources, in a package layout
        src = ROOT / (name.replace(".", "/") + ".py")
        dst = tmp_path / src.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        if src.with_suffix(".pxd").is_file():
            shutil.copyfile(src.with_suffix(".pxd"), dst.with_suffix(".pxd"))
    assert base in native.cimported(str(tmp_path / "sim" / "systems" / "engine.pxd"))
    finder = native._Finder(native.FOLDER, manifest)
    where = [str(tmp_path / "sim" / "systems")]
    spec = finder.find_spec(engine, where)
    assert spec is not None and spec.origin == os.path.join(
        native.FOLDER, native.compiled_name(engine)
    )
    copy = tmp_path / "sim" / "platforms" / "base.py"
    copy.write_text(copy.read_text() + "\n# edited\n")
    spec = finder.find_spec(engine, where)
    assert spec is not None and spec.origin == str(tmp_path / "sim" / "systems" / "engine.py")


def test_manifest(tmp_path: Path) -> None:
    """Only well-formed lines naming a listed module; nothing (no finder) otherwise."""
    assert native.read_manifest(str(tmp_path)) == {}  # no manifest: no build
    manifest = tmp_path / native.MANIFEST
    manifest.write_text(f"{NAME} 10:0000abcd\nsim.not_listed 1:00000000\n")
    assert native.read_manifest(str(tmp_path)) == {NAME: "10:0000abcd"}
    manifest.write_text("a garbled line of five words\n")
    assert native.read_manifest(str(tmp_path)) == {}


def test_sim_native_0_runs_python() -> None:
    code = (
        "import sim.native as n; from sim.platforms import lambda_warm as w; "
        "print(n.is_compiled(w))"
    )
    env = {**os.environ, "SIM_NATIVE": "0", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def _run_cli(scenario: Path, out: Path, native_on: bool) -> None:
    env = {**os.environ, "SIM_NATIVE": "1" if native_on else "0", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sim", "run", str(scenario), "--out", str(out), "--no-html"]
    res = subprocess.run([*cmd, "--duration", "15m"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    "name", ["system-hybrid-orders", "system-kafka-orders", "system-iot-pipeline", "busy-api"]
)
def test_compiled_and_python_write_the_same_files(name: str, tmp_path: Path) -> None:
    """Whole runs, compiled modules on and off: the same files byte for byte (summary.json but
    its wall times). The equivalence tests hold the compiled engine to the reference models
    too; this holds it to its own source."""
    if not native.read_manifest(native.FOLDER):
        pytest.skip("this install has no native build")
    folders = [tmp_path / "native", tmp_path / "python"]
    for folder, on in zip(folders, (True, False), strict=True):
        _run_cli(ROOT / "scenarios" / f"{name}.yaml", folder, on)
    names = sorted(p.name for p in folders[0].iterdir())
    assert "summary.json" in names and names == sorted(p.name for p in folders[1].iterdir())
    for file in names:
        a, b = ((f / file).read_bytes() for f in folders)
        if file == "summary.json":
            a, b = (timeless(json.loads(x)) for x in (a, b))
        elif file.endswith(".gz"):
            a, b = gzip.decompress(a), gzip.decompress(b)
        assert a == b, file
