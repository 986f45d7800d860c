"""Knative Serving: one revision's pods on a simulated cluster, scaled by the KPA.

The spec (`type: knative`) is sim.platforms.knative_spec.KnativeSpec; the decision logic is
sim.platforms.autoscaling.kpa (knative/serving knative-v1.23.0). This model is KubernetesModel
(pods, nodes, node provisioning, the cluster bill, the data plane) with the KPA's control loop
instead of replicas / HPA / KEDA.

Data path (docs/model.md "Knative Serving"): the KPA's SKS mode switches it at the ticks where
it flips (a `sks` decision row). Proxy mode (and at zero pods): the activator's revision
throttler (pkg/activator/net/throttler.go) sends a request to a pod with a free
containerConcurrency slot (`_act_pick`: firstAvailable for CC <= 3, round robin above) or holds
it in one FIFO (`queue`, depth 10000) whose head a freed slot takes (KubernetesModel._take_held);
`activator_latency` is added to each request arriving then. Serve mode: the ingress balances to
the pods by `routing` and each queue-proxy queues its own requests; what the activator still
holds drains to freed slots. `routing: ideal_fifo` (idealised) keeps the one FIFO all run.

Control loop: every second the collector's stat (the revision's mean concurrency in the last
second, requests in service + waiting, as the queue-proxies and the activator report it; or the
arrivals in that second for `metric: rps`) goes into the KPA's windows, recorded while a pod is
ready or requests are in flight (an idle revision at zero reports nothing); every 2 s the KPA
ticks. A request arriving at zero pods pokes the autoscaler at once (the activator's immediate
first-request stat of concurrency 1, multiscaler.go Poke): a stat of 1 and an extra tick.
While nothing is in flight, the windows are at 0 and further ticks would change nothing
(`_quiescent`), the collector sleeps until the next arrival (KubernetesModel.wake_on_arrival) and
then records the skipped seconds as the 0s they were.
"""

from __future__ import annotations

import math
from typing import Any

import sim.platforms.autoscaling as D
import sim.platforms.autoscaling.kpa as K
from sim.platforms.autoscaling.kpa import KnativePodAutoscaler, KPASettings
from sim.platforms.base import DrawBuffer, RunContext
from sim.platforms.knative_spec import KnativeSpec
from sim.platforms.kubernetes import KubernetesModel


class _Shifted:
    """A DrawBuffer's draws plus a constant (the activator hop on top of the ingress)."""

    __slots__ = ("base", "shift")

    def __init__(self, base: DrawBuffer, shift: float) -> None:
        self.base, self.shift = base, shift

    def next(self) -> float:
        return self.base.next() + self.shift


def kpa_of(spec: KnativeSpec) -> KnativePodAutoscaler:
    """The revision's KPA from its spec (also a system's Knative station's, sim.systems
    .stations_knact)."""
    target, total = spec.kpa_target()
    return KnativePodAutoscaler(
        KPASettings(
            target=target,
            total=total,
            stable_window=spec.window,
            panic_window_percentage=spec.panic_window_percentage,
            panic_threshold_percentage=spec.panic_threshold_percentage,
            max_scale_up_rate=spec.max_scale_up_rate,
            max_scale_down_rate=spec.max_scale_down_rate,
            target_burst_capacity=spec.target_burst_capacity,
            scale_down_delay=spec.scale_down_delay,
            activation_scale=spec.activation_scale,
            min_scale=spec.min_scale,
            max_scale=spec.max_scale,
            grace_period=spec.scale_to_zero_grace_period,
            pod_retention=spec.scale_to_zero_pod_retention_period,
            enable_scale_to_zero=spec.enable_scale_to_zero,
        ),
        spec.initial_pods(),
    )


