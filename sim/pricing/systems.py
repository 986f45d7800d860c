"""Bills of a system (issue 17): queue request charges, and one bill built from its parts.

SQS bills every API request, and each 64 KB chunk of a payload counts as one request
(prices.yaml `sqs.standard.requests`, `sqs.request_chunk_bytes`). A message costs one SendMessage
per chunk; each receive of a batch costs one ReceiveMessage and one DeleteMessageBatch per chunk of
the batch's payload (Lambda's event source mapping receives up to 10 messages a call). Empty
receives of long-polling consumers are not counted (a few per poller and 20 s: cents a month).
"""

from __future__ import annotations

import dataclasses
import math

from sim.pricing.tables import Bill, BillBuilder, price


def sqs_requests(sent: int, receives: int, message_size: float, batch_messages: float) -> float:
    """Billed SQS requests: sends + (receive + delete) per received batch, each per 64 KB chunk."""
    chunk = price("sqs.request_chunk_bytes").rate
    per_message = math.ceil(message_size / chunk)
    per_batch = math.ceil(message_size * max(batch_messages, 1.0) / chunk)
    return sent * per_message + 2.0 * receives * per_batch


def sqs_bill(
    *,
    sent: int,
    receives: int,
    message_size: float,
    window_s: float,
    month_s: float | None,
    batch_messages: float = 1.0,
    fifo: bool = False,
) -> Bill:
    b = BillBuilder(window_s, month_s)
    rate = price("sqs.fifo.requests" if fifo else "sqs.standard.requests")
    n = b.monthly(sqs_requests(sent, receives, message_size, batch_messages))
    b.line("sqs_requests", rate.cost(n), [rate, price("sqs.request_chunk_bytes")])
    return b.build(sent)


def eventbridge_bill(
    *, events: int, event_size: float, api_invocations: int, window_s: float, month_s: float | None
) -> Bill:
    b = BillBuilder(window_s, month_s)
    rate, chunk = price("eventbridge.custom_events"), price("eventbridge.event_chunk_bytes")
    n = b.monthly(events * math.ceil(event_size / chunk.rate))
    b.line("eventbridge_events", rate.cost(n), [rate, chunk])
    if api_invocations:
        api = price("eventbridge.api_destinations")
        b.line("api_destinations", api.cost(b.monthly(api_invocations)), [api])
    return b.build(events)


def msk_bill(
    *,
    brokers: int,
    broker_type: str,
    storage_gib: float,
    window_s: float,
    month_s: float | None,
    records: int = 0,
) -> Bill:
    """Amazon MSK provisioned (Standard brokers): broker-hours of `broker_type` x `brokers`, and
    the EBS storage provisioned per broker in GB-months (prices.yaml `msk.*`), as the bill lines
    `instances` and `ebs` (the report's colours of those names). In-cluster replication traffic
    is free; client data transfer is not billed here."""
    b = BillBuilder(window_s, month_s)
    rate = price(f"msk.broker.{broker_type}")
    hours = b.monthly(brokers * window_s / 3600.0)
    b.line("instances", rate.cost(hours), [rate])
    store = price("msk.storage")
    months = b.monthly(brokers * storage_gib * window_s / b.month_s)
    b.line("ebs", store.cost(months), [store])
    return b.build(records)


def broker_volumes_bill(
    *, brokers: int, storage_gib: float, window_s: float, month_s: float | None, records: int = 0
) -> Bill:
    """Kafka on the cluster (`hosting: cluster`): one EBS gp3 persistent volume of `storage_gib`
    per broker pod (Strimzi's persistent-claim), GB-months prorated over the window as the
    nodes' root volumes (prices.yaml `ebs.gp3`, GB = GiB provisioned), as the line
    `ebs` (MSK's storage line name; the topic's share of the nodes' root volumes adds to it). The
    brokers' node share is the cluster's (sim.systems.engine)."""
    b = BillBuilder(window_s, month_s)
    gp3 = price("ebs.gp3")
    months = b.monthly(brokers * storage_gib * window_s / b.month_s)
    b.line("ebs", gp3.cost(months), [gp3])
    return b.build(records)


def scaled_bill(bill: Bill, share: float) -> Bill:
    """A share of a bill (a service's part of a cluster or an edge account it shares)."""
    b = BillBuilder(bill.window_s, bill.month_s)
    for line, usd in bill.monthly_breakdown.items():
        b.line(line, usd * share, [bill.sources.get(line, "")] if bill.sources.get(line) else [])
    return _dated(b.build(bill.requests * share), bill.price_date)


def with_operating(bill: Bill, ops: Bill, share: float) -> Bill:
    """`bill` with `share` of the operating lines of `ops` (a platform's `ops` / `ops_profile`,
    once per placement, split over the services that use it); the cloud lines as they were."""
    lines = dict(bill.operating_breakdown)
    for name, usd in ops.operating_breakdown.items():
        lines[name] = lines.get(name, 0.0) + usd * share
    cites = {k: v for k, v in ops.sources.items() if k in ("operating", "operating_profile")}
    return dataclasses.replace(
        bill,
        operating_usd=bill.operating_usd + ops.operating_usd * share,
        operating_monthly_usd=bill.operating_monthly_usd + ops.operating_monthly_usd * share,
        operating_breakdown=lines,
        operating_sources={**bill.operating_sources, **ops.operating_sources},
        sources={**bill.sources, **cites},
    )


def merge_bills(parts: dict[str, Bill], window_s: float, month_s: float | None) -> Bill:
    """One bill of named parts; each line (and operating line) is named `part.line`."""
    b = BillBuilder(window_s, month_s)
    dates = []
    for name, bill in parts.items():
        for line, usd in bill.monthly_breakdown.items():
            src = bill.sources.get(line)
            b.line(f"{name}.{line}", usd, [src] if src else [])
        for line, usd in bill.operating_breakdown.items():
            b.operating(f"{name}.{line}", usd, bill.operating_sources.get(line))
        if bill.price_date:
            dates.append(bill.price_date)
    return _dated(b.build(0), min(dates) if dates else None)


def _dated(bill: Bill, date: str | None) -> Bill:
    return dataclasses.replace(bill, price_date=date)
