"""``cruijff clean``: free the disk that model weights fill, keeping every result."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option


def _size(count: float) -> str:
    """Bytes as a person reads them: ``512 B``, ``2.5 GB``."""
    if count < 1000:
        return f"{count:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        count /= 1000
        if count < 1000 or unit == "TB":
            break
    return f"{count:.1f} {unit}"


@click.command()
@experiment_argument
@click.option(
    "--checkpoints",
    "mode",
    flag_value="checkpoints",
    help="Remove the merged models' weights of epochs no evaluation still needs "
    "(adapters, metrics, configs, logs and results stay).",
)
@click.option(
    "--all-weights",
    "mode",
    flag_value="all-weights",
    help="Remove every checkpoint's weights, adapters too (results stay).",
)
@click.option("--keep-last", is_flag=True, help="Keep each run's last epoch.")
@click.option("--dry-run", is_flag=True, help="List what would go (the default without --yes).")
@click.option("-y", "--yes", is_flag=True, help="Remove them.")
@json_option
@click.pass_obj
def command(
    app: App,
    experiment: Path,
    mode: str | None,
    keep_last: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Free disk in EXPERIMENT: remove model weights that no evaluation needs any more.

    Lists what would be removed, and how many bytes, unless --yes. Job records remember what
    was cleaned: `cruijff status` and `cruijff analyze` work as before, and a `cruijff run` that
    would need removed weights says which run and epoch to train again.
    """
    from cruijff import clean, orchestrator
    from cruijff.cli.render import print_json, table
    from cruijff.state import ExperimentState

    if mode is None:
        raise click.UsageError("say what to remove: --checkpoints or --all-weights")
    plan = orchestrator.design(app.manager, experiment)
    records = ExperimentState(plan.experiment.state_dir).records()
    removals = clean.choose(plan, records, mode, keep_last=keep_last)
    total = sum(r.bytes for r in removals)
    act = yes and not dry_run
    freed = clean.remove(plan, removals) if act else 0
    if as_json:
        print_json(
            {
                "removed": act,
                "bytes": freed if act else total,
                "folders": [
                    {
                        "unit": r.unit,
                        "run": r.run,
                        "epoch": r.epoch,
                        "kind": r.kind,
                        "folder": str(r.folder),
                        "files": [str(p) for p in r.files],
                        "bytes": r.bytes,
                    }
                    for r in removals
                ],
            }
        )
        return
    if not removals:
        click.echo("nothing to remove: no finished run's weights are left that may go")
        return
    table(
        ("removed" if act else "would remove") + f" from {plan.experiment.directory}",
        ["run", "epoch", "kind", "files", "size"],
        (
            [r.run, "-" if r.epoch is None else r.epoch, r.kind, len(r.files), _size(r.bytes)]
            for r in removals
        ),
    )
    if act:
        click.echo(f"freed {_size(freed)} in {len(removals)} folders")
    else:
        click.echo(f"{_size(total)} in {len(removals)} folders; --yes removes them")
