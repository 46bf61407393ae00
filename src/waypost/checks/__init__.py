"""Health checks: definitions, one module per check type, and the scheduler that runs them."""

from waypost.checks.base import AliasSource, CheckNotifier, CheckResult, CheckType, Clock, LoopClock
from waypost.checks.definition import CheckDefinition, CheckDefinitionError, parse_check_definition
from waypost.checks.scheduler import CheckScheduler, ScriptChecksDisabledError, default_check_types

__all__ = [
    "AliasSource",
    "CheckDefinition",
    "CheckDefinitionError",
    "CheckNotifier",
    "CheckResult",
    "CheckScheduler",
    "CheckType",
    "Clock",
    "LoopClock",
    "ScriptChecksDisabledError",
    "default_check_types",
    "parse_check_definition",
]
