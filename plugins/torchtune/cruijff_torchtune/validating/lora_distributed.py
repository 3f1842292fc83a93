"""torchtune 0.6.1's LoRA distributed recipe, with the validation loss
(:mod:`cruijff_torchtune.validating`); its start-up is that recipe's ``recipe_main``'s, except
that a run on the CPU uses gloo alone (torchtune's asks for NCCL too, which a CPU build lacks)."""

import sys

from omegaconf import DictConfig
from torch.distributed import init_process_group
from torchtune import config, training

from cruijff_torchtune.validating import Validating, run, torchtune_recipe

# torchtune's class, from its recipe file
Torchtune = torchtune_recipe("lora_finetune_distributed").LoRAFinetuneRecipeDistributed


class LoRAFinetuneRecipeDistributedValidating(Validating, Torchtune):
    """LoRA on several devices, computing the validation loss over all of them."""


@config.parse
def recipe_main(cfg: DictConfig) -> None:
    if not training.is_distributed():
        raise RuntimeError(
            "Distributed finetune recipe should be run via a distributed launcher."
            "If using tune CLI, please specify --nnodes 1 and --nproc_per_node [num_gpus]"
        )
    on_cpu = str(cfg.get("device", "cuda")) == "cpu"
    init_process_group("gloo" if on_cpu else "cuda:nccl,cpu:gloo")
    if cfg.get("fsdp_cpu_offload", False):
        training.set_torch_num_threads()
    run(LoRAFinetuneRecipeDistributedValidating, cfg)


if __name__ == "__main__":
    sys.exit(recipe_main())
