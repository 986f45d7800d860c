"""Command line: `sim run | compare | sweep | tune | crossover | validate | schema | init |
scenarios | fit`.

This room owns parsing options and printing; the work is in the library below it. One module per
command, each thin; a command never imports another command, only `sim.cli.common`. Commands are
loaded when invoked (`sim --help` reads their help text, which costs no heavy import), so a usage
error or `--help` never pays for scipy, pandas, plotly or the platform kernels.

Exit status (design.md section 3): 0 done; 1 an SLO was missed and --check was given; 2 bad input
or usage (one line on stderr, no traceback); 3 the run failed for another reason.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import traceback
from typing import Any

import click

from sim import __version__
from sim.cli import common
from sim.cli.common import EXIT_FAIL, EXIT_INPUT
from sim.errors import InputError, Interrupted

# Commands that call common.startup_done() themselves, once their start-up is over (imports,
# validating the scenario); every other command collects garbage from when it is loaded.
LATE_GC = ("run", "sweep")

# command name -> module under sim.cli holding a click command of the same name
COMMANDS = (
    "run",
    "compare",
    "sweep",
    "tune",
    "crossover",
    "validate",
    "fit",
    "init",
    "scenarios",
    "schema",
)


class _Group(click.Group):
    """Loads each command on demand; turns every error into one line and the documented exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"sim.cli.{cmd_name}")
        command: click.Command = getattr(module, cmd_name)
        if cmd_name not in LATE_GC:
            common.startup_done()
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Start-up makes ~80k long-lived objects (modules, pydantic models, the scenario) and no
        # cyclic garbage, which the collector would traverse again and again: ~0.08 s of CPU on
        # `sim run`. It runs again from common.startup_done() on, without those objects.
        with common.no_gc_during_startup():
            return super().main(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:  # bare `sim`: the help, and success (it is what was asked for)
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            _check_environment()
            return super().invoke(ctx)
        except InputError as exc:
            for line in str(exc).splitlines():
                click.echo(f"sim: error: {line}", err=True)
            sys.exit(EXIT_INPUT)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as exc:
            click.echo("sim: interrupted", err=True)
            sys.exit(143 if isinstance(exc, Interrupted) else 130)
        except Exception as exc:
            debug = bool(os.environ.get("SIM_DEBUG"))
            if debug:
                traceback.print_exc()
            hint = " (traceback above)" if debug else " (set SIM_DEBUG=1 for a traceback)"
            click.echo(f"sim: run failed: {type(exc).__name__}: {exc}{hint}", err=True)
            sys.exit(EXIT_FAIL)


def _check_environment() -> None:
    """The environment variables sim reads, checked before any work (exit 2, not a traceback
    from a worker)."""
    from sim.compiled import kernel_mode  # (light: no numba)

    try:
        kernel_mode()
    except ValueError as exc:
        raise InputError(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sim")
def main() -> None:
    """sim: Lambda vs Wasm serverless vs Kubernetes+KEDA, by simulation.

    Tail latency, failures and the monthly bill for the same traffic on each platform.

    \b
    Start here:
      sim scenarios                             # the bundled scenarios
      sim init --template latency-sensitive my.yaml
      sim run my.yaml
    Shell completion (bash; zsh/fish: zsh_source, fish_source):
      eval "$(_SIM_COMPLETE=bash_source sim)"
    """


def entry() -> None:
    """The `sim` process (the console script, `python -m sim`): main(), then os._exit once
    stdout and stderr are flushed and the atexit handlers have run. Tearing the interpreter down
    (freeing pandas, plotly and the run object by object) costs ~0.3 s of CPU after the last
    byte is written; the results are on disk and every child process has been waited for."""
    reuse_freed_memory()
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as the interpreter prints it
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # e.g. a closed pipe: the interpreter exits 120
            code = code or 120
    os._exit(code)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_freed_memory() -> None:
    """Linux (glibc): the `sim` process and its forked workers keep the memory they free for their
    next allocations. A run allocates and frees arrays of 0.1-8 MB over and over (a chunk's
    rows, the statistics' copies); by default glibc maps each fresh from the kernel (above a
    threshold that starts at 128 KB) and hands freed heap back (above twice that), so the
    kernel zeroes the same megabytes again, page by page: 1M requests, ~39k -> ~10k page faults
    in the simulating worker (docs/model.md §19.14). The process ends after one command, so
    what it keeps is not lost to anything else. (The Python API leaves its caller's allocator
    alone.)"""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest (64-bit): every array in the heap
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


if __name__ == "__main__":
    entry()
