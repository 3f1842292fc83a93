"""The model-organism generator (plugins/model_organism): cruijff_kit 0.3.4's rows for the same
spec, byte for byte; every error of its spec, found before generating; the invariants its own
tests check; the job's command line."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_model_organism import job
from cruijff_model_organism.generate import GENERATOR, generate
from cruijff_model_organism.rules import RULES
from cruijff_model_organism.spec import InvalidSpec, SpecProblem, check, split_sizes

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "cruijff_kit_golden" / "model_organism"
CK_GENERATOR = "tools/model_organisms/generate.py"


def _golden_specs() -> dict:
    path = GOLDEN / "specs.json"
    return json.loads(path.read_text()) if path.exists() else {}


needs_golden = pytest.mark.skipif(
    not (GOLDEN / "specs.json").exists(),
    reason=f"cruijff_kit's golden outputs are not at {GOLDEN}",
)

BASE = {
    "input_type": "bits",
    "rule": "parity",
    "k": 8,
    "N": 100,
    "seed": 3,
    "design": "in_distribution",
    "output_path": "data/x.json",
}


def spec(**changes):
    """BASE with ``changes``; a value of ``...`` removes the key."""
    out = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def errors(block) -> list[SpecProblem]:
    return [problem for problem in check(block) if problem.severity == "error"]


def warnings(block) -> list[SpecProblem]:
    return [problem for problem in check(block) if problem.severity == "warning"]


def splits(data) -> dict:
    return {name: rows for name, rows in data.items() if name != "metadata"}


# --- cruijff_kit's own files ----------------------------------------------------------------


@needs_golden
@pytest.mark.parametrize("name", sorted(_golden_specs()))
def test_golden_outputs_are_reproduced_byte_for_byte(name):
    entry = _golden_specs()[name]
    data = generate(entry["spec"])
    text = (GOLDEN / f"{name}.json").read_text()
    golden = json.loads(text)
    # the same rows in the same order, and the hash specs.json gives
    assert splits(data) == splits(golden)
    rows_text = json.dumps(splits(data), sort_keys=True)
    assert hashlib.sha256(rows_text.encode()).hexdigest() == entry["sha256_rows"]
    # the metadata differs only in the generator's name; key order too is cruijff_kit's
    assert golden["metadata"].pop("generator") == CK_GENERATOR
    assert data["metadata"].pop("generator") == GENERATOR
    assert list(data["metadata"].items()) == list(golden["metadata"].items())
    data["metadata"] = {"generator": CK_GENERATOR, **data["metadata"]}
    assert json.dumps(data, indent=2) + "\n" == text
    assert split_sizes(entry["spec"]) == entry["splits"]
    assert check(entry["spec"] | {"output_path": "x.json"}) == []


EXTRA_SPECS = [
    spec(design="memorization", input_type="letters", rule="max", k=3, N=50),
    spec(N=5, k=3, split_ratio=0.5),  # round(2.5) is 2: half to even
    spec(N=7, split_ratio=0.3),
    spec(
        design="ood",
        rule="coin",
        rule_kwargs={"p": 0.5},
        ood_tests=[
            {"N": 3},
            {"N": 9, "k": 12, "format": "dense"},
            {"N": 4, "input_type": "digits"},
        ],
    ),
    spec(design="ood", input_type="digits", rule="first", k=7, N=12, ood_tests=[{"N": 5, "k": 8}]),
]


@pytest.mark.parametrize("block", EXTRA_SPECS, ids=range(len(EXTRA_SPECS)))
def test_split_sizes_are_the_generated_sizes(block):
    data = generate(block)
    assert split_sizes(block) == {name: len(rows) for name, rows in splits(data).items()}


def test_split_sizes_of_a_bad_spec_raise():
    with pytest.raises(InvalidSpec, match="split_ratio"):
        split_sizes(spec(split_ratio=1.5))


# --- errors ---------------------------------------------------------------------------------

ERROR_CASES = [
    # (changes, key, words in the message or hint)
    ({"design": "memorisation"}, "design", "did you mean memorization?"),
    ({"input_type": "bit"}, "input_type", "did you mean bits?"),
    ({"rule": "partiy"}, "rule", "did you mean parity?"),
    ({"fmt": "spaces"}, "fmt", "valid: comma, dense, pipe, spaced, tab"),
    ({"design": 3}, "design", "valid: in_distribution, memorization, ood"),
    ({"rule": "nth"}, "rule_kwargs", "needs rule_kwargs.x"),
    ({"rule": "constant"}, "rule_kwargs", "needs rule_kwargs.v"),
    ({"rule": "coin", "rule_kwargs": {"P": 0.2}}, "rule_kwargs", "needs rule_kwargs.p"),
    ({"rule": "min"}, "rule", "does not apply to bits"),
    ({"rule": "weighted_sum", "input_type": "letters"}, "rule", "it applies to bits, digits"),
    ({"N": 257}, "N", "cannot sample 257 unique sequences: only 2^8 = 256 exist"),
    ({"split_ratio": 1}, "split_ratio", "between 0 and 1"),
    ({"split_ratio": 0}, "split_ratio", "between 0 and 1"),
    ({"split_ratio": "0.8"}, "split_ratio", "got '0.8'"),
    ({"split_ratio": True}, "split_ratio", "got True"),
    ({"split_ratio": math.nan}, "split_ratio", "between 0 and 1"),
    ({"N": 3, "split_ratio": 0.1}, "split_ratio", "leaves the train split empty"),
    ({"N": 3, "split_ratio": 0.9}, "split_ratio", "leaves the validation split empty"),
    ({"design": "ood"}, "design", "needs a non-empty ood_tests"),
    ({"design": "ood", "ood_tests": []}, "ood_tests", "needs a non-empty ood_tests"),
    ({"design": "ood", "ood_tests": {"N": 3}}, "ood_tests", "must be a list"),
    ({"design": "ood", "ood_tests": [{"k": 4}]}, "ood_tests[0]", "needs N"),
    ({"design": "ood", "ood_tests": [{"N": 0}]}, "ood_tests[0].N", "positive integer"),
    ({"design": "ood", "ood_tests": [5]}, "ood_tests[0]", "is a mapping"),
    ({"design": "ood", "ood_tests": [{"N": 2}, {"N": 9, "k": 3}]}, "ood_tests[1].N", "2^3 = 8"),
    (
        {"design": "ood", "ood_tests": [{"N": 2, "input_type": "letters"}]},
        "ood_tests[0].input_type",
        "rule parity does not apply to letters",
    ),
    (
        {"design": "ood", "ood_tests": [{"N": 2, "input_type": "emoji"}]},
        "ood_tests[0].input_type",
        "unknown input_type 'emoji'",
    ),
    (
        {"design": "ood", "ood_tests": [{"N": 2, "format": "csv"}]},
        "ood_tests[0].format",
        "unknown format 'csv'",
    ),
    (
        {"design": "ood", "ood_tests": [{"N": 2, "rule_kwargs": None}]},
        "ood_tests[0].rule_kwargs",
        "must be a mapping",
    ),
    ({"rule": "nth", "rule_kwargs": {"x": 8}}, "rule_kwargs.x", "out of range for k=8"),
    ({"rule": "nth", "rule_kwargs": {"x": -9}}, "rule_kwargs.x", "from -8 to 7"),
    ({"rule": "nth", "rule_kwargs": {"x": True}}, "rule_kwargs.x", "must be an integer"),
    (
        {"rule": "nth", "rule_kwargs": {"x": 5}, "design": "ood", "ood_tests": [{"N": 4, "k": 4}]},
        "ood_tests[0].k",
        "out of range for k=4",
    ),
    (
        {"rule": "nth", "rule_kwargs": {"x": 1}, "design": "ood"}
        | {"ood_tests": [{"N": 4, "rule_kwargs": {"x": 9}}]},
        "ood_tests[0].rule_kwargs.x",
        "out of range",
    ),
    ({"rule": "constant", "rule_kwargs": {"v": 1}}, "rule_kwargs.v", "must be a string"),
    ({"rule": "coin", "rule_kwargs": {"p": "high"}}, "rule_kwargs.p", "must be a number"),
    ({"rule": "coin", "rule_kwargs": {"p": 0.5, "seed": "a"}}, "rule_kwargs.seed", "integer"),
    (
        {"rule": "weighted_sum", "design": "ood", "ood_tests": [{"N": 4}]},
        "design",
        "design ood does not work with rule weighted_sum",
    ),
    (
        {"rule": "weighted_sum_binary", "design": "ood", "ood_tests": [{"N": 4}]},
        "design",
        "design ood does not work with rule weighted_sum_binary",
    ),
    ({"rule": "weighted_sum", "rule_kwargs": {"weights": 3}}, "rule_kwargs.weights", "list"),
    (
        {"rule": "weighted_sum", "rule_kwargs": {"weights": [1] * 7}},
        "rule_kwargs.weights",
        "k is 8",
    ),
    (
        {"rule": "weighted_sum", "rule_kwargs": {"weights": [True] * 8}},
        "rule_kwargs.weights",
        "list of k integers",
    ),
    ({"rule": "weighted_sum", "rule_kwargs": {"weight_max": 0}}, "rule_kwargs.weight_max", "1"),
    ({"rule": "weighted_sum", "rule_kwargs": {"sparsity": 1.5}}, "rule_kwargs.sparsity", "[0, 1]"),
    ({"rule": "weighted_sum", "rule_kwargs": {"sparsity": None}}, "rule_kwargs.sparsity", "None"),
    (
        {"rule": "weighted_sum", "rule_kwargs": {"intercept": "even"}},
        "rule_kwargs.intercept",
        '"balanced"',
    ),
    (
        {"rule": "weighted_sum", "rule_kwargs": {"intercept": 1.5}},
        "rule_kwargs.intercept",
        "integer",
    ),
    (
        {"rule": "weighted_sum", "rule_kwargs": {"weight_seed": 1.0}},
        "rule_kwargs.weight_seed",
        "integer",
    ),
    (
        {"rule": "weighted_sum_binary", "rule_kwargs": {"noise_scale": -0.1}},
        "rule_kwargs.noise_scale",
        "at least 0",
    ),
    ({"rule_kwargs": [1, 2]}, "rule_kwargs", "must be a mapping"),
    ({"k": 0}, "k", "positive integer"),
    ({"k": 8.0}, "k", "positive integer"),
    ({"N": True}, "N", "got True"),
    ({"N": "100"}, "N", "got '100'"),
    ({"seed": False}, "seed", "an integer"),
    ({"seed": 1.5}, "seed", "an integer"),
    ({"output_path": ""}, "output_path", "file path"),
    ({"tool": "tabular_to_text_gen"}, "tool", "model_organism"),
    ({"seed": ...}, "", "missing required key: seed"),
    ({"rule": ..., "output_path": ...}, "", "missing required keys: rule, output_path"),
]


@pytest.mark.parametrize(("changes", "key", "words"), ERROR_CASES, ids=range(len(ERROR_CASES)))
def test_each_error_is_found_before_generating(changes, key, words):
    found = [problem for problem in errors(spec(**changes)) if problem.key == key]
    assert found, check(spec(**changes))
    assert any(words in f"{problem.message} ({problem.hint})" for problem in found), found
    if key != "output_path" and "output_path" not in changes:
        with pytest.raises(InvalidSpec) as raised:
            generate(spec(**changes))
        assert isinstance(raised.value, ValueError)
        assert words in str(raised.value) or key in str(raised.value)


def test_did_you_mean_only_when_close():
    (far,) = errors(spec(rule="zzzz"))
    assert "did you mean" not in far.hint and far.hint.startswith("valid: coin, constant")
    (near,) = errors(spec(design="in_distributon"))
    assert near.hint.startswith("did you mean in_distribution?")


def test_a_good_spec_has_no_problem_and_output_path_is_optional_for_generation():
    assert check(BASE) == []
    assert [p.message for p in errors(spec(output_path=...))] == [
        "missing required key: output_path"
    ]
    assert check(spec(output_path=...), require_output_path=False) == []
    assert len(generate(spec(output_path=...))["train"]) == 80


# --- warnings -------------------------------------------------------------------------------


def test_legacy_split_is_ignored_with_a_warning():
    block = spec(split=0.5, split_ratio=0.75)
    (problem,) = check(block)
    assert (problem.severity, problem.key) == ("warning", "split")
    assert "split_ratio 0.75 is used" in problem.message
    assert split_sizes(block) == {"train": 75, "validation": 25}
    assert "split_ratio 0.8 is used" in check(spec(split=0.5))[0].message
    assert len(generate(spec(split=0.5))["train"]) == 80


def test_fmt_in_an_ood_entry_has_no_effect_and_is_warned():
    block = spec(design="ood", fmt="comma", ood_tests=[{"N": 5, "fmt": "dense", "n": 3}])
    assert [(p.severity, p.key) for p in check(block)] == [
        ("warning", "ood_tests[0].fmt"),
        ("warning", "ood_tests[0].n"),
    ]
    assert "cruijff_kit reads format" in check(block)[0].message
    assert "did you mean N?" in check(block)[1].hint
    data = generate(block)
    # as in cruijff_kit: the entry keeps the block's format
    assert all(row["input"].count(",") == 7 for row in data["validation_ood_0"])
    assert data["metadata"]["ood_tests"][0]["format"] == "comma"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"format": "dense"}, "format"),
        ({"rulekwargs": {}}, "rulekwargs"),
        ({"design": "memorization", "split_ratio": 0.5}, "split_ratio"),
        ({"ood_tests": [{"N": 3}]}, "ood_tests"),
        ({"rule_kwargs": {"p": 0.5}}, "rule_kwargs.p"),
        ({"rule": "coin", "rule_kwargs": {"p": 1.5}}, "rule_kwargs.p"),
        (
            {"rule": "weighted_sum", "rule_kwargs": {"weights": [1] * 8, "weight_max": 0}},
            "rule_kwargs.weight_max",
        ),
        ({"rule": "weighted_sum", "rule_kwargs": {"noise_scale": 1.0}}, "rule_kwargs.noise_scale"),
    ],
)
def test_keys_without_effect_are_warnings_not_errors(changes, key):
    block = spec(**changes)
    assert [(p.severity, p.key) for p in check(block)] == [("warning", key)]
    generate(block)


# --- cruijff_kit's invariants ---------------------------------------------------------------


def test_memorization_trains_and_validates_on_the_same_unique_rows():
    data = generate(spec(design="memorization", N=256))
    assert data["train"] == data["validation"]
    inputs = [row["input"] for row in data["train"]]
    assert len(set(inputs)) == len(inputs) == 256
    assert "split_ratio" not in data["metadata"]
    data["train"][0]["metadata"]["edited"] = True
    assert data["validation"][0]["metadata"] == {}


def test_in_distribution_splits_are_exact_and_disjoint():
    data = generate(spec(N=101, split_ratio=0.7))
    assert (len(data["train"]), len(data["validation"])) == (71, 30)
    train = {row["input"] for row in data["train"]}
    assert not train & {row["input"] for row in data["validation"]}
    # the same N sequences as memorization, in the same order
    memorized = generate(spec(N=101, design="memorization"))["train"]
    assert data["train"] + data["validation"] == memorized
    assert data["metadata"]["split_ratio"] == 0.7


def test_coin_labels_are_stable_across_designs_and_into_ood():
    coin = {"rule": "coin", "rule_kwargs": {"p": 0.5}, "k": 6, "N": 60}
    labels: dict[str, str] = {}
    ood = spec(**coin, design="ood", ood_tests=[{"N": 64}, {"N": 30, "format": "dense"}])
    for block in (spec(**coin, design="memorization"), spec(**coin), ood):
        for name, rows in splits(generate(block)).items():
            for row in rows:
                seq = row["input"].replace(" ", "")
                assert labels.setdefault(seq, row["output"]) == row["output"], name
    assert len(labels) == 64 and set(labels.values()) == {"0", "1"}
    # another seed, other labels
    other = generate(spec(**coin, seed=4, design="memorization"))["train"]
    assert any(labels[row["input"].replace(" ", "")] != row["output"] for row in other)


def test_metadata_rule_kwargs_never_has_the_seed_and_an_explicit_seed_stays_primary():
    kwargs = {"p": 0.5, "seed": 99}
    block = spec(rule="coin", rule_kwargs=kwargs, design="ood", k=5, N=32)
    block["ood_tests"] = [{"N": 32}]
    data = generate(block)
    assert data["metadata"]["rule_kwargs"] == {"p": 0.5}
    assert data["metadata"]["ood_tests"][0]["rule_kwargs"] == {"p": 0.5}
    primary = {row["input"]: row["output"] for row in data["train"] + data["validation"]}
    plain = generate(spec(rule="coin", rule_kwargs={"p": 0.5}, k=5, N=32, design="memorization"))
    ood = {row["input"]: row["output"] for row in data["validation_ood_0"]}
    assert ood == {row["input"]: row["output"] for row in plain["train"]}
    assert primary != ood  # seed 99 labels the primary splits only


def test_ood_metadata_lists_the_resolved_entries():
    block = spec(
        design="ood",
        rule="nth",
        rule_kwargs={"x": 0},
        fmt="tab",
        ood_tests=[{"N": 7, "k": 10}, {"N": 5, "input_type": "digits", "rule_kwargs": {"x": -1}}],
    )
    meta = generate(block)["metadata"]
    assert meta["ood_tests"] == [
        {"input_type": "bits", "k": 10, "N": 7, "format": "tab", "rule_kwargs": {"x": 0}},
        {"input_type": "digits", "k": 8, "N": 5, "format": "tab", "rule_kwargs": {"x": -1}},
    ]
    assert list(meta)[-2:] == ["split_ratio", "ood_tests"]


def test_ood_rows_use_per_entry_streams():
    one = generate(spec(design="ood", ood_tests=[{"N": 20, "k": 10}]))
    two = generate(spec(design="ood", ood_tests=[{"N": 20, "k": 10}, {"N": 3}]))
    assert one["validation_ood_0"] == two["validation_ood_0"]


def test_large_spaces_are_drawn_not_enumerated():
    block = spec(input_type="digits", rule="max", k=7, N=300)  # 10^7 > 2^20
    data = generate(block)
    inputs = [row["input"] for row in data["train"] + data["validation"]]
    assert len(set(inputs)) == 300 and generate(block) == data


def test_weighted_sum_resolution():
    block = spec(
        input_type="digits",
        rule="weighted_sum",
        k=3,
        N=50,
        rule_kwargs={"weights": [2, -1, 2], "intercept": "balanced"},
    )
    data = generate(block)
    meta = data["metadata"]
    # round(-3 × 4.5) = round(-13.5) = -14 (half to even); |z| ≤ 5·9 + 14 = 59: two digits
    assert (meta["resolved_weights"], meta["intercept"], meta["format_width"]) == (
        [2, -1, 2],
        -14,
        2,
    )
    for row in data["train"]:
        x = [int(token) for token in row["input"].split()]
        z = 2 * x[0] - x[1] + 2 * x[2] - 14
        assert row["output"] == " ".join(f"{z:+03d}")
    binary = generate(block | {"rule": "weighted_sum_binary"})
    assert binary["metadata"]["noise_scale"] == 0.0
    assert "bayes_accuracy" not in binary["metadata"]
    assert {row["output"] for row in binary["train"]} == {"0", "1"}


def test_weights_are_drawn_without_building_the_range():
    block = spec(rule="weighted_sum", k=4, N=4, rule_kwargs={"weight_max": 10**15})
    weights = generate(block)["metadata"]["resolved_weights"]
    assert len(weights) == 4 and all(0 < abs(weight) <= 10**15 for weight in weights)


def test_every_rule_generates_on_every_input_it_applies_to():
    kwargs = {"nth": {"x": -1}, "constant": {"v": "A"}, "coin": {"p": 0.4}}
    for name, rule in RULES.items():
        for input_type in sorted(rule.inputs):
            block = spec(rule=name, input_type=input_type, k=3, N=8)
            block["rule_kwargs"] = kwargs.get(name, {})
            data = generate(block)
            assert all(isinstance(row["output"], str) for row in data["train"]), name


# --- check never raises ---------------------------------------------------------------------

GARBAGE = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    math.nan,
    math.inf,
    10**400,
    "",
    "abc",
    "8",
    [],
    [1, "a"],
    {},
    {"N": 1},
    {1: 2},
    b"x",
    (1,),
    object(),
]


def test_check_never_raises_on_garbage():
    blocks = [*GARBAGE]
    keys = [*BASE, "fmt", "rule_kwargs", "split_ratio", "ood_tests", "split", "tool", "name", 7]
    blocks += [spec(**{"design": "ood"}) | {key: value} for key in keys for value in GARBAGE]
    for key in ("N", "input_type", "k", "format", "rule_kwargs", "fmt", 3):
        blocks += [spec(design="ood", ood_tests=[{"N": 2, key: value}]) for value in GARBAGE]
    for name, rule in RULES.items():
        for kwarg in rule.kwargs:
            blocks += [spec(rule=name, rule_kwargs={kwarg: value}) for value in GARBAGE]
            ood = {"N": 2, "rule_kwargs": {kwarg: 1}}
            blocks += [
                spec(rule=name, design="ood", rule_kwargs={kwarg: v}, ood_tests=[ood])
                for v in GARBAGE
            ]
    for block in blocks:
        problems = check(block)
        assert all(isinstance(problem, SpecProblem) for problem in problems)
        assert all(problem.severity in ("error", "warning") for problem in problems)
        if not [problem for problem in problems if problem.severity == "error"]:
            split_sizes(block)


# --- the job --------------------------------------------------------------------------------


def test_job_writes_the_file_and_says_what_it_wrote(tmp_path, capsys):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec(design="ood", ood_tests=[{"N": 5}], split=0.5)))
    out = tmp_path / "data" / "out.json"
    assert job.main([str(spec_path), str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote 80 train, 20 validation, 5 validation_ood_0 rows to {out}\n"
    assert "warning: split: split was renamed" in captured.err
    data = json.loads(out.read_text())
    assert data == generate(json.loads(spec_path.read_text()))
    assert out.read_text() == json.dumps(data, indent=2) + "\n"


def test_job_refuses_a_bad_spec_with_a_message(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec(rule="partiy", N=0)))
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "cruijff_model_organism.job", str(spec_path), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "error: rule: unknown rule 'partiy' (did you mean parity?" in result.stderr
    assert "error: N: N must be a positive integer, got 0" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_job_refuses_an_unreadable_spec(tmp_path, capsys):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text("{not json")
    assert job.main([str(spec_path), str(tmp_path / "out.json")]) == 1
    assert "cannot read the spec" in capsys.readouterr().err
    assert job.main([str(spec_path)]) == 2


def test_the_plugin_names_its_tools_as_its_modules_do():
    from cruijff_model_organism import plugin, spec, tabular

    assert (plugin.TOOL, plugin.TABULAR) == (spec.TOOL, tabular.TOOL)
