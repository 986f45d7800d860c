"""Scenario keys of a system (issue 17): `services`, `queues` and `placements`.

A system is named services, each with its own handler time and the steps a request takes there
(work, synchronous calls that hold the caller's slot, asynchronous publishes to a queue or to a
service), queues between them, and alternative placements of the services on the scenario's
platforms. Light: no kernel, no scipy/pandas (the `schema` command imports it).
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from sim.config import Cpu, Duration, Fraction, MemoryMB, Strict, format_path
from sim.distributions import Distribution, coerce_distribution
from sim.platforms.lambda_spec import Backoff
from sim.pricing.tables import Bytes
from sim.systems.eventbridge_spec import AsyncInvokeSpec, BusSpec
from sim.systems.hops import VIAS, NetworkSpec, Size, Via, check_via, default_via

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]

# Platform types whose pods a spot kill can cut in a system (sim.systems.engine SPOT_STATIONS)
CLUSTER_SPOT = ("kubernetes", "knative")

# Client defaults of a synchronous call, from the AWS SDKs' "standard" retry mode (botocore
# retries/standard.py; AWS SDKs and Tools Reference Guide, "Retry behavior"): 3 attempts in total
# (2 retries), full-jitter exponential backoff (base sim.defaults.CLIENT_BACKOFF_BASE_S, cap 20 s)
# and botocore's default read timeout of 60 s.
CALL_TIMEOUT_S = 60.0
CALL_RETRIES = 2
# SQS defaults (Amazon SQS Developer Guide, "Visibility timeout": default 30 s) and Lambda's SQS
# event source mapping (lambda/latest/dg/services-sqs-parameters.html: BatchSize 10,
# MaximumBatchingWindowInSeconds 0; services-sqs-scaling.html: "Lambda starts processing five
# batches at a time ... increases ... by up to 300 more instances per minute. The maximum number of
# batches that an event source mapping can process simultaneously is 1,000").
SQS_VISIBILITY_TIMEOUT_S = 30.0
# Lambda refuses an SQS event source mapping whose queue hides a message for less than the
# function's timeout (lambda/latest/dg/services-sqs-configure.html: "Your function's timeout must be
# less than or equal to the queue's visibility timeout. Lambda validates this requirement when you
# create or update an event source mapping"; CreateEventSourceMapping answers
# InvalidParameterValueException "Queue visibility timeout: 30 seconds is less than Function
# timeout: 60 seconds") and recommends "at least six times the configuration timeout".
ESM_VISIBILITY_FACTOR = 6
# SQS FIFO (SQS Developer Guide): "300 transactions per second, per API action" without high
# throughput mode (quotas-messages.html, troubleshooting-fifo-throttling-issues.html), and the
# 5-minute deduplication interval (FIFO-queues-exactly-once-processing.html).
FIFO_SENDS_PER_S = 300.0
FIFO_DEDUP_INTERVAL_S = 300.0
ESM_BATCH_SIZE = 10
ESM_START_BATCHES = 5
ESM_SCALE_UP_PER_MINUTE = 300
ESM_MAX_BATCHES = 1000
# Kafka topics (sim.systems.kafka; docs/model.md §18 "Kafka topics" has the sources):
# - broker `num.partitions` default 1 (Kafka broker configs);
# - Lambda's Kafka/MSK event source mapping (lambda/latest/dg/with-msk-configure.html,
#   services-msk-parameters / with-kafka-parameters): BatchSize default 100,
#   MaximumBatchingWindowInSeconds default 500 ms for Kafka sources; on-demand poller scaling
#   (kafka-scaling-modes.html): one consumer at first, "in one-minute intervals, Lambda evaluates
#   the offset lag of all the partitions", at most one consumer per partition;
# - the rebalance pause: the broker's group.initial.rebalance.delay.ms default 3000 ms (Kafka
#   broker configs), the time a (re)forming group waits for members before assigning partitions.
KAFKA_PARTITIONS = 1
KAFKA_ESM_BATCH_SIZE = 100
KAFKA_ESM_BATCHING_WINDOW_S = 0.5
KAFKA_ESM_START_POLLERS = 1
KAFKA_ESM_EVALUATION_S = 60.0
KAFKA_REBALANCE_PAUSE_S = 3.0
# - a killed consumer (no LeaveGroup) stays a member until its session times out: the consumer's
#   session.timeout.ms, default 45000 since Kafka 3.0 (KIP-735; kafka.apache.org/documentation/
#   #consumerconfigs_session.timeout.ms; heartbeats every heartbeat.interval.ms, 3000).
KAFKA_SESSION_TIMEOUT_S = 45.0
# Kafka on the cluster (`hosting: cluster`, sim.systems.nodes): the brokers as the pods of a Strimzi
# KafkaNodePool on a Kubernetes platform's nodes. Strimzi's example (strimzi-kafka-operator
# packaging/examples/kafka/kafka-with-dual-role-nodes.yaml, main, Kafka 4.4.0): 3 replicas with
# the controller and broker roles, each a jbod persistent-claim volume of 100Gi (EBS gp3 on EKS).
# ASSUMPTION: Strimzi sets no resource requests (its examples leave `resources` out); 1 vCPU and
# 4 GiB per broker pod, so the default m5.large node holds one broker.
STRIMZI_STORAGE_GIB = 100.0
BROKER_CPU = 1.0
BROKER_MEMORY_MB = 4096.0
MSK_STORAGE_GIB = 1000.0  # the MSK console's default EBS storage per broker


class CallStep(Strict):
    """A synchronous call: the caller holds its slot until the answer, a timeout or the last
    failed retry. `probability` and `count`: the call is made `count` times (in sequence) with
    that probability per request."""

    call: str = Field(min_length=1, description="the service called")
    probability: Fraction = Field(1.0, ge=0, le=1)
    count: int = Field(1, ge=1, le=100)
    timeout: Duration = Field(CALL_TIMEOUT_S, gt=0, description="client timeout per attempt")
    retries: int = Field(CALL_RETRIES, ge=0, le=20, description="retries after a timeout or error")
    backoff: Backoff = Field(default_factory=Backoff)
    via: Via | None = Field(
        None, description="how the call crosses: api_gateway, invoke, load_balancer, direct"
    )
    request_size: Size | None = Field(None, description="bytes per request (default: network's)")
    response_size: Size | None = Field(None, description="bytes per response (default: network's)")


class ParallelStep(Strict):
    """A fan-out: the calls start together and the caller waits for all of them."""

    parallel: list[CallStep] = Field(min_length=1)


class PublishStep(Strict):
    """An asynchronous message to a queue (by queue name) or an event straight to a service
    (fire and forget: the caller goes on at once)."""

    publish: str = Field(min_length=1, description="a queue name or a service name")
    probability: Fraction = Field(1.0, ge=0, le=1)
    count: int = Field(1, ge=1, le=100)


class WorkStep(Strict):
    """A share of the service's handler time (the shares of a service add up to 1)."""

    work: Fraction = Field(gt=0, le=1)


