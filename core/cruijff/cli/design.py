"""``cruijff design NAME``: write a new experiment file, from questions or from options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from cruijff.cli import App

AUTO = "auto"
"""The scheduler answer that writes no ``scheduler:`` section (cruijff chooses when it runs)."""


@click.command()
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    metavar="PATH",
    help="Write the file here (a file, or a folder for NAME.yaml: one that exists or ends "
    "in /) instead of ./NAME.yaml.",
)
@click.option(
    "--model", "models", multiple=True, metavar="PATH", help="A base model's Hugging Face folder."
)
@click.option("--data", metavar="PATH", help="The training data: a JSON file of rows.")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    metavar="FILE[:NAME]",
    help="An evaluation task: the @task function NAME in FILE (NAME only where FILE has several).",
)
@click.option(
    "--vary",
    multiple=True,
    metavar="KEY=V1,V2",
    help="A variable to sweep and its values, e.g. lora_rank=4,8; the runs are every combination.",
)
@click.option(
    "--control",
    "controls",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting every run shares, e.g. epochs=2.",
)
@click.option(
    "--recipe",
    metavar="NAME",
    help="The base recipe (controls.base_recipe; `cruijff recipes` lists torchtune's).",
)
@click.option(
    "--scheduler",
    metavar="NAME[:PROFILE]",
    help="Write a scheduler section, e.g. slurm:della (default: none; cruijff chooses).",
)
@click.option(
    "--tool",
    "tools",
    multiple=True,
    metavar="ROLE=NAME",
    help="The tool for a role (preparation, evaluation); default: the first one installed.",
)
@click.option("--question", metavar="TEXT", help="The question the experiment asks.")
@click.option("--date", metavar="YYYY-MM-DD", help="The day it was designed (default: today).")
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Ask nothing: use the options and the defaults (for scripts and agents).",
)
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@click.option("--dry-run", is_flag=True, help="Check the file and print it; write nothing.")
@click.pass_obj
def command(
    app: App,
    name: str,
    output: str | None,
    models: tuple[str, ...],
    data: str | None,
    tasks: tuple[str, ...],
    vary: tuple[str, ...],
    controls: tuple[str, ...],
    recipe: str | None,
    scheduler: str | None,
    tools: tuple[str, ...],
    question: str | None,
    date: str | None,
    yes: bool,
    force: bool,
    dry_run: bool,
) -> None:
    """Write a new experiment file NAME.yaml (in cruijff_kit's form, a comment above each
    section) for a base model, training data and tasks, with the variables to sweep.

    Without --yes, design asks for every setting, even when stdin is not a terminal (answers
    can be piped in), and offers as defaults the options' values, else what it finds here
    (models/, data/, tasks/): press Enter to accept one. With --yes it asks nothing, and
    --model, --data and --task are required. --model and --task may be repeated.

    Values are read as in the file itself: 2 is an int, 1e-4 a float, "8" a string; a value
    holding a comma is given as a YAML list (--vary 'prompt=["a, b", "c"]').

    The file is checked as `cruijff validate` checks it before it is written: with an error it
    is not written (exit 1); warnings are printed and it is written. An existing file is
    replaced only with --force.

    \b
    Examples:
      cruijff design cap_rank
      cruijff design cap_rank --yes --model models/SmolLM2-135M-Instruct \\
          --data data/words.json --task tasks/capitalization.py \\
          --vary lora_rank=4,8 --vary lr=1e-4,3e-4 --control epochs=2
    """
    import datetime

    from cruijff import designer
    from cruijff.cli.render import print_problems
    from cruijff.errors import UserError

    experiment, path = designer.target(name, output)
    designer.refuse_overwrite(path, force)
    try:
        day = datetime.date.fromisoformat(date).isoformat() if date else designer.today()
    except ValueError:
        raise UserError(f"--date {date!r} is not a date", hint="write it YYYY-MM-DD") from None
    variables, fixed = designer.settings(
        [designer.parse_vary(text) for text in vary],
        [designer.parse_control(text) for text in controls],
        recipe,
    )
    given_tools = dict(designer.parse_tool(text) for text in tools)
    chosen_tools = designer.choose_tools(app.manager, given_tools)
    scheduler_name, profile = designer.parse_scheduler(scheduler) if scheduler else (None, None)
    if scheduler_name:
        app.manager.scheduler(scheduler_name)  # UserError listing the installed ones
    task_specs = [designer.split_task(text) for text in tasks]
    model_paths = [Path(model) for model in models]

    if yes:
        missing = [
            option
            for option, value in (("--model", models), ("--data", data), ("--task", tasks))
            if not value
        ]
        if missing:
            raise UserError(
                f"missing {', '.join(missing)} (--yes asks nothing)",
                hint="give them as options, or leave out --yes to be asked",
            )
        assert data is not None
        for model in model_paths:
            designer.check_folder(model)
        designer.check_file(Path(data))
        draft = designer.Draft(
            name=experiment,
            date=day,
            question=question or "",
            tools=chosen_tools,
            models=tuple(model_paths),
            data=Path(data),
            tasks=tuple(designer.resolve_task(file, task) for file, task in task_specs),
            variables=variables,
            controls=fixed,
            recipe=recipe,
            scheduler=scheduler_name,
            profile=profile,
        )
    else:
        click.echo(f"Designing {path}: press Enter to accept the [default].")
        draft = _interview(
            app,
            designer.Draft(
                name=experiment,
                date=day,
                question=question or "",
                tools=chosen_tools,
                models=tuple(model_paths),
                data=Path(data) if data else Path(),
                variables=variables,
                controls=fixed,
                recipe=recipe,
                scheduler=scheduler_name,
                profile=profile,
            ),
            task_specs,
            has_data=data is not None,
        )

    designed = designer.write_design(app.manager, draft, path, force=force, dry_run=dry_run)
    print_problems(designed.warnings)
    runs = f"{len(designed.runs)} runs ({', '.join(designed.runs)}), {designed.jobs} jobs"
    if dry_run:
        click.echo(designed.text, nl=False)
        click.echo(f"Dry run: {path} would hold {runs}; nothing was written.", err=True)
        return
    click.echo(f"Wrote {path}: {runs}.")
    click.echo(f"Next: cruijff plan {path}, then cruijff run {path}")


# --- the questions ---------------------------------------------------------------------------


def _interview(
    app: App, given: Any, task_specs: Sequence[tuple[Path, str | None]], *, has_data: bool
) -> Any:
    """Ask for every setting, the ``given`` draft's values (or guesses) as defaults."""
    import attrs

    from cruijff import designer
    from cruijff.design import LOCAL
    from cruijff.records import Role

    here = Path.cwd()
    question = _ask("Question the experiment asks", given.question, show_default=False)

    model_guesses = [str(p) for p in given.models] or [str(p) for p in designer.guess_models(here)]
    models = _ask_many(
        "Base model folder (Hugging Face: config.json, weights, tokenizer)",
        "Another base model folder (empty when done)",
        model_guesses[: len(given.models) or 1],
        lambda text: _user(designer.check_folder, Path(text), "model folder"),
    )
    data_default = str(given.data) if has_data else _first(designer.guess_data(here))
    data = _ask(
        "Training data (a JSON file of input/output rows)",
        data_default,
        proc=lambda text: _user(designer.check_file, Path(text), "data file"),
    )

    specs = [f"{file}:{name}" if name else str(file) for file, name in task_specs]
    if not specs:
        specs = [str(p) for p in designer.guess_tasks(here)[:1]]
    tasks: list[Any] = []
    while True:
        index = len(tasks)
        answer = _ask(
            "Another task file (empty when done)" if tasks else "Task file (Python, with @task)",
            specs[index] if index < len(specs) else ("" if tasks else None),
            proc=lambda text, first=not tasks: (
                None if not text.strip() and not first else _task_file(text)
            ),
        )
        if answer is None:
            break
        file, name, found = answer
        names = [task.name for task in found]
        if name is None and len(found) > 1:
            name = _ask(f"Task in {file}", names[0], type=click.Choice(names))
        tasks.append(designer.resolve_task(file, name))

    tools = dict(given.tools)
    for role in (Role.PREPARATION, Role.EVALUATION):
        choices = [designer.spelling(tool) for tool in designer.tools_of(app.manager, role)]
        if len(choices) > 1:
            label = "Training tool" if role is Role.PREPARATION else "Evaluation tool"
            tools[role.value] = _ask(label, tools[role.value], type=click.Choice(choices))

    variables = _ask_variables(dict(given.variables))
    swept = {key for key, _ in variables}
    fixed = dict(given.controls)
    controls: dict[str, Any] = {}
    dataset_type = fixed.get("dataset_type")
    if "dataset_type" not in swept:
        controls["dataset_type"] = _ask(
            "Dataset type (how rows become prompts)",
            dataset_type if dataset_type in designer.DATASET_TYPES else designer.DATASET_TYPES[0],
            type=click.Choice(designer.DATASET_TYPES),
        )
    if "prompt" not in swept:
        controls["prompt"] = _ask(
            "Prompt (a template with {input})",
            str(fixed.get("prompt", designer.DEFAULT_CONTROLS["prompt"])),
            proc=_prompt_template,
        )
    if "system_prompt" not in swept:
        controls["system_prompt"] = _ask(
            "System prompt",
            str(fixed.get("system_prompt", "")),
            show_default=bool(fixed.get("system_prompt")),
        )
    if "epochs" not in swept:
        epochs = fixed.get("epochs", designer.DEFAULT_CONTROLS["epochs"])
        controls["epochs"] = _ask(
            "Epochs", epochs if isinstance(epochs, int) else 1, type=click.IntRange(min=1)
        )
    asked = {*controls, "base_recipe"}
    others = [f"{key}={designer.value_text(v)}" for key, v in fixed.items() if key not in asked]
    extra = _ask_many(
        "Another control, KEY=VALUE (empty when done)",
        "Another control, KEY=VALUE (empty when done)",
        others,
        lambda text: _control(text, {*controls, *swept}),
        required=False,
    )
    controls.update(dict(extra))
    recipe = _ask(
        "Base recipe (`cruijff recipes` lists them; empty for none)",
        given.recipe or str(fixed.get("base_recipe", "")),
        show_default=bool(given.recipe or fixed.get("base_recipe")),
    )

    names = [info.name for info in app.manager.schedulers()]
    scheduler = _ask(
        f"Scheduler ({AUTO}: chosen when it runs)",
        given.scheduler or AUTO,
        type=click.Choice([AUTO, *names]),
    )
    profile = None
    if scheduler not in (AUTO, LOCAL):
        profile = _ask(
            f"Profile of {scheduler} (empty for none)",
            given.profile or "",
            show_default=bool(given.profile),
        )
    return attrs.evolve(
        given,
        question=question,
        models=tuple(models),
        data=data,
        tasks=tuple(tasks),
        tools=tools,
        variables=tuple(variables),
        controls=tuple(controls.items()),
        recipe=recipe.strip() or None,
        scheduler=None if scheduler == AUTO else scheduler,
        profile=profile or None,
    )


