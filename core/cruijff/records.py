"""The frozen records that flow between the core, the plugins and the schedulers.

Every record is an attrs class with ``frozen=True, kw_only=True``: build one with keywords, derive
a changed copy with :func:`attrs.evolve`. Sequences are tuples and mappings are read-only
(:func:`freeze`), so a record handed to a plugin cannot be changed behind the core's back.
Conversion to and from plain data lives in :mod:`cruijff.convert`.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from cruijff.hardware import Hardware, this_machine

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""What an explicit run, task or model name must match: safe in a path and in a shell word."""


SCALARS = (str, int, float, bool, type(None))
"""The types of YAML's and JSON's scalars: what freezing leaves as it is."""


def freeze(value: Any) -> Any:
    """Return ``value`` with dicts made read-only and lists made tuples, recursively."""
    kind = type(value)
    if kind in SCALARS or (kind is MappingProxyType and _frozen(value)):
        return value  # the common cases, without an ABC check each (plans freeze 10^5 values)
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value


def _frozen(value: Any) -> bool:
    """Whether every item of a read-only mapping is already frozen (a record's field given to
    another record), so that it need not be copied again."""
    return all(
        type(item) in SCALARS
        or (type(item) is MappingProxyType and _frozen(item))
        # what freeze leaves as it is: a record (a plan's 20,000 jobs, given on by evolve)
        or (type(item) not in _CONTAINERS and not isinstance(item, (Mapping, list, tuple)))
        for item in value.values()
    )


_CONTAINERS = (dict, list, tuple)


def thaw(value: Any) -> Any:
    """The plain dicts and lists of a frozen value (for JSON and YAML writers)."""
    if type(value) in SCALARS:  # the common case, without an ABC check
        return value
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not value:
        return _EMPTY  # most records' optional mappings: one read-only empty one for all
    return freeze(value if type(value) is MappingProxyType else dict(value))


def _tuple(value: Any) -> tuple:
    return tuple(value or ())


def _is_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name}: {value!r} is not a valid name "
            f"(letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100)"
        )


record = attrs.frozen(kw_only=True)


def _yaml_path() -> Any:
    """The field of a record built from the experiment file that says where the file writes it:
    a dotted path (``runs[2]``) for ``Experiment.locate``. Not compared: it is a place, not a
    value, so a record equals the one written elsewhere with the same values."""
    return attrs.field(default="", eq=False)


# --- problems -------------------------------------------------------------------------------


