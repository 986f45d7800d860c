"""Application Auto Scaling policies (sim.platforms.autoscaling.target_tracking) as table tests.

The rules, from AWS's documentation (sources in the module docstring): AlarmHigh = 3 of 3
one-minute datapoints above the target; AlarmLow = 15 of 15 below 90% of the target; scale-out
and scale-in cooldowns 300 s for ECS; a scale-out during the scale-in cooldown happens at once;
the capacity added by the cooldown's scale-out counts toward the next scale-out; missing data
never scales; several policies: the largest capacity wins. Expected capacities are worked by hand.
"""

from __future__ import annotations

import pytest

import sim.platforms.autoscaling.target_tracking as T


def feed(policy, values, capacity, t0=60.0):
    """Datapoints at t0, t0 + 60, ...; the capacity follows every activity. -> [(t, desired)]."""
    out = []
    for i, v in enumerate(values):
        t = t0 + 60.0 * i
        act = policy.on_datapoint(t, v, capacity)
        if act is not None:
            capacity = act.desired
            out.append((t, act.desired))
    return out


def test_documented_defaults():
    assert T.METRIC_PERIOD_S == 60.0
    assert (T.SCALE_OUT_DATAPOINTS, T.SCALE_IN_DATAPOINTS, T.SCALE_IN_THRESHOLD) == (3, 15, 0.9)
    assert T.SCALE_OUT_COOLDOWN_S == T.SCALE_IN_COOLDOWN_S == 300.0


@pytest.mark.parametrize(
    ("values", "capacity", "expected"),
    [
        # two breaching datapoints are not enough; the third scales: ceil(2 x 120 / 100) = 3
        ([120, 120], 2, []),
        ([120, 120, 120], 2, [(180, 3)]),
        # equal to the target does not breach (GreaterThanThreshold)
        ([100, 100, 100, 100], 2, []),
        # one datapoint at or under the target restarts the count
        ([120, 120, 90, 120, 120], 2, []),
        ([120, 120, 90, 120, 120, 120], 2, [(360, 3)]),
        # a missing datapoint (no healthy target) is not breaching
        ([120, None, 120, 120], 2, []),
        # proportional: ceil(4 x 250 / 100) = 10, capped at max 8
        ([250, 250, 250], 4, [(180, 8)]),
        # ceil(3 x 101 / 100) = 4: never too little capacity
        ([101, 101, 101], 3, [(180, 4)]),
    ],
)
def test_scale_out_alarm(values, capacity, expected):
    p = T.TargetTracking(100, 1, 8)
    assert feed(p, values, capacity) == expected


@pytest.mark.parametrize(
    ("values", "capacity", "expected"),
    [
        # 14 low datapoints: AlarmLow needs 15 of 15; the 15th: ceil(4 x 50 / 100) = 2
        ([50] * 14, 4, []),
        ([50] * 15, 4, [(900, 2)]),
        # below the target but not below 90% of it: never scales in
        ([90] * 20, 4, []),
        ([89.9] * 15, 4, []),  # below 90, but ceil(4 x 0.899) = 4: nothing to remove
        # never below min_tasks: ceil(4 x 10 / 100) = 1 -> min 2
        ([10] * 15, 4, [(900, 2)]),
        # a datapoint back above 90% restarts the 15
        ([50] * 10 + [95] + [50] * 14, 4, []),
    ],
)
def test_scale_in_alarm(values, capacity, expected):
    p = T.TargetTracking(100, 2, 8)
    assert feed(p, values, capacity) == expected


def test_scale_in_cooldown_and_scale_out_cutting_it_short():
    p = T.TargetTracking(100, 1, 20)
    # 15 lows at 30: at 900 ceil(10 x 0.3) = 3; the alarm stays low but the next scale-in waits
    # for the 300 s cooldown: at 1200, ceil(3 x 0.3) = 1.
    acts = feed(p, [30] * 21, 10)
    assert acts == [(900, 3), (1200, 1)]
    # A scale-out during the scale-in cooldown is not delayed.
    p = T.TargetTracking(100, 1, 20)
    acts = feed(p, [30] * 15 + [200] * 3, 10)
    assert acts == [(900, 3), (1080, 6)]