def _step_kind(kinds: dict[str, type]) -> Any:
    """A discriminator for a step: the kind is the key that names it (`work`, `call`, ...). A
    step with none of them takes the closest key's kind, so a typo (`publsh`) reports that one
    kind's problems instead of every kind's missing key. Tags are the class names (a tag equal
    to a key would read as that key in error paths, sim.config._locate)."""

    def kind(v: Any) -> str | None:
        if not isinstance(v, dict):
            return type(v).__name__ if type(v) in kinds.values() else None
        hit = next((k for k in kinds if k in v), None)
        if hit is None:
            close = (difflib.get_close_matches(str(key), list(kinds), n=1) for key in v)
            hit = next((c[0] for c in close if c), None)
        return kinds[hit].__name__ if hit else None

    return Discriminator(
        kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs one of the keys " + ", ".join(kinds),
    )


Branch = Annotated[
    Annotated[CallStep, Tag("CallStep")] | Annotated[PublishStep, Tag("PublishStep")],
    _step_kind({"call": CallStep, "publish": PublishStep}),
]


class OneOfStep(Strict):
    """Exactly one of the branches (by its `probability`; none with the remainder)."""

    one_of: list[Branch] = Field(min_length=1)

    @model_validator(mode="after")
    def _sum(self) -> OneOfStep:
        total = sum(b.probability for b in self.one_of)
        if total > 1 + 1e-9:
            raise ValueError(f"the branches' probabilities add up to {total:g} > 1")
        return self


Step = Annotated[
    Annotated[WorkStep, Tag("WorkStep")]
    | Annotated[CallStep, Tag("CallStep")]
    | Annotated[ParallelStep, Tag("ParallelStep")]
    | Annotated[PublishStep, Tag("PublishStep")]
    | Annotated[OneOfStep, Tag("OneOfStep")],
    _step_kind(
        {
            "work": WorkStep,
            "call": CallStep,
            "parallel": ParallelStep,
            "publish": PublishStep,
            "one_of": OneOfStep,
        }
    ),
]