def _ask_variables(given: dict[str, tuple[Any, ...]]) -> list[tuple[str, tuple[Any, ...]]]:
    from cruijff import designer

    chosen: list[tuple[str, tuple[Any, ...]]] = []
    defaults = list(given)
    while True:
        default = defaults[len(chosen)] if len(chosen) < len(defaults) else ""
        taken = {key for key, _ in chosen}
        key = _ask(
            "Another variable to sweep (empty when done)"
            if chosen
            else "Variable to sweep (empty for none)",
            default,
            show_default=bool(default),
            proc=lambda text, taken=taken: _variable_name(text, taken),
        )
        if not key:
            return chosen
        values = _ask(
            f"Values of {key}, comma-separated",
            designer.values_text(given[key]) if key in given else None,
            proc=lambda text, key=key: _user(designer.parse_values, text, key),
        )
        chosen.append((key, values))


def _ask(
    text: str,
    default: Any,
    *,
    type: Any = None,
    proc: Callable[[str], Any] | None = None,
    show_default: bool = True,
) -> Any:
    """One question; ``proc`` checks and converts the answer (click.BadParameter: ask again)."""
    return click.prompt(
        text,
        default=default,
        type=type,
        value_proc=proc,
        show_default=show_default and default not in (None, ""),
        show_choices=type is not None,
    )


