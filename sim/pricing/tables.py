"""The price table (prices.yaml, instances.yaml) and the Bill every cost function returns.

One source of truth: every rate, allowance and billing rule is read from the data files here; no
rate literal lives anywhere else in the code. Each `Rate` carries its unit, source and date, and
`Bill.sources` / `Bill.price_date` carry them on to reports.

Billing a simulated window (the same rule for every platform): usage in the window is scaled to a
billing month (`scale = month_s / window_s`), the monthly bill is computed with every tier, free
allowance and monthly minimum applied per month, and the window's cost is `monthly / scale`. The
month is 730 hours by default, as AWS's and Google's pricing calculators count it (prices.yaml
`billing.month_hours`); a scenario's `month:` sets another (e.g. `720h`, 30 days). Per-window
costs do not depend on the month except through tiers, allowances and minimums.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import itertools
import json
import math
import os
import re
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, cast

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from sim.errors import InputError

SECONDS_PER_HOUR = 3600.0


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    date: str
    secondary: bool = False
    note: str = ""

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> str:
        # YAML may hand us a datetime.date; keep ISO strings so dates compare and serialise simply.
        text = value.isoformat() if isinstance(value, dt.date) else str(value)
        dt.date.fromisoformat(text)
        return text

    def citation(self) -> str:
        """Source text for reports: '[S]' marks a secondary source, the note follows."""
        text = self.source + (" [S]" if self.secondary else "")
        return f"{text} ({self.note})" if self.note else text


class Rate(_Data):
    """One rate, allowance or billing rule: `rate` USD (or units) per `per` units of `unit`."""

    rate: float = Field(ge=0)
    unit: str = Field(min_length=1)
    per: float = Field(1.0, gt=0)
    up_to: float | None = Field(None, gt=0, description="tiers: cumulative monthly end of the tier")

    def cost(self, quantity: float) -> float:
        return quantity / self.per * self.rate


class InstanceType(_Data):
    """A node type: vCPU, memory and on-demand price per hour."""

    name: str
    vcpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0)
    hourly_usd: float = Field(ge=0)


def _load_yaml(filename: str) -> dict[str, Any]:
    source = resources.files("sim.pricing").joinpath(filename)
    text = source.read_text(encoding="utf-8")
    cache = _cache_file(str(source), text)
    if cache is not None:
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if isinstance(cached, dict):
                return cached
    # libyaml's parser (same SafeLoader resolvers): ~0.1 s -> ~0.01 s of every run's start
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise RuntimeError(f"sim/pricing/{filename}: expected a mapping of keys to entries")
    if cache is not None and not sys.dont_write_bytecode:
        _write_cache(cache, data)
    return data


def _cache_file(source: str, text: str) -> Path | None:
    """Where the JSON of a parsed table is cached, as Python caches bytecode (the package's
    __pycache__, or PYTHONPYCACHEPREFIX): named by the text's CRC and length, so an edited
    table misses it. JSON reads in ~0.3 ms what YAML builds in ~15 ms (prices.yaml), on the
    critical path of every run's start. None for a table not in a plain folder (a zip)."""
    if not Path(source).is_file():
        return None
    data = text.encode("utf-8")
    pyc = Path(importlib.util.cache_from_source(source))
    return pyc.with_name(f"{Path(source).name}.{zlib.crc32(data):08x}-{len(data)}.json")


