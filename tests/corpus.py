"""A corpus of malformed experiment files, and how one case is run and judged.

Documents are drawn from the schema of both formats we accept (cruijff's ``experiment.yaml``,
a grid over the variables; cruijff_kit's ``experiment_summary.yaml``, explicit runs and a
matrix), then broken: a section dropped, a wrong type at a random path, an unknown key near a
real one, control characters, non-UTF-8 bytes, byte-order marks and CRLF in the bytes, deep
nesting, alias bombs, absurd numbers and long paths. :data:`HAND_WRITTEN` adds the cases a
generator would rarely hit. :func:`run_case` puts a case through ``validate``, ``plan`` or
``scaffold`` in a fresh folder (a model folder with config.json and weights, a data file, a
task script beside it) and says how it ended: accepted (exit 0), a clear error (exit 1, the
message names the file and a line), an unclear error, a traceback, or a hang (over
:data:`LIMIT_S`).

Here are no tests: ``tests/test_corpus.py`` and ``bench/bench_corpus.py`` use this module.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import yaml
from hypothesis import strategies as st

from cruijff.experiment import MAX_EPOCHS, MAX_PATH_PART, MAX_RUNS
from cruijff.experiment.reader import MAX_PATH
from cruijff.experiment.sections import MAX_SIZE_GB
from cruijff.yamlfile import MAX_BYTES, MAX_DEPTH, MAX_TEXT, MAX_VALUES

HERE = Path(__file__).resolve().parent
TASK_SCRIPT = HERE / "inspect_tasks" / "capitalization.py"
COMMANDS = ("validate", "plan", "scaffold")
LIMIT_S = 5.0
"""Longest a case may take, per command, before it counts as a hang."""
ROOT = "@ROOT@"
"""Stands for the case's folder in a document (cruijff_kit writes absolute paths)."""
RAW = "RAWSLOT"
"""A plain scalar that :func:`render` replaces with raw YAML text (aliases, deep nesting)."""
MODEL_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}
"""SmolLM2-135M's config.json (bench/models.py): a real shape, so the plugins size real jobs."""
ROWS = {"train": 64, "validation": 16, "test": 16}


# --- cases and outcomes -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Case:
    """One experiment file: its bytes (``@ROOT@`` stands for its folder), how it was made, and
    what a correct answer must be.

    ``must_fail``: a size beyond reason, or bytes that are no YAML: accepting it is a bug.
    ``says``: text the error must contain (the limit it crosses, the field). ``line``: whether
    the error can name a line (not for a file that cannot be read at all). ``name``: the
    file's name in its folder.
    """

    label: str
    data: bytes
    must_fail: bool = False
    says: tuple[str, ...] = ()
    line: bool = True
    name: str = "experiment.yaml"
    known: str = ""
    """A bug found and left alone, and why: the test expects it to fail until it is fixed."""

    def __repr__(self) -> str:  # hypothesis prints it for a failing example: keep it readable
        shown = self.data[:2000].decode("utf-8", "backslashreplace")
        more = f"... ({len(self.data):,} bytes)" if len(self.data) > 2000 else ""
        return f"Case({self.label!r}, must_fail={self.must_fail}, says={self.says}):\n{shown}{more}"


class Kind(enum.Enum):
    ACCEPTED = "accepted"
    CLEAR = "clear error"
    UNCLEAR = "unclear error"  # exit 1, but no file and line, or not what the case must say
    WRONGLY_ACCEPTED = "accepted, should fail"
    TRACEBACK = "traceback"  # a bug report (exit 70), or any other exit
    HANG = "hang"


GOOD = (Kind.ACCEPTED, Kind.CLEAR)


@attrs.frozen(kw_only=True)
class Outcome:
    case: Case
    command: str
    kind: Kind
    exit_code: int | None
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.kind in GOOD

    def report(self) -> str:
        """What a failed assertion shows."""
        return (
            f"{self.command}: {self.kind.value} (exit {self.exit_code}, {self.seconds:.2f} s)\n"
            f"{self.output[-3000:]}\n{self.case!r}"
        )


