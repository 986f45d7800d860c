"""Shared building blocks of the scenario model: a strict base model, unit-bearing types, and the
safe reading of every input file (scenario, SAM template, manifests, traces).

Every scenario section derives from `Strict` (unknown keys are errors, NaN/inf are refused).
Quantities accept the human forms of sim.units and are stored as SI floats (seconds, events/s, MB,
cores, fractions); the JSON Schema advertises both the number and the string form so editors can
check files.

Input files are read defensively (a tool pointed at anything must answer in seconds): only regular
files (a FIFO or device is never opened: os.stat first), at most `max_file_bytes()` for YAML, no
NUL bytes, UTF-8; YAML may expand (anchors/aliases) to at most `max_yaml_nodes()` values, nest at
most MAX_YAML_DEPTH deep, and may not repeat a key in a mapping. Validation errors become one line
per problem (file, key, line, expected) with a "did you mean" for unknown keys.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)

from sim import units
from sim.errors import InputError


class Strict(BaseModel):
    """Base of every scenario section: unknown keys are rejected; values are validated."""

    model_config = ConfigDict(
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
        allow_inf_nan=False,
        defer_build=True,
    )


def _schema(pattern: str, example: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": pattern}],
        "examples": [example],
    }


Duration = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    WithJsonSchema(_schema(units.DURATION_PATTERN, "200ms")),
]


def context_month_s(info: ValidationInfo | None) -> float:
    """The month a `/month` rate means: the scenario's billing month when validation carries it
    (`month_s` in the context, sim.scenario.validate_scenario), else 730 h."""
    month = (info.context or {}).get("month_s") if info is not None else None
    return float(month or units.BILLING_MONTH_S)


def _rate(value: object, info: ValidationInfo) -> float:
    return units.parse_rate(value, context_month_s(info))


Rate = Annotated[
    float,
    BeforeValidator(_rate),
    WithJsonSchema(_schema(units.RATE_PATTERN, "20/s")),
]
Count = Annotated[
    float,
    BeforeValidator(units.parse_count),
    WithJsonSchema(_schema(r"^\s*[0-9.eE+-]+\s*[kKMBG]?\s*$", "50M")),
]
MemoryMB = Annotated[
    float,
    BeforeValidator(units.parse_memory_mb),
    WithJsonSchema(_schema(r"^\s*[0-9.eE+-]+\s*([KMGT]i?|[kmg]b?|[KMGT]B|B)?\s*$", "512Mi")),
]
Cpu = Annotated[
    float,
    BeforeValidator(units.parse_cpu),
    WithJsonSchema(_schema(r"^\s*[0-9.]+m?\s*$", "500m")),
]
Fraction = Annotated[
    float,
    BeforeValidator(units.parse_fraction),
    WithJsonSchema(_schema(r"^\s*[0-9.eE+-]+%?\s*$", "0.1%")),
]


# --- reading input files ------------------------------------------------------------------------

# YAML inputs (scenario, SAM template, KEDA manifests) larger than this are refused: 1 MB is
# CloudFormation's own limit for a template in S3 (AWS CloudFormation quotas, "Template body size
# in an Amazon S3 object") and above Kubernetes' ~1.5 MiB object limit (etcd request size), and
# PyYAML reads it in about a second. SIM_MAX_FILE_MB raises it.
DEFAULT_MAX_FILE_MB = 1.0
# Values after alias expansion ("billion laughs" expands 9 lines to 10^9); SIM_MAX_YAML_NODES.
DEFAULT_MAX_YAML_NODES = 1_000_000
MAX_YAML_DEPTH = 100


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"expected a positive number, got {raw!r}", key=f"${name}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise InputError(f"expected a positive number, got {raw!r}", key=f"${name}")
    return value


def max_file_bytes() -> int:
    return int(_env_number("SIM_MAX_FILE_MB", DEFAULT_MAX_FILE_MB) * 1_000_000)


def max_yaml_nodes() -> int:
    return int(_env_number("SIM_MAX_YAML_NODES", DEFAULT_MAX_YAML_NODES))


def check_input_file(path: str | Path, *, what: str = "file", key: str | None = None) -> int:
    """A regular file this process can open: its size. Any other case is an InputError naming the
    file. Uses os.stat first, so a FIFO, socket or device is refused without being opened."""
    file = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"file not found (the {what})", file=file, key=key) from None
    except NotADirectoryError:
        raise InputError(
            f"file not found (the {what}; a parent is not a folder)", file=file, key=key
        ) from None
    except PermissionError:
        raise InputError(f"cannot read the {what}: permission denied", file=file, key=key) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the {what}: {_reason(exc)}", file=file, key=key) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"is a folder, expected a {what}", file=file, key=key)
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise InputError(f"is {kind}; expected a regular {what}", file=file, key=key)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        os.close(fd)
    except PermissionError:
        raise InputError(f"cannot read the {what}: permission denied", file=file, key=key) from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {_reason(exc)}", file=file, key=key) from None
    return st.st_size


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def read_text_file(
    path: str | Path, *, what: str = "file", key: str | None = None, max_bytes: int | None = None
) -> str:
    """The UTF-8 text of a small input file (see check_input_file), refusing oversized or binary
    files with the limit and how to raise it."""
    file = str(path)
    size = check_input_file(path, what=what, key=key)
    limit = max_file_bytes() if max_bytes is None else max_bytes
    if size > limit:
        raise InputError(
            f"the {what} is {size / 1e6:.1f} MB, above the {limit / 1e6:g} MB limit for YAML "
            "inputs (set SIM_MAX_FILE_MB to raise it)",
            file=file,
            key=key,
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped since the stat
                raise InputError(f"is not a regular {what}", file=file, key=key)
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {_reason(exc)}", file=file, key=key) from None
    if len(raw) > limit:
        raise InputError(f"the {what} is larger than the {limit / 1e6:g} MB limit", file=file)
    if b"\x00" in raw:
        raise InputError(
            f"is a binary file (NUL bytes); expected a YAML {what}", file=file, key=key
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); expected a "
            f"YAML {what}",
            file=file,
            key=key,
        ) from None


# --- YAML: size, nesting and duplicate keys are checked on the node tree before construction ----


def load_yaml(
    text: str, file: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader, *, multi: bool = False
) -> list[tuple[Any, yaml.Node]]:
    """YAML text -> [(data, node)] per document (one unless `multi`). Raises InputError listing
    every duplicate key; refuses alias bombs, recursive aliases and absurd nesting."""
    ld = loader(text)
    docs: list[tuple[Any, yaml.Node]] = []
    try:
        if multi:
            while ld.check_node():
                node = ld.get_node()
                check_yaml_tree(node, file)
                docs.append((ld.construct_document(node), node))
        else:
            node = ld.get_single_node()
            if node is not None:
                check_yaml_tree(node, file)
                docs.append((ld.construct_document(node), node))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML: {problem}", file=file, key=where) from None
    except RecursionError:
        raise InputError(
            f"YAML nested too deeply (more than {MAX_YAML_DEPTH} levels)", file=file
        ) from None
    finally:
        ld.dispose()
    return docs


_MERGE_TAG = "tag:yaml.org,2002:merge"


def check_yaml_tree(root: yaml.Node, file: str) -> None:
    """Refuse what would make later stages hang or silently lose a value: expansion above
    max_yaml_nodes() (memoised per node, so a bomb costs its size in lines, not its expansion),
    recursive aliases, nesting deeper than MAX_YAML_DEPTH, and repeated keys in a mapping."""
    limit = max_yaml_nodes()
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    dups: list[InputError] = []

    def walk(node: yaml.Node, path: str, depth: int) -> int:
        nid = id(node)
        if nid in sizes:
            return sizes[nid]
        if nid in visiting:
            raise InputError(
                "recursive YAML alias (an anchor used inside itself)",
                file=file,
                key=_with_line(path or "(top level)", node),
            )
        if depth > MAX_YAML_DEPTH:
            raise InputError(
                f"YAML nested more than {MAX_YAML_DEPTH} levels deep",
                file=file,
                key=_with_line(path or "(top level)", node),
            )
        visiting.add(nid)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                if k.tag == _MERGE_TAG:
                    total += walk(v, path, depth + 1)
                    continue
                name = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
                line = k.start_mark.line + 1
                sub = f"{path}.{name}" if path else name
                if isinstance(k, yaml.ScalarNode) and name in seen:
                    dups.append(
                        InputError(
                            f"duplicate key `{name}` (lines {seen[name]} and {line}); "
                            "YAML keeps only one, so say it once",
                            file=file,
                            key=f"{sub} (line {line})",
                        )
                    )
                seen.setdefault(name, line)
                total += walk(k, sub, depth + 1) + walk(v, sub, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += walk(item, f"{path}[{i}]", depth + 1)
        visiting.discard(nid)
        if total > limit:
            raise InputError(
                f"YAML expands to more than {limit:,} values (anchors/aliases repeated?); "
                "set SIM_MAX_YAML_NODES to raise the limit",
                file=file,
                key=_with_line(path or "(top level)", node),
            )
        sizes[nid] = total
        return total

    walk(root, "", 0)
    if dups:
        raise InputError.many(dups)


def _with_line(key: str, node: yaml.Node) -> str:
    return f"{key} (line {node.start_mark.line + 1})"


# --- validation errors -> one line per problem ----------------------------------------------------

# pydantic loc parts that name a union branch or a validator, not a user's key.
_INTERNAL = re.compile(r"^(function-(after|before|plain|wrap)|tagged-union|union|is-instance)")


def _members(tp: Any) -> list[Any]:
    """A type's alternatives: Annotated and Optional/Union unwrapped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [m for a in get_args(tp) for m in _members(a)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts in a file (aliases and alias choices included)."""
    keys: list[str] = []
    for name, f in model.model_fields.items():
        va = f.validation_alias
        if va is not None and hasattr(va, "choices"):
            keys += [c for c in va.choices if isinstance(c, str)]
        elif isinstance(va, str):
            keys.append(va)
        keys.append(f.alias or name)
    return list(dict.fromkeys(keys))


