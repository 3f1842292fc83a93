"""The analysis report: tables, plots and the files of ``analysis/``, from hand-built records
(two ranks × two seeds and a control, two tasks, a missing cell, loss curves).

The browser test opens ``report.html`` in headless Chromium (Debian's ``chromium``); it skips
when there is none, unless ``CRUIJFF_REQUIRE_BROWSER`` is set (``.ci/run`` sets it).
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import attrs
import matplotlib
import pytest

from cruijff.analysis import plots, report, tables
from cruijff.analysis.model import (
    Analysis,
    Cell,
    Comparison,
    Curve,
    Group,
    Missing,
    Section,
    Verdict,
)
from cruijff.records import (
    Axis,
    EvalTask,
    Evaluation,
    Experiment,
    ModelRef,
    Run,
    RunType,
)

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Does a larger LoRA rank teach capitals better?"
HYPOTHESIS = "Rank 16 beats rank 8, and both beat the base model."
RANKS, SEEDS, TASKS = (8, 16), (1, 2), ("capitals", "math")
ENVIRONMENT = {
    "git_commit": "0123abcd" * 5,
    "data_file": "/data/capitals.json",
    "data_sha256": "f" * 64,
    "packages": {
        "eval-rank8_seed1-capitals": {"inspect_ai": "0.3.90", "torch": "2.5.1"},
        "eval-base-capitals": {"inspect_ai": "0.3.90", "torch": "2.5.1"},
    },
}


def _experiment(tmp_path: Path) -> Experiment:
    runs = [
        Run(
            name=f"rank{rank}_seed{seed}",
            model="tiny",
            parameters={"lora_rank": rank, "seed": seed},
            directory=tmp_path / f"rank{rank}_seed{seed}",
        )
        for rank in RANKS
        for seed in SEEDS
    ]
    runs.append(Run(name="base", type=RunType.CONTROL, model="tiny", directory=tmp_path / "base"))
    return Experiment(
        name="ranks",
        file=tmp_path / "experiment.yaml",
        directory=tmp_path,
        meta={"question": QUESTION, "hypothesis": HYPOTHESIS, "project": "demo"},
        variables=(Axis(key="lora_rank", values=RANKS), Axis(key="seed", values=SEEDS)),
        models=(ModelRef(name="tiny", path=tmp_path / "model"),),
        runs=[attrs.evolve(run, index=index) for index, run in enumerate(runs)],
        evaluation=Evaluation(tasks=[EvalTask(name=task) for task in TASKS]),
    )


def _cell(run: str, task: str, epoch: int | None, right: int, n: int = 20) -> Cell:
    value = right / n
    return Cell(
        run=run,
        task=task,
        epoch=epoch,
        metric="match/accuracy",
        value=value,
        n=n,
        ci_low=max(value - 0.2, 0.0),
        ci_high=min(value + 0.2, 1.0),
        ci_method="wilson",
        log=f"{run}/eval/{task}/logs/2025-01-01_{task}.eval",
        floor=right == 0,
        ceiling=right == n,
    )


def _analysis() -> Analysis:
    right = {
        ("rank8_seed1", "capitals"): 14,
        ("rank8_seed2", "capitals"): 12,
        ("rank16_seed1", "capitals"): 15,
        ("rank16_seed2", "capitals"): 13,
        ("rank8_seed1", "math"): 20,
        ("rank8_seed2", "math"): 19,
        ("rank16_seed1", "math"): 18,
    }
    cells = [_cell(run, task, 1, count) for (run, task), count in right.items()]
    cells += [_cell("base", "capitals", None, 0), _cell("base", "math", None, 6)]
    comparisons = [
        Comparison(
            run=run,
            control="base",
            task=task,
            epoch=1,
            metric="match/accuracy",
            n=20,
            delta=count / 20 - (0 if task == "capitals" else 0.3),
            ci_low=count / 20 - 0.5,
            ci_high=count / 20 - 0.1,
            p_value=0.0004,
            p_adjusted=0.0028,
            flips_up=count,
            flips_down=1 if task == "math" else 0,
            flips_up_ids=[f"s{index}" for index in range(count)],
            flips_down_ids=["s19"] if task == "math" else [],
            test="mcnemar-exact",
        )
        for (run, task), count in right.items()
    ]
    groups = [
        Group(
            runs=[f"rank{rank}_seed1", f"rank{rank}_seed2"],
            task="capitals",
            epoch=1,
            metric="match/accuracy",
            mean=(
                right[(f"rank{rank}_seed1", "capitals")] + right[(f"rank{rank}_seed2", "capitals")]
            )
            / 40,
            sd_between_seeds=0.07,
            ci_low=0.45,
            ci_high=0.85,
        )
        for rank in RANKS
    ]
    verdicts = [
        Verdict(
            task="capitals",
            epoch=1,
            metric="match/accuracy",
            best=None,
            leader="rank16_seed1+rank16_seed2",
            runner_up="rank8_seed1+rank8_seed2",
            delta=0.05,
            ci_low=-0.15,
            ci_high=0.25,
            samples_needed=1470,
            method="two-proportion normal approximation",
        ),
        Verdict(
            task="math",
            epoch=1,
            metric="match/accuracy",
            best="rank8_seed1",
            leader="rank8_seed1",
            runner_up="rank16_seed1",
            delta=0.1,
            ci_low=0.05,
            ci_high=0.2,
            samples_needed=None,
        ),
    ]
    missing = [
        Missing(run="rank16_seed2", task="math", epoch=1, cause="failed: CUDA out of memory"),
    ]
    curves = [
        Curve(
            run=f"rank{rank}_seed{seed}",
            path=f"rank{rank}_seed{seed}/metrics.csv",
            steps=range(1, 11),
            epochs=[0] * 5 + [1] * 5,
            loss=[2.5 / (step + seed) + rank / 100 for step in range(1, 11)],
            val_loss=[None, None, None, None, 1.1 + seed / 10, None, None, None, None, 0.9],
        )
        for rank in RANKS
        for seed in SEEDS
    ]
    section = Section(
        title="Evaluation logs",
        text="Read through inspect-ai's log API.\n\nTwo paragraphs.",
        columns=("task", "logs"),
        rows=[("capitals", 5), ("math", 4)],
        images={"logs.png": plots.flips(_only_capitals(comparisons), None, task="capitals")},
        plugin="inspect",
    )
    return Analysis(
        experiment="ranks",
        cells=cells,
        comparisons=comparisons,
        groups=groups,
        verdicts=verdicts,
        missing=missing,
        curves=curves,
        sections=[section],
    )


def _only_capitals(comparisons: list[Comparison]) -> Analysis:
    return Analysis(experiment="ranks", comparisons=comparisons)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Analysis, Experiment]:
    """The report of the synthetic experiment, written once for the module."""
    root = tmp_path_factory.mktemp("experiment")
    experiment = _experiment(root)
    analysis = _analysis()
    path = report.write(analysis, experiment, root / "analysis", environment=ENVIRONMENT)
    return path, analysis, experiment


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# --- files and determinism ------------------------------------------------------------------


def test_write_gives_every_file_and_returns_the_report(written):
    path, _, _ = written
    folder = path.parent
    assert path == folder / "report.html"
    names = set(_files(folder))
    assert {"report.html", "summary.md", "results.csv", "comparisons.csv"} <= names
    assert {
        "plots/loss.png",
        "plots/match-accuracy-capitals-by-lora_rank.png",
        "plots/match-accuracy-math-by-seed.png",
        "plots/heatmap-match-accuracy.png",
        "plots/flips-capitals.png",
        "plots/flips-math.png",
        "plots/section1-logs.png",
    } <= names
    assert not [name for name in names if name.endswith(".tmp")]


def test_writing_again_changes_no_byte_and_touches_no_file(written, tmp_path):
    path, analysis, experiment = written
    before = _files(path.parent)
    times = {p: p.stat().st_mtime_ns for p in path.parent.rglob("*") if p.is_file()}
    report.write(analysis, experiment, path.parent, environment=ENVIRONMENT)
    assert _files(path.parent) == before
    assert {p: p.stat().st_mtime_ns for p in path.parent.rglob("*") if p.is_file()} == times
    # and a fresh folder, written from scratch in the same process, holds the same bytes
    again = report.write(analysis, experiment, tmp_path / "analysis", environment=ENVIRONMENT)
    assert _files(again.parent) == before


def test_a_second_process_writes_the_same_bytes(written, tmp_path):
    """Another interpreter (a fresh matplotlib, its own font cache), another directory: the
    same files, byte for byte."""
    path, _, _ = written
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path\n"
        "import test_analysis_report as t\n"
        "from cruijff.analysis import report\n"
        "root = Path(sys.argv[2])\n"
        "report.write(t._analysis(), t._experiment(root), root / 'analysis', "
        "environment=t.ENVIRONMENT)\n"
    )
    experiment_root = path.parent.parent
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(other)],
        check=True,
        env={**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")},
    )
    assert _files(other / "analysis") == _files(experiment_root / "analysis")


def test_a_chart_no_longer_drawn_is_removed(written, tmp_path):
    _, analysis, experiment = written
    folder = tmp_path / "analysis"
    report.write(analysis, experiment, folder, environment={})
    (folder / "plots" / "keep.txt").write_text("mine")
    report.write(attrs.evolve(analysis, curves=()), experiment, folder, environment={})
    assert not (folder / "plots" / "loss.png").exists()
    assert (folder / "plots" / "keep.txt").exists()


def test_pngs_carry_no_software_or_date_metadata(written):
    path, _, _ = written
    for png in (path.parent / "plots").glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG")
        assert b"matplotlib" not in data.lower()
        assert b"tIME" not in data


# --- the HTML report ------------------------------------------------------------------------


def test_the_html_has_the_question_every_table_and_embedded_images(written):
    path, analysis, _ = written
    html = path.read_text()
    assert QUESTION in html and HYPOTHESIS in html
    for heading in (
        "Results: match/accuracy",
        "Against the control",
        "Seeds pooled",
        "Runs",
        "Verdicts",
        "Failures and missing cells",
        "Where every number comes from",
        "Flipped samples",
        "Environment",
        "Evaluation logs",
    ):
        assert f"<h2>{heading}</h2>" in html, heading
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']https?:""", html)
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == len(list((path.parent / "plots").glob("*.png")))
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG")
    # the missing cell, with its cause, in the results table and the failures table
    assert "missing: failed: CUDA out of memory" in html
    assert "<td>rank16_seed2</td><td>math</td><td>1</td><td>failed: CUDA out of memory</td>" in html
    # provenance: each cell's log and the flipped samples' ids; the environment
    for cell in analysis.cells:
        assert cell.log in html
    assert "s0 s1 s2" in html
    assert ENVIRONMENT["git_commit"] in html and ENVIRONMENT["data_sha256"] in html
    assert "inspect_ai 0.3.90, torch 2.5.1" in html
    assert "eval-rank8_seed1-capitals, eval-base-capitals" in html


