"""Why anyone should trust the numbers: the closed-form cases behind `sim validate` (cases.py) and
the per-request SimPy reference models (reference.py) that the equivalence tests hold the fast
kernels to, request by request.

The reference models ship with the product rather than under tests/: they are the independent
formulation of every platform, and a user who doubts a kernel on their own scenario can run
`sim.validation.reference.run_reference` on it and compare.

May import: the runner, the engine, platforms and everything below. Never sim.cli or sim.report.
"""