# --- running a case -----------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the alarm inside a command that runs too long (a BaseException, so that no
    ``except Exception`` on the way turns it into an error message)."""


def workspace(folder: Path) -> None:
    """What a case's experiment refers to: ``models/smol`` (config.json and a weights file),
    ``data/words.json`` and ``tasks/capitalization.py``."""
    model = folder / "models" / "smol"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(MODEL_CONFIG))
    (model / "model.safetensors").write_bytes(b"")
    (folder / "data").mkdir()
    words = [f"word{i}" for i in range(sum(ROWS.values()))]
    rows = [{"input": word, "output": word.upper()} for word in words]
    splits, start = {}, 0
    for split, count in ROWS.items():
        splits[split] = rows[start : start + count]
        start += count
    (folder / "data" / "words.json").write_text(json.dumps(splits))
    (folder / "tasks").mkdir()
    shutil.copy(TASK_SCRIPT, folder / "tasks" / "capitalization.py")


def run_case(case: Case, command: str, *, real: bool = False) -> Outcome:
    """Run ``cruijff COMMAND FILE`` on ``case`` in a fresh folder, in-process (click's
    CliRunner, stopped by an alarm after LIMIT_S) or, with ``real``, as a subprocess."""
    with tempfile.TemporaryDirectory(prefix="cruijff-corpus-") as name:
        folder = Path(name).resolve()
        workspace(folder)
        file = folder / case.name
        with contextlib.suppress(OSError):  # a name the file system refuses: the command says so
            file.write_bytes(case.data.replace(ROOT.encode(), str(folder).encode()))
        run = _subprocess if real else _in_process
        began = time.perf_counter()
        code, output, hung = run(command, file, folder)
        seconds = time.perf_counter() - began
        kind = Kind.HANG if hung or seconds > LIMIT_S else judge(case, code, output, file)
        return Outcome(
            case=case,
            command=command,
            kind=kind,
            exit_code=code,
            seconds=seconds,
            output=output.replace(str(folder), "<folder>"),
        )


def judge(case: Case, code: int | None, output: str, file: Path) -> Kind:
    """What an exit status and output mean for ``case``."""
    if code == 0 and "Traceback" not in output:
        return Kind.WRONGLY_ACCEPTED if case.must_fail else Kind.ACCEPTED
    if code != 1 or "Traceback" in output:
        return Kind.TRACEBACK
    named = str(file) in output
    if case.line:
        named = re.search(re.escape(str(file)) + r":\d+", output) is not None
    if not named or any(text not in output for text in case.says):
        return Kind.UNCLEAR
    return Kind.CLEAR


def _in_process(command: str, file: Path, folder: Path) -> tuple[int | None, str, bool]:
    from click.testing import CliRunner

    from cruijff.cli import App, cli

    def alarm(signum: int, frame: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
    try:
        result = CliRunner().invoke(cli, [command, str(file)], obj=App(), prog_name="cruijff")
    except Hang:
        return None, "", True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        output += "\nTraceback (from the runner):\n" + "".join(
            traceback.format_exception(*result.exc_info)
        )
    return result.exit_code, output, False


def _subprocess(command: str, file: Path, folder: Path) -> tuple[int | None, str, bool]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(folder / ".config"),
        "CRUIJFF_DATA_DIR": str(folder / ".data"),
    }
    env.pop("CRUIJFF_PLUGINS", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cruijff", command, str(file)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=LIMIT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "", True
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    return done.returncode, output, False


# --- documents from the schema --------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,11}", fullmatch=True)
PROMPTS = st.sampled_from(
    ["Capitalize: {input}", "Capitalize the word: {input}\n", "{input}", "Word: {input} ->"]
)
SYSTEM_PROMPTS = st.sampled_from(["", "You are a helpful assistant.", "Answer in capitals."])
RANKS = st.lists(st.sampled_from([4, 8, 16]), min_size=1, max_size=3, unique=True)
LRS = st.lists(st.sampled_from([1e-5, 1e-4, 3e-4, 1e-3]), min_size=1, max_size=2, unique=True)


def _maybe(draw: Any, document: dict[str, Any], key: str, values: st.SearchStrategy) -> None:
    if draw(st.booleans()):
        document[key] = draw(values)


@st.composite
def controls(draw: Any, kit: bool) -> dict[str, Any]:
    """Settings every run shares, from the training plugins' keys."""
    found: dict[str, Any] = {
        "epochs": draw(st.integers(1, 3)),
        "batch_size": draw(st.sampled_from([1, 2, 4, 8])),
        "dataset_type": draw(st.sampled_from(["chat_completion", "text_completion"])),
    }
    if kit:  # cruijff_kit's template marks these required
        found["system_prompt"] = draw(SYSTEM_PROMPTS)
        found["gradient_accumulation_steps"] = draw(st.integers(1, 2))
    _maybe(draw, found, "prompt", PROMPTS)
    _maybe(draw, found, "system_prompt", SYSTEM_PROMPTS)
    _maybe(draw, found, "lr", st.sampled_from([1e-4, 3e-4]))
    _maybe(draw, found, "seed", st.integers(0, 100))
    _maybe(draw, found, "num_warmup_steps", st.integers(0, 10))
    _maybe(draw, found, "max_seq_len", st.sampled_from([64, 128, 512]))
    _maybe(draw, found, "weight_decay", st.sampled_from([0.0, 0.01]))
    _maybe(draw, found, "lora_dropout", st.sampled_from([0.0, 0.05]))
    _maybe(draw, found, "validation_during_training", st.booleans())
    _maybe(draw, found, "log_every_n_steps", st.integers(1, 5))
    return found