class Severity(enum.Enum):
    """How bad a :class:`Problem` is: an error stops the experiment, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@record
class Where:
    """A place in an experiment file: the file, a 1-based line and column, and a dotted path."""

    file: Path | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        place = str(self.file) if self.file else "<experiment>"
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {self.path}" if self.path else place


@record
class Problem:
    """Something wrong (or doubtful) in an experiment, found by the core or by a plugin.

    ``message`` says what is wrong, ``hint`` what would be valid (a "did you mean" where a
    name is close), ``plugin`` who found it (empty for the core).
    """

    severity: Severity = Severity.ERROR
    where: Where = attrs.field(factory=Where)
    message: str
    hint: str = ""
    plugin: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        if self.severity is Severity.WARNING:
            text = f"warning: {text}"
        return text


# --- registration ---------------------------------------------------------------------------


class Role(enum.Enum):
    """What a tool does in an experiment; the ``tools:`` section maps a role to a tool name."""

    GENERATION = "generation"  # data generation: produces the dataset, before anything else
    PREPARATION = "preparation"  # fine-tuning: produces models
    EVALUATION = "evaluation"  # scores models: consumes them


@record
class Tool:
    """A tool a plugin provides, as returned by ``cruijff_tools``.

    ``labels`` gives the short label of each parameter for run names (``lora_rank`` ->
    ``rank``: a run is named ``rank8``); a parameter without one is labelled by its key.
    ``produces`` and ``consumes`` name artifact kinds (``hf-model``, ``inspect-log``...).
    ``requires`` lists modules its jobs import, reported by ``cruijff plugins``.
    """

    name: str = attrs.field(validator=_is_name)
    role: Role
    description: str = ""
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    produces: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    consumes: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    requires: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


@record
class SchedulerInfo:
    """A scheduler a plugin provides, as returned by ``cruijff_schedulers``.

    ``factory(experiment, options)`` returns an object implementing
    :class:`cruijff.scheduler.Scheduler` for that experiment; ``options`` is the experiment's
    ``scheduler:`` section without ``name``, plus command-line settings (``jobs``: how many run
    at once). A path among them means what the experiment file means by it
    (:meth:`Experiment.resolve`), and the scheduler may keep its files in
    ``experiment.state_dir``. ``available()`` says whether it can be used on this machine
    (``sbatch`` on PATH...). ``gpus(experiment)`` says whether the jobs it runs for that
    experiment get GPUs, so tools size their jobs without testing scheduler names (cheap:
    called whenever a plan is made).
    """

    name: str = attrs.field(validator=_is_name)
    factory: Callable[[Experiment, Mapping[str, Any]], Any] = attrs.field(eq=False)
    description: str = ""
    available: Callable[[], bool] = attrs.field(default=lambda: True, eq=False)
    gpus: Callable[[Experiment], bool] = attrs.field(default=lambda experiment: False, eq=False)
    requires: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    hardware: Callable[[Experiment], Hardware] = attrs.field(
        default=lambda experiment: this_machine(), eq=False
    )
    """What the jobs run on, for estimates (:mod:`cruijff.hardware`): this machine unless the
    scheduler knows better (a profile's ``gpu``)."""
    together: Callable[[Experiment], bool] = attrs.field(default=lambda experiment: False, eq=False)
    """Whether it starts a job only once the jobs of its ``JobSpec.after`` ended, so that a
    tool may give one job the work of several (one process evaluating every task of a model)."""


# --- the experiment -------------------------------------------------------------------------


class RunType(enum.Enum):
    """How a run gets its model: trained, taken as it is (control), or an existing checkpoint."""

    FINE_TUNED = "fine-tuned"
    CONTROL = "control"
    EVAL_ONLY = "eval-only"


@record
class ModelRef:
    """A base model: a name runs refer to, and the folder it lives in.

    ``yaml_path`` is where the file writes it (``models.base[1]``), as for every record built
    from the experiment file: a plugin points at it with ``experiment.locate``.
    """

    name: str = attrs.field(validator=_is_name)
    path: Path
    size_gb: float | None = None
    yaml_path: str = _yaml_path()


@record
class DataRef:
    """The training data file and what is known about it (written at ``data.training``).

    ``splits`` holds the row counts the file declares (checked against the file by the tools
    that read it); ``size_kb`` is informational. ``generation`` is the ``data.data_generation``
    block when a generator makes the file (its keys belong to that tool, named in
    ``Experiment.tools["generation"]``): the file need not exist before the generation job.
    """

    path: Path
    format: str = "json"
    label: str = ""
    splits: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_mapping)
    size_kb: float | None = None
    generation: Mapping[str, Any] | None = attrs.field(default=None, converter=freeze)
    yaml_path: str = _yaml_path()


@record
class Compute:
    """What the experiment asks of the machine for a job, over what its tool would choose:
    ``runs[].compute`` for a run's training, ``evaluation.compute`` for every evaluation cell
    (cruijff_kit's keys ``time``, ``gpus``, ``mem``, ``cpus_per_task``). None: the tool's
    choice. Time in seconds, memory in MB. ``extras`` are scheduler settings laid over the
    job's ``Resources.extras`` (a run's retired ``slurm_overrides``: partition, constraint)."""

    time_s: int | None = None
    gpus: int | None = None
    mem_mb: int | None = None
    cpus: int | None = None
    extras: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    yaml_path: str = _yaml_path()

    def over(self, resources: Resources) -> Resources:
        """``resources`` with what this asks for in place of the tool's choices."""
        asked = {
            field: value
            for field, value in (
                ("time_s", self.time_s),
                ("gpus", self.gpus),
                ("mem_mb", self.mem_mb),
                ("cpus", self.cpus),
            )
            if value is not None
        }
        if self.extras:
            asked["extras"] = {**resources.extras, **self.extras}
        return attrs.evolve(resources, **asked) if asked else resources


