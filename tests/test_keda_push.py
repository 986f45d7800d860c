"""The KEDA HTTP add-on's push activation (sim/platforms/kubernetes.py `_keda_push`): the 0.5 s
tick runs only where it can act (a request reaching the interceptor at zero replicas; reads of a
non-empty interceptor while replicas run). Every decision, request and timeline row equals what
a poll at every 0.5 s tick gives (the behaviour before, kept as the reference here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.engine import run_one
from sim.platforms.kubernetes import KubernetesModel
from sim.scenario import validate_scenario

MANIFEST = """\
kind: HTTPScaledObject
apiVersion: http.keda.sh/v1alpha1
metadata: {name: api}
spec:
  hosts: [api.example.com]
  scaleTargetRef: {name: api, kind: Deployment, apiVersion: apps/v1, service: api, port: 80}
  replicas: {min: 0, max: 6}
  scaledownPeriod: %s
  scalingMetric: {concurrency: {targetValue: 3}}
"""


def _assert_same_outputs(got: Any, ref: Any) -> None:
    """Stats, instances, timeline and requests sample equal (decisions are checked apart)."""
    fields = [f.name for f in dataclasses.fields(ref.stats) if f.name != "sample"]
    assert [getattr(got.stats, f) for f in fields] == [getattr(ref.stats, f) for f in fields]
    assert got.instances == ref.instances
    for k, v in ref.timeline.items():
        assert np.array_equal(got.timeline[k], v, equal_nan=True), k
    for k, v in ref.stats.sample.items():
        assert np.array_equal(got.stats.sample[k], v, equal_nan=True), k


def _scenario(tmp: Path, cooldown: int, timeout: str | None, routing: str | None = None) -> dict:
    (tmp / "hso.yaml").write_text(MANIFEST % cooldown)
    platform = {"name": "k8s", "type": "kubernetes", "pod": {"concurrency": 2}}
    if routing is not None:  # default: the interceptor's random pick (per-pod queues)
        platform["routing"] = routing
    platform["keda"] = {"file": "hso.yaml"}
    if timeout is not None:
        platform["request_timeout"] = timeout
    return {
        "name": "push",
        "duration": "3h",
        "seed": 7,
        "workload": {
            # bursts of a minute every ~20 minutes, silence between: scale to zero and back
            "arrivals": [
                {"steady": {"rate": "0.02/s"}},
                *(
                    {
                        "spike": {
                            "at": f"{m}m",
                            "peak": "15/s",
                            "rise": "5s",
                            "hold": "40s",
                            "decay": "10s",
                        }
                    }
                    for m in range(5, 180, 20)
                ),
            ],
            "service": {"duration": {"dist": "lognormal", "median": "200ms", "p99": "2s"}},
        },
        "platforms": [platform],
    }


def _run(tmp: Path, data: dict, push: bool, monkeypatch: pytest.MonkeyPatch):
    polls = []
    poll = KubernetesModel._keda_poll
    with monkeypatch.context() as m:
        if not push:  # the reference: a poll at every tick
            m.setattr(KubernetesModel, "_push_activation", lambda self: False)
        m.setattr(
            KubernetesModel, "_keda_poll", lambda self, now: (polls.append(now), poll(self, now))
        )
        sc = validate_scenario(data, file="push.yaml", base_dir=tmp)
        run = run_one(sc, "k8s", 0, tmp)
    run.extra["polls"] = len(polls)
    return run


@pytest.mark.parametrize(
    ("cooldown", "timeout", "routing"),
    [(60, None, None), (300, None, None), (30, "300ms", None), (60, None, "ideal_fifo")],
)
def test_push_activation_decides_as_a_poll_at_every_tick(
    tmp_path, monkeypatch, cooldown, timeout, routing
):
    data = _scenario(tmp_path, cooldown, timeout, routing)
    ref = _run(tmp_path, data, False, monkeypatch)
    got = _run(tmp_path, data, True, monkeypatch)
    acts = [d for d in ref.decisions if d.reason.startswith("activate")]
    assert len(acts) >= 3  # the case scales from zero and back again
    assert got.decisions == ref.decisions
    assert ref.extra["polls"] == 3 * 3600 * 2  # every 0.5 s tick
    assert got.extra["polls"] < ref.extra["polls"]  # no tick at zero replicas until a request
    _assert_same_outputs(got, ref)


def test_quiet_poll_is_the_poll_when_replicas_stay():
    """KedaScaler.quiet_poll against KedaScaler.poll over states: it answers True exactly when
    the poll keeps the replicas, and leaves lastActiveTime as the poll does."""
    from sim.platforms.autoscaling.keda import KedaScaler, ScaledObjectSpec

    for spec_data in (
        {"minReplicaCount": 0, "cooldownPeriod": 60, "initialCooldownPeriod": 10},
        {"minReplicaCount": 1},
        {"minReplicaCount": 1, "idleReplicaCount": 0},
    ):
        trig = [{"type": "http", "metadata": {"scalingMetric": "concurrency"}}]
        spec = ScaledObjectSpec.model_validate({**spec_data, "triggers": trig})
        for last in (None, 0.0, 30.0, 100.0):
            for now in (5.0, 10.0, 10.5, 60.0, 90.0, 160.0, 160.5):
                for current in (0, 1, 3):
                    for active in (False, True):
                        a, b = KedaScaler(spec), KedaScaler(spec)
                        a.last_active = b.last_active = last
                        d = a.poll(now, [1.0 if active else 0.0], current)
                        quiet = b.quiet_poll(now, active, current)
                        if quiet:
                            assert not d.changed and d.rule in ("active", "cooldown", "inactive")
                            assert b.last_active == a.last_active
                        elif not spec.minReplicaCount and spec.idleReplicaCount is None:
                            assert d.changed, (spec_data, last, now, current, active, d)


@pytest.mark.parametrize("routing", [None, "ideal_fifo"])
def test_quiet_ticks_run_in_place_while_replicas_run(tmp_path, monkeypatch, routing):
    """Steady traffic keeps a replica up all along: the ticks that keep the replicas run in place
    (KubernetesModel._quiet_ticks), not as one wake each, with every decision, request and
    timeline row as a poll at every tick gives; before, all 21,600 ticks of 3 h were polls."""
    data = _scenario(tmp_path, 300, "2s", routing)
    data["workload"]["arrivals"][0] = {"steady": {"rate": "1/s"}}
    ref = _run(tmp_path, data, False, monkeypatch)
    got = _run(tmp_path, data, True, monkeypatch)
    assert ref.extra["polls"] == 3 * 3600 * 2
    assert got.extra["polls"] < ref.extra["polls"] / 10
    assert got.decisions == ref.decisions
    assert [d for d in ref.decisions if d.kind == "keda_hpa"]  # the HPA scales 1 <-> N too
    _assert_same_outputs(got, ref)
