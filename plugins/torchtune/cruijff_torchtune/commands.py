"""``cruijff recipes``: torchtune's recipes and configs, read from its files in a blink."""

from __future__ import annotations

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def recipes(as_json: bool) -> None:
    """List torchtune's recipes and their configs (names for `controls.base_recipe`)."""
    from cruijff.errors import UserError
    from cruijff_torchtune.recipes import recipes as all_recipes

    found = all_recipes()
    if not found:
        raise UserError("torchtune is not installed", hint="pip install cruijff-torchtune")
    if as_json:
        import json

        click.echo(
            json.dumps(
                [
                    {
                        "recipe": r.name,
                        "distributed": r.distributed,
                        "configs": [c.name for c in r.configs],
                    }
                    for r in found
                ],
                indent=2,
            )
        )
        return
    for recipe in found:
        where = " (distributed)" if recipe.distributed else ""
        click.echo(f"{recipe.name}{where}")
        for config in recipe.configs:
            click.echo(f"    {config.name}")