@st.composite
def evaluation(draw: Any, kit: bool) -> dict[str, Any]:
    task: dict[str, Any] = {
        "name": "capitalization",
        "script": f"{ROOT}/tasks/capitalization.py" if kit else "tasks/capitalization.py",
        "dataset": "same",
    }
    if kit:
        task["description"] = "Word capitalization accuracy"
    section: dict[str, Any] = {"tasks": [task]}
    if kit:
        section["temperature"] = 0.0
        section["scorers"] = [{"name": "match"}]
    _maybe(draw, section, "max_tokens", st.integers(4, 32))
    _maybe(draw, section, "seed", st.integers(0, 100))
    _maybe(draw, section, "do_sample", st.just(False))
    _maybe(
        draw,
        section,
        "scorers",
        st.lists(st.sampled_from(["match", "includes"]), min_size=1, max_size=2, unique=True),
    )
    return section


@st.composite
def cruijff_document(draw: Any) -> dict[str, Any]:
    """A cruijff ``experiment.yaml``: the grid of variables over one base model."""
    experiment: dict[str, Any] = {"name": draw(NAMES)}
    _maybe(draw, experiment, "question", st.just("Does rank matter?"))
    _maybe(draw, experiment, "date", st.just("2026-11-22"))
    _maybe(draw, experiment, "dir", st.just("runs"))
    variables: dict[str, Any] = {"lora_rank": draw(RANKS)}
    _maybe(draw, variables, "lr", LRS)
    if draw(st.booleans()):
        variables["zip"] = [{"batch_size": [4, 8], "gradient_accumulation_steps": [2, 1]}]
    document = {
        "experiment": experiment,
        "tools": {
            "preparation": draw(st.sampled_from(["torchtune", "torchtune", "trl"])),
            "evaluation": draw(st.sampled_from(["inspect", "inspect-ai"])),
        },
        "variables": variables,
        "controls": draw(controls(False)),
        "models": {"base": [{"name": "smol", "path": "models/smol"}]},
        "data": {"training": {"path": "data/words.json"}},
        "evaluation": draw(evaluation(False)),
    }
    if draw(st.booleans()):
        document["models"]["base"][0]["size_gb"] = 0.5
    if draw(st.booleans()):
        document["scheduler"] = {"name": "local"}
    return document


@st.composite
def kit_document(draw: Any) -> dict[str, Any]:
    """A cruijff_kit ``experiment_summary.yaml``: every key its template requires, explicit
    runs (each swept value in one), a control run and a matrix."""
    ranks = draw(RANKS)
    runs: list[dict[str, Any]] = [
        {
            "name": f"rank{rank}",
            "type": "fine-tuned",
            "model": "smol",
            "parameters": {"lora_rank": rank},
        }
        for rank in ranks
    ]
    runs.append({"name": "base", "type": "control", "model": "smol", "parameters": {}})
    epochs = draw(st.integers(1, 3))
    matrix: list[dict[str, Any]] = [
        {"run": f"rank{rank}", "tasks": ["capitalization"], "epochs": [epochs - 1]}
        for rank in ranks
    ]
    matrix.append({"run": "base", "tasks": ["capitalization"], "epochs": None})
    section = draw(evaluation(True))
    section["matrix"] = matrix
    document = {
        "experiment": {
            "name": draw(NAMES),
            "project": "capitalization",
            "question": "Does LoRA rank matter?",
            "date": "2026-11-22",
            "dir": f"{ROOT}/runs",
        },
        "tools": {"preparation": "torchtune", "evaluation": "inspect-ai"},
        "variables": {"lora_rank": ranks},
        "controls": {**draw(controls(True)), "epochs": epochs},
        "models": {"base": [{"name": "smol", "path": f"{ROOT}/models/smol", "size_gb": 0.5}]},
        "data": {
            "training": {
                "path": f"{ROOT}/data/words.json",
                "dataset_label": "words",
                "format": "json",
                "size_kb": 4,
                "splits": dict(ROWS),
            }
        },
        "output": {"wandb_project": "capitalization"},
        "runs": runs,
        "evaluation": section,
    }
    return document


