"""Human quantities -> SI floats.

Durations -> seconds, rates -> events per second, memory -> MB (MiB-based for Ki/Mi/Gi, decimal
for k/M/G), CPU -> cores, percentages -> fractions. A `/month` rate means the billing month: the
scenario's `month:` where the caller passes it, else 730 h, as the bills count (docs/model.md
section 6).
Every parser raises ValueError with a message that says what was expected; pydantic turns it into
an error naming the key.
"""

from __future__ import annotations

import math
import re

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_MONTH = 30 * SECONDS_PER_DAY  # a 30-day month (`month: 720h`), not the default
# The month of a `/month` rate when no scenario says otherwise: the 730-h billing month of the
# providers' calculators (prices.yaml `billing.month_hours`; tests/test_bill.py: the same).
BILLING_MONTH_S = 730 * 3600.0

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": SECONDS_PER_DAY,
    "w": 7 * SECONDS_PER_DAY,
}
_PER_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": SECONDS_PER_DAY,
    "day": SECONDS_PER_DAY,
    "w": 7 * SECONDS_PER_DAY,
    "week": 7 * SECONDS_PER_DAY,
    "month": BILLING_MONTH_S,
    "mo": BILLING_MONTH_S,
}
_COUNT_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUM})\s*([a-zµ]*)\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUM})\s*([kKMBG]?)\s*(?:/|per\s+)\s*([a-z]+)\s*$")
_COUNT_RE = re.compile(rf"^\s*({_NUM})\s*([kKMBG]?)\s*$")
_MEMORY_RE = re.compile(rf"^\s*({_NUM})\s*([KMGT]i?|[kmg]b?|[KMGT]B|B)?\s*$")

DURATION_PATTERN = r"^\s*[0-9.eE+-]+\s*(ns|us|µs|ms|s|sec|m|min|h|d|w)?\s*$"
RATE_PATTERN = r"^\s*[0-9.eE+-]+\s*[kKMBG]?\s*(/|per )\s*[a-z]+\s*$"


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"expected a finite {what}, got {value!r}")
    return value


def parse_duration(value: object) -> float:
    """'250us', '200ms', '15m', '2h', '1d' or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '200ms' or '15m', got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), "duration")
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m and (m.group(2) or "s") in _DURATION_UNITS:
            return _finite(float(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"], "duration")
    raise ValueError(
        f"expected a duration such as '250us', '200ms', '15m', '2h' or '1d', got {value!r}"
    )


def parse_count(value: object) -> float:
    """'50M', '100k', '3e6' or a number -> a plain number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number such as 100k or 50M, got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), "number")
    if isinstance(value, str):
        m = _COUNT_RE.match(value)
        if m:
            return _finite(float(m.group(1)) * _COUNT_SUFFIX[m.group(2)], "number")
    raise ValueError(f"expected a number such as 100k or 50M, got {value!r}")


def parse_rate(value: object, month_s: float = BILLING_MONTH_S) -> float:
    """'20/s', '1200/min', '3M/day', '50M/month' or a bare number per second -> events/second;
    a month is `month_s` seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a rate such as '20/s' or '50M/month', got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), "rate")
    if isinstance(value, str):
        m = _RATE_RE.match(value)
        if m and m.group(3) in _PER_UNITS:
            count = float(m.group(1)) * _COUNT_SUFFIX[m.group(2)]
            per = month_s if m.group(3) in ("month", "mo") else _PER_UNITS[m.group(3)]
            return _finite(count / per, "rate")
    raise ValueError(
        f"expected a rate such as '20/s', '1200/min', '3M/day' or '50M/month', got {value!r}"
    )


_MEMORY_FACTORS_MB = {
    None: 1.0,  # a bare number is MB (Lambda's convention)
    "B": 1e-6,
    "k": 1e-3,
    "kb": 1e-3,
    "KB": 1e-3,
    "m": 1.0,
    "mb": 1.0,
    "MB": 1.0,
    "M": 1.0,
    "g": 1e3,
    "gb": 1e3,
    "GB": 1e3,
    "G": 1e3,
    "T": 1e6,
    "TB": 1e6,
    "Ki": 1024 / 1024**2,
    "Mi": 1.0,  # we count MB and MiB alike as "MB" for Lambda; Ki/Gi are exact multiples of Mi
    "Gi": 1024.0,
    "Ti": 1024.0**2,
}


def parse_memory_mb(value: object) -> float:
    """'512Mi', '1Gi', '2GB' or a bare number of MB -> MB (Mi-based; Lambda's 'MB' is MiB)."""
    if isinstance(value, bool):
        raise ValueError(f"expected memory such as 512, '512Mi' or '1Gi', got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), "memory size")
    if isinstance(value, str):
        m = _MEMORY_RE.match(value)
        if m and m.group(2) in _MEMORY_FACTORS_MB:
            return _finite(float(m.group(1)) * _MEMORY_FACTORS_MB[m.group(2)], "memory size")
    raise ValueError(f"expected memory such as 512, '512Mi' or '1Gi', got {value!r}")


def parse_cpu(value: object) -> float:
    """'500m', '2', 0.25 -> cores."""
    if isinstance(value, bool):
        raise ValueError(f"expected CPU such as '500m' or 2, got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), "CPU amount")
    if isinstance(value, str):
        s = value.strip()
        try:
            if s.endswith("m"):
                return _finite(float(s[:-1]) / 1000.0, "CPU amount")
            return _finite(float(s), "CPU amount")
        except ValueError:
            pass
    raise ValueError(f"expected CPU such as '500m' or 2, got {value!r}")


def parse_fraction(value: object) -> float:
    """'0.1%' -> 0.001, '5%' -> 0.05, 0.2 -> 0.2."""
    if isinstance(value, bool):
        raise ValueError(f"expected a fraction such as 0.001 or '0.1%', got {value!r}")
    if isinstance(value, int | float):
        return _finite(float(value), "fraction")
    if isinstance(value, str):
        s = value.strip()
        try:
            if s.endswith("%"):
                return _finite(float(s[:-1]) / 100.0, "fraction")
            return _finite(float(s), "fraction")
        except ValueError:
            pass
    raise ValueError(f"expected a fraction such as 0.001 or '0.1%', got {value!r}")


def format_duration(seconds: float) -> str:
    """Compact human form for tables: 850us, 12.3ms, 4.2s, 15m, 2h."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g}ms"
    if seconds < 120:
        return f"{seconds:.3g}s"
    if seconds < 7200:
        return f"{seconds / 60:.3g}m"
    return f"{seconds / 3600:.3g}h"
