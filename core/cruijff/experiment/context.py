"""What parsing an experiment file has found so far, shared by the section parsers: the keys
that belong to plugins, and the names and places later sections refer to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cruijff.experiment.grid import Factor
from cruijff.experiment.reader import Reader, is_count
from cruijff.records import Key, ModelRef, Run
from cruijff.yamlfile import YamlDoc, yaml_text

MAX_EPOCHS = 1_000
"""Most epochs a run may train for. Each epoch makes checkpoints and evaluation cells, so a
typo such as ``epochs: 10000000`` would otherwise plan for minutes; fine-tuning takes a few."""


class Context(Reader):
    """A :class:`Reader` of one experiment file that also keeps what its sections found.

    Every name declared is kept, valid or not, so that a wrong name is reported once and not
    again where it is referred to. ``labels`` gives the short labels of parameters for
    generated run names, as the tool plugins declare them.
    """

    def __init__(self, doc: YamlDoc, labels: Mapping[str, str]) -> None:
        super().__init__(doc)
        self.labels = labels
        self.keys: list[Key] = []
        self.directory = self.folder  # until the experiment section says otherwise
        # the names declared so far, in file order (dicts: a look-up is fast among 10,000)
        self.model_names: dict[str, None] = {}
        self.run_names: dict[str, None] = {}
        self.task_names: dict[str, None] = {}
        self.models: list[ModelRef] = []  # the valid base models, for the grid
        self.runs: dict[str, Run] = {}  # the runs by name, for the matrix
        self.factors: list[Factor] = []  # the grid's axes and zip groups, as written
        self.runs_refused = False  # too many runs: no run name is known, none is wrong
        self.tools: dict[str, str] = {}  # role -> tool, from tools and data.data_generation

    def first(self, names: dict[str, None], name: str | None, path: str, what: str) -> bool:
        """Whether ``name``, the name of the ``what`` at ``path``, is the first so called among
        ``names`` (the names declared so far), which it joins; an error where it is not."""
        if name is None:
            return True
        if name in names:
            noun = what.rsplit(" ", 1)[-1]  # a base model's name is a model name
            self.error(
                f"{path}.name",
                f"a second {what} is called {yaml_text(name)}",
                f"{noun} names must be unique",
            )
            return False
        names[name] = None
        return True

    def offer(self, section: str, path: str, name: str, value: Any, *, swept: bool = False) -> None:
        """A key for the plugins to claim (``section`` is its namespace: ``parameters``...);
        ``swept`` for an axis, whose value lists the values it takes.

        The one check of a plugin's key made here is a guard of the core's own: at most
        MAX_EPOCHS epochs (what else epochs must be is the training tool's to check).
        """
        self.keys.append(Key(section=section, path=path, name=name, value=value))
        if section != "parameters" or name != "epochs":
            return
        values = enumerate(value if isinstance(value, list) else ()) if swept else [(None, value)]
        for index, epochs in values:
            if is_count(epochs) and epochs > MAX_EPOCHS:
                self.error(
                    path if index is None else f"{path}[{index}]",
                    f"{epochs} epochs is more than the {MAX_EPOCHS} a run may train for",
                    f"epochs is a whole number from 1 to {MAX_EPOCHS}",
                )
