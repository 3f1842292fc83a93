"""torchtune 0.6.1's full distributed recipe, with the validation loss
(:mod:`cruijff_torchtune.validating`)."""

import sys

from omegaconf import DictConfig
from torchtune import config

from cruijff_torchtune.validating import Validating, run, torchtune_recipe

# torchtune's class, from its recipe file
# torchtune's class, from its recipe file
Torchtune = torchtune_recipe("full_finetune_distributed").FullFinetuneRecipeDistributed


class FullFinetuneRecipeDistributedValidating(Validating, Torchtune):
    """A full fine-tune on several devices, computing the validation loss over all of them."""


@config.parse
def recipe_main(cfg: DictConfig) -> None:
    run(FullFinetuneRecipeDistributedValidating, cfg)


if __name__ == "__main__":
    sys.exit(recipe_main())
