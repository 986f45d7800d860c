"""AWS Fargate behind ECS (`type: fargate`): tasks are pods without nodes behind an ALB.

The spec is sim.platforms.fargate_spec.FargateSpec. The data plane is the Kubernetes model's
(sim.platforms.kubernetes.KubernetesModel: per-task FIFO queues, the ALB's routing, start-up,
draining), run with no nodes (its `autopilot` mode: a task starts when the service asks for it,
billed from then); this module adds what ECS and Fargate do differently:

- Scaling: Application Auto Scaling target tracking or step scaling
  (sim.platforms.autoscaling.target_tracking) on one CloudWatch datapoint per minute, at every
  whole minute t: ALBRequestCountPerTarget = requests that arrived in [t - 60, t) / the average
  number of ready (healthy) tasks in it; ECSServiceAverageCPUUtilization = CPU the tasks used /
  CPU they reserve, in percent (the Kubernetes model's CPU meter);
  ECSServiceAverageMemoryUtilization = (task.memory_base + task.memory_per_request x requests
  held per ready task) / task memory, in percent. No ready task in the minute: no datapoint.
  A new task is pending -> starting (`task.startup`: image pull, container start, health
  check) -> ready; a removed task stops taking requests (ALB deregistration) and stops
  once it has finished what it holds (the ALB completes a deregistration early when a target has
  no in-flight requests).
- Fargate Spot (`spot:`): each running task is interrupted at `interruptions_per_task_hour`
  (a Poisson process per task, by thinning: events at rate x max_tasks, each hitting the task at
  a uniform index if one runs there). At the two-minute warning ECS sends SIGTERM, the task is
  deregistered and the service scheduler starts a replacement at once; the task keeps serving
  what it holds until `stop_timeout` (ECS default 30 s), when the requests still queued at it
  fail (502, `rejected`) or are retried once on the other tasks (`queued: retry`). ASSUMPTION:
  a request already in service finishes (API requests are shorter than the stop timeout).
- Bill: sim.pricing.fargate (per task, per second, 1-minute minimum; ALB as Kubernetes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import sim.platforms.autoscaling.target_tracking as T
from sim.platforms.base import RunContext, substream
from sim.platforms.fargate_spec import FargateSpec
from sim.platforms.kubernetes import DRAINING, READY, STARTING, KubernetesModel
from sim.platforms.kubernetes_spec import KubernetesSpec
from sim.pricing.fargate import FargateUsage, TaskLife, fargate_bill

_SPOT_STREAM = 41  # substream purpose of Spot interruptions
_EPS = 1e-9


def _as_kubernetes(spec: FargateSpec, initial: int) -> KubernetesSpec:
    """The data plane's settings: the tasks as pods of a node-less cluster."""
    t = spec.task
    return KubernetesSpec.model_validate(
        {
            "name": spec.name,
            "type": "kubernetes",
            "replicas": initial,
            "pod": {
                "concurrency": t.concurrency,
                "cpu": t.cpu,
                "memory": t.memory,
                "startup": t.startup,
            },
            "routing": spec.routing,
            "queue_limit": spec.queue_limit,
            "request_timeout": spec.request_timeout,
            "ingress_latency": spec.ingress_latency,
            "cluster": {"mode": "autopilot", "control_plane": "gke"},
            "load_balancer": spec.load_balancer,
        }
    )


