"""KEDA: the ScaledObject spec, activation / cooldown decisions on scripted metric sequences
(expected values worked out from kedacore/keda scale_scaledobjects.go and the keda-docs), and the
manifest loaders."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sim.errors import InputError
from sim.platforms.autoscaling.keda import (
    SUPPORTED_TRIGGERS,
    KedaAutoscaler,
    KedaScaler,
    ScaledObjectSpec,
)
from sim.platforms.autoscaling.manifests import (
    load_http_scaled_object,
    load_keda_manifest,
    load_scaled_object,
)

DATA = Path(__file__).parent / "data"


def so(triggers: list[dict] | None = None, **kw) -> ScaledObjectSpec:
    trig = triggers or [{"type": "queue", "metadata": {"lagThreshold": "5"}}]
    return ScaledObjectSpec.model_validate({"triggers": trig, **kw})


def kafka(threshold: str = "10", activation: str = "0", **md) -> list[dict]:
    return [
        {
            "type": "kafka",
            "metadata": {"lagThreshold": threshold, "activationLagThreshold": activation, **md},
        }
    ]


def polls(scaler: KedaScaler, start: int, metrics: list[float | None], step: float = 30.0):
    current, out = start, []
    for i, m in enumerate(metrics):
        d = scaler.poll(i * step, [m], current)
        out.append(d)
        current = d.desired
    return out


# --- activation -----------------------------------------------------------------------------------


def test_docs_example_activation_threshold_keeps_zero():
    """keda-docs: threshold 10, activationThreshold 50, 40 messages -> the workload stays at 0."""
    keda = KedaAutoscaler(so(kafka("10", "50")))
    d = keda.on_poll(0.0, [40.0], 0)
    assert (d.desired, d.active, d.rule) == (0, False, "inactive")
    assert keda.on_hpa_sync(15.0, [40.0], 0, 0).rule == "disabled"


@pytest.mark.parametrize(
    ("activation", "metric", "active"),
    [("50", 50.0, False), ("50", 50.5, True), ("0", 0.0, False), ("0", 0.01, True)],
)
def test_activation_is_strictly_greater(activation, metric, active):
    d = KedaScaler(so(kafka("10", activation))).poll(0.0, [metric], 0)
    assert d.active is active
    assert d.desired == (1 if active else 0)


@pytest.mark.parametrize(("minimum", "expected"), [(0, 1), (3, 3)])
def test_from_zero_to_max_of_min_and_one(minimum, expected):
    d = KedaScaler(so(minReplicaCount=minimum)).poll(0.0, [1.0], 0)
    assert (d.desired, d.rule) == (expected, "activate")


def test_docs_example_backlog_20_threshold_5_gives_4():
    """keda-docs: 'threshold is 5 messages ... 20 ... 20 / 5 = 4 replicas'."""
    keda = KedaAutoscaler(so(kafka("5")))
    assert keda.on_poll(0.0, [20.0], 0).desired == 1
    d = keda.on_hpa_sync(15.0, [20.0], 1, 0)  # AverageValue: pods' readiness does not matter
    assert d.desired == 4


# --- back to zero ---------------------------------------------------------------------------------


def test_cooldown_to_zero_after_cooldown_period_of_inactivity():
    """Active at t = 0, 30, 60; lastActiveTime = 60; 60 + 300 < now first holds at t = 390."""
    out = polls(KedaScaler(so(kafka())), 0, [5.0, 5.0, 5.0] + [0.0] * 12)
    rules = [d.rule for d in out]
    assert rules[:3] == ["activate", "active", "active"]
    assert rules[3:13] == ["cooldown"] * 10  # t = 90 .. 360
    assert (rules[13], out[13].desired) == ("deactivate", 0)  # t = 390
    assert rules[14] == "inactive"


@pytest.mark.parametrize(("initial", "first_zero"), [(0, 30.0), (120, 150.0)])
def test_initial_cooldown_when_never_active(initial, first_zero):
    scaler = KedaScaler(so(kafka(), initialCooldownPeriod=initial))
    out = polls(scaler, 2, [0.0] * 8)
    t_zero = next(i * 30.0 for i, d in enumerate(out) if d.desired == 0)
    assert t_zero == first_zero


def test_idle_replica_count():
    spec = so(kafka(), minReplicaCount=2, idleReplicaCount=0, maxReplicaCount=10)
    scaler = KedaScaler(spec)
    assert scaler.poll(0.0, [1.0], 0).desired == 2  # from idle straight to minReplicaCount
    assert scaler.poll(30.0, [0.0], 2).rule == "cooldown"
    assert scaler.poll(300.0, [0.0], 2).rule == "cooldown"  # 0 + 300 < 300 is false
    d = scaler.poll(330.0, [0.0], 2)
    assert (d.desired, d.rule) == (0, "deactivate")
    assert scaler.poll(360.0, [1.0], 1).desired == 2  # below min with idle set: activate to min


def test_idle_above_zero():
    scaler = KedaScaler(so(kafka(), minReplicaCount=3, idleReplicaCount=1))
    assert scaler.poll(30.0, [0.0], 5).desired == 1  # never active, initialCooldownPeriod 0


def test_min_replica_count_one_or_more_ignores_activation():
    scaler = KedaScaler(so(kafka(), minReplicaCount=2))
    out = polls(scaler, 2, [0.0] * 40)  # 20 minutes without activity
    assert {d.desired for d in out} == {2}
    assert scaler.poll(1200.0, [0.0], 1).desired == 2  # raised to minReplicaCount
    assert scaler.poll(1230.0, [9.0], 2).rule == "active"


def test_a_trigger_error_changes_nothing():
    scaler = KedaScaler(so(kafka()))
    out = polls(scaler, 1, [None] * 20)
    assert {(d.desired, d.rule) for d in out} == {(1, "error")}


# --- the HPA that KEDA drives ---------------------------------------------------------------------


def test_hpa_bounds_follow_the_scaled_object():
    assert KedaAutoscaler(so(maxReplicaCount=7)).hpa.min_replicas == 1
    keda = KedaAutoscaler(so(minReplicaCount=3, maxReplicaCount=7))
    assert (keda.hpa.min_replicas, keda.hpa.max_replicas) == (3, 7)
    assert keda.polling_interval == 30.0 and keda.hpa_sync_period == 15.0


def test_several_triggers_largest_wins():
    spec = so(
        [
            {"type": "prometheus", "metadata": {"threshold": "100"}},
            {"type": "queue", "metadata": {"lagThreshold": "10"}},
        ]
    )
    keda = KedaAutoscaler(spec)
    d = keda.on_hpa_sync(0.0, [250.0, 80.0], 4, 4)  # ceil(2.5) = 3 vs 8
    assert d.desired == 8 and d.metric_value == 80.0


def test_behavior_from_advanced_hpa_config():
    behavior = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    spec = so(kafka("5"), advanced={"horizontalPodAutoscalerConfig": {"behavior": behavior}})
    keda = KedaAutoscaler(spec)
    assert keda.on_hpa_sync(0.0, [100.0], 1, 1).desired == 2
    assert keda.on_hpa_sync(15.0, [100.0], 2, 2).desired == 2


def test_fallback_after_failure_threshold():
    spec = so(
        [{"type": "prometheus", "metadata": {"threshold": "10"}}],
        fallback={"failureThreshold": 2, "replicas": 6},
        maxReplicaCount=20,
    )
    keda = KedaAutoscaler(spec)
    assert keda.on_hpa_sync(0.0, [None], 3, 3).rule == "no-metrics"  # 1 failure
    assert keda.on_hpa_sync(15.0, [None], 3, 3).rule == "no-metrics"  # 2, not > 2
    d = keda.on_hpa_sync(30.0, [None], 3, 3)  # 3 > 2: served 10 x 6 -> ceil(60 / 10) = 6
    assert d.desired == 6 and d.metric_value == 60.0


def test_fallback_with_a_value_trigger_is_valid_and_divided_by_ready():
    """KEDA >= 2.18 accepts a Value trigger with fallback; doFallback serves target x replicas /
    readyReplicas, so the HPA's Value rule ceil(metric / target x ready) gives the replicas."""
    spec = so(
        [{"type": "prometheus", "metricType": "Value", "metadata": {"threshold": "10"}}],
        fallback={"failureThreshold": 0, "replicas": 6},
    )
    d = KedaAutoscaler(spec).on_hpa_sync(0.0, [None], 4, 3)  # 10 x 6 / 3 = 20 -> 2 x 3 = 6
    assert (d.desired, d.metric_value) == (6, 20.0)