ASKS_NOTHING = Compute()
"""The compute of a run or an evaluation that asks for nothing: the tools choose (one shared,
read-only value: ten thousand runs need not make ten thousand)."""


@record
class Axis:
    """A swept variable: one parameter and the values it takes, in order (written at
    ``variables.lr``, or ``variables.zip[0].lr`` in a zip group)."""

    key: str
    values: tuple[Any, ...] = attrs.field(converter=freeze)
    yaml_path: str = _yaml_path()


@record
class ZipGroup:
    """Axes that vary together (the i-th values go in one run) instead of being crossed
    (written at ``variables.zip[0]``)."""

    axes: tuple[Axis, ...] = attrs.field(converter=_tuple)
    yaml_path: str = _yaml_path()

    def __len__(self) -> int:
        return len(self.axes[0].values) if self.axes else 0


@record
class Run:
    """One row of the experiment: a model, a type and the parameters that are its own.

    ``parameters`` holds the run's values only; the tool merges them over ``controls``.
    ``compute`` is what ``runs[].compute`` asks for its training job; ``training_condition``
    names the data condition it trains on (cruijff_kit's generated conditions; None: the
    training file). ``index`` is its place among the runs; ``yaml_path`` is where the file writes it
    (``runs[2]``), empty for a run of the grid of ``variables``, which no line writes.
    """

    name: str = attrs.field(validator=_is_name)
    type: RunType = RunType.FINE_TUNED
    model: str
    parameters: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    directory: Path
    index: int = 0
    compute: Compute = attrs.field(default=ASKS_NOTHING)
    training_condition: str | None = None
    yaml_path: str = _yaml_path()


@record
class Scorer:
    """A scorer of the evaluation tool, by name, with its parameters.

    ``yaml_path`` is where the file writes it (``evaluation.scorers[0]``), ``name_path`` where
    its name is: the same place for a bare name (``- match``), else ``<yaml_path>.name``.
    """

    name: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    yaml_path: str = _yaml_path()
    name_path: str = _yaml_path()


@record
class EvalTask:
    """An evaluation task: its name, the file that defines it (or none: an installed task) and
    the rest of its settings (dataset, prompt...), which belong to the evaluation tool; written
    at ``yaml_path`` (``evaluation.tasks[0]``)."""

    name: str = attrs.field(validator=_is_name)
    script: Path | None = None
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    yaml_path: str = _yaml_path()


@record
class MatrixEntry:
    """Which tasks to evaluate a run on, at which epochs (written at ``evaluation.matrix[0]``).

    Empty ``tasks`` means all. ``epochs`` lists 0-based epochs, or is ``"all"`` for every epoch,
    or None when the file leaves it out: the last epoch. ``base`` says the file writes
    ``epochs: null``: no epoch, the run's model as it is (its base model, or an eval-only
    run's checkpoint); ``epochs`` is then None too. ``vis_label`` is the cells' label in
    reports (cruijff_kit's; None: the run's name).
    """

    run: str
    tasks: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    epochs: tuple[int, ...] | str | None = None
    base: bool = False
    vis_label: str | None = None
    yaml_path: str = _yaml_path()


@record
class Evaluation:
    """The ``evaluation`` section: shared settings, scorers, tasks and the optional matrix.

    ``tasks`` holds the valid tasks only (the core reports the others); ``tasks_written`` says
    whether the file lists any task at all, so a tool can tell "no task" from "no valid task".
    ``compute`` is what ``evaluation.compute`` asks for every evaluation job.
    """

    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    scorers: tuple[Scorer, ...] = attrs.field(default=(), converter=_tuple)
    tasks: tuple[EvalTask, ...] = attrs.field(default=(), converter=_tuple)
    matrix: tuple[MatrixEntry, ...] | None = None
    tasks_written: bool = False
    compute: Compute = attrs.field(default=ASKS_NOTHING)


