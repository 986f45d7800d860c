"""`sim init [--template NAME] [PATH]`: write a commented scenario to start from.

The templates are the bundled scenarios (`sim scenarios` lists them), each commented at its top
with what it shows and which numbers to look at. Files a template reads (a trace under data/)
are copied beside PATH. Nothing is ever overwritten: an existing file is refused (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sim.cli.common import bundled
from sim.errors import InputError

DEFAULT_TEMPLATE = "small-api"


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("scenario.yaml"))
@click.option(
    "--template",
    "-t",
    default=DEFAULT_TEMPLATE,
    show_default=True,
    metavar="NAME",
    help="a bundled scenario (see `sim scenarios`)",
)
def init(path: Path, template: str) -> None:
    """Write a commented scenario to PATH (default scenario.yaml) to start from.

    \b
    Examples:
      sim init                                  # scenario.yaml from small-api
      sim init --template latency-sensitive my.yaml
      sim run my.yaml
    """
    found = bundled()
    if template not in found:
        raise InputError(
            f"no bundled scenario {template!r}; expected one of {', '.join(found)}",
            key="--template",
        )
    src, _ = found[template]
    text = src.read_text(encoding="utf-8")
    # files the template reads, relative to it: copied beside PATH
    import yaml

    extras = []
    for rel in dict.fromkeys(_strings(yaml.safe_load(text))):
        f = src.parent / rel
        if "/" in rel and not Path(rel).is_absolute() and ".." not in rel and f.is_file():
            extras.append((f, path.parent / rel))
    # the data's README travels with it (the traces' CC BY 4.0 attribution)
    for f, _ in list(extras):
        d = f.parent
        while d != src.parent and src.parent in d.parents:
            readme = d / "README.md"
            t = path.parent / readme.relative_to(src.parent)
            if readme.is_file() and all(t != x for _, x in extras):
                extras.append((readme, t))
            d = d.parent
    for target in [path, *(t for _, t in extras)]:
        if target.exists():
            raise InputError(
                "already exists; not overwritten (choose another PATH)", file=str(target)
            )
    header = (
        f"# Written by `sim init --template {template}` from sim's bundled scenario.\n"
        f"# Edit it, then: sim run {path}   (every key: `sim schema`, docs/model.md)\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    for f, t in extras:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_bytes(f.read_bytes())
    with path.open("x", encoding="utf-8") as out:  # "x": fails rather than overwrite
        out.write(header + text)
    click.echo(f"wrote {path}" + "".join(f", {t}" for _, t in extras) + f" (from {template})")
    click.echo(f"next: sim run {path}")
