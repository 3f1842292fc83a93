"""The same experiment trained with either trainer is the same training: token ids and labels of
every row, optimizer steps per epoch, trained weights and the order rows are read in, compared
between the torchtune and the TRL plugins on the tiny Llama (no training here)."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("torchtune")
pytest.importorskip("trl")

from cruijff.design import design
from cruijff_torchtune import plugin as torchtune_plugin
from cruijff_trl import plugin as trl_plugin

WORDS = ["apple", "pear", "fig", "plum", "kiwi", "lime", "lemon", "mango", "melon", "peach"]


@pytest.fixture
def both(plugin_manager, register_plugin):
    register_plugin(torchtune_plugin, name="torchtune")
    register_plugin(trl_plugin, name="trl")
    return plugin_manager


def experiment(make_experiment, tiny_model, tool: str, controls: dict, runs=None) -> object:
    changes = {
        "tools": {"preparation": tool, "evaluation": None},
        "evaluation": None,
        "models": {"base": [{"name": "tiny", "path": str(tiny_model)}]},
        "controls": {"dataset_type": "chat_completion", "epochs": 1, **controls},
    }
    if runs is not None:
        changes.update(variables=None, runs=runs)
    return make_experiment(changes, name=f"{tool}.yaml")


def configs(manager, path, unit: str, name: str) -> dict:
    plan = design(manager, path)
    files = {spec.path.name: spec.content for spec in plan.generated[unit].files}
    return yaml.safe_load(files[name]), plan.generated[unit], plan.units


def write_rows(tmp_path):
    rows = [{"input": word, "output": word.upper()} for word in WORDS]
    path = tmp_path / "data" / "words.json"
    path.write_text(json.dumps({"train": rows, "validation": rows[:3]}))


@pytest.mark.parametrize(
    "controls",
    [
        {"prompt": "Capitalize the word: {input}", "system_prompt": "You answer."},
        {"prompt": "Capitalize: {input}\n", "train_on_input": True},
        {"prompt": "Word: {input} ->", "dataset_type": "text_completion"},
    ],
    ids=["chat", "chat-train-on-input", "text"],
)
def test_both_trainers_learn_the_same_tokens_and_labels(
    both, make_experiment, tiny_model, tmp_path, controls
):
    from transformers import AutoTokenizer

    from cruijff_torchtune.components import chat_tokenizer, prompt_dataset
    from cruijff_trl.rows import read_rows, tokenize

    torchtune_path = experiment(make_experiment, tiny_model, "torchtune", controls)
    trl_path = experiment(make_experiment, tiny_model, "trl", controls)
    write_rows(tmp_path)
    tt, _, _ = configs(both, torchtune_path, "rank4.train", "finetune.yaml")
    trl, _, _ = configs(both, trl_path, "rank4.train", "trl_config.yaml")
    settings = {k: v for k, v in tt["dataset"].items() if k != "_component_"}
    torchtune_rows = prompt_dataset(chat_tokenizer(str(tiny_model)), **settings)
    data = trl["data"]
    trl_rows = tokenize(
        AutoTokenizer.from_pretrained(trl["model"]), read_rows(data["source"], "train"), data
    )
    assert len(torchtune_rows) == len(trl_rows) == len(WORDS)
    for index, made in enumerate(trl_rows):
        theirs = torchtune_rows[index]
        assert made["input_ids"] == theirs["tokens"], index
        assert made["labels"] == theirs["labels"], index
    trained = [label for label in trl_rows[0]["labels"] if label != -100]
    if controls.get("train_on_input"):
        assert trained == trl_rows[0]["input_ids"]
    else:
        assert 0 < len(trained) < len(trl_rows[0]["input_ids"])  # the prompt is masked


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_the_same_steps_per_epoch_and_trained_weights(
    both, make_experiment, tiny_model, tmp_path, finetune
):
    """Ten rows in batches of 3: torchtune drops the partial batch (3 steps), and with 2 or 3
    accumulation steps the partial accumulation too (1 step); TRL must make as many."""
    import torch
    from omegaconf import OmegaConf
    from torchtune import config as tt_config
    from torchtune.modules.peft import get_adapter_params, set_trainable_params

    from cruijff_torchtune.launch import training_steps as torchtune_steps
    from cruijff_trl import launch, train

    controls = {"batch_size": 3, "gradient_accumulation_steps": 1, "finetune": finetune}
    mine = {"lora_rank": 4} if finetune == "lora" else {}
    runs = [{"name": "r", "model": "tiny", "parameters": mine}]
    torchtune_path = experiment(make_experiment, tiny_model, "torchtune", controls, runs)
    trl_path = experiment(make_experiment, tiny_model, "trl", controls, runs)
    write_rows(tmp_path)
    tt, _, _ = configs(both, torchtune_path, "r.train", "finetune.yaml")
    trl, _, units = configs(both, trl_path, "r.train", "trl_config.yaml")
    assert (
        torchtune_steps(tt)
        == launch.training_steps(trl, 1)
        == units[0].payload.steps_per_epoch
        == 3
    )
    for accumulation, steps in ((2, 1), (3, 1), (1, 3)):
        tt["gradient_accumulation_steps"] = trl["sft"]["gradient_accumulation_steps"] = accumulation
        assert torchtune_steps(tt) == launch.training_steps(trl, 1) == steps

    with torch.device("cpu"):
        model = tt_config.instantiate(OmegaConf.create(tt["model"]))
    if finetune == "lora":
        set_trainable_params(model, get_adapter_params(model))
    torchtune_trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    peft_model = train.build_model(trl)
    assert train.trainable_parameters(peft_model) == torchtune_trained
    assert units[0].payload.trainable == torchtune_trained  # the plan's count, without torch


@pytest.mark.parametrize("ranks", [1, 2])
def test_each_epoch_reads_the_rows_in_torchtunes_order(ranks):
    """torchtune's sampler (seed 0, set to the epoch) for each of its ranks; TRL's batches are
    dealt to the processes in turn, so that process r's k-th batch is rank r's."""
    from torch.utils.data.distributed import DistributedSampler

    from cruijff_trl.train import EpochOrder

    rows, batch, take = 11, 2, 4  # each rank: ⌈11 / ranks⌉ rows, cut to 2 batches of 2
    order = EpochOrder(rows, batch=batch, take=take, shuffle=True, ranks=ranks)
    for epoch in (0, 1, 2):
        order.set_epoch(epoch)
        dealt = order.order()
        assert len(dealt) == len(order) == take * ranks
        for rank in range(ranks):
            theirs = DistributedSampler(
                range(rows), num_replicas=ranks, rank=rank, shuffle=True, seed=0
            )
            theirs.set_epoch(epoch)
            expected = list(theirs)[:take]
            mine = [
                i
                for k in range(take // batch)
                for i in dealt[(k * ranks + rank) * batch : (k * ranks + rank + 1) * batch]
            ]
            assert mine == expected, (epoch, rank)
    order.set_epoch(0)
    first = order.order()
    order.set_epoch(1)
    assert order.order() != first  # a new order each epoch
    plain = EpochOrder(rows, batch=batch, take=take, shuffle=False)
    assert plain.order() == [0, 1, 2, 3]
