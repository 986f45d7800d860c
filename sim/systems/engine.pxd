cimport cython
from sim.platforms.base cimport DrawBuffer, PlatformModel
from sim.systems.sqs cimport SqsQueue

cdef class _Uniforms:
    cdef public object _rng
    cdef public Py_ssize_t _i
    cdef public list _buf

    cpdef object next(self)

cdef class StationLog:
    cdef public list rows
    cdef double[::1] buf  # the float64 buffer add() writes (compiled only)
    cdef Py_ssize_t n  # values in it
    @cython.locals(n=Py_ssize_t, buf="double[::1]")
    cpdef object add(self, double arrival, double start, double end, double wait, double startup,
                     bint cold, double outcome, double last)

cdef class EventHeap:
    cdef public list items
    cdef double[::1] _times, _seqs  # events' keys by heap position (compiled only)
    cdef list _fns, _args  # their fn and arg by heap position (compiled only)
    cdef public double t
    cdef public object arg
    cdef Py_ssize_t n
    cpdef double top(self)
    @cython.locals(i=Py_ssize_t, p=Py_ssize_t, times="double[::1]", seqs="double[::1]",
                   fns=list, args=list)
    cpdef object put(self, double t, double seq, object fn, object arg)
    @cython.locals(i=Py_ssize_t, c=Py_ssize_t, d=Py_ssize_t, n=Py_ssize_t, t=double, seq=double,
                   times="double[::1]", seqs="double[::1]", fns=list, args=list)
    cpdef object take(self)
    cpdef object push(self, tuple item)
    @cython.locals(seq=double)
    cpdef tuple pop(self)

cdef class Proc:
    cdef public object gen, done

cdef class Root:
    cdef public double arrival, last
    cdef public long pending
    cdef public bint sync_done

cdef class Station:
    cdef dict __dict__
    cdef public object sys, svc, spec, name, platform
    cdef public long index, calls_in, client_timeouts, busy, peak
    cdef public double work_s, scale, error_rate
    cdef public bint is_lambda, guarded, general
    cdef public StationLog log
    cdef public list on_free, calls_out, calls_ok, events_out, pub_out, bus_out

    # A slot, its release and the ingress latency, per visit: C calls from the engine (a Python
    # subclass's own method still wins: cpdef)
    cpdef object acquire(self, object proc, double now)
    cpdef object release(self, object slot, double now)
    cpdef double overhead(self) except? -1.0


cdef class Route:
    cdef public long n
    cdef public long src, dst
    cdef public object via
    cdef public double bytes, nat, endpoint, cross

cdef class Call:
    cdef public object step
    cdef public long retries
    cdef public double timeout
    cdef public Route route

cdef class PodStation(Station):
    cdef public long arrived, done, pods, rejected, rr, owed, orphan, conc, lb_requests
    cdef public bint shared, random
    cdef public object limit, drain_q
    cdef public list free, waiting
    cdef public dict cold_wait
    cdef public DrawBuffer ingress
    cpdef object acquire(self, object proc, double now)
    cpdef object release(self, object slot, double now)
    cpdef double overhead(self) except? -1.0
    @cython.locals(p=Py_ssize_t, busy=long)
    cdef object take_slot(self, object proc, double now)
    cdef object give_slot(self, object slot, double now)

cdef class SystemModel(PlatformModel):
    cdef public double now, end, warmup
    cdef public long seq
    cdef public EventHeap heap
    cdef public list stations, meter, leaf, completions, entered, _ready
    cdef public dict routes
    cdef public object cur, wake, invoke, one_entry, queues, gates, fail, handler
    cdef public object jitter, timeouts, task_count, batch
    cdef public StationLog entry_log

    # The hottest methods, called from typed code through the C vtable (a Python subclass's
    # override still wins: cpdef). Their argument types: what every caller passes.
    @cython.locals(rate=double, end=double, pod=PodStation)
    cpdef object _close(self, Station st, Py_ssize_t i, object outcome, object slot,
                        double arrival, double start, double ran_from, double startup, bint cold)
    cpdef object _row(self, Station st, double arrival, double start, double end, double wait,
                      double startup, bint cold, object outcome, object inst)
    @cython.locals(now=double)
    cpdef object _entry_done(self, Root root, double over, object outcome, double start,
                             double wait, double startup, bint cold)
    cpdef object task_done(self, Root root, double now)
    @cython.locals(dt=double)
    cpdef double _work(self, Station st, Py_ssize_t i, double w)
    @cython.locals(now=double, end=double, dt=double, deadline=double)
    cpdef bint _quick(self, Station dst, tuple plan, double startup, Call call)
    cpdef double _hop(self, Station src, Station dst, object cs=*)
    cpdef Route _route(self, Station src, Station dst, object cs)
    cpdef double _call_hop(self, Station src, Station dst, Call call)
    cpdef double _cross(self, Route route, Station dst)
    @cython.locals(proc=Proc)
    cpdef object _run(self, Proc proc, object value=*)
    @cython.locals(i=Py_ssize_t, st=Station, root=Root)
    cpdef object _arrive(self, double t)
    cpdef Py_ssize_t entry_service(self) except -1
    @cython.locals(sq=SqsQueue, now=double)
    cpdef int _publish(self, tuple step, Station st, Root root) except -1