@record
class SchedulerConfig:
    """The ``scheduler`` section: which scheduler (None: choose the default) and its options.

    ``gpus`` says whether the chosen scheduler's jobs get GPUs (set once it is chosen, from
    its ``SchedulerInfo.gpus``): tools ask for GPUs only where there are some. ``together``
    says whether it keeps the order of ``JobSpec.after`` (its ``SchedulerInfo.together``).
    """

    name: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    gpus: bool = False
    together: bool = False


@record
class Experiment:
    """An experiment file, loaded and checked for shape by the core.

    ``locate(path)`` finds where a dotted path (``controls.lr``, ``runs[1].model``, a record's
    ``yaml_path``) is written, so plugins can point at their keys; ``resolve(path)`` makes a
    path the file gives absolute. ``document`` is the file as plain data.
    """

    name: str = attrs.field(validator=_is_name)
    file: Path
    directory: Path
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    tools: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    variables: tuple[Axis | ZipGroup, ...] = attrs.field(default=(), converter=_tuple)
    controls: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    models: tuple[ModelRef, ...] = attrs.field(default=(), converter=_tuple)
    data: DataRef | None = None
    output: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    runs: tuple[Run, ...] = attrs.field(default=(), converter=_tuple)
    evaluation: Evaluation | None = None
    scheduler: SchedulerConfig = attrs.field(factory=SchedulerConfig)
    document: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, repr=False)
    locate: Callable[[str], Where] = attrs.field(
        default=lambda path: Where(path=path), eq=False, repr=False
    )

    def resolve(self, path: str | Path) -> Path:
        """``path`` as the file means it: ``~`` expanded, a relative path against the file's
        folder (DESIGN.md §5), absolute and without links."""
        return resolve_path(self.file.parent, path)

    def run(self, name: str) -> Run:
        """The run called ``name`` (KeyError if there is none)."""
        return self._runs[name]

    def model(self, name: str) -> ModelRef:
        """The base model called ``name`` (KeyError if there is none)."""
        return self._models[name]

    @functools.cached_property
    def _runs(self) -> dict[str, Run]:
        # looked up once per unit: a scan would make a plan of N runs cost N²
        return {run.name: run for run in reversed(self.runs)}

    @functools.cached_property
    def _models(self) -> dict[str, ModelRef]:
        return {model.name: model for model in reversed(self.models)}

    @property
    def state_dir(self) -> Path:
        """Where cruijff keeps its own records of this experiment."""
        return self.directory / ".cruijff"


def resolve_path(folder: Path, path: str | Path) -> Path:
    """``path`` with ``~`` expanded, against ``folder`` when relative, absolute and without
    links: how every path an experiment file gives is read (:meth:`Experiment.resolve`)."""
    return (folder / Path(path).expanduser()).resolve()


# --- work -----------------------------------------------------------------------------------


class ArtifactKind:
    """The kinds of artifact tools exchange, named once. Tools meet only through these: a
    trainer produces HF_MODEL per epoch, an evaluator consumes it. A plugin may add kinds of
    its own (any short string); these are the ones the shipped plugins agree on."""

    DATASET = "dataset"
    """The JSON file of rows that training and evaluation read (a data-generation job's)."""
    HF_MODEL = "hf-model"
    """A folder transformers loads: merged weights, config, tokenizer."""
    LORA_ADAPTER = "lora-adapter"
    """A PEFT adapter folder, beside (not instead of) the merged model."""
    TRAIN_METRICS = "train-metrics"
    """A CSV of the loss per step (``metrics.csv``)."""
    INSPECT_LOG = "inspect-log"
    """A folder of inspect-ai ``.eval`` logs."""


