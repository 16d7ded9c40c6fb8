"""Command-line interface: a thin click layer that parses options and calls the library.

Each command lives in its own module (``train``, ``apply``, ``ablation``, ...) and is imported only when it runs,
so ``styler --help`` and usage errors never import torch. Library errors (:class:`styler.errors.StylerError`) are
printed as one clean line with exit code 1; usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import importlib
import sys

import click

from styler import __version__

# command name -> (module, attribute, one-line help shown by `styler --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("styler.cli.train", "train", "Train a style model on a folder of photos."),
    "apply": ("styler.cli.apply", "apply", "Stylize photos with a trained model."),
    "info": ("styler.cli.apply", "info", "Print a model file's metadata."),
    "models": ("styler.cli.apply", "models", "List the bundled models."),
    "compare": ("styler.cli.ablation", "compare", "Draw a grid: one row per model, one column per photo."),
    "independence": ("styler.cli.ablation", "independence",
                     "Measure and draw batch independence per norm."),
    "report": ("styler.cli.ablation", "report", "Build the norm-ablation report from trained models."),
}


class UserError(click.ClickException):
    """A library error (StylerError) shown as one line, ``error: ...``, with exit code 1."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is invoked (or its help shown).

    It also turns :class:`styler.errors.StylerError` into a clean one-line message with exit code 1, so the console
    script and click's test runner behave the same.
    """

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        from styler.errors import StylerError

        try:
            return super().invoke(ctx)
        except StylerError as exc:
            raise UserError(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="styler")
def cli() -> None:
    """styler: fast neural style transfer with instance, batch, group, layer and switchable norms."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``styler`` console script (exit codes: 0 ok, 1 error, 2 usage, 130 interrupted)."""
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        # The raw arguments travel with the context: `train --nproc N` relaunches itself under torchrun with them.
        code = cli.main(args=args, prog_name="styler", standalone_mode=False, obj={"argv": args})
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    else:
        sys.exit(code if isinstance(code, int) else 0)
