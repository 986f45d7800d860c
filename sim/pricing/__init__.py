"""Prices (prices.yaml, instances.yaml: rate, unit, source, date) and cost functions per platform.

    lambda_bill(LambdaUsage, memory_mb=..., ...)      -> Bill
    wasm_bill(WasmUsage, pricing=..., custom=...)     -> Bill
    kubernetes_bill(KubernetesUsage, ...)             -> Bill

Every bill covers the simulated window and its 30-day-month equivalent (see tables.py).
"""

from sim.pricing.kubernetes import (
    KubernetesUsage,
    LoadBalancerSettings,
    NodeUsage,
    OpsCosts,
    kubernetes_bill,
)
from sim.pricing.lambda_ import (
    LambdaCostSettings,
    LambdaUsage,
    LogsSettings,
    NatSettings,
    lambda_bill,
)
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

__all__ = [
    "Bill",
    "Bytes",
    "CustomWasmPricing",
    "InstanceType",
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
    "kubernetes_bill",
    "lambda_bill",
    "parse_bytes",
    "price",
    "price_table",
    "tiers",
    "wasm_bill",
]