def _iso_date_text(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not cached: {type(value).__name__}")  # no cache: the YAML each time


def _write_cache(cache: Path, data: dict[str, Any]) -> None:
    """Best effort (a read-only install just parses each time); older versions are removed.
    YAML dates become ISO text, which the tables' models read as they read the dates."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, default=_iso_date_text)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cache)
        stem = cache.name.split(".", 2)  # e.g. prices, yaml, <crc>-<len>.json
        for old in cache.parent.glob(f"{stem[0]}.{stem[1]}.*.json"):
            if old != cache:
                old.unlink(missing_ok=True)


@functools.cache
def _rates() -> dict[str, tuple[Rate, ...]]:
    table: dict[str, tuple[Rate, ...]] = {}
    for key, entry in _load_yaml("prices.yaml").items():
        items = entry if isinstance(entry, list) else [entry]
        tiers = tuple(Rate.model_validate(item) for item in items)
        bounds = [t.up_to for t in tiers]
        if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
            raise RuntimeError(f"prices.yaml {key}: every tier but the last needs up_to")
        if any(a >= b for a, b in itertools.pairwise(cast("list[float]", bounds[:-1]))):
            raise RuntimeError(f"prices.yaml {key}: tier bounds must increase")
        table[str(key)] = tiers
    return table


@functools.cache
def _instances() -> dict[str, InstanceType]:
    return {
        str(name): InstanceType.model_validate({"name": str(name), **entry})
        for name, entry in _load_yaml("instances.yaml").items()
    }


def tiers(key: str) -> tuple[Rate, ...]:
    """All tiers of a price (a 1-tuple for an untiered one)."""
    try:
        return _rates()[key]
    except KeyError:
        raise KeyError(f"no price {key!r} in sim/pricing/prices.yaml") from None


def price(key: str) -> Rate:
    """The rate under `key` (for a tiered price, its first tier)."""
    return tiers(key)[0]


def tiered_cost(quantity: float, key: str) -> float:
    """USD for a monthly `quantity` priced by the tiers under `key` (each tier up to its up_to)."""
    total, lower = 0.0, 0.0
    for tier in tiers(key):
        upper = math.inf if tier.up_to is None else tier.up_to
        if quantity <= lower:
            break
        total += tier.cost(min(quantity, upper) - lower)
        lower = upper
    return total


def known_instance_types() -> list[str]:
    return sorted(_instances())


def instance_type(name: str) -> InstanceType:
    """The node type `name`; an InputError lists the known names if there is none."""
    try:
        return _instances()[name]
    except KeyError:
        raise InputError(
            f"unknown node type {name!r}; known types: {', '.join(known_instance_types())}",
            key="cluster.node",
        ) from None


def price_table() -> list[dict[str, Any]]:
    """Every rate (one row per tier) and node type, for docs and reports."""
    rows: list[dict[str, Any]] = []
    for key, rates in _rates().items():
        for i, r in enumerate(rates):
            rows.append({"key": key, "tier": i + 1 if len(rates) > 1 else None, **r.model_dump()})
    for name, it in _instances().items():
        rows.append(
            {
                "key": f"instance.{name}",
                "tier": None,
                "rate": it.hourly_usd,
                "per": 1.0,
                "unit": f"USD per hour ({it.vcpu:g} vCPU, {it.memory_gib:g} GiB)",
                "up_to": None,
                **it.model_dump(include={"source", "date", "secondary", "note"}),
            }
        )
    return rows


def billing_month_s() -> float:
    """The default billing month in seconds (730 h, as the providers' calculators count)."""
    return price("billing.month_hours").rate * SECONDS_PER_HOUR


def bytes_to_gb(n_bytes: float) -> float:
    """Bytes -> billed GB for AWS data lines (the divisor is itself a documented table entry)."""
    return n_bytes / price("aws.bytes_per_gb").rate


# --- byte quantities in settings ---------------------------------------------------------------

_BYTES_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([kKMGT]?i?)[bB]?\s*$")
_BYTE_FACTORS = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def parse_bytes(value: object) -> float:
    """'2KB' (1e3), '512KiB'/'512Ki' (2^10), '1MB', '1GiB' or a bare number of bytes -> bytes."""
    if not isinstance(value, bool):
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            m = _BYTES_RE.match(value)
            if m and m.group(2) in _BYTE_FACTORS:
                return float(m.group(1)) * _BYTE_FACTORS[m.group(2)]
    raise ValueError(
        f"expected a size in bytes such as 2048, '2KB', '512KiB' or '1MB', got {value!r}"
    )


Bytes = Annotated[
    float,
    BeforeValidator(parse_bytes),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*([kKMGT]i?)?[bB]?\s*$"},
            ],
            "examples": ["2KB"],
        }
    ),
]


