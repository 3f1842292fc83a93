"""cruijff.stamps: a file's stat taken once per design, every time outside one."""

from __future__ import annotations

import os

import pytest

from cruijff import stamps


def test_inside_steady_a_path_is_stat_ed_once_and_outside_every_time(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text("{}")
    calls = []
    real = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    with stamps.steady():
        first = stamps.stat(path)
        path.write_text('{"changed": true}')
        with stamps.steady():  # a nested block shares the outer one's stats
            assert stamps.stat(str(path)).st_size == first.st_size == 2
    assert len(calls) == 1
    assert stamps.stat(path).st_size == len('{"changed": true}')
    assert stamps.stat(path).st_size == len('{"changed": true}')
    assert len(calls) == 3


def test_a_missing_file_raises_each_time_it_is_asked_for(tmp_path):
    depths = []
    with stamps.steady():
        for _ in range(3):
            with pytest.raises(FileNotFoundError) as raised:
                stamps.stat(tmp_path / "absent")
            assert raised.value.filename == str(tmp_path / "absent")
            depths.append(len(raised.traceback))
        assert depths[0] == depths[-1]  # the raises' traces do not pile up on the error
        (tmp_path / "absent").write_text("x")
        with pytest.raises(FileNotFoundError):  # steady: as it was when first asked
            stamps.stat(tmp_path / "absent")
    assert stamps.stat(tmp_path / "absent").st_size == 1


def test_once_makes_a_value_once_per_key_and_owner_inside_steady_only():
    made = []

    def make(value):
        made.append(value)
        return value

    owner, other = object(), object()
    assert stamps.once(("k",), lambda: make(1), owner) == 1
    assert stamps.once(("k",), lambda: make(2), owner) == 2  # outside: made every time
    with stamps.steady():
        assert stamps.once(("k",), lambda: make(3), owner) == 3
        assert stamps.once(("k",), lambda: make(4), owner) == 3
        assert stamps.once(("k",), lambda: make(5), other) == 5  # another owner: made again
        assert stamps.once(("j",), lambda: make(6)) == 6
    with stamps.steady():  # nothing outlives its block
        assert stamps.once(("k",), lambda: make(7), other) == 7
    assert made == [1, 2, 3, 5, 6, 7]


def test_a_planned_value_is_shared_only_by_runs_that_agree_on_what_bears_on_it():
    from types import MappingProxyType

    from cruijff.records import freeze
    from cruijff_torchtune.config import planned

    controls = freeze({"batch_size": 8, "optimizer": {"lr": 1e-3, "weight_decay": 0.1}})
    assert type(controls) is MappingProxyType
    with stamps.steady():
        # an unrelated parameter (the seed) shares the controls' value; lr bears on it
        assert planned("optimizer.lr", controls, {"seed": 1}) == 1e-3
        assert planned("optimizer.lr", controls, {"seed": 2, "lr": 2e-4}) == 2e-4
        assert planned("optimizer.lr", controls, {"lr": 3e-4}) == 3e-4
        assert planned("optimizer.lr", controls, {"optimizer": {"lr": 4e-4}}) == 4e-4
        assert planned("batch_size", controls, {"lr": 3e-4}) == 8
        assert planned("batch_size_val", controls, {"batch_size": 2}) == 2
        # a recipe's value where nothing sets it, per recipe named
        recipe = {"base_recipe": "llama3_2/1B_lora_single_device"}
        assert planned("epochs", controls, recipe) == planned("epochs", controls, dict(recipe))
        assert planned("epochs", controls, {}) == 1
        # what it answers is the caller's to change
        section = planned("optimizer", controls, {"seed": 1})
        section["lr"] = 99
        assert planned("optimizer", controls, {"seed": 3}) == {"lr": 1e-3, "weight_decay": 0.1}
