"""Read Lambda settings from an AWS SAM / CloudFormation template (`sam: {file, function}`).

Maps the function's MemorySize, Timeout, Runtime, Architectures, ReservedConcurrentExecutions,
ProvisionedConcurrencyConfig, SnapStart, FileSystemConfigs (-> efs) and EphemeralStorage (->
cost.ephemeral_storage), with SAM `Globals.Function` as defaults, onto the Lambda platform keys.
Keys written in the scenario win over the template. Intrinsic functions (!Ref, !Sub, ...) are
accepted by the loader; a value that is not a literal is an error naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sim.config import load_yaml, read_text_file
from sim.errors import InputError

_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short-form tags as {'!Tag': value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {f"!{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tagged)


def _literal(value: Any, file: str, key: str) -> Any:
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)).startswith(("!", "Fn::", "Ref"))
    ):
        raise InputError(
            f"{key} is {value!r}, not a literal value; write the value in the scenario instead",
            file=file,
            key=key,
        )
    return value


def load_sam_function(path: Path, function: str | None) -> dict[str, Any]:
    """Lambda platform keys taken from the template's function `function`."""
    file = str(path)
    # Size-limited, regular files only, no alias bombs or repeated keys (sim.config).
    text = read_text_file(path, what="SAM template")
    docs = load_yaml(text, file, _CfnLoader)
    doc = docs[0][0] if docs else None
    resources = (doc or {}).get("Resources") if isinstance(doc, dict) else None
    if not isinstance(resources, dict):
        raise InputError("no Resources section", file=file, key="Resources")
    funcs = {
        k: v
        for k, v in resources.items()
        if isinstance(v, dict) and v.get("Type") in _FUNCTION_TYPES
    }
    if not funcs:
        raise InputError(
            "no AWS::Serverless::Function or AWS::Lambda::Function", file=file, key="Resources"
        )
    if function is None:
        if len(funcs) > 1:
            raise InputError(
                f"several functions ({', '.join(funcs)}); name one with sam.function",
                file=file,
                key="sam.function",
            )
        function = next(iter(funcs))
    if function not in funcs:
        raise InputError(
            f"no function {function!r}; the template has {', '.join(funcs)}",
            file=file,
            key="sam.function",
        )
    assert isinstance(doc, dict)  # Resources was read from it
    props = dict((doc.get("Globals") or {}).get("Function") or {})
    props.update(funcs[function].get("Properties") or {})
    out: dict[str, Any] = {}
    where = f"Resources.{function}.Properties"
    if "MemorySize" in props:
        out["memory"] = _literal(props["MemorySize"], file, f"{where}.MemorySize")
    if "Timeout" in props:
        out["timeout"] = _literal(props["Timeout"], file, f"{where}.Timeout")
    if "Runtime" in props:
        out["runtime"] = _literal(props["Runtime"], file, f"{where}.Runtime")
    if "Architectures" in props:
        arch = _literal(props["Architectures"], file, f"{where}.Architectures")
        if isinstance(arch, list) and arch:
            out["architecture"] = arch[0]
    if "ReservedConcurrentExecutions" in props:
        out["reserved_concurrency"] = _literal(
            props["ReservedConcurrentExecutions"], file, f"{where}.ReservedConcurrentExecutions"
        )
    pcc = props.get("ProvisionedConcurrencyConfig")
    if isinstance(pcc, dict) and "ProvisionedConcurrentExecutions" in pcc:
        out["provisioned_concurrency"] = _literal(
            pcc["ProvisionedConcurrentExecutions"],
            file,
            f"{where}.ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
        )
    snap = props.get("SnapStart")
    if isinstance(snap, dict) and snap.get("ApplyOn") == "PublishedVersions":
        out["snapstart"] = True
    if props.get("FileSystemConfigs"):
        out["efs"] = True
    storage = props.get("EphemeralStorage")
    if isinstance(storage, dict) and "Size" in storage:
        size = _literal(storage["Size"], file, f"{where}.EphemeralStorage.Size")
        out["cost"] = {"ephemeral_storage": size}
    return out
