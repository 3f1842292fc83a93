"""Writing ``analysis/``: ``report.html`` (self-contained: images embedded as data URIs, no
JavaScript, nothing fetched), ``summary.md`` (the same content for terminals and notebooks,
images linked), ``results.csv`` (a row per cell and metric), ``comparisons.csv`` and
``plots/*.png``.

Nothing written depends on the clock or the machine, and a file is replaced (atomically) only
when its bytes change, so re-running on unchanged inputs touches nothing.
"""

from __future__ import annotations

import base64
import csv
import functools
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from cruijff.analysis import plots, tables
from cruijff.analysis.model import Analysis, Section
from cruijff.fsutil import write_atomic
from cruijff.records import Experiment

PLOTS = "plots"
"""The folder of the charts, inside the analysis folder."""


def write(
    analysis: Analysis,
    experiment: Experiment,
    directory: Path,
    *,
    environment: Mapping[str, Any],
) -> Path:
    """Write the report of ``analysis`` into ``directory`` and return ``report.html``'s path.

    ``environment`` is what produced the numbers (``git_commit``, ``data_file``,
    ``data_sha256``, ``packages``: job -> package -> version); what it holds is shown.
    Charts no longer drawn are removed from ``plots/``; other files there are left alone.
    """
    charts, failed = plots.render(analysis, experiment)
    sections = [_section(index, section) for index, section in enumerate(analysis.sections, 1)]
    images = {chart.name: chart.png for chart in charts}
    for section in sections:
        images.update({image["file"]: image["png"] for image in section["images"]})
    folder = directory / PLOTS
    for name, png in images.items():
        _put(folder / name, png)
    if folder.is_dir():
        for stale in sorted(folder.glob("*.png")):
            if stale.name not in images:
                stale.unlink()
    context = _context(analysis, experiment, environment, charts, sections)
    context["plot_notes"] = failed
    summary = re.sub(r"\n{3,}", "\n\n", _render("summary.md.j2", context)).strip() + "\n"
    _put(directory / "summary.md", summary)
    _put(directory / "results.csv", results_csv(analysis, experiment))
    _put(directory / "comparisons.csv", comparisons_csv(analysis))
    report = directory / "report.html"
    _put(report, _render("report.html.j2", context))
    return report


# --- files ----------------------------------------------------------------------------------


def _put(path: Path, content: str | bytes) -> None:
    """Write ``content`` atomically unless ``path`` already holds exactly it."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_atomic(path, content)


# --- CSV ------------------------------------------------------------------------------------


def _csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_plain(item) for item in row] for row in rows])
    return buffer.getvalue()


def _plain(item: Any) -> str:
    """A CSV field: floats in full (shortest round-trip form), None empty, booleans lower."""
    if item is None:
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        return repr(item)
    return str(item)


def results_csv(analysis: Analysis, experiment: Experiment) -> str:
    """One row per cell and metric: the run, its swept parameters, where and what was
    measured, the value with its interval, the floor and ceiling flags, and the log."""
    fixed = ["run", "label", "task", "epoch", "metric", "value", "n", "ci_low", "ci_high"]
    fixed += ["ci_method", "floor", "ceiling", "log"]
    keys = tables.swept_variables(experiment)
    # a swept key named like a fixed column (``metric``) is prefixed rather than lost
    swept = [f"param.{key}" if key in fixed else key for key in keys]
    rows = []
    for cell in analysis.cells:
        run = tables.find_run(experiment, cell.run)
        values = [tables.parameter(run, key) if run else None for key in keys]
        rows.append(
            [
                cell.run,
                *[tables.value(item) if item is not None else None for item in values],
                cell.label or cell.run,
                cell.task,
                cell.epoch,
                cell.metric,
                cell.value,
                cell.n,
                cell.ci_low,
                cell.ci_high,
                cell.ci_method,
                cell.floor,
                cell.ceiling,
                cell.log,
            ]
        )
    return _csv(["run", *swept, *fixed[1:]], rows)


def comparisons_csv(analysis: Analysis) -> str:
    """One row per comparison with the control, the flipped samples' ids space-separated."""
    columns = ["run", "control", "task", "epoch", "metric", "n", "delta", "ci_low", "ci_high"]
    columns += ["p_value", "p_adjusted", "test", "flips_up", "flips_down"]
    columns += ["flips_up_ids", "flips_down_ids"]
    rows = [
        [
            *(getattr(c, name) for name in columns[:-2]),
            " ".join(c.flips_up_ids),
            " ".join(c.flips_down_ids),
        ]
        for c in analysis.comparisons
    ]
    return _csv(columns, rows)


