"""SQS FIFO queues in a system (issue 17): which visible messages a receive may take.

A FIFO queue delivers the messages of one message group in order, and while any message of a
group is in flight (received, not yet deleted, or waiting out its visibility timeout) no other
message of that group is delivered (SQS Developer Guide, "FIFO queue delivery logic"; Lambda
services-sqs-scaling.html: "If your function returns an error, the function attempts all retries
on the affected messages before Lambda receives additional messages from the same group"). A
receive returns "as many messages with the same message group ID as possible" first, oldest group
first, then other free groups. So the concurrency of a consumer is at most the number of groups
with messages ("functions can scale in concurrency to the number of active message groups").

The visible messages stay in one deque in send order (a message back from its visibility timeout
goes back to its place), so "oldest first" across groups is the deque's order. A message is
[plan, root, sent, visible since, receives, group, send number].
"""

from __future__ import annotations

from collections import deque
from typing import Any

GROUP, SEQ = 5, 6  # index of a message's group, and of its send number in its queue


def take(visible: deque[list[Any]], busy: dict[int, int], size: int) -> list[list[Any]]:
    """Up to `size` messages of free groups (no message in flight), a group's messages together
    and in order, the group of the oldest free message first. Removes them from `visible`."""
    picked: dict[int, list[int]] = {}  # free group -> indices of its first messages
    for i, m in enumerate(visible):
        g = m[GROUP]
        if g not in busy:
            ids = picked.setdefault(g, [])
            if len(ids) < size:
                ids.append(i)
    # fill the batch group by group, in the order the groups were met
    idx: list[int] = []
    for ids in picked.values():
        idx += ids[: size - len(idx)]
        if len(idx) >= size:
            break
    idx.sort()
    out = [visible[i] for i in idx]
    for i in reversed(idx):
        del visible[i]
    return out


def put_back(visible: deque[list[Any]], m: list[Any]) -> None:
    """A message back from its visibility timeout, at its place in send order."""
    i = len(visible)
    while i > 0 and visible[i - 1][SEQ] > m[SEQ]:
        i -= 1
    visible.insert(i, m)


def hold(busy: dict[int, int], batch: list[list[Any]]) -> None:
    for m in batch:
        busy[m[GROUP]] = busy.get(m[GROUP], 0) + 1


def release(busy: dict[int, int], m: list[Any]) -> None:
    g = m[GROUP]
    left = busy[g] - 1
    if left:
        busy[g] = left
    else:
        del busy[g]
