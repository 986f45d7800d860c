"""The Knative Pod Autoscaler (KPA), computed as knative/serving computes it (no SimPy).

Source: knative/serving tag knative-v1.23.0 (2026-07-29). Every `TICK_INTERVAL_S` the platform
model calls `KnativePodAutoscaler.tick(now, ready, current)`; between ticks it feeds one stat per
second with `record(t, value)` (the collector's scrape, pkg/autoscaler/metrics/collector.go,
scrapeTickInterval = 1 s). The steps:

1. Aggregation (pkg/autoscaler/aggregation/bucketing.go TimedFloat64Buckets): 1 s buckets
   (config.BucketSize) over the stable window and over the panic window; a bucket sums what was
   recorded in its second; WindowAverage = the window's total / the number of buckets since the
   first write (at most the window's), rounded to 6 digits; no write for a whole window -> 0.
   No write within the window at all -> no data: the tick does nothing (collector ErrNoData).
2. Scale (pkg/autoscaler/scaling/autoscaler.go): ready = max(1, ready pods);
   maxScaleUp = ceil(max-scale-up-rate x ready), maxScaleDown = floor(ready / max-scale-down-rate);
   dspc = ceil(stable / target), dppc = ceil(panic / target), each clamped to
   [maxScaleDown, maxScaleUp]; activation-scale > 1 raises a non-zero count to it; panic starts
   when dppc / ready >= panic threshold, is extended while it holds, and ends a stable window
   after it last held; in panic the count never falls (maxPanicPods) and is the larger of stable
   and panic; scale-down-delay keeps the max of the counts of the last delay (max.TimeWindow,
   2 s buckets). Excess burst capacity = floor(ready pods x total - TBC - panic value)
   (TBC 0 -> 0, TBC -1 -> -1).
3. The PA reconciler (pkg/reconciler/autoscaling/kpa/scaler.go scale, applyBounds,
   handleScaleToZero; kpa.go SKS mode): bounds [min-scale, max-scale (0: none)]; a count of 0
   is applied only after the PA was active for a stable window (before that: 1), then marked
   inactive, and the scale goes to 0 once inactive for max(grace period, pod retention) or, after
   the retention period, once the activator has been in the path for the grace period. The
   activator is in the path (SKS proxy mode) unless the count is > 0 and the excess burst
   capacity >= 0.

ASSUMPTIONS: the reconciler runs at the decider's ticks (upstream re-enqueues the PA at the exact
deadline, so a scale to zero can come up to one tick later here); the PA becomes active at the
first tick that sees a ready pod; a new revision's autoscaler starts outside panic (upstream
starts in panic only on an autoscaler restart with more than one ready pod).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

# --- config-autoscaler defaults (pkg/autoscaler/config/config.go defaultConfig and
# config/core/configmaps/autoscaler.yaml, knative-v1.23.0) ----------------------------------------
CONTAINER_CONCURRENCY_TARGET_DEFAULT = 100.0  # container-concurrency-target-default
TARGET_UTILIZATION_PERCENTAGE = 70.0  # container-concurrency-target-percentage (0.7)
RPS_TARGET_DEFAULT = 200.0  # requests-per-second-target-default
STABLE_WINDOW_S = 60.0  # stable-window
PANIC_WINDOW_PERCENTAGE = 10.0  # panic-window-percentage
PANIC_THRESHOLD_PERCENTAGE = 200.0  # panic-threshold-percentage
MAX_SCALE_UP_RATE = 1000.0  # max-scale-up-rate
MAX_SCALE_DOWN_RATE = 2.0  # max-scale-down-rate
# target-burst-capacity: 211 in the code and the ConfigMap (not the 200 of older docs).
TARGET_BURST_CAPACITY = 211.0
ACTIVATOR_CAPACITY = 100.0  # activator-capacity (sizes the activator subset; no request limit)
SCALE_TO_ZERO_GRACE_PERIOD_S = 30.0  # scale-to-zero-grace-period
SCALE_TO_ZERO_POD_RETENTION_S = 0.0  # scale-to-zero-pod-retention-period
SCALE_DOWN_DELAY_S = 0.0  # scale-down-delay
INITIAL_SCALE = 1  # initial-scale
ALLOW_ZERO_INITIAL_SCALE = False  # allow-zero-initial-scale
MIN_SCALE = 0  # min-scale
MAX_SCALE = 0  # max-scale (0: no upper bound)
ENABLE_SCALE_TO_ZERO = True  # enable-scale-to-zero
# --- constants in the code --------------------------------------------------------------------
TICK_INTERVAL_S: Final = 2.0  # pkg/autoscaler/scaling/multiscaler.go tickInterval
BUCKET_S: Final = 1.0  # pkg/autoscaler/config/config.go BucketSize; collector scrape every 1 s
TARGET_MIN: Final = 0.01  # pkg/apis/autoscaling/register.go TargetMin
WINDOW_MIN_S, WINDOW_MAX_S = 6.0, 3600.0  # register.go WindowMin / WindowMax
PANIC_WINDOW_PERCENTAGE_RANGE = (1.0, 100.0)  # PanicWindowPercentageMin / Max
PANIC_THRESHOLD_PERCENTAGE_RANGE = (110.0, 1000.0)  # PanicThresholdPercentageMin / Max
_PRECISION = 6  # bucketing.go precision of WindowAverage
# --- the data path -----------------------------------------------------------------------------
# config/core/configmaps/defaults.yaml: container-concurrency "0" (unlimited) and
# revision-timeout-seconds "300".
CONTAINER_CONCURRENCY = 0
REVISION_TIMEOUT_S = 300.0
# pkg/activator/net/throttler.go breakerQueueDepth = 10000: requests one activator holds.
ACTIVATOR_QUEUE_DEPTH = 10000
# ASSUMPTION: one extra in-cluster proxy hop (ingress -> activator -> pod) when the activator is in
# the path; knative does not publish a figure.
ACTIVATOR_LATENCY_S = 0.001
# With the activator out of the path (SKS serve mode) the ingress balances to the pods. Knative's
# default ingress in its install docs is Kourier: knative-extensions/net-kourier
# pkg/envoy/api/cluster.go NewCluster (read at commit 0ee8198, not a release tag) sets no
# lb_policy, so Envoy's default ROUND_ROBIN applies (envoy config/cluster/v3/cluster.proto
# `lb_policy`). net-istio users may pick least_request.
SERVE_ROUTING: Final = "round_robin"

Metric = Literal["concurrency", "rps"]
_Why = Sequence[tuple[str, tuple[object, ...]]]  # a reason's parts: (str.format template, values)


def resolve_target(
    metric: Metric,
    container_concurrency: int,
    target: float | None,
    utilization_percentage: float,
    cc_target_default: float = CONTAINER_CONCURRENCY_TARGET_DEFAULT,
    rps_target_default: float = RPS_TARGET_DEFAULT,
) -> tuple[float, float]:
    """(target, total) as pkg/reconciler/autoscaling/resources/target.go ResolveMetricTarget:
    total = the per-pod limit (containerConcurrency, its default when 0, or the rps default), an
    explicit target replaces it (capped at containerConcurrency for concurrency); target = total x
    utilisation, at least TargetMin."""
    if metric == "rps":
        total = rps_target_default
    else:
        total = float(container_concurrency) or cc_target_default
    if target is not None:
        total = target
        if metric == "concurrency" and container_concurrency:
            total = min(target, float(container_concurrency))
    return max(TARGET_MIN, total * utilization_percentage / 100.0), total


def panic_window(stable_window: float, percentage: float) -> float:
    """pkg/reconciler/autoscaling/resources/metric.go MakeMetric: rounded to a second, >= 1 s."""
    w = stable_window * percentage / 100.0
    return max(BUCKET_S, float(math.floor(w + 0.5)))  # time.Duration.Round: half away from 0


class WindowAverager:
    """aggregation.TimedFloat64Buckets with 1 s granularity (times in seconds of simulated time;
    bucket index = floor(t))."""

    __slots__ = ("buckets", "first", "last", "total", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self.buckets = [0.0] * math.ceil(window / BUCKET_S - 1e-9)
        self.first: int | None = None  # bucket index of the first write (None: never)
        self.last = 0
        self.total = 0.0

    def record(self, t: float, value: float) -> None:
        b = math.floor(t + 1e-9)
        nb = len(self.buckets)
        if self.first is None or b != self.last:
            if self.first is not None and b + self.window <= self.last:
                return  # older than a window: ignored
            if self.first is None or self.first > b:
                self.first = b
            if b > self.last:
                if b - self.last >= self.window:  # nothing for a window: start afresh
                    self.first = b
                    self.buckets = [0.0] * nb
                    self.total = 0.0
                else:
                    for i in range(self.last + 1, b + 1):
                        self.total -= self.buckets[i % nb]
                        self.buckets[i % nb] = 0.0
                self.last = b
        self.buckets[b % nb] += value
        self.total += value

    def zeros(self, b: int) -> None:
        """Seconds of 0 recorded up to bucket b (as record(t, 0) for each second after the last
        write; nothing to do before a first write)."""
        if self.first is None or b <= self.last:
            return
        nb = len(self.buckets)
        for i in range(self.last + 1, min(b, self.last + nb) + 1):
            self.total -= self.buckets[i % nb]
            self.buckets[i % nb] = 0.0
        self.last = b

    def is_empty(self, now: float) -> bool:
        return self.first is None or math.floor(now + 1e-9) - self.last > self.window

    def average(self, now: float) -> float:
        if self.first is None:
            return 0.0
        n = math.floor(now + 1e-9)
        nb = len(self.buckets)
        d = n - self.last
        if d <= 0:
            k = min(self.last - self.first + 1, nb)
            return round(self.total / k, _PRECISION)
        if d < self.window:
            ret = self.total
            for i in range(self.last + 1, n + 1):
                ret -= self.buckets[i % nb]
            k = min(self.last - self.first + 1, nb - d)
            return round(ret / k, _PRECISION)
        return 0.0


@dataclass(frozen=True)
class KPASettings:
    """The DeciderSpec (pkg/reconciler/autoscaling/kpa/resources/decider.go MakeDecider) and the
    PA's bounds, resolved from the scenario."""

    target: float  # per-pod target value (concurrency or rps)
    total: float  # per-pod total value (for the excess burst capacity)
    stable_window: float = STABLE_WINDOW_S
    panic_window_percentage: float = PANIC_WINDOW_PERCENTAGE
    panic_threshold_percentage: float = PANIC_THRESHOLD_PERCENTAGE
    max_scale_up_rate: float = MAX_SCALE_UP_RATE
    max_scale_down_rate: float = MAX_SCALE_DOWN_RATE
    target_burst_capacity: float = TARGET_BURST_CAPACITY
    scale_down_delay: float = SCALE_DOWN_DELAY_S
    activation_scale: int = 1
    min_scale: int = MIN_SCALE
    max_scale: int = MAX_SCALE
    grace_period: float = SCALE_TO_ZERO_GRACE_PERIOD_S
    pod_retention: float = SCALE_TO_ZERO_POD_RETENTION_S
    enable_scale_to_zero: bool = ENABLE_SCALE_TO_ZERO


