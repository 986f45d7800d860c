"""HPA decisions on scripted metric sequences, checked against values worked out by hand from the
controller's formulas (kubernetes/kubernetes pkg/controller/podautoscaler, see hpa.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from sim.platforms.autoscaling.hpa import (
    ControllerFlags,
    HorizontalPodAutoscaler,
    HPABehavior,
    HPASpec,
    MetricTarget,
    PodMetrics,
    PodView,
    group_pods,
)

EXT = MetricTarget("queue", "external", "AverageValue", 10.0)


def make(
    metrics: Sequence[MetricTarget] = (EXT,),
    *,
    lo: int = 1,
    hi: int = 100,
    behavior: dict | None = None,
) -> HorizontalPodAutoscaler:
    beh = None if behavior is None else HPABehavior.model_validate(behavior)
    return HorizontalPodAutoscaler(min_replicas=lo, max_replicas=hi, metrics=metrics, behavior=beh)


def run(hpa: HorizontalPodAutoscaler, start: int, metrics: Sequence[float], step: float = 15.0):
    """Sync every `step` seconds from t=0, applying each decision; all pods ready."""
    current, out = start, []
    for i, m in enumerate(metrics):
        d = hpa.recommend(i * step, current, current, m)
        out.append(d)
        current = d.desired
    return out


# --- the replica calculation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "total", "expected", "rule"),
    [
        (4, 44.0, 4, "tolerance"),  # 44 / (10 x 4) = 1.1: on the band's edge, kept
        (4, 45.0, 5, "scale"),  # 1.125 -> ceil(45 / 10)
        (4, 36.0, 4, "tolerance"),  # 0.9: lower edge, kept
        (1, 20.0, 2, "scale"),  # target 10: ceil(20 / 10)
    ],
)
def test_external_average_value_tolerance_band(current, total, expected, rule):
    d = make().recommend(0.0, current, current, total)
    assert (d.desired, d.rule) == (expected, rule)


def test_backlog_20_threshold_5_gives_4():
    """keda-docs: 'threshold is 5 messages ... 20 ... 20 / 5 = 4 replicas'."""
    hpa = make([MetricTarget("q", "external", "AverageValue", 5.0)])
    d = hpa.recommend(0.0, 1, 1, 20.0)
    assert d.desired == 4
    assert d.recommendation == 4


def test_external_value_target_uses_ready_pods():
    hpa = make([MetricTarget("lag", "external", "Value", 10.0)])
    d = hpa.recommend(0.0, 5, 5, 12.0)  # ratio 1.2 x 5 ready = 6
    assert d.desired == 6


def test_largest_metric_wins():
    hpa = make([EXT, MetricTarget("rps", "external", "AverageValue", 5.0)])
    d = hpa.recommend(0.0, 4, 4, [30.0, 40.0])  # 3 vs 8
    assert d.desired == 8
    assert d.metric_value == 40.0 and d.target == 5.0


def test_one_metric_missing_blocks_a_scale_down_but_not_a_scale_up():
    hpa = make([EXT, MetricTarget("rps", "external", "AverageValue", 5.0)])
    assert hpa.recommend(0.0, 4, 4, [None, 10.0]).desired == 4  # 2 < 4: refused
    assert hpa.recommend(15.0, 4, 4, [None, 40.0]).desired == 8
    assert hpa.recommend(30.0, 8, 8, [None, None]).rule == "no-metrics"


CPU = MetricTarget("cpu", "pods", "Utilization", 0.5)


@pytest.mark.parametrize(
    ("current", "ready", "mean", "expected"),
    [
        (2, 2, 0.8, 4),  # ratio 1.6 x 2 = 3.2 -> 4
        # 2 not ready count as 0 on a scale-up: 1.2 x 2 / (0.5 x 4) = 1.2 -> ceil(1.2 x 4) = 5
        # (counting them at the ready pods' 1.2 would give ceil(2.4 x 4) = 10)
        (4, 2, 1.2, 5),
        # 0.9 x 2 / (0.5 x 4) = 0.9 < 1: the direction flips -> keep 4
        (4, 2, 0.9, 4),
        # scale-down: not-ready pods ignored, ceil(0.4 x 2) = 1 (min 1)
        (4, 2, 0.2, 1),
    ],
)
def test_utilization_with_not_ready_pods(current, ready, mean, expected):
    hpa = make([CPU], behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    assert hpa.recommend(0.0, current, ready, mean).desired == expected


def test_no_ready_pod_means_no_metric():
    d = make([CPU]).recommend(0.0, 3, 0, 0.9)
    assert (d.desired, d.rule) == (3, "no-metrics")


# --- bounds ---------------------------------------------------------------------------------------


def test_bounds():
    hpa = make(lo=2, hi=6, behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    assert hpa.recommend(0.0, 9, 9, 500.0).rule == "above-max"
    assert hpa.recommend(15.0, 9, 9, 500.0).desired == 6
    assert hpa.recommend(30.0, 1, 1, 0.0).desired == 2  # below minReplicas
    d = hpa.recommend(45.0, 4, 4, 0.0)  # ceil(0) = 0 -> raised to minReplicas
    assert (d.desired, d.rule) == (2, "min")
    d = hpa.recommend(60.0, 5, 5, 300.0)  # 30 wanted; Pods 4 -> 9, Percent 100 -> 10
    assert (d.desired, d.rule) == (6, "max")


def test_zero_replicas_disable_the_hpa():
    d = make().recommend(0.0, 0, 0, 1000.0)
    assert (d.desired, d.rule) == (0, "disabled")


# --- scale-up rate limits -------------------------------------------------------------------------


def test_scale_up_without_behavior_doubles_or_adds_four():
    """No behavior: at most max(2 x current, 4) per sync (calculateScaleUpLimit)."""
    out = run(make(hi=10), 1, [1000.0] * 4)
    assert [d.desired for d in out] == [4, 8, 10, 10]
    assert out[0].rule == "rate-limit-up" and out[2].rule == "max"


def test_scale_up_with_default_behavior():
    """Defaults Pods 4 and Percent 100 per 15 s, Max: from 1, max(1 + 4, ceil(1 x 2)) = 5;
    the event at t=0 is exactly one period old at t=15, so outside it: max(5 + 4, 10) = 10."""
    out = run(make(hi=10, behavior={}), 1, [1000.0] * 3)
    assert [d.desired for d in out] == [5, 10, 10]
    assert "Pods=4/15s" in out[0].reason


def test_scale_up_policy_period_counts_recent_changes():
    """Pods 1 per 60 s: +1 at t=0; at 15..45 s that +1 is within the period (start = 1, limit 2);
    at 60 s it is not (start = 2, limit 3)."""
    behavior = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    out = run(make(behavior=behavior), 1, [1000.0] * 6)
    assert [d.desired for d in out] == [2, 2, 2, 2, 3, 3]
    assert out[1].rule == "rate-limit-up"


def test_select_policy_min_takes_the_smaller_change():
    behavior = {"scaleUp": {"selectPolicy": "Min"}}  # from 10: min(10 + 4, ceil(10 x 2)) = 14
    assert make(behavior=behavior).recommend(0.0, 10, 10, 1000.0).desired == 14


def test_scale_up_stabilisation_takes_the_lowest_recent_recommendation():
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 60}}
    out = run(make(behavior=behavior), 2, [20.0, 60.0, 60.0, 60.0, 60.0, 60.0])
    # t=0: raw 2 (the initial recommendation is 2 too) -> 2; then raw 6 but min over the
    # last 60 s is 2 until the t=0 samples leave the window at t=60 (strictly newer needed).
    assert [d.desired for d in out] == [2, 2, 2, 2, 6, 6]
    assert out[1].rule == "stabilised-up"


# --- scale-down -----------------------------------------------------------------------------------

SCRIPT = [100.0, 70.0] + [30.0] * 21  # syncs at t = 0, 15, ..., 330


def test_scale_down_stabilisation_with_default_behavior():
    """Window 300 s, a recommendation counts while strictly newer than now - 300: the 10s of t=0
    leave at t=300 (max left: 7 from t=15), the 7 leaves at t=315."""
    out = run(make(behavior={}), 10, SCRIPT)
    desired = [d.desired for d in out]
    assert desired[:20] == [10] * 20  # t = 0 .. 285
    assert desired[20:] == [7, 3, 3]  # t = 300, 315, 330
    assert out[1].rule == "stabilised-down"
    assert out[20].reason.endswith("scale-down stabilised: max recommendation 7 in last 300s")


def test_scale_down_stabilisation_without_behavior_is_inclusive():
    """stabilizeRecommendation keeps samples not older than the cutoff: one sync later."""
    out = run(make(), 10, SCRIPT)
    assert [d.desired for d in out][19:] == [10, 10, 7, 3]  # t = 285, 300, 315, 330


def test_scale_down_percent_policy():
    """Percent 50 per 60 s: int(10 x 0.5) = 5; the -5 at t=0 counts until t=60."""
    behavior = {
        "scaleDown": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        }
    }
    out = run(make(behavior=behavior), 10, [10.0] * 5)
    assert [d.desired for d in out] == [5, 5, 5, 5, 2]
    assert out[1].rule == "rate-limit-down"


def test_scale_down_disabled():
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}}
    d = make(behavior=behavior).recommend(0.0, 5, 5, 10.0)
    assert d.desired == 5 and "disabled" in d.reason


def test_per_direction_tolerance():
    behavior = {"scaleUp": {"tolerance": 0.5}}
    assert make(behavior=behavior).recommend(0.0, 4, 4, 56.0).desired == 4  # ratio 1.4
    assert make().recommend(0.0, 4, 4, 56.0).desired == 6


# --- the spec -------------------------------------------------------------------------------------


def test_behavior_defaults_are_kubernetes_defaults():
    b = HPABehavior()
    assert b.scaleUp.stabilizationWindowSeconds == 0
    assert [(p.type, p.value, p.periodSeconds) for p in b.scaleUp.policies] == [
        ("Pods", 4, 15),
        ("Percent", 100, 15),
    ]
    assert b.scaleUp.selectPolicy == "Max"
    # defaults.go leaves the scale-down window nil: the controller's flag fills it.
    assert b.scaleDown.stabilizationWindowSeconds is None
    assert [(p.type, p.value, p.periodSeconds) for p in b.scaleDown.policies] == [
        ("Percent", 100, 15)
    ]
    partial = HPABehavior.model_validate({"scaleDown": {"selectPolicy": "Min"}})
    assert partial.scaleDown.stabilizationWindowSeconds is None
    assert partial.scaleDown.selectPolicy == "Min"


def test_unset_scale_down_window_takes_the_controller_flag():
    """--horizontal-pod-autoscaler-downscale-stabilization=1m: an HPA with `behavior: {}` scales
    down once its 4-pod recommendation is older than 60 s (strictly newer than now - 60 counts),
    not after the 300 s the old filled-in default gave."""
    beh = HPABehavior()
    hpa = HorizontalPodAutoscaler(
        min_replicas=1, max_replicas=10, metrics=[EXT], behavior=beh, downscale_stabilization=60
    )
    seq = [40.0] + [10.0] * 6  # 4 pods, then 1 pod's worth
    current, out = 4, []
    for i, m in enumerate(seq):
        d = hpa.recommend(i * 15.0, current, current, m)
        out.append(d.desired)
        current = d.desired
    assert out == [4, 4, 4, 4, 1, 1, 1]  # at t=60 the 4 of t=0 is no longer newer than 60 - 60
    explicit = HPABehavior.model_validate({"scaleDown": {"stabilizationWindowSeconds": 0}})
    hpa0 = HorizontalPodAutoscaler(
        min_replicas=1, max_replicas=10, metrics=[EXT], behavior=explicit
    )
    assert hpa0.recommend(0.0, 4, 4, 10.0).desired == 1  # an explicit 0 is kept


def test_from_spec_takes_unset_flags_from_the_cluster():
    flags = ControllerFlags.model_validate({"downscale_stabilization": "1m", "tolerance": 0.2})
    spec = HPASpec.model_validate({"max_replicas": 5})
    hpa = HorizontalPodAutoscaler.from_spec(spec, flags)
    assert (hpa.downscale_stabilization, hpa.tolerance_up) == (60.0, 0.2)
    own = HPASpec.model_validate({"max_replicas": 5, "downscale_stabilization": "2m"})
    assert HorizontalPodAutoscaler.from_spec(own, flags).downscale_stabilization == 120.0


# --- CPU as the HPA sees it (replica_calculator.go groupPods, GetResourceReplicas) -------------

CPU = MetricTarget("cpu", "pods", "Utilization", 0.5)


def cpu_hpa(**kw) -> HorizontalPodAutoscaler:
    return HorizontalPodAutoscaler(min_replicas=1, max_replicas=100, metrics=[CPU], **kw)


def running(milli: int, *, ready_since: float = -1e9, start: float = -1e9, t: float, w=15.0):
    return PodView(False, start, True, ready_since, milli, t, w)


def test_utilisation_is_a_whole_percent_before_the_ratio():
    """4 pods of 500m each using 277.9m: metrics-server serves 278m (MilliValue rounds up);
    utilisation = int32(4 x 278 x 100 / 2000) = 55%, 55 / 50 = 1.1: within tolerance, keep 4. The
    float mean (0.5558 / 0.5 = 1.1116) would have scaled to ceil(4.45) = 5."""
    pods = PodMetrics(tuple(running(278, t=0.0) for _ in range(4)), 500)
    d = cpu_hpa().recommend(0.0, 4, 4, pods)
    assert (d.desired, d.rule) == (4, "tolerance")
    assert d.metric_value == 0.55
    assert cpu_hpa().recommend(0.0, 4, 4, 0.5558).desired == 5  # the mean-value path


def test_group_pods_follows_upstream():
    now = 100.0
    pods = [
        PodView(True),  # Pending -> unready
        PodView(False, 0.0, True, 10.0, None),  # running, no sample yet -> missing
        running(500, start=0.0, ready_since=90.0, t=99.0),  # 99 < 90 + 15 -> unready
        running(500, start=0.0, ready_since=80.0, t=99.0),  # 99 >= 95 -> ready
        PodView(False, 0.0, False, 5.0, 500, 99.0, 15.0),  # not ready, in init period
        PodView(False, -400.0, False, -398.0, 500, 99.0, 15.0),  # after: never ready, 30 s
        PodView(False, -400.0, False, -300.0, 500, 99.0, 15.0),  # after: was ready once
    ]
    ready, unready, missing = group_pods(pods, now, 300.0, 30.0)
    assert (ready, unready, missing) == ([3, 6], [0, 2, 4, 5], [1])


def test_cpu_scale_up_takes_two_syncs_per_doubling():
    """Hand-computed from replica_calculator.go and metrics-server. CPU-bound pods of 500m at
    100% (500m each), target 50%: ratio 2. metrics-server scrapes at 7.5 + 15k s; a new pod is
    created at a sync and ready 5 s later; its container starts then (no sample until a scrape
    has a previous point for it, or it is >= 10 s old), and within the 5 min initialisation
    period its sample counts only once it covers a whole window after readiness.
    t=15: 2 pods at 100% -> ratio 2 -> 4 (new pods ready at 20).
    t=30: scrape 22.5: the 2 new pods are 2.5 s old: no sample (missing) -> on a scale-up they
          count as 0: (2 x 500) x 100 / (4 x 500) = 50% -> ratio 1.0 -> keep 4.
    t=45: scrape 37.5 over [22.5, 37.5]: all 4 at 100% -> 8 (ready at 50).
    t=60: scrape 52.5: 4 missing -> 50% -> keep 8. t=75: 16. One doubling per two syncs; with
    the mean over ready pods the new pods count at once and it doubles every sync."""
    hpa = cpu_hpa()
    created: list[float] = [-1e9, -1e9]  # pod creation (= scheduling) times
    current, seq = 2, []
    for k in range(1, 6):
        now = 15.0 * k
        scrape = 7.5 + 15.0 * math.floor((now - 7.5) / 15.0)
        pods = []
        for c in created:
            ready_at = c + 5.0
            if ready_at > now:
                pods.append(PodView(True, c))
            elif ready_at <= scrape - 15.0:
                pods.append(running(500, start=c, ready_since=ready_at, t=scrape))
            elif scrape - ready_at >= 10.0:
                pods.append(
                    running(500, start=c, ready_since=ready_at, t=scrape, w=scrape - ready_at)
                )
            else:
                pods.append(PodView(False, c, True, ready_at, None))
        d = hpa.recommend(
            now, current, sum(1 for p in pods if not p.pending), PodMetrics(tuple(pods), 500)
        )
        seq.append(d.desired)
        created += [now] * (d.desired - current)
        current = d.desired
    assert seq == [4, 4, 8, 8, 16]


@pytest.mark.parametrize(
    ("data", "target"),
    [
        ({"max_replicas": 5}, 0.8),
        ({"max_replicas": 5, "target": "70%"}, 0.7),
        ({"max_replicas": 5, "target": 0.65}, 0.65),
        ({"max_replicas": 5, "metric": "concurrency", "target": 8}, 8.0),
        ({"max_replicas": 5, "metric": "rps", "target": "1200/min"}, 20.0),
    ],
)
def test_hpa_spec_targets(data, target):
    spec = HPASpec.model_validate(data)
    assert spec.target == pytest.approx(target)
    assert spec.sync_period == 15.0 and spec.tolerance == 0.1 and spec.behavior is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"max_replicas": 5, "target": 70}, "70%"),
        ({"max_replicas": 5, "metric": "concurrency"}, "required"),
        ({"min_replicas": 6, "max_replicas": 5}, "must not exceed"),
        ({"max_replicas": 5, "behavior": {"scaleUp": {"policies": []}}}, "at least 1"),
        ({"max_replicas": 5, "behavior": {"scaleUp": {"selectPolicy": "Fastest"}}}, "Max"),
        ({"max_replicas": 5, "metric": "memory", "target": 1}, "cpu"),
    ],
)
def test_hpa_spec_errors(data, words):
    with pytest.raises(ValidationError) as exc:
        HPASpec.model_validate(data)
    assert words in str(exc.value)


def test_from_spec():
    spec = HPASpec.model_validate(
        {"max_replicas": 10, "metric": "concurrency", "target": 4, "behavior": {}}
    )
    hpa = HorizontalPodAutoscaler.from_spec(spec)
    # mean in flight 10 per ready pod vs 4: ratio 2.5 x 2 ready = 5
    assert hpa.recommend(0.0, 2, 2, 10.0).desired == 5
