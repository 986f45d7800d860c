"""Operating cost (`ops:` lines and bundled `ops_profile:`), reported apart from the cloud bill.

A profile (ops_profiles.yaml) is a documented estimate - "an article's estimate", not a price
list; `ops:` lines given in the scenario are added on top (the same name replaces the profile's).
The bill carries them as `operating_*`, so a report shows the cloud bill and the total cost of
ownership (cloud + operating) side by side.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from sim.config import Count
from sim.errors import InputError
from sim.pricing.tables import BillBuilder, _load_yaml

# `ops:` mapping of line name -> monthly USD (accepts 2000, 2k, "1.5k").
OpsCosts = dict[str, Annotated[Count, Field(ge=0)]]


@functools.cache
def _profiles() -> dict[str, dict[str, Any]]:
    return {str(k): v for k, v in _load_yaml("ops_profiles.yaml").items()}


def known_ops_profiles() -> list[str]:
    return sorted(_profiles())


def ops_profile(name: str) -> dict[str, Any]:
    """{'source', 'date', 'lines': {line: monthly USD}} of a bundled profile."""
    try:
        return _profiles()[name]
    except KeyError:
        known = ", ".join(known_ops_profiles())
        msg = f"unknown ops_profile {name!r}; known: {known}"
        raise InputError(msg, key="ops_profile") from None


def add_operating(
    b: BillBuilder, ops: Mapping[str, float] | None, profile: str | None = None
) -> None:
    """Profile lines (with its source), then the scenario's own `ops:` lines over them."""
    own = dict(ops or {})
    if profile:
        p = ops_profile(profile)
        source = f"ops_profile {profile}: {p['source']} ({p['date']})"
        for name, usd in p["lines"].items():
            if name not in own:
                b.operating(str(name), float(usd), source)
    for name, usd in own.items():
        b.operating(name, float(usd))


def _known_profile(name: str) -> str:
    if name not in _profiles():
        raise ValueError(f"unknown ops_profile {name!r}; known: {', '.join(known_ops_profiles())}")
    return name


# `ops_profile:` a bundled profile name (ops_profiles.yaml), validated.
OpsProfile = Annotated[str, AfterValidator(_known_profile)]
