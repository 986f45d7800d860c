"""numba's build of the Lambda warm-hit kernel (sim/platforms/lambda_warm.py, issue 13), for long
runs of an install without the native build of it (sim/native.py; docs/model.md §19.4).

The functions are lambda_warm.py's own, read from that file as Python (the import system may
hand out its Cython build, which numba cannot compile). Importing this module imports numba
(0.25-1.3 s); the first call compiles the kernel (~2 s) or loads numba's cache of it: lambda_.py
imports it only for runs long enough to pay for that (`use_compiled`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from numba import njit

from sim.compiled import jit_cache

CACHE = jit_cache()  # numba's cache where Python caches bytecode (sim.compiled)


def _source() -> ModuleType:
    path = Path(__file__).with_name("lambda_warm.py")
    spec = importlib.util.spec_from_file_location("sim.platforms._lambda_warm_py", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_src = _source()
# warm_span calls these through its module's globals: numba's builds of them once compiled.
_src._sift_up = njit(cache=CACHE)(_src._sift_up)  # type: ignore[attr-defined]
_src._pop_root = njit(cache=CACHE)(_src._pop_root)  # type: ignore[attr-defined]
warm_span = njit(cache=CACHE)(_src.warm_span)
