# C layout of SqsQueue for Cython alone (setup.py; sim/native.py): its hot counters and state as
# C fields (self typed in its methods, `q` in run_batch and _messages); the rest stays in its
# instance dict. Nothing here changes an operation.
cdef class SqsQueue:
    cdef dict __dict__
    cdef public object sys, spec, st, visible, gate, task_done, expiries
    cdef public bint fifo, rbif, lambda_esm, ticking, window_armed, expiry_armed
    cdef public long inflight, sent, received, deleted, dlq, duplicates, stale_deletes
    cdef public long messages_cut, batches, active, cap, level, batch_size
    cdef public double batching_window
    cdef public list waits

    cpdef object put(self, list msg, double now)
    cpdef object kick(self, double now)
