"""Figures as plain plotly.js dicts, the little of plotly's Figure API the report and the studies'
pages (sweep.html, crossover.html) use.

plotly's graph objects validate every property as it is set and deep-copy the template into every
figure (~0.1 s a figure here); a page only needs the JSON plotly.js reads. So sim builds that JSON
directly: traces are dicts ({"type": "scatter", ...}), a `Figure` places them on a
subplot grid laid out exactly as plotly.subplots.make_subplots lays it out (tests/test_report.py
checks both against plotly), and plotly validates a figure once, only when a caller asks for a
graph object (`to_go`, e.g. for image export).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.format import log_ticks  # noqa: F401 (the report's log axes; also used by studies)

TEMPLATE = "plotly_white"


def scatter(**props: Any) -> dict[str, Any]:
    return {"type": "scatter", **props}


def bar(**props: Any) -> dict[str, Any]:
    return {"type": "bar", **props}


def heatmap(**props: Any) -> dict[str, Any]:
    return {"type": "heatmap", **props}


def sankey(**props: Any) -> dict[str, Any]:
    return {"type": "sankey", **props}


class Figure:
    """`data` and `layout` of one figure; rows and columns count from 1, top-left first."""

    def __init__(
        self,
        rows: int = 1,
        cols: int = 1,
        *,
        shared_xaxes: bool = False,
        vertical_spacing: float | None = None,
        horizontal_spacing: float | None = None,
        subplot_titles: Sequence[str] = (),
        row_heights: Sequence[float] | None = None,
    ) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}
        self.rows, self.cols = rows, cols
        if rows == cols == 1 and not subplot_titles:
            return  # a plain figure: plotly.js's default axes
        self.layout.update(
            _grid(
                rows,
                cols,
                shared_xaxes,
                0.3 / rows if vertical_spacing is None else vertical_spacing,
                0.2 / cols if horizontal_spacing is None else horizontal_spacing,
                list(subplot_titles),
                row_heights,
            )
        )

    def _cell(self, row: int, col: int) -> int:
        if not (1 <= row <= self.rows and 1 <= col <= self.cols):
            raise ValueError(f"no subplot at row {row}, col {col}")
        return (row - 1) * self.cols + col

    def add_trace(self, trace: dict[str, Any], row: int | None = None, col: int | None = None):
        if row is not None:
            n = self._cell(row, col or 1)
            trace = {**trace, "xaxis": _ref("x", n), "yaxis": _ref("y", n)}
        self.data.append(trace)

    def update_layout(self, **props: Any) -> None:
        _merge(self.layout, props)

    def update_xaxes(self, row: int | None = None, col: int | None = None, **props: Any) -> None:
        self._update_axes("x", row, col, props)

    def update_yaxes(self, row: int | None = None, col: int | None = None, **props: Any) -> None:
        self._update_axes("y", row, col, props)

    def _update_axes(self, xy: str, row: int | None, col: int | None, props: dict) -> None:
        if row is None:
            cells = range(1, self.rows * self.cols + 1)
        else:
            cells = range(self._cell(row, col or 1), self._cell(row, col or 1) + 1)
        for n in cells:
            _merge(self.layout.setdefault(_axis(xy, n), {}), props)

    def add_annotation(self, **props: Any) -> None:
        self.layout.setdefault("annotations", []).append(props)

    def add_vrect(
        self,
        x0: float,
        x1: float,
        *,
        row: int = 1,
        col: int = 1,
        annotation: dict[str, Any] | None = None,
        **shape: Any,
    ) -> None:
        """A band over the whole height of one subplot, labelled at its top left (as plotly's
        add_vrect with annotation_position="top left")."""
        n = self._cell(row, col)
        x, y = _ref("x", n), _ref("y", n) + " domain"
        rect = {"type": "rect", "x0": x0, "x1": x1, "xref": x, "y0": 0, "y1": 1, "yref": y}
        self.layout.setdefault("shapes", []).append({**shape, **rect})
        if annotation:
            label = {"showarrow": False, "x": x0, "xanchor": "left", "xref": x}
            label |= {"y": 1, "yanchor": "top", "yref": y}
            self.add_annotation(**annotation, **label)

    def add_vline(self, x: float, *, row: int = 1, col: int = 1, **shape: Any) -> None:
        """A vertical line over the whole height of one subplot (as plotly's add_vline)."""
        n = self._cell(row, col)
        line = {"type": "line", "x0": x, "x1": x, "xref": _ref("x", n), "y0": 0, "y1": 1}
        self.layout.setdefault("shapes", []).append(
            {**shape, **line, "yref": _ref("y", n) + " domain"}
        )

    def to_dict(self) -> dict[str, Any]:
        """The figure as plotly.js reads it (numpy arrays stay arrays; the encoder types them)."""
        layout = dict(self.layout)
        layout.setdefault("template", template())
        return {"data": self.data, "layout": layout}

    def write_html(self, path: Path) -> None:
        """A self-contained page of this figure (plotly.js inlined; opens offline)."""
        import plotly.io as pio

        path.parent.mkdir(parents=True, exist_ok=True)
        pio.write_html(jsonable(self.to_dict()), path, validate=False, include_plotlyjs=True)

    def to_go(self) -> Any:
        """A validated plotly graph object (for image export and other plotly tools)."""
        import plotly.graph_objects as go

        return go.Figure(copy.deepcopy(self.to_dict()))


@functools.cache
def template() -> dict[str, Any]:
    """The report's plotly template as JSON, read once per process from plotly's own file
    (plotly/package_data/templates/, what `pio.templates[name]` validates: the same dict, data
    first as its to_plotly_json orders it) without importing plotly's graph objects (~0.1 s)."""
    import importlib.resources
    import json

    try:
        ref = importlib.resources.files("plotly") / "package_data" / "templates"
        raw = json.loads((ref / f"{TEMPLATE}.json").read_text(encoding="utf-8"))
        return {"data": raw.get("data", {}), "layout": raw.get("layout", {})}
    except (OSError, ValueError):  # a plotly laid out otherwise: ask plotly itself
        import plotly.io as pio

        out: dict[str, Any] = pio.templates[TEMPLATE].to_plotly_json()
        return out


def preload(array: Any = None) -> None:
    """Import now what serialising a page's figures imports on first use (plotly.io, the
    template, and what plotly imports to encode `array`-like values: numpy's by default, a
    pandas Series for the report), e.g. while the jobs run in other processes: a one-point
    figure through the same path."""
    import numpy as np
    import plotly.io as pio

    x = np.zeros(1) if array is None else array
    fig = {"data": [scatter(x=x, y=[0.0])], "layout": {"template": template()}}
    pio.to_html(jsonable(fig), validate=False, full_html=False, include_plotlyjs=False, div_id="x")


def jsonable(fig: dict[str, Any]) -> dict[str, Any]:
    """A copy of a figure dict with numpy arrays and pandas series as plotly.js typed arrays
    (base64), as plotly's Figure.to_dict writes them; the figure itself is left as it is."""
    layout = dict(fig.get("layout") or {})
    template = layout.pop("template", None)  # lists and scalars only: nothing to convert
    out: dict[str, Any] = _containers({**fig, "layout": layout})
    if _has_arrays(out):  # else plotly's pass changes nothing; its import costs ~0.05 s
        from _plotly_utils.utils import convert_to_base64

        convert_to_base64(out)
    if template is not None:
        out["layout"]["template"] = template
    return out


def _has_arrays(x: Any) -> bool:
    """Whether anything in `x` is array-like as plotly's is_homogeneous_array tests it (has
    __array__ or __array_interface__: numpy, pandas); only those become typed arrays."""
    if isinstance(x, dict):
        return any(_has_arrays(v) for v in x.values())
    if isinstance(x, list | tuple):
        return any(_has_arrays(v) for v in x)
    return hasattr(x, "__array__") or hasattr(x, "__array_interface__")


def _containers(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _containers(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_containers(v) for v in x]
    return x


def _ref(xy: str, n: int) -> str:
    return xy if n == 1 else f"{xy}{n}"


def _axis(xy: str, n: int) -> str:
    return f"{xy}axis" if n == 1 else f"{xy}axis{n}"


def _merge(into: dict[str, Any], props: dict[str, Any]) -> None:
    """Nested update, as plotly's update_layout: dicts merge key by key, anything else replaces."""
    for k, v in props.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def _grid(
    rows: int,
    cols: int,
    shared_xaxes: bool,
    vspace: float,
    hspace: float,
    titles: list[str],
    row_heights: Sequence[float] | None,
) -> dict[str, Any]:
    """make_subplots' layout for a plain grid (plotly/_subplots.py, plotly 6-7), same arithmetic:
    axes numbered row by row from the top left; with shared x axes every row matches the bottom
    one and only the bottom one shows tick labels; subplot titles centred over each cell."""
    widths = [(1.0 - hspace * (cols - 1)) / cols] * cols
    if row_heights is None:
        heights = [(1.0 - vspace * (rows - 1)) / rows] * rows
    else:
        total = float(sum(row_heights))
        heights = [(1.0 - vspace * (rows - 1)) * (h / total) for h in row_heights][::-1]
    layout: dict[str, Any] = {}
    cells = []
    for r in range(rows):
        rr = rows - 1 - r  # plotly stacks rows from the bottom
        y0 = sum(heights[:rr]) + rr * vspace
        y_dom = [min(max(y0, 0.0), 1.0), min(max(y0 + heights[-1 - r], 0.0), 1.0)]
        for c in range(cols):
            x0 = sum(widths[:c]) + c * hspace
            x_dom = [x0, x0 + widths[c]]
            n = r * cols + c + 1
            layout[_axis("x", n)] = {"anchor": _ref("y", n), "domain": x_dom}
            layout[_axis("y", n)] = {"anchor": _ref("x", n), "domain": y_dom}
            cells.append((x_dom, y_dom))
    if shared_xaxes and rows > 1:
        for c in range(cols):
            bottom = (rows - 1) * cols + c + 1
            for r in range(rows - 1):
                ax = layout[_axis("x", r * cols + c + 1)]
                ax["matches"] = _ref("x", bottom)
                ax["showticklabels"] = False
    notes = []
    for text, (x_dom, y_dom) in zip(titles, cells, strict=False):
        note = {"font": {"size": 16}, "showarrow": False, "text": text, "x": sum(x_dom) / 2.0}
        note |= {"xanchor": "center", "xref": "paper", "y": y_dom[1], "yanchor": "bottom"}
        notes.append(note | {"yref": "paper"})
    if notes:
        layout["annotations"] = notes
    return layout
