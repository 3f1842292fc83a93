"""The keys the inspect tool owns in an experiment file, what each accepts, and how a cell's
final values are chosen.

Three namespaces: the ``evaluation`` section's settings, each task's settings
(``evaluation.tasks[i]``) and the run parameters it reads (``prompt``, ``system_prompt``,
``checkpoint_path``). Prompts follow cruijff_kit's precedence: the task's own > the run's
parameter > the ``evaluation`` section's > ``controls``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cruijff.records import EvalTask, Experiment, Run, Setting

Check = Callable[[Any], str | tuple[str, str]]
"""Returns what is wrong with a value ("" when it is fine), alone or with a hint that says what
would be valid: ``(message, hint)``."""

PLUGIN = "inspect"
"""The name the tool's problems carry."""

SAME = "same"
"""``dataset: same``: the experiment's training data file (its ``test`` split by default)."""

DEFAULT_PROVIDER = "hf"
MOCK_PROVIDER = "cruijff-mock"
"""The offline provider of :mod:`cruijff_inspect.mock`."""
DEFAULT_SPLIT = "test"
JOB_MODULE = "cruijff_inspect.job"
"""The module an evaluation job runs: ``python -m cruijff_inspect.job eval_config.yaml``."""

JOB_ENV = {
    # local model folders only: without these, each evaluation spends ~25 s retrying the Hub
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""The environment of every evaluation job."""

DEFAULT_BATCH = 32
"""The most samples generated at once (inspect's ``max_connections``, the hf batch size),
lowered to the number of samples of a small task."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(minimum: int | None = None) -> Check:
    """A whole number, at least ``minimum``."""

    def check(value: Any) -> str:
        if not _is_int(value):
            return f"expected a whole number, not {value!r}"
        if minimum is not None and value < minimum:
            return f"must be at least {minimum}, not {value}"
        return ""

    return check


def number(*, above: float | None = None, minimum: float | None = None) -> Check:
    """A number, greater than ``above`` or at least ``minimum``."""

    def check(value: Any) -> str:
        if not _is_number(value):
            return f"expected a number, not {value!r}"
        if above is not None and value <= above:
            return f"must be greater than {above:g}, not {value}"
        if minimum is not None and value < minimum:
            return f"must be at least {minimum:g}, not {value}"
        return ""

    return check


def text(value: Any) -> str:
    """A string."""
    return "" if isinstance(value, str) else f"expected a string, not {value!r}"


def nonempty(value: Any) -> str:
    """A string that is not empty."""
    return text(value) or ("" if value.strip() else "must not be empty")


PROMPT_HINT = 'write {input} where each example goes, e.g. "Capitalize: {input}"'


def prompt(value: Any) -> str | tuple[str, str]:
    """A string with ``{input}`` where each example goes. The evaluation formats every prompt
    (the training tool reads them too): this check is made here only, so it is said once."""
    if text(value) or "{input}" in value:
        return text(value)
    return "the prompt does not contain {input}", PROMPT_HINT


def flag(value: Any) -> str:
    """true or false."""
    return "" if isinstance(value, bool) else f"expected true or false, not {value!r}"


def mapping(value: Any) -> str:
    """A mapping of names to values."""
    return "" if isinstance(value, Mapping) else f"expected a mapping (key: value), not {value!r}"


EVALUATION: dict[str, Check] = {
    "temperature": number(minimum=0),
    "do_sample": flag,
    "max_tokens": integer(1),
    "seed": integer(),
    "prompt": prompt,
    "system_prompt": text,
    "batch_size": integer(1),
    "limit": integer(1),
    "provider": nonempty,
    "model_args": mapping,
    "gpus": integer(0),
    "cpus": integer(1),
    "mem_gb": number(above=0),
    "time_minutes": number(above=0),
}
"""``evaluation.<key>``: decoding (temperature 0 or absent = greedy, ``do_sample``,
``max_tokens``, ``seed``), prompts, ``batch_size`` (cap), ``limit`` (first N samples),
``provider`` (``hf``, or ``cruijff-mock`` to try a pipeline offline), ``model_args`` (passed to
the provider) and resources (``gpus``, ``cpus``, ``mem_gb``, ``time_minutes``)."""

TASK: dict[str, Check] = {
    "function": nonempty,
    "task": nonempty,
    "dataset": nonempty,
    "split": nonempty,
    "prompt": prompt,
    "system_prompt": text,
    "args": mapping,
    "limit": integer(1),
}
"""``evaluation.tasks[i].<key>``: ``function`` (the ``@task`` function of ``script``; default:
the task's name), ``task`` (a task an installed package registers: ``package/name``),
``dataset`` (``same`` or a data file), ``split``, prompts, ``args`` (more task arguments) and
``limit``."""

PARAMETERS: dict[str, Check] = {
    "prompt": prompt,
    "system_prompt": text,
    "checkpoint_path": nonempty,
}
"""Run parameters (and ``controls``) the evaluation reads."""


def chosen(experiment: Experiment, run: Run, task: EvalTask, key: str) -> tuple[Any, str] | None:
    """``key``'s value for a cell and where it comes from, by precedence: the task, the run's
    parameters, the evaluation section, then controls; None when nobody sets it."""
    evaluation = experiment.evaluation.settings if experiment.evaluation else {}
    for source, values in (
        (f"evaluation.tasks.{task.name}", task.settings),
        (f"runs.{run.name}", run.parameters),
        ("evaluation", evaluation),
        ("controls", experiment.controls),
    ):
        if values.get(key) is not None:
            return values[key], source
    return None


def evaluation_setting(experiment: Experiment, key: str, default: Any = None) -> Any:
    """A setting of the ``evaluation`` section, or ``default``."""
    settings = experiment.evaluation.settings if experiment.evaluation else {}
    value = settings.get(key)
    return default if value is None else value


def decoding(settings: Mapping[str, Any], provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The generate config and the provider arguments that decoding settings give.

    Deterministic by default. With the hf provider, temperature 0 (or none) means greedy
    decoding: ``do_sample=false`` and no temperature, which the hf provider would otherwise
    reject; a positive temperature samples.
    """
    generate: dict[str, Any] = {}
    for key in ("max_tokens", "seed"):
        if settings.get(key) is not None:
            generate[key] = settings[key]
    temperature, do_sample = settings.get("temperature"), settings.get("do_sample")
    if provider != DEFAULT_PROVIDER:
        if temperature is not None:
            generate["temperature"] = temperature
        return generate, {}
    sample = bool(do_sample) if do_sample is not None else bool(temperature)
    if sample and temperature:
        generate["temperature"] = temperature
    return generate, {"do_sample": sample}


def decoding_problem(settings: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(key, message, hint) when temperature and do_sample contradict each other."""
    temperature, do_sample = settings.get("temperature"), settings.get("do_sample")
    if not _is_number(temperature) or not isinstance(do_sample, bool):
        return None
    if do_sample and temperature == 0:
        return (
            "do_sample",
            "sampling with temperature 0 is an error with the hf provider",
            "for deterministic decoding leave do_sample out (or false); to sample, give a "
            "temperature above 0",
        )
    if not do_sample and temperature > 0:
        return (
            "temperature",
            f"temperature {temperature} has no effect with do_sample: false",
            "leave the temperature out for greedy decoding, or set do_sample: true",
        )
    return None


def provenance(values: Mapping[str, tuple[Any, str]]) -> tuple[Setting, ...]:
    """Settings records (for ``cruijff plan --explain``) from ``{path: (value, source)}``."""
    return tuple(
        Setting(path=path, value=value, source=source) for path, (value, source) in values.items()
    )
