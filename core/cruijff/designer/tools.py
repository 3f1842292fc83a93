"""Which installed tool fills each role a designed experiment needs, and how the file spells
it: :func:`choose_tools`."""

from __future__ import annotations

from collections.abc import Mapping

from cruijff.designer.draft import DESIGNED_ROLES
from cruijff.errors import UserError
from cruijff.manager import PluginManager
from cruijff.records import Role, Tool


def tools_of(manager: PluginManager, role: Role) -> list[Tool]:
    """The installed tools of ``role``, by name."""
    return [tool for tool in manager.tools() if tool.role is role]


def spelling(tool: Tool) -> str:
    """How a designed file names a tool: its first alias where it has one (the spelling of
    files written before, cruijff_kit's ``inspect-ai``), else its name."""
    return tool.aliases[0] if tool.aliases else tool.name


def choose_tools(manager: PluginManager, given: Mapping[str, str]) -> dict[str, str]:
    """The tool of each designed role: the one given (checked), else the first installed."""
    chosen = {}
    for role in DESIGNED_ROLES:
        installed = tools_of(manager, role)
        if role.value in given:
            tool = manager.tool(given[role.value])
            if tool.role is not role:
                raise UserError(
                    f"--tool {role.value}={given[role.value]}: {tool.name} is a "
                    f"{tool.role.value} tool",
                    hint=f"{role.value} tools: {', '.join(t.name for t in installed) or 'none'}",
                )
            chosen[role.value] = spelling(tool)
        elif installed:
            chosen[role.value] = spelling(installed[0])
        else:
            raise UserError(
                f"no {role.value} tool is installed",
                hint="install a tool plugin for it (cruijff-torchtune trains, cruijff-inspect "
                "evaluates); `cruijff plugins` lists what is installed",
            )
    return chosen
