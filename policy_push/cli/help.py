"""Sub-commands with a description and an example each, shown as written (no re-wrapping, no RST)."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable

__all__ = ["add_action", "add_actions", "add_command", "add_documented", "plain"]


def plain(doc: str | None) -> str:
    """A module docstring as help text: its body without the title line, without RST markup."""
    body = (doc or "").strip().split("\n\n", 1)[-1]
    return " ".join(body.replace("``", "").split("\n")).replace("  ", " ")


def add_command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    summary: str,
    description: str,
    example: str,
) -> argparse.ArgumentParser:
    """``sub.add_parser`` with ``summary`` in the command list, and ``description`` and ``example`` in its help."""
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary[:1].upper()}{summary[1:]}.\n\n{description}",
        epilog=f"example:\n{example}",
        formatter_class=_Formatter,
    )


def add_documented(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    summary: str,
    doc: str | None,
) -> argparse.ArgumentParser:
    """``add_command`` with the help written once, in the docstring ``doc`` of the command's module (or of its
    handler, where one module holds several commands): the paragraphs after its title line are the description,
    the lines after ``Example::`` the example (as written, less the docstring's indentation)."""
    text, marker, example = inspect.cleandoc(doc or "").partition("\nExample::\n")
    if not marker:
        raise ValueError(f"the docstring of the `{name}` command has no Example:: section")
    return add_command(sub, name, summary, plain(text), example.strip("\n").rstrip())


def add_actions(command: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """The required ACTION of a command with several (``policy-push db upgrade``), chosen into ``dest``."""
    return command.add_subparsers(dest=dest, metavar="ACTION", required=True)


def add_action(
    actions: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    summary: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """One action of a command: its parser, shown with ``summary`` and run by ``handler``."""
    p = actions.add_parser(name, help=summary)
    p.set_defaults(handler=handler)
    return p


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the example's lines; wraps only the description's paragraphs."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        if text.startswith("example:"):
            return text
        return "\n\n".join(
            textwrap.fill(par, width, initial_indent=indent, subsequent_indent=indent) for par in text.split("\n\n")
        )
