"""cruijff-torchtune: fine-tuning with torchtune. Importing it never imports torch."""

__version__ = "0.1.0"
