from __future__ import annotations

from waypost.sidekick.keeper import Outcome, Registration
from waypost.sidekick.spec import Spec

PROBE = ("passing", "python3 (pid 1) is running")


def test_registers_first_then_updates_the_ttl_check() -> None:
    state = Registration(Spec(service="web", port=8080, command=["web"]))
    path, body = state.request(PROBE)
    assert path == "/v1/agent/service/register"
    assert body["Check"]["Status"] == "passing"
    assert state.answered(200) is Outcome.REGISTERED
    path, body = state.request(PROBE)
    assert path == "/v1/agent/check/update/service:web-8080"
    assert body == {"Status": "passing", "Output": "python3 (pid 1) is running"}
    assert state.answered(200) is Outcome.BEAT


def test_an_agent_that_forgot_the_check_gets_the_service_again() -> None:
    state = Registration(Spec(service="web", port=8080, command=["web"]))
    state.answered(200)
    state.answered(200)
    assert state.answered(404) is Outcome.LOST
    assert state.request(PROBE)[0] == "/v1/agent/service/register"
    state.answered(200)
    state.answered(200)
    # What older Consul releases answer for a check they lost.
    assert state.answered(500, 'CheckID "service:web-8080" does not have associated TTL') is Outcome.LOST
    assert state.answered(500, "rpc error") is Outcome.FAILED


def test_an_outage_between_registering_and_the_first_heartbeat_is_a_restart() -> None:
    state = Registration(Spec(service="web", port=8080, command=["web"]))
    assert state.answered(200) is Outcome.REGISTERED
    assert state.answered(0) is Outcome.FAILED  # unreachable: the agent was killed
    assert state.answered(404) is Outcome.LOST


def test_unknown_right_after_registering_backs_off_instead_of_spinning() -> None:
    state = Registration(Spec(service="web", port=8080, command=["web"]))
    assert state.answered(200) is Outcome.REGISTERED
    assert state.answered(404) is Outcome.FAILED
    assert state.request(PROBE)[0] == "/v1/agent/service/register"


def test_errors_and_refusals_are_retried_after_back_off() -> None:
    state = Registration(Spec(service="web", port=8080, command=["web"]))
    assert state.answered(403) is Outcome.FAILED
    assert state.answered(500) is Outcome.FAILED
    assert state.answered(404) is Outcome.FAILED  # not registered yet: nothing was lost
    assert state.request(PROBE)[0] == "/v1/agent/service/register"


def test_a_malformed_registration_is_refused_for_good_but_a_refused_heartbeat_is_retried() -> None:
    state = Registration(Spec(service="web", port=8080, command=["web"]))
    assert state.answered(400, "Invalid service definition") is Outcome.REFUSED
    state.answered(200)
    assert state.answered(400, "Invalid check status") is Outcome.FAILED
