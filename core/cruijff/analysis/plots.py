"""The report's charts as PNG bytes: one function per kind, None where it does not apply.

- :func:`loss_curves`: training (and validation) loss per run; seed groups as their mean
  with a band from the lowest to the highest seed;
- :func:`metric_vs_variable`: a metric against one swept variable with 95% error bars, one
  line per value of the other variables, the control as a dashed reference;
- :func:`heatmap`: run × task, where there are several tasks;
- :func:`flips`: per task, every comparison's samples that flipped, in one chart.

Same inputs give the same bytes: figures are drawn off-screen (Agg, no pyplot state) under
matplotlib's default style and matplotlib's own DejaVu Sans, pinned by its file (a DejaVu Sans
of the system's cannot stand in for it: :func:`_pin_font`), at a fixed size and dpi, no
taller than :data:`MAX_HEIGHT`, and the PNG carries no software or date metadata.
:func:`render` gives every chart that applies, named uniquely, and a note for every chart
that could not be drawn: a plotting failure never fails the analysis.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs
import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from cruijff.analysis import compare, tables
from cruijff.analysis.model import Analysis, Cell, Comparison, Curve, Group
from cruijff.records import Experiment, RunType

DPI = 100
WIDTH = 8.0  # inches: 800 px wide at DPI, the report's column width
MAX_HEIGHT = 40.0  # inches: 4,000 px (Agg refuses 2^16 px, 2^23 in newer matplotlib)
FLIP_ROWS = round((MAX_HEIGHT - 1.6) / 0.4)
"""The most comparisons one flips chart shows (those with the most flips)."""
FONT = "cruijff DejaVu Sans"
"""The family the charts use: matplotlib's own DejaVu Sans files under a name no system font
has (:func:`_pin_font`)."""
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
)
"""matplotlib's own files of :data:`FONT`, in ``matplotlib.get_data_path()/fonts/ttf``."""
STYLE = {
    "font.family": FONT,  # bundled with matplotlib: the same glyphs on every machine
    "text.parse_math": False,  # a "$" in a run name is a dollar, not mathtext (other fonts)
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
}
UP, DOWN, CONTROL = "#2a9d8f", "#e76f51", "#555555"


@attrs.frozen(kw_only=True)
class Plot:
    """A rendered chart: a file name (``plots/<name>``), a caption, and the PNG."""

    name: str
    caption: str
    png: bytes = attrs.field(repr=False)


def font_folder() -> Path:
    """Where matplotlib keeps its bundled DejaVu fonts."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _pin_font() -> None:
    """Register matplotlib's own DejaVu Sans files (regular, bold, oblique) as :data:`FONT`,
    unless matplotlib's font list has them already.

    Asked for "DejaVu Sans", matplotlib picks among every font of that name it knows, the
    system's too (Debian's fonts-dejavu, of another version, draws other pixels); under a name
    of our own only these files answer."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    fonts = font_manager.fontManager.ttflist
    if any(entry.name == FONT for entry in fonts):
        return
    for name in FONT_FILES:
        entry = font_manager.ttfFontProperty(FT2Font(str(font_folder() / name)))
        fonts.append(dataclasses.replace(entry, name=FONT))


@contextmanager
def _figure(height: float, width: float = WIDTH) -> Iterator[Figure]:
    """A figure drawn under a fixed style, whatever the user's matplotlibrc says."""
    _pin_font()
    with matplotlib.style.context("default"), matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _binary(cells: Sequence[Cell]) -> bool:
    """Whether the cells are proportions (Wilson intervals): fractions, drawn on 0..1."""
    return bool(cells) and all("wilson" in cell.ci_method.lower() for cell in cells)


def _unit(cells: Sequence[Cell]) -> str:
    return "fraction of samples right" if _binary(cells) else "mean score per sample"


def _errors(value: float, low: float | None, high: float | None) -> tuple[float, float]:
    if low is None or high is None:
        return 0.0, 0.0
    return max(value - low, 0.0), max(high - value, 0.0)


def _at(at: int | None) -> str:
    return "not fine-tuned" if at is None else f"epoch {at}"