class ServiceSpec(Strict):
    name: str = Field(min_length=1)
    handler: Dist = Field(description="handler time per request at 1 vCPU (own work, no calls)")
    cpu_bound: Fraction = Field(
        1.0, ge=0, le=1, description="share of the handler time that scales with CPU"
    )
    memory: MemoryMB | None = Field(
        None, ge=128, le=10240, description="Lambda memory of this function (default: platform's)"
    )
    entry: float = Field(
        0.0, ge=0, description="share of the workload's arrivals entering here (0: not an entry)"
    )
    error_rate: Fraction = Field(
        0.0, ge=0, le=1, description="probability a handler run fails (an error answer)"
    )
    steps: list[Step] = Field(
        default_factory=list, description="in order; without `work` steps all work comes first"
    )
    async_invoke: AsyncInvokeSpec = Field(
        default_factory=AsyncInvokeSpec,
        alias="async",
        description="Lambda asynchronous invocation (events to this function)",
    )

    @model_validator(mode="after")
    def _work_shares(self) -> ServiceSpec:
        shares = [s.work for s in self.steps if isinstance(s, WorkStep)]
        if shares and abs(sum(shares) - 1.0) > 1e-9:
            raise ValueError(f"the `work` shares add up to {sum(shares):g}, not 1")
        return self


class QueueSpec(Strict):
    """An SQS queue (standard, or FIFO with message groups) and the event source mapping (or
    workers) that consume it."""

    name: str = Field(min_length=1)
    type: Literal["sqs"] = "sqs"
    consumer: str = Field(min_length=1, description="the service that processes its messages")
    batch_size: int = Field(ESM_BATCH_SIZE, ge=1, le=10000, description="Lambda ESM BatchSize")
    batching_window: Duration = Field(
        0.0, ge=0, le=300, description="Lambda ESM MaximumBatchingWindowInSeconds"
    )
    maximum_concurrency: int | None = Field(
        None, ge=2, le=1000, description="Lambda ESM ScalingConfig.MaximumConcurrency"
    )
    visibility_timeout: Duration = Field(SQS_VISIBILITY_TIMEOUT_S, ge=0, le=43200)
    max_receive_count: int | None = Field(
        None, ge=1, le=1000, description="redrive policy: receives before the DLQ (None: no DLQ)"
    )
    message_size: Bytes = Field(1024.0, gt=0, le=1048576, description="bytes per message")
    fifo: bool = Field(False, description="a FIFO queue (message groups, order within a group)")
    groups: int = Field(
        1, ge=1, le=100_000, description="FIFO: MessageGroupIds, each message's drawn uniformly"
    )
    deduplication: bool = Field(
        True,
        description="FIFO: a send repeating one already accepted in the last 5 minutes (a retried "
        "or re-run publish: content-based deduplication, or the publisher's deduplication id) is "
        "accepted and not delivered",
    )
    high_throughput: bool = Field(
        False, description="FIFO high throughput mode (no 300 SendMessage/s quota by default)"
    )
    send_quota: float | None = Field(
        None,
        gt=0,
        description="FIFO: SendMessage calls per second before ThrottlingException (default 300; "
        "none with high_throughput)",
    )
    function_response_types: list[Literal["ReportBatchItemFailures"]] = Field(
        default_factory=list,
        description="Lambda ESM FunctionResponseTypes: [ReportBatchItemFailures] returns only "
        "a batch's failed messages to the queue (default: the whole batch)",
    )

    @model_validator(mode="after")
    def _fifo(self) -> QueueSpec:
        # lambda/latest/dg/services-sqs-parameters.html: "For FIFO queues, the maximum is 10";
        # "Batching window is not supported for FIFO queues".
        if not self.fifo and self.groups != 1:
            raise ValueError("`groups` are message groups of a FIFO queue: add `fifo: true`")
        if self.fifo and self.batch_size > 10:
            raise ValueError("a FIFO queue's batch_size is at most 10 (Lambda's limit)")
        if self.fifo and self.batching_window > 0:
            raise ValueError("Lambda supports no batching_window on a FIFO queue")
        if not self.fifo and (self.high_throughput or self.send_quota is not None):
            raise ValueError("`high_throughput` and `send_quota` are FIFO settings: add fifo: true")
        return self

    @property
    def sends_per_second(self) -> float | None:
        """The FIFO SendMessage quota (SQS Developer Guide, quotas-messages.html: "300
        transactions per second, per API method" without high throughput), None: unlimited."""
        if not self.fifo:
            return None
        if self.send_quota is not None:
            return self.send_quota
        return None if self.high_throughput else FIFO_SENDS_PER_S


