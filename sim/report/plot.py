"""The report's figure dicts: sim.figure (shared with the studies' pages, which cannot import the
report)."""

from sim.figure import TEMPLATE, Figure, bar, jsonable, log_ticks, sankey, scatter, template
from sim.figure import preload as preload_figures

__all__ = [
    "TEMPLATE",
    "Figure",
    "bar",
    "jsonable",
    "log_ticks",
    "preload_figures",
    "sankey",
    "scatter",
    "template",
]
