"""The keys the inspect tool owns in an experiment file, what each accepts, and how a cell's
final values are chosen.

Three namespaces: the ``evaluation`` section's settings, each task's settings
(``evaluation.tasks[i]``) and the run parameters it reads (``prompt``, ``system_prompt``,
``dataset_type``, ``checkpoint_path``, ``eval_dataset_path``, ``dataset_path``). Values mean
what cruijff_kit 0.3.4 means by them (``../shared/CRUIJFF_KIT.md``): prompts follow its
precedence (the prompt: the task's own > the run's parameter > the ``evaluation`` section's >
``controls``; the system prompt: the task's own > ``controls`` only, as cruijff_kit evaluates
it, a run's ``system_prompt`` being for its training; the retired ``evaluation.system_prompt``
is not read), decoding is greedy unless
``do_sample: true``, the evaluation seed defaults to 14, and a bare ``match`` or ``includes``
scorer is exact and case-sensitive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cruijff.records import EvalTask, Experiment, Run, Setting
from cruijff.warm import WARMS

Check = Callable[[Any], str | tuple[str, str]]
"""Returns what is wrong with a value ("" when it is fine), alone or with a hint that says what
would be valid: ``(message, hint)``."""

PLUGIN = "inspect"
"""The name the tool's problems carry."""

SAME = "same"
"""``dataset: same``: the experiment's training data file, read at the split the task itself
defaults to (``test`` when it declares none)."""

DEFAULT_PROVIDER = "hf"
MOCK_PROVIDER = "cruijff-mock"
"""The offline provider of :mod:`cruijff_inspect.mock`."""
DEFAULT_SPLIT = "test"
JOB_MODULE = "cruijff_inspect.job"
"""The module an evaluation job runs: ``python -m cruijff_inspect.job eval_config.yaml``."""
TOGETHER = "--together"
"""The job's option naming the configs of the cells it evaluates after its own."""
UNLESS_CURRENT = "--unless-current"
"""The job's option to leave its cell as it is when its results stand (another job did it)."""

JOB_ENV = {
    # local model folders only: without these, each evaluation spends ~25 s retrying the Hub
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # the job asks for its warm process first thing: the local scheduler may start that
    # process early, while the training the job waits for runs (cruijff.warm)
    WARMS: "1",
}
"""The environment of every evaluation job."""

WARM_MODULES = (
    "torch",
    "transformers",
    "transformers.integrations.hub_kernels",  # what loading any model imports (1-2 s)
    "inspect_ai",
    "inspect_ai.log",
    "inspect_ai.model._providers.hf",
    "cruijff_inspect.adapter",
    "cruijff_inspect.job",
    "cruijff_inspect.mock",
)
"""What a warm process imports for the evaluation jobs it serves (:mod:`cruijff.warm`, under
the local scheduler): the seconds every cell would spend on them otherwise."""

WARM_HINTS = ("inspect_ai.agent._acp.server",)  # imported by every eval_set (~1 s)
"""Modules a warm process imports too where it can: inspect's own private ones, which may
move in a later version (a missing one costs its seconds, it stops nothing)."""

