"""The evaluation job: ``python -m cruijff_inspect.job <cell>/eval_config.yaml
[--together <cell>/eval_config.yaml ...] [--unless-current]``.

``--together`` names the other cells of the same model: the job evaluates them after its own,
in the same process, so torch, transformers and inspect are imported and the model loaded
once; each keeps its own logs and ``results.json``, which says which job evaluated it. Their
own jobs run ``--unless-current``, after this one: they find their results standing and end
at once, or evaluate their cell themselves (one that failed here, or that this job never
reached). A cell's flock (``.cruijff-eval.lock``) keeps two processes off one cell.

Runs a cell through inspect's Python API (``eval_set``, never the CLI and its path quirks)
and writes the cell's ``results.json`` from the log it reads back. Resumable: ``eval_set`` on
the cell's own log folder reuses the samples an interrupted run finished, and SIGTERM (what
``cruijff cancel`` and ``scancel`` send) becomes a KeyboardInterrupt, so inspect closes its log
as ``cancelled`` with every finished sample in it. Offline (no Hub calls), greedy by default,
the batch (``max_connections``) matched to the sample count, the model folder's own chat
template. A LoRA adapter is merged into a copy of its base model's weights in the cell's
``merged/`` folder, evaluated, then removed (:mod:`cruijff_inspect.adapter`). The task scores
with the scorers it makes (a cruijff_kit task builds them from the config's ``scorers``,
through ``config_path``): they are never replaced. Exit code 0 only when the log's status is
``success`` (inspect itself exits 0 on an errored evaluation); 1 on an error, 130 when
interrupted, 2 for an unreadable config.
``--batch-size N`` lowers the batch (a retry after running out of memory).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from cruijff import rerun, warm
from cruijff.fsutil import locked, try_lock, write_atomic, write_json
from cruijff_inspect.collect import cause, collect, location
from cruijff_inspect.results import (
    RESULTS,
    SUCCESS,
    digest,
    fault,
    model_fingerprint,
    read_results,
)
from cruijff_inspect.retry import OOM
from cruijff_inspect.settings import (
    DEFAULT_BATCH,
    JOB_ENV,
    JOB_MODULE,
    TOGETHER,
    UNLESS_CURRENT,
    WARM_HINTS,
    WARM_MODULES,
)

LOCK = ".cruijff-eval.lock"
"""A cell's flock, held by the job that evaluates it: a job evaluating a model's other cells
skips one whose own job holds it, and that job waits while another evaluates its cell."""
MERGED = "merged"
"""The cell's folder for a LoRA adapter merged into its base model, while it is evaluated."""
IDENTITY = ".cruijff-identity"
"""A file beside ``logs/`` with a hash of what the logs were made with: when the settings or
the model change, the old logs move to ``superseded/`` (``eval_set`` refuses a log folder holding
another evaluation's logs) and the evaluation starts afresh."""


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: while inspect's event loop runs, its runner's SIGINT handler cancels
    the evaluation at an await (inspect then closes its log as ``cancelled``, which an
    exception raised at any instruction can miss); before it, a KeyboardInterrupt."""
    if callable(signal.getsignal(signal.SIGINT)):  # Python's handler or asyncio's, not ignored
        signal.raise_signal(signal.SIGINT)
    else:
        raise KeyboardInterrupt


def say(message: str) -> None:
    """A line in the job's log."""
    print(f"[cruijff-inspect] {message}", flush=True)


def identity(config: dict[str, Any], fingerprint: str | None) -> str:
    """What the logs of a cell depend on (not the batch size: it changes no answer). The
    prompts count although inspect does not see them when a task reads them from its
    ``config_path``."""
    keys = ("prompt", "system_prompt", "task_source", "task_args", "scorers", "generate")
    keys += ("limit", "model")
    return digest(json.dumps([{k: config.get(k) for k in keys}, fingerprint], sort_keys=True))