def test_a_verdict_that_cannot_separate_says_so_with_the_samples_needed(written):
    path, _, _ = written
    html = path.read_text()
    assert (
        "No run is best: rank16_seed1+rank16_seed2 and the runner-up rank8_seed1+rank8_seed2 "
        "cannot be told apart at this sample size (difference +0.05 [-0.15, +0.25])."
    ) in html
    assert "About 1470 samples would detect a difference this large at 80% power" in html
    assert "two-proportion normal approximation" in html
    # the one verdict that separates names its best run; the other names none
    assert set(re.findall(r"([\w-]+) is best", html)) == {"rank8_seed1", "run"}  # "No run is"
    assert (
        "rank8_seed1 is best: ahead of the runner-up rank16_seed1 by +0.10 [+0.05, +0.20]" in html
    )


# --- tables ---------------------------------------------------------------------------------


def test_the_results_table_has_rows_by_swept_variables_and_columns_by_task_and_epoch(written):
    _, analysis, experiment = written
    columns, rows = tables.results(analysis, experiment, "match/accuracy")
    assert columns == (
        "run",
        "lora_rank",
        "seed",
        "capitals · not fine-tuned",
        "capitals · epoch 1",
        "math · not fine-tuned",
        "math · epoch 1",
    )
    by_run = {row[0]: row for row in rows}
    assert by_run["rank8_seed1"][1:3] == ("8", "1")
    # the value with its interval, then Δ against the control with its interval and Holm's p
    assert by_run["rank8_seed1"][4] == (
        "0.70 [0.50, 0.90] · Δ +0.70 [+0.20, +0.60] vs base, p adj. 0.003"
    )
    assert by_run["rank8_seed1"][6] == (
        "1.00 [0.80, 1.00] · ceiling: all right · Δ +0.70 [+0.50, +0.90] vs base, p adj. 0.003"
    )
    assert by_run["base"][3] == "0.00 [0.00, 0.20] · floor: all wrong"
    assert by_run["base"][1:3] == ("—", "—")
    assert by_run["rank16_seed2"][6] == "missing: failed: CUDA out of memory"


