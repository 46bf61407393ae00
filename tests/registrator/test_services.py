"""Table tests for the pure core: inspect JSON in, registrations out, as Registrator's bridge."""

from __future__ import annotations

from typing import Any

import pytest

from waypost.registrator.services import (
    MARKER_CONTAINER,
    MARKER_HOST,
    ContainerError,
    Options,
    desired_services,
    health_status,
    split_tags,
)

OPTS = Options(hostname="host1", resolved_host_ip="192.0.2.1")


def container(
    *,
    ports: dict[str, Any] | None = None,
    env: list[str] | None = None,
    labels: dict[str, str] | None = None,
    image: str = "registry.example/team/redis:7",
    name: str = "/redis.0",
    networks: dict[str, Any] | None = None,
    mode: str = "bridge",
    exposed: dict[str, Any] | None = None,
    healthcheck: list[str] | None = None,
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "Id": "c0ffee" * 10 + "abcd",
        "Name": name,
        "Config": {
            "Image": image,
            "Env": env or [],
            "Labels": labels,
            "ExposedPorts": exposed,
            "Healthcheck": {"Test": healthcheck} if healthcheck else None,
        },
        "HostConfig": {"NetworkMode": mode},
        "State": {"Running": True, "Health": health},
        "NetworkSettings": {
            "Ports": {"6379/tcp": [{"HostIp": "0.0.0.0", "HostPort": "10000"}]} if ports is None else ports,
            "IPAddress": "",
            "Networks": {"bridge": {"IPAddress": "172.17.0.5"}} if networks is None else networks,
        },
    }


def bodies(c: dict[str, Any], options: Options = OPTS) -> list[dict[str, Any]]:
    return [d.body for d in desired_services(c, options)]


def test_single_service_with_defaults() -> None:
    [body] = bodies(container())
    assert body == {
        "ID": "host1:redis.0:6379",
        "Name": "redis",
        "Address": "192.0.2.1",
        "Port": 10000,
        "Tags": [],
        "Meta": {MARKER_HOST: "host1", MARKER_CONTAINER: "c0ffee" * 10 + "abcd"},
    }


def test_metadata_name_tags_and_attributes() -> None:
    [body] = bodies(container(env=["SERVICE_NAME=db", "SERVICE_TAGS=master,backups", "SERVICE_REGION=us2"]))
    assert (body["Name"], body["Tags"], body["Meta"]["region"]) == ("db", ["master", "backups"], "us2")
    assert "name" not in body["Meta"]
    assert "tags" not in body["Meta"]


def test_service_id_overrides_the_generated_one_even_for_udp() -> None:
    assert bodies(container(env=["SERVICE_ID=db-1"]))[0]["ID"] == "db-1"
    udp = {"53/udp": [{"HostIp": "0.0.0.0", "HostPort": "53"}]}
    [body] = bodies(container(ports=udp, env=["SERVICE_ID=dns-1"]))
    assert (body["ID"], body["Tags"]) == ("dns-1", ["udp"])


def test_labels_override_env_and_port_keys_override_plain_ones() -> None:
    c = container(env=["SERVICE_NAME=env", "SERVICE_6379_NAME=port"], labels={"SERVICE_NAME": "label"})
    assert bodies(c)[0]["Name"] == "port"
    assert bodies(container(env=["SERVICE_NAME=env"], labels={"SERVICE_NAME": "label"}))[0]["Name"] == "label"


def test_several_ports_name_with_port_suffix_and_port_keys() -> None:
    ports = {
        "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "4443"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}],
    }
    env = [
        "SERVICE_443_NAME=https",
        "SERVICE_443_ID=https.12345",
        "SERVICE_443_SNI=enabled",
        "SERVICE_TAGS=www",
    ]
    first, second = bodies(container(ports=ports, env=env, image="progrium/nginx", name="/nginx.0"))
    assert (first["ID"], first["Name"], first["Port"], first["Tags"]) == (
        "host1:nginx.0:80",
        "nginx-80",
        8000,
        ["www"],
    )
    assert (second["ID"], second["Name"], second["Port"]) == ("https.12345", "https", 4443)
    assert second["Meta"]["sni"] == "enabled"
    assert "sni" not in first["Meta"]
    named = bodies(container(ports=ports, env=["SERVICE_NAME=web"], image="nginx"))
    assert [b["Name"] for b in named] == ["web-80", "web-443"]


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("", []),
        ("foobar", ["foobar"]),
        ("foo,bar", ["foo", "bar"]),
        ("foo\\,bar", ["foo,bar"]),
        ("foo,bar\\,baz", ["foo", "bar,baz"]),
        ("\\,foobar\\,", [",foobar,"]),
        (",,,,foo,,,bar,,,", ["foo", "bar"]),
        (",,,,", []),
        (",,\\,,", [","]),
    ],
)
def test_tags_comma_list_with_escape(text: str, tags: list[str]) -> None:
    """Registrator's own TestEscapedComma cases (in order, where Registrator reverses them)."""
    assert split_tags(text) == tags


