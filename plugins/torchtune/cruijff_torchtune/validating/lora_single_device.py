"""torchtune 0.6.1's LoRA single-device recipe, with the validation loss
(:mod:`cruijff_torchtune.validating`) and merged checkpoints that leave the model alone.

torchtune's recipe merges the adapter into the weights of a state dict it took with
``.cpu()``: on a GPU those are copies, on the CPU the live model's own weights, so each epoch's
checkpoint adds the adapter into the base weights that the next epoch trains on (and the next
checkpoint adds it again). Here the merge works on copies, so a run on the CPU trains as it
would on a GPU; the plugin runs this recipe for every LoRA run on the CPU for that reason.
"""

import sys

import torch
from omegaconf import DictConfig
from torchtune import config

from cruijff_torchtune.validating import Validating, run, torchtune_recipe

module = torchtune_recipe("lora_finetune_single_device")
Torchtune = module.LoRAFinetuneRecipeSingleDevice  # torchtune's class, from its recipe file


def merge_into_copies(state_dict: dict, rank: int, alpha: float) -> dict:
    """torchtune's ``get_merged_lora_ckpt`` on copies of the base weights it adds to."""
    for key in [k for k in state_dict if k.endswith(".lora_a.weight")]:
        base = key.removesuffix(".lora_a.weight") + ".weight"
        if type(state_dict.get(base)) is torch.Tensor:  # a quantized one is not added to
            state_dict[base] = state_dict[base].clone()
    return MERGE(state_dict, rank, alpha)


MERGE = module.get_merged_lora_ckpt


class LoRAFinetuneRecipeSingleDeviceValidating(Validating, Torchtune):
    """LoRA on one device, computing the validation loss, merging into copies."""

    def save_checkpoint(self, epoch: int) -> None:
        if self._device.type != "cpu":
            return super().save_checkpoint(epoch)
        module.get_merged_lora_ckpt = merge_into_copies
        try:
            return super().save_checkpoint(epoch)
        finally:
            module.get_merged_lora_ckpt = MERGE


@config.parse
def recipe_main(cfg: DictConfig) -> None:
    run(LoRAFinetuneRecipeSingleDeviceValidating, cfg)


if __name__ == "__main__":
    sys.exit(recipe_main())
