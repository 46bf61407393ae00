"""The catalog records of checks an agent registers, as Consul's agent writes them."""

from __future__ import annotations

from waypost.testing import AgentProcess


def test_zero_durations_are_spelled_as_consul_spells_them(dev_agent: AgentProcess) -> None:
    """A check registered on its own formats its zero durations ("0s"); one registered
    with its service leaves them empty; a given duration is always spelled out."""
    dev_agent.put("/v1/agent/check/register", {"Name": "alone", "TTL": "30s"})
    dev_agent.put("/v1/agent/service/register", {"Name": "web", "Check": {"TTL": "30s"}})
    dev_agent.put(
        "/v1/agent/check/register",
        {"Name": "probe", "TCP": "127.0.0.1:1", "Interval": "10s", "Timeout": "2s"},
    )
    checks = dev_agent.get("/v1/agent/checks")
    spelled = {cid: (c["Interval"], c["Timeout"]) for cid, c in checks.items()}
    assert spelled == {"alone": ("0s", "0s"), "service:web": ("", ""), "probe": ("10s", "2s")}
