"""Scenario files: YAML -> validated, typed `Scenario` (design.md section 2).

Loading expands nothing by hand: pydantic validates, fills every default (each with its source in
sim.defaults or the pricing tables) and rejects unknown keys. Errors become one `InputError` naming
the file, the key path, the YAML line where there is one, and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import (
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from sim import units
from sim.config import (
    Duration,
    Fraction,
    Strict,
    format_path,
    line_of,
    load_yaml,
    read_text_file,
    validation_problems,
)
from sim.errors import InputError
from sim.platforms import SPECS, spec_union
from sim.pricing.tables import billing_month_s
from sim.systems.hops import NetworkSpec
from sim.systems.spec import AnyQueue, PlacementSpec, ServiceSpec, SystemProblem, check_system
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


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


if TYPE_CHECKING:
    from sim.platforms import PlatformSpec as AnyPlatform
else:

    class AnyPlatform:
        """An item of `Scenario.platforms`: the spec of any platform type, built on first use
        (the union of all nine costs ~0.3 s to build; a file gets its own, `scenario_model`)."""

        @classmethod
        def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
            return handler.generate_schema(spec_union())


# A scenario with any platform types (no docstring: it would enter the shipped schema). Files
# are validated with `scenario_model(data)`: this model with only the platform types they name.
class Scenario(Strict):
    model_config = ConfigDict(defer_build=True)

    name: str = Field(
        min_length=1,
        max_length=100,
        json_schema_extra={"pattern": NAME_PATTERN},
        description="the results folder name: letters, digits, `.`, `_`, `-`, not starting "
        "with `.`, `_` or `-` (so it can never name `.`, `..` or a path)",
    )
    description: str = ""
    duration: Duration = Field(gt=0)
    warmup: Duration = Field(0.0, ge=0)
    replications: int = Field(3, ge=1, le=1000)
    seed: int = Field(0, ge=0)
    timeline_step: Duration | None = Field(
        None, gt=0, description="timeline sampling step (default: duration/720, at least 1s)"
    )
    workload: WorkloadSpec
    platforms: Annotated[list[AnyPlatform], Field(min_length=1)]
    slo: SLO | None = None
    month: Duration = Field(
        default_factory=billing_month_s,
        gt=0,
        description="billing month of monthly figures: 730h as the providers' calculators; 720h",
    )
    # A system (issue 17, sim.systems): services joined by calls and queues, and the placements
    # of the services on `platforms` compared in their stead. None: one implicit service.
    services: list[ServiceSpec] | None = None
    queues: list[AnyQueue] = Field(default_factory=list)
    placements: list[PlacementSpec] | None = None
    network: NetworkSpec | None = Field(
        None, description="a system's hops: `via` per platform pair, call sizes, VPC endpoints"
    )

    @model_validator(mode="before")
    @classmethod
    def _system_service_time(cls, data: Any) -> Any:
        # A system's handler times are per service; the workload then only gives arrivals.
        if (
            isinstance(data, dict)
            and data.get("services")
            and isinstance(data.get("workload"), dict)
        ):
            wl = dict(data["workload"])
            svc = dict(wl.get("service") or {})
            if svc.get("duration") is None:
                first = data["services"][0]
                svc["duration"] = first.get("handler") if isinstance(first, dict) else None
                wl["service"] = svc
                data = {**data, "workload": wl}
        return data

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        # Refused, not rewritten: the name is the results folder, which must stay in results/.
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(
                f"{value!r} cannot be a folder name: use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit (so never '.', '..', a hidden name or a path)"
            )
        return value

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
        if (self.services is None) != (self.placements is None):
            raise ValueError("a system needs both `services` and `placements`")
        if self.services is None and self.queues:
            raise ValueError("`queues` belong to a system: add `services` and `placements`")
        if self.services is None and self.network is not None:
            raise ValueError("`network` belongs to a system: add `services` and `placements`")
        if self.services is not None and self.placements is not None:
            check_system(
                self.services,
                self.queues,
                self.placements,
                {p.name: p for p in self.platforms},
                self.network,
            )
        return self

    @property
    def is_system(self) -> bool:
        return self.services is not None

    def platform(self, name: str) -> Any:
        for p in self.platforms:
            if p.name == name:
                return p
        for pl in self.placements or ():  # a system's placements stand where platforms stand
            if pl.name == name:
                return pl
        raise KeyError(name)


def scenario_model(data: Any) -> type[Scenario]:
    """The Scenario model for `data`: only the platform specs its `platforms` name when every
    item is a mapping with a known `type` (the pre-pass), else every type, so that a missing,
    unknown or misspelt type is reported exactly as before."""
    items = data.get("platforms") if isinstance(data, dict) else None
    items = items if isinstance(items, list) else []
    types = [i.get("type") if isinstance(i, dict) else None for i in items]
    if not types or not all(isinstance(t, str) and t in SPECS for t in types):
        types = list(SPECS)
    return _typed_scenario(",".join(t for t in SPECS if t in types))


@cache
def _typed_scenario(types: str) -> type[Scenario]:
    # Named `Scenario[lambda,wasm]` in this module: pickle (sweep workers) finds it again through
    # the module's __getattr__ below, which builds it in the worker on first use.
    union = spec_union(types.split(","))
    model: type[Scenario] = create_model(
        f"Scenario[{types}]",
        __base__=Scenario,
        __module__=__name__,
        platforms=(Annotated[list[union], Field(min_length=1)], ...),  # type: ignore[valid-type]
    )
    return model


def __getattr__(name: str) -> Any:
    types = name.removeprefix("Scenario[").removesuffix("]")
    if len(types) + len("Scenario[]") == len(name) and all(t in SPECS for t in types.split(",")):
        return _typed_scenario(types)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """YAML text -> (data, node tree for line numbers). Raises InputError on bad YAML, repeated
    keys, alias bombs and absurd nesting (sim.config.load_yaml)."""
    docs = load_yaml(text, file, _Loader)
    return docs[0] if docs else (None, None)


def format_validation_error(
    exc: ValidationError,
    file: str,
    data: Any,
    node: yaml.Node | None,
    labels: Mapping[tuple[Any, ...], str] | None = None,
    model: type[Scenario] = Scenario,
) -> InputError:
    """Every problem, one line each (file, key path, line, what was expected)."""
    problems = validation_problems(exc, file=file, data=data, node=node, root=model, labels=labels)
    return InputError.many(problems) if problems else InputError(str(exc), file=file)


Override = str | tuple[str, str]  # "KEY=VALUE" from --set, or (option, "KEY=VALUE")


def apply_overrides(
    data: Any,
    overrides: list[Override],
    file: str,
    labels: dict[tuple[Any, ...], str] | None = None,
) -> Any:
    """--set KEY=VALUE: dotted path, list items by index or by `name`; VALUE parsed as YAML.

    An item may be (option, "KEY=VALUE") for a shorthand option such as --seed. `labels`, when
    given, receives each set key path (list items as indices) -> the option that set it, so that
    validation errors name the option rather than a line of the file."""
    data = copy.deepcopy(data)
    for item in overrides:
        option, text = item if isinstance(item, tuple) else ("--set", item)
        if "=" not in text:
            raise InputError(f"expected KEY=VALUE, got {text!r}", key=option)
        path, raw = text.split("=", 1)
        path = path.strip()
        where = f"--set {path}" if option == "--set" else option
        value, _ = parse_yaml(raw, where)
        concrete = set_path(data, path, value, where)
        if labels is not None:
            labels[concrete] = where
    return data


def set_path(data: Any, path: str, value: Any, file: str = "scenario") -> tuple[Any, ...]:
    """Set `value` at a dotted path; returns the path with list items as indices. Errors name
    `file` (the option, for --set)."""
    parts = [p for p in path.split(".") if p]
    if not parts:
        raise InputError("empty key", file=file)
    cur = data
    concrete: list[Any] = []
    for j, part in enumerate(parts):
        last = j == len(parts) - 1
        if isinstance(cur, list):
            idx = _list_index(cur, part, path, file)
            concrete.append(idx % len(cur))
            if last:
                cur[idx] = value
            else:
                cur = cur[idx]
        elif isinstance(cur, dict):
            concrete.append(part)
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
    return tuple(concrete)


def _list_index(items: list[Any], part: str, path: str, file: str) -> int:
    key = None if file.startswith("--") else path  # an option already names the path
    if part.lstrip("-").isdigit():
        idx = int(part)
        if -len(items) <= idx < len(items):
            return idx
        raise InputError(
            f"index {idx} out of range (list has {len(items)} items)", file=file, key=key
        )
    for k, it in enumerate(items):
        if isinstance(it, dict) and it.get("name") == part:
            return k
    names = [str(it.get("name")) for it in items if isinstance(it, dict) and "name" in it]
    hint = difflib.get_close_matches(part, names, n=1, cutoff=0.5)
    raise InputError(
        f"no list item named {part!r} (names: {', '.join(names)})"
        + (f"; did you mean {hint[0]!r}?" if hint else ""),
        file=file,
        key=key,
    )


def read_scenario_data(path: str | Path) -> tuple[Any, yaml.Node | None, str]:
    file = str(path)
    text = read_text_file(path, what="scenario file")
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


def _month_s(data: Any) -> float | None:
    """The billing month a `/month` rate means: the scenario's `month:` (its own validation
    reports a bad one), else 730 h (prices.yaml billing.month_hours)."""
    raw = data.get("month") if isinstance(data, dict) else None
    if raw is None:
        return billing_month_s()
    try:
        month = units.parse_duration(raw)
    except ValueError:
        return None
    return month if month > 0 else None


def scenario_month_s(data: Any) -> float:
    """The billing month of raw scenario data (`month:`, else 730 h; a bad one is reported when
    the scenario is validated)."""
    return _month_s(data) or billing_month_s()


def validate_scenario(
    data: Any,
    *,
    file: str,
    base_dir: Path,
    node: yaml.Node | None = None,
    labels: Mapping[tuple[Any, ...], str] | None = None,
) -> Scenario:
    model = scenario_model(data)
    try:
        context = {"base_dir": base_dir, "month_s": _month_s(data)}
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise format_validation_error(exc, file, data, node, labels, model) from None
    except SystemProblem as exc:
        line = line_of(node, exc.path)
        key = format_path(exc.path) + (f" (line {line})" if line else "")
        lines = [(format_path(p), line_of(node, p)) for p in exc.see]
        see = "".join(f"; {p} is at line {n}" for p, n in lines if n)
        raise InputError(str(exc) + see, file=file, key=key) from None
    except InputError as exc:
        if exc.file is None:
            raise InputError(exc.detail, file=file, key=exc.key) from None
        raise
    except RecursionError:
        raise InputError("the scenario is nested too deeply", file=file) from None


def load_scenario(path: str | Path, overrides: list[Override] | None = None) -> Scenario:
    data, node, file = read_scenario_data(path)
    labels: dict[tuple[Any, ...], str] = {}
    if overrides:
        data = apply_overrides(data, overrides, file, labels)
    return validate_scenario(
        data, file=file, base_dir=Path(path).resolve().parent, node=node, labels=labels
    )


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, as JSON-ready data (summary.json echo)."""
    return scenario.model_dump(mode="json", by_alias=True, exclude_none=False)


def json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sim scenario"
    return schema
