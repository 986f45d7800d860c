"""The report's figure dicts: sim.figure (shared with the studies' pages, which cannot import the
report)."""

from sim.figure import (
    TEMPLATE,
    Figure,
    bar,
    html,
    jsonable,
    log_ticks,
    plotly_js,
    sankey,
    scatter,
    template,
)
from sim.figure import preload as preload_figures

__all__ = [
    "TEMPLATE",
    "Figure",
    "bar",
    "html",
    "jsonable",
    "log_ticks",
    "plotly_js",
    "preload_figures",
    "sankey",
    "scatter",
    "template",
]
