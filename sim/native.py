"""sim's optional compiled modules (issues 13 and 17; docs/model.md §19.14).

At install, setup.py has Cython compile the modules in MODULES - their own pure-Python source,
unchanged, with C types only where an augmenting .pxd file beside a module declares them - into
sim/_native/, with a manifest of the sources they were compiled from. `install()` (run when sim
is imported) makes `import sim.x.y` load the compiled sim.x.y instead of sim/x/y.py only while
that source (and its .pxd) is byte for byte the one compiled: an edited module (an editable
install, a checkout of another revision) runs as Python, never as stale code. Without a C
compiler or Cython the install has no sim/_native/ and everything runs as Python, as with
SIM_NATIVE=0.
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
        try:
            current = source_key(source_bytes(spec.origin))
        except OSError:
            return spec
        binary = os.path.join(self.folder, compiled_name(name))
        if current != key or not os.path.isfile(binary):
            return spec  # edited since it was compiled: Python
        self.loaded.add(name)
        return ModuleSpec(name, ExtensionFileLoader(name, binary), origin=binary)


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
