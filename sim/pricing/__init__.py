"""Prices (prices.yaml, instances.yaml: rate, unit, source, date) and cost functions per platform.

    lambda_bill(LambdaUsage, memory_mb=..., ...)      -> Bill
    wasm_bill(WasmUsage, pricing=..., custom=...)     -> Bill
    kubernetes_bill(KubernetesUsage, ...)             -> Bill

Every bill covers the simulated window and its billing-month equivalent (730 h by default; see
tables.py). Commitments: commitments.py; data transfer, NAT, IPv4: network.py; operating cost:
ops.py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.pricing.commitments import Commitment
    from sim.pricing.kubernetes import (
        KubernetesCostSettings,
        KubernetesUsage,
        LoadBalancerSettings,
        NodeUsage,
        kubernetes_bill,
    )
    from sim.pricing.lambda_ import (
        LambdaCostSettings,
        LambdaUsage,
        LogsSettings,
        lambda_bill,
    )
    from sim.pricing.network import NatSettings
    from sim.pricing.ops import OpsCosts, known_ops_profiles, ops_profile
    from sim.pricing.tables import (
        Bill,
        Bytes,
        InstanceType,
        Rate,
        instance_type,
        known_instance_types,
        parse_bytes,
        price,
        price_table,
        tiers,
    )
    from sim.pricing.wasm import CustomWasmPricing, WasmUsage, wasm_bill

# Each name is imported from its module on first use (PEP 562): importing one submodule
# (sim.pricing.tables for a scenario's billing month) must not build every platform's cost models
# (commitments, Kubernetes, Wasm: ~60 ms), which a run of one platform never uses.
_WHERE = {
    "Commitment": "sim.pricing.commitments",
    "KubernetesCostSettings": "sim.pricing.kubernetes",
    "KubernetesUsage": "sim.pricing.kubernetes",
    "LoadBalancerSettings": "sim.pricing.kubernetes",
    "NodeUsage": "sim.pricing.kubernetes",
    "kubernetes_bill": "sim.pricing.kubernetes",
    "LambdaCostSettings": "sim.pricing.lambda_",
    "LambdaUsage": "sim.pricing.lambda_",
    "LogsSettings": "sim.pricing.lambda_",
    "lambda_bill": "sim.pricing.lambda_",
    "NatSettings": "sim.pricing.network",
    "OpsCosts": "sim.pricing.ops",
    "known_ops_profiles": "sim.pricing.ops",
    "ops_profile": "sim.pricing.ops",
    "Bill": "sim.pricing.tables",
    "Bytes": "sim.pricing.tables",
    "InstanceType": "sim.pricing.tables",
    "Rate": "sim.pricing.tables",
    "instance_type": "sim.pricing.tables",
    "known_instance_types": "sim.pricing.tables",
    "parse_bytes": "sim.pricing.tables",
    "price": "sim.pricing.tables",
    "price_table": "sim.pricing.tables",
    "tiers": "sim.pricing.tables",
    "CustomWasmPricing": "sim.pricing.wasm",
    "WasmUsage": "sim.pricing.wasm",
    "wasm_bill": "sim.pricing.wasm",
}

__all__ = [
    "Bill",
    "Bytes",
    "Commitment",
    "CustomWasmPricing",
    "InstanceType",
    "KubernetesCostSettings",
    "KubernetesUsage",
    "LambdaCostSettings",
    "LambdaUsage",
    "LoadBalancerSettings",
    "LogsSettings",
    "NatSettings",
    "NodeUsage",
    "OpsCosts",
    "Rate",
    "WasmUsage",
    "instance_type",
    "known_instance_types",
    "known_ops_profiles",
    "kubernetes_bill",
    "lambda_bill",
    "ops_profile",
    "parse_bytes",
    "price",
    "price_table",
    "tiers",
    "wasm_bill",
]


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
