"""Platform models by `type`. A new platform registers its spec and model here, nowhere else."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from sim.platforms.kubernetes import KubernetesModel, KubernetesSpec
from sim.platforms.lambda_ import LambdaModel, LambdaSpec
from sim.platforms.wasm import WasmModel, WasmSpec

PlatformSpec = Annotated[LambdaSpec | WasmSpec | KubernetesSpec, Field(discriminator="type")]

MODELS: dict[str, Any] = {"lambda": LambdaModel, "wasm": WasmModel, "kubernetes": KubernetesModel}
