"""The training job: ``python -m cruijff_torchtune.launch finetune.yaml --recipe NAME
--finetune lora|full``.

Runs ``tune run`` on the config as it stands, resuming from the last finished epoch when an
earlier attempt was interrupted (torchtune rewrites ``recipe_state/recipe_state.pt`` in place
after every epoch, so each whole one is moved aside to ``recipe_state.kept.pt`` as soon as
torchtune says it is saved: a job killed while the next one is written resumes from it rather
than starting over); then keeps LoRA adapters apart from the merged models (each
adapter pointing at the local base model), checks every epoch's weights (the adapters' alone
where the config keeps only adapters, ``save_adapter_weights_only``), and writes the loss per
step (and the validation loss, where the recipe computes it) to ``metrics.csv``. Extra
``key=value`` arguments are passed on to torchtune as config overrides (retries use them).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from cruijff import rerun
from cruijff_torchtune import outputs
from cruijff_torchtune.components import read_rows

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def saved_epoch(state: Path) -> int | None:
    """The last epoch the recipe state was saved after, or None when there is none or it
    cannot be read (torchtune writes it in place: a job killed while saving leaves it cut)."""
    if not state.exists():
        return None
    import torch  # only here: the job has torch, planning does not need it

    try:
        # mapped, not read: a large model's optimizer state is gigabytes, one number is needed
        saved = torch.load(state, map_location="cpu", weights_only=True, mmap=True)
        return int(saved["epochs_run"]) - 1
    except Exception as error:  # any unreadable state: resume from another, or start over
        print(f"cruijff: cannot read {state} ({type(error).__name__})", flush=True)
        return None


STATE_SAVED = b"Recipe checkpoint of size"  # torchtune's checkpointers log it once it is whole


def state_paths(output_dir: Path) -> tuple[Path, Path]:
    """Where torchtune writes the recipe state, and where the last whole one is kept."""
    folder = output_dir / "recipe_state"
    return folder / "recipe_state.pt", folder / "recipe_state.kept.pt"


def restore_state(output_dir: Path) -> tuple[Path, int | None]:
    """Put the newest readable recipe state where torchtune reads it: the one torchtune wrote
    last when it is whole, else the one kept aside; return its path and epoch."""
    state, kept = state_paths(output_dir)
    last = saved_epoch(state)
    before = saved_epoch(kept)
    if before is not None and (last is None or last < before):
        print(f"cruijff: taking the recipe state kept after epoch {before}", flush=True)
        kept.replace(state)
        return state, before
    return state, last


def run_tune(command: list[str], output_dir: Path) -> int:
    """Run ``tune``, passing its output through to ours, and move each recipe state it saves
    aside once it says it is whole, so that its next in-place write cannot cut it."""
    state, kept = state_paths(output_dir)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = sys.stdout.buffer
    tail = b""
    for chunk in iter(lambda: process.stdout.read1(65536), b""):
        out.write(chunk)
        out.flush()
        seen = tail + chunk
        if STATE_SAVED in seen and state.exists():
            state.replace(kept)
        # progress bars write no newlines: keep enough to find a marker cut across reads
        tail = seen[-len(STATE_SAVED) :] if STATE_SAVED not in seen else b""
    return process.wait()


def resume_overrides(
    output_dir: Path, lora: bool, adapters_only: bool = False, renumbered: bool | None = None
) -> list[str]:
    """The overrides that continue an interrupted run after its last saved epoch: the epoch
    comes from the recipe state itself, whose weights must be whole. ``renumbered`` says
    whether the recipe numbers its steps from 1 again (noted for ``metrics.csv``)."""
    state, epoch = restore_state(output_dir)
    if epoch is None or epoch < 0 or not outputs.complete_epoch(output_dir, epoch, adapters_only):
        if state.exists():
            print(f"cruijff: no whole epoch to resume after in {output_dir}", flush=True)
        return []
    print(f"cruijff: resuming after epoch {epoch} (from {state})", flush=True)
    outputs.record_resume(output_dir, epoch, renumbered)
    overrides = ["resume_from_checkpoint=True"]
    folder = outputs.epoch_dir(output_dir, epoch)
    if lora:
        # torchtune takes the newest epoch folder's adapter, which may be newer than the state
        overrides.append(f"checkpointer.adapter_checkpoint=epoch_{epoch}/adapter_model.pt")
    else:
        # torchtune 0.6.1 looks for a full model's weights in the wrong folder when resuming
        # (upstream #2927); naming them relative to output_dir works
        files = [f"epoch_{epoch}/{path.name}" for path in outputs.model_files(folder)]
        overrides.append(f"checkpointer.checkpoint_files=[{','.join(files)}]")
    return overrides


def start_over(output_dir: Path) -> None:
    """Remove what earlier attempts trained, so that a run asked to run again (``cruijff run
    --only RUN --force``) trains from the start instead of finding its epochs done."""
    print(f"cruijff: running again from the start ({rerun.ENV}=1)", flush=True)
    folders = [*output_dir.glob("epoch_*"), output_dir / "adapters", output_dir / "logs"]
    for path in [*folders, output_dir / "recipe_state"]:
        shutil.rmtree(path, ignore_errors=True)
    (output_dir / outputs.METRICS).unlink(missing_ok=True)


def training_rows(config: dict) -> int:
    """The rows an epoch of this config trains on (``max_samples`` keeps the first ones)."""
    dataset = config["dataset"]
    rows = len(read_rows(dataset["source"], dataset.get("split", "train")))
    if dataset.get("max_samples") is not None:
        rows = min(rows, int(dataset["max_samples"]))
    return rows


def training_steps(config: dict, nproc: int = 1) -> int:
    """Optimizer steps per epoch, as torchtune counts them for this config's data over
    ``nproc`` processes."""
    return outputs.steps_per_epoch(
        training_rows(config),
        *outputs.step_size(config),
        config.get("max_steps_per_epoch"),
        nproc,
    )


def renumbers(recipe: str, nproc: int, config: dict, per_epoch: int) -> bool:
    """Whether the recipe numbers its steps from 1 again when it resumes: torchtune 0.6.1's
    LoRA single-device recipe (and the validating one built on it) does, unless
    ``max_steps_per_epoch`` cuts its epochs; its other recipes continue the count."""
    single_lora = nproc <= 1 and (
        recipe == "lora_finetune_single_device" or recipe.endswith("lora_single_device.py")
    )
    cap = config.get("max_steps_per_epoch")
    natural = outputs.steps_per_epoch(
        training_rows(config), *outputs.step_size(config), None, nproc
    )
    return single_lora and not (cap and cap < natural)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--nproc", type=int, default=1)
    # decided once, at plan time (resolve.finetune), never from the recipe's name here
    parser.add_argument("--finetune", choices=("lora", "full"), required=True)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_intermixed_args(argv)  # a retry's overrides follow the options
    # the file cruijff wrote (or a user edit validate accepted): PyYAML's C reader is enough
    # for the plain keys read here, and costs a job's start-up nothing next to cruijff's
    config = yaml.load(args.config.read_text(encoding="utf-8"), Loader=_LOADER)
    output_dir = Path(config["output_dir"])
    lora = args.finetune == "lora"
    adapters_only = lora and bool(config.get("save_adapter_weights_only"))
    epochs = int(config["epochs"])
    per_epoch = training_steps(config, args.nproc)
    if rerun.asked():
        start_over(output_dir)

    if epochs - 1 in outputs.finished_epochs(output_dir, adapters_only):
        print(f"cruijff: all {epochs} epochs are already trained", flush=True)
    else:
        command = [sys.executable, "-m", "torchtune._cli.tune", "run"]
        if args.nproc > 1:
            command += ["--nproc_per_node", str(args.nproc)]
        command += [args.recipe, "--config", str(args.config)]
        renumbered = renumbers(args.recipe, args.nproc, config, per_epoch)
        command += resume_overrides(output_dir, lora, adapters_only, renumbered) + args.overrides
        print("cruijff: " + " ".join(command), flush=True)
        code = run_tune(command, output_dir)
        if code != 0:
            return code

    base = config.get("checkpointer", {}).get("checkpoint_dir")
    outputs.separate_adapters(output_dir, Path(base) if base else None)
    broken = [
        epoch
        for epoch in range(epochs)
        if not outputs.complete_epoch(output_dir, epoch, adapters_only)
    ]
    if broken:
        print(f"cruijff: epochs {broken} have no whole checkpoint in {output_dir}", flush=True)
        return 1
    path = outputs.write_metrics(output_dir, per_epoch)
    # the recipe state (the optimizer's too: twice the model) only served resuming
    shutil.rmtree(output_dir / "recipe_state", ignore_errors=True)
    print(f"cruijff: training complete; loss per step in {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
