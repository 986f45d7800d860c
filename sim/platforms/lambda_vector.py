"""The warm hits of LambdaModel's plain loop as array arithmetic, for runs too short to pay for
numba's import (issue 13; docs/model.md §19.8).

Between two rare events (a cold start, a reclaim, a throttle, a recycle, a discard) the plain
loop's only state changes are these: a completion pushes its environment onto the idle pool, a
stack (MRU reuse); an arrival pops the pool's top and starts at once; its completion time is
`arrival + service * scale`. So the times of every event of a block of arrivals are known in
advance, and which environment each arrival takes is the matching of brackets in the merged
sequence of completions (pushes) and arrivals (pops): a pop at stack depth L takes the last
push made at depth L before it. `warm_block` computes that matching for a block with sorts
and prefix counts, finds the first arrival that needs anything else, and returns the state the
plain loop would hold just before it. The model's Python loop (`LambdaModel._plain_span`) then
runs that arrival, so the rare events' bookkeeping is still written once.

Every float is computed by the same operation on the same operands as in the plain loop
(`end = arrival + service * scale`, `expiry = end + keep_alive`), so the results are identical,
not close: tests/test_lambda_vector.py holds the two to each other request by request.
"""

from __future__ import annotations

from heapq import heapify
from typing import Any

import numpy as np

_ON_DEMAND = 0  # the busy heap's kind for an on-demand environment (lambda_.py)