def test_the_comparisons_table_gives_delta_with_interval_adjusted_p_and_flips(written):
    _, analysis, experiment = written
    columns, rows = tables.comparisons(analysis, experiment)
    row = dict(zip(columns, rows[0], strict=True))
    assert row["run"] == "rank8_seed1" and row["lora_rank"] == "8" and row["control"] == "base"
    assert row["Δ vs control [95% CI]"] == "+0.70 [+0.20, +0.60]"
    assert row["p"] == "<0.001" and row["p adj. (Holm)"] == "0.003"
    assert row["flips ↑ wrong→right"] == "14" and row["flips ↓ right→wrong"] == "0"
    assert row["run value"] == "0.70" and row["control value"] == "0.00"


def test_swept_variables_of_explicit_runs_are_the_parameters_that_differ(tmp_path):
    experiment = _experiment(tmp_path)
    listed = attrs.evolve(
        experiment,
        variables=(),
        runs=[
            attrs.evolve(run, parameters={**run.parameters, "lr": 1e-4})
            for run in experiment.runs
            if run.type is RunType.FINE_TUNED
        ]
        + [experiment.run("base")],
    )
    assert tables.swept_variables(listed) == ("lora_rank", "seed")
    assert tables.value(1e-4) == "1e-4"


def test_summary_tables_for_the_terminal(written):
    _, analysis, experiment = written
    titles = [title for title, _ in tables.summary(analysis, experiment)]
    assert titles == [
        "Verdicts",
        "Results: match/accuracy (95% intervals)",
        "Against the control (paired)",
        "Seeds pooled",
        "Missing",
    ]