def test_fallback_failures_count_at_polls_and_fallback_is_active():
    """Every read counts (GetMetricsWithFallback at KEDA's poll and at the HPA's read). With
    failureThreshold 1, the second failed poll is past the threshold: the trigger is served its
    fallback and counts as active (getScalerState isActiveOrFallback), so KEDA scales from 0."""
    spec = so(kafka(), fallback={"failureThreshold": 1, "replicas": 3})
    keda = KedaAutoscaler(spec)
    first = keda.on_poll(0.0, [None], 0)
    assert (first.desired, first.rule) == (0, "error")
    second = keda.on_poll(30.0, [None], 0)
    assert (second.desired, second.rule) == (1, "activate")
    d = keda.on_hpa_sync(45.0, [None], 1, 1)  # third failure: 10 x 3 -> 3
    assert d.desired == 3
    assert keda.on_poll(60.0, [0.0], 3).rule == "cooldown"  # a success resets the count


def test_fallback_current_replicas_if_higher():
    spec = so(
        [{"type": "prometheus", "metadata": {"threshold": "10"}}],
        fallback={"failureThreshold": 0, "replicas": 6, "behavior": "currentReplicasIfHigher"},
    )
    d = KedaAutoscaler(spec).on_hpa_sync(0.0, [None], 8, 8)  # max(8, 6) = 8 -> 80 / 80
    assert (d.desired, d.rule) == (8, "tolerance")


