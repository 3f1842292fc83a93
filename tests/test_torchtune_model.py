"""The model torchtune builds from a folder's config.json computes what transformers computes
with the same weights: dimensions, RoPE base and scaling, tied embeddings all mapped right."""

from __future__ import annotations

import pytest

pytest.importorskip("torchtune")

from cruijff_torchtune.models import read_model


@pytest.mark.slow
def test_torchtune_and_transformers_give_the_same_logits(tmp_path):
    import importlib

    import torch
    from tinymodel import build_tiny_llama
    from torchtune.training import FullModelHFCheckpointer
    from transformers import AutoModelForCausalLM

    folder = build_tiny_llama(tmp_path / "model", rope_theta=123456.0)
    spec = read_model(folder)
    assert spec.args["rope_base"] == 123456.0
    module, name = spec.builder.rsplit(".", 1)
    model = getattr(importlib.import_module(module), name)(**spec.args)
    checkpointer = FullModelHFCheckpointer(
        checkpoint_dir=str(folder),
        checkpoint_files=list(spec.weights),
        model_type=spec.model_type,
        output_dir=str(tmp_path / "out"),
    )
    model.load_state_dict(checkpointer.load_checkpoint()["model"])
    reference = AutoModelForCausalLM.from_pretrained(folder).eval()
    # long enough for RoPE's low frequencies to turn (where a wrong scale_factor shows)
    tokens = torch.randint(
        3, spec.args["vocab_size"], (1, 200), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        ours = model.eval()(tokens)
        theirs = reference(tokens).logits
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
