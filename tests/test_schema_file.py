"""The JSON Schema `sim schema` prints is a shipped file (no pydantic model built at start-up); it
must equal the live schema of the scenario models, so a spec changed without regenerating fails."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

from sim.cli.schema import SCHEMA_FILE
from sim.dev.docsgen import schema_text
from sim.scenario import json_schema

REGENERATE = "python -m sim.dev.docsgen --schema"


def test_shipped_schema_equals_the_live_schema():
    shipped = resources.files("sim").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    assert json.loads(shipped) == json_schema(), (
        f"sim/data/schema.json is stale: a scenario spec changed; regenerate it with `{REGENERATE}`"
    )
    assert shipped == schema_text(), f"sim/data/schema.json: not as `{REGENERATE}` writes it"


def test_sim_schema_prints_the_live_schema_without_pydantic():
    code = (
        "import sys; from sim.cli import main\n"
        "try:\n    main(['schema'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'numpy', 'yaml')),"
        " file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == json_schema()
    assert out.stderr.strip() == "[]"
