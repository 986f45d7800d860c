"""`sim schema`: the JSON Schema of the scenario format."""

from __future__ import annotations

import json

import click


@click.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editors / the YAML language server)."""
    from sim.scenario import json_schema

    click.echo(json.dumps(json_schema(), indent=2))
