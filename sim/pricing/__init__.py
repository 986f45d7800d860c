"""Prices (prices.yaml, instances.yaml: rate, unit, source, date) and cost functions per platform.

    lambda_bill(LambdaUsage, memory_mb=..., ...)      -> Bill
    wasm_bill(WasmUsage, pricing=..., custom=...)     -> Bill
    kubernetes_bill(KubernetesUsage, ...)             -> Bill

Every bill covers the simulated window and its billing-month equivalent (730 h by default; see
tables.py). Commitments: commitments.py; data transfer, NAT, IPv4: network.py; operating cost:
ops.py.
"""

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
