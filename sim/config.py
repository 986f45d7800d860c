"""Shared building blocks of the scenario model: a strict base model and unit-bearing types.

Every scenario section derives from `Strict` (unknown keys are errors). Quantities accept the human
forms of sim.units and are stored as SI floats (seconds, events/s, MB, cores, fractions); the JSON
Schema advertises both the number and the string form so editors can check files.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from sim import units


class Strict(BaseModel):
    """Base of every scenario section: unknown keys are rejected; values are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)


def _schema(pattern: str, example: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": pattern}],
        "examples": [example],
    }


Duration = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    WithJsonSchema(_schema(units.DURATION_PATTERN, "200ms")),
]
Rate = Annotated[
    float,
    BeforeValidator(units.parse_rate),
    WithJsonSchema(_schema(units.RATE_PATTERN, "20/s")),
]
Count = Annotated[
    float,
    BeforeValidator(units.parse_count),
    WithJsonSchema(_schema(r"^\s*[0-9.eE+-]+\s*[kKMBG]?\s*$", "50M")),
]
MemoryMB = Annotated[
    float,
    BeforeValidator(units.parse_memory_mb),
    WithJsonSchema(_schema(r"^\s*[0-9.eE+-]+\s*([KMGT]i?|[kmg]b?|[KMGT]B|B)?\s*$", "512Mi")),
]
Cpu = Annotated[
    float,
    BeforeValidator(units.parse_cpu),
    WithJsonSchema(_schema(r"^\s*[0-9.]+m?\s*$", "500m")),
]
Fraction = Annotated[
    float,
    BeforeValidator(units.parse_fraction),
    WithJsonSchema(_schema(r"^\s*[0-9.eE+-]+%?\s*$", "0.1%")),
]
