"""Platform models by `type`. A new platform registers its spec and model here, nowhere else.

Specs (the validated scenario keys) import no kernel, so loading a scenario or printing its schema
stays light; the models (the simulation kernels) load when a run asks for them (`model_class`).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

from pydantic import Field

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


def model_class(platform_type: str) -> Any:
    """The model class simulating `platform_type` (imported on first use)."""
    module, _, name = MODELS[platform_type].partition(":")
    return getattr(importlib.import_module(module), name)