def scaling_policies(spec: FargateSpec) -> tuple[str | None, list[Any]]:
    """(metric, Application Auto Scaling policies) of the service (also a system's Fargate
    station, sim.systems.stations_containers)."""
    lo, hi = spec.bounds
    policies: list[Any] = []
    metric = None
    if spec.target_tracking is not None:
        tt = spec.target_tracking
        metric = tt.metric
        policies.append(
            T.TargetTracking(
                tt.target,
                lo,
                hi,
                scale_out_cooldown=tt.scale_out_cooldown,
                scale_in_cooldown=tt.scale_in_cooldown,
                disable_scale_in=tt.disable_scale_in,
            )
        )
    elif spec.step_scaling is not None:
        ss = spec.step_scaling
        metric = ss.metric
        for name, p in (("scale_out", ss.scale_out), ("scale_in", ss.scale_in)):
            if p is None:
                continue
            steps = [T.Step(s.lower, s.upper, s.adjustment) for s in p.steps]
            policies.append(
                T.StepScaling(
                    p.threshold,
                    p.comparison,
                    steps,
                    lo,
                    hi,
                    adjustment_type=p.adjustment_type,
                    evaluation_periods=p.evaluation_periods,
                    datapoints=p.datapoints,
                    cooldown=p.cooldown,
                    name=name,
                )
            )
    return metric, policies


def datapoint(
    spec: FargateSpec, arrivals: float, core_s: float, held_s: float, ready_s: float
) -> float | None:
    """One minute's CloudWatch datapoint of the policy metric from the minute's arrivals, CPU
    core-seconds used, request-seconds held (in service or queued) and ready task-seconds
    (None: no task was ready in it)."""
    if ready_s <= _EPS:
        return None
    metric = (spec.target_tracking or spec.step_scaling).metric  # type: ignore[union-attr]
    if metric == "alb_request_count_per_target":
        return arrivals / ready_s * T.METRIC_PERIOD_S  # requests per average ready task
    if metric == "cpu":
        return 100.0 * core_s / (ready_s * spec.task.cpu)
    t = spec.task  # memory: at rest + per request held (in service or queued)
    assert t.memory_base is not None
    return 100.0 * (t.memory_base + t.memory_per_request * held_s / ready_s) / t.memory


