"""The parsed price tables are cached as JSON where Python caches bytecode (issue 13: ~15 ms of
YAML on every run's start): the same data as the YAML gives, read without parsing YAML, missed
when the table changes, ignored when unreadable, never written when bytecode is not."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import yaml

from sim.pricing import tables as T

PRICES = Path(T.__file__).with_name("prices.yaml")


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return tmp_path


def _yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return json.loads(json.dumps(data, default=lambda v: v.isoformat()))


def test_the_second_load_reads_the_cache_and_gives_the_yamls_data(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, expected = T._load_yaml("prices.yaml"), _yaml(PRICES)
    written = list(cache_dir.rglob("prices.yaml.*.json"))
    assert len(written) == 1

    def no_yaml(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed the YAML again")

    monkeypatch.setattr(T.yaml, "load", no_yaml)
    cached = T._load_yaml("prices.yaml")
    assert cached == expected == first
    # the tables' models read both alike
    for key, entry in cached.items():
        items = entry if isinstance(entry, list) else [entry]
        raw = first[key] if isinstance(first[key], list) else [first[key]]
        assert [T.Rate.model_validate(i) for i in items] == [T.Rate.model_validate(i) for i in raw]


def test_an_edited_table_misses_the_cache_and_a_broken_cache_is_ignored(cache_dir: Path) -> None:
    text = PRICES.read_text(encoding="utf-8")
    name = T._cache_file(str(PRICES), text)
    assert name is not None and name != T._cache_file(str(PRICES), text + "\n# edited\n")
    name.parent.mkdir(parents=True, exist_ok=True)
    name.write_text("{not json", encoding="utf-8")
    assert T._load_yaml("prices.yaml") == yaml.safe_load(text)  # parsed (and cached again)
    assert json.loads(name.read_text(encoding="utf-8")) == _yaml(PRICES)


def test_a_yaml_date_is_cached_as_the_iso_text_the_models_read() -> None:
    assert T._iso_date_text(dt.date(2026, 12, 1)) == "2026-12-01"
    assert T.Rate.model_validate(
        {"source": "s", "date": dt.date(2026, 12, 1), "rate": 1, "unit": "u"}
    ) == T.Rate.model_validate({"source": "s", "date": "2026-12-01", "rate": 1, "unit": "u"})
    with pytest.raises(TypeError):  # anything else JSON cannot hold: no cache, the YAML
        T._iso_date_text({1, 2})


def test_no_cache_is_written_when_bytecode_is_not(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert T._load_yaml("instances.yaml") == yaml.safe_load(
        PRICES.with_name("instances.yaml").read_text(encoding="utf-8")
    )
    assert not list(cache_dir.rglob("*.json"))
