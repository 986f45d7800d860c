# cython: boundscheck=False, wraparound=False, initializedcheck=False
"""The warm hits of LambdaModel's plain loop on state held in numpy arrays (issue 13), written once
and compiled two ways: by Cython at install (sim/native.py; C types from lambda_warm.pxd beside
this file) and by numba at run time (lambda_kernel.py). As plain Python it gives the same results
but is slower than the loop it replaces, so LambdaModel runs it only compiled (sim.compiled).

`warm_span` runs the plain loop's common case (completions freeing environments to the idle
pool, an arrival taking the pool's most recently used live environment, a timed-out invocation
marked for discarding) and stops at the first arrival that needs anything else: a cold start, a
reclaim, a throttle, a recycled or discarded environment, or a full array. LambdaModel then runs
that one arrival through its Python loop (_plain_span), so the bookkeeping of the rare events
(sim/platforms/lambda_.py) is written once, and calls it again.

Every float is the same operation on the same operands as in the Python loop (`t + dur`, `end +
ka`, `svc * scale`), in doubles, without fused multiply-adds (setup.py), so the results are
identical, not close (tests/test_lambda_compiled.py).
"""

from __future__ import annotations

# (The first line is for Cython: the kernel checks its own bounds, and indexes no array from its
# end; Python and numba read it as a comment.)

# Kinds in the busy heap, as in lambda_.py.
_ON_DEMAND, _DISCARD = 0, 2


def _sift_up(h_end, h_env, h_kind, h_death, k):
    """Move entry k toward the root while it precedes its parent in (end, env) order."""
    end, env, kind, death = h_end[k], h_env[k], h_kind[k], h_death[k]
    while k > 0:
        p = (k - 1) >> 1
        if end < h_end[p] or (end == h_end[p] and env < h_env[p]):
            h_end[k], h_env[k], h_kind[k], h_death[k] = h_end[p], h_env[p], h_kind[p], h_death[p]
            k = p
        else:
            break
    h_end[k], h_env[k], h_kind[k], h_death[k] = end, env, kind, death


def _pop_root(h_end, h_env, h_kind, h_death, hn):
    """Remove the root of a heap of hn entries (the last entry sifts down from the root)."""
    hn -= 1
    end, env, kind, death = h_end[hn], h_env[hn], h_kind[hn], h_death[hn]
    k = 0
    while True:
        c = 2 * k + 1
        if c >= hn:
            break
        if c + 1 < hn and (
            h_end[c + 1] < h_end[c] or (h_end[c + 1] == h_end[c] and h_env[c + 1] < h_env[c])
        ):
            c += 1
        if h_end[c] < end or (h_end[c] == end and h_env[c] < env):
            h_end[k], h_env[k], h_kind[k], h_death[k] = h_end[c], h_env[c], h_kind[c], h_death[c]
            k = c
        else:
            break
    if hn > 0:
        h_end[k], h_env[k], h_kind[k], h_death[k] = end, env, kind, death
    return hn


def warm_span(
    arr, svc, i, j, scale, timeout, limit, ka, h_end, h_env, h_kind, h_death, hn,
    p_exp, p_env, p_death, pn, rows,
):  # fmt: skip
    """Arrivals i.. of [i, j) while each is a warm hit; returns (where it stopped, hn, pn).

    Busy heap: hn entries (end, env, kind, death) as parallel arrays, a binary heap in (end, env)
    order, the order of the Python heap's tuples (end, env, kind, function): env ids are unique
    among busy environments, so both pop the same sequence whatever their layouts. Idle pool: pn
    entries (expiry, env, death), a stack whose top (pn - 1) is the most recently freed. death is
    when the environment is recycled (inf without a lifetime cap). rows[i] gets arrival i's env.

    Stopping at arrival i leaves it untouched except for completions already moved to the pool:
    the Python loop then pops the rest and picks the pool's top, which is where its `cand`
    shortcut would have put them."""
    hcap, pcap = h_end.shape[0], p_exp.shape[0]
    while i < j:
        t = arr[i]
        while hn > 0 and h_end[0] <= t:
            end, d = h_end[0], h_death[0]
            if h_kind[0] != _ON_DEMAND:
                return i, hn, pn  # stop: a timed-out environment is discarded (_gone)
            exp = end + ka
            if exp > d:
                if end >= d:
                    return i, hn, pn  # stop: recycled at its lifetime cap (_gone)
                exp = d
            if pn == pcap:
                return i, hn, pn  # stop: pool array full (Python grows it)
            p_exp[pn], p_env[pn], p_death[pn] = exp, h_env[0], d
            pn += 1
            hn = _pop_root(h_end, h_env, h_kind, h_death, hn)
        if hn >= limit or hn == hcap:
            return i, hn, pn  # stop: concurrency throttle (or heap array full)
        if pn == 0 or p_exp[pn - 1] <= t:
            return i, hn, pn  # stop: a cold start, or the pool's top has expired (reclaim)
        pn -= 1
        env = p_env[pn]
        dur = svc[i] * scale
        h_end[hn], h_env[hn], h_death[hn] = (
            t + (dur if dur <= timeout else timeout),
            env,
            p_death[pn],
        )
        h_kind[hn] = _ON_DEMAND if dur <= timeout else _DISCARD
        _sift_up(h_end, h_env, h_kind, h_death, hn)
        hn += 1
        rows[i] = env
        i += 1
    return i, hn, pn
