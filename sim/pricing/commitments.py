"""Commitments: Compute / EC2 Instance Savings Plans, Reserved Instances, GKE flexible CUDs.

A commitment is a billing arrangement, not capacity: the simulation is unchanged, the bill is not.
The bill shows the eligible lines at list (on-demand) price and a negative `commitment_discount`
line, so `Bill.list_monthly_usd` is the list price and `Bill.monthly_usd` the effective price.

Two ways to size it (AWS and Google both sell an hourly spend commitment):
- `coverage` (default 1): the share of the eligible on-demand cost the commitment covers - a plan
  sized to your baseline; nothing is wasted.
- `hourly`: the commitment in USD per hour at the discounted rate. Covered on-demand cost per hour
  is min(hourly / (1 - discount), eligible on-demand cost per hour); commitment not used is billed
  anyway (`commitment_unused`). Eligible usage is taken as the window's hourly average (AWS and
  Google apply commitments hour by hour, so a run with sharp peaks is billed a little low).

Discounts (share off on-demand) come from prices.yaml `commitment.*` (source + date) or from the
scenario's `discount:` (then the scenario is the source). What a plan covers:
- Lambda: Compute Savings Plan on duration (incl. INIT), provisioned concurrency and PC duration;
  not requests, API Gateway, logs or data transfer.
- EKS nodes: Compute SP, EC2 Instance SP or Reserved Instances on the node-hours; not the control
  plane, EBS, IPv4, load balancer or the EKS Auto Mode fee. EC2 rates are per instance type.
- GKE (nodes or Autopilot Pod requests): Compute flexible CUD; not the cluster fee.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.config import Fraction, Strict
from sim.errors import InputError
from sim.pricing.tables import BillBuilder, InstanceType, Rate, price

Plan = Literal[
    "compute-savings-plan", "ec2-instance-savings-plan", "reserved-instance", "flexible-cud"
]
Term = Literal["1y", "3y"]
Payment = Literal["no-upfront", "partial-upfront", "all-upfront"]
Service = Literal["lambda", "ec2", "gke"]

_PLANS: dict[Service, tuple[str, ...]] = {
    "lambda": ("compute-savings-plan",),
    "ec2": ("compute-savings-plan", "ec2-instance-savings-plan", "reserved-instance"),
    "gke": ("flexible-cud",),
}


class Commitment(Strict):
    """`commitment:` of a platform: plan, term, payment option, and its size."""

    plan: Plan
    term: Term = "1y"
    payment: Payment = "no-upfront"
    discount: Fraction | None = Field(
        None, ge=0, lt=1, description="share off on-demand; default: the dated rate in prices.yaml"
    )
    coverage: Fraction = Field(1.0, ge=0, le=1, description="share of eligible usage covered")
    hourly: float | None = Field(
        None, gt=0, description="USD/hour committed at the discounted rate (instead of coverage)"
    )
    source: str = Field("scenario `commitment.discount`", description="where `discount` is from")

    @model_validator(mode="after")
    def _one_size(self) -> Commitment:
        if self.hourly is not None and "coverage" in self.model_fields_set:
            raise ValueError("give `coverage` or `hourly`, not both")
        return self


def _key(plan: str) -> str:
    return plan.replace("-", "_")


def discount_rate(
    c: Commitment, service: Service, instance: InstanceType | None = None
) -> tuple[float, list[Rate | InstanceType | str]]:
    """Share off on-demand for `c` on `service` (and node type), with what it was read from."""
    if c.plan not in _PLANS[service]:
        allowed = ", ".join(_PLANS[service])
        raise InputError(
            f"commitment plan {c.plan!r} does not apply here; use {allowed}", key="commitment.plan"
        )
    if c.discount is not None:
        return c.discount, [c.source]
    if service == "ec2":
        assert instance is not None
        key = f"commitment.ec2.{instance.name}.{_key(c.plan)}.{c.term}.{_key(c.payment)}"
        try:
            rate = price(key)
        except KeyError:
            raise InputError(
                f"no dated {c.plan} {c.term} {c.payment} rate for {instance.name} in prices.yaml;"
                " give `commitment.discount` (share off on-demand) from your own quote",
                key="commitment.discount",
            ) from None
        return 1.0 - rate.rate / instance.hourly_usd, [rate, instance]
    name = "compute_savings_plan" if service == "lambda" else "flexible_cud"
    rate = price(f"commitment.{service}.{name}.{c.term}")
    return rate.rate, [rate]


def apply_commitment(
    b: BillBuilder,
    c: Commitment | None,
    eligible: list[tuple[float, float, list[Rate | InstanceType | str]]],
) -> None:
    """Discount `eligible` monthly on-demand USD: a list of (cost, discount, rates) per group."""
    if c is None:
        return
    on_demand = sum(cost for cost, _, _ in eligible)
    if on_demand <= 0:
        if c.hourly is not None:
            b.line("commitment_unused", c.hourly * b.month_h, [f"commitment {c.plan} {c.term}"])
        return
    if c.hourly is None:
        share = c.coverage
    else:
        # The hourly commitment buys on-demand usage at the blended discount of the groups.
        blended = sum(cost * d for cost, d, _ in eligible) / on_demand
        covered_od_per_h = min(c.hourly / (1.0 - blended), on_demand / b.month_h)
        share = covered_od_per_h * b.month_h / on_demand
        unused = c.hourly * b.month_h - share * on_demand * (1.0 - blended)
        if unused > 1e-12:
            b.line("commitment_unused", unused, [f"commitment {c.plan} {c.term}"])
    saved = sum(share * cost * d for cost, d, _ in eligible)
    used: list[Rate | InstanceType | str] = [f"commitment {c.plan} {c.term} {c.payment}"]
    for _, _, rates in eligible:
        used.extend(rates)
    b.discount("commitment_discount", saved, used)