@record
class Artifact:
    """Something a job writes that another may use: ``kind`` (one of :class:`ArtifactKind`,
    or a plugin's own), its path, and the 0-based epoch it belongs to. A dataset's ``splits``
    are its rows per split, known before it is written (training and evaluation size their
    work from them)."""

    kind: str
    path: Path
    epoch: int | None = None
    run: str = ""
    splits: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_mapping)


@record
class Unit:
    """One piece of work a tool owns: a training run, an evaluation cell.

    ``id`` is unique in the experiment and safe as a file name; ``depends_on`` lists the ids of
    units whose artifacts this one consumes; ``produces`` what it will write, known in advance.
    ``params`` holds the run's parameters as the experiment gives them (shown by ``plan``);
    ``payload`` is the owning tool's own frozen record of what generate needs, built at select
    time (the core never reads it).
    """

    id: str = attrs.field(validator=_is_name)
    tool: str
    kind: str
    run: str
    directory: Path
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    produces: tuple[Artifact, ...] = attrs.field(default=(), converter=_tuple)
    consumes: tuple[Artifact, ...] = attrs.field(default=(), converter=_tuple)
    payload: Any = attrs.field(default=None, eq=False, repr=False)


@record
class Resources:
    """What a job asks of the machine; ``extras`` holds scheduler-specific settings
    (partition, account, constraint...). Memory in MB, time limit in seconds."""

    gpus: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    cpus: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    mem_mb: int | None = None
    time_s: int | None = None
    nodes: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    extras: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen(kw_only=True, eq=False)
class FileSpec:
    """A file a tool wants written into the experiment directory, with its full text.

    ``content`` may be given as a function of no arguments that returns the text: it is then
    rendered the first time it is read, so planning (which needs only the paths) renders
    nothing, and scaffolding renders each file once. Two FileSpecs are equal when path, text
    and mode are.
    """

    path: Path
    _content: str | Callable[[], str] = attrs.field(alias="content", repr=False)
    executable: bool = False

    @functools.cached_property
    def content(self) -> str:
        """The file's text (rendered now if it was given as a function)."""
        return self._content() if callable(self._content) else self._content

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileSpec):
            return NotImplemented
        return (self.path, self.content, self.executable) == (
            other.path,
            other.content,
            other.executable,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.executable))


@record
class JobSpec:
    """A command to run for a unit: what a tool generates and a scheduler executes.

    ``depends_on`` lists unit ids that must succeed first; ``after`` lists unit ids whose jobs
    must have ended first, however they ended (an order, not a dependency: a tool gives one job
    the work of those that follow it, which then find it done). Only a scheduler whose
    ``SchedulerInfo.together`` says so keeps that order; tools set ``after`` only there.
    ``log`` receives stdout and stderr.
    """

    unit_id: str = attrs.field(validator=_is_name)
    name: str
    argv: tuple[str, ...] = attrs.field(converter=_tuple)
    workdir: Path
    log: Path
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    resources: Resources = attrs.field(factory=Resources)
    depends_on: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    produces: tuple[Artifact, ...] = attrs.field(default=(), converter=_tuple)
    after: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


@record
class Setting:
    """One final value of a unit's configuration and where it came from (``recipe ...``,
    ``default``, ``controls``, ``run``...), shown by ``cruijff plan --explain``."""

    path: str
    value: Any = attrs.field(converter=freeze)
    source: str


