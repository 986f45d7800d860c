"""Numbers as the terminal table and the report show them (one place, so both agree)."""

from __future__ import annotations


def ms(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 10_000:
        return f"{x / 1000:.1f}s"
    if x >= 100:
        return f"{x:.0f}ms"
    if x >= 1:
        return f"{x:.1f}ms"
    return f"{x:.3f}ms"


def usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.2f}" if x >= 0.01 or x == 0 else f"${x:.4f}"