def safe(text: str) -> str:
    """``text`` as a file-name part (``match/accuracy`` -> ``match-accuracy``); different
    texts can give the same part: :func:`unique` tells them apart."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def unique(wanted: Sequence[tuple[str, str]]) -> list[str]:
    """Names for ``(name, original)`` pairs: each name as it is, except where different
    originals share it (``a/b`` and ``a-b`` are both ``a-b``): those get ``-`` and the first 8
    hex digits of their original's sha256 appended, so that no file replaces another."""
    owners: dict[str, set[str]] = {}
    for name, original in wanted:
        owners.setdefault(name, set()).add(original)
    return [
        f"{name}-{hashlib.sha256(original.encode()).hexdigest()[:8]}"
        if len(owners[name]) > 1
        else name
        for name, original in wanted
    ]


# --- seed groups ----------------------------------------------------------------------------


def seed_groups(analysis: Analysis, experiment: Experiment) -> list[tuple[str, ...]]:
    """Runs that differ only in ``seed``, as the analysis pooled them; without pooled groups
    (nothing evaluated yet), as the runs' parameters say."""
    found = dict.fromkeys(group.runs for group in analysis.groups if len(group.runs) > 1)
    if not found:
        found = dict.fromkeys(
            tuple(run.name for run in group) for group in compare.seed_groups(experiment.runs)
        )
    return list(found)


def _group_name(runs: Sequence[str], experiment: Experiment) -> str:
    """A seed group's name: its first run's, the seed left out (``rank8 (2 seeds)``)."""
    try:
        first = experiment.run(runs[0])
    except KeyError:
        return f"{runs[0]} (+{len(runs) - 1} seeds)"
    rest = [
        f"{key}={tables.value(tables.parameter(first, key))}"
        for key in tables.swept_variables(experiment)
        if key != "seed"
    ]
    return f"{', '.join(rest) or first.name} ({len(runs)} seeds)"


# --- loss curves ----------------------------------------------------------------------------


def _series(values: Sequence[float | None]) -> list[float]:
    return [math.nan if item is None else item for item in values]