class KnativeModel(KubernetesModel):
    spec: KnativeSpec  # type: ignore[assignment]

    def __init__(self, spec: KnativeSpec, ctx: RunContext) -> None:
        super().__init__(spec, ctx)  # type: ignore[arg-type]
        self.kpa = kpa_of(spec)
        lat = spec.activator_latency
        self._serve_ov = (self.ov_const, self.ov_draw)
        self._proxy_ov = (
            (self.ov_const + lat, self.ov_draw)
            if self.ov_const is not None
            else (None, _Shifted(self.ov_draw, lat))
        )
        self.in_proxy = False
        self.act_next = 0  # the throttler's round-robin index (containerConcurrency > 3)
        self._set_path(self.kpa.proxy)
        self._last_row: tuple[float, ...] = ()
        self.max_window = max(self.max_window, 2 * K.BUCKET_S)

    def start(self) -> None:
        n = self.spec.initial_pods()
        self._initial(n)
        self._spot_trace()  # `cluster.spot.interruptions`, as KubernetesModel.start arms them
        self._last_row = self._record(0.0)
        self._arm_nodes(D.NODE_AUTOSCALER_PERIOD_S)
        self._sleeping = False
        self.wake_on_arrival = n == 0
        self._collect(K.BUCKET_S)

    # -- the collector and the decider -------------------------------------------------------------
    def _collect(self, first: float) -> None:
        """The 1 s scrape (and every other second the tick) from `first` until quiescent."""

        def loop() -> Any:
            t = first
            while True:
                yield self.env.timeout(t - self.env.now)
                self._second(self.env.now)
                if self._sleeping:
                    return
                t += K.BUCKET_S

        self.env.process(loop())

    def _second(self, now: float) -> None:
        self._catch_up(now)
        row = self._record(now)
        old, self._last_row = self._last_row, row
        # The second (now - 1, now]; after a quiescent stretch `old` is older, but nothing
        # happened in between, so the difference is still this second's.
        arrivals, busy, waiting, ready = (row[k] - old[k] for k in (1, 2, 3, 4))
        value = arrivals if self.spec.metric == "rps" else busy + waiting
        value /= K.BUCKET_S
        if ready > 0 or self.nready or value > 0 or arrivals > 0:
            self.kpa.record(now, value)
        if round(now) % round(K.TICK_INTERVAL_S) == 0:
            self._tick(now)
            self._sleeping = self._quiescent(now)
            self.wake_on_arrival = self.replicas == 0 or self._sleeping

    def _on_arrival(self) -> None:
        """The next arrival after a quiescent stretch, or at zero pods: the collector resumes
        (the skipped seconds were all 0: recorded as such if a pod was ready) and, at zero, the
        activator's first-request stat of 1 pokes an immediate tick (multiscaler.go Poke)."""
        now = self.env.now
        if self._sleeping:
            self._sleeping = False
            b = math.floor(now + 1e-9)  # an arrival at an exact second belongs to the next
            if self.nready:
                self.kpa.zeros(b)
            self._collect(b + K.BUCKET_S)
        if self.replicas == 0:
            self.kpa.record(now, 1.0)
            self._tick(now)
        self.wake_on_arrival = self.replicas == 0

    def _quiescent(self, now: float) -> bool:
        """Nothing in flight, windows at 0, no panic, no pod coming or going, and the next ticks
        would keep the count (exactly what they would do on seconds of 0): the collector can
        sleep until the next arrival."""
        if self.heap or self.waiting() or self.replicas != self.nready:
            return False
        return self.kpa.idle_fixed_point(now, self.nready, self.replicas)

    def _tick(self, now: float) -> None:
        d = self.kpa.tick(now, self.nready, self.replicas)
        if not d.valid:
            return
        if d.proxy != self.in_proxy:  # the SKS mode flips: a decision row (1 proxy, 0 serve)
            why = f"ebc {d.ebc:g} < 0" if d.ebc < 0 else f"ebc {d.ebc:g} >= 0"
            if d.proxy and d.scale == 0:
                why = "scaling to zero"
            mode = "proxy: the activator enters the path" if d.proxy else "serve: it leaves"
            self.ctx.decide("sks", float(self.in_proxy), float(d.proxy), f"{mode} ({why})")
        self._set_path(d.proxy)
        if d.scale is not None and d.scale != self.replicas:
            mode = "panic" if d.panic else "stable"
            self._scale_to(d.scale, "kpa", f"{mode}: {d.reason} [ebc {d.ebc:g}]")

    def _set_path(self, proxy: bool) -> None:
        """The activator enters or leaves the request path: rows buffered so far keep their
        overhead (flushed first), later arrivals get the other one."""
        if proxy == self.in_proxy:
            return
        self.flush()
        self.in_proxy = proxy
        self.activator = proxy and self.pp  # ideal_fifo: the activator's one queue all along
        self.ov_const, self.ov_draw = self._proxy_ov if proxy else self._serve_ov  # type: ignore[assignment]

    # -- the activator (per-pod routings; docs/model.md "Knative Serving") ------------------------
    def _act_pick(self) -> int:
        """The throttler's pick among the ready pods with a free slot (pkg/activator/net/
        throttler.go, knative-v1.23.0): firstAvailable for containerConcurrency <= 3, else
        roundRobin from the index after the last pick (0 once the pods shrank below it);
        -1 when every slot is taken."""
        ep, inflight, conc = self.ep, self.inflight, self.conc
        n = len(ep)
        j0 = self.act_next if conc > 3 and self.act_next < n else 0
        for k in range(n):
            j = j0 + k
            if j >= n:
                j -= n
            if inflight[ep[j]] < conc:
                self.act_next = j + 1
                return ep[j]
        return -1

    def _dispatch_held(self, now: float) -> None:
        """A pod became ready (or killed requests came back): the activator sends what it
        holds, in arrival order, to free slots; the rest keep waiting in it (`_take_held`)."""
        q = self.queue
        while q:
            pid = self._act_pick()
            if pid < 0:
                break
            a, s, over, cold = q.popleft()
            self.q_arr_sum -= a
            self.dequeued_wait += now - a
            self.nwait -= 1
            self.inflight[pid] += 1
            if self.track:
                self.out[pid] += 1
            self._start(pid, a, s, over, cold, now)
        if not self.nwait:
            self.q_arr_sum = 0.0

    def snapshot(self, now: float) -> dict[str, float]:
        row = super().snapshot(now)
        row["panic"] = float(self.kpa.panic_time is not None)
        row["activator"] = float(self.in_proxy)
        return row


__all__ = ["KnativeModel", "KnativeSpec", "kpa_of"]
