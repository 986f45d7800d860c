"""Bill lines of the hops between a system's services (issue 17, sim.systems.hops).

- `nat_data`: bytes a caller behind a NAT Gateway sends to and receives from public endpoints
  (API Gateway, Lambda Invoke, an internet-facing ALB, a Wasm edge, SQS), at nat_gateway.data per
  GB processed (both directions count: request + response). The gateway's hours are the caller
  platform's own `cost.nat` line.
- `vpc_endpoint_data`: the same traffic through an interface VPC endpoint (`network.vpc_endpoints`),
  at vpc_endpoint.data per GB; `vpc_endpoint_hours`: each endpoint in each of its AZs for the whole
  window (vpc_endpoint.hours), the system's `network` part.
- `cross_az`: bytes of pod-to-pod hops that cross AZs (share x bytes), charged out of one AZ and
  into the other (aws.cross_az each way), as the cluster's own cross_az line.
Bytes are the calls' mean sizes x attempts (sim.pricing.network bills sizes at their mean too).
"""

from __future__ import annotations

import dataclasses

from sim.pricing.network import GbConvention, gb_divisor, to_gb
from sim.pricing.tables import Bill, BillBuilder, price


def hop_bill(
    nat_bytes: float,
    endpoint_bytes: float,
    cross_az_bytes: float,
    window_s: float,
    month_s: float | None,
    gb: GbConvention = "binary",
) -> Bill:
    """One caller's hop lines for its hop bytes in the window."""
    b = BillBuilder(window_s, month_s)
    div = gb_divisor(gb)
    if nat_bytes > 0:
        rate = price("nat_gateway.data")
        b.line("nat_data", rate.cost(b.monthly(to_gb(nat_bytes, gb))), [rate, div])
    if endpoint_bytes > 0:
        rate = price("vpc_endpoint.data")
        b.line("vpc_endpoint_data", rate.cost(b.monthly(to_gb(endpoint_bytes, gb))), [rate, div])
    if cross_az_bytes > 0:  # out of one AZ and into the other
        rate = price("aws.cross_az")
        b.line("cross_az", 2.0 * rate.cost(b.monthly(to_gb(cross_az_bytes, gb))), [rate, div])
    return b.build(0)


def add_lines(bill: Bill, extra: Bill) -> Bill:
    """`bill` with the lines of `extra` (same window) added, summed into lines of the same name;
    its other parts (requests, discounts, operating lines, notes) as they were."""
    monthly = dict(bill.monthly_breakdown)
    sources = dict(bill.sources)
    for name, usd in extra.monthly_breakdown.items():
        monthly[name] = monthly.get(name, 0.0) + usd
        cites = [c for c in (sources.get(name, ""), extra.sources.get(name, "")) if c]
        sources[name] = "; ".join(dict.fromkeys(cites))
    scale = bill.month_s / bill.window_s
    window = {k: v / scale for k, v in monthly.items()}
    total = sum(window.values(), 0.0)
    dates = [d for d in (bill.price_date, extra.price_date) if d]
    return dataclasses.replace(
        bill,
        total_usd=total,
        monthly_usd=sum(monthly.values(), 0.0),
        breakdown=window,
        monthly_breakdown=monthly,
        per_million_usd=total / bill.requests * 1e6 if bill.requests > 0 else None,
        sources=sources,
        price_date=min(dates) if dates else None,
    )


def endpoint_hours_bill(endpoints: int, azs: int, window_s: float, month_s: float | None) -> Bill:
    """Interface VPC endpoints provisioned for the whole window, each in `azs` AZs."""
    b = BillBuilder(window_s, month_s)
    rate = price("vpc_endpoint.hours")
    b.line("vpc_endpoint_hours", rate.cost(endpoints * azs * b.month_h), [rate])
    return b.build(0)
