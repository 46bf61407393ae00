"""Commands with subcommands (``kv``, ``catalog``, ``services``) answer bare and ``-h`` calls the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from waypost.cli import ui

__all__ = ["Subcommand", "dispatch"]

Subcommand = tuple[Callable[[Sequence[str]], int], str]


def dispatch(name: str, intro: str, subcommands: Mapping[str, Subcommand], argv: Sequence[str]) -> int:
    """Run ``argv[0]``; without one, print the group's help and exit 1 (0 for ``-h``), as Consul does."""
    if argv and argv[0] in subcommands:
        run, _ = subcommands[argv[0]]
        return run(argv[1:])
    width = max(len(n) for n in subcommands)
    listing = "\n".join(
        f"    {n.ljust(width)}    {summary}" for n, (_, summary) in sorted(subcommands.items())
    )
    text = (
        f"Usage: waypost {name} <subcommand> [options] [args]\n\n{intro.strip()}\n\nSubcommands:\n{listing}"
    )
    if argv and argv[0] in ("-h", "-help", "--help"):
        ui.output(text)
        return 0
    if argv:
        ui.error(f"Unknown subcommand: {argv[0]!r}\n")
    ui.error(text)
    return 1
