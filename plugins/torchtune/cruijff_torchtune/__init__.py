"""cruijff-torchtune: fine-tuning with torchtune. Importing it never imports torch."""

__version__ = "0.1.0"

NAME = "torchtune"
"""The tool's name: what ``tools.preparation`` names, the ``tool`` of its units, the plugin of its
problems."""
