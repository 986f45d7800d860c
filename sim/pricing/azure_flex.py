"""Azure Functions Flex Consumption bill: on-demand and always-ready billing modes.

Microsoft bills each instance in one of two modes (learn.microsoft.com/azure/azure-functions/
flex-consumption-plan#billing; include functions-flex-consumption-billing-table.md, 2024-11-05):
- On demand: instance memory (GB) x the time the instance is actively executing at least one
  function (concurrent executions on one instance are counted once), minus a monthly free grant of
  GB-s; plus executions, minus a monthly free grant of executions.
- Always ready: the baseline (memory of every always-ready instance x all the time it is held),
  plus memory x its active time at the always-ready execution rate, plus executions; no free grants.
Active time is metered per activity period of an instance: at least 1,000 ms, rounded up to the
nearest 100 ms (the model measures it: sim.platforms.azure_flex). Instance memory in GB is MB /
1024 (a 2,048 MB instance is 2 GB). Rates in prices.yaml `azure_flex.*` (source + date).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sim.pricing.ops import add_operating
from sim.pricing.tables import Bill, BillBuilder, price


@dataclass(kw_only=True)
class AzureFlexUsage:
    window_s: float
    memory_mb: float  # instance memory size
    always_ready: int = 0  # always-ready instances held the whole window
    on_demand_active_s: float = 0.0  # billed activity seconds of on-demand instances (rounded)
    always_ready_active_s: float = 0.0  # ... of always-ready instances
    on_demand_executions: int = 0
    always_ready_executions: int = 0

    @property
    def requests(self) -> int:
        return self.on_demand_executions + self.always_ready_executions


def azure_flex_bill(
    usage: AzureFlexUsage,
    *,
    month_s: float | None = None,
    ops: Mapping[str, float] | None = None,
    ops_profile: str | None = None,
) -> Bill:
    """The Flex Consumption bill for `usage` (window and billing month), line by line."""
    b = BillBuilder(usage.window_s, month_s)
    gb = usage.memory_mb / 1024.0
    # On demand: the free grants apply per month, to the month's quantities.
    rate = price("azure_flex.on_demand.execution_time")
    free = price("azure_flex.on_demand.free_gb_s")
    gb_s = b.monthly(usage.on_demand_active_s * gb)
    b.line("on_demand_execution_time", rate.cost(max(gb_s - free.rate, 0.0)), [rate, free])
    rate = price("azure_flex.on_demand.executions")
    free = price("azure_flex.on_demand.free_executions")
    n = b.monthly(usage.on_demand_executions)
    b.line("on_demand_executions", rate.cost(max(n - free.rate, 0.0)), [rate, free])
    if usage.always_ready > 0:
        base = price("azure_flex.always_ready.baseline")
        held = b.monthly(usage.always_ready * gb * usage.window_s)
        b.line("always_ready_baseline", base.cost(held), [base])
        rate = price("azure_flex.always_ready.execution_time")
        b.line(
            "always_ready_execution_time",
            rate.cost(b.monthly(usage.always_ready_active_s * gb)),
            [rate],
        )
        rate = price("azure_flex.always_ready.executions")
        n = b.monthly(usage.always_ready_executions)
        b.line("always_ready_executions", rate.cost(n), [rate])
    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)
