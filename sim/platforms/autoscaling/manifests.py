"""KEDA manifests users already have -> ScaledObjectSpec.

- `load_scaled_object(path)`: a `kind: ScaledObject` (`apiVersion: keda.sh/v1alpha1`); its `spec`
  is validated as ScaledObjectSpec.
- `load_http_scaled_object(path)`: a `kind: HTTPScaledObject` (`apiVersion: http.keda.sh/v1alpha1`,
  kedacore/http-add-on operator/apis/http/v1alpha1/httpscaledobject_types.go), mapped onto the
  ScaledObject the add-on's operator creates (operator/controllers/http/scaled_object.go):
  minReplicaCount = replicas.min (default 0), maxReplicaCount = replicas.max (default 100),
  cooldownPeriod = scaledownPeriod (default 300), initialCooldownPeriod, one `http` trigger with
  the scaling metric (concurrency, or requestRate with window and granularity; targetValue
  default 100; the deprecated targetPendingRequests is a concurrency target). The add-on pushes
  activity to KEDA, so the activation poll is the add-on's queue tick (0.5 s) rather than 30 s.
- `load_keda_manifest(path)`: either kind (what `keda: {file: ...}` uses).

A file may hold several YAML documents (a Deployment, a Service, ...): documents of other kinds
are skipped; with more than one matching object, `name` (metadata.name) picks one. Every problem
is an InputError naming the file and the key path (with the YAML line where there is one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

import sim.platforms.autoscaling as D
from sim.config import Duration, Strict, load_yaml, read_text_file, validation_problems
from sim.errors import InputError
from sim.platforms.autoscaling.keda import Ignored, ScaledObjectSpec

KEDA_API = "keda.sh/v1alpha1"
HTTP_API = "http.keda.sh/v1alpha1"
_API_OF = {"ScaledObject": KEDA_API, "HTTPScaledObject": HTTP_API}


# --- HTTPScaledObject -----------------------------------------------------------------------------


class HTTPReplicas(Strict):
    min: int = Field(D.KEDA_MIN_REPLICA_COUNT, ge=0)
    max: int = Field(D.KEDA_MAX_REPLICA_COUNT, ge=1)


class HTTPConcurrency(Strict):
    targetValue: float = Field(D.HTTP_TARGET_VALUE, gt=0)


class HTTPRequestRate(Strict):
    targetValue: float = Field(D.HTTP_TARGET_VALUE, gt=0)
    window: Duration = Field(D.HTTP_RATE_WINDOW_S, gt=0)
    granularity: Duration = Field(D.HTTP_RATE_GRANULARITY_S, gt=0)


class HTTPScalingMetric(Strict):
    concurrency: HTTPConcurrency | None = None
    requestRate: HTTPRequestRate | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> HTTPScalingMetric:
        if self.concurrency is not None and self.requestRate is not None:
            raise ValueError("`concurrency` and `requestRate` are mutually exclusive")
        return self


class HTTPScaledObjectSpec(Strict):
    """`spec:` of an HTTPScaledObject; routing fields are accepted and not simulated."""

    hosts: Ignored = None
    pathPrefixes: Ignored = None
    headers: Ignored = None
    scaleTargetRef: Ignored = None
    coldStartTimeoutFailoverRef: Ignored = None
    timeouts: Ignored = None
    placeholderConfig: Ignored = None
    replicas: HTTPReplicas = Field(default_factory=HTTPReplicas)
    targetPendingRequests: int | None = Field(None, gt=0, description="deprecated")
    scaledownPeriod: Duration = Field(D.KEDA_COOLDOWN_PERIOD_S, ge=0)
    initialCooldownPeriod: Duration = Field(D.KEDA_INITIAL_COOLDOWN_PERIOD_S, ge=0)
    scalingMetric: HTTPScalingMetric | None = None

    def to_scaled_object(self) -> ScaledObjectSpec:
        metric = self.scalingMetric
        if metric is not None and metric.requestRate is not None:
            rr = metric.requestRate
            md: dict[str, Any] = {
                "scalingMetric": "requestRate",
                "targetValue": rr.targetValue,
                "window": rr.window,
                "granularity": rr.granularity,
            }
        else:
            target = (
                metric.concurrency.targetValue
                if metric is not None and metric.concurrency is not None
                else float(self.targetPendingRequests or D.HTTP_TARGET_VALUE)
            )
            md = {"scalingMetric": "concurrency", "targetValue": target}
        return ScaledObjectSpec.model_validate(
            {
                "pollingInterval": D.HTTP_ACTIVATION_POLL_S,
                "cooldownPeriod": self.scaledownPeriod,
                "initialCooldownPeriod": self.initialCooldownPeriod,
                "minReplicaCount": self.replicas.min,
                "maxReplicaCount": self.replicas.max,
                "triggers": [{"type": "http", "metadata": md}],
            }
        )


# --- loading --------------------------------------------------------------------------------------

Kind = Literal["ScaledObject", "HTTPScaledObject"]


def load_scaled_object(path: str | Path, *, name: str | None = None) -> ScaledObjectSpec:
    """A `kind: ScaledObject` manifest -> its validated spec."""
    return _load(Path(path), ("ScaledObject",), name)


def load_http_scaled_object(path: str | Path, *, name: str | None = None) -> ScaledObjectSpec:
    """A `kind: HTTPScaledObject` manifest -> the equivalent ScaledObject spec."""
    return _load(Path(path), ("HTTPScaledObject",), name)


def load_keda_manifest(path: str | Path, *, name: str | None = None) -> ScaledObjectSpec:
    """A ScaledObject or HTTPScaledObject manifest -> a ScaledObject spec."""
    return _load(Path(path), ("ScaledObject", "HTTPScaledObject"), name)


def _load(path: Path, kinds: tuple[Kind, ...], name: str | None) -> ScaledObjectSpec:
    file = str(path)
    # Size-limited, regular files only, no alias bombs or repeated keys (sim.config).
    text = read_text_file(path, what="KEDA manifest", key="file")
    loaded = load_yaml(text, file, multi=True)
    docs = [d for d, _ in loaded]
    nodes = [n for _, n in loaded]

    found: list[tuple[int, dict[str, Any]]] = []
    seen: list[str] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InputError(
                "expected a Kubernetes object (a mapping)",
                file=file,
                key=_where(i, len(docs), "", nodes[i]),
            )
        kind = doc.get("kind")
        seen.append(str(kind))
        if kind not in kinds:
            continue
        api = doc.get("apiVersion")
        if api != _API_OF[kind]:
            raise InputError(
                f"apiVersion must be {_API_OF[kind]} for kind {kind}, got {api!r}",
                file=file,
                key=_where(i, len(docs), "apiVersion", nodes[i], ("apiVersion",)),
            )
        found.append((i, doc))
    wanted = " or ".join(kinds)
    if not found:
        got = ", ".join(seen) if seen else "no documents"
        raise InputError(f"no {wanted} in the file (found: {got})", file=file, key="kind")
    if name is not None:
        found = [(i, d) for i, d in found if (d.get("metadata") or {}).get("name") == name]
        if not found:
            raise InputError(f"no {wanted} named {name!r}", file=file, key="metadata.name")
    if len(found) > 1:
        names = [str((d.get("metadata") or {}).get("name")) for _, d in found]
        raise InputError(
            f"{len(found)} objects of kind {wanted} ({', '.join(names)}); give `name` to pick one",
            file=file,
            key="metadata.name",
        )
    index, doc = found[0]
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise InputError(
            "`spec` is missing or not a mapping",
            file=file,
            key=_where(index, len(docs), "spec", nodes[index], ("spec",)),
        )
    model = HTTPScaledObjectSpec if doc["kind"] == "HTTPScaledObject" else ScaledObjectSpec
    try:
        parsed = model.model_validate(spec)
    except ValidationError as exc:
        # Every problem, one line each, keyed from the document (spec.<path>, line).
        problems = validation_problems(
            exc, file=file, data=spec, node=_spec_node(nodes[index]), root=model, prefix=("spec",)
        )
        if len(docs) > 1:
            for pr in problems:
                pr.key = f"document {index + 1}: {pr.key}"
            problems = [InputError(pr.detail, file=pr.file, key=pr.key) for pr in problems]
        raise InputError.many(problems) from None
    return parsed.to_scaled_object() if isinstance(parsed, HTTPScaledObjectSpec) else parsed


def _spec_node(node: yaml.Node | None) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == "spec":
                return v
    return None


def _where(
    index: int, ndocs: int, key: str, node: yaml.Node | None, loc: tuple[Any, ...] = ()
) -> str:
    out = key or "(document)"
    if ndocs > 1:
        out = f"document {index + 1}: {out}"
    line = _line_of(node, loc)
    return f"{out} (line {line})" if line else out


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """pydantic loc -> 'spec.triggers[0].metadata.threshold' (union tags and internals dropped)."""
    out, cur = "", data
    for part in loc:
        if isinstance(part, int) and isinstance(cur, list):
            out += f"[{part}]"
            cur = cur[part] if part < len(cur) else None
        elif isinstance(part, str) and isinstance(cur, dict) and part in cur:
            out += f".{part}" if out else part
            cur = cur[part]
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part  # a missing or unknown key
            cur = None
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == part), None)
            if nxt is None:
                continue
            line, node = nxt[0].start_mark.line + 1, nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