def supersede(directory: Path, log_dir: Path, current: str) -> None:
    """Move the logs of other settings or another model out of ``log_dir``."""
    marker = directory / IDENTITY
    previous = marker.read_text().strip() if marker.exists() else None
    again = rerun.asked()  # asked to run again: nothing of before is reused
    if (again or previous not in (None, current)) and log_dir.exists() and any(log_dir.iterdir()):
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        target, number = directory / "superseded" / stamp, 1
        while target.exists():
            number += 1
            target = directory / "superseded" / f"{stamp}-{number}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(log_dir), str(target))
        why = "asked to run again" if again else "settings or model changed"
        say(f"{why}: earlier logs moved to {target}")
    write_atomic(marker, current + "\n")


def load_task(source: dict[str, Any], args: dict[str, Any]) -> tuple[Any, Any]:
    """The inspect Task of a cell, and the task file's module (None for a registered task).

    A task file is imported here, in the job, never at design time.
    """
    if "script" in source:
        path = Path(source["script"])
        name = "cruijff_task_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot import the task file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))  # a task file may import its neighbours
        spec.loader.exec_module(module)
        return getattr(module, source["function"])(**args), module
    # the registry eval_set itself uses for "package/task" names; it imports the package
    from inspect_ai._eval.registry import task_create

    return task_create(source["registered"], **args), None


