"""The compiled (numba) per-request loop of KubernetesModel's per-pod FCFS interval (issue 13).

`fcfs_span` is the loop of `KubernetesModel._advance_fcfs` (docs/model.md 19.3) on a 2-D array
of slot ends (a row per endpoint, each row a binary min-heap of `concurrency` entries): the
requests waiting at the pods start first (each pod's queue in order, while its earliest slot
frees before `until`), then each arrival of [i, k) goes to its pick (round robin from `rr`, or
the pod index of its routing draw) and starts on arrival, starts from the queue before `until`,
or waits past it in its pod's queue, which the kernel keeps (arrays, across intervals). The
same float operations in the same order as the Python loop (start =
arrival or the earliest slot end, end = start + d, d = s * scale; the busy and waiting sums in
assignment order), so the rows are bit-identical; only the multiset of a row's slot ends
matters (its minimum is taken), not the heap's layout. The Python side keeps everything else
(the checks, the rows' order, the meters), written once for both loops.

Importing this module imports numba (0.6-1.3 s) and compiles or loads the kernel on first call:
kubernetes.py imports it only for runs long enough to pay for that (`use_kernel`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.compiled import jit_cache

CACHE = jit_cache()  # numba's cache where Python caches bytecode (sim.compiled)


@njit(cache=CACHE)
def _replace_min(S, j, v):
    """heapreplace on row j: its minimum (the root) gives way to v."""
    c = S.shape[1]
    k = 0
    while True:
        m = 2 * k + 1
        if m >= c:
            break
        if m + 1 < c and S[j, m + 1] < S[j, m]:
            m += 1
        if S[j, m] < v:
            S[j, k] = S[j, m]
            k = m
        else:
            break
    S[j, k] = v


@njit(cache=CACHE)
def fcfs_span(
    S, until, timeout, scale, Qa, Qs, Qc, Qh, Qn, qsum, arr, svc, i, k, picks, rr, ep,
    fp, oa, os_, od, op, oc,
):  # fmt: skip
    """One FCFS interval; returns (status, rows started from a queue, the sum of the waiting
    arrivals' times, the change in how many wait, busy seconds started, waiting seconds, the
    earliest slot end of a pod with a queue, the earliest waiting arrival, the largest Qh + Qn,
    how many slot ends are >= until (in service) and the sum of their end - until, in row-major
    order: the meter reading `_record` takes at until, the same float as Python's `sum`);
    status -1: a request would time out in a queue (the interval goes to the event loop; S, Qh
    and Qn are then half done).

    The pod queues: row j of Qa, Qs, Qc (arrival, handler seconds, cold) holds endpoint j's
    waiting requests at [Qh[j], Qh[j] + Qn[j]), in order, with room for k - i more after them.
    Arrival n of [i, k) goes to endpoint picks[n - i], or with no picks to the round robin's
    next from rr. Out: fp[n - i] = the pod arrival n started on at once, else -1; oa, os_, od,
    op, oc = rows started from a queue (arrival, start, d, pod id, cold) in assignment order.
    qsum changes as the Python commit did it: endpoint by endpoint, the requests that left its
    queue, then those that joined it."""
    nep = S.shape[0]
    h0 = Qh.copy()
    t0 = Qh + Qn  # where this interval's waiting arrivals go
    started = 0.0
    dwait = 0.0
    no = 0
    for j in range(nep):  # those waiting now, each queue in order
        while Qn[j] > 0:
            f = S[j, 0]
            if f >= until:
                break
            h = Qh[j]
            a = Qa[j, h]
            if a + timeout <= f:
                return -1, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0
            d = Qs[j, h] * scale
            _replace_min(S, j, f + d)
            oa[no], os_[no], od[no], op[no], oc[no] = a, f, d, ep[j], Qc[j, h]
            no += 1
            started += d
            dwait += f - a
            Qh[j] = h + 1
            Qn[j] -= 1
    rand = picks.size > 0
    for n in range(i, k):
        if rand:
            j = picks[n - i]
        else:
            j = rr
            rr += 1
            if rr == nep:
                rr = 0
        ta = arr[n]
        f = S[j, 0]
        if f <= ta:  # a slot is free: starts on arrival
            d = svc[n] * scale
            _replace_min(S, j, ta + d)
            started += d
            fp[n - i] = ep[j]
        elif f < until:  # starts when the pod's earliest slot frees, before until
            if ta + timeout <= f:
                return -1, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0
            d = svc[n] * scale
            _replace_min(S, j, f + d)
            started += d
            dwait += f - ta
            fp[n - i] = -1
            oa[no], os_[no], od[no], op[no], oc[no] = ta, f, d, ep[j], False
            no += 1
        else:  # still waiting at until
            fp[n - i] = -1
            e = Qh[j] + Qn[j]
            Qa[j, e], Qs[j, e], Qc[j, e] = ta, svc[n], False
            Qn[j] += 1
    dn = 0
    tmax = 0
    nxt = np.inf
    amin = np.inf
    cnt = 0
    rest = 0.0
    for j in range(nep):
        for c in range(S.shape[1]):
            if S[j, c] >= until:
                cnt += 1
                rest += S[j, c] - until
        for r in range(h0[j], Qh[j]):
            qsum -= Qa[j, r]
        for r in range(t0[j], Qh[j] + Qn[j]):
            qsum += Qa[j, r]
        dn += Qh[j] + Qn[j] - t0[j] - (Qh[j] - h0[j])
        tmax = max(tmax, Qh[j] + Qn[j])
        if Qn[j] > 0:
            if S[j, 0] < nxt:
                nxt = S[j, 0]
            if Qa[j, Qh[j]] < amin:
                amin = Qa[j, Qh[j]]
    return 0, no, qsum, dn, started, dwait, nxt, amin, tmax, cnt, rest
