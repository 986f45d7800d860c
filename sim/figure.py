"""Figures as plain plotly.js dicts, the little of plotly's Figure API the report and the studies'
pages (sweep.html, crossover.html) use.

plotly's graph objects validate every property as it is set and deep-copy the template into every
figure (~0.1 s a figure here); a page only needs the JSON plotly.js reads. So sim builds that JSON
directly: traces are dicts ({"type": "scatter", ...}), a `Figure` places them on a
subplot grid laid out exactly as plotly.subplots.make_subplots lays it out (tests/test_report.py
checks both against plotly), and plotly validates a figure once, only when a caller asks for a
graph object (`to_go`, e.g. for image export).

The page text is made here too (`html`): the same characters plotly.io.to_html writes for a figure
dict with validate=False (its orjson engine, its typed arrays, its <div> and script around them;
tests/test_report_plot.py compares the two), without importing plotly.io, which pulls in plotly's
validators and narwhals (~0.15 s on a page's first figure). Anything this does not reproduce
exactly (an array type other than plain numbers or text, an object orjson cannot write, no orjson,
plotly's json engine chosen) goes to plotly.io as before.
"""

from __future__ import annotations

import base64
import copy
import functools
import sys
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
        """A self-contained page of this figure (plotly.js inlined; opens offline), as
        plotly.io.write_html writes it (a random div id)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        page = html(self.to_dict(), full_html=True, include_plotlyjs=True, js=_JS_MARK)
        parts = page.split(_JS_MARK)
        # plotly.js (4.6 MB) is written as it is, not formatted into the page thrice (load, div,
        # page) and copied again by write_text: ~20 ms of the sweep's end. Same text.
        with path.open("w", encoding="utf-8") as fh:
            if len(parts) == 2:
                fh.writelines((parts[0], plotly_js(), parts[1]))
            else:  # plotly.io wrote the page: plotly.js is in it already
                fh.write(page)

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
    """Import and read now what a page's figures need on first use (orjson, the template,
    plotly.js, what encoding `array`-like values takes: numpy's by default, a pandas Series for
    the report), e.g. while the jobs run in other processes: a one-point figure through the
    same path."""
    import numpy as np

    x = np.zeros(1) if array is None else array
    html({"data": [scatter(x=x, y=[0.0])], "layout": {}}, div_id="x")
    plotly_js()


@functools.cache
def plotly_js() -> str:
    """plotly.js (4.6 MB) as plotly.offline.get_plotlyjs reads it, once per process, without
    importing plotly.offline."""
    import pkgutil

    raw = pkgutil.get_data("plotly", "package_data/plotly.min.js")
    if raw is None:  # a loader that cannot read package data: ask plotly
        from plotly.offline import get_plotlyjs

        return str(get_plotlyjs())
    return raw.decode("utf-8")


def html(
    fig: dict[str, Any],
    *,
    div_id: str | None = None,
    config: dict[str, Any] | None = None,
    default_width: str = "100%",
    full_html: bool = False,
    include_plotlyjs: bool = False,
    js: str | None = None,
) -> str:
    """plotly.io.to_html(fig, validate=False, ...) for these arguments, the same text (see the
    module docstring); `fig` is left as it is. `js`: a text written where plotly.js goes (only
    by this module's writer: plotly.io's fallback inlines plotly.js itself)."""
    try:
        return _html(fig, div_id, config, default_width, full_html, include_plotlyjs, js=js)
    except _Unsupported:
        import plotly.io as pio

        return str(
            pio.to_html(
                jsonable(fig),
                validate=False,
                full_html=full_html,
                include_plotlyjs=include_plotlyjs,
                div_id=div_id,
                config=config,
                default_width=default_width,
            )
        )


class _Unsupported(Exception):
    """Something plotly.io would write otherwise than _html: let plotly.io write it."""


# plotly.io.to_html's text (plotly 6-7, plotly/io/_html.py) with no MathJax, frames or post script.
_SCRIPT = (
    '                if (document.getElementById("{id}")) {{'
    "                    Plotly.newPlot("
    '                        "{id}",'
    "                        {data},"
    "                        {layout},"
    "                        {config}"
    "                    )"
    "                }}"
)
_DIV = (
    '<div style="height:{height}; width:{width};">'
    "        "
    "        {load}"
    '            <div id="{id}" class="plotly-graph-div" style="height:100%; width:100%;"></div>'
    "            <script>"
    "                window.PLOTLYENV=window.PLOTLYENV || {{}};"
    "                {script};"
    "            </script>"
    "        </div>"
)
_LOAD = (
    "        <script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>\n"
    "        <script>{js}</script>    "
)
_FULL = (
    '<!doctype html>\n<html>\n<head>\n    <meta charset="utf-8" />\n'
    "    <style>html, body {{height: 100%;}}</style>\n</head>\n<body>\n    {div}\n</body>\n</html>"
)
# Where Figure.write_html puts plotly.js: NUL never reaches the page otherwise (JSON escapes it).
_JS_MARK = "\x00plotly.js\x00"
# plotly.io.json's escapes of orjson's output, so the JSON can sit in a <script>.
_SWAP: tuple[tuple[str, str], ...] = (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f"))
_SWAP += (("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _html(
    fig: dict[str, Any],
    div_id: str | None,
    config: dict[str, Any] | None,
    default_width: str,
    full_html: bool,
    include_plotlyjs: bool,
    js: str | None = None,
) -> str:
    import json

    if fig.get("frames") or set(fig) - {"data", "layout"}:
        raise _Unsupported
    layout = dict(fig.get("layout") or {})
    template = layout.pop("template", None)  # plain JSON (template()): nothing to convert
    data = _plain(fig.get("data", []), False)
    layout = _plain(layout, False)
    if template is not None:
        layout["template"] = template
    if div_id is None:
        import uuid

        div_id = str(uuid.uuid4())
    conf = dict(config or {})
    conf.setdefault("responsive", True)
    if not conf.get("showSendToCloud", False):
        conf.pop("plotlyServerURL", None)
    script = _SCRIPT.format(
        id=div_id, data=_json(data), layout=_json(layout), config=json.dumps(conf)
    )
    sizes = (template or {}).get("layout", {})
    width = _px(layout.get("width", sizes.get("width", default_width)))
    height = _px(layout.get("height", sizes.get("height", "100%")))
    load = _LOAD.format(js=plotly_js() if js is None else js) if include_plotlyjs else ""
    div = _DIV.format(height=height, width=width, load=load, id=div_id, script=script).strip()
    return _FULL.format(div=div) if full_html else div


def _px(size: Any) -> str:
    """A numeric size in pixels, anything else as it is (as plotly.io.to_html)."""
    try:
        float(size)
    except (ValueError, TypeError):
        return str(size)
    return f"{size}px"


def _json(x: Any) -> str:
    """plotly.io.json.to_json_plotly with its orjson engine (the engine it picks when orjson is
    installed), for an object _plain made."""
    try:
        import orjson
    except ImportError:
        raise _Unsupported from None
    plotly_json = sys.modules.get("plotly.io._json")
    if plotly_json is not None and plotly_json.config.default_engine == "json":
        raise _Unsupported
    try:
        out = orjson.dumps(x, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:  # plotly would clean the object first: let it
        raise _Unsupported from None
    for bad, good in _SWAP:
        if bad in out:
            out = out.replace(bad, good)
    return out


# What plotly.js reads as typed arrays (_plotly_utils.utils.plotlyjsShortTypes), and the keys
# whose arrays plotly leaves as lists (is_skipped_key).
_SHORT = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4"}
_SHORT |= {"uint32": "u4", "float32": "f4", "float64": "f8"}
_SKIPPED = frozenset(("geojson", "layer", "layers", "range"))
_INTS = {"int64": ("int8", "int16", "int32"), "uint64": ("uint8", "uint16", "uint32")}


def _plain(x: Any, typed: bool, skipped: bool = False) -> Any:
    """`x` with its containers copied and its arrays as plotly.io writes them: an array that is
    a dict's value becomes a typed array ({"dtype", "bdata"}) unless its key, or a key above it,
    is one plotly skips; any other array a contiguous array (orjson writes a list); text arrays
    lists. Raises _Unsupported on anything else but JSON scalars (plotly would clean or coerce
    it otherwise)."""
    if isinstance(x, str | int | float) or x is None:  # bool is an int; np.float64 a float
        return x
    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            raise _Unsupported
        out = {}
        for k, v in x.items():
            skip = skipped or k in _SKIPPED
            out[k] = _plain(v, not skip, skip)
        return out
    if isinstance(x, list | tuple):
        return [_plain(v, False, skipped) for v in x]
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if np is None:
        raise _Unsupported
    if pd is not None and type(x) is pd.Series and isinstance(x.dtype, np.dtype):
        x = x.to_numpy()
    elif type(x) is not np.ndarray:
        raise _Unsupported
    if x.dtype.kind == "U":  # plotly: an object array, cleaned into a list of str
        return x.tolist()
    if x.dtype.kind not in "iuf" or x.size == 0 or x.ndim == 0:
        raise _Unsupported
    return _typed(np, x) if typed else np.ascontiguousarray(x)


def _typed(np: Any, v: Any) -> Any:
    """_plotly_utils.utils.to_typed_array_spec of a non-empty numeric array."""
    dtype = str(v.dtype)
    if dtype in _INTS:  # 64-bit integers in the narrowest type that holds them
        lo, hi = v.min(), v.max()
        fit = [t for t in _INTS[dtype] if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max]
        if not fit:
            return np.ascontiguousarray(v)
        v, dtype = v.astype(fit[0]), fit[0]
    if dtype not in _SHORT:
        raise _Unsupported
    out = {"dtype": _SHORT[dtype], "bdata": base64.b64encode(np.ascontiguousarray(v)).decode()}
    if v.ndim > 1:
        out["shape"] = str(v.shape)[1:-1]
    return out


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