def warm_block(
    a: np.ndarray,
    dur: np.ndarray,
    timeout: float,
    limit: int,
    ka: float,
    busy: list[tuple[float, int, int, int]],
    pool: Any,
    death: dict[int, float] | None,
) -> tuple[int, list[int], list[tuple[float, int, int, int]], list[tuple[float, int]]]:
    """The plain loop on arrivals `a` (sorted) with service times `dur` (already scaled), from
    the busy heap and the idle pool (bottom first, (expiry, env) entries), while every arrival
    is a warm hit. Returns (m, envs, busy, pool): the first m arrivals, the environment each
    took, and the busy heap and idle pool after them. m is 0 when the first arrival needs the
    general steps; the inputs are never changed. `death`: each on-demand environment's
    recycling time (None: no lifetime cap)."""
    none: tuple[int, list[int], list, list] = (0, [], [], [])
    end = a + dur
    # Arrivals that need the general steps by themselves: a discard (timed out), or a zero
    # service (its completion would sort before its own arrival).
    bad = (dur > timeout) | (end <= a)
    m = int(bad.argmax()) if bad.any() else a.size
    if m == 0:
        return none
    a, end = a[:m], end[:m]
    hn, d0 = len(busy), len(pool)
    if hn:  # one conversion (env ids and kinds are small ints: exact as floats)
        b = np.array(busy)
        b_end, b_env, b_kind = b[:, 0], b[:, 1].astype(np.int64), b[:, 2]
    else:
        b_end, b_env, b_kind = np.empty(0), np.empty(0, np.int64), np.empty(0)
    # Completions (the busy heap's, then this block's) in time order, merged with the arrivals
    # (a stable sort of two sorted runs): a completion at an arrival's instant comes first, as
    # the loop pops every end <= t before it looks at the pool.
    c_all = np.concatenate((b_end, end))
    n_all = c_all.size
    c_from = np.argsort(c_all, kind="stable")  # < hn: a busy entry; else block request + hn
    c_time = c_all[c_from]
    merged = np.argsort(np.concatenate((c_time, a)), kind="stable")
    is_arr = merged >= n_all
    arr_at = np.flatnonzero(is_arr)  # each arrival's place in the merged order
    k = np.arange(m)
    popped = arr_at - k  # completions before each arrival
    # Rare events: a throttle (concurrency limit), an empty pool (a cold start), completions
    # at one instant (their order needs their environments), an entry of another kind.
    cut = m
    full = hn + k - popped >= limit
    if full.any():
        cut = int(full.argmax())
    empty = d0 + popped - k < 1
    if empty.any():
        cut = min(cut, int(empty.argmax()))
    nc = int(popped[-1])
    if nc > 1:
        tie = c_time[1:nc] == c_time[: nc - 1]
        if tie.any():
            cut = min(cut, _at(a, c_time[int(tie.argmax())]))
    if hn:
        other = (b_kind != _ON_DEMAND) & (b_end <= a[-1])
        if other.any():
            cut = min(cut, _at(a, float(b_end[other].min())))
    if cut == 0:
        return none
    m = cut
    n_ev = int(arr_at[m - 1]) + 1  # the merged events up to the block's last arrival
    nc = n_ev - m
    is_arr = is_arr[:n_ev]
    # Stack depths: a push's is the pool's size after it, a pop's the size before it; the
    # pool's own entries (bottom first) come before every event.
    level = d0 + np.cumsum(np.where(is_arr, -1, 1)) + is_arr
    level = np.concatenate((np.arange(1, d0 + 1), level))
    # An arrival at depth L takes the last push at depth L before it: sort every event by
    # (depth, place) (stable: radix on 16 bits), and each pop's predecessor is its push.
    order = np.argsort(level.astype(np.int16 if d0 + nc < 2**15 else np.int64), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    pops = d0 + arr_at[:m]
    src = order[rank[pops] - 1]
    # Each push's environment and expiry: known for the pool's and the busy heap's entries; for
    # a block request's completion, the environment that request took (-(r + 1) until known).
    pushes = d0 + np.flatnonzero(~is_arr)
    r_of = c_from[:nc] - hn
    from_busy = r_of < 0
    c_env = np.where(from_busy, b_env[np.where(from_busy, c_from[:nc], 0)] if hn else 0, -r_of - 1)
    c_exp = c_time[:nc] + ka
    ev_env = np.zeros(d0 + n_ev, np.int64)
    ev_exp = np.zeros(d0 + n_ev)
    if d0:
        p = np.array(pool)
        ev_exp[:d0], ev_env[:d0] = p[:, 0], p[:, 1]
    ev_env[pushes], ev_exp[pushes] = c_env, c_exp
    env = ev_env[src]
    ref = np.flatnonzero(env < 0)
    while ref.size:  # pointer jumping: each pass doubles how far every reference has followed
        env[ref] = env[-env[ref] - 1]
        ref = ref[env[ref] < 0]
    c_env = np.where(from_busy, c_env, env[np.where(from_busy, 0, r_of)])
    # More rare events: a completion at or after its environment's lifetime cap (recycled; an
    # expiry past the cap is cut to it, as the loop does), or an arrival taking an environment
    # that has expired.
    a = a[:m]
    cut = m
    if death is not None and nc:
        ids = np.fromiter(death.keys(), np.int64, len(death))
        caps = np.full(int(max(ids.max(initial=0), c_env.max())) + 1, np.inf)
        caps[ids] = np.fromiter(death.values(), float, len(death))
        cap = caps[c_env]
        over = c_exp > cap
        recycled = over & (c_time[:nc] >= cap)
        if recycled.any():
            q = int(recycled.argmax())
            cut = int(pushes[q] - d0) - q  # the arrival that pops completion q
        c_exp = np.where(over, cap, c_exp)
        ev_exp[pushes] = c_exp
    expired = ev_exp[src] <= a
    if expired.any():
        cut = min(cut, int(expired.argmax()))
    if cut == 0:
        return none
    if cut < m:
        m = cut
        n_ev = int(arr_at[m - 1]) + 1
        nc = n_ev - m
        env, src, pops = env[:m], src[:m], pops[:m]
        c_env = c_env[:nc]
    ev_env[pushes[:nc]] = c_env
    # The pool after the block: the pushes no arrival took, in the order they were made.
    left = np.ones(d0 + n_ev, bool)
    left[pops] = False
    left[src] = False
    top = np.flatnonzero(left)
    new_pool = list(zip(ev_exp[top].tolist(), ev_env[top].tolist(), strict=True))
    # The busy heap after the block: what ends after its last arrival.
    t = a[m - 1]
    new_busy = [b for b in busy if b[0] > t]
    late = np.flatnonzero(end[:m] > t)
    zeros = [_ON_DEMAND] * late.size
    new_busy.extend(zip(end[late].tolist(), env[late].tolist(), zeros, zeros, strict=True))
    heapify(new_busy)
    return m, env.tolist(), new_busy, new_pool


def _at(a: np.ndarray, t: float) -> int:
    """The first arrival of the block at or after t: the one whose completions' pass pops a
    completion ending at t."""
    return int(np.searchsorted(a, t, "left"))