# --- the templates --------------------------------------------------------------------------


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("cruijff.analysis", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(name: str, context: Mapping[str, Any]) -> str:
    environment = _templates()
    environment.filters["md"] = _markdown_cell
    return environment.get_template(name).render(**context)


def _markdown_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _section(index: int, section: Section) -> dict[str, Any]:
    """A plugin's section, its images named ``section<N>-<name>.png`` in ``plots/`` (unique:
    :func:`.plots.unique`)."""
    images = []
    stems = plots.unique([(plots.safe(name.removesuffix(".png")), name) for name in section.images])
    for stem, (name, png) in zip(stems, section.images.items(), strict=True):
        images.append(
            {
                "file": f"section{index}-{stem}.png",
                "caption": name,
                "png": png,
                "uri": _data_uri(png),
            }
        )
    rows = tuple(
        tuple(tables.NOTHING if v is None else str(v) for v in row) for row in section.rows
    )
    return {
        "title": section.title,
        "plugin": section.plugin,
        "paragraphs": [part.strip() for part in section.text.split("\n\n") if part.strip()],
        "table": tables.Table(tuple(section.columns), rows) if section.columns else None,
        "images": images,
    }


def _context(
    analysis: Analysis,
    experiment: Experiment,
    environment: Mapping[str, Any],
    charts: Sequence[plots.Plot],
    sections: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    meta = experiment.meta
    shown = ("question", "hypothesis")
    details = [
        (str(key), str(item))
        for key, item in meta.items()
        if key not in shown and isinstance(item, (str, int, float)) and str(item)
    ]

    def block(key: str, title: str, text: str, table: tables.Table) -> dict[str, Any]:
        return {"id": key, "title": title, "text": text, "table": table}

    metrics = tables.metrics(analysis)
    ids = plots.unique([(f"results-{plots.safe(metric)}", metric) for metric in metrics])
    results = [
        block(
            key,
            f"Results: {metric}",
            "Value [95% interval] of every run (rows) on every task and epoch (columns); "
            "epochs count from 0. A metric its tool gives without per-sample scores (not a "
            "mean of them) shows its value alone.",
            tables.results(analysis, experiment, metric),
        )
        for key, metric in zip(ids, metrics, strict=True)
    ]
    return {
        "name": experiment.name,
        "question": str(meta.get("question") or ""),
        "hypothesis": str(meta.get("hypothesis") or ""),
        "details": details,
        "counts": {
            "runs": len(experiment.runs),
            "cells": len({(c.run, c.task, c.epoch) for c in analysis.cells}),
            "comparisons": len(analysis.comparisons),
            "missing": len(analysis.missing),
        },
        "verdicts": [
            {
                "where": f"{v.task}, {_at(v.epoch)}, {v.metric}",
                "text": tables.verdict_text(v),
                "best": bool(v.best),
            }
            for v in analysis.verdicts
        ],
        "runs": block("runs", "Runs", "", tables.runs(analysis, experiment)),
        "results": results,
        "comparisons": block(
            "comparisons",
            "Against the control",
            "Each cell against the control of its base model on the same samples: "
            "Δ = run - control with a paired bootstrap 95% interval; p from the test named "
            "(exact McNemar for right/wrong scores, Wilcoxon otherwise), adjusted by Holm "
            "over every comparison of the experiment. Where the experiment has no control run "
            "for a model, a run's own base-model cell is its control (control = the run).",
            tables.comparisons(analysis, experiment),
        ),
        "comparison_notes": list(analysis.notes),
        "groups": block(
            "groups",
            "Seeds pooled",
            "Runs that differ only in seed: the mean over seeds, with an interval that "
            "resamples seeds, then samples.",
            tables.groups(analysis, experiment),
        ),
        "verdict_table": block(
            "verdicts",
            "Verdicts",
            "A run is named best only where the 95% interval of its difference from the "
            "runner-up excludes 0.",
            tables.verdicts(analysis, experiment),
        ),
        "missing": block(
            "missing",
            "Failures and missing cells",
            "Not analysed, and why.",
            tables.missing(analysis, experiment),
        ),
        "sources": block(
            "sources",
            "Where every number comes from",
            "Each cell's log (relative to the experiment directory), its sample count and "
            "interval method; each training curve's file.",
            tables.sources(analysis, experiment),
        ),
        "flipped": block(
            "flipped",
            "Flipped samples",
            "The ids of the samples behind every flip count.",
            tables.flipped(analysis, experiment),
        ),
        "environment": block(
            "environment",
            "Environment",
            "What produced these numbers.",
            tables.environment(environment),
        ),
        "plots": [
            {"file": f"{PLOTS}/{chart.name}", "caption": chart.caption, "uri": _data_uri(chart.png)}
            for chart in charts
        ],
        "sections": [
            {
                **section,
                "images": [
                    {**image, "file": f"{PLOTS}/{image['file']}"} for image in section["images"]
                ],
            }
            for section in sections
        ],
    }


def _at(at: int | None) -> str:
    return "not fine-tuned" if at is None else f"epoch {at}"