def _ask_many(
    first: str,
    more: str,
    defaults: Sequence[str],
    proc: Callable[[str], Any],
    *,
    required: bool = True,
) -> list[Any]:
    """Answers to ``first``, then to ``more`` until an empty one; at least one if
    ``required``. The n-th question offers ``defaults[n]``."""
    answers: list[Any] = []
    while True:
        index = len(answers)
        default = defaults[index] if index < len(defaults) else None
        must = required and not answers
        if default is None and not must:
            default = ""
        answer = _ask(
            first if not answers else more,
            default,
            proc=lambda text, must=must: None if not text.strip() and not must else proc(text),
        )
        if answer is None:
            return answers
        answers.append(answer)


def _first(paths: Sequence[Path]) -> str | None:
    return str(paths[0]) if paths else None


def _user(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, a UserError turned into click's BadParameter (asked again)."""
    from cruijff.errors import UserError

    try:
        return function(*args)
    except UserError as error:
        hint = f" ({error.hint})" if error.hint else ""
        raise click.BadParameter(f"{error.message}{hint}") from None


def _task_file(text: str) -> tuple[Path, str | None, tuple[Any, ...]]:
    from cruijff import designer

    file, name = designer.split_task(text.strip())
    _user(designer.check_file, file, "task file")
    found = _user(designer.task_functions, file)
    if not found:
        raise click.BadParameter(f"{file} has no @task function")
    if name is not None:
        _user(designer.resolve_task, file, name)
    return file, name, found


def _variable_name(text: str, taken: set[str]) -> str:
    from cruijff import designer

    key = text.strip()
    if not key:
        return ""
    if not designer.PLAIN_KEY.fullmatch(key):
        raise click.BadParameter(f"{key!r} is not a setting's name (letters, digits and '_')")
    if key in taken:
        raise click.BadParameter(f"{key} is already swept")
    return key


def _control(text: str, taken: set[str]) -> tuple[str, Any]:
    from cruijff import designer

    key, value = _user(designer.parse_control, text.strip())
    if key in taken:
        raise click.BadParameter(f"{key} is already set")
    return key, value


def _prompt_template(text: str) -> str:
    if "{input}" not in text:
        raise click.BadParameter("the prompt must contain {input}, where each row's input goes")
    return text
