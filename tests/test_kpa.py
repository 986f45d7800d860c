"""The KPA (sim.platforms.autoscaling.kpa) as table tests worked by hand from knative/serving
knative-v1.23.0: aggregation/bucketing.go, scaling/autoscaler.go Scale, reconciler/autoscaling/
kpa/scaler.go (bounds, handleScaleToZero) and kpa.go (SKS mode), resources/target.go."""

from __future__ import annotations

import pytest

import sim.platforms.autoscaling.kpa as K
from sim.platforms.autoscaling.kpa import (
    KnativePodAutoscaler,
    KPASettings,
    WindowAverager,
    panic_window,
    resolve_target,
)


def run(kpa, until, value, ready, start=1):
    """The collector's 1 s stats and the decider's 2 s ticks: {tick time: decision}."""
    out = {}
    for t in range(start, until + 1):
        kpa.record(float(t), value(t))
        if t % 2 == 0:
            out[t] = kpa.tick(float(t), ready(t), 0)
    return out


def test_defaults_are_upstream():
    # config.go defaultConfig / config-autoscaler ConfigMap; tickInterval; defaults.yaml.
    assert (K.CONTAINER_CONCURRENCY_TARGET_DEFAULT, K.TARGET_UTILIZATION_PERCENTAGE) == (100, 70)
    assert (K.STABLE_WINDOW_S, K.PANIC_WINDOW_PERCENTAGE, K.PANIC_THRESHOLD_PERCENTAGE) == (
        60,
        10,
        200,
    )
    assert (K.MAX_SCALE_UP_RATE, K.MAX_SCALE_DOWN_RATE, K.TARGET_BURST_CAPACITY) == (1000, 2, 211)
    assert (K.SCALE_TO_ZERO_GRACE_PERIOD_S, K.SCALE_TO_ZERO_POD_RETENTION_S) == (30, 0)
    assert (K.ACTIVATOR_CAPACITY, K.INITIAL_SCALE, K.TICK_INTERVAL_S, K.RPS_TARGET_DEFAULT) == (
        100,
        1,
        2,
        200,
    )
    assert (K.CONTAINER_CONCURRENCY, K.REVISION_TIMEOUT_S) == (0, 300)


@pytest.mark.parametrize(
    ("metric", "cc", "target", "util", "expected"),
    [
        ("concurrency", 0, None, 70, (70.0, 100.0)),  # CC 0 -> default 100 x 0.7
        ("concurrency", 10, None, 70, (7.0, 10.0)),  # total = CC
        ("concurrency", 10, 50, 70, (7.0, 10.0)),  # annotation capped at CC: min(50, 10)
        ("concurrency", 0, 50, 70, (35.0, 50.0)),
        ("concurrency", 1, None, 100, (1.0, 1.0)),
        ("rps", 4, None, 70, (140.0, 200.0)),  # rps default 200, CC ignored
        ("concurrency", 0, 0.01, 70, (0.01, 0.01)),  # 0.007 raised to TargetMin 0.01
    ],
)
def test_resolve_target(metric, cc, target, util, expected):
    assert resolve_target(metric, cc, target, util) == pytest.approx(expected)


def test_panic_window_is_rounded_to_a_second_and_at_least_one():
    assert panic_window(60, 10) == 6  # 6 s
    assert panic_window(61, 10) == 6  # 6.1 s -> 6 s
    assert panic_window(65, 10) == 7  # 6.5 s -> 7 s (Round: half away from zero)
    assert panic_window(6, 1) == 1  # 0.06 s -> 0 -> BucketSize 1 s


def test_window_average_counts_buckets_since_the_first_write():
    w = WindowAverager(60)
    w.record(1.0, 1.0)
    w.record(2.0, 3.0)
    w.record(2.5, 2.0)  # same bucket: summed (a scrape and an activator stat)
    assert w.average(2.0) == 3.0  # (1 + 3 + 2) / 2 buckets
    # One second without a write: the empty bucket 3 leaves the total, buckets = min(2, 60 - 1).
    assert w.average(3.0) == 3.0
    assert not w.is_empty(62.0)
    assert w.average(62.0) == 0.0  # nothing for a whole window (d = 60 >= window)
    assert w.is_empty(63.0)  # d = 61 > window: no data
    w.record(100.0, 5.0)  # after a window of silence: starts afresh
    assert w.average(100.0) == 5.0


def test_stable_mode_desired_is_ceil_of_stable_over_target():
    # target 70 (CC 0): 150 concurrent -> ceil(150 / 70) = 3. Two ready pods: panic needs
    # dppc / ready = 3 / 2 = 1.5 >= 2: no. maxScaleDown = floor(2 / 2) = 1, maxScaleUp = 2000.
    kpa = KnativePodAutoscaler(KPASettings(target=70, total=100), initial=2)
    d = run(kpa, 60, lambda t: 150.0, lambda t: 2)
    assert all(x.desired == 3 and not x.panic for x in d.values())
    assert d[60].scale == 3
    # EBC = floor(2 x 100 - 211 - 150) = -161 < 0: activator in the path.
    assert d[60].ebc == -161 and d[60].proxy


