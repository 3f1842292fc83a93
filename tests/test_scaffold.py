"""Scaffolding: only inside the experiment directory, atomic, idempotent, keeps user edits."""

from __future__ import annotations

import pytest

from cruijff import hookimpl
from cruijff.design import design
from cruijff.errors import UserError
from cruijff.records import FileSpec, Generated, JobState, Role, Tool, Unit
from cruijff.scaffold import scaffold
from cruijff.state import ExperimentState, JobRecord


def snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def test_scaffold_writes_every_file_of_the_plan(plugin_manager, fake_tools, make_experiment):
    plan = design(plugin_manager, make_experiment())
    result = scaffold(plugin_manager, plan)
    expected = {spec.path for unit in plan.units for spec in plan.generated[unit.id].files}
    assert set(result.written) == expected and all(p.exists() for p in expected)
    assert (plan.experiment.directory / "rank4" / "train" / "config.json") in expected


def test_second_scaffold_changes_nothing(plugin_manager, fake_tools, make_experiment):
    plan = design(plugin_manager, make_experiment())
    scaffold(plugin_manager, plan)
    before = snapshot(plan.experiment.directory)
    result = scaffold(plugin_manager, design(plugin_manager, plan.experiment.file))
    assert result.written == () and result.kept == ()
    assert snapshot(plan.experiment.directory) == before


def test_user_edit_is_kept_and_named_without_force(plugin_manager, fake_tools, make_experiment):
    path = make_experiment()
    plan = design(plugin_manager, path)
    scaffold(plugin_manager, plan)
    edited = plan.experiment.directory / "rank8" / "train" / "config.json"
    edited.write_text('{"edited": true}\n')
    # the experiment changes too, so cruijff has a new version of that file to offer
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 3"))
    result = scaffold(plugin_manager, design(plugin_manager, path))
    assert edited in result.kept
    assert edited.read_text() == '{"edited": true}\n'
    assert result.written  # the files the user did not touch were updated
    forced = scaffold(plugin_manager, design(plugin_manager, path), force=True)
    assert edited in forced.written and '"epochs": 3' in edited.read_text()


def test_a_file_a_power_cut_left_empty_is_written_again(
    plugin_manager, fake_tools, make_experiment
):
    # scaffolded files are renamed into place without a flush to the disk each: an empty one
    # where cruijff wrote one is that, not a user's edit, and is put right without --force
    plan = design(plugin_manager, make_experiment())
    scaffold(plugin_manager, plan)
    emptied = plan.experiment.directory / "rank8" / "train" / "config.json"
    wanted = emptied.read_text()
    # the unit that file belongs to had run: put back as it was, it still stands as done
    state = ExperimentState(plan.experiment.state_dir)
    job = plan.generated["rank8.train"].job
    state.save(JobRecord(unit_id="rank8.train", job=job, attempt=1, state=JobState.SUCCEEDED))
    emptied.write_text("")
    result = scaffold(plugin_manager, design(plugin_manager, plan.experiment.file))
    assert emptied in result.written and result.kept == ()
    assert emptied.read_text() == wanted
    assert not state.record("rank8.train").outdated
    # while a change of what it ran with does outdate it
    emptied.write_text("")
    path = plan.experiment.file
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 3"))
    scaffold(plugin_manager, design(plugin_manager, path))
    assert state.record("rank8.train").outdated and emptied.read_text() != wanted


def test_dry_run_writes_nothing(plugin_manager, fake_tools, make_experiment):
    plan = design(plugin_manager, make_experiment())
    result = scaffold(plugin_manager, plan, dry_run=True)
    assert result.written and not any(p.exists() for p in result.written)
    assert not plan.experiment.state_dir.exists()


class Escaper:
    """A tool whose generated file points outside the experiment directory."""

    def __init__(self, target):
        self.target = target

    @hookimpl
    def cruijff_tools(self):
        yield Tool(name="escaper", role=Role.PREPARATION)

    @hookimpl
    def cruijff_select(self, experiment, tool, upstream):
        return (
            Unit(
                id="u",
                tool="escaper",
                kind="train",
                run="base",
                directory=experiment.directory / "u",
            ),
        )

    @hookimpl
    def cruijff_generate(self, experiment, unit):
        return Generated(files=[FileSpec(path=self.target, content="x")])


@pytest.mark.parametrize("target", ["../evil.txt", "u/../../evil.txt", "/tmp/evil.txt"])
def test_a_tool_cannot_write_outside_the_experiment(plugin_manager, make_experiment, target):
    path = make_experiment(
        {
            "tools": {"preparation": "escaper", "evaluation": None},
            "controls": None,
            "variables": None,
            "evaluation": None,
        }
    )
    outside = path.parent / target
    plugin_manager.register(Escaper(outside), name="escaper")
    with pytest.raises(UserError, match="outside the experiment directory"):
        design(plugin_manager, path)
    assert not outside.resolve().exists()


def test_a_killed_scaffold_leaves_no_partial_file(
    plugin_manager, fake_tools, make_experiment, monkeypatch
):
    plan = design(plugin_manager, make_experiment())
    import cruijff.fsutil as fsutil

    real_replace = fsutil.os.replace
    calls = {"n": 0}

    def dying_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed in the middle of scaffolding
        return real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        scaffold(plugin_manager, plan)
    monkeypatch.setattr(fsutil.os, "replace", real_replace)
    leftovers = [p for p in plan.experiment.directory.rglob("*.tmp")]
    assert leftovers == []
    result = scaffold(plugin_manager, plan)  # running it again finishes the job
    assert all(path.exists() for path in result.written + result.unchanged)
    assert len(result.written) + len(result.unchanged) == sum(
        len(plan.generated[u.id].files) for u in plan.units
    )


def test_a_schedulers_files_and_links_are_scaffolded_like_the_tools_files(
    plugin_manager, fake_tools, make_experiment
):
    from cruijff.local.scheduler import LocalScheduler
    from cruijff.scheduler import LinkSpec, scheduler_files

    plan = design(plugin_manager, make_experiment())
    root = plan.experiment.directory
    assert scheduler_files(LocalScheduler({}, plan.experiment.state_dir), plan.jobs) == ()
    target, link = root / "batch" / "all.sh", root / "rank4" / "train" / "run.sh"
    extra = [
        FileSpec(path=target, content="#!/bin/sh\n", executable=True),
        LinkSpec(path=link, target=target),
    ]
    result = scaffold(plugin_manager, plan, extra=extra)
    assert {target, link} <= set(result.written)
    assert link.is_symlink() and str(link.readlink()) == "../../batch/all.sh"
    assert scaffold(plugin_manager, plan, extra=extra).written == ()
    link.unlink()
    link.write_text("mine\n")  # the user's own file where the link was
    assert scaffold(plugin_manager, plan, extra=extra).kept == (link,)
    assert link.read_text() == "mine\n"
    assert link in scaffold(plugin_manager, plan, extra=extra, force=True).written
    assert link.is_symlink()
    outside = [FileSpec(path=root.parent / "evil.sh", content="")]
    with pytest.raises(UserError, match="outside the experiment directory"):
        scaffold(plugin_manager, plan, extra=outside)