def documents() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """A valid document of either format, with the format's name."""
    return st.one_of(
        cruijff_document().map(lambda document: ("experiment.yaml", document)),
        kit_document().map(lambda document: ("experiment_summary.yaml", document)),
    )


# --- paths into a document ----------------------------------------------------------------

Path_ = tuple[str | int, ...]


def walk(value: Any, at: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every value of a document with its path (the root excluded)."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*at, key), item
        yield from walk(item, (*at, key))


def dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _parent(document: Any, path: Path_) -> Any:
    for part in path[:-1]:
        document = document[part]
    return document


def put(document: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    _parent(changed, path)[path[-1]] = value
    return changed


def drop(document: dict[str, Any], path: Path_) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    del _parent(changed, path)[path[-1]]
    return changed


def render(document: Any, raw: str = "") -> bytes:
    """The document as YAML; the plain scalar RAWSLOT becomes ``raw``, as written."""
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1_000_000)
    if raw:
        text = text.replace(RAW, raw, 1)
    return text.encode("utf-8")


# --- mutations ----------------------------------------------------------------------------

WRONG_VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        3.5,
        -0.0,
        "",
        " ",
        "text",
        "{input}",
        "../../..",
        "1e-4",
        "~",
        "null",
        [],
        [1, 2],
        [None],
        [[]],
        {},
        {"a": 1},
        {"name": None},
        math.nan,
        math.inf,
        -math.inf,
        2**63,
        -(2**63),
        10**30,
        1e308,
        5e-324,
    ]
)
BAD_BYTES = st.sampled_from(
    [b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]
)
CONTROL = st.sampled_from([chr(c) for c in (*range(0, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)])
BOMS = st.sampled_from([b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])


def typo(key: str, draw: Any) -> str:
    """A key a slip away from ``key``."""
    if not key:
        return "x"
    i = draw(st.integers(0, len(key) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "upper", "plural", "space", "dash"]))
    if how == "drop" and len(key) > 1:
        return key[:i] + key[i + 1 :]
    if how == "swap" and len(key) > 1:
        i = min(i, len(key) - 2)
        return key[:i] + key[i + 1] + key[i] + key[i + 2 :]
    if how == "upper":
        return key[:i] + key[i].swapcase() + key[i + 1 :]
    if how == "plural":
        return key + "s"
    if how == "space":
        return key + " "
    if how == "dash":
        return key.replace("_", "-") if "_" in key else key + "-"
    return key[:i] + key[i] + key[i:]


@st.composite
def a_path(draw: Any, document: dict[str, Any], *, leaves: bool = False) -> Path_:
    paths = [
        path for path, value in walk(document) if not leaves or not isinstance(value, (dict, list))
    ]
    return draw(st.sampled_from(paths))


