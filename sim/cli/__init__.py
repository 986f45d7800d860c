"""Command line: `sim run | compare | sweep | tune | crossover | validate | schema | fit`.

This room owns parsing options and printing; the work is in the library below it. One module per
command, each thin; a command never imports another command, only `sim.cli.common`. Commands are
loaded when invoked (`sim --help` reads their help text, which costs no heavy import), so a usage
error or `--help` never pays for scipy, pandas, plotly or the platform kernels.

Exit status (design.md section 3): 0 done; 1 an SLO was missed and --check was given; 2 bad input
or usage (one line on stderr, no traceback); 3 the run failed for another reason.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import click

from sim import __version__
from sim.cli.common import EXIT_FAIL, EXIT_INPUT
from sim.errors import InputError

# command name -> module under sim.cli holding a click command of the same name
COMMANDS = ("run", "compare", "sweep", "tune", "crossover", "validate", "schema", "fit")


class _Group(click.Group):
    """Loads each command on demand; turns every error into one line and the documented exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"sim.cli.{cmd_name}")
        command: click.Command = getattr(module, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"sim: error: {exc}", err=True)
            sys.exit(EXIT_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("sim: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("SIM_DEBUG"):
                traceback.print_exc()
            click.echo(
                f"sim: run failed: {type(exc).__name__}: {exc} (set SIM_DEBUG=1 for a traceback)",
                err=True,
            )
            sys.exit(EXIT_FAIL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sim")
def main() -> None:
    """sim: Lambda vs Wasm serverless vs Kubernetes+KEDA, by simulation.

    Tail latency, failures and the monthly bill for the same traffic on each platform.
    """


if __name__ == "__main__":
    main()
