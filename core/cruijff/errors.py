"""The two kinds of error cruijff raises on purpose.

A :class:`UserError` is the user's to fix (a bad file, a busy experiment): the CLI prints
``Error: ...`` with the hint and exits 1, never a traceback. A :class:`PluginError` wraps an
exception raised inside plugin code and names the plugin, its version, the stage and the run.
"""

from __future__ import annotations


class CruijffError(Exception):
    """Base of the errors cruijff reports without a traceback."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UserError(CruijffError):
    """Something the user can fix: the message says what, the hint how."""


class ProblemsFound(UserError):
    """An experiment file has errors; ``problems`` lists every one of them."""

    def __init__(self, problems: tuple) -> None:
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the experiment")
        self.problems = problems


class PluginError(CruijffError):
    """An exception raised inside plugin code, with who raised it and where."""

    def __init__(
        self, *, plugin: str, version: str, stage: str, run: str = "", cause: BaseException
    ) -> None:
        where = f" for {run}" if run else ""
        message = (
            f"plugin {plugin} {version} failed in {stage}{where}: {type(cause).__name__}: {cause}"
        )
        super().__init__(message, hint="this is a bug in that plugin; report it to its authors")
        self.plugin, self.version, self.stage, self.run, self.cause = (
            plugin,
            version,
            stage,
            run,
            cause,
        )
