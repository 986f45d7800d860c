# C layout of PlatformModel for Cython alone (setup.py; sim/native.py): an extension type with an
# instance dict, so that SystemModel (sim/systems/engine.pxd) can declare its hot fields as C
# fields; every other attribute stays a Python attribute.
cdef class PlatformModel:
    cdef dict __dict__
    cdef public object spec, ctx, env

cdef class DrawBuffer:
    cdef public object _dist, _rng
    cdef public Py_ssize_t _n, _i
    cdef public list _buf

    cpdef object next(self)
