"""An EventBridge bus in a system (issue 17): the state and the rules that the heap engine
(sim.systems.engine) and the per-request reference (sim.validation.reference.ReferenceSystem)
share; each engine schedules the deliveries its own way. Keys, defaults and sources:
sim.systems.eventbridge_spec.

A `publish` to a bus is one PutEvents entry. Each rule matches the event with its `probability`
(drawn when the entry request's plan is drawn: common to every placement). A matched event reaches
its target after the delivery latency (drawn at the publish):
- a Lambda service: an asynchronous invocation (Lambda's internal queue accepts it: delivered;
  sim.systems.lambda_async takes over - throttles and errors are Lambda's to retry);
- an SQS queue: SendMessage (accepted: delivered). A FIFO queue's SendMessage goes through the
  same quota and deduplication as a direct publish (sim.systems.sqs.SendGate; `fifo_send`): a
  throttled send (ThrottlingException, a retriable error: eb-rule-retry-policy.html) is retried
  with the rule's retry policy, then the DLQ; the deduplication id is the event's (EventBridge
  API_SqsParameters / eb-targets: a FIFO target needs content-based deduplication, and the body
  EventBridge sends is the event with its unique `id`), so a re-run publish is a new event and
  only the same event reaching the queue twice (two rules, one queue) is a duplicate. The message
  group is the target's one SqsParameters.MessageGroupId (a string per target): one group per
  rule (`rule_group`);
- any other service: an API destination - an HTTP request through that platform's entry (the
  cluster's load balancer / ingress, the edge), paced to the rule's `rate_limit` per second (later
  invocations are delayed, not dropped), answered within `http_timeout` (5 s) or failed. A failed
  delivery is retried with full-jitter exponential backoff until the retry policy's attempts or
  its maximum event age run out; then the event goes to the DLQ (`dlq`).
"""

from __future__ import annotations

from typing import Any

# What a rule's SendMessage did (fifo_send); a float instead: throttled, retry after so long.
SEND, DUPLICATE, DROPPED = 0, 1, 2


def rule_group(bus: int, rule: int) -> int:
    """The message group of a rule's events on a FIFO queue (SqsParameters.MessageGroupId: one per
    target), apart from the groups publishers draw (0 ... groups - 1)."""
    return -1 - (bus << 16) - rule


def fifo_send(
    bus: Bus, q: Any, check: int, k: int, failures: int, put_t: float, now: float, warmup: float
) -> int | float:
    """Rule k's SendMessage to queue q, which its gate answered `check` (sim.systems.sqs.SendGate:
    0 enqueue, 1 accepted duplicate, 2 throttled) after `failures` throttled tries: SEND,
    DUPLICATE (delivered, nothing enqueued), DROPPED (retries out: the rule's DLQ), or the seconds
    to the retry."""
    if check == 2:
        delay = bus.retry(k, failures + 1, put_t, now)
        return DROPPED if delay is None else float(delay)
    bus.done(k, put_t, now, warmup)
    q.sent += 1
    return SEND if check == 0 else DUPLICATE


class Bus:
    """One bus of one placement: rule matching, pacing, retry delays, counts."""

    def __init__(self, spec: Any, pick: Any, jitter: Any, latency: Any) -> None:
        self.spec, self.name = spec, spec.name
        self.rules = spec.rules
        self.pick, self.jitter, self.latency = pick, jitter, latency
        self.next_free = [0.0] * len(spec.rules)  # API destination pacing, per rule
        self.sent = 0  # PutEvents entries
        self.matched = 0  # rule matches (deliveries owed)
        self.delivered = 0
        self.invocations = 0  # API destination requests (retries included)
        self.retries = 0
        self.dlq = 0
        self.pending = self.pending_max = 0  # matched, not yet delivered or dropped
        self.inflight = 0  # API destination requests waiting for their answer
        self.per_rule = [[0, 0, 0] for _ in spec.rules]  # matched, delivered, dlq
        self.waits: list[float] = []  # put -> delivered of events put after the warm-up
        self.rows: dict[str, list[float]] = {"time_s": [], "depth": [], "in_flight": []}

    def match(self) -> list[int]:
        """The rules this event matches (one draw per rule below probability 1)."""
        pick = self.pick
        return [
            k
            for k, r in enumerate(self.rules)
            if r.probability >= 1.0 or pick.next() < r.probability
        ]

    def put(self, rules: list[int]) -> list[float]:
        """A PutEvents entry matching `rules`: their delivery latencies, drawn in rule order."""
        self.sent += 1
        self.matched += len(rules)
        self.pending += len(rules)
        self.pending_max = max(self.pending_max, self.pending)
        for k in rules:
            self.per_rule[k][0] += 1
        return [max(0.0, self.latency.next()) for _ in rules]

    def slot(self, k: int, now: float) -> float:
        """When an API destination request may go, at most `rate_limit` a second per rule."""
        start = max(now, self.next_free[k])
        self.next_free[k] = start + 1.0 / self.rules[k].rate_limit
        return start

    def done(self, k: int, put_t: float, now: float, warmup: float) -> None:
        self.delivered += 1
        self.pending -= 1
        self.per_rule[k][1] += 1
        if put_t >= warmup:
            self.waits.append(now - put_t)

    def retry(self, k: int, failures: int, put_t: float, now: float) -> float | None:
        """Seconds to the next delivery attempt after `failures` failed ones; None: to the DLQ
        (retries used up, or the next attempt would be past the maximum event age)."""
        pol = self.rules[k].retry
        if failures <= pol.maximum_retry_attempts:
            cap = min(pol.backoff.cap, pol.backoff.base * 2.0 ** (failures - 1))
            delay = self.jitter.next() * cap
            if now + delay - put_t <= pol.maximum_event_age:
                self.retries += 1
                return delay
        self.dlq += 1
        self.pending -= 1
        self.per_rule[k][2] += 1
        return None

    def sample(self, now: float) -> None:
        r = self.rows
        r["time_s"].append(now)
        r["depth"].append(float(self.pending))
        r["in_flight"].append(float(self.inflight))
