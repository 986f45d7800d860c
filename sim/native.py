"""sim's optional compiled modules (issues 13 and 17; docs/model.md §19.14).

At install, setup.py has Cython compile the modules in MODULES - their own pure-Python source,
unchanged, with C types only where an augmenting .pxd file beside a module declares them - into
sim/_native/, with a manifest of the sources they were compiled from. `install()` (run when sim
is imported) makes `import sim.x.y` load the compiled sim.x.y instead of sim/x/y.py only while
that source (and its .pxd) is byte for byte the one compiled, and so are the sources of the sim
modules its .pxd cimports (their C layouts are built into it): an edited module (an editable
install, a checkout of another revision) runs as Python, and so do the modules compiled against
it, never as stale code. Without a C compiler or Cython the install has no sim/_native/ and
everything runs as Python, as with SIM_NATIVE=0.
The outputs are the same either way (tests/test_native.py); only the speed differs.

This module uses the standard library only: setup.py reads MODULES from it before sim's
dependencies are installed.
"""

from __future__ import annotations

import os
import sys
import zlib
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec, PathFinder
from typing import Any

# The modules compiled, hottest first: the Lambda plain loop's warm-hit kernel (typed by its
# .pxd), then the system engine's event loop and its queues (untyped: Cython runs the same
# Python semantics without the interpreter's dispatch: ~18% of a three-service hybrid's time),
# and the draw buffers every model uses. (sim.distributions cannot be: pydantic refuses
# compiled methods on its models.)
MODULES: tuple[str, ...] = (
    "sim.platforms.lambda_warm",
    "sim.systems.engine",
    "sim.systems.sqs",
    "sim.platforms.base",
)

# (os.path, not pathlib, and a text manifest, not JSON: `import sim` imports this module.)
FOLDER = os.path.join(os.path.dirname(__file__), "_native")
MANIFEST = "manifest.txt"  # a line per compiled module: "<module> <source_key>"


def source_bytes(path: str) -> bytes:
    """What a module's build is compiled from: its .py and, when there is one, the augmenting
    .pxd beside it (the C types), so an edit of either leaves the build unused."""
    with open(path, "rb") as f:
        data = f.read()
    pxd = os.path.splitext(path)[0] + ".pxd"
    if os.path.isfile(pxd):
        with open(pxd, "rb") as f:
            data += b"\0" + f.read()
    return data


def source_key(data: bytes) -> str:
    """What ties a compiled module to its source: the source's size and CRC-32 (zlib is loaded
    at start-up anyway; an accidental edit that keeps both is a 1 in 4e9 chance)."""
    return f"{len(data)}:{zlib.crc32(data):08x}"


def compiled_name(module: str) -> str:
    """The compiled file of `module` for this interpreter, e.g.
    sim.platforms.lambda_warm.cpython-311-x86_64-linux-gnu.so."""
    return module + EXTENSION_SUFFIXES[0]


class _Finder:
    """A meta-path finder for the modules in the manifest: the compiled module when its source
    is unchanged, else the source's own spec (found once, by the path finder)."""

    def __init__(self, folder: str, sources: dict[str, str]) -> None:
        self.folder = folder
        self.sources = sources  # module -> source_key of the source it was compiled from
        self.loaded: set[str] = set()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        key = self.sources.get(name)
        if key is None:
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is None or not spec.origin:
            return spec
        if not self._unchanged(name, spec.origin, {name}):
            return spec  # it, or a module whose C types it uses, edited since: Python
        self.loaded.add(name)
        binary = os.path.join(self.folder, compiled_name(name))
        return ModuleSpec(name, ExtensionFileLoader(name, binary), origin=binary)

    def _unchanged(self, name: str, origin: str, seen: set[str]) -> bool:
        """Whether `name`'s build is usable: its source the one compiled, and so every sim
        module its .pxd cimports (their compiled types are built into it: an edited one runs
        as Python, and the build would refuse its Python classes at import)."""
        try:
            current = source_key(source_bytes(origin))
        except OSError:
            return False
        binary = os.path.join(self.folder, compiled_name(name))
        if current != self.sources.get(name) or not os.path.isfile(binary):
            return False
        root = origin  # the folder holding the top package (origin less the module's path)
        for _ in name.split("."):
            root = os.path.dirname(root)
        for dep in cimported(os.path.splitext(origin)[0] + ".pxd"):
            if dep in seen:
                continue
            seen.add(dep)
            if not self._unchanged(dep, os.path.join(root, *dep.split(".")) + ".py", seen):
                return False
        return True


def cimported(pxd: str) -> list[str]:
    """The sim modules a .pxd cimports (`from sim.x cimport A`, `cimport sim.x`)."""
    try:
        with open(pxd, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        words = line.split()
        if len(words) >= 4 and words[0] == "from" and words[2] == "cimport":
            mod = words[1]
        elif len(words) >= 2 and words[0] == "cimport":
            mod = words[1].rstrip(",")
        else:
            continue
        if mod == "sim" or mod.startswith("sim."):
            out.append(mod)
    return out


def install(folder: str = FOLDER) -> _Finder | None:
    """Put the finder first on sys.meta_path (once), unless SIM_NATIVE=0 or nothing was
    compiled. Returns the finder (its `loaded` names the modules loaded compiled)."""
    if os.environ.get("SIM_NATIVE", "1") == "0":
        return None
    for f in sys.meta_path:
        if isinstance(f, _Finder):
            return f
    sources = read_manifest(folder)
    if not sources:
        return None
    finder = _Finder(folder, sources)
    sys.meta_path.insert(0, finder)
    return finder


def read_manifest(folder: str) -> dict[str, str]:
    """module -> source_key for each module in MODULES that `folder` holds a build of ({} when
    there is no manifest or it is not one)."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
            sources = dict(line.split() for line in f if line.strip())
    except (OSError, ValueError):
        return {}
    return {m: k for m, k in sources.items() if m in MODULES}


def is_compiled(module: Any) -> bool:
    """Whether an imported module runs compiled (not from its .py)."""
    return not str(getattr(module, "__file__", "") or "").endswith(".py")