def _default_sqs(v: Any) -> Any:
    return {"type": "sqs", **v} if isinstance(v, dict) and "type" not in v else v


class KafkaSpec(Strict):
    """A Kafka topic and the one consumer group (the `consumer` service) that reads it."""

    name: str = Field(min_length=1)
    type: Literal["kafka"]
    consumer: str = Field(min_length=1, description="the service of the consumer group")
    partitions: int = Field(KAFKA_PARTITIONS, ge=1, le=10000)
    keys: int | None = Field(
        None,
        ge=1,
        le=10**9,
        description="distinct record keys, hashed to partitions (murmur2, as the Java producer); "
        "None: keyless records spread round robin",
    )
    batch_size: int = Field(
        KAFKA_ESM_BATCH_SIZE, ge=1, le=10000, description="Lambda ESM BatchSize (pods: 1 record)"
    )
    batching_window: Duration = Field(
        KAFKA_ESM_BATCHING_WINDOW_S,
        ge=0,
        le=300,
        description="Lambda ESM MaximumBatchingWindowInSeconds",
    )
    maximum_retry_attempts: int | None = Field(
        None,
        ge=0,
        le=10000,
        description="retries of a failed batch before it is discarded (None: until it succeeds)",
    )
    rebalance_pause: Duration = Field(
        KAFKA_REBALANCE_PAUSE_S,
        ge=0,
        le=300,
        description="no member fetches for this long after the group's membership changes",
    )
    session_timeout: Duration = Field(
        KAFKA_SESSION_TIMEOUT_S,
        ge=0,
        le=1800,
        description="consumer session.timeout.ms: a killed pod's consumer keeps its partitions "
        "(unconsumed) this long before the group rebalances without it (0: it leaves at once; "
        "a deleted pod leaves at once)",
    )
    message_size: Bytes = Field(1024.0, gt=0, le=1048576, description="bytes per record")
    hosting: Literal["msk", "cluster"] = Field(
        "msk",
        description="msk: Amazon MSK provisioned brokers; cluster: broker pods (Strimzi) on the "
        "nodes of the Kubernetes platform `platform`",
    )
    platform: str | None = Field(
        None, description="hosting cluster: the Kubernetes platform whose nodes run the brokers"
    )
    brokers: int = Field(
        3, ge=1, le=90, description="brokers (MSK: one per AZ in 3 AZs; cluster: Strimzi's 3)"
    )
    broker_type: str = Field("kafka.m5.large", description="MSK broker instance type")
    storage: float | None = Field(
        None,
        gt=0,
        le=16384,
        description="EBS storage per broker, GiB (default: MSK 1000, the console's; cluster 100, "
        "Strimzi's example gp3 volume)",
    )
    broker_cpu: Cpu = Field(BROKER_CPU, gt=0, description="hosting cluster: CPU request per broker")
    broker_memory: MemoryMB = Field(
        BROKER_MEMORY_MB, gt=0, description="hosting cluster: memory request per broker (MB)"
    )

    @property
    def storage_gib(self) -> float:
        if self.storage is not None:
            return self.storage
        return STRIMZI_STORAGE_GIB if self.hosting == "cluster" else MSK_STORAGE_GIB

    @model_validator(mode="after")
    def _hosted(self) -> KafkaSpec:
        if self.hosting == "cluster":
            if self.platform is None:
                raise ValueError("hosting cluster: name the Kubernetes platform in `platform`")
            return self
        if self.platform is not None:
            raise ValueError("`platform` is for hosting cluster (MSK runs its own brokers)")
        from sim.pricing.tables import tiers

        try:
            tiers(f"msk.broker.{self.broker_type}")
        except KeyError:
            raise ValueError(
                f"no MSK price for broker_type {self.broker_type!r} (prices.yaml msk.broker.*)"
            ) from None
        return self


# A `queues:` entry by `type`: an SQS queue (the default), an EventBridge bus or a Kafka topic.
AnyQueue = Annotated[
    QueueSpec | BusSpec | KafkaSpec,
    Field(discriminator="type"),
    BeforeValidator(_default_sqs),
]


class PlacementSpec(Strict):
    """One way to run the system: every service -> the name of a platform in `platforms`."""

    name: str = Field(min_length=1)
    services: dict[str, str] = Field(min_length=1)
    nodes: Literal["simulated", "at_once"] = Field(
        "simulated",
        description="simulated: pods wait Pending for room, nodes launched and removed by the "
        "node autoscaler (sim.systems.nodes); at_once: every pod has a node at once and the bill "
        "counts just enough nodes at every moment (the idealised cluster)",
    )

    @property
    def type(self) -> str:  # a placement stands where a platform stands in the summary
        return "system"