DEFAULT_BATCH = 32
"""The most samples generated at once (inspect's ``max_connections``, the hf batch size),
lowered to the number of samples of a small task."""
DEFAULT_SEED = 14
"""The evaluation's seed when ``evaluation.seed`` is not given (cruijff_kit's); it matters only
when sampling."""
DATASET_TYPES = ("chat_completion", "text_completion")
"""``dataset_type``: how the model was trained, and so how it is asked. ``chat_completion``
means a chat (a task that declares ``use_chat_template`` gets true); it is never guessed."""
CHAT = "chat_completion"
KIT_SCORERS: dict[str, dict[str, Any]] = {
    "match": {"location": "exact", "ignore_case": False},
    "includes": {"ignore_case": False},
}
"""What a bare ``match`` or ``includes`` (no ``params``) means in cruijff_kit: exact and
case-sensitive. With ``params`` a scorer gets exactly those, inspect's defaults filling the rest
(so ``{location: exact}`` alone is case-insensitive)."""
RETIRED_SYSTEM_PROMPT = (
    "evaluation.system_prompt is no longer read (as in cruijff_kit): controls.system_prompt "
    "applies to training and evaluation"
)
LEGACY_SCORER = (
    "evaluation.scorer is not read (cruijff_kit renamed it to scorers): the tasks score with "
    "their own scorers"
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(minimum: int | None = None) -> Check:
    """A whole number, at least ``minimum``."""
    least = f" of at least {minimum}" if minimum is not None else ""

    def check(value: Any) -> str | tuple[str, str]:
        if not _is_int(value):
            return f"expected a whole number, not {value!r}", f"write a whole number{least}"
        if minimum is not None and value < minimum:
            return f"must be at least {minimum}, not {value}", f"write a whole number{least}"
        return ""

    return check


def number(*, above: float | None = None, minimum: float | None = None) -> Check:
    """A number, greater than ``above`` or at least ``minimum``."""

    def check(value: Any) -> str | tuple[str, str]:
        if not _is_number(value):
            return f"expected a number, not {value!r}", "write a number such as 0.7, unquoted"
        if above is not None and value <= above:
            return f"must be greater than {above:g}, not {value}", f"write a number above {above:g}"
        if minimum is not None and value < minimum:
            return f"must be at least {minimum:g}, not {value}", f"write {minimum:g} or more"
        return ""

    return check


def text(value: Any) -> str | tuple[str, str]:
    """A string."""
    if isinstance(value, str):
        return ""
    return f"expected a string, not {value!r}", f"quote it: {str(value)!r}"


def nonempty(value: Any) -> str | tuple[str, str]:
    """A string that is not empty."""
    if not isinstance(value, str):
        return text(value)
    return "" if value.strip() else ("must not be empty", "give a name or a path, or leave it out")


PROMPT_HINT = 'write {input} where each example goes, e.g. "Capitalize: {input}"'


def prompt(value: Any) -> str | tuple[str, str]:
    """A string with ``{input}`` where each example goes. The evaluation formats every prompt
    (the training tool reads them too): this check is made here only, so it is said once."""
    if not isinstance(value, str):
        return text(value)
    if "{input}" in value:
        return ""
    return "the prompt does not contain {input}", PROMPT_HINT


def flag(value: Any) -> str | tuple[str, str]:
    """true or false."""
    if isinstance(value, bool):
        return ""
    return f"expected true or false, not {value!r}", "write true or false, unquoted"


def mapping(value: Any) -> str | tuple[str, str]:
    """A mapping of names to values."""
    if isinstance(value, Mapping):
        return ""
    return f"expected a mapping (key: value), not {value!r}", "write it as {key: value}"


def dataset_type(value: Any) -> str | tuple[str, str]:
    """``chat_completion`` or ``text_completion``."""
    if value in DATASET_TYPES:
        return ""
    return (
        f"dataset_type must be one of {', '.join(DATASET_TYPES)}, not {value!r}",
        "chat_completion for a model trained on chats (instruct models), text_completion for "
        "plain text",
    )


def anything(value: Any) -> str:
    """Any value (a key that is reported, not read)."""
    return ""


EVALUATION: dict[str, Check] = {
    "temperature": number(),  # above 0 only when sampling (decoding_problems)
    "do_sample": flag,
    "max_tokens": integer(1),
    "seed": integer(),
    "prompt": prompt,
    "system_prompt": anything,  # retired: warned and not read
    "scorer": anything,  # retired: warned and not read
    "assistant_prefix": text,
    "batch_size": integer(1),
    "max_connections": integer(1),
    "limit": integer(1),
    "provider": nonempty,
    "model_args": mapping,
    "gpus": integer(0),
    "cpus": integer(1),
    "mem_gb": number(above=0),
    "time_minutes": number(above=0),
}
"""``evaluation.<key>``: decoding (greedy unless ``do_sample: true``, which needs a
``temperature`` above 0; under greedy decoding any temperature, even 0 or below, is dropped
without error, as in cruijff_kit; ``max_tokens``, default the task's own; ``seed``, default 14), the
prompt, ``assistant_prefix`` (passed to tasks that take it), ``max_connections`` or its alias
``batch_size`` (the most samples generated at once, default 32), ``limit`` (first N samples),
``provider`` (``hf``, or ``cruijff-mock`` to try a pipeline offline), ``model_args`` (passed to
the provider) and resources (``gpus``, ``cpus``, ``mem_gb``, ``time_minutes``; cruijff_kit's
``evaluation.compute`` is read by the core). ``system_prompt`` and ``scorer`` are retired
keys: each is reported and ignored, as cruijff_kit ignores it."""

TASK: dict[str, Check] = {
    "description": text,
    "function": nonempty,
    "task": nonempty,
    "dataset": nonempty,
    "eval_condition": nonempty,
    "split": nonempty,
    "prompt": prompt,
    "system_prompt": text,
    "assistant_prefix": text,
    "args": mapping,
    "limit": integer(1),
}
"""``evaluation.tasks[i].<key>``: ``description`` (informational: kept in the cell's settings),
``function`` (the ``@task`` function of ``script``; default: the task's name), ``task`` (a task
an installed package registers: ``package/name``), ``dataset`` (``same`` or a data file) or
``eval_condition`` (a generated condition's ``{cond}_test_*.json`` beside the training data),
``split``, prompts, ``assistant_prefix``, ``args`` (more task arguments) and ``limit``."""

PARAMETERS: dict[str, Check] = {
    "prompt": prompt,
    "system_prompt": text,
    "dataset_type": dataset_type,
    "checkpoint_path": nonempty,
    "eval_dataset_path": nonempty,
    "dataset_path": nonempty,
}
"""Run parameters (and ``controls``) the evaluation reads: ``eval_dataset_path`` and
``dataset_path`` are cruijff_kit's literal evaluation and training files, in that order the
evaluation's data after a task's own."""


def chosen(experiment: Experiment, run: Run, task: EvalTask, key: str) -> tuple[Any, str] | None:
    """``key``'s value for a cell and where it comes from, by precedence: the task, the run's
    parameters, the evaluation section, then controls; for ``system_prompt`` the task, then
    controls (cruijff_kit's: a run's system prompt is for its training, and the evaluation
    section's is retired); None when nobody sets it."""
    evaluation = experiment.evaluation.settings if experiment.evaluation else {}
    levels = [
        (f"evaluation.tasks.{task.name}", task.settings),
        (f"runs.{run.name}", run.parameters),
        ("evaluation", evaluation),
        ("controls", experiment.controls),
    ]
    if key == "system_prompt":
        levels = [levels[0], levels[3]]
    for source, values in levels:
        if values.get(key) is not None:
            return values[key], source
    return None


def run_setting(experiment: Experiment, run: Run, key: str) -> tuple[Any, str] | None:
    """A run parameter's value (the run's own, else ``controls``) and where it comes from."""
    for source, values in ((f"runs.{run.name}", run.parameters), ("controls", experiment.controls)):
        if values.get(key) is not None:
            return values[key], source
    return None


def assistant_prefix(experiment: Experiment, task: EvalTask) -> tuple[Any, str] | None:
    """The assistant prefill of a task's cells: the task's own, else the evaluation's."""
    if task.settings.get("assistant_prefix") is not None:
        return task.settings["assistant_prefix"], f"evaluation.tasks.{task.name}"
    value = evaluation_setting(experiment, "assistant_prefix")
    return (value, "evaluation") if value is not None else None


def batch_size(experiment: Experiment) -> tuple[int, str]:
    """The most samples generated at once: ``max_connections`` (cruijff_kit's name) or
    ``batch_size``, else 32."""
    for key in ("max_connections", "batch_size"):
        value = evaluation_setting(experiment, key)
        if value is not None:
            return value, f"evaluation.{key}"
    return DEFAULT_BATCH, "default"


def scorer_params(name: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The arguments a scorer is made with, and whether they are cruijff_kit's reading of a
    bare name (``match`` alone: exact, case-sensitive)."""
    if not params and name in KIT_SCORERS:
        return dict(KIT_SCORERS[name]), True
    return dict(params), False


def evaluation_setting(experiment: Experiment, key: str, default: Any = None) -> Any:
    """A setting of the ``evaluation`` section, or ``default``."""
    settings = experiment.evaluation.settings if experiment.evaluation else {}
    value = settings.get(key)
    return default if value is None else value


def sampling(settings: Mapping[str, Any]) -> bool:
    """Whether the evaluation samples: only with ``do_sample: true`` (a temperature alone does
    not turn sampling on, as in cruijff_kit)."""
    return settings.get("do_sample") is True


def decoding(settings: Mapping[str, Any], provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The generate config and the provider arguments that decoding settings give.

    Greedy unless ``do_sample: true``: the hf provider gets ``do_sample=false`` and no
    temperature (any temperature is dropped, as cruijff_kit drops it); another provider gets
    temperature 0. Sampling passes the temperature (checked above 0 at parse time). The seed
    is always set (default 14); ``max_tokens`` only when given (else the task's own).
    """
    generate: dict[str, Any] = {}
    if settings.get("max_tokens") is not None:
        generate["max_tokens"] = settings["max_tokens"]
    seed = settings.get("seed")
    generate["seed"] = DEFAULT_SEED if seed is None else seed
    sample = sampling(settings)
    if sample and settings.get("temperature") is not None:
        generate["temperature"] = settings["temperature"]
    if provider != DEFAULT_PROVIDER:
        if not sample:
            generate["temperature"] = 0.0
        return generate, {}
    return generate, {"do_sample": sample}


def decoding_problems(settings: Mapping[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(key, message, hint, is_warning) for decoding settings cruijff_kit refuses or ignores:
    sampling without a temperature above 0 is an error; a temperature without
    ``do_sample: true`` is inert (a warning, where it is above 0)."""
    temperature, do_sample = settings.get("temperature"), settings.get("do_sample")
    if do_sample is True:
        if temperature is None:
            return [
                (
                    "do_sample",
                    "do_sample: true needs a temperature (cruijff_kit refuses to sample without "
                    "one)",
                    "add temperature: 0.7 (any value above 0), or leave do_sample out for "
                    "greedy decoding",
                    False,
                )
            ]
        if _is_number(temperature) and temperature <= 0:
            return [
                (
                    "do_sample",
                    f"sampling with temperature {temperature:g} is an error: do_sample: true "
                    "needs a temperature above 0",
                    "for greedy decoding leave do_sample out (or false); to sample, give a "
                    "temperature above 0",
                    False,
                )
            ]
        return []
    if _is_number(temperature) and temperature > 0 and not isinstance(do_sample, str):
        return [
            (
                "temperature",
                f"temperature {temperature:g} has no effect: decoding is greedy unless "
                "do_sample: true (as in cruijff_kit)",
                "set do_sample: true to sample at this temperature, or leave the temperature out",
                True,
            )
        ]
    return []


def provenance(values: Mapping[str, tuple[Any, str]]) -> tuple[Setting, ...]:
    """Settings records (for ``cruijff plan --explain``) from ``{path: (value, source)}``."""
    return tuple(
        Setting(path=path, value=value, source=source) for path, (value, source) in values.items()
    )