def test_udp_port_id_and_tag_and_forced_tags() -> None:
    ports = {"53/udp": [{"HostIp": "", "HostPort": "5353"}]}
    [body] = bodies(
        container(ports=ports, env=["SERVICE_TAGS=dns"]), Options("h", host_ip="10.0.0.9", tags=("x",))
    )
    assert (body["ID"], body["Tags"], body["Address"]) == (
        "h:redis.0:53:udp",
        ["dns", "x", "udp"],
        "10.0.0.9",
    )


@pytest.mark.parametrize(
    ("env", "kept"),
    [
        (["SERVICE_IGNORE=true"], []),
        (["SERVICE_6379_IGNORE=1"], ["9999"]),
        (["SERVICE_9999_IGNORE=1"], ["6379"]),
    ],
)
def test_ignore_whole_container_or_one_port(env: list[str], kept: list[str]) -> None:
    ports = {
        "6379/tcp": [{"HostIp": "0.0.0.0", "HostPort": "1"}],
        "9999/tcp": [{"HostIp": "0.0.0.0", "HostPort": "2"}],
    }
    found = bodies(container(ports=ports, env=env))
    assert [b["ID"].rsplit(":", 1)[1] for b in found] == kept


def test_explicit_needs_a_service_name() -> None:
    explicit = Options("h", explicit=True)
    assert bodies(container(), explicit) == []
    assert bodies(container(env=["SERVICE_NAME=db"]), explicit)[0]["Name"] == "db"


