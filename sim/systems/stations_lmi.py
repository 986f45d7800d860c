"""Lambda Managed Instances as a system station (`type: lambda_managed`; docs/model.md 18.7).

The single-service model's parts (sim.platforms.lambda_managed), not copies of them: the
capacity provider as the Kubernetes kernel runs it (`kubernetes_view`: an execution environment
is a pod of PerExecutionEnvironmentMaxConcurrency slots, started after `environment_init`, an EC2
instance a node: Karpenter, WhenEmpty after `instance_idle`, at least `min_instances`), here the
system's simulated node pool (sim.systems.nodes.Nodes) on that view; no queue: an invocation that
finds every slot busy is throttled at once (429); the scaler (`scaler_rule`) every
`scale_period` on the last period's CPU (the station's work meter) and slots in use; the bill
`lambda_managed_bill` on the instances' lives. ASSUMPTION: each function of a system has its
own capacity provider instances (a provider shared by several functions is not modelled). The
function `timeout` as the kernel's request_timeout (SystemModel.limited): TIMED_OUT at the timeout
from arrival, the environment's slot busy until the handler's end.

An environment that gets ready at the instant an invocation arrives takes it (the readiness
first), as the single-service kernel orders a pod's readiness (a control event) before that
instant's arrivals; the heap engine runs an instant's arrivals before its other events, so a
throttle first brings up an environment due now (`due`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import simpy

from sim.platforms.base import every
from sim.platforms.lambda_managed import count_at, kubernetes_view, scaler_rule
from sim.platforms.slots import WindowMax
from sim.pricing.kubernetes import NodeUsage
from sim.pricing.lambda_managed import LambdaManagedUsage, lambda_managed_bill
from sim.pricing.tables import Bill
from sim.records import THROTTLED
from sim.systems.engine import STATIONS, Proc
from sim.systems.nodes import NodePool
from sim.systems.stations_containers import ContainerStation


class LambdaManagedStation(ContainerStation):
    """A function on Lambda Managed Instances as a service of a system."""

    kind = "lambda_managed"

    def __init__(self, sys: Any, index: int, svc: Any, spec: Any, rng: Any) -> None:
        kview, max_nodes = kubernetes_view(spec)
        super().__init__(sys, index, svc, spec, rng, kview)
        self.instances_view = kview  # SystemModel gives it a node pool of its own on this view
        per_node = NodePool(kview, []).per_node
        self.max_envs = None if max_nodes is None else max_nodes * per_node
        self.keep = WindowMax(spec.scale_down_window)
        self.sizes: deque[tuple[float, int]] = deque([(0.0, self.replicas)])
        self.throttles = 0
        # the function timeout as the kernel's request_timeout (lambda_managed.py)
        self.response_limit = float(spec.timeout)
        self.general = True
        self.timeouts = 0  # invocations past it (SystemModel.limited)
        self.due: list[list[Any]] = []  # starting environments: [ready at, scheduled, done]

    def _start_pod(self, now: float) -> None:
        """An environment on its instance: ready after `environment_init` (`_on_time`), or
        earlier in that instant for an invocation that would be throttled (`acquire`)."""
        self.starting += 1
        self.starting_at.append(now)
        item = [now + self.startup.next(), now, False]
        self.due.append(item)
        self.sys.at(item[0], self._on_time, item)

    def _on_time(self, item: list[Any]) -> None:
        if not item[2]:  # (not brought up early by `acquire`)
            self.due.remove(item)
            self._ready(item[1])

    def acquire(self, proc: Proc, now: float) -> Any:
        if self.free[0] == 0:
            for item in self.due:  # an environment ready at this instant takes it first
                if item[0] <= now:
                    item[2] = True
                    self.due.remove(item)
                    self._ready(item[1])
                    break
        if self.free[0] == 0:  # every slot busy (or none ready): throttled, no queue
            self._m(now)
            self.arrived += 1
            self.throttles += 1
            return THROTTLED
        return ContainerStation.acquire(self, proc, now)

    def control(self, env: simpy.Environment) -> None:
        env.process(every(env, self.spec.scale_period, self.tick))

    def tick(self, now: float) -> None:
        """The scaler (sim.platforms.lambda_managed `_scaler`)."""
        own = self.spec
        span, _, core_s, held, _ = self._reading(now, own.scale_period)
        if span <= 0:
            return
        cpu = core_s / own.vcpu / span  # environments' worth of CPU
        sat = held / self.conc / span  # environments' worth of slots in use (no queue)
        before = count_at(self.sizes, now - own.scale_up_window)
        n, why = scaler_rule(
            own, cpu, sat, before, self.replicas, self.keep.push, now, self.max_envs
        )
        if n != self.replicas:
            self.scale_to(n, now, "lambda_managed", f"scaler: {why}")
            self.sizes.append((now, n))

    def own_bill(self, end: float, month_s: float | None) -> Bill:
        node = self.instances_view.cluster.node
        usage = LambdaManagedUsage(
            window_s=end,
            requests=self.calls_in,
            instances=[NodeUsage(node, a, b) for a, b, _ in self.nodes.usage(end)],
        )
        # ops lines: once per placement and platform, by SystemModel._operating
        return lambda_managed_bill(usage, commitment=self.spec.commitment, month_s=month_s)


STATIONS.update(lambda_managed=LambdaManagedStation)
