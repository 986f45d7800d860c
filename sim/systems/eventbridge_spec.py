"""Scenario keys of an EventBridge bus and of Lambda's asynchronous invocation (issue 17).

Light: no kernel, no scipy/pandas (the `schema` command imports it). Defaults and their sources:

- Lambda asynchronous invocation (lambda/latest/dg/invocation-async-error-handling.html,
  invocation-async-configuring.html): an event enters the function's internal queue; a function
  error is retried twice (MaximumRetryAttempts 0-2, default 2) "with a one-minute wait between the
  first two attempts, and two minutes between the second and third attempts"; a throttle (429) is
  retried "for up to 6 hours by default. The retry interval increases exponentially from 1 second
  after the first attempt to a maximum of 5 minutes"; MaximumEventAgeInSeconds 60-21,600 (default
  21,600): an older event is discarded.
- EventBridge (eventbridge/latest/userguide/eb-rule-retry-policy.html): "By default, EventBridge
  retries sending the event for 24 hours and up to 185 times with an exponential back off and
  jitter" (API RetryPolicy: MaximumRetryAttempts 0-185, MaximumEventAgeInSeconds 60-86,400); an
  event not delivered then goes to the rule's DLQ (counted). API destinations (eb-quota.html,
  eb-api-destinations.html): InvocationRateLimitPerSecond default 300 per destination - invocations
  above it "still occur, but are delayed"; the endpoint must answer within 5 seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field

from sim.config import Duration, Fraction, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.pricing.tables import Bytes

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]

ASYNC_RETRIES = 2
ASYNC_MAX_AGE_S = 21600.0
ASYNC_ERROR_WAIT_S = 60.0  # before retry k: k x 60 s (1 min, then 2 min)
ASYNC_THROTTLE_FIRST_S = 1.0  # then doubling
ASYNC_THROTTLE_CAP_S = 300.0
EB_RETRIES = 185
EB_MAX_AGE_S = 86400.0
EB_RATE_LIMIT = 300.0
EB_HTTP_TIMEOUT_S = 5.0
# ASSUMPTION: AWS does not publish EventBridge's backoff schedule, only "exponential back off and
# jitter" within 185 attempts and 24 h. Full jitter (as the AWS architecture blog it links),
# doubling from 1 s, capped at 512 s: 185 attempts then span about a day (1+2+...+256 + 176 x 512
# ~ 90,600 s without jitter), so the two documented limits meet.
EB_BACKOFF_BASE_S = 1.0
EB_BACKOFF_CAP_S = 512.0
# ASSUMPTION: AWS publishes no delivery-latency figure for EventBridge. The Amazon Key team reports
# 80 ms p90 from PutEvents to target at 2,000 events/s (AWS Architecture Blog, 2026-02, "Mastering
# millisecond latency and millions of events"): a lognormal with median 50 ms and p99 150 ms (p90 ~
# 82 ms) matches it.
EB_LATENCY = {"dist": "lognormal", "median": 0.050, "p99": 0.150}


class AsyncInvokeSpec(Strict):
    """Lambda's asynchronous invocation settings of a function (PutFunctionEventInvokeConfig)."""

    maximum_retry_attempts: int = Field(
        ASYNC_RETRIES, ge=0, le=2, description="retries after a function error (1 min, 2 min)"
    )
    maximum_event_age: Duration = Field(
        ASYNC_MAX_AGE_S, ge=60, le=21600, description="MaximumEventAgeInSeconds: older -> dropped"
    )


class EbBackoff(Strict):
    base: Duration = Field(EB_BACKOFF_BASE_S, gt=0)
    cap: Duration = Field(EB_BACKOFF_CAP_S, gt=0)


class RetryPolicySpec(Strict):
    """A target's RetryPolicy: retries after a failed delivery, until either limit is met."""

    maximum_retry_attempts: int = Field(EB_RETRIES, ge=0, le=185)
    maximum_event_age: Duration = Field(EB_MAX_AGE_S, ge=60, le=86400)
    backoff: EbBackoff = Field(
        default_factory=EbBackoff, description="ASSUMPTION: full jitter (AWS does not publish it)"
    )


class RuleSpec(Strict):
    """A rule and its one target. `probability` (or its other name `match`): the share of the
    bus's events the rule's event pattern matches, drawn per event from a stream common to every
    placement (each placement sees the same events match) - a stand-in for the pattern itself."""

    name: str = Field(min_length=1)
    target: str = Field(min_length=1, description="a service or an SQS queue")
    probability: Fraction = Field(
        1.0,
        ge=0,
        le=1,
        validation_alias=AliasChoices("probability", "match"),
        description="share of the events the rule's pattern matches (`match` is the same key)",
    )
    rate_limit: float = Field(
        EB_RATE_LIMIT,
        gt=0,
        le=1e6,
        description="API destination InvocationRateLimitPerSecond (a non-Lambda service target)",
    )
    retry: RetryPolicySpec = Field(default_factory=RetryPolicySpec)


class BusSpec(Strict):
    """An EventBridge custom event bus: services `publish` to it (PutEvents); its rules route each
    event to targets: a Lambda service (asynchronous invocation), an SQS queue (SendMessage), or
    another service over HTTP (an API destination through that platform's entry)."""

    name: str = Field(min_length=1)
    type: Literal["eventbridge"]
    rules: list[RuleSpec] = Field(min_length=1)
    latency: Dist = Field(
        default_factory=lambda: coerce_distribution(EB_LATENCY),
        description="PutEvents to target invocation (ASSUMPTION default: 50 ms median)",
    )
    event_size: Bytes = Field(1024.0, gt=0, le=262144, description="bytes per event (256 KB max)")
    http_timeout: Duration = Field(
        EB_HTTP_TIMEOUT_S, gt=0, le=5, description="API destination endpoint timeout"
    )
