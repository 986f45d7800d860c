"""Platform models by `type`. A new platform registers its spec and model here, nowhere else.

Specs (the validated scenario keys) import no kernel, so loading a scenario or printing its schema
stays light; the models (the simulation kernels) load when a run asks for them (`model_class`).
Each spec module is imported only when a scenario names its type (`spec_union`): building the
pydantic models of all nine types costs ~0.3 s, most of `sim run`'s start-up on a small scenario.
`PlatformSpec` (every type: `sim schema`, docsgen, tests) is built on first use.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Iterable
from functools import cache, reduce
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

if TYPE_CHECKING:  # what type checkers see; at run time PlatformSpec is built on first use
    from sim.platforms.azure_flex_spec import AzureFlexSpec
    from sim.platforms.cloud_run_spec import CloudRunSpec
    from sim.platforms.container_apps_spec import ContainerAppsSpec
    from sim.platforms.fargate_spec import FargateSpec
    from sim.platforms.knative_spec import KnativeSpec
    from sim.platforms.kubernetes_spec import KubernetesSpec
    from sim.platforms.lambda_managed_spec import LambdaManagedSpec
    from sim.platforms.lambda_spec import LambdaSpec
    from sim.platforms.wasm_spec import WasmSpec

    PlatformSpec = Annotated[
        LambdaSpec
        | WasmSpec
        | KubernetesSpec
        | FargateSpec
        | AzureFlexSpec
        | LambdaManagedSpec
        | CloudRunSpec
        | ContainerAppsSpec
        | KnativeSpec,
        Field(discriminator="type"),
    ]

# type -> "module:class" of its scenario keys (a pydantic model with `type: Literal[type]`); the
# order is the union's, which `unknown 'type'` errors list.
SPECS: dict[str, str] = {
    "lambda": "sim.platforms.lambda_spec:LambdaSpec",
    "wasm": "sim.platforms.wasm_spec:WasmSpec",
    "kubernetes": "sim.platforms.kubernetes_spec:KubernetesSpec",
    "fargate": "sim.platforms.fargate_spec:FargateSpec",
    "azure_flex": "sim.platforms.azure_flex_spec:AzureFlexSpec",
    "lambda_managed": "sim.platforms.lambda_managed_spec:LambdaManagedSpec",
    "cloud_run": "sim.platforms.cloud_run_spec:CloudRunSpec",
    "container_apps": "sim.platforms.container_apps_spec:ContainerAppsSpec",
    "knative": "sim.platforms.knative_spec:KnativeSpec",
}

# type -> "module:class" of its simulation model
MODELS: dict[str, str] = {
    "lambda": "sim.platforms.lambda_:LambdaModel",
    "wasm": "sim.platforms.wasm:WasmModel",
    "kubernetes": "sim.platforms.kubernetes:KubernetesModel",
    "fargate": "sim.platforms.fargate:FargateModel",
    "azure_flex": "sim.platforms.azure_flex:AzureFlexModel",
    "lambda_managed": "sim.platforms.lambda_managed:LambdaManagedModel",
    "cloud_run": "sim.platforms.cloud_run:CloudRunModel",
    "container_apps": "sim.platforms.container_apps:ContainerAppsModel",
    "knative": "sim.platforms.knative:KnativeModel",
}


def _load(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def model_class(platform_type: str) -> Any:
    """The model class simulating `platform_type` (imported on first use)."""
    return _load(MODELS[platform_type])


def spec_class(platform_type: str) -> Any:
    """The spec class of `platform_type` (its module imported on first use)."""
    return _load(SPECS[platform_type])


def spec_union(types: Iterable[str] | None = None) -> Any:
    """The discriminated union of the specs of `types` (all of them for None), in SPECS order."""
    wanted = SPECS if types is None else set(types)
    return _union(tuple(t for t in SPECS if t in wanted))


@cache
def _union(types: tuple[str, ...]) -> Any:
    # one member is a one-member discriminated union: the same checks and error paths
    return Annotated[reduce(operator.or_, map(spec_class, types)), Field(discriminator="type")]


def __getattr__(name: str) -> Any:
    if (
        name == "PlatformSpec" and not TYPE_CHECKING
    ):  # every type, e.g. TypeAdapter(PlatformSpec) or the full schema
        return spec_union()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
