"""The ``@task`` functions of an inspect task file, found by parsing it with :mod:`ast`, never
importing it (:func:`task_functions`), and the one a ``--task`` option names
(:func:`resolve_task`)."""

from __future__ import annotations

import ast
from pathlib import Path

from cruijff.designer.draft import TaskChoice
from cruijff.designer.options import check_file
from cruijff.errors import UserError
from cruijff.suggest import did_you_mean


def task_functions(path: Path) -> tuple[TaskChoice, ...]:
    """The top-level ``@task`` functions of a Python file (``@task``, ``@task(...)``,
    ``@inspect_ai.task``), found by parsing it, never importing it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read the task file {path}: {error}") from None
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise UserError(
            f"{path}:{error.lineno}: {error.msg}", hint="a task file is a Python file"
        ) from None
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_task(node):
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            found.append(TaskChoice(script=path, name=node.name, description=doc[0] if doc else ""))
    return tuple(found)


def _is_task(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        called = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(called, ast.Name) and called.id == "task":
            return True
        if isinstance(called, ast.Attribute) and called.attr == "task":
            return True
    return False


def resolve_task(path: Path, name: str | None) -> TaskChoice:
    """The task ``name`` of the file ``path``; without a name, its only task. UserError for a
    missing file, no task, an unknown name, or several tasks and no name (listing them)."""
    check_file(path, "--task")
    found = task_functions(path)
    names = [task.name for task in found]
    if not found:
        raise UserError(
            f"{path} has no @task function",
            hint="an inspect task file defines `@task def my_task(...) -> Task`",
        )
    if name is None:
        if len(found) > 1:
            raise UserError(
                f"{path} has {len(found)} @task functions: {', '.join(names)}",
                hint=f"choose one: --task {path}:{names[0]}",
            )
        return found[0]
    for task in found:
        if task.name == name:
            return task
    raise UserError(
        f"{path} has no @task {name!r} (it has {', '.join(names)})",
        hint=did_you_mean(name, names) or f"for example --task {path}:{names[0]}",
    )
