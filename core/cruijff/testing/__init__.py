"""The testing kit: what plugin authors and cruijff's own tests need.

- :mod:`cruijff.testing.fixtures`: pytest fixtures, prefixed ``cruijff_`` (a fresh plugin
  manager, ``cruijff_make_experiment``, an in-process ``cruijff_cli``...); opt in with
  ``pytest_plugins = ["cruijff.testing.fixtures"]``.
- :mod:`cruijff.testing.contract`: the contract suites tool and scheduler plugins run.
- :mod:`cruijff.testing.inprocess`: a scheduler that runs jobs from the test's own process.
- :mod:`cruijff.testing.fake`: a fake trainer and a fake evaluator, the smallest complete tools.
- ``DEFAULT_EXPERIMENT`` and :func:`merge`: the experiment ``make_experiment`` writes, and how
  to change it.

This module imports neither pytest nor any tool, so the fake tools can be loaded anywhere
(``CRUIJFF_PLUGINS=cruijff.testing.fake``).
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_EXPERIMENT: dict[str, Any] = {
    "experiment": {"name": "demo", "question": "Does rank matter?"},
    "tools": {"preparation": "fake", "evaluation": "fake-eval"},
    "variables": {"lora_rank": [4, 8]},
    "controls": {"epochs": 2, "prompt": "Capitalize: {input}\n"},
    "models": {"base": [{"name": "tiny", "path": "models/tiny"}]},
    "data": {"training": {"path": "data/words.json"}},
    "evaluation": {"tasks": [{"name": "caps"}]},
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in recursively; a None value removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
