"""cruijff-trl: fine-tuning with Hugging Face TRL and PEFT. Importing it never imports torch,
transformers, trl or peft: only the training job does."""

__version__ = "0.1.0"

NAME = "trl"
"""The tool's name: what ``tools.preparation`` names, the ``tool`` of its units, the plugin of its
problems."""
