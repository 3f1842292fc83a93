"""``cruijff plugins``: what is installed, what it provides and whether it can run."""

from __future__ import annotations

import click

from cruijff.cli import App, json_option


@click.command()
@json_option
@click.pass_obj
def command(app: App, as_json: bool) -> None:
    """List installed plugins: version, tools and schedulers, hooks, and whether the modules
    their jobs need can be imported here."""
    from cruijff.cli.render import print_json, table
    from cruijff.manager import requirements_status

    manager = app.manager
    owners: dict[str, list[dict]] = {}
    for tool in manager.tools():
        owners.setdefault(manager.provider(tool.name).name, []).append(
            {
                "kind": "tool",
                "name": tool.name,
                "role": tool.role.value,
                "requires": dict(requirements_status(tool.requires)),
            }
        )
    for info in manager.schedulers():
        owners.setdefault(manager.provider(info.name).name, []).append(
            {
                "kind": "scheduler",
                "name": info.name,
                "available": info.available(),
                "requires": dict(requirements_status(info.requires)),
            }
        )
    plugins = [
        {
            "name": p.name,
            "distribution": p.dist,
            "version": p.version,
            "module": p.module,
            "hooks": manager.hooks_of(p.name),
            "provides": owners.get(p.name, []),
            "ready": all(all(item["requires"].values()) for item in owners.get(p.name, [])),
        }
        for p in manager.plugins()
    ]
    broken = [{"name": name, "error": message} for name, message in manager.broken.items()]
    if as_json:
        print_json({"plugins": plugins, "broken": broken})
        return

    def provides(plugin: dict) -> str:
        return ", ".join(f"{item['kind']} {item['name']}" for item in plugin["provides"])

    def missing(plugin: dict) -> str:
        gone = [m for item in plugin["provides"] for m, ok in item["requires"].items() if not ok]
        return "yes" if not gone else "missing " + ", ".join(gone)

    table(
        "Plugins",
        ["plugin", "distribution", "version", "provides", "ready", "hooks"],
        (
            [
                p["name"],
                p["distribution"],
                p["version"],
                provides(p),
                missing(p),
                ", ".join(h.removeprefix("cruijff_") for h in p["hooks"]),
            ]
            for p in plugins
        ),
    )
    for item in broken:
        click.echo(f"broken: {item['name']}: {item['error']}", err=True)
