"""Workload: arrival sources + service times -> a stream of RequestChunks.

`WorkloadSpec` is the `workload:` section of a scenario. `Workload(spec, arrivals_rng, service_rng,
base_dir).chunks(duration, chunk_seconds)` yields the requests of consecutive windows [t0, t1),
merged over all sources (stable sort: ties keep source order) with service times drawn in bulk, in
arrival order, for requests whose source has none. Memory holds about one chunk at a time.

Reproducibility: the workload never advances the generators it is given (it works on copies), so
equal generator states give identical chunks, for every platform of a replication (common random
numbers), and for any `chunk_seconds`: each source draws from its own stream in internal blocks
that do not depend on the chunking. Adding a source leaves the other sources' arrivals unchanged.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from sim.config import Fraction, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.errors import InputError
from sim.pricing.tables import parse_bytes
from sim.workload.sources import (
    Batch,
    Diurnal,
    Mmpp,
    Phases,
    PhasesField,
    SourceBase,
    SourceGenerator,
    Spike,
    Steady,
    also_bare_duration,
    split_rng,
)
from sim.workload.trace import TraceSource

SOURCE_KINDS = ("steady", "phases", "diurnal", "spike", "batch", "mmpp", "trace")


def _one_kind_schema(schema: dict[str, Any]) -> None:
    # Exactly one key per entry; a key's value is its source's settings (null is not allowed).
    for name, prop in schema["properties"].items():
        options = [s for s in prop.get("anyOf", []) if s.get("type") != "null"]
        if len(options) == 1:
            schema["properties"][name] = options[0]
    schema["minProperties"] = schema["maxProperties"] = 1


class ArrivalSource(Strict):
    """One entry of `workload.arrivals`: a one-key mapping, e.g. `- steady: {rate: 20/s}`."""

    model_config = ConfigDict(json_schema_extra=_one_kind_schema)

    steady: Steady | None = None
    phases: PhasesField | None = None
    diurnal: Diurnal | None = None
    spike: Spike | None = None
    batch: Batch | None = None
    mmpp: Mmpp | None = None
    trace: TraceSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kinds = ", ".join(SOURCE_KINDS)
        keys = list(data)
        if len(keys) != 1:
            got = ", ".join(map(str, keys)) or "nothing"
            raise ValueError(
                f"each arrivals entry is one source ({kinds}), e.g. `- steady: {{rate: 20/s}}`;"
                f" got {got}"
            )
        key = keys[0]
        if key not in SOURCE_KINDS:
            hint = difflib.get_close_matches(str(key), SOURCE_KINDS, n=1)
            raise ValueError(
                f"unknown arrival source {key!r}; expected one of {kinds}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
        if data[key] is None:
            raise ValueError(f"`{key}` needs its settings, e.g. `- steady: {{rate: 20/s}}`")
        return data

    @property
    def kind(self) -> str:
        return next(k for k in SOURCE_KINDS if getattr(self, k) is not None)

    @property
    def source(self) -> SourceBase:
        return getattr(self, self.kind)

    @model_serializer(mode="wrap")
    def _dump_one(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


_SIZE_KEYS = ("value", "mean", "median", "p99", "shift", "scale", "low", "high")


def _size_distribution(value: Any) -> Any:
    """Response sizes: '2KB' or 2048 (constant) or a distribution whose sizes may say '2KB'."""
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return {"dist": "constant", "value": parse_bytes(value)}
    if isinstance(value, dict):
        out = dict(value)
        for key in _SIZE_KEYS:
            if isinstance(out.get(key), str):
                out[key] = parse_bytes(out[key])
        if isinstance(out.get("values"), list):
            out["values"] = [parse_bytes(v) if isinstance(v, str) else v for v in out["values"]]
        return coerce_distribution(out)
    return value


class ServiceSpec(Strict):
    """Handler time per request at 1 vCPU (native); the size of each response."""

    duration: Annotated[
        Distribution | None,
        BeforeValidator(coerce_distribution),
        Field(json_schema_extra=also_bare_duration),
    ] = Field(None, description="a distribution, or a bare duration (constant)")
    cpu_bound: Fraction = Field(
        1.0, ge=0, le=1, description="share of the service time that scales with CPU (1 = all)"
    )
    # Billing only (internet egress, response streaming): none = 0 bytes, so older scenarios keep
    # their bills. Sizes in bytes ("2KB" = 2,000, "2KiB" = 2,048).
    response_size: Annotated[Distribution | None, BeforeValidator(_size_distribution)] = Field(
        None, description="bytes per response: a size ('20KB') or a distribution of sizes"
    )
    # Handler errors: the handler runs its full time, then fails (outcome `error`; Lambda bills it,
    # as AWS does); which requests fail is common to every platform (sim.records.handler_errors).
    error_rate: Fraction = Field(
        0.0, ge=0, le=1, description="share of requests whose handler fails after its handler time"
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        if not out.get("error_rate"):  # added later: scenarios without it dump as before
            out.pop("error_rate", None)
        return out


class WorkloadSpec(Strict):
    """The `workload:` section: arrival sources (superposed) and the service-time model."""

    arrivals: list[ArrivalSource] = Field(min_length=1)
    service: ServiceSpec = Field(default_factory=ServiceSpec)

    @model_validator(mode="after")
    def _service_needed(self) -> WorkloadSpec:
        if self.service.duration is None:
            for i, entry in enumerate(self.arrivals):
                if not entry.source.gives_service():
                    raise ValueError(
                        f"`service.duration` is required: arrivals[{i}] ({entry.kind}) has no"
                        " service times of its own"
                    )
        return self


@dataclass
class RequestChunk:
    """The requests arriving in one window, columnar."""

    arrival: np.ndarray  # float64 seconds, sorted ascending
    service: np.ndarray  # float64 seconds of handler time at 1 vCPU
    function: np.ndarray  # int32 index into Workload.function_names

    def __len__(self) -> int:
        return int(self.arrival.size)


class Workload:
    """All arrival sources of a scenario, merged; see the module docstring."""

    def __init__(
        self,
        spec: WorkloadSpec,
        arrivals_rng: np.random.Generator,
        service_rng: np.random.Generator,
        base_dir: Path | str,
    ) -> None:
        self.spec = spec
        self.base_dir = Path(base_dir)
        self._source_rngs = split_rng(copy.deepcopy(arrivals_rng), len(spec.arrivals))
        self._service_rng = copy.deepcopy(service_rng)
        self._gens: list[SourceGenerator] | None = self._build()  # loads and checks files now
        names: list[str] = []
        index: dict[str, int] = {}

        def add(name: str) -> int:
            if name not in index:
                index[name] = len(names)
                names.append(name)
            return index[name]

        gens = self._gens
        self._default = add("default") if not all(g.has_function for g in gens) else -1
        self._maps = [
            np.array([add(n) for n in g.function_names], np.int32) if g.has_function else None
            for g in gens
        ]
        self._names = names
        self._expected = [g.expected_count for g in gens]

    def _build(self) -> list[SourceGenerator]:
        gens = []
        for i, entry in enumerate(self.spec.arrivals):
            rng = copy.deepcopy(self._source_rngs[i])
            try:
                gens.append(entry.source.generator(rng, self.base_dir))
            except InputError as exc:
                key = f"workload.arrivals.{i}.{entry.kind}" + (f".{exc.key}" if exc.key else "")
                raise InputError(exc.detail, file=exc.file, key=key) from None
        return gens

    @property
    def function_names(self) -> list[str]:
        """Names behind RequestChunk.function ids; ["default"] unless a trace names functions."""
        return list(self._names)

    @property
    def function_memory_mb(self) -> dict[str, float]:
        """Per-function memory (MB) from a trace's `memory` file, where one was given."""
        out: dict[str, float] = {}
        for gen in self._gens or self._build():
            mem = getattr(gen, "memory_mb", None)
            if mem is not None:
                for name, mb in zip(gen.function_names, mem, strict=True):
                    if np.isfinite(mb):
                        out[name] = float(mb)
        return out

    def expected_requests(self, duration: float) -> float:
        """Analytic mean number of requests in [0, duration) (for sizing checks and tests)."""
        return float(sum(f(duration) for f in self._expected))

    def chunks(self, duration: float, chunk_seconds: float = 3600.0) -> Iterator[RequestChunk]:
        """RequestChunks for [0, chunk_seconds), [chunk_seconds, 2 chunk_seconds), ... duration.

        Each call replays the same requests from the start.
        """
        if not (duration > 0 and math.isfinite(duration)):
            raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
        if not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds!r}")
        gens = self._gens if self._gens is not None else self._build()
        self._gens = None  # generators are stateful: a second call builds fresh ones
        return self._iterate(gens, duration, chunk_seconds, copy.deepcopy(self._service_rng))

    def _iterate(
        self,
        gens: list[SourceGenerator],
        duration: float,
        chunk_seconds: float,
        service_rng: np.random.Generator,
    ) -> Iterator[RequestChunk]:
        dist = self.spec.service.duration
        n_chunks = max(1, math.ceil(duration / chunk_seconds))
        for i in range(n_chunks):
            t0 = i * chunk_seconds
            t1 = duration if i == n_chunks - 1 else (i + 1) * chunk_seconds
            times, service, function = [], [], []
            for gen, fmap in zip(gens, self._maps, strict=True):
                t, s, f = gen.generate(t0, t1)
                times.append(t)
                service.append(s if s is not None else np.full(t.size, np.nan))
                function.append(
                    fmap[f] if fmap is not None else np.full(t.size, self._default, np.int32)
                )
            if len(gens) == 1:
                arrival, svc, fun = times[0], service[0].copy(), function[0]
            else:
                arrival = np.concatenate(times)
                svc = np.concatenate(service)
                fun = np.concatenate(function)
            fun = fun.astype(np.int32, copy=False)
            if len(gens) > 1:
                order = np.argsort(arrival, kind="stable")
                arrival, svc, fun = arrival[order], svc[order], fun[order]
            missing = np.isnan(svc)
            n_missing = int(missing.sum())
            if n_missing:
                assert dist is not None  # WorkloadSpec guarantees it
                svc[missing] = dist.sample(n_missing, service_rng)
            yield RequestChunk(arrival, svc, fun)


__all__ = [
    "SOURCE_KINDS",
    "ArrivalSource",
    "Batch",
    "Diurnal",
    "Mmpp",
    "Phases",
    "RequestChunk",
    "ServiceSpec",
    "SourceGenerator",
    "Spike",
    "Steady",
    "TraceSource",
    "Workload",
    "WorkloadSpec",
]