def test_panic_entry_extension_and_exit():
    """target 10, total 10, TBC 0. 10 concurrent for 60 s, 50 in seconds 61-62, then 10."""
    s = KPASettings(target=10, total=10, target_burst_capacity=0)
    kpa = KnativePodAutoscaler(s, initial=1)
    d = run(kpa, 130, lambda t: 50.0 if t in (61, 62) else 10.0, lambda t: 1 if t <= 62 else 3)
    # t=60: stable = panic = 10 -> 1 pod; 1 / 1 < 2: stable.
    assert (d[60].desired, d[60].panic) == (1, False)
    # t=62: stable over buckets 3..62 = (58 x 10 + 2 x 50) / 60 = 11.33 -> 2; panic over 57..62
    # = (4 x 10 + 2 x 50) / 6 = 23.33 -> 3; 3 / 1 ready >= 2: PANIC, max(2, 3) = 3.
    assert (d[62].desired, d[62].panic) == (3, True)
    # t=70: panic window all 10 -> 1, stable still 11.33 -> 2: in panic never down: 3.
    assert (d[70].desired, d[70].panic) == (3, True)
    # Panic began (and last held) at 62; it ends when 62 + 60 < now: still at 122, over at 124.
    assert (d[122].desired, d[122].panic) == (3, True)
    # t=124: stable over 65..124 = 10 -> 1; maxScaleDown = floor(3 / 2) = 1 -> 1.
    assert (d[124].desired, d[124].panic) == (1, False)
    # EBC with TBC 0 is 0 -> serve mode (activator out of the path) while the count is > 0.
    assert d[124].ebc == 0 and not d[124].proxy


def test_rate_limits():
    # Up: max-scale-up-rate 2, 3 ready: ceil(2 x 3) = 6 although 1000 / 10 = 100 are wanted
    # (the panic count is clamped alike).
    kpa = KnativePodAutoscaler(KPASettings(target=10, total=10, max_scale_up_rate=2), initial=3)
    assert run(kpa, 2, lambda t: 1000.0, lambda t: 3)[2].desired == 6
    # Down: nothing in flight with 10 ready: max(0, floor(10 / 2)) = 5, then floor(5 / 2) = 2.
    kpa = KnativePodAutoscaler(KPASettings(target=10, total=10), initial=10)
    d = run(kpa, 4, lambda t: 0.0, lambda t: 10 if t <= 2 else 5)
    assert (d[2].desired, d[2].scale, d[4].desired) == (5, 5, 2)


def test_scale_down_delay_keeps_the_max_of_the_delay():
    # scale-down-delay 10 s = ceil(10 / 2) = 5 ticks: the count 4 of t=2 is kept through t=10
    # (indices 1..5), t=12 (index 6) forgets it.
    s = KPASettings(target=10, total=10, scale_down_delay=10)
    kpa = KnativePodAutoscaler(s, initial=4)
    d = run(kpa, 14, lambda t: 40.0 if t <= 2 else 0.0, lambda t: 4)
    # t=2: 40 / 10 = 4. Later the stable window still holds the 40s: t=4 -> 80 / 4 = 20 -> 2;
    # floor(4 / 2) = 2 -> 2, but the delay keeps 4 until t=10.
    assert [d[t].desired for t in (2, 4, 10)] == [4, 4, 4]
    assert d[12].desired == 2


def test_bounds_and_activation_scale():
    s = KPASettings(target=10, total=10, min_scale=2, max_scale=4)
    kpa = KnativePodAutoscaler(s, initial=2)
    d = run(kpa, 4, lambda t: 100.0 if t > 2 else 0.0, lambda t: 2)
    assert (d[2].desired, d[2].scale) == (1, 2)  # floor(2 / 2) = 1 raised to min-scale 2
    # t=4: (0 + 0 + 100 + 100) / 4 = 50 -> 5 (panic: 5 / 2 >= 2), capped at max-scale 4.
    assert d[4].scale == 4
    # activation-scale 3: a non-zero count from zero is raised to 3 (ceil(1 / 70) = 1).
    s = KPASettings(target=70, total=100, activation_scale=3)
    kpa = KnativePodAutoscaler(s, initial=0)
    kpa.record(5.0, 1.0)
    d5 = kpa.tick(5.0, 0, 0)
    assert (d5.desired, d5.scale) == (3, 3)


def test_no_data_means_no_decision():
    kpa = KnativePodAutoscaler(KPASettings(target=70, total=100), initial=0)
    d = kpa.tick(2.0, 0, 0)
    assert not d.valid and d.scale is None


@pytest.mark.parametrize(
    ("tbc", "retention", "zero_at"),
    [
        # Activator already in the path (EBC = floor(100 - 211) < 0, proxy since 0): PA active
        # since 0, at t=60 active for the stable window -> inactive; t=62: in proxy for 62 s >=
        # grace 30 -> 0.
        (211, 0, 62),
        # TBC 0: EBC 0 -> serve mode while the count is 1; at t=60 inactive -> proxy from 60;
        # inactive for max(grace 30, retention 0) = 30 s at t=90 -> 0.
        (0, 0, 90),
        # TBC -1 (always proxied) with a 45 s pod retention: inactive at 60, held until
        # inactive for 45 s: t=106 (t=104 is 44 s).
        (-1, 45, 106),
    ],
)
def test_scale_to_zero_timing(tbc, retention, zero_at):
    s = KPASettings(target=70, total=100, target_burst_capacity=tbc, pod_retention=retention)
    kpa = KnativePodAutoscaler(s, initial=1)
    d = run(kpa, 120, lambda t: 0.0, lambda t: 1)
    # Before the stable window: the count 0 becomes "scale to 1" (active for < 60 s).
    assert d[2].desired == 0 and d[2].scale == 1
    assert d[60].scale is None  # marked inactive, scale not applied
    zero = [t for t, x in sorted(d.items()) if x.scale == 0]
    assert zero[0] == zero_at
    assert all(x.scale is None for t, x in d.items() if 60 <= t < zero_at)


def test_scale_to_zero_disabled_keeps_one():
    s = KPASettings(target=70, total=100, enable_scale_to_zero=False)
    kpa = KnativePodAutoscaler(s, initial=1)
    d = run(kpa, 120, lambda t: 0.0, lambda t: 1)
    assert all(x.scale == 1 for x in d.values())
