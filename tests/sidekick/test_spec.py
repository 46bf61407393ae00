from __future__ import annotations

import pytest

from waypost.sidekick.spec import CheckMode, Spec, SpecError, split_names


def _spec(**kw: object) -> Spec:
    base: dict[str, object] = {"service": "web", "port": 8080, "command": ["./web"]}
    return Spec(**{**base, **kw})  # type: ignore[arg-type]


def test_defaults_name_the_service_by_port_and_beat_three_times_per_ttl() -> None:
    spec = _spec()
    assert (spec.id, spec.check_id) == ("web-8080", "service:web-8080")
    assert spec.heartbeat == pytest.approx(10 / 3)
    assert _spec(service_id="web-a", interval=2.0).heartbeat == 2.0
    assert _spec(service_id="web-a").check_id == "service:web-a"


def test_registration_body_carries_everything_given() -> None:
    spec = _spec(address="10.0.0.5", tags=["v1", "blue"], meta={"team": "a"}, ttl=30.0)
    assert spec.registration("passing") == {
        "ID": "web-8080",
        "Name": "web",
        "Port": 8080,
        "Address": "10.0.0.5",
        "Tags": ["v1", "blue"],
        "Meta": {"team": "a"},
        "Check": {
            "CheckID": "service:web-8080",
            "Name": "Service 'web' check",
            "TTL": "30s",
            "Notes": "Kept passing by waypost run while the process runs",
            "Status": "passing",
        },
    }
    assert "Address" not in _spec().registration("critical")
    reaped = _spec(deregister_after=90.0).registration("passing")["Check"]
    assert reaped["DeregisterCriticalServiceAfter"] == "1m30s"


def test_probe_url_from_a_path_or_a_full_url() -> None:
    assert _spec(mode=CheckMode.HTTP, http_path="/health").probe_url == "http://127.0.0.1:8080/health"
    assert _spec(mode=CheckMode.HTTP, http_path="ready").probe_url == "http://127.0.0.1:8080/ready"
    url = "https://127.0.0.1:9443/status"
    assert _spec(mode=CheckMode.HTTP, http_path=url).probe_url == url


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"service": ""}, "Missing service name: -service is required"),
        ({"service": "we b"}, "Invalid service name 'we b'"),
        ({"service_id": "a/b"}, "Invalid -id 'a/b'"),
        ({"port": 0}, "Invalid -port 0: must be between 1 and 65535"),
        ({"port": 70000}, "Invalid -port 70000"),
        ({"command": []}, "Missing command: waypost run [options] -- COMMAND [ARGS...]"),
        ({"ttl": 0.0}, "-check-ttl must be positive"),
        ({"interval": 10.0}, "-check-interval must be shorter than -check-ttl"),
        ({"interval": -1.0}, "-check-interval must not be negative"),
        ({"listen_timeout": 0.0}, "-listen-timeout must be positive"),
        ({"deregister_after": -1.0}, "-check-deregister-after must not be negative"),
        ({"mode": CheckMode.HTTP, "http_path": "ftp://x/y"}, "Invalid -check-http 'ftp://x/y'"),
        ({"meta": {"": "x"}}, "-meta: Couldn't load metadata pair ('', 'x'): Key cannot be blank"),
        (
            {"meta": {"a b": "x"}},
            "-meta: Couldn't load metadata pair ('a b', 'x'): Key contains invalid characters",
        ),
        ({"meta": {"k" * 129: "x"}}, "-meta: Couldn't load metadata pair ('kkk"),
        (
            {"meta": {"consul-x": "y"}},
            "-meta: Couldn't load metadata pair ('consul-x', 'y'): Key prefix 'consul-' is",
        ),
        ({"meta": {"k": "v" * 513}}, "-meta: Couldn't load metadata pair ('k', 'vvv"),
        ({"meta": {f"k{i}": "v" for i in range(65)}}, "-meta: no more than 64 key/value pairs"),
    ],
)
def test_bad_input_is_refused_with_the_flag_named(kw: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as exc:
        _spec(**kw)
    assert str(exc.value).startswith(message)


def test_env_from_names_split_on_commas_in_order_without_repeats() -> None:
    assert split_names(["web,db", "cache", "db"]) == ["web", "db", "cache"]
    assert split_names([" web , db "]) == ["web", "db"]
    with pytest.raises(SpecError, match="empty service name"):
        split_names(["web,,db"])
