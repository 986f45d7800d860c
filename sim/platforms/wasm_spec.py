"""`type: wasm` settings and their defaults with sources: the scenario keys of a Wasm serverless
platform, validated (pydantic). The model is sim.platforms.wasm; this module imports no kernel.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, model_validator

from sim.config import Duration, MemoryMB, Strict
from sim.distributions import Distribution, coerce_distribution
from sim.pricing.ops import OpsCosts, OpsProfile
from sim.pricing.wasm import CustomWasmPricing, WasmPricing

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]
_DIST: TypeAdapter[Any] = TypeAdapter(Dist)

# --- defaults (sources: docs/model.md section 4) --------------------------------------------------
# Per-request instantiation: Fermyon Spin "In our testing, we've achieved 0.5 millisecond cold
# start times" (fermyon.com/blog/spinkube-k3s, vendor claim). The slowest of the published
# sub-millisecond figures (Fastly/Lucet "under 50 microseconds", InfoQ 2019-04; Wasmtime: an
# empty module "from 10.6us to 6.4us", bytecodealliance/wasmtime commit), so the default does
# not flatter Wasm. For Fastly Compute, `instantiate: 50us` follows Fastly's own figure.
WASM_INSTANTIATE_S = 0.0005
# `instantiate` presets: the platforms' own figures. Cloudflare: isolate warm-up "under 5
# milliseconds", done while the TLS handshake runs ("no cold starts at all";
# blog.cloudflare.com/eliminating-cold-starts-with-cloudflare-workers, 2020); Workers isolates
# serve many requests, so charging 5 ms to every request (this model's request-per-instance) is an
# upper bound. Fastly: Lucet instantiates "in under 50 microseconds" (InfoQ 2019-04). Spin: 0.5 ms.
WASM_INSTANTIATE_PRESETS: dict[str, float] = {
    "fermyon-spin": 0.0005,
    "fastly-compute": 0.00005,
    "cloudflare-workers": 0.005,
}
# Wasm vs native compute speed: 1.0 (platforms.md); set it from your own benchmark.
WASM_SLOWDOWN = 1.0
# Workers Standard CPU time per invocation: default 30 s, at most 5 min
# (developers.cloudflare.com/workers/platform/limits). Fermyon Wasm Functions: 30 s per handler.
WASM_CPU_LIMIT_S = 30.0
WORKERS_CPU_LIMIT_MAX_S = 300.0
# Fastly Compute: "Maximum CPU time available to a single request instance | 50ms | per execution"
# (docs.fastly.com/products/compute-resource-limits, last updated 2025-10-09): the default with
# `pricing: fastly-compute`.
FASTLY_CPU_LIMIT_S = 0.050
# Workers: 128 MB per isolate (developers.cloudflare.com/workers/platform/limits); Fermyon Wasm
# Functions: 128 MiB (developer.fermyon.com/wasm-functions/faq).
WASM_MEMORY_LIMIT_MB = 128.0
# ASSUMPTION: 1 ms per request for the edge front end (routing to the runtime; TLS is terminated
# at the edge and the client's network RTT is not the platform's). No public measurement found.
WASM_EDGE_LATENCY_S = 0.001
# Edge cold start: none by default. Cloudflare pre-warms the isolate during the TLS handshake, so
# "no cold starts at all"; isolate warm-up is "under 5 milliseconds" (blog.cloudflare.com/
# eliminating-cold-starts-with-cloudflare-workers, 2020) - a value to try with `edge_cold_start`.
# ASSUMPTION: an idle isolate is evicted after 5 min. Cloudflare documents no figure: a Worker is
# evicted when "it hasn't been used in a while and we need the resources"
# (community.cloudflare.com/t/decommissioning-of-the-worker/113088, Cloudflare staff).
WASM_EDGE_IDLE_TIMEOUT_S = 300.0


def _instantiate(value: object) -> object:
    """A preset name (cloudflare-workers | fastly-compute | fermyon-spin) or any distribution."""
    if isinstance(value, str) and value.strip().lower() in WASM_INSTANTIATE_PRESETS:
        return coerce_distribution(WASM_INSTANTIATE_PRESETS[value.strip().lower()])
    if isinstance(value, str) and not value.strip()[:1].isdigit():
        presets = ", ".join(WASM_INSTANTIATE_PRESETS)
        raise ValueError(
            f"unknown instantiate preset {value!r}; use {presets} or a distribution / duration"
        )
    return coerce_distribution(value)


class WasmSpec(Strict):
    """`type: wasm` platform settings (platforms.md, Wasm section)."""

    name: str = Field(min_length=1)
    type: Literal["wasm"]
    instantiate: Annotated[Distribution, BeforeValidator(_instantiate)] = Field(
        default_factory=lambda: _DIST.validate_python(WASM_INSTANTIATE_S),
        description="per-request instantiation time: a distribution, a duration or a preset "
        "(cloudflare-workers 5 ms, fastly-compute 50 us, fermyon-spin 0.5 ms)",
    )
    slowdown: float = Field(
        WASM_SLOWDOWN, gt=0, description="handler time multiplier, Wasm vs native (1 = same)"
    )
    edge_cold_start: Dist | None = Field(
        None, description="extra start-up for the first request on an idle edge node (none: off)"
    )
    edge_idle_timeout: Duration = Field(
        WASM_EDGE_IDLE_TIMEOUT_S, gt=0, description="an edge node idle this long goes cold"
    )
    edge_nodes: int = Field(1, ge=1, le=100_000, description="edge nodes sharing the traffic")
    max_concurrency: int | None = Field(
        None, ge=1, description="requests in flight at most; beyond it: rejected (none: no cap)"
    )
    cpu_limit: Duration | None = Field(
        None,
        gt=0,
        description="CPU time per request; beyond it: timed_out (default: 50 ms with "
        "fastly-compute pricing, else 30 s)",
    )
    memory_limit: MemoryMB = Field(
        WASM_MEMORY_LIMIT_MB, gt=0, description="memory per instance (MB); reported only"
    )
    edge_latency: Dist = Field(
        default_factory=lambda: _DIST.validate_python(WASM_EDGE_LATENCY_S),
        description="overhead per request on the client path",
    )
    pricing: WasmPricing = "cloudflare-workers"
    custom: CustomWasmPricing | None = Field(None, description="rates for `pricing: custom`")
    ops: OpsCosts = Field(default_factory=dict, description="operating cost: monthly USD per line")
    ops_profile: OpsProfile | None = Field(
        None, description="bundled operating-cost profile (kubernetes-team, serverless-team)"
    )

    @model_validator(mode="after")
    def _check(self) -> WasmSpec:
        if self.pricing == "custom" and self.custom is None:
            raise ValueError("`pricing: custom` needs a `custom:` section with the rates")
        if self.pricing != "custom" and self.custom is not None:
            raise ValueError(
                f"`custom:` rates apply only with `pricing: custom` (got {self.pricing})"
            )
        if self.cpu_limit is None:
            self.cpu_limit = (
                FASTLY_CPU_LIMIT_S if self.pricing == "fastly-compute" else WASM_CPU_LIMIT_S
            )
        if self.pricing == "cloudflare-workers" and self.cpu_limit > WORKERS_CPU_LIMIT_MAX_S:
            raise ValueError(
                f"cpu_limit: Workers allows at most {WORKERS_CPU_LIMIT_MAX_S:.0f} s of CPU per "
                f"request, got {self.cpu_limit:g} s"
            )
        return self
