"""Real evaluations with cruijff_kit's meaning: a task written in cruijff_kit's style runs
unchanged and gives the numbers it gives when run as cruijff_kit runs it (its ``eval.yaml``
through ``config_path``, ``use_chat_template`` from ``dataset_type``, ``vis_label``); and LoRA
adapters (a trainer that keeps adapters only, an eval-only adapter folder) are evaluated as
their base model plus the adapter, on a tiny Hugging Face model on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from inspect_helpers import CK_TASK, TASKS, AdapterTrainer, write_adapter, write_words

from cruijff_inspect import plugin as inspect_plugin

pytestmark = pytest.mark.slow

ROWS = [("fig", "fig"), ("kiwi", "KIWI"), ("lime", "Lime"), ("plum", "plum")]
"""The mock model echoes the word; the targets differ from it in case for half the rows."""
SCORERS = [
    {"name": "match"},
    {"name": "match", "params": {"location": "exact"}},
    {"name": "includes"},
]


@pytest.fixture(autouse=True)
def _isolated_inspect_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def organism_data(folder: Path) -> Path:
    """Model-organism-shaped data: train and validation, no test split."""
    rows = [{"input": word, "output": label, "metadata": {}} for word, label in ROWS]
    path = folder / "organism.json"
    path.write_text(json.dumps({"train": rows, "validation": rows, "metadata": {"rule": "x"}}))
    return path


def fake_model(folder: Path) -> Path:
    model = folder / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    return model


def read_log(cell: Path):
    from inspect_ai.log import read_eval_log

    (path,) = sorted((cell / "logs").glob("*.eval"))
    return read_eval_log(str(path))


def scores(log) -> dict[str, float]:
    return {
        f"{score.name}/{name}": metric.value
        for score in log.results.scores
        for name, metric in score.metrics.items()
    }


def test_a_kit_style_task_gives_the_numbers_it_gives_under_cruijff_kit(
    register_plugin, tmp_path, cli
):
    register_plugin(inspect_plugin, name="inspect")
    data = organism_data(tmp_path)
    doc = {
        "experiment": {"name": "kit_task"},
        "tools": {"evaluation": "inspect-ai"},
        "models": {"base": [{"name": "tiny", "path": str(fake_model(tmp_path))}]},
        "data": {"training": {"path": data.name}},
        "controls": {
            "prompt": "Say: {input}",
            "system_prompt": "",
            "dataset_type": "chat_completion",
        },
        "runs": [
            {"name": "chat", "type": "control", "model": "tiny"},
            {
                "name": "plain",
                "type": "control",
                "model": "tiny",
                "parameters": {"dataset_type": "text_completion"},
            },
        ],
        "evaluation": {
            "provider": "cruijff-mock",
            "model_args": {"reply": "echo"},
            "scorers": SCORERS,
            "tasks": [
                {
                    "name": "organism",
                    "script": str(CK_TASK),
                    "function": "ck_style",
                    "dataset": "same",
                }
            ],
            "matrix": [
                {"run": "chat", "vis_label": "r0", "tasks": ["organism"], "epochs": None},
                {"run": "plain", "tasks": ["organism"], "epochs": None},
            ],
        },
    }
    path = tmp_path / "experiment_summary.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert cli("validate", path).exit_code == 0  # the task's split is validation: no test needed
    result = cli("run", path, "--jobs", "2")
    assert result.exit_code == 0, result.output

    chat = tmp_path / "chat" / "eval" / "organism" / "base"
    log = read_log(chat)
    assert log.status == "success" and log.eval.task == "ck_style_r0"  # renamed by vis_label
    assert log.eval.metadata["is_finetuned"] is False
    sample = log.samples[0]
    assert sample.input == "Say: fig"  # the prompt came from eval_config.yaml
    assert [(m.role, m.text) for m in sample.messages[:1]] == [("system", "")]  # even empty
    results = json.loads((chat / "results.json").read_text())
    assert results["vis_label"] == "r0"
    # cruijff_kit's meaning: a bare match is exact and case-sensitive; {location: exact} alone
    # is inspect's default case-insensitive; a bare includes is case-sensitive
    assert [s.name for s in log.results.scores] == ["match", "match1", "includes"]
    assert results["metrics"]["match/accuracy"] == 0.5
    assert results["metrics"]["match1/accuracy"] == 1.0
    assert results["metrics"]["includes/accuracy"] == 0.5

    plain = read_log(tmp_path / "plain" / "eval" / "organism" / "base")
    assert plain.eval.task == "ck_style_plain"  # the run's name is the default label
    assert all(m.role != "system" for m in plain.samples[0].messages)  # text_completion

    # the same task run as cruijff_kit runs it: its own eval.yaml, -T arguments, inspect eval
    kit = tmp_path / "kit"
    kit.mkdir()
    eval_yaml = kit / "eval.yaml"
    eval_yaml.write_text(
        yaml.safe_dump({"prompt": "Say: {input}", "system_prompt": "", "scorers": SCORERS})
    )
    code = (
        "import json, sys\n"
        "from inspect_ai import eval\n"
        f"sys.path.insert(0, {str(CK_TASK.parent)!r})\n"
        "from ck_style_task import ck_style\n"
        f"task = ck_style(data_path={str(data)!r}, config_path={str(eval_yaml)!r}, "
        "use_chat_template=True, vis_label='r0')\n"
        "[log] = eval(task, model='cruijff-mock/x', model_args={'reply': 'echo'}, "
        f"log_dir={str(kit / 'logs')!r}, display='none', seed=14)\n"
        "print(json.dumps({f'{s.name}/{n}': m.value for s in log.results.scores "
        "for n, m in s.metrics.items()}))\n"
    )
    direct = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(direct.stdout.splitlines()[-1]) == results["metrics"] == scores(log)


def test_an_adapter_is_merged_into_its_base_model(tiny_model, tmp_path):
    import torch
    from safetensors.torch import load_file

    from cruijff_inspect.adapter import merge

    adapter = write_adapter(tmp_path / "adapter", tiny_model, rank=2)
    merged = merge(tiny_model, adapter, tmp_path / "merged")
    base = load_file(str(tiny_model / "model.safetensors"))
    after = load_file(str(merged / "model.safetensors"))
    lora = load_file(str(adapter / "adapter_model.safetensors"))
    key = "model.layers.0.self_attn.q_proj"
    a = lora[f"base_model.model.{key}.lora_A.weight"]
    b = lora[f"base_model.model.{key}.lora_B.weight"]
    torch.testing.assert_close(after[f"{key}.weight"], base[f"{key}.weight"] + 2.0 * (b @ a))
    untouched = "model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(after[untouched], base[untouched])
    assert set(after) == set(base)
    assert (merged / "config.json").exists() and (merged / "tokenizer_config.json").exists()


def test_adapters_are_evaluated_over_their_base_model(register_plugin, tmp_path, tiny_model, cli):
    """A trainer that keeps adapters only (its lora-adapter artifact) and an eval-only run of
    an adapter folder, on the tiny model with the real hf provider."""
    adapter = write_adapter(tmp_path / "old_adapter", tiny_model)
    register_plugin(AdapterTrainer(adapter=adapter, epochs=1), name="adaptertrain")
    register_plugin(inspect_plugin, name="inspect")
    write_words(tmp_path, 4)
    doc = {
        "experiment": {"name": "adapters"},
        "tools": {"preparation": "adaptertrain", "evaluation": "inspect"},
        "models": {"base": [{"name": "tiny", "path": str(tiny_model)}]},
        "data": {"training": {"path": "words.json"}},
        "controls": {"prompt": "Capitalize the word: {input}", "dataset_type": "chat_completion"},
        "runs": [
            {
                "name": "tuned",
                "type": "fine-tuned",
                "model": "tiny",
                "parameters": {"lora_rank": 2},
            },
            {
                "name": "older",
                "type": "eval-only",
                "model": "tiny",
                "parameters": {"checkpoint_path": str(adapter)},
            },
        ],
        "evaluation": {
            "max_tokens": 3,
            "tasks": [{"name": "capitalization", "script": str(TASKS)}],
        },
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = cli("run", path, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "3 of 3 jobs succeeded" in result.output
    for cell, adapter_path in (
        (tmp_path / "tuned" / "eval" / "capitalization" / "epoch_0", None),
        (tmp_path / "older" / "eval" / "capitalization" / "checkpoint", str(adapter)),
    ):
        results = json.loads((cell / "results.json").read_text())
        assert results["status"] == "success" and results["samples"] == 4
        assert results["model_path"] == str(tiny_model)
        if adapter_path:
            assert results["adapter_path"] == adapter_path
        assert "merging the LoRA adapter" in (cell / "job.log").read_text()
        assert not (cell / "merged").exists()  # the merged copy is removed
        log = read_log(cell)
        assert log.eval.metadata["base_model_path"] == str(tiny_model)
        assert log.eval.model_args["do_sample"] is False