@dataclass(frozen=True)
class KPADecision:
    """One tick: the decider's count and the PA reconciler's result."""

    valid: bool  # False: no data in the stable window, nothing changes
    desired: int  # the decider's DesiredPodCount (before bounds and scale to zero)
    scale: int | None  # the replica count to apply (None: leave the Deployment as it is)
    panic: bool
    ebc: float  # excess burst capacity
    proxy: bool  # the activator is in the request path (SKS proxy mode)
    stable: float
    panic_value: float
    why: _Why = ()

    @property
    def reason(self) -> str:
        return "; ".join(t.format(*a) for t, a in self.why)


INACTIVE, ACTIVATING, ACTIVE = "inactive", "activating", "active"


class KnativePodAutoscaler:
    """The decider (autoscaler.go Scale) and the PA reconciler (scaler.go) of one revision."""

    def __init__(self, s: KPASettings, initial: int) -> None:
        self.s = s
        self.stable = WindowAverager(s.stable_window)
        self.panic_w = panic_window(s.stable_window, s.panic_window_percentage)
        self.panic_buckets = WindowAverager(self.panic_w)
        self.threshold = s.panic_threshold_percentage / 100.0
        self.panic_time: float | None = None
        self.max_panic_pods = 0
        self.delay: deque[tuple[int, int]] = deque()  # max.TimeWindow (index, value), descending
        self.delay_size = math.ceil(s.scale_down_delay / TICK_INTERVAL_S - 1e-9)
        # PA status: a revision created with pods is active since 0; with none, inactive and
        # behind the activator since 0.
        self.state = ACTIVE if initial > 0 else INACTIVE
        self.active_since = self.inactive_since = 0.0
        self.proxy = True  # a new revision starts behind the activator (SKS proxy mode)
        self.proxy_since = 0.0
        self.latest = initial  # the decider's latest DesiredPodCount (multiscaler latestScale)

    def record(self, t: float, value: float) -> None:
        """One stat (revision-wide concurrency or requests per second) into both windows."""
        self.stable.record(t, value)
        self.panic_buckets.record(t, value)

    def zeros(self, b: int) -> None:
        """Seconds of 0 up to bucket b into both windows (a quiescent stretch)."""
        self.stable.zeros(b)
        self.panic_buckets.zeros(b)

    def idle_fixed_point(self, now: float, ready_pods: int, current: int) -> bool:
        """Would every later tick fed only 0s leave everything as it is? Windows at 0 (or no
        data), no panic, not activating, no larger count held by scale-down-delay, and the
        count 0 / target clamped to maxScaleDown and the bounds equals `current` (at 0: the PA
        is inactive already)."""
        if self.panic_time is not None or self.state == ACTIVATING:
            return False
        if not self.stable.is_empty(now) and (
            self.stable.average(now) != 0 or self.panic_buckets.average(now) != 0
        ):
            return False
        s = self.s
        dz = max(0, math.floor(max(1, ready_pods) / s.max_scale_down_rate))
        if any(v > dz for _, v in self.delay):
            return False
        want = max(dz, s.min_scale)
        if s.max_scale:
            want = min(want, s.max_scale)
        if want == 0 and not s.enable_scale_to_zero:
            want = 1
        return want == current and (current > 0 or self.state == INACTIVE)

    # -- autoscaler.go Scale ---------------------------------------------------------------------
    def _decide(self, now: float, ready_pods: int) -> tuple[int, float, float, float, list]:
        s = self.s
        ready = float(max(1, ready_pods))
        stable = self.stable.average(now)
        panic = self.panic_buckets.average(now)
        max_up = math.ceil(s.max_scale_up_rate * ready)
        max_down = math.floor(ready / s.max_scale_down_rate)
        dspc = math.ceil(stable / s.target - 1e-12)
        dppc = math.ceil(panic / s.target - 1e-12)
        ds = int(min(max(dspc, max_down), max_up))
        dp = int(min(max(dppc, max_down), max_up))
        if s.activation_scale > 1:
            if dspc > 0 and s.activation_scale > ds:
                ds = s.activation_scale
            if dppc > 0 and s.activation_scale > dp:
                dp = s.activation_scale
        over = dppc / ready >= self.threshold
        if over:
            self.panic_time = now  # enter, or extend
        elif self.panic_time is not None and self.panic_time + s.stable_window < now:
            self.panic_time = None
            self.max_panic_pods = 0
        desired = ds
        why: list[tuple[str, tuple[object, ...]]] = [
            ("stable {:.6g} / target {:.6g} -> {}", (stable, s.target, dspc))
        ]  # the reason, formatted only when a decision is shown
        if self.panic_time is not None:
            desired = max(desired, dp)
            if desired > self.max_panic_pods:
                self.max_panic_pods = desired
            desired = self.max_panic_pods
            why = [
                (
                    "panic ({:.6g} over {:g}s / target {:.6g} = {} {} {:g} x {} ready): never "
                    "down, {}",
                    (panic, self.panic_w, s.target, dppc, ">=" if over else "<", self.threshold,
                     int(ready), desired),
                )
            ]  # fmt: skip
        if (ds, dp) != (dspc, dppc) and self.panic_time is None and ds != dspc:
            why.append(("rate-limited to [{}, {}] -> {}", (max_down, max_up, ds)))
        if self.delay_size > 0:  # max.TimeWindow Record + Current
            idx = math.floor(now / TICK_INTERVAL_S + 1e-9)
            while self.delay and self.delay[-1][1] <= desired:
                self.delay.pop()
            while self.delay and idx - self.delay[0][0] >= self.delay_size:
                self.delay.popleft()
            self.delay.append((idx, desired))
            delayed = self.delay[0][1]
            if delayed != desired:
                why.append(("scale-down-delay {:g}s keeps {}", (s.scale_down_delay, delayed)))
                desired = delayed
        tbc = s.target_burst_capacity
        if tbc == 0:
            ebc = 0.0
        elif tbc > 0:
            ebc = float(math.floor(ready_pods * s.total - tbc - panic))
        else:
            ebc = -1.0
        return desired, ebc, stable, panic, why

    # -- the PA reconciler: scaler.go scale + handleScaleToZero, kpa.go SKS mode -------------------
    def tick(self, now: float, ready_pods: int, current: int) -> KPADecision:
        s = self.s
        if self.state == ACTIVATING and ready_pods > 0:
            self.state, self.active_since = ACTIVE, now
        if self.stable.is_empty(now):
            return KPADecision(False, self.latest, None, self.panic_time is not None, 0.0,
                               self.proxy, 0.0, 0.0, (("no data", ()),))  # fmt: skip
        desired, ebc, stable, panic, why = self._decide(now, ready_pods)
        self.latest = desired
        want = desired if desired >= s.min_scale else s.min_scale
        if s.max_scale and want > s.max_scale:
            want = s.max_scale
        if want != desired:
            why.append(("bounds [{}, {}] -> {}", (s.min_scale, s.max_scale or "none", want)))
        scale: int | None = want
        if want == 0:
            scale, want, reason = self._to_zero(now, why)
            why = list(reason)
        elif self.state == INACTIVE:
            self.state = ACTIVATING
        proxy = not (want > 0 and ebc >= 0)
        if proxy and not self.proxy:
            self.proxy_since = now
        self.proxy = proxy
        return KPADecision(
            True, desired, scale, self.panic_time is not None, ebc, proxy, stable, panic, why
        )

    def _to_zero(self, now: float, why: _Why) -> tuple[int | None, int, _Why]:
        """handleScaleToZero for a count of 0: (scale to apply or None, want, reason)."""
        s = self.s
        if not s.enable_scale_to_zero:
            return 1, 1, [*why, ("scale to zero disabled -> 1", ())]
        if self.state == ACTIVATING:
            return None, 0, [*why, ("activating: wait", ())]
        if self.state == ACTIVE:
            if now - self.active_since >= s.stable_window - 1e-9:
                self.state, self.inactive_since = INACTIVE, now
                return None, 0, [*why, ("active for {:g}s: PA inactive", (s.stable_window,))]
            return 1, 1, [*why, ("active for less than the stable window -> 1", ())]
        inactive_for = now - self.inactive_since
        if inactive_for >= max(s.grace_period, s.pod_retention) - 1e-9:
            return 0, 0, [*why, ("inactive for {:g}s -> 0", (inactive_for,))]
        if s.pod_retention > 0 and inactive_for < s.pod_retention - 1e-9:
            return None, 0, [*why, ("within the last pod's retention period", ())]
        proxied = now - self.proxy_since if self.proxy else 0.0
        if self.proxy and proxied >= s.grace_period - 1e-9:
            return 0, 0, [*why, ("activator in path for {:g}s -> 0", (proxied,))]
        return None, 0, [*why, ("waiting for the scale-to-zero grace period", ())]
