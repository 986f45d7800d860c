"""Numbers as people write them, for the terminal and the report alike (one place, so both agree).

Durations in the largest unit that keeps the number >= 1 ("90 d", "20 min", "250 ms"), money
with the precision a bill has (cents below $1,000, whole dollars above, two significant digits
below a cent), counts with thousands separators.
"""

from __future__ import annotations

import math
from typing import Any

# below this many requests per replication, a cost per million requests is mostly fixed cost
# divided by a handful of requests: say so beside the figure
FEW_REQUESTS = 500

_DURATION_UNITS = (
    (86400.0, "d"),
    (3600.0, "h"),
    (60.0, "min"),
    (1.0, "s"),
    (1e-3, "ms"),
    (1e-6, "us"),
)


def ms(x: float | None) -> str:
    """A latency in milliseconds as the tables show it: 0ms, 0.512ms, 59.7ms, 218ms, 40.8s."""
    if x is None or not math.isfinite(x):
        return "-"
    if x == 0:  # e.g. no wait in a queue: not the 0.000ms a float rounded to zero would show
        return "0ms"
    if x >= 10_000:
        return f"{x / 1000:.1f}s"
    if x >= 100:
        return f"{x:.0f}ms"
    if x >= 1:
        return f"{x:.1f}ms"
    return f"{x:.3f}ms"


def _sig(x: float, digits: int = 3) -> str:
    """x to `digits` significant digits, without a trailing .0 or exponent: 90, 1.5, 2.25."""
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration(seconds: float | None) -> str:
    """Seconds in the largest unit that keeps the number >= 1: 90 d, 6 h, 20 min, 1.5 s, 250 ms."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds == 0:
        return "0 s"
    for size, unit in _DURATION_UNITS:
        if abs(seconds) >= size:
            return f"{_sig(seconds / size)} {unit}"
    return f"{_sig(seconds / 1e-6)} us"


def usd(x: float | None) -> str:
    """$0.0012, $5.07, $118.35, $29,658 (no cents on four-figure sums)."""
    if x is None or not math.isfinite(x):
        return "-"
    if abs(x) >= 1000:
        return f"${x:,.0f}"
    if abs(x) >= 0.01 or x == 0:
        return f"${x:,.2f}"
    return f"${_sig(x, 2)}"


def pct(x: float | None, decimals: int = 2) -> str:
    """A fraction as a percentage: 0.0024 -> 0.24%."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x * 100:.{decimals}f}%"


def count(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:,.0f}"


def per_million(x: float | None, requests: float | None) -> str:
    """Cost per million requests, with a warning when it rests on very few requests."""
    text = usd(x)
    if x is not None and requests is not None and requests < FEW_REQUESTS:
        text += f" (from only {requests:,.0f} requests)"
    return text


# --- log axes (the report's and the studies' plots) ---

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def log_ticks(lo: float, hi: float) -> dict[str, Any]:
    """Axis options for a log axis spanning [lo, hi]: labels at 1, 2, 5 per decade (1 alone past
    five decades) written as people write them (0.05, 200, 20k, 5×10⁻⁴), unlabelled minor ticks
    at every digit. plotly's own log labels over a decade or two read "2 5 10 2 5" or "2e+3"."""
    if not (0 < lo <= hi and math.isfinite(hi)):
        return {}
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mantissas = (1, 2, 5) if e1 - e0 <= 5 else (1,)
    vals = [m * 10.0**e for e in range(e0, e1 + 1) for m in mantissas]
    return {
        "tickmode": "array",
        "tickvals": vals,
        "ticktext": [_tick_text(v) for v in vals],
        "minor": {"ticks": "outside", "ticklen": 3, "dtick": "D1", "showgrid": False},
    }


def _tick_text(v: float) -> str:
    e = math.floor(math.log10(v) + 1e-9)
    m = round(v / 10.0**e)
    if e < -3:
        power = f"10{str(e).translate(_SUPERSCRIPT)}"
        return power if m == 1 else f"{m}×{power}"
    if e >= 6:
        return f"{m * 10 ** (e - 6)}M"
    if e >= 4:
        return f"{m * 10 ** (e - 3)}k"
    return f"{v:,.{max(0, -e)}f}"
