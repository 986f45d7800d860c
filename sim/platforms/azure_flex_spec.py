"""`type: azure_flex` settings: Azure Functions Flex Consumption (the HTTP scale group), validated.

The model is sim.platforms.azure_flex (a KubernetesModel whose pods are Flex instances); this
module imports no kernel. Sources read 2026-12-01 (docs/model.md "Azure Functions Flex
Consumption"); ASSUMPTION marks what Microsoft does not publish.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, model_validator

from sim.config import Duration, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.pricing.ops import OpsCosts, OpsProfile

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]
_DIST: TypeAdapter[Any] = TypeAdapter(Dist)

# Instance memory sizes: "Flex Consumption offers instance memory size options of 512 MB, 2,048 MB
# and 4,096 MB"; 2,048 MB is the default (learn.microsoft.com/azure/azure-functions/
# flex-consumption-plan#instance-memory; 512 MB added after the 2024-05-24 preview text).
FLEX_MEMORY_SIZES = (512, 2048, 4096)
FLEX_MEMORY_MB: Final = 2048
# HTTP per-instance concurrency defaults by instance memory (learn.microsoft.com/azure/
# azure-functions/functions-concurrency#http-trigger-concurrency, Flex Consumption): 512 MB -> 4,
# 2,048 MB -> 16, 4,096 MB -> 32; Python apps default to 1 at every size. `perInstanceConcurrency`
# may be set from 1 to 1,000 (az functionapp scale config set --trigger-settings).
FLEX_HTTP_CONCURRENCY = {512: 4, 2048: 16, 4096: 32}
FLEX_PYTHON_CONCURRENCY = 1
FLEX_CONCURRENCY_MAX = 1000
# maximumInstanceCount: default 100, at most 1,000 ("By default, apps that run in a Flex
# Consumption plan start with a configurable limit of 100 overall instances ... the highest
# supported maximum instance count value is 1,000": learn.microsoft.com/azure/azure-functions/
# migration/lambda-functions-migration, which gives 40 as the lowest maximum: lower values are
# accepted here for what-if runs).
FLEX_MAX_INSTANCES = 100
FLEX_MAX_INSTANCES_LIMIT = 1000
# Always ready instances per scale group: "The default is 0 (zero)" (flex-consumption-plan.md).
FLEX_ALWAYS_READY = 0
# ASSUMPTION: the scale controller decides once per second for HTTP ("For HTTP triggers, new
# instances are allocated, at most, once per second": learn.microsoft.com/azure/azure-functions/
# event-driven-scaling, stated for Consumption; Flex is "event driven (fast)"). It adds as many
# instances as the concurrency demands in one step (Microsoft shows 0 to 1,000 instances in under
# a minute: techcommunity.microsoft.com "How to achieve high HTTP scale with Azure Functions Flex
# Consumption", 2024-06-17) and no per-step limit is published.
FLEX_SCALE_PERIOD_S = 1.0
# ASSUMPTION: an instance the demand has not needed for 20 minutes is removed (scale in, to zero).
# Microsoft publishes no Flex figure; 20 minutes is the Consumption plan's idle deallocation
# ("after 20 minutes of inactivity": azure.microsoft.com/blog/understanding-serverless-cold-start,
# 2018-02-07). Idle on-demand instances are not billed, so this changes cold starts, not the bill.
FLEX_IDLE_TIMEOUT_S = 1200.0
# ASSUMPTION: cold start (instance allocation + host start + app load) lognormal, median 1 s,
# p99 5 s. Microsoft publishes no distribution; always-ready instances avoid it.
FLEX_COLD_START: dict[str, Any] = {"dist": "lognormal", "median": "1s", "p99": "5s"}
# "230 seconds is the maximum amount of time that an HTTP triggered function can take to respond
# to a request" (learn.microsoft.com/azure/azure-functions/functions-scale#timeout, the load
# balancer's idle timeout).
FLEX_HTTP_TIMEOUT_S = 230.0

Runtime = Literal["dotnet-isolated", "node", "java", "powershell", "python"]


class AzureFlexSpec(Strict):
    """`type: azure_flex`: the HTTP functions of a Flex Consumption app (one scale group)."""

    name: str = Field(min_length=1)
    type: Literal["azure_flex"]
    runtime: Runtime = Field("node", description="language stack (python: concurrency 1)")
    instance_memory: Literal[512, 2048, 4096] = Field(
        FLEX_MEMORY_MB, description="instance memory size, MB (512 | 2048 | 4096)"
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        le=FLEX_CONCURRENCY_MAX,
        description="HTTP perInstanceConcurrency (default: by instance memory; python 1)",
    )
    always_ready: int = Field(
        FLEX_ALWAYS_READY, ge=0, description="always-ready instances of the HTTP group"
    )
    max_instances: int = Field(
        FLEX_MAX_INSTANCES,
        ge=1,
        le=FLEX_MAX_INSTANCES_LIMIT,
        description="maximumInstanceCount (1 to 1000)",
    )
    cold_start: Dist = Field(
        default_factory=lambda: _DIST.validate_python(FLEX_COLD_START),
        description="a new on-demand instance's start (ASSUMPTION: lognormal 1 s median)",
    )
    scale_period: Duration = Field(
        FLEX_SCALE_PERIOD_S, gt=0, description="how often the scale controller decides"
    )
    idle_timeout: Duration = Field(
        FLEX_IDLE_TIMEOUT_S, ge=0, description="an instance not needed this long is removed"
    )
    request_timeout: Duration | None = Field(
        FLEX_HTTP_TIMEOUT_S, gt=0, description="HTTP response limit (230 s); None: none"
    )
    queue_limit: int | None = Field(None, ge=0, description="requests waiting at most (None: any)")
    ingress_latency: Dist = Field(
        default_factory=lambda: _DIST.validate_python(0.0),
        description="front-end overhead on the client path",
    )
    ops: OpsCosts = Field(default_factory=dict, description="operating cost: monthly USD per line")
    ops_profile: OpsProfile | None = Field(
        None, description="bundled operating-cost profile (kubernetes-team, serverless-team)"
    )

    @model_validator(mode="after")
    def _check(self) -> AzureFlexSpec:
        if self.always_ready > self.max_instances:
            raise ValueError(
                f"always_ready ({self.always_ready}) must not exceed max_instances "
                f"({self.max_instances})"
            )
        return self

    @property
    def http_concurrency(self) -> int:
        """perInstanceConcurrency in force: the setting, else Microsoft's default."""
        if self.concurrency is not None:
            return self.concurrency
        if self.runtime == "python":
            return FLEX_PYTHON_CONCURRENCY
        return FLEX_HTTP_CONCURRENCY[self.instance_memory]
