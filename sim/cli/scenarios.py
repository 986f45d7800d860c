"""`sim scenarios`: the bundled scenarios, each with its one-line description."""

from __future__ import annotations

import click

from sim.cli.common import bundled


@click.command()
@click.option("--path", "show_path", is_flag=True, help="also print where each file is")
def scenarios(show_path: bool) -> None:
    """List the bundled scenarios (templates for `sim init --template NAME`).

    \b
    Example:
      sim init --template latency-sensitive my.yaml && sim run my.yaml
    """
    found = bundled()
    width = max(map(len, found), default=0)
    for name, (path, description) in found.items():
        click.echo(f"{name:<{width}}  {description}" + (f"  ({path})" if show_path else ""))
