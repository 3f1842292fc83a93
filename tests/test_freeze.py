"""cruijff.records.freeze: read-only all the way down, without copying what already is."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from cruijff.records import Resources, freeze, thaw


def test_freezing_makes_every_level_read_only_and_thaw_gives_plain_values_back():
    data = {"a": [1, {"b": 2}], "c": {"d": (3, [4])}}
    frozen = freeze(data)
    assert isinstance(frozen, MappingProxyType) and frozen["a"] == (1, {"b": 2})
    with pytest.raises(TypeError):
        frozen["a"][1]["b"] = 5  # the inner dict is read-only too
    assert thaw(frozen) == {"a": [1, {"b": 2}], "c": {"d": [3, [4]]}}


def test_a_read_only_mapping_of_records_is_kept_as_it_is_and_one_hiding_a_dict_is_not():
    jobs = MappingProxyType({"train": Resources(cpus=2), "eval": Resources(gpus=1)})
    assert freeze(jobs) is jobs  # a plan's 20,000 jobs, given on by attrs.evolve: no copy
    hiding = MappingProxyType({"record": Resources(), "plain": {"x": [1]}})
    frozen = freeze(hiding)
    assert frozen is not hiding and frozen["record"] is hiding["record"]
    assert type(frozen["plain"]) is MappingProxyType and frozen["plain"]["x"] == (1,)
    listed = MappingProxyType({"list": [1]})
    assert freeze(listed)["list"] == (1,)