def _field(model: type[BaseModel], key: str) -> Any | None:
    for name, f in model.model_fields.items():
        va = f.validation_alias
        choices = list(getattr(va, "choices", [])) if va is not None else []
        if key in (name, f.alias, va, *choices):
            return f.annotation
    return None


def _tagged(model: type[BaseModel], tag: str) -> bool:
    for f in model.model_fields.values():
        for m in _members(f.annotation):
            if get_origin(m) is Literal and tag in get_args(m):
                return True
    return False


def _step(cands: list[Any], part: Any) -> tuple[list[Any], bool]:
    """Candidate types one loc part further down; False when the part is a union tag."""
    out: list[Any] = []
    for t in cands:
        for m in _members(t):
            origin = get_origin(m)
            if isinstance(part, int) and origin in (list, tuple, Sequence):
                out += list(get_args(m)[:1])
            elif isinstance(part, str) and _is_model(m):
                f = _field(m, part)
                if f is not None:
                    out.append(f)
            elif origin in (dict, Mapping) and not isinstance(part, int):
                args = get_args(m)
                if len(args) == 2:
                    out.append(args[1])
    if out:
        return out, True
    if isinstance(part, str):  # a union tag: keep the branch it names, when one says so
        tagged = [m for t in cands for m in _members(t) if _is_model(m) and _tagged(m, part)]
        named = [m for t in cands for m in _members(t) if _is_model(m) and m.__name__ == part]
        return tagged or named or cands, False
    return cands, False


