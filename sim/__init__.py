"""sim: a discrete-event simulator comparing AWS Lambda, Wasm serverless and Kubernetes+KEDA.

The Python API (docs/api.md) loads on first use, so `import sim` stays light:

    import sim
    res = sim.run(sim.load_scenario("scenarios/small-api.yaml"))
"""

from __future__ import annotations

from typing import Any

from sim import native as _native

# Compiled modules (sim/_native/, when the install built them) load in place of their unchanged
# sources from here on.
_native.install()

__version__ = "0.1.0"

# name -> the module under sim that defines it (PEP 562: imported when first asked for)
_API = {
    "load_scenario": "sim.api",
    "run": "sim.api",
    "compare": "sim.api",
    "sweep": "sim.api",
    "load_results": "sim.api",
    "fit_sources": "sim.api",
    "Results": "sim.api",
    "Scenario": "sim.scenario",
    "InputError": "sim.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