def test_kafka_partitions_cap_the_hpa_metric_not_activation():
    capped = KedaScaler(so(kafka("10", "50", partitions="1")))
    assert capped.hpa_metric([60.0]) == [10.0]  # at most one consumer per partition
    assert capped.poll(0.0, [60.0], 0).active  # activation sees the full lag
    idle = KedaScaler(so(kafka("10", partitions=3, allowIdleConsumers="true")))
    assert idle.hpa_metric([100.0]) == [100.0]


def test_kafka_partition_cap_in_integer_arithmetic():
    """kafka_scaler.go getTotalLag (v2.20.2): cap only when totalLag / lagThreshold (int64
    division) > partitions. 2 partitions, threshold 10: lag 25 -> 25 / 10 = 2, not > 2, served
    uncapped and the HPA asks for ceil(25 / 10) = 3; lag 30 -> 3 > 2 -> capped to 2 x 10."""
    scaler = KedaScaler(so(kafka("10", partitions="2")))
    assert scaler.hpa_metric([25.0]) == [25.0]
    assert scaler.hpa_metric([29.0]) == [29.0]
    assert scaler.hpa_metric([30.0]) == [20.0]
    keda = KedaAutoscaler(so(kafka("10", partitions="2")))
    assert keda.on_hpa_sync(0.0, [25.0], 1, 1).desired == 3


def test_kafka_lag_counts_fetched_uncommitted_messages():
    """lag = latest offset - committed offset per partition (getLagForPartition): a message a
    consumer is processing is not committed yet, so it is lag: waiting + in flight."""
    (info,) = so(kafka()).trigger_infos()
    assert info.measure == "backlog_inflight"
    with pytest.raises(ValidationError):  # LagThreshold int64 in KEDA
        so(kafka("2.5"))