# Pod picks a system's Kubernetes station implements (sim.systems.engine).
SYSTEM_ROUTINGS = ("ideal_fifo", "round_robin", "random")


def calls_of(step: Any) -> list[CallStep]:
    if isinstance(step, CallStep):
        return [step]
    if isinstance(step, ParallelStep):
        return list(step.parallel)
    if isinstance(step, OneOfStep):
        return [b for b in step.one_of if isinstance(b, CallStep)]
    return []


def publishes_of(step: Any) -> list[PublishStep]:
    if isinstance(step, PublishStep):
        return [step]
    if isinstance(step, OneOfStep):
        return [b for b in step.one_of if isinstance(b, PublishStep)]
    return []


class SystemProblem(Exception):
    """A system-level problem and the key path it belongs to (sim.scenario turns it into an
    InputError naming the file, the key and its YAML line; `see`: other keys the message names,
    whose lines it adds). Not a ValueError, so that pydantic passes it through instead of losing
    the path."""

    def __init__(
        self, path: tuple[Any, ...], message: str, see: tuple[tuple[Any, ...], ...] = ()
    ) -> None:
        super().__init__(message)
        self.path, self.see = path, see


def check_system(
    services: list[ServiceSpec],
    queues: list[Any],
    placements: list[PlacementSpec],
    platform_specs: dict[str, Any],
    network: NetworkSpec | None = None,
) -> None:
    """Cross-checks: unknown names, synchronous cycles, queues nobody consumes or feeds,
    unplaced services, platform settings a system cannot run yet, hops (`via`) a placement cannot
    make. Raises SystemProblem."""
    platforms = {n: p.type for n, p in platform_specs.items()}
    names = [s.name for s in services]
    qnames = [q.name for q in queues]
    for what, items in (
        ("services", names),
        ("queues", qnames),
        ("placements", [p.name for p in placements]),
    ):
        dup = sorted({n for n in items if items.count(n) > 1})
        if dup:
            raise SystemProblem((what,), f"names must be unique; repeated: {', '.join(dup)}")
    clash = sorted(set(names) & set(qnames))
    if clash:
        raise SystemProblem(("queues",), f"a queue and a service share the name {clash[0]!r}")
    clash = sorted({p.name for p in placements} & set(platforms))
    if clash:
        raise SystemProblem(("placements",), f"placement {clash[0]!r} has a platform's name")
    known, fed = set(names), set()
    graph: dict[str, list[str]] = {n: [] for n in names}
    for i, s in enumerate(services):
        for j, step in enumerate(s.steps):
            where = ("services", i, "steps", j)
            for c in calls_of(step):
                if c.call not in known:
                    raise SystemProblem(
                        where, f"call to unknown service {c.call!r}{_hint(c.call, names)}"
                    )
                graph[s.name].append(c.call)
            for p in publishes_of(step):
                if p.publish not in known and p.publish not in qnames:
                    raise SystemProblem(
                        where,
                        f"publish to unknown queue or service {p.publish!r}"
                        + _hint(p.publish, names + qnames),
                    )
                fed.add(p.publish)
    if not any(s.entry > 0 for s in services):
        raise SystemProblem(("services",), "no entry service: give one service `entry: 1`")
    cycle = _sync_cycle(graph)
    if cycle:
        i = names.index(cycle[0])
        raise SystemProblem(
            ("services", i, "steps"),
            "synchronous calls form a cycle (each caller would wait for itself): "
            + " -> ".join(cycle),
        )
    bus_targets = _check_buses(queues, known, names, fed)
    for k, q in enumerate(queues):
        if isinstance(q, BusSpec):
            continue
        if q.consumer not in known:
            raise SystemProblem(
                ("queues", k, "consumer"),
                f"queue {q.name!r} is consumed by unknown service {q.consumer!r}"
                + _hint(q.consumer, names),
            )
        if q.name not in fed:
            raise SystemProblem(("queues", k), f"nothing publishes to queue {q.name!r}")
        if q.type == "kafka" and q.hosting == "cluster":
            why = _hosting_problem(q, platform_specs)
            if why:
                raise SystemProblem(("queues", k, "platform"), why)
    kinds: dict[str, set[str]] = {}  # consumer -> the types of queue it reads
    for q in queues:
        if not isinstance(q, BusSpec):
            kinds.setdefault(q.consumer, set()).add(q.type)
    called = {c for targets in graph.values() for c in targets} | (fed & known) | bus_targets
    called |= {s.name for s in services if s.entry > 0}
    for k, pl in enumerate(placements):
        for svc, plat in pl.services.items():
            if svc not in known:
                raise SystemProblem(
                    ("placements", k, "services", svc),
                    f"unknown service {svc!r}{_hint(svc, names)}",
                )
            if plat not in platforms:
                raise SystemProblem(
                    ("placements", k, "services", svc),
                    f"unknown platform {plat!r}{_hint(plat, list(platforms))}",
                )
            if platforms[plat] == "wasm" and svc in kinds:
                what = "a Kafka topic" if "kafka" in kinds[svc] else "an SQS queue"
                raise SystemProblem(
                    ("placements", k, "services", svc),
                    f"{svc!r} consumes {what}; a Wasm platform cannot (no such trigger)",
                )
            spec = platform_specs[plat]
            if spec.type == "kubernetes" and "kafka" in kinds.get(svc, set()) and svc in called:
                raise SystemProblem(
                    ("placements", k, "services", svc),
                    f"{svc!r} consumes a Kafka topic on Kubernetes: its pods are the consumer "
                    "group's members and take no calls (give the calls another service)",
                )
            why = _station_problem(spec, kinds.get(svc, set())) or _scaling_problem(
                spec, kinds.get(svc, set())
            )
            if why:
                raise SystemProblem(("placements", k, "services", svc), f"platform {plat!r}: {why}")
            spot = spec.type in CLUSTER_SPOT and spec.cluster.spot is not None
            if spot and getattr(pl, "nodes", "simulated") != "simulated":
                raise SystemProblem(
                    ("placements", k, "nodes"),
                    f"platform {plat!r} has `cluster.spot`: spot nodes are simulated "
                    "(`nodes: simulated`), not with the idealised `at_once` count",
                )
        _check_visibility(queues, pl, k, platform_specs)
        missing = [n for n in names if n not in pl.services]
        if missing:
            raise SystemProblem(
                ("placements", k, "services"),
                f"placement {pl.name!r} leaves {missing[0]!r} unplaced",
            )
    _check_hops(services, placements, platform_specs, network)


