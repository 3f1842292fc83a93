"""cruijff-inspect: evaluations with inspect-ai. Importing it never imports inspect_ai."""

__version__ = "0.1.0"