def test_http_request_rate_is_reported_rounded_up():
    rate = KedaScaler(so([{"type": "http", "metadata": {"scalingMetric": "requestRate"}}]))
    assert rate.hpa_metric([0.2]) == [1.0]
    assert rate.poll(0.0, [0.2], 0).desired == 1
    conc = KedaScaler(so([{"type": "http"}]))
    assert conc.hpa_metric([0.2]) == [0.2]
    assert conc.triggers[0].target == 100.0


def test_cpu_trigger_takes_no_part_in_activation():
    spec = so(
        [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}, *kafka()],
    )
    scaler = KedaScaler(spec)
    assert scaler.poll(0.0, [0.99, 0.0], 0).desired == 0
    only_cpu = KedaScaler(
        so(
            [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}],
            minReplicaCount=1,
        )
    )
    assert only_cpu.poll(0.0, [0.1], 1).active
    keda = KedaAutoscaler(spec)  # cpu is a per-pod Utilization metric for the HPA
    d = keda.on_hpa_sync(0.0, [0.9, 0.0], 2, 2)  # 0.9 / 0.6 = 1.5 x 2 ready = 3
    assert d.desired == 3


# --- the spec -------------------------------------------------------------------------------------


def test_defaults():
    spec = so()
    assert (spec.pollingInterval, spec.cooldownPeriod, spec.initialCooldownPeriod) == (30, 300, 0)
    assert (spec.minReplicaCount, spec.maxReplicaCount, spec.idleReplicaCount) == (0, 100, None)
    assert spec.hpa_behavior() is None
    k = so([{"type": "kafka"}]).triggers[0]
    assert (k.target(), k.activation()) == (10.0, 0.0)
    s = so([{"type": "aws-sqs-queue", "metadata": {"queueURL": "q", "awsRegion": "eu-west-1"}}])
    assert (s.triggers[0].target(), s.trigger_infos()[0].measure) == (5.0, "backlog_inflight")


def test_prometheus_counter_says_what_it_counts():
    ingress = so([{"type": "prometheus", "metadata": {"threshold": "5", "counts": "arrivals"}}])
    assert ingress.trigger_infos()[0].measure == "request_rate"
    app = so([{"type": "prometheus", "metadata": {"threshold": "5"}}], minReplicaCount=1)
    assert app.trigger_infos()[0].measure == "completion_rate"
    # Resting at 0, only a counter outside the pods can wake it: arrivals unless told.
    zero = so([{"type": "prometheus", "metadata": {"threshold": "5"}}])
    assert zero.trigger_infos()[0].measure == "request_rate"


def test_trigger_infos():
    spec = so(
        [
            {"type": "prometheus", "name": "rps", "metadata": {"threshold": "100.5"}},
            {"type": "http", "metadata": {"scalingMetric": "requestRate", "window": "2m"}},
            {"type": "aws-sqs-queue", "metadata": {"scaleOnInFlight": "false"}},
            {"type": "cpu", "metricType": "AverageValue", "metadata": {"value": "250m"}},
        ],
        minReplicaCount=1,
    )
    infos = spec.trigger_infos()
    assert [i.name for i in infos] == ["rps", "s1-http", "s2-aws-sqs-queue", "s3-cpu"]
    assert [(i.measure, i.window) for i in infos] == [
        ("completion_rate", 120.0),  # an app-side counter by default (minReplicaCount 1)
        ("request_rate", 120.0),
        ("backlog", None),
        ("cpu_cores", None),
    ]
    assert infos[0].target == 100.5 and infos[3].target == 0.25
    assert infos[3].activation is None