def test_unpublished_ports_skipped_unless_internal() -> None:
    ports = {"6379/tcp": None, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert [b["Port"] for b in bodies(container(ports=ports))] == [8080]
    internal = bodies(container(ports=ports), Options("h", internal=True, host_ip="10.9.9.9"))
    assert [(b["Address"], b["Port"]) for b in internal] == [("172.17.0.5", 80), ("172.17.0.5", 6379)]


def test_host_network_exposed_ports_count_as_published() -> None:
    c = container(ports={}, exposed={"8080/tcp": {}}, mode="host", networks={"host": {"IPAddress": ""}})
    assert [(b["Address"], b["Port"]) for b in bodies(c)] == [("192.0.2.1", 8080)]


def test_user_network_address_chosen_by_label_or_flag() -> None:
    networks = {"front": {"IPAddress": "10.1.0.2"}, "back": {"IPAddress": "10.2.0.2"}}
    internal = Options("h", internal=True)
    with pytest.raises(ContainerError, match=r"redis\.0.*back, front.*SERVICE_NETWORK"):
        bodies(container(networks=networks), internal)
    assert bodies(container(networks=networks, labels={"SERVICE_NETWORK": "back"}), internal)[0][
        "Address"
    ] == ("10.2.0.2")
    assert bodies(container(networks=networks), Options("h", internal=True, network="front"))[0][
        "Address"
    ] == ("10.1.0.2")
    with pytest.raises(ContainerError, match="not attached to network 'other'"):
        bodies(container(networks=networks), Options("h", internal=True, network="other"))
    # Published ports on a user-defined network mode use that network's address, as Registrator.
    [body] = bodies(container(networks=networks, mode="back"))
    assert (body["Address"], body["Port"]) == ("10.2.0.2", 10000)


def test_ipv6_only_network_and_ipv6_check_address() -> None:
    networks = {"v6": {"IPAddress": "", "GlobalIPv6Address": "fd00::5"}}
    c = container(networks=networks, env=["SERVICE_CHECK_TCP=true"])
    [body] = bodies(c, Options("h", internal=True))
    assert body["Address"] == "fd00::5"
    assert body["Checks"][0]["TCP"] == "[fd00::5]:6379"


@pytest.mark.parametrize(
    ("env", "check"),
    [
        (
            ["SERVICE_CHECK_HTTP=/health", "SERVICE_CHECK_INTERVAL=15s", "SERVICE_CHECK_TIMEOUT=1s",
             "SERVICE_CHECK_HTTP_METHOD=HEAD"],
            {"HTTP": "http://192.0.2.1:10000/health", "Interval": "15s", "Timeout": "1s", "Method": "HEAD"},
        ),
        (
            ["SERVICE_CHECK_HTTPS=/h", "SERVICE_CHECK_TLS_SKIP_VERIFY=1", "SERVICE_CHECK_HTTPS_METHOD=POST"],
            {"HTTP": "https://192.0.2.1:10000/h", "Interval": "10s", "TLSSkipVerify": True, "Method": "POST"},
        ),
        (
            ["SERVICE_CHECK_SCRIPT=nc $SERVICE_IP $SERVICE_PORT"],
            {"Args": ["/bin/sh", "-c", "nc 192.0.2.1 10000"], "Interval": "10s"},
        ),
        (["SERVICE_CHECK_TTL=30s", "SERVICE_CHECK_INTERVAL=5s"], {"TTL": "30s"}),
        (["SERVICE_CHECK_TCP=true", "SERVICE_CHECK_TIMEOUT=3s"], {"TCP": "192.0.2.1:10000", "Interval": "10s",
                                                                   "Timeout": "3s"}),
        (
            ["SERVICE_CHECK_GRPC=true", "SERVICE_CHECK_GRPC_USE_TLS=true", "SERVICE_CHECK_TLS_SKIP_VERIFY=1"],
            {"GRPC": "192.0.2.1:10000", "Interval": "10s", "GRPCUseTLS": True, "TLSSkipVerify": True},
        ),
        (
            ["SERVICE_6379_CHECK_TTL=1m", "SERVICE_CHECK_INITIAL_STATUS=passing",
             "SERVICE_CHECK_DEREGISTER_AFTER=10m"],
            {"TTL": "1m", "Status": "passing", "DeregisterCriticalServiceAfter": "10m"},
        ),
    ],
)  # fmt: skip
def test_checks_from_metadata(env: list[str], check: dict[str, Any]) -> None:
    [body] = bodies(container(env=env))
    [made] = body["Checks"]
    assert made == {"CheckID": "service:host1:redis.0:6379", "Name": "Service 'redis' check", **check}
    assert body["Meta"]["check_" + env[0].split("CHECK_", 1)[1].split("=")[0].lower()]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (["SERVICE_CHECK_TTL=soon"], 'redis.0: SERVICE_CHECK_TTL: time: invalid duration "soon"'),
        (["SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=10"], "SERVICE_CHECK_INTERVAL: time: missing unit"),
        (["SERVICE_CHECK_TTL=1s", "SERVICE_CHECK_INITIAL_STATUS=ok"], "'ok' is not one of passing"),
        (["SERVICE_CHECK_TTL=1s", "SERVICE_CHECK_DEREGISTER_AFTER=x"], "SERVICE_CHECK_DEREGISTER_AFTER"),
    ],
)
def test_malformed_values_name_the_container(env: list[str], message: str) -> None:
    with pytest.raises(ContainerError, match=r"container redis\.0: ") as err:
        desired_services(container(env=env), OPTS)
    assert message in str(err.value)


def test_healthcheck_mirrored_and_ttl_heartbeat() -> None:
    c = container(
        healthcheck=["CMD-SHELL", "true"], health={"Status": "healthy", "Log": [{"Output": "ok\n"}]}
    )
    [desired] = desired_services(c, Options("h", ttl=30))
    assert desired.health == ("passing", "ok")
    assert [(k["CheckID"], k["TTL"]) for k in desired.body["Checks"]] == [
        ("service:h:redis.0:6379:health", "30s"),
        ("service:h:redis.0:6379:ttl", "30s"),
    ]
    assert "Status" not in desired.body["Checks"][0]
    assert health_status(container(healthcheck=["NONE"])) is None
    assert health_status(container(healthcheck=["CMD", "x"])) == ("critical", "container health: starting")
    unhealthy = container(
        healthcheck=["CMD", "x"], health={"Status": "unhealthy", "Log": [{"Output": "boom"}]}
    )
    assert health_status(unhealthy) == ("critical", "boom")


def test_image_base_name_without_tag_or_digest() -> None:
    for image, name in [("redis", "redis"), ("localhost:5000/a/web:1.2", "web"), ("x/api@sha256:abc", "api")]:
        assert bodies(container(image=image))[0]["Name"] == name
