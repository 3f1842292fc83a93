"""``python -m cruijff`` is the ``cruijff`` command."""

from cruijff.cli import main

main()