@pytest.mark.parametrize(
    ("query", "window", "expected"),
    [
        ("sum(rate(http_requests_total[5m]))", None, 300.0),
        ("sum(rate(http_requests_total[30s]))", None, 30.0),
        ("sum(http_inflight)", None, 120.0),
        ("sum(rate(http_requests_total[5m]))", "1m", 60.0),
    ],
)
def test_prometheus_window(query, window, expected):
    md = {"threshold": "10", "query": query} | ({"window": window} if window else {})
    spec = so([{"type": "prometheus", "metadata": md}])
    assert spec.trigger_infos()[0].window == expected


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"triggers": [{"type": "rabbitmq"}]}, "unknown trigger type 'rabbitmq'; supported: "),
        ({"triggers": [{"metadata": {}}]}, "needs `type`"),
        ({"triggers": []}, "at least 1"),
        ({"triggers": [{"type": "prometheus", "metadata": {"treshold": "1"}}]}, "treshold"),
        ({"triggers": [{"type": "prometheus", "metadata": {"threshold": "ten"}}]}, "number"),
        (
            {"minReplicaCount": 2, "idleReplicaCount": 2, "triggers": [{"type": "kafka"}]},
            "idleReplicaCount (2) must be less than minReplicaCount (2)",
        ),
        (
            {"minReplicaCount": 5, "maxReplicaCount": 4, "triggers": [{"type": "kafka"}]},
            "must not exceed",
        ),
        (
            {"triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": 50}}]},
            "cannot scale to zero on CPU alone",
        ),
        (
            {"minReplicaCount": 1, "triggers": [{"type": "cpu", "metadata": {"value": 50}}]},
            "metricType Utilization or AverageValue",
        ),
        (
            {
                "minReplicaCount": 1,
                "fallback": {"failureThreshold": 3, "replicas": 2},
                "triggers": [
                    {"type": "cpu", "metricType": "Utilization", "metadata": {"value": 50}}
                ],
            },
            "not cpu or memory",
        ),
        ({"triggers": [{"type": "kafka", "metricType": "Utilization"}]}, "only for cpu"),
        (
            {
                "advanced": {"scalingModifiers": {"formula": "a + b"}},
                "triggers": [{"type": "kafka"}],
            },
            "not simulated",
        ),
        ({"triggers": [{"type": "kafka", "name": "a"}, {"type": "queue", "name": "a"}]}, "unique"),
    ],
)
def test_spec_errors(data, words):
    with pytest.raises(ValidationError) as exc:
        ScaledObjectSpec.model_validate(data)
    assert words in str(exc.value)


def test_unknown_type_lists_every_supported_type():
    with pytest.raises(ValidationError) as exc:
        ScaledObjectSpec.model_validate({"triggers": [{"type": "nats"}]})
    for kind in SUPPORTED_TRIGGERS:
        assert kind in str(exc.value)


def test_initial_replicas():
    assert KedaAutoscaler(so()).initial_replicas == 0
    assert KedaAutoscaler(so(minReplicaCount=2)).initial_replicas == 2
    assert KedaAutoscaler(so(minReplicaCount=2, idleReplicaCount=0)).initial_replicas == 0


# --- manifests ------------------------------------------------------------------------------------


def test_load_scaled_object():
    spec = load_scaled_object(DATA / "keda_scaledobject.yaml")
    assert (spec.pollingInterval, spec.cooldownPeriod, spec.initialCooldownPeriod) == (15, 120, 60)
    assert (spec.minReplicaCount, spec.maxReplicaCount) == (0, 40)
    assert spec.fallback is not None and spec.fallback.replicas == 6
    behavior = spec.hpa_behavior()
    assert behavior is not None
    assert behavior.scaleDown.stabilizationWindowSeconds == 120
    assert behavior.scaleUp.stabilizationWindowSeconds == 0  # filled default
    (info,) = spec.trigger_infos()
    assert (info.name, info.target, info.activation, info.window) == ("http-rps", 50.0, 0.5, 60.0)


