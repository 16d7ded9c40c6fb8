"""``styler models``: list the model files found in ``$STYLER_MODEL_DIR`` and the bundled zoo (torch-free)."""

from __future__ import annotations

import json

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models(as_json: bool) -> None:
    """List the models found in $STYLER_MODEL_DIR and the bundled zoo (the default is marked with *)."""
    from styler.io.zoo import list_models, model_search_dirs

    rows = list_models()
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    if not rows:
        click.echo("no models installed (looked in: " + ", ".join(str(d) for d in model_search_dirs()) + ")")
        return
    for row in rows:
        click.echo(f"{'*' if row.default else ' '} {row.name:<24} {row.size_bytes / 1e6:6.2f} MB  {row.path}")
