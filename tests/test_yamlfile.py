"""The YAML loader: plain data, positions of dotted paths, and the errors PyYAML lets pass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from cruijff.errors import UserError
from cruijff.records import Where
from cruijff.suggest import did_you_mean, one_of
from cruijff.yamlfile import MAX_VALUES, YamlDoc, YamlError, load_yaml, split_path, tags


def write(tmp_path: Path, text: str) -> Path:
    """Write ``text`` (dedented, first line = line 1) to a YAML file."""
    path = tmp_path / "experiment.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> tuple:
    with pytest.raises(YamlError) as caught:
        load_yaml(write(tmp_path, text))
    return caught.value.problems


DOC = """
experiment:
  name: demo
controls:
  lora_rank: 8
variables:
  zip:
    - {batch_size: [4, 8], steps: [2, 1]}
runs:
  - name: a
    model: m
  - name: b
    model: m
  - name: c
    model: m
"""


def test_loads_plain_data(tmp_path):
    doc = load_yaml(write(tmp_path, DOC))
    assert isinstance(doc, YamlDoc)
    assert doc.data["controls"] == {"lora_rank": 8}
    assert doc.data["variables"]["zip"][0] == {"batch_size": [4, 8], "steps": [2, 1]}
    assert [run["name"] for run in doc.data["runs"]] == ["a", "b", "c"]
    assert type(doc.data) is dict and type(doc.data["runs"]) is list


@pytest.mark.parametrize(
    ("path", "line", "column"),
    [
        ("controls", 3, 1),
        ("controls.lora_rank", 4, 3),  # a mapping entry: its key
        ("runs[2]", 13, 5),  # a list item: the item
        ("runs[2].model", 14, 5),
        ("variables.zip[0]", 7, 7),
        ("variables.zip[0].batch_size", 7, 8),
        ("variables.zip[0].batch_size[1]", 7, 24),
        ("controls.missing", 3, 1),  # missing: the nearest existing parent
        ("runs[7].model", 8, 1),
        ("nothing.at.all", 1, 1),
        ("", 1, 1),
    ],
)
def test_where_points_at_the_dotted_path(tmp_path, path, line, column):
    file = write(tmp_path, DOC)
    where = load_yaml(file).where(path)
    assert where == Where(file=file, line=line, column=column, path=path)


def test_where_formats_as_file_line_column_path(tmp_path):
    file = write(tmp_path, DOC)
    assert str(load_yaml(file).where("runs[1].model")) == f"{file}:12:5: runs[1].model"


def test_split_path():
    assert split_path("runs[2].model") == ["runs", 2, "model"]
    assert split_path("variables.zip[0].batch_size") == ["variables", "zip", 0, "batch_size"]
    assert split_path("") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-4", 1e-4),
        ("3e-4", 3e-4),
        ("1E5", 1e5),
        ("-2e-5", -2e-5),
        ("1.0e4", 1e4),
        ("+.5e3", 500.0),
        ("3.0e-4", 3e-4),
        ("0.5", 0.5),
    ],
)
def test_exponent_floats_are_floats(tmp_path, text, value):
    data = load_yaml(write(tmp_path, f"lr: {text}\n")).data
    assert type(data["lr"]) is float
    assert data["lr"] == value


def test_other_scalars_keep_their_types(tmp_path):
    data = load_yaml(
        write(tmp_path, 'a: "1e-4"\nb: 12\nc: true\nd: null\ne: 2026-11-22\nf: e5\ng: 1e\n')
    ).data
    assert data == {
        "a": "1e-4",
        "b": 12,
        "c": True,
        "d": None,
        "e": "2026-11-22",
        "f": "e5",
        "g": "1e",
    }


def test_float_resolver_stays_on_our_loader():
    # Other users of PyYAML in the process keep YAML 1.1 rules.
    assert yaml.safe_load("a: 1e-4") == {"a": "1e-4"}


def test_keys_are_strings_as_written(tmp_path):
    data = load_yaml(write(tmp_path, "on: 1\n1: 2\nnull: 3\n")).data
    assert data == {"on": 1, "1": 2, "null": 3}


def test_anchors_aliases_and_merge_keys(tmp_path):
    file = write(
        tmp_path,
        """
        defaults: &defaults
          lr: 1e-4
          epochs: 2
        runs:
          - parameters:
              <<: *defaults
              epochs: 3
          - parameters: *defaults
        """,
    )
    doc = load_yaml(file)
    assert doc.data["runs"][0]["parameters"] == {"lr": 1e-4, "epochs": 3}
    assert doc.data["runs"][1]["parameters"] == {"lr": 1e-4, "epochs": 2}
    # A merged key is written at the anchor; an explicit one where it is.
    assert (doc.where("runs[0].parameters.lr").line, doc.where("runs[0].parameters.lr").column) == (
        2,
        3,
    )
    assert doc.where("runs[0].parameters.epochs").line == 7


def test_duplicate_keys_report_both_lines(tmp_path):
    found = problems(tmp_path, "controls:\n  lr: 1\n  seed: 2\n  lr: 3\n")
    assert len(found) == 1
    problem = found[0]
    assert (problem.where.line, problem.where.column, problem.where.path) == (4, 3, "controls.lr")
    assert "duplicate key 'lr'" in problem.message and "line 2" in problem.message
    assert "only the last" in problem.hint


def test_duplicate_top_level_key(tmp_path):
    (problem,) = problems(tmp_path, "runs: []\nmodels: {}\nruns: []\n")
    assert (problem.where.line, problem.where.path) == (3, "runs")
    assert "line 1" in problem.message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!foo 1", "!foo"),
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a}", "!!set"),
        ("!custom [1, 2]", "!custom"),
    ],
)
def test_tags_are_not_allowed(tmp_path, value, shown):
    (problem,) = problems(tmp_path, f"controls:\n  seed: {value}\n")
    assert problem.message == f"tag {shown} is not allowed"
    assert (problem.where.line, problem.where.column, problem.where.path) == (2, 9, "controls.seed")
    assert "remove the tag" in problem.hint


def test_no_python_object_is_ever_built(tmp_path):
    marker = tmp_path / "pwned"
    text = f'a: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(YamlError):
        load_yaml(write(tmp_path, text))
    assert not marker.exists()


def test_standard_explicit_tags_are_fine(tmp_path):
    data = load_yaml(write(tmp_path, 'a: !!str 123\nb: !!int "5"\nc: !!float "1"\nd: ! x\n')).data
    assert data == {"a": "123", "b": 5, "c": 1.0, "d": "x"}


def test_bad_explicit_standard_tag_value(tmp_path):
    (problem,) = problems(tmp_path, "a: !!int abc\n")
    assert problem.message == "'abc' is not a valid int"
    assert (problem.where.line, problem.where.column) == (1, 4)


def test_syntax_error_has_line_and_column(tmp_path):
    (problem,) = problems(tmp_path, "controls:\n  lr: [1, 2\nruns: []\n")
    assert problem.message.startswith("YAML syntax error:")
    assert problem.where.file == tmp_path / "experiment.yaml"
    assert problem.where.line == 3 and problem.where.column is not None


def test_syntax_error_bad_indentation(tmp_path):
    (problem,) = problems(tmp_path, "a:\n  b: 1\n c: 2\n")
    assert problem.message.startswith("YAML syntax error:")
    assert (problem.where.line, problem.where.column) == (3, 2)


def test_several_problems_at_once(tmp_path):
    found = problems(tmp_path, "a: 1\na: 2\nb: !x 1\nc:\n  d: 1\n  d: 2\n")
    assert [(p.where.line, p.where.path) for p in found] == [(2, "a"), (3, "b"), (6, "c.d")]


def test_error_is_a_user_error_naming_the_place(tmp_path):
    with pytest.raises(UserError) as caught:
        load_yaml(write(tmp_path, "a: 1\na: 2\n"))
    assert f"{tmp_path / 'experiment.yaml'}:2:1: a: duplicate key" in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(YamlError) as caught:
        load_yaml(tmp_path / "nope.yaml")
    (problem,) = caught.value.problems
    assert problem.message == "file not found"
    assert problem.where.file == tmp_path / "nope.yaml"


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(YamlError) as caught:
        load_yaml(tmp_path)
    assert caught.value.problems[0].message == "is a folder, not a file"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    (problem,) = problems(tmp_path, text)
    assert problem.message == "the file is empty"
    assert problem.where.line == 1


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a single value ('just text')")]
)
def test_top_level_must_be_a_mapping(tmp_path, text, kind):
    (problem,) = problems(tmp_path, text)
    assert problem.message == f"the top level must be a mapping, not {kind}"


def test_not_utf8(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(YamlError) as caught:
        load_yaml(path)
    (problem,) = caught.value.problems
    assert "not UTF-8" in problem.message and problem.where.line == 2


def test_recursive_alias(tmp_path):
    (problem,) = problems(tmp_path, "a: &x [1, *x]\n")
    assert "contains it" in problem.message


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    (problem,) = problems(tmp_path, "\n".join(lines) + "\n")
    assert f"more than {MAX_VALUES} values" in problem.message


def test_non_scalar_key(tmp_path):
    (problem,) = problems(tmp_path, "? [a, b]\n: 1\n")
    assert problem.message == "a key must be a plain name, not a list"


def test_did_you_mean():
    assert did_you_mean("lora_rnk", ["lora_rank", "lr", "epochs"]) == "did you mean lora_rank?"
    assert did_you_mean("modles", ["models", "runs"]) == "did you mean models?"
    assert did_you_mean("xyzzy", ["models", "runs"]) == ""
    assert did_you_mean("models", ["models"]) == ""  # the word itself is no suggestion
    assert did_you_mean("Lr", ["lr", "epochs"]) == "did you mean lr?"
    assert did_you_mean("epochs3", ["epochs2", "epochs1", "base"]) == "did you mean epochs1?"
    # only what is really close: a slip, or a name that begins the other
    assert did_you_mean("max_connections", ["max_tokens", "seed"]) == ""
    assert did_you_mean("vis_label", ["label", "tasks"]) == ""
    assert did_you_mean("size", ["size_gb", "name"]) == "did you mean size_gb?"
    assert did_you_mean("batch_sise", ["batch_size", "seed"]) == "did you mean batch_size?"


def test_one_of():
    assert one_of(["c", "a", "b"]) == "valid: a, b, c"
    assert one_of([]) == ""
    names = [f"k{i:02d}" for i in range(20)]
    assert one_of(names) == "valid: " + ", ".join(names[:12]) + ", ..."


@pytest.mark.parametrize(
    "text",
    [
        DOC,
        "defaults: &d {lr: 1e-4, epochs: 2}\nruns:\n  - parameters: {<<: *d, epochs: 3}\n",
        "a: 1\na: 2\nb: !x 1\n",
        "controls:\n  lr: [1, 2\nruns: []\n",
        "a: &x [1, *x]\n",
        "a: *nowhere\n",
        "a: &x 1\nb: &x 2\n",
        "a: 1\n---\nb: 2\n",
    ],
)
def test_pythons_parser_gives_what_libyaml_gives(tmp_path, monkeypatch, text):
    """Without libyaml, PyYAML's own parser feeds the same composer: same data, same places."""

    def outcome():
        try:
            doc = load_yaml(write(tmp_path, text))
        except YamlError as error:
            return [(p.where.line, p.where.path, p.message.split(":")[0]) for p in error.problems]
        return doc.data, [str(doc.where(path)) for path in ("runs[0].parameters.lr", "b")]

    fast = outcome()
    monkeypatch.setattr(tags, "FAST_LOADER", tags.Loader)
    assert outcome() == fast