def test_load_multi_document_file():
    spec = load_keda_manifest(DATA / "keda_multi.yaml")
    assert (spec.minReplicaCount, spec.maxReplicaCount) == (1, 12)
    kafka_info, cpu_info = spec.trigger_infos()
    assert (kafka_info.target, kafka_info.activation) == (25.0, 5.0)
    assert (cpu_info.measure, cpu_info.target) == ("cpu_utilization", 0.7)
    keda = KedaAutoscaler(spec)
    assert [m.source for m in keda.hpa.metrics] == ["external", "pods"]
    assert keda.scaler.hpa_metric([1000.0, 0.5]) == [150.0, 0.5]  # 6 partitions x 25


def test_load_http_scaled_object_request_rate():
    spec = load_http_scaled_object(DATA / "keda_httpscaledobject.yaml")
    assert (spec.minReplicaCount, spec.maxReplicaCount, spec.cooldownPeriod) == (0, 20, 180)
    assert spec.pollingInterval == 0.5
    (info,) = spec.trigger_infos()
    assert (info.type, info.measure, info.window, info.target) == (
        "http",
        "request_rate",
        30.0,
        40.0,
    )


def test_load_http_scaled_object_legacy_target_pending_requests():
    spec = load_keda_manifest(DATA / "keda_httpscaledobject_concurrency.yaml")
    (info,) = spec.trigger_infos()
    assert (info.measure, info.target) == ("concurrency", 20.0)
    assert (spec.minReplicaCount, spec.maxReplicaCount, spec.cooldownPeriod) == (1, 8, 300)


def _raises(path: Path, loader=load_keda_manifest, **kw) -> InputError:
    with pytest.raises(InputError) as exc:
        loader(path, **kw)
    assert exc.value.file == str(path)
    return exc.value


def test_bad_field_names_file_key_and_line():
    err = _raises(DATA / "keda_bad_field.yaml")
    assert err.key == "spec.triggers[0].metadata.treshold (line 15)"
    assert err.detail.startswith("unknown key")
    assert "keda_bad_field.yaml" in str(err)


def test_bad_api_version():
    err = _raises(DATA / "keda_bad_apiversion.yaml")
    assert err.key == "apiVersion (line 2)"
    assert "keda.sh/v1alpha1" in err.detail


def test_wrong_kind():
    err = _raises(DATA / "keda_httpscaledobject.yaml", load_scaled_object)
    assert err.key == "kind" and "found: HTTPScaledObject" in err.detail


def test_bad_value_in_http_scaled_object(tmp_path):
    path = tmp_path / "httpso.yaml"
    text = (DATA / "keda_httpscaledobject.yaml").read_text().replace("max: 20", "max: lots")
    path.write_text(text)
    err = _raises(path)
    assert err.key.startswith("spec.replicas.max (line ")


def test_yaml_error_and_missing_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec: [unclosed\n")
    err = _raises(bad)
    assert "malformed YAML" in err.detail and err.key.startswith("line ")
    missing = _raises(tmp_path / "nope.yaml")
    assert missing.key == "file"


def test_several_objects_need_a_name(tmp_path):
    one = (DATA / "keda_scaledobject.yaml").read_text()
    two = one.replace("name: checkout-api\n  namespace", "name: checkout-worker\n  namespace")
    path = tmp_path / "two.yaml"
    path.write_text(one + "\n---\n" + two)
    err = _raises(path)
    assert "checkout-api" in err.detail and "checkout-worker" in err.detail
    assert load_keda_manifest(path, name="checkout-worker").maxReplicaCount == 40
    assert _raises(path, name="other").key == "metadata.name"


def test_resolved_spec_round_trips():
    """The resolved scenario (summary.json) must mean the same thing when loaded again."""
    spec = load_keda_manifest(DATA / "keda_multi.yaml")
    again = ScaledObjectSpec.model_validate(spec.model_dump())
    assert again.trigger_infos() == spec.trigger_infos()
    assert again.trigger_infos()[1].target == 0.7