# --- the bill ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    """Cost of a simulated window and its billing-month equivalent, line by line.

    `breakdown` is window USD per line, `monthly_breakdown` the monthly USD of the same lines.
    Discount lines (commitments: savings plans, reserved instances, CUDs) are negative and named in
    `discounts`; `list_monthly_usd` is the bill before them, `monthly_usd` the effective bill.
    Operating cost (`ops` lines: engineer time, monitoring, ...) is reported apart and never added
    to `total_usd` / `monthly_usd`. Values keep full precision; round for display only.
    """

    total_usd: float
    monthly_usd: float
    breakdown: dict[str, float]
    monthly_breakdown: dict[str, float]
    requests: float
    per_million_usd: float | None
    window_s: float
    sources: dict[str, str]
    price_date: str | None
    operating_usd: float = 0.0
    operating_monthly_usd: float = 0.0
    operating_breakdown: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    month_s: float = 730 * SECONDS_PER_HOUR
    discounts: tuple[str, ...] = ()
    operating_sources: dict[str, str] = field(default_factory=dict)

    @property
    def list_monthly_usd(self) -> float:
        """The monthly bill at list (on-demand) prices, before commitment discounts."""
        return self.monthly_usd - sum(self.monthly_breakdown.get(k, 0.0) for k in self.discounts)

    @property
    def list_usd(self) -> float:
        return self.total_usd - sum(self.breakdown.get(k, 0.0) for k in self.discounts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total_usd,
            "monthly": self.monthly_usd,
            "breakdown": dict(self.breakdown),
            "monthly_breakdown": dict(self.monthly_breakdown),
            "per_million": self.per_million_usd,
            "requests": self.requests,
            "window_s": self.window_s,
            "operating": self.operating_usd,
            "operating_monthly": self.operating_monthly_usd,
            "operating_breakdown": dict(self.operating_breakdown),
            "sources": dict(self.sources),
            "price_date": self.price_date,
            "notes": list(self.notes),
            "month_hours": self.month_s / SECONDS_PER_HOUR,
            "list": self.list_usd,
            "list_monthly": self.list_monthly_usd,
            "discounts": list(self.discounts),
        }


class BillBuilder:
    """Collects monthly USD per line with the rates behind each line, then builds a `Bill`."""

    def __init__(self, window_s: float, month_s: float | None = None) -> None:
        if not (window_s > 0 and math.isfinite(window_s)):
            raise InputError(f"the billed window must be a positive duration, got {window_s!r} s")
        month = billing_month_s() if month_s is None else float(month_s)
        if not (month > 0 and math.isfinite(month)):
            raise InputError(f"the billing month must be a positive duration, got {month_s!r} s")
        self.window_s = float(window_s)
        self.month_s = month
        self.month_h = month / SECONDS_PER_HOUR
        self.scale = month / self.window_s
        self._monthly: dict[str, float] = {}
        self._sources: dict[str, list[str]] = {}
        self._dates: list[str] = []
        self._operating: dict[str, float] = {}
        self._operating_sources: dict[str, str] = {}
        self._notes: list[str] = []
        self._discounts: list[str] = []

    def monthly(self, window_quantity: float) -> float:
        """A usage quantity measured over the window, scaled to the billing month."""
        return window_quantity * self.scale

    def line(
        self, name: str, monthly_usd: float, used: Iterable[Rate | InstanceType | str]
    ) -> None:
        self._monthly[name] = self._monthly.get(name, 0.0) + monthly_usd
        cites = self._sources.setdefault(name, [])
        for item in used:
            text = item if isinstance(item, str) else item.citation()
            if not isinstance(item, str):
                self._dates.append(item.date)
            if text not in cites:
                cites.append(text)

    def discount(
        self, name: str, monthly_usd: float, used: Iterable[Rate | InstanceType | str]
    ) -> None:
        """A commitment discount: `monthly_usd` > 0 is taken off the bill as a negative line."""
        if monthly_usd <= 0:
            return
        self.line(name, -monthly_usd, used)
        if name not in self._discounts:
            self._discounts.append(name)

    def operating(self, name: str, monthly_usd: float, source: str | None = None) -> None:
        self._operating[name] = self._operating.get(name, 0.0) + monthly_usd
        if source:
            self._operating_sources[name] = source

    def lines(self) -> dict[str, float]:
        """Monthly USD per line so far (a copy)."""
        return dict(self._monthly)

    def note(self, text: str) -> None:
        self._notes.append(text)

    def build(self, requests: float) -> Bill:
        window = {k: v / self.scale for k, v in self._monthly.items()}
        total = sum(window.values(), 0.0)
        operating_monthly = sum(self._operating.values(), 0.0)
        sources = {k: "; ".join(v) for k, v in self._sources.items()}
        if self._operating:
            given = set(self._operating) - set(self._operating_sources)
            if given:
                sources["operating"] = "scenario `ops` (user-supplied monthly amounts)"
            profiles = sorted(set(self._operating_sources.values()))
            if profiles:
                sources["operating_profile"] = "; ".join(profiles)
        return Bill(
            total_usd=total,
            monthly_usd=sum(self._monthly.values(), 0.0),
            breakdown=window,
            monthly_breakdown=dict(self._monthly),
            requests=float(requests),
            per_million_usd=total / requests * 1e6 if requests > 0 else None,
            window_s=self.window_s,
            sources=sources,
            price_date=min(self._dates) if self._dates else None,
            operating_usd=operating_monthly / self.scale,
            operating_monthly_usd=operating_monthly,
            operating_breakdown=dict(self._operating),
            notes=tuple(self._notes),
            month_s=self.month_s,
            discounts=tuple(self._discounts),
            operating_sources=dict(self._operating_sources),
        )