def _mean_band(
    curves: Sequence[Curve], field: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps every curve has, with the mean, lowest and highest ``field`` over the curves."""
    by_run = [dict(zip(c.steps, getattr(c, field), strict=False)) for c in curves]
    steps = sorted(set.intersection(*(set(points) for points in by_run)))
    mean, low, high = [], [], []
    for step in steps:
        found = [points[step] for points in by_run if points[step] is not None]
        mean.append(sum(found) / len(found) if found else math.nan)
        low.append(min(found) if found else math.nan)
        high.append(max(found) if found else math.nan)
    return steps, mean, low, high


def loss_curves(analysis: Analysis, experiment: Experiment) -> bytes | None:
    """Training loss per optimizer step for every run with a curve (validation loss dashed,
    where the trainer computed it); a seed group as its mean line with a min-max band."""
    curves = {curve.run: curve for curve in analysis.curves if curve.steps}
    if not curves:
        return None
    lines: list[tuple[str, list[Curve]]] = []
    grouped: set[str] = set()
    for runs in seed_groups(analysis, experiment):
        members = [curves[name] for name in runs if name in curves]
        if len(members) > 1:
            lines.append((_group_name(runs, experiment) + ", mean and range", members))
            grouped |= {curve.run for curve in members}
    lines += [(name, [curve]) for name, curve in curves.items() if name not in grouped]
    order = {run.name: index for index, run in enumerate(experiment.runs)}
    lines.sort(key=lambda line: min(order.get(curve.run, len(order)) for curve in line[1]))
    with _figure(4.5) as figure:
        axes = figure.add_subplot()
        colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        for index, (name, members) in enumerate(lines):
            color = colors[index % len(colors)]
            steps, mean, low, high = _mean_band(members, "loss")
            axes.plot(steps, mean, color=color, linewidth=1.4, label=f"{name}: training")
            if len(members) > 1:
                axes.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
            if any(v is not None for curve in members for v in curve.val_loss):
                steps, mean, low, high = _mean_band(members, "val_loss")
                shown = [(s, v) for s, v in zip(steps, mean, strict=True) if not math.isnan(v)]
                axes.plot(
                    [s for s, _ in shown],
                    [v for _, v in shown],
                    color=color,
                    linestyle="--",
                    marker="o",
                    markersize=3,
                    label=f"{name}: validation",
                )
        axes.set_title("Training loss per run")
        axes.set_xlabel("optimizer step")
        axes.set_ylabel("loss (cross-entropy per token)")
        _legend(figure, len(lines))
        return _png(figure)


def _legend(figure: Figure, entries: int) -> None:
    """A legend outside the axes, so that it never hides a point: below the chart, or beside
    it when it is long."""
    if entries > 6:
        figure.legend(loc="outside right upper")
    else:
        figure.legend(loc="outside lower center", ncol=min(entries, 3))


# --- a metric against a swept variable ------------------------------------------------------


def metric_vs_variable(
    analysis: Analysis, experiment: Experiment, *, task: str, metric: str, variable: str
) -> bytes | None:
    """``metric`` on ``task`` against the values of ``variable``: a point with its 95% error
    bar per value, one line per combination of the other swept variables (and epoch); seeds
    pooled into their group's mean and interval when the variable is not the seed itself; the
    control of each model as a dashed line. None when no trained run has that variable."""
    cells = [
        c for c in analysis.cells if c.task == task and c.metric == metric and c.value is not None
    ]
    values = tables.axis_values(experiment, variable)
    apart = (variable, "seed", *tables.partners(experiment, variable))
    others = [k for k in tables.swept_variables(experiment) if k not in apart]
    pooled = {
        (g.runs, g.epoch): g for g in analysis.groups if g.task == task and g.metric == metric
    }
    trained = [(c, run) for c in cells if (run := tables.find_run(experiment, c.run)) is not None]
    trained = [(c, run) for c, run in trained if run.type is not RunType.CONTROL]
    several_epochs = len({c.epoch for c, _ in trained}) > 1
    lines: dict[tuple[str, ...], dict[int, list[Cell]]] = {}
    for cell, run in trained:
        found = tables.parameter(run, variable)
        if found is None or found not in values:
            continue
        key = tuple(f"{k}={tables.value(tables.parameter(run, k))}" for k in others)
        key += (_at(cell.epoch),) if several_epochs else ()
        lines.setdefault(key, {}).setdefault(values.index(found), []).append(cell)
    if not lines:
        return None
    with _figure(4.5) as figure:
        axes = figure.add_subplot()
        spread = 0.08 if len(lines) > 1 else 0.0
        for index, (key, points) in enumerate(lines.items()):
            shift = (index - (len(lines) - 1) / 2) * spread
            xs, ys, errors = [], [], ([], [])
            several = any(len(cells) > 1 for cells in points.values())
            pooled_note = " (mean of seeds)" if several else ""
            for position in sorted(points):
                mean, low, high = _point(points[position], pooled, variable)
                xs.append(position + shift)
                ys.append(mean)
                below, above = _errors(mean, low, high)
                errors[0].append(below)
                errors[1].append(above)
            axes.errorbar(
                xs,
                ys,
                yerr=errors,
                marker="o",
                capsize=4,
                linewidth=1.4,
                label=(", ".join(key) or "fine-tuned runs") + pooled_note,
            )
        for cell in cells:
            run = tables.find_run(experiment, cell.run)
            if run is not None and run.type is RunType.CONTROL:
                axes.axhline(
                    cell.value,
                    color=CONTROL,
                    linestyle="--",
                    linewidth=1.2,
                    label=f"control {cell.label or cell.run}: "
                    + tables.interval(cell.value, cell.ci_low, cell.ci_high),
                )
        axes.set_xticks(range(len(values)), [tables.value(v) for v in values])
        axes.set_xlim(-0.5, len(values) - 0.5)
        if _binary(cells):
            axes.set_ylim(-0.03, 1.03)
        axes.set_title(f"{metric} on {task} by {variable}")
        axes.set_xlabel(variable)
        axes.set_ylabel(f"{metric} ({_unit(cells)}, 95% CI)")
        _legend(figure, len(lines) + 1)
        return _png(figure)


def _point(
    cells: Sequence[Cell], pooled: dict[tuple[tuple[str, ...], int | None], Group], variable: str
) -> tuple[float, float | None, float | None]:
    """One point: a run's cell, or several seeds' group (their mean when no group pools them)."""
    if len(cells) == 1:
        return cells[0].value, cells[0].ci_low, cells[0].ci_high
    names = {cell.run for cell in cells}
    for (runs, at), group in pooled.items():
        if set(runs) == names and at == cells[0].epoch and variable != "seed":
            return group.mean, group.ci_low, group.ci_high
    return sum(cell.value for cell in cells) / len(cells), None, None


# --- heat map -------------------------------------------------------------------------------


def heatmap(analysis: Analysis, experiment: Experiment, *, metric: str) -> bytes | None:
    """``metric`` of every run and epoch (rows) on every task (columns), with the values
    written in; None with fewer than two tasks."""
    cells = [cell for cell in analysis.cells if cell.metric == metric and cell.value is not None]
    columns = [
        task for task in tables.tasks(analysis, experiment) if any(c.task == task for c in cells)
    ]
    if len(columns) < 2:
        return None
    order = {run.name: index for index, run in enumerate(experiment.runs)}
    rows = sorted(
        {(cell.run, cell.epoch) for cell in cells},
        key=lambda row: (order.get(row[0], len(order)), row[0], -1 if row[1] is None else row[1]),
    )
    found = {(cell.run, cell.epoch, cell.task): cell.value for cell in cells}
    gone = {(m.run, m.epoch, m.task) for m in analysis.missing}
    grid = [[found.get((run, at, task), math.nan) for task in columns] for run, at in rows]
    binary = _binary(cells)
    numbers = [v for row in grid for v in row if not math.isnan(v)]
    if not numbers:
        return None
    low, high = (0.0, 1.0) if binary else (min(numbers), max(numbers))
    written = len(rows) * len(columns) <= 400  # past that, numbers in cells are unreadable
    height = min(1.6 + 0.35 * len(rows), MAX_HEIGHT)
    with _figure(height, min(WIDTH * 2, 3.5 + 1.2 * len(columns))) as figure:
        axes = figure.add_subplot()
        axes.grid(False)
        image = axes.imshow(grid, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        for y, row in enumerate(grid if written else []):
            for x, item in enumerate(row):
                bright = not math.isnan(item) and item > low + 0.6 * ((high - low) or 1)
                if math.isnan(item):
                    text = "missing" if (*rows[y], columns[x]) in gone else ""
                else:
                    text = tables.number(item)
                axes.text(
                    x,
                    y,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if bright or math.isnan(item) else "white",
                )
        axes.set_xticks(range(len(columns)), columns)
        axes.set_yticks(
            range(len(rows)), [run if at is None else f"{run} · epoch {at}" for run, at in rows]
        )
        axes.set_xlabel("task")
        axes.set_ylabel("run")
        axes.set_title(f"{metric} by run and task")
        figure.colorbar(image, ax=axes, label=f"{metric} ({_unit(cells)})")
        return _png(figure)


# --- flips ----------------------------------------------------------------------------------


def _flipping(comparison: Comparison) -> bool:
    """Whether flips mean something for this comparison: binary scores (McNemar's test)."""
    test = comparison.test.lower()
    return "mcnemar" in test or bool(comparison.flips_up or comparison.flips_down)


def flips(analysis: Analysis, experiment: Experiment, *, task: str) -> bytes | None:
    """Every comparison on ``task`` in one chart: samples that went wrong → right against the
    control to the right, right → wrong to the left. None when none has binary scores. Past
    :data:`FLIP_ROWS` comparisons, those with the most flips (the earlier on a tie), in the
    tables' order, and the title says "top N of M"."""
    del experiment  # the comparisons name what the chart shows
    found = [c for c in analysis.comparisons if c.task == task and _flipping(c)]
    if not found:
        return None
    title = f"Flips against the control on {task}"
    if len(found) > FLIP_ROWS:
        ranked = sorted(
            range(len(found)), key=lambda i: (-found[i].flips_up - found[i].flips_down, i)
        )
        kept = sorted(ranked[:FLIP_ROWS])
        title += f" (top {FLIP_ROWS} of {len(found)} comparisons by flips)"
        found = [found[i] for i in kept]
    several = len({c.metric for c in found}) > 1
    labels = [
        f"{c.run} · {_at(c.epoch)}" + (f" · {c.metric}" if several else "") + f" (n={c.n})"
        for c in found
    ]
    with _figure(min(1.6 + 0.4 * len(found), MAX_HEIGHT)) as figure:
        axes = figure.add_subplot()
        places = range(len(found))
        up = [c.flips_up for c in found]
        down = [-c.flips_down for c in found]
        axes.barh(places, up, color=UP, label="wrong → right (flipped up)")
        axes.barh(places, down, color=DOWN, label="right → wrong (flipped down)")
        reach = max([1, *up, *(-d for d in down)])
        for y, (right, left) in enumerate(zip(up, down, strict=True)):
            axes.text(right + reach * 0.02, y, str(right), va="center", fontsize=8)
            axes.text(left - reach * 0.02, y, str(-left), va="center", ha="right", fontsize=8)
        axes.axvline(0, color="black", linewidth=0.8)
        axes.set_xlim(-reach * 1.25, reach * 1.25)
        # counts both ways from 0: right -> wrong is drawn leftwards, not negative
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{abs(x):g}"))
        axes.set_yticks(list(places), labels)
        axes.invert_yaxis()  # the first comparison on top, as in the tables
        axes.set_xlabel("samples that flipped against the control (count)")
        axes.set_title(title)
        figure.legend(loc="outside lower center", ncol=2)
        return _png(figure)


# --- all of them ----------------------------------------------------------------------------


def render(analysis: Analysis, experiment: Experiment) -> tuple[list[Plot], list[str]]:
    """Every chart that applies, in the report's order, with file names (unique: :func:`unique`)
    and captions; and a note for every chart that failed to draw (it is left out, and the
    analysis goes on)."""
    wanted: list[tuple[tuple[str, ...], str, str, Callable[[], bytes | None]]] = [
        (("loss",), "loss", "Training loss per run", lambda: loss_curves(analysis, experiment))
    ]
    tasks = tables.tasks(analysis, experiment)
    for metric in tables.metrics(analysis):
        for task in tasks:
            for variable in tables.swept_variables(experiment):
                wanted.append(
                    (
                        ("by", metric, task, variable),
                        f"{safe(metric)}-{safe(task)}-by-{safe(variable)}",
                        f"{metric} on {task} by {variable}",
                        functools.partial(
                            metric_vs_variable,
                            analysis,
                            experiment,
                            task=task,
                            metric=metric,
                            variable=variable,
                        ),
                    )
                )
        wanted.append(
            (
                ("heatmap", metric),
                f"heatmap-{safe(metric)}",
                f"{metric} by run and task",
                functools.partial(heatmap, analysis, experiment, metric=metric),
            )
        )
    for task in tasks:
        wanted.append(
            (
                ("flips", task),
                f"flips-{safe(task)}",
                f"Flips on {task}",
                functools.partial(flips, analysis, experiment, task=task),
            )
        )
    names = unique([(name, json.dumps(key)) for key, name, _, _ in wanted])
    found, notes = [], []
    for name, (_, _, caption, draw) in zip(names, wanted, strict=True):
        try:
            png = draw()
        except Exception as error:  # a chart that cannot be drawn is a note, never a crash
            reason = f"{type(error).__name__}: {error}".strip().splitlines()[0]
            notes.append(f"{caption}: not drawn ({reason})")
            continue
        if png:
            found.append(Plot(name=f"{name}.png", caption=caption, png=png))
    return found, notes
