# C layout of SqsQueue for Cython alone (setup.py; sim/native.py): its hot counters and state as
# C fields (self typed in its methods, `q` in run_batch and _messages); the rest stays in its
# instance dict. Nothing here changes an operation.
cimport cython

cdef class SqsQueue:
    cdef dict __dict__
    cdef public object sys, spec, st, visible, gate, task_done, expiries
    cdef public bint fifo, rbif, lambda_esm, ticking, window_armed, expiry_armed
    cdef public long inflight, sent, received, deleted, dlq, duplicates, stale_deletes
    cdef public long messages_cut, batches, active, cap, level, batch_size
    cdef public double batching_window, visibility_timeout
    cdef public list waits

    cpdef object put(self, list msg, double now)
    cpdef object kick(self, double now)
    cpdef object _start(self, double now, list batch, object slot)
    cpdef object _arm(self, double t, list rx)
    cpdef object settle(self, list batch, object ok, double now, list rx)

# The receive / expiry / delete bookkeeping, called per batch from the methods above (C calls).
@cython.locals(m=list, r=long)
cpdef list on_receive(SqsQueue q, list batch, double now, double warmup)
@cython.locals(i=Py_ssize_t, hidden=long, m=list, oks=list)
cpdef long on_settle(SqsQueue q, list batch, object ok, list receipts, double now) except? -1