class FargateModel(KubernetesModel):
    def __init__(self, spec: FargateSpec, ctx: RunContext) -> None:
        lo, hi = spec.bounds
        super().__init__(_as_kubernetes(spec, lo), ctx)
        self.fargate = spec
        self.min_tasks, self.max_tasks = lo, hi
        self.metric, self.policies = scaling_policies(spec)
        self.datapoints: list[tuple[float, float | None]] = []  # (minute end, value)
        # Billing: every task's life (start of image pull -> stop).
        self.lives: list[TaskLife] = []
        self.interruptions: list[tuple[float, int]] = []  # (warning time, task id)
        self.task_spot_rng: np.random.Generator | None = None
        if spec.spot is not None and spec.spot.interruptions_per_task_hour > 0 and hi > 0:
            self.task_spot_rng = substream(ctx.rng, _SPOT_STREAM)
        self.n_retried = 0

    # -- control plane ----------------------------------------------------------------------------
    def start(self) -> None:
        super().start()  # the initial tasks (min_tasks, or `tasks`) ready at 0, no scaler
        if self.policies:
            self.max_window = max(self.max_window, T.METRIC_PERIOD_S)
            self._periodic(T.METRIC_PERIOD_S, self._minute)
        if self.task_spot_rng is not None:
            self.env.process(self._spot_loop())

    def _datapoint(self, now: float) -> float | None:
        """The policy metric of the minute ending now (None: no task was ready in it)."""
        _, arrivals, busy, waiting, ready, _ = self._window(now, T.METRIC_PERIOD_S)
        return datapoint(self.fargate, arrivals, busy * self.cpu_per_request, busy + waiting, ready)

    def _minute(self, now: float) -> None:
        self._catch_up(now)
        value = self._datapoint(now)
        self.datapoints.append((now, value))
        acts = [p.on_datapoint(now, value, self.replicas) for p in self.policies]
        act = T.combine(acts, self.replicas)
        if act is not None and act.desired != self.replicas:
            unit = {"alb_request_count_per_target": "req/target/min", "cpu": "% CPU"}.get(
                str(self.metric), "% memory"
            )
            self._scale_to(act.desired, act.rule, f"{act.reason} [{value:.4g} {unit}]")

    def _spot_loop(self) -> Any:
        spot, rng = self.fargate.spot, self.task_spot_rng
        assert spot is not None and rng is not None
        cap = max(self.max_tasks, 1)
        rate = spot.interruptions_per_task_hour / 3600.0 * cap  # thinning bound
        while True:
            yield self.env.timeout(float(rng.exponential(1.0 / rate)))
            u = float(rng.random())
            now = self.env.now
            self._catch_up(now)
            running = [*self.starting, *self.ready_order]
            k = int(u * cap)
            if k < len(running):
                self._interrupt(running[k], now)

    def _interrupt(self, pid: int, now: float) -> None:
        """The two-minute warning: deregister, start a replacement, kill after stop_timeout."""
        spot = self.fargate.spot
        assert spot is not None
        self.interruptions.append((now, pid))
        self.ctx.decide(
            "spot_interruption",
            self.replicas,
            self.replicas,
            f"Fargate Spot interruption of task {pid}: SIGTERM, replacement started, "
            f"killed after stopTimeout {spot.stop_timeout:g}s",
        )
        self._remove(pid, now)
        self.pending.append(self._new_pod())  # the desired count is unchanged: ECS replaces it
        self._schedule(now)
        self._at(now + spot.stop_timeout, lambda: self._kill(pid))

    def _kill(self, pid: int) -> None:
        """stopTimeout is over: what is still queued at the task fails or is retried."""
        if self.state[pid] != DRAINING or not self.pp:
            return
        spot = self.fargate.spot
        assert spot is not None
        now = self.env.now
        q = self.pod_queue[pid]
        retried = []
        while q:
            a, s, over, cold = q.popleft()
            if self.track:
                self.out[pid] -= 1
            if spot.queued == "retry":
                retried.append((a, s, over, cold))  # still waiting: nwait, q_arr_sum kept
                continue
            self.q_arr_sum -= a
            self.dequeued_wait += now - a
            self.nwait -= 1
            self._reject(a, over, now, cold)
        if retried:
            self.n_retried += len(retried)
            # The held queue stays in arrival order (its deadlines are purged from the head).
            held = sorted([*self.queue, *retried], key=lambda r: r[0])
            self.queue.clear()
            self.queue.extend(held)
            if self.ep:
                self._dispatch_held(now)

    # -- accounting -------------------------------------------------------------------------------
    def _gone(self, pid: int, t: float) -> float:
        lo = self.scheduled_at[pid]
        if t < self.horizon - _EPS:  # stopped inside the window (the rest are settled in finish)
            self.lives.append(TaskLife(lo, t, stopped=True))
        return super()._gone(pid, t)

    def finish(self) -> None:
        end = self.horizon
        self._catch_up(end)
        for pid, st in enumerate(self.state):  # still running at the end: no minimum yet
            if st in (STARTING, READY, DRAINING) and self.scheduled_at[pid] < end:
                self.lives.append(TaskLife(self.scheduled_at[pid], end, stopped=False))
        super().finish()

    def snapshot(self, now: float) -> dict[str, float]:
        row = super().snapshot(now)
        row.pop("nodes_ready", None)
        row["nodes"] = 0.0  # Fargate: no nodes of yours
        return row

    def usage(self) -> FargateUsage:  # type: ignore[override]
        t = self.fargate.task
        spot = self.fargate.spot
        return FargateUsage(
            window_s=self.horizon,
            requests=self.n_arrivals,
            vcpu=float(t.cpu),
            memory_gb=float(t.memory) / 1024.0,
            tasks=list(self.lives),
            ephemeral_gb=t.ephemeral_storage,
            architecture=t.architecture,
            spot=spot is not None,
            spot_discount=None if spot is None else spot.discount,
            response_bytes=self.n_arrivals * self.ctx.response_bytes[0],
        )

    def bill(self) -> Any:
        f = self.fargate
        return fargate_bill(
            self.usage(),
            load_balancer=f.load_balancer,
            settings=f.cost,
            ops=f.ops,
            ops_profile=f.ops_profile,
            month_s=self.ctx.month_s,
        )


__all__ = ["FargateModel", "FargateSpec", "datapoint", "scaling_policies"]