def _check_visibility(
    queues: list[Any], pl: PlacementSpec, k: int, platform_specs: dict[str, Any]
) -> None:
    """An SQS queue consumed by a Lambda function (an event source mapping) hides a message for
    at least the function's timeout, or AWS refuses the mapping (ESM_VISIBILITY_FACTOR)."""
    order = list(platform_specs)
    for j, q in enumerate(queues):
        if getattr(q, "type", None) != "sqs" or q.consumer not in pl.services:
            continue
        plat = platform_specs.get(pl.services[q.consumer])
        if plat is None or plat.type != "lambda" or q.visibility_timeout >= plat.timeout:
            continue
        where = ("platforms", order.index(plat.name), "timeout")
        raise SystemProblem(
            ("queues", j, "visibility_timeout"),
            f"queue {q.name!r}: visibility_timeout {q.visibility_timeout:g}s is less than the "
            f"timeout {plat.timeout:g}s of its consumer {q.consumer!r} on Lambda platform "
            f"{plat.name!r} ({format_path(where)}, placement {pl.name!r}); AWS refuses such an "
            "event source mapping (InvalidParameterValueException). Set visibility_timeout to at "
            f"least {ESM_VISIBILITY_FACTOR} x the function timeout "
            f"({ESM_VISIBILITY_FACTOR * plat.timeout:g}s, AWS's recommendation) or lower the "
            "timeout",
            see=(where,),
        )


# Platform types with a system station (sim.systems.engine; sim.systems.stations_containers,
# sim.systems.stations_knact, sim.systems.stations_flex).
SYSTEM_STATION_TYPES = (
    "lambda", "wasm", "kubernetes", "cloud_run", "fargate", "container_apps", "knative",
    "azure_flex", "lambda_managed",
)  # fmt: skip


