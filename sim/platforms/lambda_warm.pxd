# The C types of lambda_warm.py, for Cython alone (setup.py; sim/native.py): the busy heap and
# idle pool arrays as typed memoryviews of float64 and int64, the loop's scalars as C doubles
# and integers. Nothing here changes an operation: doubles are Python's floats.
cimport cython
from libc.stdint cimport int64_t

cdef int64_t _ON_DEMAND, _DISCARD

@cython.locals(p=Py_ssize_t, end=double, env=int64_t, kind=int64_t, death=double)
cdef void _sift_up(
    double[::1] h_end, int64_t[::1] h_env, int64_t[::1] h_kind, double[::1] h_death, Py_ssize_t k
) noexcept

@cython.locals(c=Py_ssize_t, k=Py_ssize_t, end=double, env=int64_t, kind=int64_t, death=double)
cdef Py_ssize_t _pop_root(
    double[::1] h_end, int64_t[::1] h_env, int64_t[::1] h_kind, double[::1] h_death, Py_ssize_t hn
) noexcept

@cython.locals(
    hcap=Py_ssize_t, pcap=Py_ssize_t, t=double, end=double, d=double, exp=double, dur=double,
    env=int64_t,
)
cpdef tuple warm_span(
    const double[:] arr, const double[:] svc, Py_ssize_t i, Py_ssize_t j, double scale,
    double timeout, Py_ssize_t limit, double ka, double[::1] h_end, int64_t[::1] h_env,
    int64_t[::1] h_kind, double[::1] h_death, Py_ssize_t hn, double[::1] p_exp,
    int64_t[::1] p_env, double[::1] p_death, Py_ssize_t pn, int64_t[::1] rows,
)
