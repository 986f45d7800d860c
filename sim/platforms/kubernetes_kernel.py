"""The compiled (numba) per-request loop of KubernetesModel's per-pod FCFS interval (issue 13).

`fcfs_span` is the loop of `KubernetesModel._advance_fcfs` (docs/model.md 19.3) on a 2-D array
of slot ends (a row per endpoint, each row a binary min-heap of `concurrency` entries): the
requests waiting at the pods start first (each pod's queue in order, while its earliest slot
frees before `until`), then each arrival of [i, k) goes to its pick (round robin from `rr`, or
the pod index of its routing draw) and starts on arrival, starts from the queue before `until`,
or waits past it. The same float operations in the same order as the Python loop (start =
arrival or the earliest slot end, end = start + d, d = s * scale; the busy and waiting sums in
assignment order), so the rows are bit-identical; only the multiset of a row's slot ends
matters (its minimum is taken), not the heap's layout. The Python side keeps everything else
(the pod queues' tuples, the rows' lists, the commit), written once.

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
    S, until, timeout, scale, qa, qs, qj, arr, svc, i, k, picks, rr, ep,
    took, fp, oa, os_, od, op, wi, wj,
):  # fmt: skip
    """One FCFS interval; returns (status, rows started from a queue, arrivals left waiting,
    busy seconds started, waiting seconds); status -1: a request would time out in a queue (the
    interval goes to the event loop; S is then half done).

    qa, qs, qj: the requests waiting now (arrival, handler seconds, endpoint index), each pod's
    queue in order. Arrival n of [i, k) goes to endpoint picks[n - i], or with no picks to the
    round robin's next from rr. Out: took[j] = how many of pod j's queue started; fp[n - i] =
    the pod arrival n started on at once, else -1; oa, os_, od, op = rows started from a queue
    (arrival, start, d, pod id) in assignment order; wi, wj = the arrivals still waiting at
    until (index, endpoint index), in arrival order."""
    nep = S.shape[0]
    stop = np.zeros(nep, np.bool_)
    started = 0.0
    dwait = 0.0
    no = 0
    for r in range(qa.size):
        j = qj[r]
        if stop[j]:
            continue
        f = S[j, 0]
        if f >= until:
            stop[j] = True
            continue
        a = qa[r]
        if a + timeout <= f:
            return -1, 0, 0, 0.0, 0.0
        d = qs[r] * scale
        _replace_min(S, j, f + d)
        took[j] += 1
        oa[no], os_[no], od[no], op[no] = a, f, d, ep[j]
        no += 1
        started += d
        dwait += f - a
    nw = 0
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
                return -1, 0, 0, 0.0, 0.0
            d = svc[n] * scale
            _replace_min(S, j, f + d)
            started += d
            dwait += f - ta
            fp[n - i] = -1
            oa[no], os_[no], od[no], op[no] = ta, f, d, ep[j]
            no += 1
        else:  # still waiting at until
            fp[n - i] = -1
            wi[nw], wj[nw] = n, j
            nw += 1
    return 0, no, nw, started, dwait
