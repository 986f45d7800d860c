"""Scenario files: YAML -> validated, typed `Scenario` (design.md section 2).

Loading expands nothing by hand: pydantic validates, fills every default (each with its source in
sim.defaults or the pricing tables) and rejects unknown keys. Errors become one `InputError` naming
the file, the key path, the YAML line where there is one, and what was expected.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, model_validator

from sim.config import Duration, Fraction, Strict
from sim.errors import InputError
from sim.platforms import PlatformSpec
from sim.pricing.tables import billing_month_s
from sim.workload import WorkloadSpec


class SLO(Strict):
    """k6-style thresholds, each checked per platform: latency <= target, rates <= target."""

    mean: Duration | None = Field(None, gt=0)
    p50: Duration | None = Field(None, gt=0)
    p90: Duration | None = Field(None, gt=0)
    p95: Duration | None = Field(None, gt=0)
    p99: Duration | None = Field(None, gt=0)
    p999: Duration | None = Field(None, gt=0)
    max: Duration | None = Field(None, gt=0)
    error_rate: Fraction | None = Field(None, ge=0, le=1)
    cold_start_ratio: Fraction | None = Field(None, ge=0, le=1)


class Scenario(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    duration: Duration = Field(gt=0)
    warmup: Duration = Field(0.0, ge=0)
    replications: int = Field(3, ge=1, le=1000)
    seed: int = Field(0, ge=0)
    timeline_step: Duration | None = Field(
        None, gt=0, description="timeline sampling step (default: duration/720, at least 1s)"
    )
    workload: WorkloadSpec
    platforms: Annotated[list[PlatformSpec], Field(min_length=1)]
    slo: SLO | None = None
    month: Duration = Field(
        default_factory=billing_month_s,
        gt=0,
        description="billing month of monthly figures: 730h as the providers' calculators; 720h",
    )

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.warmup >= self.duration:
            raise ValueError("`warmup` must be shorter than `duration`")
        names = [p.name for p in self.platforms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"platform names must be unique; repeated: {', '.join(dup)}")
        if self.timeline_step is None:
            self.timeline_step = max(1.0, self.duration / 720)
        return self

    def platform(self, name: str) -> Any:
        for p in self.platforms:
            if p.name == name:
                return p
        raise KeyError(name)


# YAML 1.1 reads 20:00 as the base-60 integer 1200; a scenario means a time of day. Our loader
# keeps such values as strings (and otherwise behaves like yaml.SafeLoader).
class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    ch: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
    ),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    """YAML text -> (data, node tree for line numbers). Raises InputError on bad YAML."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML: {problem}", file=file, key=where) from None
    return data, node


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The YAML line (1-based) of the deepest node on a pydantic error path."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == part:
                    nxt, line = v, k.start_mark.line + 1
                    break
            if nxt is None:
                if part in _TAGS or not isinstance(part, str):
                    continue  # a union tag in the path
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            continue  # a pydantic union tag in the path, not a YAML key
    return line


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """pydantic loc -> 'platforms[0].memory', dropping union tags ('lambda', 'function-after')."""
    out = ""
    cur = data
    for part in loc:
        if isinstance(part, int) and isinstance(cur, list):
            out += f"[{part}]"
            cur = cur[part] if part < len(cur) else None
        elif isinstance(cur, dict) and part in cur:
            out += f".{part}" if out else str(part)
            cur = cur[part]
        elif (
            isinstance(cur, dict)
            and isinstance(part, str)
            and not out.endswith(part)
            # a missing or extra key, or a tag: keep keys that look like user keys
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part)
            and part not in _TAGS
        ):
            out += f".{part}" if out else part
            cur = None
    return out or "(top level)"


_TAGS = {
    "lambda",
    "wasm",
    "kubernetes",
    "function-after",
    "function-before",
    "function-plain",
    "tagged-union",
    "union",
    "list",
    "dict",
    "int",
    "float",
    "str",
    "bool",
    "none",
    "constant",
    "exponential",
    "lognormal",
    "gamma",
    "uniform",
    "pareto",
    "empirical",
    "is-instance",
}


