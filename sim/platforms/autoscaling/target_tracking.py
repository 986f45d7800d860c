"""Application Auto Scaling: target tracking and step scaling on CloudWatch datapoints (pure).

No SimPy: a platform model measures one datapoint per CloudWatch period (1 minute) and calls
`on_datapoint(t, value, capacity)`; the policy keeps the alarms' datapoints and returns the new
desired capacity (or None). Reusable by any AWS type scaled by Application Auto Scaling (ECS
services, Spot Fleets, ...). Sources (read 2026-12-01):

- [TT] "How target tracking scaling for Application Auto Scaling works", docs.aws.amazon.com/
  autoscaling/application/userguide/target-tracking-scaling-policy-overview.html and
  application-auto-scaling-target-tracking.html: AAS "creates and manages the CloudWatch alarms
  that invoke the scaling policy and calculates the scaling adjustment based on the metric and the
  target value"; it "scales out proportionally to the metric as fast as it can, but scales in
  more gradually"; missing datapoints put the alarm in INSUFFICIENT_DATA and it cannot scale.
- [API] TargetTrackingScalingPolicyConfiguration, docs.aws.amazon.com/autoscaling/application/
  APIReference/API_TargetTrackingScalingPolicyConfiguration.html: ScaleInCooldown and
  ScaleOutCooldown default 300 s for ECS services; a scale-out during the scale-in cooldown happens
  at once and ends that cooldown; during the scale-out cooldown "the capacity that has been added
  by the previous scale out event ... is calculated as part of the desired capacity for the next
  scale out"; DisableScaleIn default false.
- [ALARMS] The two alarms AAS creates for an ECS service, as the CloudWatch console shows them
  (AWS does not document them; secondary: public runbooks listing
  `TargetTracking-service/<cluster>/<service>-AlarmHigh-...` "CPUUtilization > 50 for 3 datapoints
  within 3 minutes" and `...-AlarmLow-...` "CPUUtilization < 45 for 15 datapoints within 15
  minutes", i.e. scale-in at 90% of the target).
- [ECS] docs.aws.amazon.com/AmazonECS/latest/developerguide/target-tracking-faster-auto-scaling:
  ECS publishes CPUUtilization / MemoryUtilization at 60-second resolution by default.

ASSUMPTIONS (AWS does not publish the arithmetic): the new capacity is
ceil(capacity x metric / target) for scale-out and scale-in alike (rounding up: never too little
capacity, "rounding up or down ... conservatively", [TT]); the metric is the alarm's latest
datapoint; during the scale-out cooldown the proposal is computed from the capacity before the
cooldown's scale-out and only acted on when it exceeds the current capacity; a breaching alarm
re-invokes its policy every period while it stays in ALARM (as CloudWatch does for Auto Scaling
actions); a datapoint is evaluated at the end of its minute (no CloudWatch ingestion delay).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

INF = float("inf")

# CloudWatch period of the predefined ECS metrics (60-second resolution, [ECS]).
METRIC_PERIOD_S = 60.0
# [ALARMS]: AlarmHigh: 3 of 3 datapoints above the target; AlarmLow: 15 of 15 below 90% of it.
SCALE_OUT_DATAPOINTS = 3
SCALE_IN_DATAPOINTS = 15
SCALE_IN_THRESHOLD = 0.9
# [API]: both cooldowns default to 300 s for ECS services.
SCALE_OUT_COOLDOWN_S = 300.0
SCALE_IN_COOLDOWN_S = 300.0
# Step scaling (docs.aws.amazon.com/autoscaling/application/APIReference/
# API_StepScalingPolicyConfiguration.html): an alarm of `datapoints` of `evaluation_periods`
# breaching periods; ASSUMPTION: its Cooldown as the target-tracking default for ECS, 300 s.
STEP_COOLDOWN_S = 300.0


@dataclass(frozen=True)
class Activity:
    """A scaling activity: the new desired capacity and why."""

    desired: int
    rule: str
    reason: str


def _clamp(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, n))


class TargetTracking:
    """One target-tracking policy with its two alarms ([TT], [API], [ALARMS])."""

    def __init__(
        self,
        target: float,
        min_capacity: int,
        max_capacity: int,
        *,
        scale_out_cooldown: float = SCALE_OUT_COOLDOWN_S,
        scale_in_cooldown: float = SCALE_IN_COOLDOWN_S,
        disable_scale_in: bool = False,
        scale_out_datapoints: int = SCALE_OUT_DATAPOINTS,
        scale_in_datapoints: int = SCALE_IN_DATAPOINTS,
        scale_in_threshold: float = SCALE_IN_THRESHOLD,
    ) -> None:
        if not target > 0:
            raise ValueError(f"target must be > 0, got {target!r}")
        self.target = float(target)
        self.min, self.max = min_capacity, max_capacity
        self.out_cooldown, self.in_cooldown = scale_out_cooldown, scale_in_cooldown
        self.disable_scale_in = disable_scale_in
        self.n_out, self.n_in = scale_out_datapoints, scale_in_datapoints
        self.low = scale_in_threshold * self.target
        self.points: deque[float | None] = deque(maxlen=max(self.n_out, self.n_in))
        self.out_until = -INF  # scale-out cooldown ends
        self.out_base = 0  # capacity before the scale-out that started that cooldown
        self.in_until = -INF  # scale-in cooldown ends

    def _breach(self, n: int, above: bool) -> bool:
        if len(self.points) < n:
            return False
        last = list(self.points)[-n:]
        if above:
            return all(v is not None and v > self.target for v in last)
        return all(v is not None and v < self.low for v in last)

    def on_datapoint(self, t: float, value: float | None, capacity: int) -> Activity | None:
        """The datapoint of the period ending at t (None: no data); capacity = desired count."""
        self.points.append(value)
        if value is None:
            return None
        if self._breach(self.n_out, above=True):
            cooling = t < self.out_until
            base = self.out_base if cooling else capacity
            want = _clamp(math.ceil(base * value / self.target - 1e-9), self.min, self.max)
            if want <= capacity:
                return None
            if not cooling:
                self.out_base = capacity
            self.out_until = t + self.out_cooldown
            self.in_until = -INF  # a scale-out ends the scale-in cooldown ([API])
            why = (
                f"AlarmHigh: {self.n_out} of {self.n_out} datapoints > {self.target:g}; "
                f"ceil({base} x {value:.4g} / {self.target:g})"
            )
            return Activity(want, "target_tracking_scale_out", why)
        if self.disable_scale_in or t < self.in_until or not self._breach(self.n_in, False):
            return None
        want = _clamp(math.ceil(capacity * value / self.target - 1e-9), self.min, self.max)
        if want >= capacity:
            return None
        self.in_until = t + self.in_cooldown
        why = (
            f"AlarmLow: {self.n_in} of {self.n_in} datapoints < {self.low:g} "
            f"({SCALE_IN_THRESHOLD:g} x target); ceil({capacity} x {value:.4g} / {self.target:g})"
        )
        return Activity(want, "target_tracking_scale_in", why)


AdjustmentType = Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"]


@dataclass(frozen=True)
class Step:
    """A step adjustment: bounds relative to the alarm threshold (None: unbounded)."""

    lower: float | None
    upper: float | None
    adjustment: float


class StepScaling:
    """One step scaling policy on its own alarm (API_StepScalingPolicyConfiguration and
    API_StepAdjustment): when the alarm breaches (`datapoints` of the last `evaluation_periods`
    datapoints beyond `threshold`), the step whose [lower, upper) interval holds
    (metric - threshold) applies its adjustment. PercentChangeInCapacity rounds toward zero, at
    least 1 task when non-zero (`MinAdjustmentMagnitude` unset; ASSUMPTION from EC2 Auto
    Scaling's documented rounding). Cooldown blocks further activities of this policy."""

    def __init__(
        self,
        threshold: float,
        comparison: Literal["above", "below"],
        steps: Sequence[Step],
        min_capacity: int,
        max_capacity: int,
        *,
        adjustment_type: AdjustmentType = "ChangeInCapacity",
        evaluation_periods: int = 1,
        datapoints: int = 1,
        cooldown: float = STEP_COOLDOWN_S,
        name: str = "step",
    ) -> None:
        self.threshold, self.comparison, self.steps = threshold, comparison, tuple(steps)
        self.min, self.max = min_capacity, max_capacity
        self.kind, self.n, self.m = adjustment_type, evaluation_periods, datapoints
        self.cooldown, self.name = cooldown, name
        self.points: deque[float | None] = deque(maxlen=evaluation_periods)
        self.until = -INF

    def breaching(self) -> bool:
        above = self.comparison == "above"
        hits = sum(
            1
            for v in self.points
            if v is not None and (v > self.threshold if above else v < self.threshold)
        )
        return len(self.points) == self.n and hits >= self.m

    def step_for(self, value: float) -> Step | None:
        d = value - self.threshold
        for s in self.steps:
            if (s.lower is None or d >= s.lower) and (s.upper is None or d < s.upper):
                return s
        return None

    def apply(self, step: Step, capacity: int) -> int:
        a = step.adjustment
        if self.kind == "ExactCapacity":
            n = int(a)
        elif self.kind == "ChangeInCapacity":
            n = capacity + int(a)
        else:
            delta = int(capacity * a / 100.0)  # toward zero
            if delta == 0 and a != 0:
                delta = 1 if a > 0 else -1
            n = capacity + delta
        return _clamp(n, self.min, self.max)

    def on_datapoint(self, t: float, value: float | None, capacity: int) -> Activity | None:
        self.points.append(value)
        if value is None or t < self.until or not self.breaching():
            return None
        step = self.step_for(value)
        if step is None:
            return None
        want = self.apply(step, capacity)
        if want == capacity:
            return None
        self.until = t + self.cooldown
        sign = ">" if self.comparison == "above" else "<"
        why = (
            f"{self.name} alarm: {self.m} of {self.n} datapoints {sign} {self.threshold:g}; "
            f"step [{step.lower}, {step.upper}) {self.kind} {step.adjustment:g}"
        )
        return Activity(want, "step_scaling", why)


def combine(activities: Sequence[Activity | None], capacity: int) -> Activity | None:
    """Several policies on one target: "Application Auto Scaling gives precedence to the policy
    that provides the largest capacity for both scale out and scale in" (PutScalingPolicy, AWS
    CLI reference). Scale-out wins over scale-in."""
    acts = [a for a in activities if a is not None]
    if not acts:
        return None
    out = [a for a in acts if a.desired > capacity]
    return max(out or acts, key=lambda a: a.desired)