# --- Markdown and CSV -----------------------------------------------------------------------


def test_the_summary_has_the_tables_and_links_the_plots(written):
    path, _, _ = written
    summary = (path.parent / "summary.md").read_text()
    assert summary.startswith("# ranks\n")
    assert f"**Question:** {QUESTION}" in summary
    assert "## Results: match/accuracy" in summary
    assert "| rank8_seed1 | 8 | 1 | " in summary
    assert "| rank16_seed2 | math | 1 | failed: CUDA out of memory |" in summary
    assert "![Training loss per run](plots/loss.png)" in summary
    assert "data:image" not in summary
    assert "cannot be told apart at this sample size" in summary


def test_results_csv_has_a_row_per_cell_and_metric(written):
    path, analysis, _ = written
    rows = list(csv.DictReader(io.StringIO((path.parent / "results.csv").read_text())))
    assert len(rows) == len(analysis.cells)
    first = rows[0]
    assert list(first)[:4] == ["run", "lora_rank", "seed", "label"]
    assert first["run"] == "rank8_seed1" and first["epoch"] == "1"
    assert float(first["value"]) == 0.7 and first["n"] == "20"
    assert first["log"] == "rank8_seed1/eval/capitals/logs/2025-01-01_capitals.eval"
    base = [row for row in rows if row["run"] == "base"]
    assert {row["epoch"] for row in base} == {""}
    assert base[0]["floor"] == "true" and base[0]["lora_rank"] == ""


def test_comparisons_csv_has_a_row_per_comparison_with_the_flipped_ids(written):
    path, analysis, _ = written
    rows = list(csv.DictReader(io.StringIO((path.parent / "comparisons.csv").read_text())))
    assert len(rows) == len(analysis.comparisons)
    math = next(row for row in rows if row["task"] == "math")
    assert math["flips_down_ids"] == "s19" and math["flips_down"] == "1"
    assert float(math["p_adjusted"]) == 0.0028


# --- plots ----------------------------------------------------------------------------------


def test_each_plot_kind_renders_twice_to_the_same_bytes_or_none_where_it_does_not_apply(written):
    _, analysis, experiment = written
    for draw in (
        lambda: plots.loss_curves(analysis, experiment),
        lambda: plots.metric_vs_variable(
            analysis, experiment, task="capitals", metric="match/accuracy", variable="lora_rank"
        ),
        lambda: plots.heatmap(analysis, experiment, metric="match/accuracy"),
        lambda: plots.flips(analysis, experiment, task="math"),
    ):
        first = draw()
        assert first and first.startswith(b"\x89PNG")
        assert draw() == first
    one_task = Analysis(
        experiment="ranks", cells=[c for c in analysis.cells if c.task == "capitals"]
    )
    assert plots.heatmap(one_task, experiment, metric="match/accuracy") is None
    assert plots.loss_curves(one_task, experiment) is None
    assert plots.flips(one_task, experiment, task="capitals") is None


