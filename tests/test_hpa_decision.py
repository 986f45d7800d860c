"""sim.platforms.autoscaling.hpa.Decision is a value: its reason, made lazily (hpa.Lazy), takes
part in equality, hashing and repr by its text, not by the identity of the function making it.
Expected values by hand from the controller's rules."""

from __future__ import annotations

from sim.platforms.autoscaling.hpa import Decision, HorizontalPodAutoscaler, Lazy, MetricTarget

EXT = MetricTarget("queue", "external", "AverageValue", 10.0)


def _decide(total: float) -> Decision:
    hpa = HorizontalPodAutoscaler(min_replicas=1, max_replicas=100, metrics=[EXT])
    return hpa.recommend(0.0, 4, 4, total)


def test_two_controllers_deciding_alike_give_equal_decisions() -> None:
    """4 pods, 45 queued, 10 per pod: 45 / (10 x 4) = 1.125 is outside the 0.1 tolerance, so
    ceil(45 / 10) = 5 (GetExternalPerPodMetricReplicas), within max(2 x 4, 4): rule scale."""
    a, b = _decide(45.0), _decide(45.0)
    expected = Decision(5, "queue 45 / target 10 per pod -> 5", 45.0, 10.0, "scale", 5)
    assert a == b == expected
    assert hash(a) == hash(b) == hash(expected)
    assert repr(a) == repr(expected) and "'queue 45 / target 10 per pod -> 5'" in repr(a)


def test_decisions_differing_only_in_their_reason_differ() -> None:
    a = Decision(5, "x", 45.0, 10.0, "scale", 5)
    assert a != Decision(5, "y", 45.0, 10.0, "scale", 5)
    assert a == Decision(5, Lazy(lambda: "x"), 45.0, 10.0, "scale", 5)
    assert a != Decision(5, Lazy(lambda: "y"), 45.0, 10.0, "scale", 5)


def test_a_lazy_reason_is_made_only_when_read() -> None:
    made: list[int] = []

    def make() -> str:
        made.append(1)
        return "why"

    d = Decision(3, Lazy(make), None, None, "scale")
    assert made == []
    assert d.reason == "why" and len(made) == 1
