"""Writing a new experiment file: what ``cruijff design NAME`` does once it knows the answers.

A :class:`Draft` holds what the user chose: the base models, the training data, the tasks, the
variables to sweep, the controls, a base recipe and a scheduler. :func:`document` turns it into
the plain data of an experiment file in cruijff_kit's form, :func:`render` into commented YAML,
and :func:`write_design` checks that text exactly as ``cruijff validate`` does (and that reading
it back gives the same data) before it writes it, atomically; a file with an error is never
written.

- draft (:mod:`cruijff.designer.draft`): the records and the defaults every designed file shares;
- values (:mod:`cruijff.designer.values`): values typed on the command line, read with the
  experiment file's own YAML rules, so ``2`` is an int and ``1e-4`` a float, as in the file;
- options (:mod:`cruijff.designer.options`): ``--vary``, ``--control``, ``--tool``,
  ``--scheduler``, ``--task``, ``--model`` and ``--data``, read and checked;
- place (:mod:`cruijff.designer.place`): the file ``NAME`` and ``-o`` name, never replaced
  without ``--force``;
- tools (:mod:`cruijff.designer.tools`): the installed tool of each role;
- tasks (:mod:`cruijff.designer.tasks`): a task file's ``@task`` functions, found with
  :mod:`ast`, never imported;
- discover (:mod:`cruijff.designer.discover`): the model folders, data files and task files a
  project folder offers as the questions' defaults;
- content (:mod:`cruijff.designer.content`): the file's plain data;
- flow (:mod:`cruijff.designer.flow`) and text (:mod:`cruijff.designer.text`): its text;
- write (:mod:`cruijff.designer.write`): checking it and writing it.

The command (:mod:`cruijff.cli.design`) asks the questions and uses the names this package
exports.
"""

from __future__ import annotations

from cruijff.designer.content import SPLITS, count_splits, document, written_path
from cruijff.designer.discover import guess_data, guess_models, guess_tasks
from cruijff.designer.draft import (
    DATASET_TYPES,
    DEFAULT_CONTROLS,
    DESIGNED_ROLES,
    Designed,
    Draft,
    TaskChoice,
    today,
)
from cruijff.designer.flow import PLAIN_KEY
from cruijff.designer.options import (
    check_file,
    check_folder,
    parse_control,
    parse_scheduler,
    parse_tool,
    parse_vary,
    settings,
    split_task,
)
from cruijff.designer.place import refuse_overwrite, target
from cruijff.designer.tasks import resolve_task, task_functions
from cruijff.designer.text import SECTION_COMMENTS, WIDTH, render
from cruijff.designer.tools import choose_tools, spelling, tools_of
from cruijff.designer.values import parse_value, parse_values, value_text, values_text
from cruijff.designer.write import write_design

__all__ = [
    "DATASET_TYPES",
    "DEFAULT_CONTROLS",
    "DESIGNED_ROLES",
    "PLAIN_KEY",
    "SECTION_COMMENTS",
    "SPLITS",
    "WIDTH",
    "Designed",
    "Draft",
    "TaskChoice",
    "check_file",
    "check_folder",
    "choose_tools",
    "count_splits",
    "document",
    "guess_data",
    "guess_models",
    "guess_tasks",
    "parse_control",
    "parse_scheduler",
    "parse_tool",
    "parse_value",
    "parse_values",
    "parse_vary",
    "refuse_overwrite",
    "render",
    "resolve_task",
    "settings",
    "spelling",
    "split_task",
    "target",
    "task_functions",
    "today",
    "tools_of",
    "value_text",
    "values_text",
    "write_design",
    "written_path",
]
