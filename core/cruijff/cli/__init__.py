"""The ``cruijff`` command line: a lazy click group with one module per command.

Commands are imported only when they run (or when ``--help`` lists them) and import their heavy
parts inside the command, so ``cruijff --help`` answers quickly. Plugins add commands through
``cruijff_commands``.
"""

from __future__ import annotations

import errno
import gc
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from cruijff import __version__

COMMANDS = {
    "design": "cruijff.cli.design",
    "validate": "cruijff.cli.validate",
    "plan": "cruijff.cli.plan",
    "calibrate": "cruijff.cli.calibrate",
    "scaffold": "cruijff.cli.scaffold",
    "run": "cruijff.cli.run",
    "status": "cruijff.cli.status",
    "cancel": "cruijff.cli.cancel",
    "logs": "cruijff.cli.logs",
    "clean": "cruijff.cli.clean",
    "analyze": "cruijff.cli.analyze",
    "plugins": "cruijff.cli.plugins",
}
BUG_REPORT = (
    "This is a bug in cruijff {version}, not your mistake. Please report it to the cruijff "
    "developers with: the output of `cruijff --version` and `cruijff plugins --json`, the "
    "command you ran, and the traceback above (run the command again with -v for more)."
)

EXIT_BUG = 70
"""A bug's exit status (sysexits' EX_SOFTWARE); a user error exits 1, a usage error 2."""

# OS errors that are the machine's state, not cruijff's bug: what to say, and what to do.
OS_TROUBLE = {
    errno.ENOSPC: (
        "write",
        "the disk is full: free some space (old checkpoints?), then run "
        "the command again; nothing was left half-written",
    ),
    errno.EDQUOT: (
        "write",
        "your disk quota is used up: free some space, then run the "
        "command again; nothing was left half-written",
    ),
    errno.EFBIG: ("write", "the file grew past the file system's limit"),
    errno.EROFS: (
        "write",
        "the file system is read-only: copy the experiment to a folder "
        "you can write (scratch?) and run it there",
    ),
    errno.EACCES: (
        "access",
        "you lack the permission: is this another user's folder? copy it, or ask its owner",
    ),
    errno.EPERM: (
        "access",
        "you lack the permission: is this another user's folder? copy it, or ask its owner",
    ),
    errno.ENAMETOOLONG: (
        "write",
        "the path is longer than the file system allows: choose "
        "shorter names (runs, experiment folder)",
    ),
}


class App:
    """What every command shares (on ``ctx.obj``): the plugin manager, built on first use."""

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
        self._manager: Any = None
        self.plugin_commands: dict[str, click.Command] | None = None

    @property
    def manager(self) -> Any:
        if self._manager is None:
            from cruijff.manager import PluginManager

            self._manager = PluginManager()
        return self._manager


class CruijffGroup(click.Group):
    """Loads built-in commands lazily, adds plugin commands, and turns cruijff's errors and the
    machine's (a full disk, a read-only folder) into ``Error: ...`` with a hint (exit 1), and
    anything else into a bug report (exit 70, EX_SOFTWARE: not click's usage error, 2)."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        """The commands plugins add, collected once per invocation (on the App)."""
        app = ctx.find_object(App) or App()
        if app.plugin_commands is None:
            collector = click.Group()
            try:
                app.manager.add_commands(collector)
            except Exception as error:  # a broken plugin must not break the CLI
                click.echo(f"Warning: {error}", err=True)
            app.plugin_commands = dict(collector.commands)
        return app.plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            return importlib.import_module(COMMANDS[name]).command
        return self._plugin_commands(ctx).get(name)

    def invoke(self, ctx: click.Context) -> Any:
        from cruijff.errors import CruijffError

        try:
            return super().invoke(ctx)
        except CruijffError as error:
            from cruijff.cli.render import print_error

            print_error(error, verbose=ctx.obj.verbose if ctx.obj else 0)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # `cruijff ... | head`: the reader has all it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except OSError as error:
            if error.errno not in OS_TROUBLE:
                _bug(ctx)
            verb, hint = OS_TROUBLE[error.errno]
            where = f" {error.filename}" if error.filename else ""
            click.echo(f"Error: cannot {verb}{where}: {error.strerror}", err=True)
            click.echo(f"Hint: {hint}", err=True)
            ctx.exit(1)
        except Exception:
            _bug(ctx)


def _bug(ctx: click.Context) -> None:
    traceback.print_exc()
    click.echo("\n" + BUG_REPORT.format(version=__version__), err=True)
    ctx.exit(EXIT_BUG)


@click.group(cls=CruijffGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cruijff")
@click.option("-v", "--verbose", count=True, help="Say more (tracebacks of plugin errors).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Design, scaffold, run and analyze LLM fine-tuning experiments from one YAML file.

    \b
    A typical session:
      cruijff validate experiment.yaml    check the file, every problem at once
      cruijff plan experiment.yaml        the runs and jobs it would create
      cruijff run experiment.yaml         scaffold, run (locally or on SLURM), watch
      cruijff status experiment.yaml      where every job is, from any shell
    """
    if ctx.obj is None:
        ctx.obj = App()
    ctx.obj.verbose = verbose
    _route_warnings()


def _route_warnings() -> None:
    import warnings

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        click.echo(f"Warning: {message}", err=True)

    warnings.showwarning = show


def experiment_argument(function: Any) -> Any:
    """The EXPERIMENT argument every command takes (default: ./experiment.yaml)."""
    return click.argument(
        "experiment",
        type=click.Path(dir_okay=False, path_type=Path),
        default="experiment.yaml",
    )(function)


def scheduler_option(function: Any) -> Any:
    """``--scheduler NAME``: use this scheduler instead of the experiment's or the default."""
    return click.option(
        "--scheduler",
        metavar="NAME",
        help="Scheduler to use (default: the experiment's `scheduler.name`, else a cluster's "
        "where one is configured, else local).",
    )(function)


def only_option(function: Any) -> Any:
    """``--only PATTERN``, repeatable: a run name, a unit id or a glob over either."""
    return click.option(
        "--only",
        "only",
        metavar="PATTERN",
        multiple=True,
        help="Only these runs or jobs: a run name, a unit id (rank8.train) or a glob "
        "('rank8*', '*.eval.*'); repeatable.",
    )(function)


def json_option(function: Any) -> Any:
    """``--json``: print machine-readable output instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def main() -> None:
    """The ``cruijff`` console script."""
    try:
        cli(prog_name="cruijff")
    finally:
        # The interpreter's last collection walks every object still alive, to find cycles
        # that exit frees anyway: 1.3 s after a plan of 10,000 runs. Nothing cruijff leaves
        # open waits on it (files are closed and flushed where they are written).
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