def _station_problem(spec: Any, reads: set[str]) -> str | None:
    """Why a platform cannot host this service in a system (None: it can); `reads` as below."""
    if spec.type == "lambda_managed" and reads:  # sim.systems.stations_lmi
        return (
            "Lambda Managed Instances consuming an SQS queue or a Kafka topic in a system: not "
            "yet (its event source mappings are not modelled); consume the queue on lambda, "
            "fargate or kubernetes"
        )
    if spec.type == "knative" and reads:
        return (
            "Knative Serving does not consume an SQS queue or a Kafka topic: Knative Eventing's "
            "sources (KafkaSource, the AWS SQS IntegrationSource) push each message to the "
            "service as an event (publish to the service instead), or consume the queue on "
            "Kubernetes with KEDA"
        )
    if spec.type == "azure_flex" and reads:  # sim.systems.stations_flex
        return (
            "Flex Consumption does not consume an SQS queue or a Kafka topic: its queue triggers "
            "read Azure queues (Storage queues, Service Bus, Event Hubs); consume the queue on "
            "Lambda, Kubernetes or Fargate, or publish to the Flex service instead"
        )
    if spec.type not in SYSTEM_STATION_TYPES:
        return (
            f"type {spec.type} cannot host a service of a system yet (the types that can: "
            f"{', '.join(SYSTEM_STATION_TYPES)})"
        )
    if spec.type == "cloud_run" and reads:
        return (
            "Cloud Run has no SQS or Kafka trigger (Google's push sources are Pub/Sub and "
            "Eventarc); consume the queue on Lambda, Kubernetes or Fargate"
        )
    if spec.type == "container_apps":
        if reads:
            return (
                "Container Apps' queue scale rules read Azure queues (azure-queue, Service Bus) "
                "through KEDA, not an SQS queue; Kafka consumers on Container Apps: not yet"
            )
        rules = [r.custom.type for r in spec.scale.rules if r.custom is not None]
        bad = [t for t in rules if t != "prometheus"]
        if bad:
            return (
                f"in a system a Container Apps scale rule is http or prometheus ({bad[0]}: not yet)"
            )
    if spec.type == "fargate":
        if "kafka" in reads:
            return "a Kafka consumer group on Fargate: not yet (consume it on Lambda or Kubernetes)"
        if spec.spot is not None:
            return "Fargate Spot in a system: not yet (drop `spot:`)"
    if spec.type in CLUSTER_SPOT and spec.cluster.spot is not None:  # sim.systems.nodes
        if spec.cluster.mode != "nodes":
            return "Autopilot Spot Pods in a system: not yet (drop `cluster.spot`)"
        if spec.type == "kubernetes" and spec.keda is None and spec.hpa is None:
            return (
                "a fixed Deployment on spot nodes in a system: not yet (only KEDA- or HPA-scaled "
                "pods are rescheduled off an interrupted node; drop `cluster.spot` or autoscale)"
            )
    return None


def _hosting_problem(q: Any, platform_specs: dict[str, Any]) -> str | None:
    """Why a Kafka topic's brokers cannot run on its `platform` (None: they can)."""
    from sim.systems.nodes import allocatable

    spec = platform_specs.get(q.platform)
    if spec is None:
        return f"unknown platform {q.platform!r}{_hint(q.platform, list(platform_specs))}"
    if spec.type != "kubernetes" or spec.cluster.mode != "nodes":
        return f"platform {q.platform!r}: Kafka brokers run on a Kubernetes node pool (mode nodes)"
    if spec.cluster.spot is not None:
        return f"platform {q.platform!r}: Kafka brokers on spot nodes: not yet (no `cluster.spot`)"
    cpu, mem = allocatable(spec.cluster)
    if q.broker_cpu > cpu + 1e-9 or q.broker_memory > mem + 1e-9:
        return (
            f"a broker pod ({q.broker_cpu:g} vCPU, {q.broker_memory:g}MB) does not fit a "
            f"{spec.cluster.node} node ({cpu:g} vCPU, {mem:g}MB allocatable)"
        )
    return None


# Autoscalers a system's Kubernetes station runs (sim.systems.engine.PodStation): KEDA triggers
# and HPA metrics whose value the station measures.
SYSTEM_KEDA_TRIGGERS = ("aws-sqs-queue", "kafka", "prometheus", "cpu")
SYSTEM_HPA_METRICS = ("cpu", "rps")


