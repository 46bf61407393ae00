"""``waypost validate``: check config files as ``agent`` would load them, without starting one.

Deployment pipelines run ``consul validate`` before rolling a config out and
branch on its exit code, so the output and codes are Consul's: warnings on
stderr, "Configuration is valid!" and 0, or "Config validation failed: ..." and 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.config import ConfigError, check_config

USAGE = """
Usage: waypost validate [options] FILE_OR_DIRECTORY...

  Performs a thorough sanity test on configuration files. For each file or
  directory given, the validate command will attempt to parse the contents
  just as the "waypost agent" command would, and catch any errors.

  This is useful to do a test of the configuration only, without actually
  starting the agent. This performs all of the validation the agent would, so
  this should be given the complete set of configuration files that are going
  to be loaded by the agent. This command cannot operate on partial
  configuration fragments since those won't pass the full agent validation.

  Returns 0 if the configuration is valid, or 1 if there are problems.

      $ waypost validate /etc/consul.d
      Configuration is valid!
"""


def _run(opts: Parsed) -> int:
    if not opts.args:
        ui.error("Must specify at least one config file or directory")
        return 1
    config_format = opts.string("config-format")
    if config_format not in ("", "hcl", "json"):
        ui.error("-config-format must be either 'hcl' or 'json'")
        return 1
    try:
        cfg = check_config(opts.args, config_format)
    except ConfigError as exc:
        ui.error(f"Config validation failed: {exc}")
        return 1
    if not opts.boolean("quiet"):
        for warning in cfg.warnings:
            ui.error(warning)
        ui.output("Configuration is valid!")
    return 0


def run(argv: Sequence[str]) -> int:
    fs = FlagSet(USAGE, http=False, server=False)
    fs.string(
        "config-format",
        "",
        "Config files are in this format irrespective of their extension. Must be 'hcl' or 'json'",
    )
    fs.boolean("quiet", False, "When given, a successful run will produce no output.")
    return run_with_flags(fs, argv, _run)