@attrs.frozen(kw_only=True, eq=False)
class Generated:
    """What ``cruijff_generate`` returns for a unit: files to write, the job to run (None when
    the unit needs no job, e.g. a base model used as it is), and its settings' provenance.

    ``settings`` may be given as a function of no arguments returning them: they are then
    made the first time they are read (``plan --explain``), not for every plan."""

    files: tuple[FileSpec, ...] = attrs.field(default=(), converter=_tuple)
    job: JobSpec | None = None
    _settings: tuple[Setting, ...] | Callable[[], Any] = attrs.field(
        default=(), alias="settings", repr=False
    )

    @functools.cached_property
    def settings(self) -> tuple[Setting, ...]:
        """Every final setting of the unit and where it came from."""
        return tuple(self._settings() if callable(self._settings) else self._settings)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Generated):
            return NotImplemented
        return (self.files, self.job, self.settings) == (other.files, other.job, other.settings)

    def __hash__(self) -> int:
        return hash((self.files, self.job))


class JobState(enum.Enum):
    """Where a job is. Every scheduler maps its own states onto these."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    DEPENDENCY_NEVER_SATISFIED = "DEPENDENCY_NEVER_SATISFIED"
    UNKNOWN = "UNKNOWN"

    @property
    def finished(self) -> bool:
        """True once the job will not change state by itself any more."""
        return self not in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)

    @property
    def failed(self) -> bool:
        """True for every finished state but success."""
        return self.finished and self is not JobState.SUCCEEDED


@record
class JobHandle:
    """How a scheduler knows a submitted job: its name and the scheduler's own id."""

    scheduler: str
    id: str
    name: str = ""


@record
class JobStatus:
    """A job's state as a scheduler reports it, with the exit code and cause where known.

    ``lost`` says the scheduler lost sight of the job's processes (killed with -9, a reboot)
    without knowing how it ended: its outputs decide whether it succeeded after all.
    """

    state: JobState
    exit_code: int | None = None
    cause: str = ""
    lost: bool = False
    peak_memory_mb: float | None = None
    """The job's peak resident memory where the scheduler measured it (its largest process)."""
    wall_s: float | None = None
    """How long the job's command ran, where the scheduler knows."""


@record
class Validation:
    """A tool's verdict on a finished unit: ok or not, why, and what it measured and wrote.

    ``summary`` names the few metrics worth a column in a results table (``match/accuracy``,
    ``final_loss``); without it every numeric metric is shown.
    """

    unit_id: str
    ok: bool
    cause: str = ""
    metrics: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    artifacts: tuple[Artifact, ...] = attrs.field(default=(), converter=_tuple)
    summary: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


# --- parsing and planning -------------------------------------------------------------------


@record
class Key:
    """A key of the experiment file that belongs to the plugins rather than the core.

    ``section`` says which namespace it lives in: ``parameters`` (``controls``, the names of
    ``variables`` and ``runs[].parameters``, one namespace), ``output``, ``scheduler``,
    ``evaluation`` (its settings) or ``task`` (a task's settings).
    """

    section: str
    path: str
    name: str
    value: Any = attrs.field(converter=freeze)


@record
class ParseReport:
    """What ``cruijff_parse`` returns: the paths of the keys a plugin understood, the names it
    knows in each section (searched for "did you mean"), and the problems it found."""

    claimed: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    vocabulary: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_frozen_mapping)
    problems: tuple[Problem, ...] = attrs.field(default=(), converter=_tuple)


@record
class Plan:
    """An experiment's work, decided but not yet written: its units in dependency order and
    what generating each gave (files and job)."""

    experiment: Experiment
    units: tuple[Unit, ...] = attrs.field(default=(), converter=_tuple)
    generated: Mapping[str, Generated] = attrs.field(factory=dict, converter=_frozen_mapping)
    hardware: Hardware | None = None
    estimates: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    """Unit id -> :class:`cruijff.estimates.Estimate` (or None) for every unit with a job."""
    warnings: tuple[Problem, ...] = attrs.field(default=(), converter=_tuple)
    """What the plugins' reviews of the whole plan found (each names its run and fix)."""
    notes: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    """Named additions of the reviews to ``plan --json`` (how SLURM groups jobs...)."""

    @property
    def jobs(self) -> tuple[JobSpec, ...]:
        """The jobs of every unit that has one, in unit order."""
        return tuple(job for unit in self.units if (job := self.generated[unit.id].job) is not None)
