"""Data lines shared by the AWS bills: internet egress, cross-AZ traffic, NAT, public IPv4, GB.

- Internet egress (data transfer out): the responses' bytes, tiered per month with the first
  100 GB free. AWS aggregates the tiers and the free 100 GB over every service of an account; a
  bill here applies them to its own platform alone (see docs/model.md, "what is not billed").
- Cross-AZ: a `share` of the requests whose in-cluster hop crosses Availability Zones; their bytes
  are charged leaving one AZ and entering the other ($0.01/GB each way).
- Public IPv4: $0.005 per address-hour for every address (ALB nodes, NAT Gateways, nodes).
- GB: AWS data lines are billed in binary GB (2^30 bytes) by default (`gb: binary`, an assumption
  facts.md records); `gb: decimal` (10^9 bytes) computes them as the seed article does.

Response sizes come from the workload (`workload.service.response_size`, a distribution of bytes)
and are billed at their expected value: requests x mean size (the sum over N requests differs from
it by O(1/sqrt N), far below a cent at the volumes where egress matters).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from sim.config import Strict
from sim.distributions import Distribution
from sim.pricing.tables import BillBuilder, Bytes, Rate, price, tiered_cost, tiers

GbConvention = Literal["binary", "decimal"]

# Draws for E[max(0, X - t)] of a non-constant response-size distribution (fixed seed: the
# same scenario gives the same bill).
_EXCESS_DRAWS = 200_000


class NatSettings(Strict):
    """A NAT Gateway in front of VPC-attached compute: hourly charge + data processed + its IPv4."""

    enabled: bool = False
    gateways: int = Field(1, ge=1, description="NAT Gateways billed (one per AZ used)")
    bytes_per_request: Bytes = Field(
        0.0, ge=0, description="bytes through the NAT per billed request, e.g. '20KB'"
    )
    public_ipv4: bool = Field(
        True, description="bill each gateway's public IPv4 address ($0.005/h since 2024-02-01)"
    )


def gb_divisor(convention: GbConvention) -> Rate:
    return price("aws.bytes_per_gb" if convention == "binary" else "aws.bytes_per_gb.decimal")


def to_gb(n_bytes: float, convention: GbConvention) -> float:
    return n_bytes / gb_divisor(convention).rate


def response_stats(dist: Distribution | None) -> tuple[float, float]:
    """(mean bytes, mean bytes beyond the first 6 MB) of one response; (0, 0) without a size."""
    if dist is None:
        return 0.0, 0.0
    free = price("lambda.response_streaming.free_bytes").rate
    if getattr(dist, "dist", None) == "constant":
        value = float(dist.mean())
        return value, max(0.0, value - free)
    draws = dist.sample(_EXCESS_DRAWS, np.random.default_rng(0))
    return float(dist.mean()), float(np.maximum(draws - free, 0.0).mean())


def egress_line(b: BillBuilder, window_bytes: float, convention: GbConvention) -> None:
    """Internet data transfer out, tiered, first 100 GB a month free."""
    if window_bytes <= 0:
        return
    gb = b.monthly(to_gb(window_bytes, convention))
    key = "aws.egress.internet"
    b.line("data_transfer_out", tiered_cost(gb, key), [*tiers(key), gb_divisor(convention)])


def cross_az_line(
    b: BillBuilder, window_bytes: float, share: float, convention: GbConvention
) -> None:
    if window_bytes <= 0 or share <= 0:
        return
    rate = price("aws.cross_az")
    gb = b.monthly(to_gb(window_bytes * share, convention))
    b.line("cross_az", 2.0 * rate.cost(gb), [rate, gb_divisor(convention)])


def ipv4_line(b: BillBuilder, window_address_hours: float) -> None:
    if window_address_hours <= 0:
        return
    rate = price("public_ipv4")
    b.line("public_ipv4", rate.cost(b.monthly(window_address_hours)), [rate])


def nat_line(
    b: BillBuilder, nat: NatSettings, window_h: float, window_bytes: float, gb: GbConvention
) -> None:
    """NAT Gateway hours (the whole window, per gateway) + GB processed; its IPv4 apart."""
    if not nat.enabled:
        return
    hours_rate, data_rate = price("nat_gateway.hours"), price("nat_gateway.data")
    hours = b.monthly(window_h * nat.gateways)
    data_gb = b.monthly(to_gb(window_bytes, gb))
    b.line(
        "nat",
        hours_rate.cost(hours) + data_rate.cost(data_gb),
        [hours_rate, data_rate, gb_divisor(gb)],
    )
    if nat.public_ipv4:
        ipv4_line(b, window_h * nat.gateways)
