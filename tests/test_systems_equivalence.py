"""The system heap engine against its per-request SimPy reference (sim.validation.reference):
identical per-request outcomes and times on random small systems (hypothesis) of Kubernetes
(fixed pods: one FIFO, round robin, random, queue_limit) and Lambda services joined by calls
(sequential, fan-out, with timeouts and retries), events and SQS queues (Lambda event source
mappings with batches, batching windows, maximum concurrency and throttles; pod workers, fixed or
KEDA-scaled; visibility timeouts, maxReceiveCount and the DLQ). The bundled system scenarios are
held to the same reference in tests/test_equivalence.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import run_one
from sim.errors import InputError
from sim.units import parse_duration
from sim.validation.reference import ReferenceSystem

from conftest import make_scenario

ROOT = Path(__file__).resolve().parent.parent

PLATFORMS = [
    {
        "name": "eks-a",
        "type": "kubernetes",
        "replicas": 2,
        "routing": "ideal_fifo",
        "pod": {"concurrency": 2, "cpu": 0.5, "memory": "512Mi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "eks-b",
        "type": "kubernetes",
        "replicas": 1,
        "routing": "ideal_fifo",
        "pod": {"concurrency": 3, "cpu": 1, "memory": "1Gi"},
        "ingress_latency": {"dist": "exponential", "mean": "2ms"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "fn",
        "type": "lambda",
        "memory": 1024,
        "reserved_concurrency": 4,
        "keep_alive": {"dist": "uniform", "low": "5s", "high": "30s"},
        "api_gateway": "http",
    },
    {
        "name": "eks-rr",
        "type": "kubernetes",
        "replicas": 2,
        "routing": "round_robin",
        "queue_limit": 3,
        "pod": {"concurrency": 1, "cpu": 1, "memory": "1Gi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "eks-random",
        "type": "kubernetes",
        "replicas": 3,
        "routing": "random",
        "pod": {"concurrency": 1, "cpu": 1, "memory": "1Gi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "fn-small",
        "type": "lambda",
        "memory": 512,
        "reserved_concurrency": 2,
    },
    {
        "name": "workers",  # queue workers only (KEDA on the simulated queue)
        "type": "kubernetes",
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 6,
            "pollingInterval": "5s",
            "triggers": [{"type": "aws-sqs-queue", "metadata": {"queueLength": "2"}}],
        },
        "pod": {"concurrency": 2, "cpu": 1, "memory": "1Gi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "kworkers",  # Kafka consumers: KEDA's kafka trigger on the simulated lag
        "type": "kubernetes",
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 6,
            "pollingInterval": "5s",
            "triggers": [{"type": "kafka", "metadata": {"lagThreshold": "3"}}],
        },
        "pod": {"concurrency": 1, "cpu": 1, "memory": "1Gi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "kworkers-x",
        "type": "kubernetes",
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 6,
            "pollingInterval": "5s",
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "lagThreshold": "2",
                        "excludePersistentLag": "true",
                        "limitToPartitionsWithLag": "true",
                    },
                }
            ],
        },
        "pod": {"concurrency": 2, "cpu": 1, "memory": "1Gi"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
]
# Autoscaled synchronous services (HPA on cpu; KEDA on an ingress request rate and cpu) and a
# Lambda in a VPC (behind NAT): sim.systems.hops and PodStation's autoscalers.
PLATFORMS += [
    {
        "name": "eks-hpa",
        "type": "kubernetes",
        "hpa": {"min_replicas": 1, "max_replicas": 4, "metric": "cpu", "target": "40%"},
        "pod": {"concurrency": 2, "cpu": 0.5, "memory": "512Mi", "startup": "2s"},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "eks-keda",
        "type": "kubernetes",
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "pollingInterval": "5s",
            "triggers": [
                {"type": "prometheus", "metadata": {"threshold": "6", "window": "10s"}},
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}},
            ],
        },
        "pod": {
            "concurrency": 2,
            "cpu": 1,
            "memory": "1Gi",
            "startup": {"dist": "exponential", "mean": "1s"},
        },
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {"name": "fn-vpc", "type": "lambda", "memory": 512, "cost": {"nat": {"enabled": True}}},
]
# Serverless containers (sim.systems.stations_containers): Cloud Run from zero (on-demand
# scaling, a short scale-in delay), Fargate with fixed tasks and with target tracking on CPU.
PLATFORMS += [
    {
        "name": "run",
        "type": "cloud_run",
        "concurrency": 3,
        "max_instances": 4,
        "scale_in_delay": "10s",
        "startup": {"dist": "exponential", "mean": "500ms"},
        "ingress_latency": {"dist": "exponential", "mean": "2ms"},
    },
    {"name": "ecs", "type": "fargate", "tasks": 2, "task": {"concurrency": 2, "startup": "2s"}},
    {
        "name": "aca",
        "type": "container_apps",
        "concurrency": 2,
        "scale": {"minReplicas": 0, "maxReplicas": 4, "pollingInterval": 5, "cooldownPeriod": 20},
        "startup": {"dist": "exponential", "mean": "1s"},
    },
    {
        "name": "ecs-tt",
        "type": "fargate",
        "target_tracking": {"metric": "cpu", "target": 30, "min_tasks": 1, "max_tasks": 4},
        "task": {"concurrency": 2, "startup": {"dist": "exponential", "mean": "5s"}},
    },
]
# Node provisioning (sim.systems.nodes): one pod per m5.large node, nodes ready after a random
# provisioning time, the Cluster Autoscaler removing empty nodes after 10 s: KEDA's new pods wait
# Pending, and Kafka brokers hosted on `kworkers` take its nodes' room.
PLATFORMS += [
    {
        "name": "workers-tight",
        "type": "kubernetes",
        "keda": {
            "minReplicaCount": 1,
            "maxReplicaCount": 5,
            "pollingInterval": "5s",
            "cooldownPeriod": "10s",
            "triggers": [{"type": "aws-sqs-queue", "metadata": {"queueLength": "2"}}],
        },
        "pod": {"concurrency": 2, "cpu": 1, "memory": "1Gi", "startup": "1s"},
        "cluster": {
            "node": "m5.large",
            "control_plane": "eks",
            "node_provisioning": {"dist": "exponential", "mean": "5s"},
            "node_autoscaler": "cluster-autoscaler",
            "scale_down_after": "10s",
            "scale_down_delay_after_add": "0s",
        },
    },
]
# Consolidation and spot (sim.systems.nodes): KEDA workers on 3-pod m5.xlarge nodes, Karpenter
# draining underutilised nodes after 5 s (a short HPA scale-down window, one-slot pods: they scale
# up and down within the run); and an all-spot pool with frequent notices (300 per node-hour, a
# 10 s notice, 2 s grace) and spot shortages (30%, cached 5 s), or not drained (killed with the
# node at the notice's end: the receives / fetches in service are cut).
_KEDA_FAST = {
    "minReplicaCount": 1,
    "maxReplicaCount": 6,
    "pollingInterval": "5s",
    "cooldownPeriod": "10s",
    "triggers": [{"type": "aws-sqs-queue", "metadata": {"queueLength": "1"}}],
    "advanced": {
        "horizontalPodAutoscalerConfig": {
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}
        }
    },
}
_NODES = {"node": "m5.xlarge", "control_plane": "eks", "min_nodes": 1}
_PODS = {
    "concurrency": 1,
    "cpu": 1,
    "memory": "1Gi",
    "startup": {"dist": "exponential", "mean": "1s"},
}
PLATFORMS += [
    {
        "name": "workers-pack",
        "type": "kubernetes",
        "keda": _KEDA_FAST,
        "pod": _PODS,
        "cluster": {**_NODES, "node_provisioning": {"dist": "exponential", "mean": "2s"},
                    "consolidate_after": "2s", "controller": {"sync_period": "3s"}},
    },
    {
        "name": "workers-spot",
        "type": "kubernetes",
        "keda": _KEDA_FAST,
        "pod": _PODS,
        "cluster": {
            **_NODES,
            "node_provisioning": {"dist": "exponential", "mean": "3s"},
            "spot": {"interruptions_per_node_hour": 300, "notice": "10s", "grace": "2s",
                     "unavailable": 0.3, "unavailable_ttl": "5s"},
        },
    },
    {  # SQS workers killed with their node at the notice's end: receives cut before the delete
        "name": "workers-spot-nodrain",
        "type": "kubernetes",
        "keda": _KEDA_FAST,
        "pod": _PODS,
        "cluster": {
            **_NODES,
            "node_provisioning": {"dist": "exponential", "mean": "3s"},
            "spot": {"interruptions_per_node_hour": 300, "notice": "10s",
                     "drain_on_notice": False},
        },
    },
    {  # Kafka consumers on spot pods: a kill cuts their records before the commit
        "name": "kworkers-spot",
        "type": "kubernetes",
        "keda": {"minReplicaCount": 1, "maxReplicaCount": 4, "pollingInterval": "5s",
                 "triggers": [{"type": "kafka", "metadata": {"lagThreshold": "3"}}]},
        "pod": {**_PODS, "concurrency": 2},
        "cluster": {
            **_NODES,
            "node_provisioning": {"dist": "exponential", "mean": "3s"},
            "spot": {"interruptions_per_node_hour": 300, "notice": "10s", "grace": "2s",
                     "drain_on_notice": False},
        },
    },
]  # fmt: skip
# Spot pods that synchronous calls reach (sim.systems.engine.SpotPodStation): HPA-scaled pods on
# an all-spot m5.large pool with frequent notices; a kill cuts the requests in service on its
# pods: they fail, or are sent again (`in_flight`); drained at the notice (0.5 s grace) or not
# (killed with the node at the end of a 10 s notice).
_SPOT_PODS = {
    "type": "kubernetes",
    "hpa": {"min_replicas": 1, "max_replicas": 4, "metric": "cpu", "target": "40%"},
    "pod": {"concurrency": 2, "cpu": 0.5, "memory": "512Mi", "startup": "1s"},
}
_SPOT_NODES = {"node": "m5.large", "control_plane": "eks", "min_nodes": 1,
               "node_provisioning": {"dist": "exponential", "mean": "2s"}}  # fmt: skip
PLATFORMS += [
    {**_SPOT_PODS, "name": "spot-fail", "cluster": {**_SPOT_NODES, "spot": {
        "interruptions_per_node_hour": 300, "notice": "10s", "grace": "500ms"}}},
    {**_SPOT_PODS, "name": "spot-retry", "cluster": {**_SPOT_NODES, "spot": {
        "interruptions_per_node_hour": 300, "notice": "10s", "grace": "500ms",
        "in_flight": "retry"}}},
    {**_SPOT_PODS, "name": "spot-nodrain", "cluster": {**_SPOT_NODES, "spot": {
        "interruptions_per_node_hour": 300, "notice": "10s", "drain_on_notice": False,
        "in_flight": "retry", "unavailable": 0.3, "unavailable_ttl": "5s"}}},
]  # fmt: skip
# ... and a Knative revision on that pool (sim.systems.stations_knact.SpotKnativeStation): the KPA
# (from 1 to 4 pods), the activator holding what is sent again while no pod is ready.
PLATFORMS += [
    {"name": "kn-spot", "type": "knative", "container_concurrency": 2, "min_scale": 1,
     "max_scale": 4, "window": "6s", "activator_latency": "1ms",
     "pod": {"cpu": 0.5, "memory": "512Mi", "startup": "1s"},
     "cluster": {**_SPOT_NODES, "spot": {"interruptions_per_node_hour": 300, "notice": "10s",
                                         "grace": "500ms", "in_flight": "retry"}}},
]  # fmt: skip
SPOT = ["spot-fail", "spot-retry", "spot-nodrain", "kn-spot"]
# Lambda's function timeout and an account's shared concurrency (sim.systems.sqs tests): a short
# timeout, and two platforms of one small account.
PLATFORMS += [
    {"name": "fn-short", "type": "lambda", "memory": 256, "timeout": "150ms",
     "account": "small", "account_concurrency": 6},
    {"name": "fn-small-acct", "type": "lambda", "memory": 512, "account": "small",
     "account_concurrency": 6},
]  # fmt: skip
# Knative (the KPA poked from zero, a short stable window, the activator in the path; pods on
# a simulated node pool) and Flex Consumption (from zero, an always-ready instance, a short idle
# timeout): sim.systems.stations_knact.
PLATFORMS += [
    {
        "name": "kn",
        "type": "knative",
        "container_concurrency": 2,
        "initial_scale": 0,
        "allow_zero_initial_scale": True,
        "window": "6s",
        "scale_to_zero_grace_period": "4s",
        "activator_latency": "1ms",
        "pod": {"cpu": 0.5, "memory": "512Mi", "startup": {"dist": "exponential", "mean": "1s"}},
        "cluster": {"node": "m5.xlarge", "control_plane": "eks"},
    },
    {
        "name": "kn-nodes",
        "type": "knative",
        "container_concurrency": 1,
        "min_scale": 1,
        "max_scale": 3,
        "target": 1,
        "pod": {"cpu": 1, "memory": "1Gi", "startup": "500ms"},
        "cluster": {
            "node": "m5.large",
            "control_plane": "eks",
            "mode": "nodes",
            "node_provisioning": {"dist": "exponential", "mean": "3s"},
        },
    },
]
# Flex Consumption (sim.systems.stations_flex): from zero with a short idle timeout, and one
# always-ready instance of concurrency 1 (its per-instance activity-period bill compared too).
PLATFORMS += [
    {"name": "flex", "type": "azure_flex", "concurrency": 2, "max_instances": 4,
     "idle_timeout": "5s", "cold_start": {"dist": "exponential", "mean": "1s"}},
    {"name": "flex-ar", "type": "azure_flex", "concurrency": 1, "always_ready": 1,
     "max_instances": 3, "idle_timeout": "3s", "cold_start": "700ms", "instance_memory": 512},
]  # fmt: skip
# Lambda Managed Instances (sim.systems.stations_lmi): 2 GB environments of concurrency 2 on
# m7g.large instances (2 environments each) launched in ~3 s, a 5 s scaler, a short idle.
PLATFORMS += [
    {"name": "lmi", "type": "lambda_managed", "memory": 2048, "concurrency": 2,
     "instance_type": "m7g.large", "min_instances": 1, "min_environments": 1,
     "scale_period": "5s", "scale_up_window": "10s", "scale_down_window": "10s",
     "environment_init": {"dist": "exponential", "mean": "1s"},
     "instance_launch": {"dist": "exponential", "mean": "3s"}, "instance_idle": "5s"},
]  # fmt: skip
CALLABLE = [
    "eks-a", "eks-b", "fn", "eks-rr", "eks-random", "fn-small", "eks-hpa", "eks-keda", "fn-vpc",
    "run", "ecs", "ecs-tt", "aca", "fn-short", "fn-small-acct", "kn", "kn-nodes", "flex",
    "flex-ar", "lmi",
]  # fmt: skip
KINDS = {p["name"]: p["type"] for p in PLATFORMS}


def _vias(caller: str, callee: str) -> list[str | None]:
    """The `via`s a call from a service on `caller` to one on `callee` may name (None: default)."""
    if KINDS[callee] == "lambda_managed":
        return [None, "invoke"]
    if KINDS[callee] == "lambda":
        gw = any(p["name"] == callee and p.get("api_gateway") for p in PLATFORMS)
        return [None, "invoke", *(["api_gateway"] if gw else [])]
    if KINDS[callee] in ("cloud_run", "fargate", "container_apps", "knative", "azure_flex"):
        return [None, "load_balancer"]
    return [None, "load_balancer", *(["direct"] if KINDS[caller] == "kubernetes" else [])]


@st.composite
def systems(
    draw: Any, kafka_only: bool = False, nodes_only: bool = False, spot: bool = False
) -> dict:
    """A random small system; `nodes_only`: its first queue is SQS, consumed by KEDA workers on
    a node pool that consolidates or runs on spot (sim.systems.nodes); `spot`: the entry service
    (and maybe others) on spot pods, handlers long enough to be in service at a kill."""
    n = draw(st.integers(2, 4))
    services = []
    for i in range(n):
        later = [f"s{j}" for j in range(i + 1, n)]
        steps: list[dict] = []
        if later:
            for _ in range(draw(st.integers(0, 2))):
                kind = draw(st.sampled_from(["call", "parallel", "publish"]))
                call = {
                    "call": draw(st.sampled_from(later)),
                    "probability": draw(st.sampled_from([1.0, 0.5])),
                    "timeout": draw(st.sampled_from(["30ms", "200ms", "60s"])),
                    "retries": draw(st.integers(0, 2)),
                }
                if kind == "call":
                    steps.append(call)
                elif kind == "parallel":
                    other = {**call, "call": draw(st.sampled_from(later)), "probability": 1.0}
                    steps.append({"parallel": [call, other]})
                else:
                    steps.append({"publish": call["call"], "probability": call["probability"]})
            if steps and draw(st.booleans()):
                steps = [{"work": 0.3}, *steps, {"work": 0.7}]
        services.append(
            {
                "name": f"s{i}",
                "entry": 1 if i == 0 else draw(st.sampled_from([0, 0, 0.5])),
                "handler": {"dist": "exponential", "mean": draw(st.sampled_from(["5ms", "20ms"]))},
                "cpu_bound": draw(st.sampled_from([0.0, 1.0])),
                "error_rate": draw(st.sampled_from([0.0, 0.1])),
                "steps": steps,
                "async": {
                    "maximum_retry_attempts": draw(st.sampled_from([0, 2])),
                    "maximum_event_age": draw(st.sampled_from(["60s", "6h"])),
                },
            }
        )
    queues = []
    for k in range(draw(st.integers(1 if kafka_only or nodes_only else 0, 2))):
        kafka = kafka_only or (not (nodes_only and k == 0) and draw(st.booleans()))
        fifo = not kafka and draw(st.booleans())
        queues.append(
            {
                "name": f"q{k}",
                "type": "kafka",
                "consumer": f"w{k}",
                "partitions": draw(st.sampled_from([1, 2, 4])),
                "keys": draw(st.sampled_from([None, 3, 50])),
                "batch_size": draw(st.sampled_from([1, 3, 100])),
                "batching_window": draw(st.sampled_from([0, "200ms", "500ms"])),
                "maximum_retry_attempts": draw(st.sampled_from([None, 0, 2])),
                "rebalance_pause": draw(st.sampled_from([0, "1s", "3s"])),
                **draw(
                    st.sampled_from(
                        [
                            {},
                            {"hosting": "cluster", "platform": "kworkers", "broker_cpu": 2},
                            {"hosting": "cluster", "platform": "kworkers", "brokers": 1},
                        ]
                    )
                ),
            }
            if kafka
            else {
                "name": f"q{k}",
                "consumer": f"w{k}",
                "batch_size": draw(st.sampled_from([1, 3, 10])),
                "batching_window": 0 if fifo else draw(st.sampled_from([0, "200ms", "1s"])),
                "maximum_concurrency": draw(st.sampled_from([None, 2, 5])),
                "visibility_timeout": draw(st.sampled_from(["500ms", "2s", "30s"])),
                "max_receive_count": draw(st.sampled_from([None, 1, 2])),
                "function_response_types": draw(st.sampled_from([[], ["ReportBatchItemFailures"]])),
                **(
                    {
                        "fifo": True,
                        "groups": draw(st.sampled_from([1, 3])),
                        "send_quota": draw(st.sampled_from([None, 5])),
                        "deduplication": draw(st.booleans()),
                    }
                    if fifo
                    else {}
                ),
            }
        )
        publisher = services[draw(st.integers(0, n - 2))]  # w{k} may call s{n-1}: no loop
        publish = {"publish": f"q{k}", "probability": draw(st.sampled_from([1.0, 0.5]))}
        publisher["steps"] = [*publisher["steps"], publish]
        services.append(
            {
                "name": f"w{k}",
                "entry": 0,
                "handler": {"dist": "exponential", "mean": draw(st.sampled_from(["5ms", "50ms"]))},
                "error_rate": draw(st.sampled_from([0.0, 0.2])),
                "steps": [{"call": f"s{n - 1}", "timeout": "1s"}] if draw(st.booleans()) else [],
            }
        )
    if draw(st.booleans()):  # an EventBridge bus fed by s0, its rules to later services / queues
        targets = [f"s{j}" for j in range(1, n)] + [q["name"] for q in queues]
        rules = [
            {
                "name": f"r{r}",
                "target": draw(st.sampled_from(targets)),
                "probability": draw(st.sampled_from([1.0, 0.5])),
                "rate_limit": draw(st.sampled_from([300, 5])),
                "retry": {"maximum_retry_attempts": draw(st.sampled_from([0, 2, 185]))},
            }
            for r in range(draw(st.integers(1, 3)))
        ]
        bus = {
            "name": "b0",
            "type": "eventbridge",
            "rules": rules,
            "latency": {"dist": "exponential", "mean": "50ms"},
            "http_timeout": draw(st.sampled_from(["5s", "30ms"])),
        }
        queues.append(bus)
        services[0]["steps"] = [*services[0]["steps"], {"publish": "b0"}]
    placement = {s["name"]: draw(st.sampled_from(CALLABLE)) for s in services[:n]}
    if spot:
        for i, s in enumerate(services[:n]):
            if i == 0 or draw(st.booleans()):
                placement[s["name"]] = draw(st.sampled_from(SPOT))
                mean = draw(st.sampled_from(["20ms", "1s"]))
                s["handler"] = {"dist": "exponential", "mean": mean}
    for q in queues:
        if q.get("type") == "kafka":
            on = ["eks-a", "fn", "fn-small", "kworkers", "kworkers-x", "fn-short", "kworkers-spot"]
        elif "consumer" in q:
            on = ["eks-a", "fn", "fn-small", "workers", "workers-tight", "ecs", "ecs-tt",
                  "fn-short", "fn-small-acct", "workers-pack", "workers-spot",
                  "workers-spot-nodrain"]  # fmt: skip
        else:
            continue
        if nodes_only and q["name"] == "q0":
            on = ["workers-pack", "workers-spot", "workers-spot-nodrain"]
        placement[q["consumer"]] = draw(st.sampled_from(on))
    _visible_for_the_function(queues, placement)
    for s in services:  # each call crosses by its pair's default or by a `via` it may name
        for step in s["steps"]:
            for c in step.get("parallel", [step] if "call" in step else []):
                via = draw(st.sampled_from(_vias(placement[s["name"]], placement[c["call"]])))
                if via is not None:
                    c["via"] = via
    arrivals: list[dict] = [{"steady": {"rate": draw(st.sampled_from(["20/s", "60/s"]))}}]
    if nodes_only:  # a burst: the workers scale up onto new nodes, then down and consolidate
        arrivals.append({"batch": {"at": ["5s"], "size": draw(st.sampled_from([100, 300]))}})
    return {
        "name": "eq",
        "duration": "60s",
        "warmup": "0s",
        "replications": 1,
        "seed": draw(st.integers(0, 10_000)),
        "workload": {"arrivals": arrivals},
        "platforms": PLATFORMS,
        "services": services,
        "queues": queues,
        "placements": [{"name": "p", "services": placement}],
        "network": {"invoke_latency": {"dist": "exponential", "mean": "3ms"}},
    }


def _visible_for_the_function(queues: list[dict], placement: dict[str, str]) -> None:
    """AWS refuses an event source mapping whose queue's visibility timeout is below the
    function's timeout (sim.systems.spec): raise a drawn one to the Lambda consumer's timeout."""
    by_name = {p["name"]: p for p in PLATFORMS}
    for q in queues:
        plat = by_name.get(placement.get(q.get("consumer", ""), ""), {})
        if q.get("type", "sqs") != "sqs" or plat.get("type") != "lambda":
            continue
        timeout = plat.get("timeout", "3s")
        if parse_duration(q.get("visibility_timeout", "30s")) < parse_duration(timeout):
            q["visibility_timeout"] = timeout


def _same(data: dict) -> None:
    sc = make_scenario(data)
    fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert_same_system(fast, ref)


def assert_same_system(fast: Any, ref: Any) -> None:
    """Outcomes and counts exact, times to 1e-9 s: end to end, per service, per queue."""
    a, b = fast.stats.sample, ref.stats.sample
    assert a["arrival"].size == b["arrival"].size
    for col in ("outcome", "cold"):
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    # times: the two engines sum the same terms in a different order (1 ulp apart at most)
    for col in ("arrival", "start", "end", "wait"):
        np.testing.assert_allclose(a[col], b[col], rtol=0, atol=1e-9, err_msg=col)
    fs, rs = fast.extra["system"], ref.extra["system"]
    for name in fs["services"]:
        x, y = fs["services"][name], rs["services"][name]
        assert (x["requests"], x["attempts"], x["outcomes"]) == (
            y["requests"],
            y["attempts"],
            y["outcomes"],
        ), name
        assert x["latency_ms"] == pytest.approx(y["latency_ms"], rel=1e-9, abs=1e-9), name
        assert x.get("async") == y.get("async"), name  # Lambda's asynchronous queue
        assert (x["timeouts"], x["cold_starts"]) == (y["timeouts"], y["cold_starts"]), name
        assert x["monthly_cost_usd"] == pytest.approx(y["monthly_cost_usd"], rel=1e-9), name
    assert fs["async_completion_ms"] == pytest.approx(rs["async_completion_ms"], rel=1e-9, abs=1e-9)
    assert fs["async_completed"] == rs["async_completed"]
    assert fs["flows"] == rs["flows"]  # every edge's count (entry, calls and their ok, publishes)
    for name in fs["queues"]:
        x, y = fs["queues"][name], rs["queues"][name]
        # every count of the queue or bus (sent, received, deleted, dlq, depth_max, retries, ...)
        keys = [k for k, v in x.items() if isinstance(v, int | float) and "cost" not in k]
        keys += ["rules"] if "rules" in x else []
        assert [x[k] for k in keys] == [y[k] for k in keys], name
        assert x["time_in_queue_ms"] == pytest.approx(y["time_in_queue_ms"], rel=1e-9, abs=1e-9)
        assert x["timeline"]["in_flight"] == y["timeline"]["in_flight"], name
    assert [(d.time_s, d.after) for d in fast.decisions] == [
        (d.time_s, d.after) for d in ref.decisions
    ]
    # node lives, drains and spot notices (sim.systems.nodes)
    assert fs.get("nodes") == rs.get("nodes")


# Free search (no derandomize): a timeline sample at the very instant of a data event (a pod
# ready at a whole second receives, its visibility timeout ends on the sample grid) reads the
# state before that instant's data events in both engines (docs/model.md 18, the timeline;
# test_timeline_samples_on_the_grid_see_the_state_before_that_instants_events).
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems())
def test_heap_engine_equals_per_request_reference(data: dict) -> None:
    _same(data)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems(nodes_only=True))
def test_heap_engine_equals_reference_on_node_pools(data: dict) -> None:
    """Per-pod placement, consolidation of underutilised nodes and spot notices, drains and
    shortages (sim.systems.nodes) under random systems whose first queue feeds KEDA workers on
    `workers-pack`, `workers-spot` or `workers-spot-nodrain` (a kill cutting receives)."""
    _same(data)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems(spot=True))
def test_heap_engine_equals_reference_on_spot_pods(data: dict) -> None:
    """Spot kills cutting requests in service (failed or sent again, drained or not, calls and
    fan-outs under way) under random systems with services on spot pods (SpotPodStation)."""
    _same(data)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(systems(kafka_only=True))
def test_heap_engine_equals_reference_on_kafka_topics(data: dict) -> None:
    """Kafka topics (sim.systems.kafka): partitions, keys, Lambda pollers with batches, windows
    and retries, pod members fixed or KEDA-scaled on the lag, rebalance pauses."""
    _same(data)


@pytest.mark.parametrize("visibility", ["10m", "30s", "45s"])
def test_timeline_samples_on_the_grid_see_the_state_before_that_instants_events(
    visibility: str,
) -> None:
    """KEDA workers whose pods get ready on whole seconds (a 5 s start-up after a sync at 15 s
    or 30 s: ready at 20 s, 35 s) and receive then, so receives, ends of one-minute jobs and ends
    of 30 s / 45 s visibility timeouts fall on the 2.5 s timeline grid: every sample (721) is the
    state before that instant's data events in both engines (the reference ran them in SimPy's
    scheduling order before: 6 to 24 samples differed)."""
    from test_systems_cluster import _consolidation

    data = _consolidation(["466s"])
    data["queues"][0]["visibility_timeout"] = visibility
    sc = make_scenario(data)
    fast = run_one(sc, "p", 0, ROOT, keep_all_rows=True)
    ref = run_one(sc, "p", 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
    assert_same_system(fast, ref)
    a = fast.extra["system"]["queues"]["jobs"]["timeline"]
    assert a == ref.extra["system"]["queues"]["jobs"]["timeline"]
    assert a["time_s"][:3] == [0.0, 2.5, 5.0] and len(a["time_s"]) == 721  # every 2.5 s


def test_equivalence_covers_timeouts_retries_throttles_and_errors() -> None:
    """A fixed system where every mechanism fires (so the random ones are not vacuous)."""
    services = [
        {
            "name": "s0",
            "entry": 1,
            "handler": {"dist": "exponential", "mean": "20ms"},
            "steps": [
                {"work": 0.5},
                {"call": "s1", "timeout": "30ms", "retries": 2},
                {"parallel": [{"call": "s1", "timeout": "1s"}, {"call": "s2"}]},
                {"publish": "s2", "probability": 0.5},
                {"work": 0.5},
            ],
        },
        {"name": "s1", "handler": {"dist": "exponential", "mean": "20ms"}, "error_rate": 0.1},
        {"name": "s2", "handler": {"dist": "exponential", "mean": "5ms"}},
    ]
    data = {
        "name": "eq",
        "duration": "60s",
        "replications": 1,
        "seed": 5,
        "workload": {"arrivals": [{"steady": {"rate": "60/s"}}]},
        "platforms": PLATFORMS,
        "services": services,
        "placements": [{"name": "p", "services": {"s0": "fn", "s1": "eks-b", "s2": "eks-a"}}],
    }
    _same(data)
    sc = make_scenario(data)
    run = run_one(sc, "p", 0, ROOT)
    out = run.stats.outcomes
    assert out["timed_out"] > 0 and out["throttled"] > 0 and out["rejected"] > 0, out
    # every entry request that ran calls s1 twice at most without retries: more means retries
    ran = run.stats.requests - out["throttled"]
    assert run.extra["system"]["services"]["s1"]["attempts"] > 2 * ran


def test_times_one_ulp_apart_are_the_same_request() -> None:
    """Hypothesis found it: the heap engine and the reference sum a start time's terms in another
    order (6.9e-18 s apart); outcomes stay exact, times compare to 1e-9 s."""
    kube = {"type": "kubernetes", "routing": "ideal_fifo", "cluster": {"node": "m5.xlarge"}}
    data = {
        "name": "eq",
        "duration": "60s",
        "warmup": "0s",
        "replications": 1,
        "seed": 40,
        "workload": {"arrivals": [{"steady": {"rate": "60/s"}}]},
        "platforms": [
            {**kube, "name": "eks-a", "replicas": 2, "pod": {"concurrency": 2, "cpu": 0.5}},
        ],
        "services": [
            {"name": "s0", "entry": 1, "handler": {"dist": "exponential", "mean": "5ms"}},
            {"name": "s1", "entry": 0, "handler": {"dist": "exponential", "mean": "5ms"}},
        ],
        "placements": [{"name": "p", "services": {"s0": "eks-a", "s1": "eks-a"}}],
    }
    _same(data)


def test_equivalence_covers_queue_mechanisms() -> None:
    """A fixed system where every queue mechanism fires: poller scale-up past the first 5
    batches, throttled batches back after the visibility timeout, whole-batch failures, the DLQ,
    a batching window, and KEDA scaling pod workers on the simulated queue."""
    work = {"dist": "exponential", "mean": "5ms"}
    services = [
        {
            "name": "s0",
            "entry": 1,
            "handler": work,
            "steps": [
                {"call": "w1", "timeout": "1s"},
                {"publish": "q0"},
                {"publish": "q1"},
                {"publish": "q2"},
            ],
        },
        {"name": "w0", "handler": {"dist": "constant", "value": "500ms"}},
        {"name": "w1", "handler": work, "error_rate": 0.3},
        {"name": "w2", "handler": {"dist": "exponential", "mean": "100ms"}},
    ]
    queues = [
        {"name": "q0", "consumer": "w0", "batch_size": 1},
        {
            "name": "q1",
            "consumer": "w1",
            "batch_size": 10,
            "batching_window": "1s",
            "visibility_timeout": "3s",  # the Lambda consumer's timeout: AWS's least
            "max_receive_count": 2,
        },
        {"name": "q2", "consumer": "w2", "batch_size": 1},
    ]
    data = {
        "name": "eq",
        "duration": "60s",
        "warmup": "0s",
        "replications": 1,
        "seed": 3,
        "workload": {"arrivals": [{"steady": {"rate": "60/s"}}]},
        "platforms": [*PLATFORMS, {"name": "fn-big", "type": "lambda", "memory": 1024}],
        "services": services,
        "queues": queues,
        "placements": [
            {
                "name": "p",
                "services": {"s0": "eks-b", "w0": "fn-big", "w1": "fn-small", "w2": "workers"},
            }
        ],
    }
    _same(data)
    run = run_one(make_scenario(data), "p", 0, ROOT)
    sysx = run.extra["system"]
    q, svc = sysx["queues"], sysx["services"]
    # 60/s x 0.5 s = 30 batches at once in steady state: more than the first 5 pollers
    assert svc["w0"]["instances_peak"] > 5
    assert svc["w1"]["throttles"] > 0 and q["q1"]["received"] > q["q1"]["sent"]
    assert q["q1"]["dlq"] > 0
    assert run.decisions, "KEDA never scaled the workers"


def test_a_publish_loop_with_probability_one_is_an_input_error() -> None:
    """b publishes to q, whose consumer calls b again: every plan nests without end. It was a
    RecursionError (a crash); it is an InputError naming `services`."""
    work = {"dist": "exponential", "mean": "5ms"}
    data = {
        "name": "loop",
        "duration": "10s",
        "replications": 1,
        "workload": {"arrivals": [{"steady": {"rate": "5/s"}}]},
        "platforms": [{"name": "fn", "type": "lambda", "memory": 512}],
        "services": [
            {"name": "a", "entry": 1, "handler": work, "steps": [{"call": "b"}]},
            {"name": "b", "handler": work, "steps": [{"publish": "q"}]},
            {"name": "w", "handler": work, "steps": [{"call": "b"}]},
        ],
        "queues": [{"name": "q", "consumer": "w"}],
        "placements": [{"name": "p", "services": {"a": "fn", "b": "fn", "w": "fn"}}],
    }
    with pytest.raises(InputError, match=r"^services: .*loop back"):
        run_one(make_scenario(data), "p", 0, ROOT)


def test_equivalence_covers_buses_async_retries_and_fifo() -> None:
    """A fixed system where EventBridge retries and DLQs, Lambda's async throttle and error
    retries and age drops, and FIFO groups all fire, held to the reference."""
    services = [
        {
            "name": "s0",
            "entry": 1,
            "handler": {"dist": "exponential", "mean": "5ms"},
            "steps": [{"publish": "b0"}, {"publish": "s2", "probability": 0.3}],
        },
        {"name": "s1", "handler": {"dist": "exponential", "mean": "30ms"}, "error_rate": 0.3},
        {
            "name": "s2",
            "handler": {"dist": "exponential", "mean": "300ms"},
            "error_rate": 0.2,
            "async": {"maximum_event_age": "90s"},
        },
        {"name": "w0", "handler": {"dist": "exponential", "mean": "100ms"}, "error_rate": 0.1},
    ]
    bus = {
        "name": "b0",
        "type": "eventbridge",
        "latency": {"dist": "exponential", "mean": "50ms"},
        "http_timeout": "40ms",
        "rules": [
            {
                "name": "http",
                "target": "s1",
                "rate_limit": 20,
                "retry": {"maximum_retry_attempts": 2},
            },
            {"name": "fifo", "target": "q0", "probability": 0.5},
        ],
    }
    fifo = {
        "name": "q0",
        "consumer": "w0",
        "fifo": True,
        "groups": 3,
        "batch_size": 3,
        "visibility_timeout": "3s",  # the Lambda consumer's timeout: AWS's least
        "max_receive_count": 2,
    }
    data = {
        "name": "eq",
        "duration": "400s",
        "warmup": "0s",
        "replications": 1,
        "seed": 3,
        "workload": {"arrivals": [{"steady": {"rate": "8/s"}}]},
        "platforms": PLATFORMS,
        "services": services,
        "queues": [bus, fifo],
        "placements": [
            {"name": "p", "services": {"s0": "eks-b", "s1": "eks-rr", "s2": "fn-small", "w0": "fn"}}
        ],
    }
    _same(data)
    s = run_one(make_scenario(data), "p", 0, ROOT).extra["system"]
    b, a = s["queues"]["b0"], s["services"]["s2"]["async"]
    assert b["retries"] > 0 and b["dlq"] > 0 and b["delivered"] > 0, b
    assert a["throttle_retries"] > 0 and a["error_retries"] > 0 and a["expired"] > 0, a
    assert a["failed"] > 0 or a["expired"] > 0
    q = s["queues"]["q0"]
    assert q["fifo"] and q["dlq"] > 0 and q["received"] > q["deleted"], q
    # one batch in flight per group: the FIFO consumer never ran more than 3 at once
    assert s["services"]["w0"]["instances_peak"] <= 3


def test_equivalence_covers_serverless_container_scaling() -> None:
    """Cloud Run scaling out from zero and back in, Fargate target tracking on CPU scaling out
    (3 datapoints > 30%), a Fargate task pool draining an SQS queue, (placement p2) Container
    Apps' http rule scaling from zero, (p3) Knative's KPA from zero and back and Flex scaling out
    and in, (p4) Knative pods on a node pool and an always-ready Flex instance: both engines
    alike."""
    work = {"dist": "exponential", "mean": "40ms"}
    services = [
        {
            "name": "s0",
            "entry": 1,
            "handler": work,
            "cpu_bound": 1.0,
            "steps": [
                {"work": 0.5},
                {"call": "s1", "timeout": "2s"},
                {"publish": "q0"},
                {"work": 0.5},
            ],
        },
        {"name": "s1", "handler": work, "cpu_bound": 1.0},
        {"name": "w0", "handler": {"dist": "exponential", "mean": "50ms"}},
    ]
    data = {
        "name": "eq",
        "duration": "6m",
        "warmup": "0s",
        "replications": 1,
        "seed": 3,
        "workload": {
            "arrivals": [
                {"steady": {"rate": "30/s", "end": "4m"}},
                {"steady": {"rate": "2/s", "start": "4m"}},
            ]
        },
        "platforms": PLATFORMS,
        "services": services,
        "queues": [{"name": "q0", "consumer": "w0"}],
        "placements": [
            {"name": "p", "services": {"s0": "ecs-tt", "s1": "run", "w0": "ecs"}},
            {"name": "p2", "services": {"s0": "ecs", "s1": "aca", "w0": "ecs-tt"}},
            {"name": "p3", "services": {"s0": "ecs", "s1": "kn", "w0": "ecs"}},
            {"name": "p4", "services": {"s0": "kn-nodes", "s1": "run", "w0": "ecs"}},
        ],
    }
    _same(data)
    sc = make_scenario(data)
    for p in ("p2", "p3", "p4"):
        fast = run_one(sc, p, 0, ROOT, keep_all_rows=True)
        ref = run_one(sc, p, 0, ROOT, keep_all_rows=True, models={"system": ReferenceSystem})
        assert_same_system(fast, ref)
        if p == "p3":  # the KPA up (panic) and back down
            kpa = [d for d in fast.decisions if d.kind == "s1:kpa"]
            assert any(d.after > d.before for d in kpa) and any(d.after < d.before for d in kpa)
            assert kpa[0].before == 0 and kpa[0].time_s % 2 > 0, kpa  # poked: not at a tick
        if p == "p4":  # Knative pods Pending on the node pool (one pod per m5.large)
            assert any(d.kind == "s0:kpa" and d.after > d.before for d in fast.decisions)
            assert any(d.kind == "nodes:kn-nodes" for d in fast.decisions)
        if p == "p2":
            assert any(d.kind == "s1:keda_hpa" and d.after > d.before for d in fast.decisions)
    run = run_one(make_scenario(data), "p", 0, ROOT)
    kinds = {d.kind for d in run.decisions}
    assert "s0:target_tracking_scale_out" in kinds, kinds
    ups = [d for d in run.decisions if d.kind == "s1:cloud_run"]
    assert any(d.after > d.before for d in ups) and any(d.after < d.before for d in ups), ups
