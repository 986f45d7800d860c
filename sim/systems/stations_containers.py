"""System stations for serverless containers (issue 17): Google Cloud Run and AWS Fargate (ECS).

Both are "instances with N concurrent slots, an autoscaler, billed per instance": the data plane
of an autoscaled PodStation (sim.systems.engine: one FIFO in front of every instance's slots, a
new instance ready after its start-up, the newest removed first), with each platform's own
controller and bill. The arithmetic is the single-service kernels': `recommendation`
(sim.platforms.cloud_run) and `scaling_policies` / `datapoint` (sim.platforms.fargate), the bills
`cloud_run_bill` and `fargate_bill`. The reference (sim.validation.reference.ReferenceSystem)
shares these stations' slots and controllers, as it does a KEDA station's.

Meters (integrals of piecewise-constant counts, updated before every change): requests held
(in service + queued: Cloud Run's "concurrent requests", Fargate's memory metric), instances
active (>= 1 request in service: min(in service, ready), as the one FIFO hands a request to an
idle instance first; plus starting instances: Cloud Run bills the start-up), idle minimum
instances. The CPU meter is PodStation's (work steps only: a request waiting for its callee uses
no CPU).

A request is cold when it arrived while no instance was ready and waited for one (held at the
front end / ingress / activator at zero), as the single-service kernels count it
(sim.platforms.kubernetes: "arrived while no pod was ready"); a request queued behind busy ready
instances is not.

Cloud Run as its kernel (sim.platforms.cloud_run): a request pending longer than the pending limit
(spec.pending_limit: max(3.5 x mean startup, 10 s)) fails with 429 (`rejected`); active instance
time is billed per active period rounded up to 100 ms (`billable_active_s`). The station's one
FIFO does not say which instance goes idle, so its active periods are the changes of the active
count paired last-in first-out (ASSUMPTION: the instance that became active last goes idle first).

Deviations from the single-service kernels, all documented in docs/model.md §18:
- a request rejected at Cloud Run's pending limit is not marked cold (the kernel marks it);
- Fargate's ALB round robin over per-task queues is one FIFO (least outstanding, idealised);
  Spot is refused; a task removed by scale-in is billed to its removal.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import simpy

import sim.platforms.autoscaling.target_tracking as T
from sim.platforms.base import every
from sim.platforms.cloud_run import _Scaled, billable_active_s, recommendation
from sim.platforms.cloud_run_spec import PERIOD_S, WINDOW_S
from sim.platforms.fargate import _as_kubernetes, datapoint, scaling_policies
from sim.platforms.slots import WindowMax
from sim.pricing.cloud_run import CloudRunUsage, cloud_run_bill
from sim.pricing.container_apps import ContainerAppsUsage, container_apps_bill
from sim.pricing.fargate import FargateUsage, TaskLife, fargate_bill, shared_alb_bill
from sim.pricing.hops import add_lines
from sim.pricing.systems import scaled_bill
from sim.pricing.tables import Bill
from sim.records import REJECTED
from sim.systems.engine import _LONG_AGO, STATIONS, PodStation, Proc


class ContainerStation(PodStation):
    """An autoscaled pod station on a platform's own spec, with the meters its bill reads."""

    hold_at_zero = False  # no ready instance: queue the request (else refuse it: ALB 503)
    min_ready = 0  # Container Apps: replicas at or below this many are idle-priced
    per_profile = 0.0  # Container Apps Dedicated: workload-profile instances per replica

    def __init__(
        self, sys: Any, index: int, svc: Any, spec: Any, rng: Any, kview: Any,
        initial: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(sys, index, svc, kview, rng)
        if initial is not None:  # pods at time 0 (Knative's initial scale; else kview.replicas)
            self.pods = initial
        self.spec = spec  # the platform's own spec (hops, bills); the pod settings from kview
        self.pod = kview.pod
        self.autoscaled = self.metered = True
        self.shared = True
        self.free = [self.pods * self.conc]
        self.waiting = [deque()]
        self.ready_pods = [(_LONG_AGO, _LONG_AGO)] * self.pods
        self.n_initial = self.pods_peak = self.pods
        self.m_t = 0.0
        self.held_acc = 0.0  # request-seconds in service or queued
        self.active_acc = 0.0  # instance-seconds with >= 1 request in service, or starting
        self.idle_min_acc = 0.0  # idle seconds of the minimum instances
        self.idle_at_min_acc = 0.0  # idle replica-seconds while at the minimum (Container Apps)
        self.profile_acc = 0.0  # workload-profile instance-seconds (Container Apps Dedicated)
        self.min_instances = 0
        self.readings: deque[tuple[float, float, float, float, float]] = deque()
        self.lives: list[TaskLife] = []  # instances stopped (start, stop)
        self.periods: list[float] | None = None  # Cloud Run: ended active periods (seconds)
        self.active_since: list[float] = []  # ... the starts of the open ones
        self.n_active = 0  # instances active (serving or starting) over the last interval
        # a request pending (no free slot) this long leaves the front end's queue with
        # pending_outcome (Cloud Run's 429, Flex's 230 s limit); None: it waits
        self.pending_limit: float | None = None
        self.pending_outcome = REJECTED
        self.pending: deque[tuple[float, Any]] = deque()  # (deadline, request), FIFO order
        self.pending_armed = False
        self.timeouts = 0  # requests the platform's own limit ended (summary: `function`)

    def _pend(self, proc: Proc, now: float) -> None:
        """`proc` queued now: it leaves the queue at the pending limit unless served by then."""
        if self.pending_limit is None:
            return
        self.pending.append((now + self.pending_limit, proc))
        if not self.pending_armed:
            self.pending_armed = True
            self.sys.at(now + self.pending_limit, self._expire, None)

    def _expire(self, _: Any) -> None:
        """The one FIFO serves and expires from its head, so a deadline whose request is no
        longer at the head was served."""
        now, q, pending = self.sys.now, self.waiting[0], self.pending
        while pending and pending[0][0] <= now + 1e-12:
            _, proc = pending.popleft()
            if q and q[0] is proc:
                self._m(now)
                q.popleft()
                self.cold_wait.pop(proc, None)
                if self.pending_outcome == REJECTED:
                    self.rejected += 1
                else:
                    self.timeouts += 1
                self.sys.resume_at(now, proc, self.pending_outcome)
        if pending:
            self.sys.at(pending[0][0], self._expire, None)
        else:
            self.pending_armed = False

    def _m(self, now: float) -> None:
        dt = now - self.m_t
        if dt > 0:
            q = len(self.waiting[0])
            act = min(self.busy, self.pods)
            if self.periods is not None and act + self.starting != self.n_active:
                self._periods(act + self.starting)
            self.held_acc += (self.busy + q) * dt
            self.active_acc += (act + self.starting) * dt
            if self.min_instances > act:
                self.idle_min_acc += (self.min_instances - act) * dt
            if 0 < self.pods <= self.min_ready:
                self.idle_at_min_acc += (self.pods - act) * dt
            if self.per_profile:
                self.profile_acc += math.ceil(self.pods * self.per_profile - 1e-9) * dt
            self.m_t = now

    def _periods(self, n: int) -> None:
        """The active count changed to n at self.m_t: open or close periods (last in, first
        out)."""
        t, since = self.m_t, self.active_since
        while self.n_active < n:
            since.append(t)
            self.n_active += 1
        while self.n_active > n:
            self.periods.append(t - since.pop())  # type: ignore[union-attr]
            self.n_active -= 1

    def active_periods(self, end: float) -> list[float]:
        """Every active period's length, the open ones to `end`."""
        self._m(end)
        return [*(self.periods or ()), *(end - s for s in self.active_since)]

    def acquire(self, proc: Proc, now: float) -> Any:
        self._m(now)
        if self.pods == 0 and self.hold_at_zero:  # held at the front end until one is ready
            self.arrived += 1
            q = self.waiting[0]
            if len(q) >= self.limit:
                self.rejected += 1
                return REJECTED
            q.append(proc)
            self.cold_wait[proc] = True  # it waits for an instance to start: cold
            return None
        return PodStation.acquire(self, proc, now)

    def release(self, slot: int, now: float) -> None:
        self._m(now)
        PodStation.release(self, slot, now)

    def take_free(self) -> int:
        self._m(self.sys.now)
        return PodStation.take_free(self)

    def scale_to(self, n: int, now: float, kind: str, reason: str) -> None:
        self._m(now)
        before = list(self.ready_pods)
        PodStation.scale_to(self, n, now, kind, reason)
        for _, scheduled in before[len(self.ready_pods) :]:  # removed ready instances
            self.lives.append(TaskLife(max(scheduled, 0.0), now, stopped=True))

    def _ready(self, scheduled: Any) -> None:
        now = self.sys.now
        self._m(now)
        if self.cancel:  # a starting instance removed before it was ready
            self.lives.append(TaskLife(scheduled, now, stopped=True))
        PodStation._ready(self, scheduled)

    def _reading(self, now: float, window: float) -> tuple[float, float, float, float, float]:
        """(seconds, arrivals, CPU core-seconds, held request-seconds, ready instance-seconds)
        in the window ending now, from the reading at or before its start (the controller reads
        every period; before the first window, from the run's start)."""
        self._m(now)
        _, arrived, cpu, ready, _ = PodStation._record(self, now)
        cur = (now, arrived, cpu, self.held_acc, ready)
        rows = self.readings
        rows.append(cur)
        start = now - window + 1e-6
        while len(rows) > 1 and rows[1][0] <= start:
            rows.popleft()
        old = rows[0] if rows[0][0] <= start else (0.0, 0.0, 0.0, 0.0, 0.0)
        return tuple(c - o for c, o in zip(cur, old, strict=True))  # type: ignore[return-value]

    def _lives(self, end: float) -> list[TaskLife]:
        self._m(end)
        alive = [TaskLife(max(s, 0.0), end, stopped=False) for _, s in self.ready_pods]
        alive += [TaskLife(s, end, stopped=False) for s in self.starting_at]
        return self.lives + alive


class CloudRunStation(ContainerStation):
    """A Cloud Run service: `concurrency` slots per instance, min/max instances, Google's
    metrics-based + on-demand autoscaler every 2 s (sim.platforms.cloud_run)."""

    kind = "cloud_run"
    hold_at_zero = True  # a request waits in the front end for on-demand scaling

    def __init__(self, sys: Any, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec, rng, spec.kubernetes_view())
        self.min_instances = spec.min_instances
        if spec.startup_cpu_boost:
            self.startup = _Scaled(self.startup, spec.boost_factor)  # type: ignore[assignment]
        self.hold = WindowMax(spec.scale_in_delay)
        self.periods = []
        # about-instance-autoscaling, "Exceeding maximum instances": a request pending past the
        # limit fails with 429 (the kernel's limit, cloud_run_spec)
        self.pending_limit = spec.pending_limit

    def acquire(self, proc: Proc, now: float) -> Any:
        got = ContainerStation.acquire(self, proc, now)
        if got is None:  # pending in the front end
            self._pend(proc, now)
        return got

    def control(self, env: simpy.Environment) -> None:
        env.process(every(env, PERIOD_S, self.tick))

    def tick(self, now: float) -> None:
        span, _, cpu, held, _ = self._reading(now, WINDOW_S)
        cpu_used = cpu / span if span > 0 else 0.0
        conc = held / span if span > 0 else 0.0
        demand = self.busy + len(self.waiting[0])
        want, by_cpu, by_conc, on_demand = recommendation(self.spec, cpu_used, conc, demand)
        held_n = self.hold.push(now, want)
        if held_n != self.replicas:
            why = (
                f"cpu {cpu_used:.3g} cores/1min -> {by_cpu}, concurrency {conc:.3g}/1min -> "
                f"{by_conc}, on demand {demand} requests -> {on_demand}"
            )
            rule = "scale out" if held_n > self.replicas else "scale in"
            self.scale_to(held_n, now, "cloud_run", f"{rule}: {why}")

    def own_bill(self, end: float, month_s: float | None) -> Bill:
        s = self.spec
        self._m(end)
        usage = CloudRunUsage(
            window_s=end,
            requests=self.calls_in,
            vcpu=s.cpu,
            memory_gib=s.memory / 1024.0,
            active_instance_s=billable_active_s(np.asarray(self.active_periods(end))),
            idle_min_instance_s=self.idle_min_acc,
            instance_s=self.pod_seconds(end),
        )
        # ops lines: once per placement and platform, by SystemModel._operating
        return cloud_run_bill(usage, s.billing, free_tier=s.free_tier, month_s=month_s)


class FargateStation(ContainerStation):
    """An ECS service on Fargate: `task.concurrency` slots per task behind the ALB, its desired
    count fixed or set by Application Auto Scaling on one datapoint a minute. At zero ready
    tasks a request is refused at once (hold_at_zero False): the ALB answers 503 when its target
    group has no registered target (AWS load-balancer-troubleshooting.html, "HTTP 503"); the
    single-service kernel holds it instead. `load_balancer.shared`: the platform's services in
    the placement share one ALB (sim.pricing.fargate.shared_alb_bill), its lines split by their
    requests. The NAT Gateway's hours are the platform's (its VPC's), billed once, on its first
    service; NAT data per service."""

    kind = "fargate"

    def __init__(self, sys: Any, index: int, svc: Any, spec: Any, rng: Any) -> None:
        lo, _ = spec.bounds
        kview = _as_kubernetes(spec, lo).model_copy(update={"routing": "ideal_fifo"})
        super().__init__(sys, index, svc, spec, rng, kview)
        self.metric, self.policies = scaling_policies(spec)
        self.datapoints: list[tuple[float, float | None]] = []

    def control(self, env: simpy.Environment) -> None:
        if self.policies:
            env.process(every(env, T.METRIC_PERIOD_S, self.minute))

    def minute(self, now: float) -> None:
        _, arrivals, cpu, held, ready = self._reading(now, T.METRIC_PERIOD_S)
        value = datapoint(self.spec, arrivals, cpu, held, ready)
        self.datapoints.append((now, value))
        acts = [p.on_datapoint(now, value, self.replicas) for p in self.policies]
        act = T.combine(acts, self.replicas)
        if act is not None and act.desired != self.replicas:
            self.scale_to(act.desired, now, act.rule, f"{act.reason} [{value:.4g} {self.metric}]")

    def own_bill(self, end: float, month_s: float | None) -> Bill:
        f, t = self.spec, self.spec.task
        usage = FargateUsage(
            window_s=end,
            requests=self.calls_in,
            vcpu=float(t.cpu),
            memory_gb=float(t.memory) / 1024.0,
            tasks=self._lives(end),
            ephemeral_gb=t.ephemeral_storage,
            architecture=t.architecture,
            # the platform's services share its VPC's NAT Gateway: its hours (and IPv4) once,
            # on the platform's first service, as Lambda functions do (SystemModel.bills)
            nat_gateway_hours=self.sys.first_of(self.platform) is self,
        )
        lb = f.load_balancer
        # no egress line: a system's bytes between services are its hops' (sim.pricing.hops), as
        # for a Kubernetes station
        own = fargate_bill(
            usage,
            load_balancer=lb.model_copy(update={"type": "none"}) if lb.shared else lb,
            settings=f.cost,
            month_s=month_s,  # ops lines: once per placement, by SystemModel._operating
        )
        if not (lb.shared and lb.type == "alb"):
            return own
        # one ALB for the platform's services in this placement, split by their requests
        group = [st for st in self.sys.stations if st.platform == self.platform]
        total = sum(st.calls_in for st in group)
        alb = shared_alb_bill(total, lb, f.cost, end, month_s)
        return add_lines(own, scaled_bill(alb, self.calls_in / total if total else 1 / len(group)))


class ContainerAppsStation(ContainerStation):
    """An Azure Container Apps app: `concurrency` slots per replica; its `scale:` rules as the
    KEDA ScaledObject ACA runs (ContainerAppsSpec.kubernetes_view: the http rule = KEDA's HTTP
    trigger on the request rate over 15 s, target concurrentRequests per replica), polled and
    synced by PodStation's KedaAutoscaler loops (sim.systems.engine.SystemModel.start); at zero
    replicas a request is held at the ingress until a replica is ready."""

    kind = "container_apps"
    hold_at_zero = True

    def __init__(self, sys: Any, index: int, svc: Any, spec: Any, rng: Any) -> None:
        super().__init__(sys, index, svc, spec, rng, spec.kubernetes_view())
        self.min_ready = spec.scale.minReplicas  # idle pricing applies at the minimum (>= 1)
        wp = spec.workload_profile
        self.per_profile = max(spec.cpu / wp.vcpu, spec.memory / 1024.0 / wp.memory_gib)

    def own_bill(self, end: float, month_s: float | None) -> Bill:
        s = self.spec
        self._m(end)
        idle = self.idle_at_min_acc
        usage = ContainerAppsUsage(
            window_s=end,
            requests=self.calls_in,
            vcpu=s.cpu,
            memory_gib=s.memory / 1024.0,
            active_replica_s=max(0.0, self.pod_seconds(end) - idle),
            idle_replica_s=idle,
            profile_instance_s=self.profile_acc if s.plan == "dedicated" else 0.0,
            profile_vcpu=s.workload_profile.vcpu,
            profile_memory_gib=s.workload_profile.memory_gib,
        )
        # ops lines: once per placement and platform, by SystemModel._operating
        return container_apps_bill(usage, s.plan, free_tier=s.free_tier, month_s=month_s)


STATIONS.update(
    cloud_run=CloudRunStation, fargate=FargateStation, container_apps=ContainerAppsStation
)
