"""What inspect-ai and a task file offer, found by reading source files, never by importing.

Importing ``inspect_ai`` takes seconds and a user's task file may run anything, so design-time
checks parse Python source with :mod:`ast` instead: inspect's scorers (and their parameters)
from its ``scorer`` package, its model providers from ``providers.py``, and the ``@task``
functions of a task file. Results are cached per file and modification time.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import attrs

from cruijff import stamps


@attrs.frozen
class Given:
    """A ``max_tokens=`` keyword given in a call inside a function's body: the called name
    (``generate``, ``GenerateConfig``...), its line, and its value: a ``literal``, one of the
    function's own parameters passed on (``max_tokens=max_tokens``), or neither (an
    expression this reading cannot evaluate)."""

    call: str
    line: int
    literal: bool = False
    value: Any = None
    parameter: str | None = None


@attrs.frozen
class Function:
    """A function found in source: its name, line, parameter names, whether it takes
    ``**kwargs``, whether it carries the decorator that was looked for, the defaults of
    its parameters that are literals (``split="validation"``), the ``max_tokens`` its body
    gives the calls it makes (:class:`Given`), and the plain names it calls (a module's own
    helpers among them)."""

    name: str
    line: int
    params: tuple[str, ...]
    var_keyword: bool
    decorated: bool
    defaults: tuple[tuple[str, Any], ...] = ()
    max_tokens: tuple[Given, ...] = ()
    calls: tuple[str, ...] = ()

    def accepts(self, name: str) -> bool:
        """Whether calling it with keyword ``name`` is valid."""
        return self.var_keyword or name in self.params

    def declares(self, name: str) -> bool:
        """Whether ``name`` is one of its parameters by name (not only through ``**kwargs``):
        what a cruijff_kit task declares (``config_path``, ``use_chat_template``...)."""
        return name in self.params

    def default(self, name: str, fallback: Any = None) -> Any:
        """The literal default of parameter ``name``; ``fallback`` when it has none."""
        return dict(self.defaults).get(name, fallback)


class SourceError(Exception):
    """A file could not be read or parsed; the message says where and why."""


def _decorated_with(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == name:
            return True
        if isinstance(target, ast.Attribute) and target.attr == name:
            return True
    return False


def _literal_defaults(args: ast.arguments) -> tuple[tuple[str, Any], ...]:
    """The parameters whose default is a literal, with that value."""
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    keyword = zip(args.kwonlyargs, args.kw_defaults, strict=True)
    pairs += [(a, d) for a, d in keyword if d is not None]
    found = []
    for arg, node in pairs:
        try:
            found.append((arg.arg, ast.literal_eval(node)))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue  # not a literal: unknown here
    return tuple(found)


def _called(call: ast.Call) -> str:
    target = call.func
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else ""


def _given(node: ast.FunctionDef | ast.AsyncFunctionDef, params: list[str]) -> tuple[Given, ...]:
    """Every ``max_tokens=`` keyword of the calls in the function's body."""
    found = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        for keyword in call.keywords:
            if keyword.arg != "max_tokens":
                continue
            value, where = keyword.value, (_called(call), call.lineno)
            if isinstance(value, ast.Name) and value.id in params:
                found.append(Given(*where, parameter=value.id))
                continue
            try:
                found.append(Given(*where, literal=True, value=ast.literal_eval(value)))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                found.append(Given(*where))
    return tuple(found)


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, decorator: str) -> Function:
    args = node.args
    params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    calls = {
        call.func.id
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    }
    return Function(
        name=node.name,
        line=node.lineno,
        params=tuple(params),
        var_keyword=args.kwarg is not None,
        decorated=_decorated_with(node, decorator),
        defaults=_literal_defaults(args),
        max_tokens=_given(node, params),
        calls=tuple(sorted(calls)),
    )


@functools.lru_cache(maxsize=64)
def _functions(path: str, mtime_ns: int, decorator: str) -> tuple[Function, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"cannot read {path}: {error}") from None
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        raise SourceError(f"{Path(path).name}:{error.lineno}: {error.msg}") from None
    return tuple(
        _function(node, decorator)
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


def functions(path: Path, decorator: str = "task") -> tuple[Function, ...]:
    """The top-level functions of a Python file, each marked with whether ``@decorator``
    (``@task``, ``@inspect_ai.task``, ``@task(...)``) decorates it. SourceError if the file
    cannot be read or parsed."""
    try:
        mtime = stamps.stat(path).st_mtime_ns
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error}") from None
    return _functions(str(path), mtime, decorator)


def task_functions(path: Path) -> dict[str, Function]:
    """The ``@task`` functions of a task file, by name."""
    return {f.name: f for f in functions(path, "task") if f.decorated}


def _package_folder(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _exported(init: Path) -> set[str]:
    """The names in a module's ``__all__`` list."""
    tree = ast.parse(init.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return {
                element.value
                for element in getattr(node.value, "elts", ())
                if isinstance(element, ast.Constant) and isinstance(element.value, str)
            }
    return set()


def installed() -> bool:
    """Whether inspect-ai is installed (found, not imported)."""
    return _package_folder("inspect_ai") is not None


@functools.lru_cache(maxsize=1)
def scorers() -> dict[str, Function]:
    """inspect's built-in scorers (exported by ``inspect_ai.scorer`` and decorated with
    ``@scorer``), by name; empty when inspect-ai is not installed."""
    folder = _package_folder("inspect_ai")
    if folder is None:
        return {}
    package = folder / "scorer"
    try:
        exported = _exported(package / "__init__.py")
        found: dict[str, Function] = {}
        for source in sorted(package.glob("*.py")):
            for function in functions(source, "scorer"):
                if function.decorated and function.name in exported:
                    found[function.name] = function
    except (OSError, SyntaxError, SourceError):
        return {}
    return found


@functools.lru_cache(maxsize=1)
def providers() -> tuple[str, ...]:
    """The model providers inspect-ai registers itself (``@modelapi(name=...)``)."""
    folder = _package_folder("inspect_ai")
    if folder is None:
        return ()
    try:
        tree = ast.parse((folder / "model" / "_providers" / "providers.py").read_text("utf-8"))
    except (OSError, SyntaxError):
        return ()
    names = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "modelapi":
                names += [
                    kw.value.value
                    for kw in decorator.keywords
                    if kw.arg == "name" and isinstance(kw.value, ast.Constant)
                ]
    return tuple(sorted(names))


def extension_packages() -> tuple[str, ...]:
    """Installed packages that extend inspect-ai (its ``inspect_ai`` entry-point group): the
    namespaces of their tasks, scorers and providers (``inspect_evals/gsm8k``)."""
    return tuple(sorted({ep.name for ep in entry_points(group="inspect_ai")}))
