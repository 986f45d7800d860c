"""AWS Lambda Managed Instances bill: EC2 instances + management fee + requests.

aws.amazon.com/lambda/pricing (Managed Instances, read 2026-09-20): the EC2 instances a capacity
provider runs are billed at their EC2 price (per second, 60 s minimum, as EC2 Linux on-demand),
plus a compute management fee of 15% of the instance's on-demand price, plus $0.20 per million
requests. Savings Plans and Reserved Instances apply to the instances
(docs.aws.amazon.com/lambda/latest/dg/lambda-managed-instances.html: "you benefit from EC2 pricing
advantages, including EC2 Savings Plans and Reserved Instances"), through sim.pricing.commitments
(service "ec2"). ASSUMPTIONS: the management fee is charged on the on-demand price whatever covers
the instance; no free tier (Lambda's free tier is for the default compute type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sim.pricing.commitments import Commitment, apply_commitment, discount_rate
from sim.pricing.kubernetes import NodeUsage, _resolve, node_billed_seconds
from sim.pricing.ops import add_operating
from sim.pricing.tables import SECONDS_PER_HOUR, Bill, BillBuilder, InstanceType, price


@dataclass(kw_only=True)
class LambdaManagedUsage:
    window_s: float
    requests: int
    instances: Sequence[NodeUsage] = field(default_factory=tuple)  # the EC2 instances' lives


def lambda_managed_bill(
    usage: LambdaManagedUsage,
    *,
    commitment: Commitment | None = None,
    month_s: float | None = None,
    ops: Mapping[str, float] | None = None,
    ops_profile: str | None = None,
) -> Bill:
    """The Managed Instances bill for `usage` (window and billing month), line by line."""
    b = BillBuilder(usage.window_s, month_s)
    by_type: dict[str, tuple[InstanceType, float]] = {}
    for inst in usage.instances:
        it = _resolve(inst.instance_type)
        usd = node_billed_seconds(inst, usage.window_s) / SECONDS_PER_HOUR * it.hourly_usd
        by_type[it.name] = (it, by_type.get(it.name, (it, 0.0))[1] + usd)
    used = [it for it, _ in by_type.values()]
    on_demand = b.monthly(sum(c for _, c in by_type.values()))
    b.line("instances", on_demand, [*used, price("nodes.minimum_billed_seconds")])
    fee = price("lambda_managed.management_fee_share")
    b.line("management_fee", on_demand * fee.rate, [fee, *used])
    req = price("lambda_managed.requests")
    b.line("requests", req.cost(b.monthly(usage.requests)), [req])
    if commitment is not None:
        eligible = []
        for it, c in by_type.values():
            share, rates = discount_rate(commitment, "ec2", it)
            eligible.append((b.monthly(c), share, rates))
        apply_commitment(b, commitment, eligible)
    add_operating(b, ops, ops_profile)
    return b.build(usage.requests)