def test_scale_out_cooldown_counts_the_capacity_already_added():
    p = T.TargetTracking(100, 1, 20)
    # t=180: ceil(2 x 1.5) = 3. Still 150 while the new task starts: from the capacity before the
    # cooldown's scale-out, ceil(2 x 1.5) = 3 is no more than 3: nothing. At 300 the metric is 250:
    # ceil(2 x 2.5) = 5 > 3: scale out (still in cooldown: base 2); the cooldown runs to 600.
    # Until then 120 proposes ceil(2 x 1.2) = 3 < 5; at 600 the base is the capacity: ceil(5 x 1.2).
    values = [150, 150, 150, 150, 250, 120, 120, 120, 120, 120, 120]
    assert feed(p, values, 2) == [(180, 3), (300, 5), (600, 6)]


def test_disable_scale_in_and_bounds():
    p = T.TargetTracking(100, 1, 20, disable_scale_in=True)
    assert feed(p, [10] * 30, 5) == []
    with pytest.raises(ValueError):
        T.TargetTracking(0, 1, 2)


STEPS = [T.Step(0, 20, 1), T.Step(20, None, 3)]


@pytest.mark.parametrize(
    ("kind", "steps", "values", "capacity", "expected"),
    [
        # threshold 70, ChangeInCapacity: 75 is in [0, 20) -> +1; 95 in [20, inf) -> +3
        ("ChangeInCapacity", STEPS, [75], 4, [(60, 5)]),
        ("ChangeInCapacity", STEPS, [95], 4, [(60, 7)]),
        ("ChangeInCapacity", STEPS, [70], 4, []),  # not above the threshold
        # PercentChangeInCapacity 50%: int(4 x 0.5) = 2; int(1 x 0.5) = 0 -> at least 1
        ("PercentChangeInCapacity", [T.Step(0, None, 50)], [80], 4, [(60, 6)]),
        ("PercentChangeInCapacity", [T.Step(0, None, 50)], [80], 1, [(60, 2)]),
        ("ExactCapacity", [T.Step(0, None, 9)], [80], 4, [(60, 9)]),
        # capped at max 10
        ("ChangeInCapacity", [T.Step(0, None, 30)], [80], 4, [(60, 10)]),
    ],
)
def test_step_scaling_adjustments(kind, steps, values, capacity, expected):
    p = T.StepScaling(70, "above", steps, 1, 10, adjustment_type=kind, cooldown=0)
    assert feed(p, values, capacity) == expected


def test_step_scaling_m_of_n_and_cooldown():
    p = T.StepScaling(70, "above", [T.Step(0, None, 1)], 1, 10, evaluation_periods=3, datapoints=2)
    # 2 of the last 3 above 70 at the 3rd datapoint (t=180) -> +1; then cooldown 300 s blocks
    # until 480 (t=480: +1 again: the last three are 80, 80, 80).
    assert feed(p, [80, 60, 80, 80, 80, 80, 80, 80], 2) == [(180, 3), (480, 4)]
    # scale-in policy: below 30, -1 per breach
    q = T.StepScaling(30, "below", [T.Step(None, 0, -1)], 2, 10, cooldown=0)
    assert feed(q, [20, 20, 20, 40], 4) == [(60, 3), (120, 2)]


def test_several_policies_largest_capacity_wins():
    up, down = T.Activity(6, "a", ""), T.Activity(3, "b", "")
    assert T.combine([up, down], 4) == up  # a scale-out beats a scale-in
    assert T.combine([T.Activity(2, "x", ""), down], 4) == down  # scale-ins: the larger
    assert T.combine([None, None], 4) is None