# --- in a browser ---------------------------------------------------------------------------

PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var result = {
    images: images.length,
    loaded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    text: document.body.innerText.length,
    height: document.body.scrollHeight
  };
  var out = document.createElement("pre");
  out.id = "cruijff-probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CRUIJFF_REQUIRE_BROWSER"):
        pytest.fail("CRUIJFF_REQUIRE_BROWSER is set but chromium is not on PATH")
    pytest.skip("headless Chromium is not installed (apt-get install chromium)")


def test_the_report_opens_in_headless_chromium_with_every_image_loaded(written, tmp_path):
    """The report itself has no script: a copy with a probe appended counts the images that
    decoded once the page has loaded, and the screenshot script's PNG is not blank."""
    browser = _chromium()
    path, _, _ = written
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text().replace("</body>", PROBE + "\n</body>"))
    dumped = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="cruijff-probe">(.*?)</pre>', dumped.stdout)
    assert found, dumped.stderr[-2000:]
    result = json.loads(found.group(1))
    assert result["images"] == len(list((path.parent / "plots").glob("*.png")))
    assert result["loaded"] == result["images"]
    assert result["text"] > 1000 and result["height"] > 1000

    screenshot = tmp_path / "report.png"
    subprocess.run(
        [str(ROOT / "scripts" / "screenshot-report"), str(path), str(screenshot)],
        check=True,
        timeout=120,
        env={**os.environ, "CHROMIUM": browser},
    )
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1280, 800)
        colors = image.convert("L").getcolors(maxcolors=1 << 16)
    assert colors is not None and len(colors) > 16  # text and a table, not a blank page


# --- what the review asked for ----------------------------------------------------------------


def _many(count: int) -> list[Comparison]:
    """``count`` comparisons on capitals; comparison i flips i % 7 samples up."""
    return [
        Comparison(
            run=f"r{i}",
            control="base",
            task="capitals",
            epoch=1,
            metric="match/accuracy",
            n=20,
            delta=0.0,
            ci_low=0.0,
            ci_high=0.0,
            p_value=1.0,
            flips_up=i % 7,
            test="mcnemar exact",
        )
        for i in range(count)
    ]


def test_a_flips_chart_of_thousands_of_comparisons_is_capped_and_shows_the_top_ones(monkeypatch):
    """The height grew 0.4 in per comparison without bound (80,160 px for 2,000; Agg refuses
    2^16 px, or 2^23 in newer matplotlib, and a PNG that tall is tens of MB)."""
    analysis = Analysis(experiment="x", comparisons=_many(2000))
    png = plots.flips(analysis, None, task="capitals")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (800, plots.MAX_HEIGHT * plots.DPI)
    drawn = []
    monkeypatch.setattr(plots, "_png", lambda figure: drawn.append(figure) or b"")
    plots.flips(analysis, None, task="capitals")
    (axes,) = [a for a in drawn[0].axes if a.get_title()]
    assert axes.get_title() == (
        f"Flips against the control on capitals (top {plots.FLIP_ROWS} of 2000 comparisons "
        "by flips)"
    )
    labels = [label.get_text() for label in axes.get_yticklabels()]
    # the most flips (6: r6, r13, ...), in the tables' order
    assert len(labels) == plots.FLIP_ROWS
    assert labels[:2] == ["r6 · epoch 1 (n=20)", "r13 · epoch 1 (n=20)"]


def test_a_chart_that_cannot_be_drawn_is_a_note_in_the_report_not_a_crash(
    written, tmp_path, monkeypatch
):
    _, analysis, experiment = written

    def broken(*args, **kwargs):
        raise ValueError("Image size of 800x80160 pixels is too large.\nsecond line")

    monkeypatch.setattr(plots, "heatmap", broken)
    path = report.write(analysis, experiment, tmp_path / "analysis", environment={})
    note = "match/accuracy by run and task: not drawn (ValueError: Image size of 800x80160 pixels"
    assert note in path.read_text()
    assert note in (path.parent / "summary.md").read_text()
    assert not (path.parent / "plots" / "heatmap-match-accuracy.png").exists()
    assert (path.parent / "plots" / "flips-capitals.png").exists()


