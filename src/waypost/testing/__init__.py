"""Helpers for testing against a real waypost agent process (used by waypost's own
suite and usable by projects that integrate with waypost)."""

from waypost.testing.agent_process import AgentProcess, free_port
from waypost.testing.clock import ManualClock
from waypost.testing.waiting import until, wait_for

__all__ = ["AgentProcess", "ManualClock", "free_port", "until", "wait_for"]
