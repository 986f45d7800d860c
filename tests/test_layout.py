"""The package's layout holds: imports point one way (down the pipeline), no module circles, and
the cheap commands stay cheap (no scipy, pandas, plotly or simulation kernels for `--help`).

Imports are read from the source with `ast` (every import statement, also inside functions and
under TYPE_CHECKING), so a lazy import that points the wrong way fails here too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "sim"

# Rooms from the bottom of the pipeline to the top. A module may import its own room and rooms
# below it. Rooms that share a rank are peers and must not import each other.
LAYERS: list[tuple[str, ...]] = [
    (
        "sim.units",
        "sim.errors",
        "sim.defaults",
        "sim.format",
        "sim.compiled",
        "sim.native",
        "sim._cython",
    ),
    ("sim.figure",),  # plotly.js figure dicts: the report and the studies' pages
    ("sim.config",),
    ("sim.distributions",),
    ("sim.records", "sim.pricing"),
    ("sim.workload",),
    ("sim.platforms",),
    # systems of services (issue 17): spec keys read by sim.scenario; the system data plane the
    # engine runs (it reaches the scenario only as an argument, never by import)
    ("sim.systems",),
    ("sim.scenario",),
    ("sim.engine",),
    ("sim.statistics",),
    ("sim.verdict",),
    ("sim.results",),
    ("sim.simulate",),
    ("sim.studies", "sim.report", "sim.validation"),
    ("sim.fit",),
    ("sim.api",),
    ("sim.cli",),
    ("sim.__main__",),
    ("sim.dev",),
]
# The package root holds only the version and the lazy Python API (PEP 562 __getattr__); every
# module may read `sim.__version__`.
ROOT_MODULE = "sim"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.add(name)
            # `from sim import report` imports the module sim.report
            out.update(f"{name}.{a.name}" for a in node.names if _is_module(f"{name}.{a.name}"))
    return {m for m in out if m == ROOT_MODULE or m.startswith(ROOT_MODULE + ".")}


def _is_module(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _modules() -> dict[str, set[str]]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        mods[name] = {m for m in _imports(path, name) if m != name}
    return mods


def _rank(module: str) -> tuple[int, str]:
    for rank, rooms in enumerate(LAYERS):
        for room in rooms:
            if module == room or module.startswith(room + "."):
                return rank, room
    raise AssertionError(f"{module} belongs to no room in LAYERS: add it where it belongs")


def _resolve(target: str, known: set[str]) -> str:
    """`sim.pricing.price` (a name imported from a module) -> the module `sim.pricing`."""
    while target not in known and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def test_every_module_has_a_room() -> None:
    for name in _modules():
        if name != ROOT_MODULE:
            _rank(name)


def wrong_way(mods: dict[str, set[str]]) -> list[str]:
    known = set(mods)
    wrong = []
    for name, targets in mods.items():
        if name == ROOT_MODULE:
            continue
        rank, room = _rank(name)
        for t in sorted(targets):
            t = _resolve(t, known)
            if t == ROOT_MODULE:
                continue
            t_rank, t_room = _rank(t)
            if t_rank > rank or (t_rank == rank and t_room != room):
                wrong.append(f"{name} -> {t}")
    return wrong


def circles(mods: dict[str, set[str]]) -> list[str]:
    known = set(mods)
    graph = {n: {_resolve(t, known) for t in ts} - {ROOT_MODULE, n} for n, ts in mods.items()}
    found: list[str] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(" -> ".join([*stack[stack.index(m) :], m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_imports_point_down_the_pipeline() -> None:
    wrong = wrong_way(_modules())
    assert not wrong, "imports pointing up or sideways:\n" + "\n".join(wrong)


def test_no_import_circles() -> None:
    found = circles(_modules())
    assert not found, "import circles:\n" + "\n".join(found)


def test_no_command_imports_another_command() -> None:
    wrong = [
        f"{name} -> {t}"
        for name, targets in _modules().items()
        if name.startswith("sim.cli.") and name != "sim.cli.common"
        for t in targets
        if t.startswith("sim.cli") and t not in ("sim.cli.common", "sim.cli.console")
    ]
    assert not wrong, wrong


def test_the_checks_catch_what_they_must(tmp_path: Path) -> None:
    # Upwards (the engine reading the report), sideways (a study importing the report) and a
    # circle (the report's data importing the report back), read from real source text.
    src = tmp_path / "engine.py"
    src.write_text("def f():\n    from sim.report.figures import tail_figure\n")
    mods = {
        "sim.engine": _imports(src, "sim.engine"),
        "sim.report.figures": set(),
        "sim.studies.sweep": {"sim.report"},
        "sim.report": {"sim.report.data"},
        "sim.report.data": {"sim.report"},
    }
    assert mods["sim.engine"] == {"sim.report.figures"}
    assert wrong_way(mods) == [
        "sim.engine -> sim.report.figures",
        "sim.studies.sweep -> sim.report",
    ]
    assert circles(mods) == ["sim.report -> sim.report.data -> sim.report"]


HEAVY = (
    "scipy",
    "pandas",
    "plotly",
    "simpy",
    "sim.engine",
    "sim.platforms.kubernetes",
    "sim.platforms.lambda_",
    "sim.platforms.wasm",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        [],
        ["schema"],
        ["run"],
        ["run", "--help"],
        ["nosuchcommand"],
        ["sweep", "--help"],
        ["validate", "--help"],
    ],
    ids=lambda a: " ".join(a) or "bare",
)
def test_cheap_commands_import_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import json, sys\n"
        f"sys.argv = ['sim', *{argv!r}]\n"
        "from sim.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        # numpy too: ~0.1 s of a 0.1 s `sim --help` (a top-level import of a module that
        # needs it, sim.systems.summary in sim.cli.run, doubled it once)
        f"heavy = {HEAVY!r} + ('numpy',)\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert loaded == [], f"`sim {' '.join(argv)}` imported {loaded}"


def test_import_sim_is_light() -> None:
    code = (
        "import json, sys, sim\n"
        f"print(json.dumps([m for m in {HEAVY!r} + ('pydantic', 'numpy') if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert json.loads(proc.stdout) == []
