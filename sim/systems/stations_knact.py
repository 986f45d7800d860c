"""The system station for Knative Serving (issue 17).

It is a ContainerStation (sim.systems.stations_containers: one FIFO in front of every pod's or
instance's slots, a new one ready after its start-up, the newest removed first) with the single-
service kernels' controllers, not copies of them:

- Knative (`type: knative`): the KPA of sim.platforms.knative (`kpa_of`: KnativePodAutoscaler,
  knative/serving knative-v1.23.0 pkg/autoscaler/scaling/autoscaler.go) fed as the kernel feeds
  it: every second the revision's mean concurrency in that second (requests in service + held,
  the queue-proxies' and the activator's report; or the arrivals for `metric: rps`), recorded
  while a pod was ready or requests came; a tick every 2 s; an arrival at zero pods pokes it (a
  stat of 1 and an immediate tick, multiscaler.go Poke). While the KPA keeps the activator in
  the path (proxy mode: excess burst capacity < 0, or at zero) each request arriving pays
  `activator_latency` on top of the ingress; at zero pods the activator holds requests (depth
  `queue_limit`) until a pod is ready. The pods are Kubernetes pods: on a `cluster.mode: nodes`
  platform they go through the system's node pool (sim.systems.nodes) and the platform's cluster
  bill is split over its services like a Kubernetes platform's.
On a cluster with `cluster.spot` the station is SpotKnativeStation: pod identity
(sim.systems.engine.PodIdentity), so that a spot kill cuts the requests in service on the killed
pods as the Kubernetes kernel's `_spot_kill` does for a Knative revision's pods (they fail with
a 502 or, `in_flight: retry`, are sent again, through the activator: held while no pod is
ready), as SpotPodStation does for Kubernetes services.
Deviations from the single-service kernels (docs/model.md §18.4): Knative's per-pod queue-proxy
queues in serve mode and the throttler's pod pick are one FIFO (least outstanding, idealised);
timeoutSeconds is not enforced (the caller's client timeout bounds the wait). Azure Flex
Consumption's station is sim.systems.stations_flex (its bill needs each instance's activity
periods: PodIdentity).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import simpy

import sim.platforms.autoscaling.kpa as K
from sim.platforms.base import every
from sim.platforms.knative import kpa_of
from sim.systems.engine import SPOT_STATIONS, STATIONS, PodIdentity, Proc, SpotPodStation
from sim.systems.stations_containers import ContainerStation


class KnativeStation(ContainerStation):
    """A Knative Service's revision: containerConcurrency slots per pod, scaled by the KPA."""

    kind = "knative"
    hold_at_zero = True  # the activator holds a request until a pod is ready

    def __init__(self, sys: Any, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec, rng, spec, initial=spec.initial_pods())
        self.kpa = kpa_of(spec)
        self.proxy = self.kpa.proxy
        self.activator_s = float(spec.activator_latency)
        self.last = (0.0, 0, 0.0)  # (held request-s, arrivals, ready pod-s) at the last second

    def overhead(self) -> float:
        return ContainerStation.overhead(self) + (self.activator_s if self.proxy else 0.0)

    def acquire(self, proc: Proc, now: float) -> Any:
        self._poke(now)
        return ContainerStation.acquire(self, proc, now)

    def _poke(self, now: float) -> None:
        if self.replicas == 0:  # the activator's first-request stat pokes the KPA
            rows = self.sys.ctx.decisions
            k = len(rows)
            self.kpa.record(now, 1.0)
            self._tick(now)
            for j in range(k, len(rows)):  # at the arrival's time (the heap engine's clock)
                rows[j] = dataclasses.replace(rows[j], time_s=now)

    def control(self, env: simpy.Environment) -> None:
        env.process(every(env, K.BUCKET_S, self._second))

    def _second(self, now: float) -> None:
        self._m(now)
        self._count(now)
        held, arrived, ready = self.held_acc, self.arrived, self.ready_acc
        h0, a0, r0 = self.last
        self.last = (held, arrived, ready)
        arrivals = arrived - a0
        value = (arrivals if self.spec.metric == "rps" else held - h0) / K.BUCKET_S
        if ready > r0 or self.pods or value > 0 or arrivals > 0:
            self.kpa.record(now, value)
        if round(now) % round(K.TICK_INTERVAL_S) == 0:
            self._tick(now)

    def _tick(self, now: float) -> None:
        d = self.kpa.tick(now, self.pods, self.replicas)
        if not d.valid:
            return
        if d.proxy != self.proxy:  # the SKS mode flips: a decision row (1 proxy, 0 serve)
            why = "scaling to zero" if d.proxy and d.scale == 0 else f"ebc {d.ebc:g}"
            mode = "proxy: the activator enters the path" if d.proxy else "serve: it leaves"
            row = f"{mode} ({why})"
            self.sys.ctx.decide(f"{self.name}:sks", float(self.proxy), float(d.proxy), row)
            self.proxy = d.proxy
        if d.scale is not None and d.scale != self.replicas:
            mode = "panic" if d.panic else "stable"
            self.scale_to(d.scale, now, "kpa", f"{mode}: {d.reason} [ebc {d.ebc:g}]")


class SpotKnativeStation(SpotPodStation, KnativeStation):
    """A Knative revision on a spot cluster: KnativeStation's KPA, activator and meters with
    SpotPodStation's pod identity and kill (the activator holds a request while no pod is
    ready, and one sent again after a kill; a request held there at zero pods is cold)."""

    hold_at_zero = cold_at_zero = True

    def acquire(self, proc: Proc, now: float, hold: bool = False) -> Any:
        self._poke(now)
        self._m(now)
        return PodIdentity.acquire(self, proc, now, hold)

    def release(self, slot: int, now: float) -> None:
        self._m(now)
        PodIdentity.release(self, slot, now)

    def take_free(self) -> int:
        self._m(self.sys.now)
        return PodIdentity.take_free(self)

    def abandon(self, node: Any) -> int:
        self._m(self.sys.env.now)  # (the held-requests meter, the KPA's stat, before the cut)
        return SpotPodStation.abandon(self, node)


STATIONS.update(knative=KnativeStation)
SPOT_STATIONS.update(knative=SpotKnativeStation)
