"""The YAML rules of an experiment file: tag names, and PyYAML's loaders with YAML 1.2 floats.

``1e-4``, ``3E5`` and ``1.0e4`` are floats here (YAML 1.2); PyYAML's 1.1 rules make them
strings. The rule is added to this package's own loader classes only, so other users of PyYAML
in the same process keep their behaviour. :data:`FAST_LOADER` is libyaml's parser when PyYAML
has it: PyYAML's own needs half a minute for a 6 MB file.
"""

from __future__ import annotations

import re

import yaml

STD = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, STR = (f"{STD}{name}" for name in ("null", "bool", "int", "float", "str"))
TIMESTAMP, VALUE, MERGE = (f"{STD}{name}" for name in ("timestamp", "value", "merge"))
SEQ, MAP = f"{STD}seq", f"{STD}map"
SCALARS = {NULL, BOOL, INT, FLOAT, STR, TIMESTAMP, VALUE}
"""The tags a plain value may have; any other tag is an error."""

NOT_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
"""What YAML does not allow in a file (PyYAML's rule)."""

_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats."""


class Resolver(yaml.resolver.Resolver):
    """The same tag rules, for :func:`~cruijff.yamlfile.yaml_text` to tell a plain string from
    a number."""


_CLASSES: list[type] = [Loader, Resolver]
if yaml.__with_libyaml__:

    class CLoader(yaml.CSafeLoader):
        """libyaml's parser with the same rules as :class:`Loader`."""

    _CLASSES.append(CLoader)
for _cls in _CLASSES:
    _cls.add_implicit_resolver(FLOAT, _EXPONENT_FLOAT, list("-+0123456789."))

FAST_LOADER: type = _CLASSES[-1]
"""The loader :func:`~cruijff.yamlfile.load_yaml` parses with: libyaml's when there is one."""

PLAIN_RESOLVER = Resolver()
