"""Lambda's asynchronous invocation path in a system (issue 17): the state and the retry rules
that the heap engine (sim.systems.engine) and the per-request reference
(sim.validation.reference.ReferenceSystem) share; each engine waits out the delays its own way.

An event to a Lambda function (a `publish` to a Lambda-placed service, or an EventBridge rule's
target) enters the function's internal queue and is invoked at once if the function has a free
environment or can create one. Then (lambda/latest/dg/invocation-async-error-handling.html):
- a throttle (429: the concurrency limit or the scaling rate) returns the event to the queue; the
  next attempt comes 1 s later, then 2, 4, ... s, at most 5 minutes apart;
- a function error (an error answer, a failed or timed-out call of its own) is retried
  `maximum_retry_attempts` times (default 2): 1 minute after the failed attempt ends, then 2;
- an event whose next attempt would come after its maximum age (default 6 h) is dropped then,
  as is an event whose error retries are used up (counted: `expired`, `failed` - what an
  on-failure destination or DLQ would receive).
Lambda's own slowdown of queue reads under a long backlog ("Lambda increases the retry interval
and reduces the rate at which it reads events") is not modelled: the documented schedule is.
"""

from __future__ import annotations

from typing import Any

from sim.records import OK, THROTTLED
from sim.systems.eventbridge_spec import (
    ASYNC_ERROR_WAIT_S,
    ASYNC_THROTTLE_CAP_S,
    ASYNC_THROTTLE_FIRST_S,
)


class AsyncQueue:
    """One function's asynchronous event queue: counts, and when an event's next attempt is."""

    __slots__ = (
        "error_retries",
        "events",
        "expired",
        "failed",
        "max_age",
        "retries",
        "throttle_retries",
        "waiting",
        "waiting_max",
    )

    def __init__(self, cfg: Any) -> None:
        self.retries, self.max_age = cfg.maximum_retry_attempts, cfg.maximum_event_age
        self.events = 0  # events that entered the queue
        self.throttle_retries = self.error_retries = 0
        self.expired = 0  # dropped at their maximum age
        self.failed = 0  # dropped after the last error retry
        self.waiting = self.waiting_max = 0  # events back in the queue, waiting for a retry

    def after(self, outcome: int, t0: float, now: float, tries: list[int]) -> float | None:
        """Seconds until the event's next attempt after an attempt ending `now` with `outcome`;
        None when it is done (succeeded or dropped). `tries`: the event's [throttles, errors]."""
        if outcome == OK:
            return None
        if outcome == THROTTLED:
            tries[0] += 1
            delay = min(ASYNC_THROTTLE_CAP_S, ASYNC_THROTTLE_FIRST_S * 2.0 ** (tries[0] - 1))
        else:
            tries[1] += 1
            if tries[1] > self.retries:
                self.failed += 1
                return None
            delay = ASYNC_ERROR_WAIT_S * tries[1]
        if now + delay - t0 > self.max_age:
            self.expired += 1
            return None
        if outcome == THROTTLED:
            self.throttle_retries += 1
        else:
            self.error_retries += 1
        self.waiting += 1
        self.waiting_max = max(self.waiting_max, self.waiting)
        return delay

    def stats(self) -> dict[str, int]:
        return {
            "events": self.events,
            "throttle_retries": self.throttle_retries,
            "error_retries": self.error_retries,
            "expired": self.expired,
            "failed": self.failed,
            "queued_max": self.waiting_max,
        }
