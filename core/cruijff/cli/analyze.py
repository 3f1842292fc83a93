"""``cruijff analyze``: answer the experiment's question from the files on disk."""

from __future__ import annotations

from pathlib import Path

import click

from cruijff.cli import App, experiment_argument, json_option, scheduler_option


@click.command()
@experiment_argument
@scheduler_option
@json_option
@click.pass_obj
def command(app: App, experiment: Path, scheduler: str | None, as_json: bool) -> None:
    """Analyze EXPERIMENT: every metric with its 95% interval, every fine-tuned cell against
    its base model sample by sample (paired bootstrap, McNemar, Holm), seeds pooled, plots,
    and a static report in <experiment dir>/analysis/ (report.html, summary.md, CSVs).

    Reads only the experiment file and its directory (no network, no server); cells that have
    not finished are listed as missing. Unchanged inputs rewrite no byte.
    """
    from cruijff import orchestrator
    from cruijff.analysis.analyze import to_json
    from cruijff.cli.render import print_json, show_analysis

    plan, analysis, path = orchestrator.analyze(app.manager, experiment, scheduler=scheduler)
    if as_json:
        print_json(to_json(analysis, path))
        return
    show_analysis(analysis, plan.experiment, path)
