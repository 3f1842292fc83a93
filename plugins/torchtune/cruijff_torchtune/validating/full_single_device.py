"""torchtune 0.6.1's full single-device recipe, with the validation loss
(:mod:`cruijff_torchtune.validating`)."""

import sys

from omegaconf import DictConfig
from torchtune import config

from cruijff_torchtune.validating import Validating, run, torchtune_recipe

# torchtune's class, from its recipe file
# torchtune's class, from its recipe file
Torchtune = torchtune_recipe("full_finetune_single_device").FullFinetuneRecipeSingleDevice


class FullFinetuneRecipeSingleDeviceValidating(Validating, Torchtune):
    """A full fine-tune on one device, computing the validation loss."""


@config.parse
def recipe_main(cfg: DictConfig) -> None:
    run(FullFinetuneRecipeSingleDeviceValidating, cfg)


if __name__ == "__main__":
    sys.exit(recipe_main())
