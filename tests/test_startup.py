"""Start-up work a run does not need (issue 13): only the platform specs a scenario names are
built, the report's template is read without plotly's graph objects, and requests.csv.gz is
compressed behind the formatting with the same bytes. No timings here: speed is the benchmark's
(python -m sim.dev.bench); these tests hold what makes it fast and that nothing else changed."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from sim.platforms import SPECS
from sim.results import GZIP_LEVEL, write_behind
from sim.scenario import Scenario, scenario_model, validate_scenario

ROOT = Path(__file__).resolve().parents[1]

WORKLOAD = {"arrivals": [{"steady": {"rate": "2/s"}}], "service": {"duration": "20ms"}}


def _scenario(*platforms: dict) -> dict:
    return {"name": "s", "duration": "60s", "workload": WORKLOAD, "platforms": list(platforms)}


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("platforms", "expected"),
    [
        ([{"name": "fn", "type": "lambda"}], {"lambda_spec"}),
        ([{"name": "edge", "type": "wasm"}], {"wasm_spec", "lambda_spec"}),
        ([{"name": "k", "type": "kubernetes", "replicas": 2}], {"kubernetes_spec", "lambda_spec"}),
    ],
)
def test_loading_a_scenario_builds_only_the_specs_it_names(
    platforms: list[dict], expected: set[str]
) -> None:
    # lambda_spec comes with the systems keys (their client Backoff) whatever the platforms are.
    data = _scenario(*platforms)
    code = (
        "import sys, json; from pathlib import Path\n"
        "from sim.scenario import validate_scenario\n"
        f"data = json.loads({json.dumps(json.dumps(data))})\n"
        "validate_scenario(data, file='t', base_dir=Path('.'))\n"
        "print(json.dumps(sorted(m.rsplit('.', 1)[1] for m in sys.modules"
        " if m.startswith('sim.platforms.') and m.endswith('_spec'))))\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('sim.platforms.')"
        " and m.rsplit('.', 1)[1] in ('lambda_', 'wasm', 'kubernetes', 'knative')]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert set(json.loads(out[0])) == expected
    assert json.loads(out[1]) == []  # no kernel is imported to load a scenario


def test_a_typed_scenario_is_the_full_scenario() -> None:
    data = _scenario(
        {"name": "fn", "type": "lambda", "memory": 512},
        {"name": "k", "type": "kubernetes", "replicas": 2},
    )
    typed = validate_scenario(data, file="t", base_dir=Path("."))
    full = Scenario.model_validate(data, context={"base_dir": Path(".")})
    assert type(typed).__name__ == "Scenario[lambda,kubernetes]"
    assert isinstance(typed, Scenario)
    assert typed.model_dump(mode="json") == full.model_dump(mode="json")
    assert list(type(typed).model_fields) == list(Scenario.model_fields)
    # the same model for the same set of types, whatever their order
    again = _scenario({"type": "kubernetes"}, {"type": "lambda"})
    assert scenario_model(again) is type(typed)


@pytest.mark.parametrize(
    "platforms",
    [
        [{"name": "a", "type": "lambda"}, {"name": "b", "type": "wasmm"}],
        [{"name": "a", "type": "lambda"}, {"name": "b"}],
        [{"name": "a", "type": ["lambda"]}],
        ["lambda"],
        "lambda",
        [],
    ],
)
def test_a_bad_platform_list_is_checked_against_every_type(platforms: object) -> None:
    data = {**_scenario(), "platforms": platforms}
    assert scenario_model(data) is scenario_model(_scenario(*({"type": t} for t in SPECS)))


def test_loading_a_lambda_scenario_builds_no_other_platforms_cost_models() -> None:
    # sim.pricing's names load from their modules on first use (issue 13, model.md 19.12): the
    # billing month (sim.pricing.tables) must not bring Kubernetes or Wasm pricing.
    data = _scenario({"name": "fn", "type": "lambda"})
    code = (
        "import sys, json; from pathlib import Path\n"
        "from sim.scenario import validate_scenario\n"
        f"validate_scenario(json.loads({json.dumps(json.dumps(data))}), file='t',"
        " base_dir=Path('.'))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('sim.pricing'))))"
    )
    loaded = set(json.loads(_python(code)))
    assert "sim.pricing.tables" in loaded
    assert not loaded & {"sim.pricing.kubernetes", "sim.pricing.wasm"}


def test_pricing_names_load_on_first_use() -> None:
    import sim.pricing as P
    from sim.pricing.commitments import Commitment
    from sim.pricing.tables import price

    assert P.Commitment is Commitment and P.price is price
    assert set(P.__all__) <= set(dir(P))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = P.nothing  # type: ignore[attr-defined]


def test_a_typed_scenario_unpickles_in_a_fresh_interpreter() -> None:
    # A sweep's worker may be a spawned or forkserver process that never built the model.
    sc = validate_scenario(
        _scenario({"name": "edge", "type": "wasm"}), file="t", base_dir=Path(".")
    )
    blob = pickle.dumps(sc).hex()
    got = _python(
        "import pickle, json\n"
        f"sc = pickle.loads(bytes.fromhex({blob!r}))\n"
        "print(json.dumps([type(sc).__name__, sc.model_dump(mode='json')]))"
    )
    assert json.loads(got) == [type(sc).__name__, sc.model_dump(mode="json")]


def test_the_template_is_plotlys_own_without_its_graph_objects() -> None:
    got = _python(
        "import sys, json\n"
        "from sim.figure import template\n"
        "t = template()\n"
        "print(json.dumps(['plotly.basedatatypes' in sys.modules, t]))"
    )
    loaded, ours = json.loads(got)
    import plotly.io as pio

    from sim.figure import TEMPLATE

    assert loaded is False
    # byte for byte as plotly's validated Template writes it (key order included)
    assert json.dumps(ours) == json.dumps(pio.templates[TEMPLATE].to_plotly_json())


def test_write_behind_gives_the_bytes_of_one_plain_write() -> None:
    chunks = [f"{i},{i * 0.5:.9g},ok\n".encode() * 200 for i in range(50)]
    plain, behind = io.BytesIO(), io.BytesIO()
    with gzip.GzipFile("requests.csv", "wb", GZIP_LEVEL, plain, mtime=0) as gz:
        gz.write(b"".join(chunks))
    with gzip.GzipFile("requests.csv", "wb", GZIP_LEVEL, behind, mtime=0) as gz:
        write_behind(gz.write, iter(chunks))
    assert behind.getvalue() == plain.getvalue()


def test_write_behind_raises_the_writers_error_and_the_producers() -> None:
    seen: list[bytes] = []

    def full(chunk: bytes) -> None:
        if len(seen) == 2:
            raise OSError(28, "No space left on device")
        seen.append(chunk)

    with pytest.raises(OSError, match="No space left"):
        write_behind(full, (bytes([i]) for i in range(100)))
    assert seen == [b"\x00", b"\x01"]

    def broken() -> object:
        yield b"a"
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        write_behind(lambda b: None, broken())  # type: ignore[arg-type]


def test_a_figure_without_arrays_skips_plotlys_typed_array_pass() -> None:
    import copy

    import numpy as np
    from _plotly_utils.utils import convert_to_base64

    from sim.figure import jsonable

    plain = {"data": [{"x": [1, 2.5], "y": (3, 4), "name": "a"}], "layout": {"range": [0, 1]}}
    typed = {"data": [{"x": np.arange(3.0), "y": [np.float64(1.0)]}], "layout": {}}
    for fig in (plain, typed):
        want = copy.deepcopy(fig)
        want = {**want, "data": [dict(d) for d in want["data"]]}
        want["data"] = [
            {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()} for d in want["data"]
        ]
        convert_to_base64(want)
        assert json.dumps(jsonable(fig), default=list) == json.dumps(want, default=list)
    assert jsonable(typed)["data"][0]["x"] == {
        "dtype": "f8",
        "bdata": "AAAAAAAAAAAAAAAAAADwPwAAAAAAAABA",
    }
    got = _python(
        "import sys\n"
        "from sim.figure import jsonable\n"
        "jsonable({'data': [{'x': [1, 2], 'y': [3, 4]}], 'layout': {'title': 't'}})\n"
        "print('_plotly_utils.utils' in sys.modules)"
    )
    assert got == "False"


def test_a_page_is_written_without_plotly_io_or_its_validators() -> None:
    # plotly.io's serialiser imports plotly's validators and narwhals (~0.15 s): sim.figure.html
    # writes the same text itself (tests/test_report_plot.py compares the two).
    got = _python(
        "import sys\n"
        "import numpy as np, pandas as pd\n"
        "from sim.figure import html, template\n"
        "fig = {'data': [{'type': 'scatter', 'x': np.arange(3.0), 'y': pd.Series([1, 2, 3]),\n"
        "                 'marker': {'symbol': np.array(['x', 'circle', 'x'])}}],\n"
        "       'layout': {'template': template()}}\n"
        "html(fig, div_id='a', full_html=True, include_plotlyjs=True)\n"
        "print([m for m in ('plotly.io', '_plotly_utils.basevalidators', 'narwhals')\n"
        "       if m in sys.modules])"
    )
    assert got == "[]"