def _locate(
    loc: Sequence[Any], data: Any, root: type[BaseModel] | None
) -> tuple[list[Any], list[Any]]:
    """pydantic loc -> (the user's path of keys/indices, candidate types at its parent)."""
    path: list[Any] = []
    cands: list[Any] = [root] if root is not None else []
    parent: list[Any] = cands
    cur = data
    for part in loc:
        if isinstance(part, str) and _INTERNAL.match(part):
            continue
        parent = cands
        nxt, real = _step(cands, part) if cands else ([], False)
        in_data = (isinstance(cur, dict) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        )
        if in_data or real or (not cands and isinstance(part, str)):
            path.append(part)
            cur = cur[part] if in_data else None
            cands = nxt
        else:
            cands = nxt  # a union branch: narrow the types, keep the path
    return path, parent


def format_path(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def line_of(node: yaml.Node | None, path: Sequence[Any]) -> int | None:
    """The YAML line (1-based) of the deepest node on a key path (keys/indices)."""
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == part), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def error_message(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    msg = re.sub(r"^Input should be (greater|less)", r"expected a value \1", msg)
    msg = re.sub(r"^Input should be ", "expected ", msg)
    if err["type"] == "finite_number":
        return "expected a finite number (NaN and infinity are not allowed)"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "union_tag_not_found":
        return msg.replace("Unable to extract tag using discriminator", "missing discriminator")
    if err["type"] == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        hint = _suggest(str(ctx.get("tag")), tags)
        return (
            f"unknown {ctx.get('discriminator', 'type')} {ctx.get('tag')!r}; expected one of "
            f"{ctx.get('expected_tags')}" + (f" (did you mean {hint!r}?)" if hint else "")
        )
    return msg


def _suggest(word: str, options: Sequence[str]) -> str | None:
    """The closest allowed key (case-insensitive, difflib), if any is close."""
    lower = {o.lower(): o for o in options}
    hit = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return lower[hit[0]] if hit else None


def validation_problems(
    exc: ValidationError,
    *,
    file: str,
    data: Any,
    node: yaml.Node | None,
    root: type[BaseModel] | None,
    prefix: Sequence[Any] = (),
    labels: Mapping[tuple[Any, ...], str] | None = None,
) -> list[InputError]:
    """Every problem of a ValidationError, one InputError each: the key path (union branches
    dropped), its YAML line, what was expected; an unknown key gets the closest allowed key, and
    a missing required key next to a close unknown one is said once. `labels` maps a key path set
    by a command-line option to that option (its errors name the option, not a line)."""
    found: list[tuple[list[Any], dict[str, Any], list[Any]]] = []
    for err in exc.errors():
        path, parent = _locate(tuple(err["loc"]), data, root)
        found.append((path, dict(err), parent))
    # Union branches fail together: an error with a deeper one below its key is their noise.
    paths = [tuple(p) for p, _, _ in found]
    keep = [
        (p, e, c)
        for p, e, c in found
        if not any(len(q) > len(p) and q[: len(p)] == tuple(p) for q in paths)
    ]
    missing = {
        tuple(p): e for p, e, _ in keep if e["type"] == "missing" and p and isinstance(p[-1], str)
    }
    lines: list[tuple[list[Any], str, dict[str, Any]]] = []
    merged: set[tuple[Any, ...]] = set()
    for p, e, parent in keep:
        if e["type"] == "extra_forbidden" and p:
            allowed = [
                k for t in parent for m in _members(t) if _is_model(m) for k in model_keys(m)
            ]
            gone = [k[-1] for k in missing if list(k[:-1]) == p[:-1]]
            hint = _suggest(str(p[-1]), gone) or _suggest(str(p[-1]), allowed)
            msg = f"unknown key `{p[-1]}`" + (f", did you mean `{hint}`?" if hint else "")
            if hint in gone:
                merged.add((*p[:-1], hint))
            elif not hint and allowed:
                msg += f" (allowed here: {', '.join(sorted(set(allowed)))})"
        else:
            msg = error_message(e)
        lines.append((p, msg, e))
    out: list[InputError] = []
    said: set[tuple[tuple[Any, ...], str]] = set()
    lines.sort(key=lambda x: line_of(node, x[0]) or 0)
    by_path: dict[tuple[Any, ...], list[str]] = {}
    for p, msg, e in lines:
        if e["type"] == "missing" and tuple(p) in merged:
            continue  # said with the unknown key next to it
        if (tuple(p), msg) in said:
            continue
        said.add((tuple(p), msg))
        by_path.setdefault(tuple(p), []).append(msg)
    # A union's branches fail at one key together: one line, the alternatives joined.
    for key, msgs in by_path.items():
        msg = msgs[0] if len(msgs) == 1 else "; or ".join(msgs)
        out.append(_problem(file, [*prefix, *key], line_of(node, list(key)), msg, labels))
    return out


def _problem(
    file: str,
    path: list[Any],
    line: int | None,
    msg: str,
    labels: Mapping[tuple[Any, ...], str] | None,
) -> InputError:
    for set_path, option in (labels or {}).items():
        if tuple(path[: len(set_path)]) == set_path:
            return InputError(msg, key=option)
    key = format_path(path)
    if line:
        key += f" (line {line})"
    return InputError(msg, file=file, key=key)
