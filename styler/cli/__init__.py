"""Command-line interface: a thin click layer that parses options and calls the library.

Each command lives in its own module (``train``, ``apply``, ``ablation``, ...) and is imported only when it runs,
so ``styler --help`` and usage errors never import torch. Library errors (:class:`styler.errors.StylerError`) are
printed as one clean line with exit code 1; usage errors exit with 2 (click's convention). On the apply-only install
(``pip install styler``, no torch) the commands that need the ``train`` extra (``train``, ``compare``,
``independence``, ``report``) print the pip command that adds it and exit with 2, decided once, in
:meth:`LazyGroup.get_command`.
"""

from __future__ import annotations

import importlib
import sys

import click

from styler import __version__

# command name -> (module, attribute, one-line help shown by `styler --help` without importing the module, whether the
# command needs the `train` extra: torch, torchvision, matplotlib)
COMMANDS: dict[str, tuple[str, str, str, bool]] = {
    "train": ("styler.cli.train", "train", "Train a style model on a folder of photos.", True),
    "apply": ("styler.cli.apply", "apply", "Stylize photos with a trained model.", False),
    "info": ("styler.cli.apply", "info", "Print a model file's metadata.", False),
    "models": ("styler.cli.models", "models", "List the bundled models.", False),
    "compare": ("styler.cli.ablation", "compare", "Draw a grid: one row per model, one column per photo.", True),
    "independence": ("styler.cli.ablation", "independence",
                     "Measure and draw batch independence per norm.", True),
    "report": ("styler.cli.ablation", "report", "Build the norm-ablation report from trained models.", True),
    "video": ("styler.cli.video", "video", "Stylize a video (or animated GIF/WebP) with its sound, without flicker.",
              False),
    "serve": ("styler.cli.serve", "serve", "Serve the web app: stylize photos in a browser, and the Norms view.",
              False),
}


class UserError(click.ClickException):
    """A library error (StylerError) shown as one line, ``error: ...``, with exit code 1."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)


class MissingExtra(UserError):
    """A command needs the ``train`` extra on an install without it: what to install, one line, exit code 2 (the
    command cannot be used here at all, like a usage error)."""

    exit_code = 2


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
        """The command, imported now; on an install without the ``train`` extra, the commands that need it stop
        here with the install command (before their module, which would import torch, is touched)."""
        if name not in COMMANDS:
            return None
        module, attr, _, needs_train = COMMANDS[name]
        if needs_train:
            from styler.extras import install_hint, missing_modules

            missing = missing_modules()
            if missing:
                raise MissingExtra(install_hint(f"`styler {name}`", missing))
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text, _) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="styler")
def cli() -> None:
    """styler: fast neural style transfer with instance, batch, group, layer and switchable norms."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``styler`` console script (exit codes: 0 ok, 1 error, 2 usage, 130 interrupted)."""
    from styler.cli.signals import terminate_like_interrupt

    terminate_like_interrupt()  # SIGTERM ends every command like Ctrl-C: exit 130, temp files removed
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