@st.composite
def dropped(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """A section, or any key or item, left out."""
    if draw(st.booleans()):
        path: Path_ = (draw(st.sampled_from(list(document))),)
    else:
        path = draw(a_path(document))
    return Case(label=f"{label}: no {dotted(path)}", data=render(drop(document, path)))


@st.composite
def wrong_type(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """A value of another type (or an edge value of the same) at a random path."""
    path = draw(a_path(document))
    value = draw(WRONG_VALUES)
    return Case(
        label=f"{label}: {dotted(path)} = {value!r}", data=render(put(document, path, value))
    )


@st.composite
def unknown_key(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """A key a typo away from a real one, beside it or instead of it."""
    mappings = [(), *(path for path, value in walk(document) if isinstance(value, dict) and value)]
    at = draw(st.sampled_from(mappings))
    changed = copy.deepcopy(document)
    mapping = changed
    for part in at:
        mapping = mapping[part]
    key = draw(st.sampled_from(list(mapping)))
    wrong = typo(str(key), draw)
    if wrong in mapping:
        wrong += "x"
    if draw(st.booleans()):
        mapping[wrong] = mapping.pop(key)
    else:
        mapping[wrong] = copy.deepcopy(mapping[key])
    return Case(label=f"{label}: {dotted((*at, wrong))}", data=render(changed))


@st.composite
def bad_bytes(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """The bytes broken: a control character, bytes that are no UTF-8, byte-order marks,
    CRLF or lone CR line ends, tabs, the file cut short, a byte changed."""
    data = render(document)
    at = draw(st.integers(0, len(data)))
    how = draw(
        st.sampled_from(
            [
                "control",
                "not-utf8",
                "bom",
                "crlf",
                "bom+crlf",
                "cr",
                "tab",
                "cut",
                "flip",
                "nul-end",
            ]
        )
    )
    must_fail = how in ("control", "not-utf8", "nul-end")
    if how == "control":
        char = draw(CONTROL).encode()
        data = data[:at] + char + data[at:]
    elif how == "not-utf8":
        data = data[:at] + draw(BAD_BYTES) + data[at:]
    elif how == "bom":
        bom = draw(BOMS)
        must_fail = not bom.startswith(b"\xef")  # a UTF-16 mark before UTF-8 text
        data = bom + data
    elif how == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif how == "bom+crlf":
        data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    elif how == "cr":
        data = data.replace(b"\n", b"\r")
    elif how == "tab":
        data = data.replace(b"\n  ", b"\n\t", 1)
    elif how == "cut":
        data = data[:at]
    elif how == "flip":
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    else:
        data = data + b"\x00"
    return Case(label=f"{label}: {how} at byte {at}", data=data, must_fail=must_fail)


def nested(depth: int, style: str) -> str:
    """``depth`` levels of flow lists or mappings around a 1."""
    if style == "list":
        return "[" * depth + "1" + "]" * depth
    return "{a: " * depth + "1" + "}" * depth


@st.composite
def deep(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """A value nested ``depth`` levels deep at a random path; past MAX_DEPTH it must fail."""
    path = draw(a_path(document))
    depth = draw(st.sampled_from([5, 20, MAX_DEPTH - 10, MAX_DEPTH + 1, 200, 1001, 20_000]))
    style = draw(st.sampled_from(["list", "mapping"]))
    return Case(
        label=f"{label}: {dotted(path)} nested {depth} deep",
        data=render(put(document, path, RAW), nested(depth, style)),
        must_fail=len(path) + depth > MAX_DEPTH + 1,
        says=("nested too deeply",) if len(path) + depth > MAX_DEPTH + 1 else (),
    )


def bomb(levels: int, width: int) -> str:
    """Billion laughs in flow style: each level a list of ``width`` aliases of the one before."""
    parts = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        parts.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


@st.composite
def alias_bomb(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """Anchors and aliases that expand to ``width ** levels`` values at a random path."""
    path = draw(a_path(document))
    levels, width = draw(st.integers(2, 12)), draw(st.integers(2, 10))
    values = sum(width**level for level in range(1, levels + 1))
    big = values > MAX_VALUES
    return Case(
        label=f"{label}: {dotted(path)} expands to {values:,} values",
        data=render(put(document, path, RAW), bomb(levels, width)),
        must_fail=big,
        says=("through aliases",) if big else (),
    )


@st.composite
def absurd(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """Sizes beyond reason: epochs, a grid of 10^9 runs, a prompt of megabytes, or a huge
    number anywhere."""
    how = draw(st.sampled_from(["epochs", "grid", "prompt", "number", "values"]))
    if how == "epochs":
        epochs = draw(st.sampled_from([MAX_EPOCHS + 1, 10**7, 10**12, 10**100]))
        where = draw(st.sampled_from(["controls", "variables", "run"]))
        if where == "variables":
            document = put(document, ("variables", "epochs"), [1, epochs])
        elif where == "run" and "runs" in document:
            document = put(document, ("runs", 0, "parameters", "epochs"), epochs)
        else:
            document = put(document, ("controls", "epochs"), epochs)
        return Case(
            label=f"{label}: {epochs} epochs in {where}",
            data=render(document),
            must_fail=True,
            says=(f"from 1 to {MAX_EPOCHS}",),
        )
    if how == "grid":
        axes = draw(st.integers(5, 9))
        variables = {f"axis{i}": list(range(10)) for i in range(axes)}
        variables["lora_rank"] = list(range(1, 11))
        document = (
            drop(put(document, ("variables",), variables), ("runs",))
            if "runs" in document
            else put(document, ("variables",), variables)
        )
        return Case(
            label=f"{label}: a grid of 10^{axes + 1} runs",
            data=render(document),
            must_fail=True,
            says=(f"at most {MAX_RUNS:,}",),
        )
    if how == "prompt":
        size = draw(st.sampled_from([MAX_TEXT // 2, MAX_TEXT + 1, 1_000_000, 10_000_000]))
        key = draw(st.sampled_from(["prompt", "system_prompt"]))
        document = put(document, ("controls", key), RAW)
        return Case(
            label=f"{label}: controls.{key} of {size:,} characters",
            data=render(document, '"{input} ' + "x" * size + '"'),
            must_fail=size > MAX_TEXT,
            says=(f"controls.{key}", f"{MAX_TEXT:,}") if size > MAX_TEXT else (),
        )
    if how == "values":
        count = draw(st.sampled_from([MAX_VALUES // 2, MAX_VALUES + 1, 3 * MAX_VALUES]))
        document = put(document, ("controls", "rows"), RAW)
        big = count > MAX_VALUES
        return Case(
            label=f"{label}: a list of {count:,} values",
            data=render(document, "[" + ", ".join(["1"] * count) + "]"),
            must_fail=big,
            says=(f"more than {MAX_VALUES} values",) if big else (),
        )
    path = draw(a_path(document, leaves=True))
    number = draw(st.sampled_from([10**7, 10**9, 2**31, 2**64, 10**30, 10**400, 1e300, -(10**9)]))
    return Case(
        label=f"{label}: {dotted(path)} = {number}", data=render(put(document, path, number))
    )


PATH_KEYS = (
    ("models", "base", 0, "path"),
    ("data", "training", "path"),
    ("experiment", "dir"),
    ("evaluation", "tasks", 0, "script"),
)


@st.composite
def long_path(draw: Any, label: str, document: dict[str, Any]) -> Case:
    """A path the file system cannot hold: a name over MAX_PATH_PART bytes, or a whole path
    over PATH_MAX (4096) in short names."""
    path = draw(st.sampled_from(PATH_KEYS))
    how = draw(st.sampled_from(["name", "total", "unicode"]))
    if how == "name":
        size = draw(st.sampled_from([MAX_PATH_PART + 1, 300, 5000]))
        value, says = "a" * size, (f"at most {MAX_PATH_PART}",)
    elif how == "unicode":  # 100 characters, 300 bytes
        value, says = "é" * 150, (f"at most {MAX_PATH_PART}",)
    else:
        value, says = "ab/" * draw(st.sampled_from([1400, 3000])) + "x", (f"{MAX_PATH:,}",)
    return Case(
        label=f"{label}: {dotted(path)} {how}",
        data=render(put(document, path, f"{ROOT}/{value}")),
        must_fail=True,
        says=(dotted(path), *says),
    )


MUTATIONS: tuple[Callable[..., st.SearchStrategy[Case]], ...] = (
    dropped,
    wrong_type,
    unknown_key,
    bad_bytes,
    deep,
    alias_bomb,
    absurd,
    long_path,
)


@st.composite
def generated(draw: Any) -> Case:
    """A document of either format, broken by one mutation (or, now and then, two)."""
    label, document = draw(documents())
    mutation = draw(st.sampled_from(MUTATIONS))
    return draw(mutation(label, document))


# --- hand-written cases ---------------------------------------------------------------------

BASE = """\
experiment:
  name: demo
tools:
  preparation: torchtune
  evaluation: inspect
variables:
  lora_rank: [4, 8]
controls:
  epochs: 1
  batch_size: 4
  dataset_type: chat_completion
  prompt: "Capitalize: {input}"
models:
  base:
    - name: smol
      path: models/smol
data:
  training:
    path: data/words.json
evaluation:
  tasks:
    - name: capitalization
      script: tasks/capitalization.py
      dataset: same
"""


def _with(old: str, new: str) -> bytes:
    assert old in BASE, old
    return BASE.replace(old, new, 1).encode()


def _hand_written() -> list[Case]:
    long = "a" * 300
    grid = "".join(f"  axis{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(8))
    runs = "".join(
        f"  - {{name: r{i}, model: smol, parameters: {{lora_rank: 4}}}}\n"
        for i in range(MAX_RUNS + 1)
    )
    return [
        Case(label="the base file", data=BASE.encode()),
        Case(label="empty", data=b"", must_fail=True, says=("empty",)),
        Case(label="only a comment", data=b"# nothing\n", must_fail=True),
        Case(label="only ---", data=b"---\n", must_fail=True),
        Case(label="a list", data=b"- a\n- b\n", must_fail=True, says=("mapping",)),
        Case(label="a scalar", data=b"hello\n", must_fail=True, says=("mapping",)),
        Case(label="two documents", data=BASE.encode() + b"---\na: 1\n", must_fail=True),
        Case(label="unclosed flow", data=_with("[4, 8]", "[4, 8"), must_fail=True),
        Case(label="bad indentation", data=_with("  epochs: 1", "   epochs: 1"), must_fail=True),
        Case(label="tab indentation", data=_with("  epochs: 1", "\tepochs: 1"), must_fail=True),
        Case(
            label="duplicate section",
            data=BASE.encode() + b"controls: {epochs: 2}\n",
            must_fail=True,
            says=("controls",),
        ),
        Case(
            label="duplicate key",
            data=_with("  epochs: 1", "  epochs: 1\n  epochs: 2"),
            must_fail=True,
            says=("controls.epochs",),
        ),
        Case(
            label="python tag",
            data=_with("name: demo", 'name: !!python/object/apply:os.system ["true"]'),
            must_fail=True,
        ),
        Case(label="custom tag", data=_with("epochs: 1", "epochs: !int 1"), must_fail=True),
        Case(label="undefined alias", data=_with("epochs: 1", "epochs: *nope"), must_fail=True),
        Case(
            label="anchor twice",
            data=_with("epochs: 1", "epochs: &a 1\n  batch: &a 2"),
            must_fail=True,
        ),
        Case(label="recursive alias", data=_with("[4, 8]", "&r [4, *r]"), must_fail=True),
        Case(
            label="merge key",
            data=_with("controls:\n", "defaults: &d {seed: 1}\ncontrols:\n  <<: *d\n"),
            must_fail=True,
        ),
        Case(
            label="billion laughs",
            data=_with("[4, 8]", bomb(9, 10)),
            must_fail=True,
            says=("through aliases",),
        ),
        Case(
            label="deep flow nesting",
            data=_with("[4, 8]", nested(100_000, "list")),
            must_fail=True,
            says=("nested too deeply",),
        ),
        Case(
            label="deep block nesting",
            data=_with(
                "  epochs: 1",
                "  epochs: 1\n  deep:\n"
                + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
                + "  " * (MAX_DEPTH + 7)
                + "1",
            ),
            must_fail=True,
            says=("nested too deeply",),
        ),
        Case(
            label="10^7 epochs",
            data=_with("epochs: 1", "epochs: 10000000"),
            must_fail=True,
            says=("controls.epochs", f"from 1 to {MAX_EPOCHS}"),
        ),
        Case(
            label="1e7 epochs (a float)",
            data=_with("epochs: 1", "epochs: 1e7"),
            must_fail=True,
            says=("controls.epochs",),
        ),
        Case(
            label="infinite epochs",
            data=_with("epochs: 1", "epochs: .inf"),
            must_fail=True,
            says=("controls.epochs",),
        ),
        Case(
            label="a grid of 10^9 runs",
            data=_with("  lora_rank: [4, 8]\n", grid + "  lora_rank: [4, 8, 16, 32, 64]\n"),
            must_fail=True,
            says=(f"at most {MAX_RUNS:,}",),
        ),
        Case(
            label=f"{MAX_RUNS + 1:,} explicit runs",
            data=BASE.encode() + b"runs:\n" + runs.encode(),
            must_fail=True,
            says=(f"at most {MAX_RUNS:,}",),
        ),
        Case(
            label="a prompt of 10 MB",
            data=_with('"Capitalize: {input}"', '"{input} ' + "x" * 10_000_000 + '"'),
            must_fail=True,
            says=("controls.prompt", f"{MAX_TEXT:,}"),
        ),
        Case(
            label="a file over the byte limit",
            data=BASE.encode() + b"# " + b"x" * (MAX_BYTES + 10) + b"\n",
            must_fail=True,
            says=(f"more than {MAX_BYTES:,} bytes",),
        ),
        Case(
            label="too many values",
            data=_with("[4, 8]", "[" + ", ".join(["4"] * (MAX_VALUES + 1)) + "]"),
            must_fail=True,
            says=(f"more than {MAX_VALUES} values",),
        ),
        Case(
            label="a key of 100,000 characters",
            data=_with("  epochs: 1", f"  {'k' * 100_000}: 1\n  epochs: 1"),
            must_fail=True,
        ),
        Case(
            label="a name part too long",
            data=_with("path: models/smol", f"path: models/{long}"),
            must_fail=True,
            says=("models.base[0].path", f"at most {MAX_PATH_PART}"),
        ),
        Case(
            label="a directory too long in all",
            data=_with("name: demo", "name: demo\n  dir: " + "ab/" * 3000 + "x"),
            must_fail=True,
            says=("experiment.dir", f"at most {MAX_PATH:,}"),
        ),
        Case(
            label="a task script path too long in all",
            data=_with("script: tasks/capitalization.py", "script: " + "ab/" * 3000 + "x.py"),
            must_fail=True,
            says=("evaluation.tasks[0].script",),
        ),
        Case(
            label="an experiment file name too long",
            data=BASE.encode(),
            name="a" * 300 + ".yaml",
            must_fail=True,
            line=False,
        ),
        Case(
            label="NUL",
            data=_with("name: demo", "name: de\x00mo"),
            must_fail=True,
            says=("U+0000",),
        ),
        Case(label="ESC", data=_with("name: demo", "name: de\x1bmo"), must_fail=True),
        Case(label="C1 control", data=_with("name: demo", "name: de\x85mo")),
        Case(
            label="latin-1",
            data=_with("name: demo", "name: demo").replace(b"Capitalize", b"Caf\xe9"),
            must_fail=True,
            says=("UTF-8",),
        ),
        Case(label="UTF-16", data=BASE.encode("utf-16"), must_fail=True),
        Case(label="BOM and CRLF", data=b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode()),
        Case(label="a lone CR", data=BASE.replace("\n", "\r").encode()),
        Case(
            label="an escaped lone surrogate",
            data=_with('"Capitalize: {input}"', '"Capitalize \\ud800: {input}"'),
        ),
        Case(
            label="an escaped NUL in a path",
            data=_with("path: models/smol", 'path: "models/sm\\0ol"'),
            must_fail=True,
            says=("models.base[0].path",),
        ),
        Case(
            label="an unknown home folder",
            data=_with("path: models/smol", "path: ~no-such-user-here/smol"),
            must_fail=True,
            says=("models.base[0].path",),
        ),
        Case(
            label="a mapping key",
            data=_with("  epochs: 1", "  ? [a, b]\n  : 1\n  epochs: 1"),
            must_fail=True,
        ),
        Case(label="a null key", data=_with("  epochs: 1", "  ~: 1\n  epochs: 1"), must_fail=True),
        Case(
            label="models as a string",
            data=_with("  base:\n    - name: smol\n      path: models/smol\n", "  base: smol\n"),
            must_fail=True,
            says=("models.base",),
        ),
        Case(
            label="no models",
            data=_with("models:\n  base:\n    - name: smol\n      path: models/smol\n", ""),
            must_fail=True,
            says=("models",),
        ),
        Case(
            label="a data file that is a folder",
            data=_with("path: data/words.json", "path: data"),
            must_fail=True,
            says=("data.training.path",),
        ),
        Case(
            label="a model folder that is a file",
            data=_with("path: models/smol", "path: data/words.json"),
            must_fail=True,
            says=("models.base[0].path",),
        ),
        Case(
            label="the experiment file as its task",
            data=_with("script: tasks/capitalization.py", "script: experiment.yaml"),
            must_fail=True,
        ),
        Case(
            label="a huge seed",
            data=_with("epochs: 1", "epochs: 1\n  seed: 100000000000000000000000000"),
            must_fail=True,
            says=("controls.seed", "2,147,483,647"),
        ),
        Case(
            label="lr nan",
            data=_with("epochs: 1", "epochs: 1\n  lr: .nan"),
            must_fail=True,
            says=("controls.lr", "finite"),
        ),
        Case(
            label="a huge model size",
            data=_with("path: models/smol", "path: models/smol\n      size_gb: 1e308"),
            must_fail=True,
            says=("models.base[0].size_gb", f"{MAX_SIZE_GB:,}"),
        ),
        Case(
            label="an infinite model size",
            data=_with("path: models/smol", "path: models/smol\n      size_gb: .inf"),
            must_fail=True,
            says=("models.base[0].size_gb",),
        ),
        Case(
            label="batch size 10^9",
            data=_with("batch_size: 4", "batch_size: 1000000000"),
            must_fail=True,
            says=("controls.batch_size",),
        ),
    ]


HAND_WRITTEN: tuple[Case, ...] = tuple(_hand_written())
"""Cases a generator rarely hits, each with what its answer must be."""
