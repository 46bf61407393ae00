"""The ``virtual_ips`` block: its defaults, and that a bad range or filter stops start-up naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waypost.config import ConfigError, load_config


def test_defaults_are_a_loopback_range_for_every_catalog_service() -> None:
    cfg = load_config(["-dev"])
    assert cfg.virtual_ips.range == "127.240.0.0/12"
    assert cfg.virtual_ips.catalog_services
    assert cfg.virtual_ips.services == {}


def test_declared_virtual_services_from_hcl(tmp_path: Path) -> None:
    path = tmp_path / "vip.hcl"
    path.write_text(
        'virtual_ips {\n  range = "10.99.0.0/24"\n  catalog_services = false\n'
        '  services = { api-v2 = "Service == api and \\"v2\\" in Tags" }\n}\n'
    )
    vips = load_config(["-dev", "-config-file", str(path)]).virtual_ips
    assert (vips.range, vips.catalog_services) == ("10.99.0.0/24", False)
    assert vips.services == {"api-v2": 'Service == api and "v2" in Tags'}


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (
            {"range": "127.240.0.5/12"},
            'virtual_ips.range: invalid network "127.240.0.5/12": 127.240.0.5/12 has host bits set',
        ),
        ({"range": "loopback"}, 'virtual_ips.range: invalid network "loopback"'),
        (
            {"services": {"api": "Nodes == x"}},
            'virtual_ips.services: virtual service "api": Selector "Nodes" is not valid',
        ),
        ({"services": {"api": "Service =="}}, 'virtual_ips.services: virtual service "api": Syntax error'),
        ({"services": {"api": " "}}, 'virtual_ips.services: virtual service "api" needs a filter expression'),
        ({"services": ["api"]}, "virtual_ips.services: expected an object, got a list"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, block: dict[str, object], problem: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"virtual_ips": block}))
    with pytest.raises(ConfigError) as err:
        load_config(["-dev", "-config-file", str(path)])
    assert problem in str(err.value)
    assert err.value.source == str(path)