def _message(err: Mapping[str, Any]) -> str:
    msg = err["msg"]
    msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    msg = re.sub(r"^Input should be (greater|less)", r"expected a value \1", msg)
    msg = re.sub(r"^Input should be ", "expected ", msg)
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "union_tag_not_found":
        return msg.replace("Unable to extract tag using discriminator", "missing discriminator")
    if err["type"] == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return (
            f"unknown {ctx.get('discriminator', 'type')} {ctx.get('tag')!r}; expected one of "
            f"{ctx.get('expected_tags')}"
        )
    return msg


def format_validation_error(
    exc: ValidationError, file: str, data: Any, node: yaml.Node | None
) -> InputError:
    errors = exc.errors()
    # Prefer the most specific error (deepest path): union branches produce shallow noise.
    err = max(errors, key=lambda e: len(e["loc"]))
    loc = tuple(err["loc"])
    key = _key_path(loc, data)
    line = _line_of(node, loc)
    if line:
        key += f" (line {line})"
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    return InputError(_message(err) + more, file=file, key=key)


def apply_overrides(data: Any, overrides: list[str], file: str) -> Any:
    """--set KEY=VALUE: dotted path, list items by index or by `name`; VALUE parsed as YAML."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise InputError(f"--set expects KEY=VALUE, got {item!r}", file=file, key="--set")
        path, raw = item.split("=", 1)
        value, _ = parse_yaml(raw, f"--set {path}")
        set_path(data, path.strip(), value, file)
    return data


def set_path(data: Any, path: str, value: Any, file: str = "scenario") -> None:
    parts = [p for p in path.split(".") if p]
    if not parts:
        raise InputError("empty key in --set", file=file, key="--set")
    cur = data
    for j, part in enumerate(parts):
        last = j == len(parts) - 1
        if isinstance(cur, list):
            idx = _list_index(cur, part, path, file)
            if last:
                cur[idx] = value
            else:
                cur = cur[idx]
        elif isinstance(cur, dict):
            if last:
                cur[part] = value
            else:
                if part not in cur or cur[part] is None:
                    cur[part] = {}
                cur = cur[part]
        else:
            raise InputError(
                f"cannot set {part!r} inside a {type(cur).__name__}", file=file, key=path
            )


def _list_index(items: list[Any], part: str, path: str, file: str) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if -len(items) <= idx < len(items):
            return idx
        raise InputError(
            f"index {idx} out of range (list has {len(items)} items)", file=file, key=path
        )
    for k, it in enumerate(items):
        if isinstance(it, dict) and it.get("name") == part:
            return k
    names = [it.get("name") for it in items if isinstance(it, dict) and "name" in it]
    raise InputError(
        f"no list item named {part!r} (names: {', '.join(map(str, names))})", file=file, key=path
    )


def read_scenario_data(path: str | Path) -> tuple[Any, yaml.Node | None, str]:
    p = Path(path)
    file = str(path)
    if not p.exists():
        raise InputError("file not found", file=file)
    if p.is_dir():
        raise InputError("is a folder, expected a scenario YAML file", file=file)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", file=file) from None
    data, node = parse_yaml(text, file)
    if data is None:
        raise InputError("the file is empty; expected a scenario mapping", file=file)
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of scenario keys, got {type(data).__name__}",
            file=file,
            key="(top level)",
        )
    return data, node, file


def validate_scenario(
    data: Any, *, file: str, base_dir: Path, node: yaml.Node | None = None
) -> Scenario:
    try:
        return Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise format_validation_error(exc, file, data, node) from None
    except InputError as exc:
        if exc.file is None:
            raise InputError(exc.detail, file=file, key=exc.key) from None
        raise


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    data, node, file = read_scenario_data(path)
    if overrides:
        data = apply_overrides(data, overrides, file)
        node = None  # line numbers no longer match the file
    return validate_scenario(data, file=file, base_dir=Path(path).resolve().parent, node=node)


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, as JSON-ready data (summary.json echo)."""
    return scenario.model_dump(mode="json", by_alias=True, exclude_none=False)


def json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sim scenario"
    return schema