def test_names_that_make_one_file_name_get_one_file_each(tmp_path):
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    assert plots.unique([("x", "1"), ("x", "2"), ("y", "3"), ("x", "1")]) == [
        f"x-{digest('1')}",
        f"x-{digest('2')}",
        "y",
        f"x-{digest('1')}",
    ]
    experiment = _experiment(tmp_path)
    cells = [
        attrs.evolve(_cell("base", task, None, 3), metric=metric)
        for metric in ("a/b", "a-b")
        for task in TASKS
    ]
    analysis = Analysis(experiment="ranks", cells=cells)
    charts, notes = plots.render(analysis, experiment)
    names = [chart.name for chart in charts]
    assert len(names) == 2 and len(set(names)) == 2 and notes == []
    assert all(re.fullmatch(r"heatmap-a-b-[0-9a-f]{8}\.png", name) for name in names)
    path = report.write(analysis, experiment, tmp_path / "analysis", environment={})
    assert len(list((path.parent / "plots").glob("heatmap-a-b-*.png"))) == 2
    ids = re.findall(r'<section id="(results-[^"]+)"', path.read_text())
    assert len(ids) == 2 and len(set(ids)) == 2


def test_the_font_is_matplotlibs_own_file_whatever_the_system_has(written, monkeypatch):
    """A "DejaVu Sans" of the system's ahead in matplotlib's font list (here: a stand-in with
    other glyphs) changes no byte of a chart."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    _, analysis, experiment = written
    before = plots.flips(analysis, experiment, task="math")
    found = font_manager.findfont(font_manager.FontProperties(family=plots.FONT))
    assert found == str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    other = font_manager.ttfFontProperty(FT2Font(str(plots.font_folder() / "DejaVuSerif.ttf")))
    impostor = dataclasses.replace(other, name="DejaVu Sans")
    fonts = [impostor, *font_manager.fontManager.ttflist]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", fonts)
    font_manager.FontManager._findfont_cached.cache_clear()
    try:
        assert plots.flips(analysis, experiment, task="math") == before
    finally:
        monkeypatch.undo()
        font_manager.FontManager._findfont_cached.cache_clear()


def test_the_terminal_prints_names_and_causes_as_they_are(capsys):
    from cruijff.cli.render import show_analysis

    cell = attrs.evolve(_cell("base", "capitals", None, 3), metric="match/accuracy[max]")
    analysis = Analysis(
        experiment="ranks",
        cells=[cell],
        missing=[Missing(run="r", task="t", epoch=None, cause="RuntimeError: [/b] and [bold]")],
        notes=["no control for model [m]: nothing to compare with (r)"],
    )
    show_analysis(analysis, None, Path("/tmp/[x]/report.html"))
    out = capsys.readouterr().out
    assert "match/accuracy[max]" in out
    assert "missing r t: RuntimeError: [/b] and [bold]" in out
    assert "no control for model [m]: nothing to compare with (r)" in out
    assert "Report: /tmp/[x]/report.html" in out


def test_json_has_no_nan_and_is_always_valid(capsys, tmp_path):
    from cruijff.analysis.analyze import to_json
    from cruijff.cli.render import print_json

    cell = attrs.evolve(_cell("base", "capitals", None, 3), value=float("nan"), ci_low=math.inf)
    document = to_json(Analysis(experiment="ranks", cells=[cell]), tmp_path / "report.html")
    assert document["cells"][0]["value"] is None and document["cells"][0]["ci_low"] is None
    print_json({"a": float("nan"), "b": [1.5, -math.inf], "c": {"d": (math.nan,)}})

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(capsys.readouterr().out, parse_constant=refuse) == {
        "a": None,
        "b": [1.5, None],
        "c": {"d": [None]},
    }


def test_comparison_notes_appear_in_the_report(written, tmp_path):
    _, analysis, experiment = written
    note = "no control for model other: nothing to compare with (rank99)"
    path = report.write(
        attrs.evolve(analysis, notes=[note]), experiment, tmp_path / "analysis", environment={}
    )
    html = path.read_text()
    assert f"<li>{note}</li>" in html
    assert html.index(note) > html.index('<section id="comparisons">')
    assert f"- {note}" in (path.parent / "summary.md").read_text()
