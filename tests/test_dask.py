"""The same sweep on a real local Dask cluster (scheduler + worker processes on 127.0.0.1) gives
exactly the local process pool's results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.studies.sweep import parse_param, run_sweep
from tests.test_sweep import PC_SCENARIO, base_of, write

distributed = pytest.importorskip("dask.distributed")


def _metrics(out: Path) -> dict[str, dict]:
    lines = (out / "points.jsonl").read_text().splitlines()
    return {r["key"]: r["metrics"] for r in map(json.loads, lines)}


def test_dask_cluster_matches_the_local_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(json.dumps(PC_SCENARIO))
    data["platforms"].append({"name": "edge", "type": "wasm", "pricing": "cloudflare-workers"})
    params = [
        parse_param("platforms.fn.provisioned_concurrency=0:4:1"),
        parse_param("platforms.fn.memory=512,1024"),
    ]
    base = base_of(data)
    local = run_sweep(base, params, workers=2, out_dir=tmp_path / "local")
    assert local.computed == 11  # 10 Lambda settings + the untouched Wasm platform once

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = run_sweep(
            base, params, scheduler=cluster.scheduler_address, out_dir=tmp_path / "dask"
        )
        # The CLI finds the cluster through DASK_SCHEDULER_ADDRESS as well.
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        path = write(tmp_path, data)
        r = CliRunner().invoke(
            main,
            [
                "sweep",
                str(path),
                "--out",
                str(tmp_path / "cli"),
                "--param",
                "platforms.fn.provisioned_concurrency=0:4:1",
                "--param",
                "platforms.fn.memory=512,1024",
                "--no-html",
            ],
        )
        assert r.exit_code == 0, r.output
        with distributed.Client(cluster.scheduler_address) as client:
            assert len(client.scheduler_info()["workers"]) == 2

    assert remote.computed == 11
    assert remote.rows == local.rows
    assert _metrics(tmp_path / "dask") == _metrics(tmp_path / "local")
    assert (tmp_path / "cli" / "sweep.csv").read_text() == _csv(local.rows, tmp_path / "local.csv")


def _csv(rows: list[dict], path: Path) -> str:
    from sim.studies.sweep import write_csv

    write_csv(rows, path)
    return path.read_text()


def test_unreachable_scheduler_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sim.studies.sweep.DASK_CONNECT_TIMEOUT", "2s")
    path = write(tmp_path, PC_SCENARIO)
    r = CliRunner().invoke(
        main,
        [
            "sweep",
            str(path),
            "--param",
            "platforms.fn.provisioned_concurrency=0,1",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 2, r.output
    assert "Dask scheduler" in r.output
