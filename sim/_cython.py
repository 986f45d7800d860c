"""The names of Cython's pure-Python mode that sim's compiled modules use, as no-ops, for when
they run as Python where Cython is not installed (it is a build requirement only: sim.native).
Where it is installed they import Cython's own shadow module instead; compiled, Cython reads
the decorators as C types of the locals they name. Nothing here changes what the code does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

compiled = False  # `if cython.compiled:` branches are the C build's alone

# C type names the decorators mention (only their names matter in Python)
double = float
Py_ssize_t = int
bint = bool
long = int


def locals(**types: Any) -> Callable[[F], F]:
    """@cython.locals(x=double, ...): C types of a function's locals, for Cython alone."""

    def keep(f: F) -> F:
        return f

    return keep


def boundscheck(_on: bool) -> Callable[[F], F]:
    """@cython.boundscheck(False): C indexing without the range check, for Cython alone."""
    return locals()


def wraparound(_on: bool) -> Callable[[F], F]:
    """@cython.wraparound(False): no negative indexes, for Cython alone."""
    return locals()
