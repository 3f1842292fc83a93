"""cruijff: LLM fine-tuning experiments from one YAML file, locally or on SLURM.

Importing this package is cheap: no plugin, no torch. The public records live in
:mod:`cruijff.records`, the hooks in :mod:`cruijff.hookspecs`.
"""

from cruijff.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
