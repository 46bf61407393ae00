"""``waypost version``: which waypost this is and which Consul interfaces it speaks."""

from __future__ import annotations

from collections.abc import Sequence

from waypost import __version__
from waypost.cli import ui
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost version [options]

  Prints the version of waypost and the Consul version whose interfaces it
  speaks.

      $ waypost version
      $ waypost version -format=json
"""


def _run(opts: Parsed) -> int:
    from waypost.api.agent import CONSUL_COMPAT_VERSION

    fmt = opts.string("format")
    if fmt not in ("pretty", "json"):
        ui.error(f"Invalid format: {fmt!r} (expected pretty or json)")
        return 1
    if fmt == "json":
        info = {
            "Version": __version__,
            "Revision": "",
            "Prerelease": "",
            "ConsulVersion": CONSUL_COMPAT_VERSION,
        }
        ui.output(ui.go_json(info, indent=2))
        return 0
    ui.output(f"Waypost v{__version__}")
    ui.output(f"Speaks the Consul v{CONSUL_COMPAT_VERSION} HTTP and DNS interfaces")
    return 0


def run(argv: Sequence[str]) -> int:
    fs = FlagSet(USAGE, http=False, server=False)
    fs.string("format", "pretty", "Output format: pretty or json. The default value is pretty.", "string")
    return run_with_flags(fs, argv, _run)
