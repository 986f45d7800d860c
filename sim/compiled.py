"""The optional compiled kernels (issue 13, docs/model.md §19.4-19.5, §19.14): whether a run takes
one, which build, and where numba caches its builds. A kernel has a numba build (`pip install
'sim[fast]'`), compiled at run time, and may have a native one, compiled by Cython at install
(sim/native.py): the Lambda warm-hit kernel has both. Importing this module does not import
numba; a numba kernel module (lambda_kernel, kubernetes_kernel) does, and is imported only by a
run that takes it. The outputs are the same whichever build runs (tests/test_*_compiled.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

MODES = ("auto", "python", "compiled")
_HERE = Path(__file__).parent / "platforms"  # the kernel modules' folder


def kernel_mode() -> str:
    """SIM_KERNEL: `auto` (default: the native build of a kernel when the install made one, else
    numba's when numba is installed and the run is long enough to pay for its import and
    compile), `python` or `compiled` (the native build where there is one, else numba's: needs
    numba)."""
    mode = os.environ.get("SIM_KERNEL", "auto")
    if mode not in MODES:
        raise ValueError(f"SIM_KERNEL must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "compiled" and importlib.util.find_spec("numba") is None:
        raise ValueError("SIM_KERNEL=compiled needs numba: pip install 'sim[fast]'")
    return mode


def use_compiled(
    expected: float, kernel: str, compile_at: float, cached_at: float, native: bool = False
) -> str | None:
    """Which build of the kernel in module `kernel` a run of `expected` requests takes: "native"
    (`native`: the install compiled it; it costs no import, so any run takes it), "numba"
    (with `auto`, from `compile_at` requests, or `cached_at` when numba's cache of it is there)
    or None (Python). This run alone decides (never what an earlier run in the process
    compiled)."""
    mode = kernel_mode()
    if mode == "python":
        return None
    if native:
        return "native"
    if mode == "compiled":
        return "numba"
    if expected < cached_at or importlib.util.find_spec("numba") is None:
        return None
    cache = numba_cache()
    cached = cache is not None and any(cache.glob(f"**/{kernel}.*.nbi"))  # numba's index file
    return "numba" if expected >= (cached_at if cached else compile_at) else None


def numba_cache() -> Path | None:
    """Where numba caches the kernels: where Python caches bytecode (under PYTHONPYCACHEPREFIX,
    else the package's __pycache__), and nowhere under PYTHONDONTWRITEBYTECODE, as
    sim.pricing.tables does for its JSON cache."""
    if sys.dont_write_bytecode:
        return None
    if sys.pycache_prefix:
        return Path(sys.pycache_prefix) / "sim-numba"
    return _HERE / "__pycache__"


def jit_cache() -> bool:
    """For a kernel module, before its decorators run: njit's `cache` flag, with numba pointed at
    numba_cache() under PYTHONPYCACHEPREFIX (unless NUMBA_CACHE_DIR set a folder already)."""
    from numba import config

    folder = numba_cache()
    if folder is not None and sys.pycache_prefix and not config.CACHE_DIR:  # type: ignore[attr-defined]
        config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    return folder is not None