def chat_template_note(model: dict[str, Any]) -> None:
    if model.get("provider") != "hf" or model.get("args", {}).get("chat_template"):
        return
    folder = Path(model["path"])
    tokenizer = folder / "tokenizer_config.json"
    has = (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists()
    if not has and tokenizer.exists():
        has = "chat_template" in json.loads(tokenizer.read_text(encoding="utf-8"))
    if not has:
        say(f"{folder} has no chat template: prompts are sent as plain 'role: content' lines")


def evaluate(config: dict[str, Any], log_dir: Path, merged: dict, merge_into: Path) -> Any:
    """Run the cell through ``eval_set`` and return its log (header). An adapter is merged
    into its base once per job (``merged``), in ``merge_into`` (the job's own cell's folder,
    which it holds): cells of one model then share inspect's loaded model, which it keeps for
    the same model arguments."""
    from inspect_ai import eval_set

    from cruijff_inspect import mock  # noqa: F401 -- registers the offline provider

    task, _ = load_task(config["task_source"], dict(config.get("task_args") or {}))
    samples = len(task.dataset)
    limit = config.get("limit")
    if limit:
        samples = min(samples, int(limit))
    batch = max(1, min(int(config.get("batch_size") or DEFAULT_BATCH), samples))
    model = config["model"]
    args = dict(model.get("args") or {})
    metadata = dict(config.get("metadata") or {})
    if model.get("adapter"):
        from cruijff_inspect.adapter import merge

        key = (model["path"], model["adapter"])
        if key not in merged:
            say(f"merging the LoRA adapter {model['adapter']} into {model['path']}")
            merged[key] = merge(Path(model["path"]), Path(model["adapter"]), merge_into)
        args["model_path"] = str(merged[key])
        metadata.update(adapter=model["adapter"], base_model_path=model["path"])
    say(f"evaluating {model['name']} ({model.get('adapter') or model['path']}) on {config['task']}")
    say(f"{samples} samples, batch {batch}")
    chat_template_note(model)
    _, logs = eval_set(
        tasks=[task],
        log_dir=str(log_dir),
        model=model["name"],
        model_args=args,
        max_connections=batch,
        limit=limit,
        metadata=metadata or None,
        # cruijff retries failed jobs itself (`cruijff run`): one attempt here
        retry_attempts=1,
        retry_immediate=False,
        display="plain",
        log_level="warning",
        ctl_server=False,  # a batch job: no client asks it anything, so no server
        **dict(config.get("generate") or {}),
    )
    return logs[0]


def tidy_logs(log_dir: Path, kept: Path) -> None:
    """Remove logs the successful one supersedes (an attempt killed outright leaves a
    ``started`` log that inspect keeps, not knowing whether its writer still runs; cruijff
    never runs a cell twice at once) and refresh the folder's manifest."""
    from inspect_ai.log import read_eval_log, write_log_dir_manifest

    task_id = read_eval_log(str(kept), header_only=True).eval.task_id
    removed = False
    for path in log_dir.glob("*.eval"):
        if path == kept:
            continue
        header = read_eval_log(str(path), header_only=True)
        if header.eval.task_id == task_id and header.status != SUCCESS:
            path.unlink()
            removed = True
    if removed:
        write_log_dir_manifest(str(log_dir))


def evaluate_cell(config_path: Path, batch: int | None, merged: dict, merge_into: Path) -> int:
    """Evaluate the cell of ``config_path`` and write its ``results.json``; its exit code (0 on
    success, 1 on an error, 130 when interrupted, 2 for an unreadable config)."""
    try:
        text = config_path.read_text(encoding="utf-8")
        config = yaml.safe_load(text)
        model_path = Path(config["model"]["path"])
        adapter_path = config["model"].get("adapter")
    except (OSError, yaml.YAMLError, TypeError, KeyError, AttributeError) as error:
        print(f"cannot read the evaluation config {config_path}: {error}", file=sys.stderr)
        return 2
    directory = config_path.parent
    results_path = directory / config.get("results", "results.json")
    results_path.unlink(missing_ok=True)  # a rerun: no stale verdict while it runs
    log_dir = directory / config.get("log_dir", "logs")
    folders = (model_path, Path(adapter_path)) if adapter_path else (model_path,)
    fingerprint = model_fingerprint(*folders)
    if batch:
        config["batch_size"] = batch
    keys = ("experiment", "unit", "run", "task", "vis_label", "source", "epoch")
    base = {key: config.get(key) for key in keys}
    base.update(
        model=config["model"]["name"],
        model_path=str(model_path),
        model_fingerprint=fingerprint,
        config_digest=digest(text),
    )
    if adapter_path:
        base["adapter_path"] = adapter_path
    try:
        supersede(directory, log_dir, identity(config, fingerprint))
        log = evaluate(config, log_dir, merged, merge_into)
        results = collect(log, base, directory)
    except (KeyboardInterrupt, SystemExit):
        stopped = "interrupted: running it again continues from the finished samples"
        say(stopped)
        write_json(results_path, {**base, "status": "cancelled", "cause": stopped})
        return 130
    except Exception as error:
        traceback.print_exc()
        reason = f"{type(error).__name__}: {error}".strip().splitlines()[0]
        write_json(results_path, {**base, "status": "error", "cause": reason})
        return 1
    write_json(results_path, results)
    if log.status != SUCCESS:
        say(f"failed: {cause(log)} (log: {location(log)})")
        return 1
    tidy_logs(log_dir, location(log))
    shown = ", ".join(f"{k} {v:.4g}" for k, v in results["metrics"].items() if isinstance(v, float))
    say(f"done: {results['samples']} samples in {results['duration_s']} s; {shown}")
    return 0


def standing(directory: Path) -> bool:
    """Whether the cell's ``results.json`` stands (a success, under its current settings and
    model): read without inspect, so a cell another job evaluated costs a second."""
    results = read_results(directory)
    return results is not None and not fault(directory, results)


def evaluate_with(
    config_path: Path, lead: str | None, batch: int | None, merged: dict, merge_into: Path
) -> int:
    """Evaluate another cell of this job's model, unless its own job holds it now or its
    results stand; note in its ``results.json`` which job evaluated it, and in how long. A
    problem is that cell's alone: it is reported, and its own job evaluates it again."""
    directory = config_path.parent
    try:
        fd = try_lock(directory / LOCK)
    except OSError as error:
        say(f"{directory}: left to its own job ({error})")
        return 1
    if fd is None:
        say(f"{directory}: its own job evaluates it now")
        return 0
    try:
        if standing(directory):
            say(f"{directory}: already evaluated")
            return 0
        began = time.monotonic()
        code = evaluate_cell(config_path, batch, merged, merge_into)
        results = read_results(directory)
        if code != 2 and results is not None:  # 2: its config is unreadable, nothing was written
            seconds = round(time.monotonic() - began, 1)
            write_json(directory / RESULTS, {**results, "evaluated_by": lead, "job_s": seconds})
        return code
    except Exception as error:  # one cell's trouble, not the job's
        say(f"{directory}: left to its own job ({type(error).__name__}: {error})")
        return 1
    finally:
        os.close(fd)


def model_code(config_path: Path) -> list[str]:
    """The transformers module of the cell's model type (``modeling_llama``): what a warm
    process imports before it forks this cell's worker. Empty when it cannot be told."""
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        folder = Path(config["model"]["path"])
        kind = json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"]
    except (OSError, ValueError, yaml.YAMLError, TypeError, KeyError):
        return []
    if not isinstance(kind, str) or not kind.replace("_", "").isalnum():
        return []
    return [f"transformers.models.{kind}.modeling_{kind}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {JOB_MODULE}",
        description="Evaluate a cell (its eval_config.yaml) and write its results.json.",
    )
    parser.add_argument("config", type=Path, help="the cell's eval_config.yaml")
    parser.add_argument("--batch-size", type=int, help="at most N samples at once (a retry)")
    parser.add_argument(
        TOGETHER,
        nargs="+",
        type=Path,
        default=[],
        metavar="CONFIG",
        help="then these cells of the same model, loaded once",
    )
    parser.add_argument(
        UNLESS_CURRENT,
        action="store_true",
        help="leave the cell as it is where its results stand (another job evaluated it)",
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    # before the slow imports, so an early SIGTERM is a clean interruption too
    signal.signal(signal.SIGTERM, _interrupt)
    for key, value in JOB_ENV.items():
        os.environ.setdefault(key, value)
    config_path = args.config.resolve()
    directory = config_path.parent
    if not config_path.is_file():
        print(f"cannot read the evaluation config {config_path}: no such file", file=sys.stderr)
        return 2
    # under the local scheduler, in a fork of a process that imported torch, transformers and
    # inspect already (None: not offered, or not to be had: evaluated here)
    hints = [*WARM_HINTS, *model_code(config_path)]
    served = warm.call(f"{JOB_MODULE}:main", argv, WARM_MODULES, hints)
    if served is not None:
        return served
    merged: dict[Any, Path] = {}  # (base, adapter) -> the folder they are merged in, once
    merge_into = directory / MERGED
    try:
        # held to the end, for the others' evaluations use this cell's merged folder; it waits
        # while another process evaluates this cell
        with locked(directory / LOCK):
            if args.unless_current and standing(directory) and not rerun.asked():
                say(f"its results stand ({RESULTS}): evaluated with the other cells of its model")
                return 0
            code = evaluate_cell(config_path, args.batch_size, merged, merge_into)
            own = read_results(directory) or {}
            if args.together and OOM.search(str(own.get("cause", ""))):
                say("out of memory: the other cells of this model are left to their own jobs")
                return code
            began, unit = time.monotonic(), own.get("unit")
            for other in args.together:
                if evaluate_with(other.resolve(), unit, args.batch_size, merged, merge_into) == 130:
                    return 130
            if args.together and own:
                spent = round(time.monotonic() - began, 1)
                write_json(directory / RESULTS, {**own, "together_s": spent})
            return code
    except KeyboardInterrupt:  # a SIGTERM between cells (inside one, the cell records it)
        say("interrupted")
        return 130
    finally:
        shutil.rmtree(merge_into, ignore_errors=True)  # rebuilt when needed


if __name__ == "__main__":
    sys.exit(main())