def _scaling_problem(spec: Any, reads: set[str]) -> str | None:
    """Why a Kubernetes platform cannot scale this service in a system (None: it can);
    `reads`: the types of the queues the service consumes ("sqs", "kafka")."""
    if spec.type != "kubernetes":
        return None
    if spec.scaler == "keda":
        types = {t.type for t in spec.keda.triggers}
        bad = sorted(types - set(SYSTEM_KEDA_TRIGGERS))
        if bad:
            return (
                f"in a system KEDA scales on {', '.join(SYSTEM_KEDA_TRIGGERS)} triggers "
                f"({bad[0]}: not yet)"
            )
        if "aws-sqs-queue" in types and "sqs" not in reads:
            also = " (this one reads a Kafka topic: a kafka trigger)" if "kafka" in reads else ""
            return "an aws-sqs-queue trigger scales a service that consumes an SQS queue" + also
        if "kafka" in types and "kafka" not in reads:
            also = " (this one reads an SQS queue: an aws-sqs-queue one)" if "sqs" in reads else ""
            return "a kafka trigger scales a service that consumes a Kafka topic" + also
        return None
    if spec.scaler == "hpa":
        if spec.hpa.metric not in SYSTEM_HPA_METRICS:
            return (
                f"in a system the HPA scales on {' or '.join(SYSTEM_HPA_METRICS)} "
                f"(metric {spec.hpa.metric}: not yet)"
            )
        return None
    if spec.routing not in SYSTEM_ROUTINGS:
        return f"in a system a fixed Deployment needs routing {', '.join(SYSTEM_ROUTINGS)}"
    return None


def _check_hops(
    services: list[ServiceSpec],
    placements: list[PlacementSpec],
    platform_specs: dict[str, Any],
    network: NetworkSpec | None,
) -> None:
    """Every `via` (a call's own, or a `network.hops` rule) must be one the pair can make."""
    rules = network.hops if network is not None else []
    for r, rule in enumerate(rules):
        for key in ("caller", "callee"):
            name = getattr(rule, key)
            if name not in platform_specs:
                raise SystemProblem(
                    ("network", "hops", r, key),
                    f"unknown platform {name!r}{_hint(name, list(platform_specs))}",
                )
    for pl in placements:
        for i, s in enumerate(services):
            caller = platform_specs[pl.services[s.name]]
            for j, step in enumerate(s.steps):
                for path, c in _located_calls(step):
                    callee = platform_specs[pl.services[c.call]]
                    where: tuple[Any, ...] = ("services", i, "steps", j, *path, "via")
                    via = c.via
                    if via is None:
                        for r, rule in enumerate(rules):
                            if (rule.caller, rule.callee) == (caller.name, callee.name):
                                via, where = rule.via, ("network", "hops", r, "via")
                    if via is None:
                        continue
                    why = check_via(via, caller, callee)
                    if why:
                        raise SystemProblem(
                            where,
                            f"placement {pl.name!r}: {s.name} -> {c.call} via {via}: {why} "
                            f"(via: {', '.join(VIAS)})",
                        )


def _located_calls(step: Any) -> list[tuple[tuple[Any, ...], CallStep]]:
    if isinstance(step, CallStep):
        return [((), step)]
    if isinstance(step, ParallelStep):
        return [(("parallel", n), c) for n, c in enumerate(step.parallel)]
    if isinstance(step, OneOfStep):
        return [(("one_of", n), b) for n, b in enumerate(step.one_of) if isinstance(b, CallStep)]
    return []


def resolve_via(cs: CallStep | None, caller: Any, callee: Any, network: NetworkSpec | None) -> str:
    """The hop a call makes: its own `via`, else a `network.hops` rule, else the default."""
    if callee.type == "wasm":
        return "edge"
    if cs is not None and cs.via is not None:
        return cs.via
    for rule in network.hops if network is not None else ():
        if (rule.caller, rule.callee) == (caller.name, callee.name):
            return rule.via
    return default_via(caller, callee)


def _check_buses(queues: list[Any], known: set[str], names: list[str], fed: set[str]) -> set[str]:
    """EventBridge buses: something publishes to each; every rule targets a known service or SQS
    queue (a bus is no target here). Marks the targeted queues fed; returns targeted services."""
    qnames = [q.name for q in queues if not isinstance(q, BusSpec)]
    targets: set[str] = set()
    for k, b in enumerate(queues):
        if not isinstance(b, BusSpec):
            continue
        if b.name not in fed:
            raise SystemProblem(("queues", k), f"nothing publishes to bus {b.name!r}")
        for r, rule in enumerate(b.rules):
            if rule.target not in known and rule.target not in qnames:
                raise SystemProblem(
                    ("queues", k, "rules", r, "target"),
                    f"rule {rule.name!r} targets unknown service or SQS queue {rule.target!r}"
                    + _hint(rule.target, names + qnames),
                )
            (targets if rule.target in known else fed).add(rule.target)
    return targets


def _hint(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _sync_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of synchronous calls (depth-first search), as a path that returns to its start."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                return [*path[path.index(m) :], m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None
