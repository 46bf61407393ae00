"""The agent configuration: every key waypost implements, its type and its default.

These dataclasses are the schema. The decoder reads the field types (with the
checks attached through ``Annotated``) to validate files and flags, and the
field defaults are Consul's defaults (``agent/config/default.go``), so a key
is added by adding a field here and nowhere else. Keys Consul knows but
waypost does not implement are listed in ``compat.py``.

A few defaults depend on other settings (node name, node ID, advertise
address, store, leave behaviour...); their field default is the "unset"
value and ``builder.py`` fills them in, as noted on each field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from waypost.config.values import (
    datacenter_name,
    encrypt_key,
    filter_expressions,
    ip_address,
    ip_addresses,
    ip_network,
    log_level,
    node_id,
    non_negative,
    one_of,
    port,
    positive,
    positive_duration,
    store_url,
    tls_cipher_suites,
    tls_version,
)
from waypost.durations import parse_duration

__all__ = [
    "ACL",
    "DEV_DEFAULTS",
    "RUNTIME",
    "ACLTokens",
    "Addresses",
    "AgentConfig",
    "Connect",
    "DNSConfig",
    "Duration",
    "HTTPConfig",
    "Limits",
    "Liveness",
    "Performance",
    "Ports",
    "SOAConfig",
    "TLSConfig",
    "TLSInternalRPC",
    "TLSProtocol",
    "TombstoneGC",
    "UIConfig",
    "VirtualIPs",
]

Port = Annotated[int, port]
IP = Annotated[str, ip_address]
IPList = Annotated[str, ip_addresses]
Count = Annotated[int, non_negative]
Definition = dict[str, Any]

#: Field metadata for facts about the run rather than settings; files and flags cannot set them.
RUNTIME = {"runtime": True}


@dataclass(frozen=True, slots=True)
class Duration:
    """A Go duration kept as written and in seconds.

    The HTTP API echoes settings back in Consul's spelling while timers need a
    number, so both travel together instead of being re-parsed at each use.
    Constructing one from bad text raises ValueError.
    """

    text: str
    seconds: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        try:
            seconds = parse_duration(self.text)
        except ValueError as err:
            raise ValueError(f'invalid duration: "{self.text}": {err}') from None
        object.__setattr__(self, "seconds", seconds)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Addresses:
    """Per-interface overrides of ``client_addr``; empty means "use client_addr"."""

    dns: IPList = ""
    http: IPList = ""
    https: IPList = ""
    grpc: IPList = ""
    grpc_tls: IPList = ""


@dataclass(frozen=True, slots=True)
class Ports:
    """Listener ports; -1 (or any value <= 0) disables the listener."""

    dns: Port = 8600
    http: Port = 8500
    https: Port = -1
    grpc: Port = -1
    grpc_tls: Port = -1
    serf_lan: Port = 8301
    serf_wan: Port = 8302
    server: Port = 8300
    #: The range a registration's ``sidecar_service`` without a port takes its port from.
    sidecar_min_port: Port = 21000
    sidecar_max_port: Port = 21255


@dataclass(frozen=True, slots=True)
class SOAConfig:
    refresh: Count = 3600
    retry: Count = 600
    expire: Count = 86400
    min_ttl: Count = 0


@dataclass(frozen=True, slots=True)
class DNSConfig:
    allow_stale: bool = True
    max_stale: Duration = Duration("87600h")
    only_passing: bool = False
    enable_truncate: bool = False
    udp_answer_limit: Count = 3
    a_record_limit: Count = 0
    node_ttl: Duration = Duration("0s")
    #: Service name (or "*" for all, or a "prefix*") to the TTL of its answers.
    service_ttl: Mapping[str, Duration] = field(default_factory=dict)
    soa: SOAConfig = SOAConfig()
    recursor_timeout: Duration = Duration("2s")
    recursor_strategy: Annotated[str, one_of("sequential", "random")] = "sequential"
    enable_additional_node_meta_txt: bool = True
    disable_compression: bool = False
    use_cache: bool = False
    cache_max_age: Duration = Duration("0s")


@dataclass(frozen=True, slots=True)
class Limits:
    http_max_conns_per_client: Count = 200
    https_handshake_timeout: Duration = Duration("5s")
    kv_max_value_size: Annotated[int, positive] = 512 * 1024
    txn_max_req_len: Annotated[int, positive] = 512 * 1024


@dataclass(frozen=True, slots=True)
class ACLTokens:
    """ACL tokens; the pre-1.11 names (``master``, ``agent_master``) are read into the new ones."""

    initial_management: str = ""
    agent: str = ""
    agent_recovery: str = ""
    default: str = ""
    dns: str = ""
    replication: str = ""
    config_file_service_registration: str = ""


@dataclass(frozen=True, slots=True)
class ACL:
    enabled: bool = False
    default_policy: Annotated[str, one_of("allow", "deny")] = "allow"
    down_policy: Annotated[str, one_of("allow", "deny", "extend-cache", "async-cache")] = "extend-cache"
    enable_token_persistence: bool = False
    enable_token_replication: bool = False
    enable_key_list_policy: bool = False
    policy_ttl: Duration = Duration("30s")
    role_ttl: Duration = Duration("30s")
    token_ttl: Duration = Duration("30s")
    tokens: ACLTokens = ACLTokens()


@dataclass(frozen=True, slots=True)
class UIConfig:
    """The web UI; the deprecated top-level ``ui``/``ui_dir`` keys are read into it."""

    enabled: bool = False
    dir: str = ""
    content_path: str = "/ui/"


@dataclass(frozen=True, slots=True)
class Connect:
    """Connect's built-in CA: ``ca_config`` holds the provider's settings in either Consul
    spelling (``leaf_cert_ttl`` or ``LeafCertTTL``) and may name the ``cluster_id``; the
    first server to start creates the CA from them (later changes go through the API)."""

    enabled: bool = True
    ca_provider: Annotated[str, one_of("", "consul")] = ""
    ca_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    response_headers: Mapping[str, str] = field(default_factory=dict)
    block_endpoints: tuple[str, ...] = ()
    allow_write_http_from: tuple[str, ...] = ()
    #: 0 means Go's default, 1 MiB.
    max_header_bytes: Count = 0
    #: Consul's switch for agent caching: off, ``?cached`` is ignored (Connect reads still cache).
    use_cache: bool = True
    # waypost keys, not Consul's. Consul's server puts no cap on bodies outside KV and
    # transactions and no deadline on reading headers or on idle connections, so a
    # handful of stalled sockets can hold its connection slots forever. A body limit
    # below kv_max_value_size or txn_max_req_len does not apply to those endpoints;
    # a zero duration disables the deadline.
    max_body_bytes: Annotated[int, positive] = 8 * 1024 * 1024
    read_header_timeout: Duration = Duration("30s")
    idle_timeout: Duration = Duration("5m")


@dataclass(frozen=True, slots=True)
class TLSProtocol:
    """One kind of connection's TLS settings (Consul's ``tls.defaults``, ``tls.https``...).

    ``builder.py`` fills the keys a listener's block leaves unset from ``tls.defaults``,
    so after loading each block is complete on its own.
    """

    ca_file: str = ""
    ca_path: str = ""
    cert_file: str = ""
    key_file: str = ""
    verify_incoming: bool = False
    verify_outgoing: bool = False
    tls_min_version: Annotated[str, tls_version] = "TLSv1_2"
    #: Go's cipher suite names, comma separated; empty means the library's defaults.
    tls_cipher_suites: Annotated[str, tls_cipher_suites] = ""


@dataclass(frozen=True, slots=True)
class TLSInternalRPC(TLSProtocol):
    """The agent-to-server port; with ``verify_server_hostname`` a client agent accepts
    only a certificate naming ``server.<datacenter>.<domain>``."""

    verify_server_hostname: bool = False


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Consul's ``tls`` section; the flat pre-1.12 keys (``cert_file``...) are read into it.

    ``store`` is waypost's: the client certificate and CA a server uses towards an
    ``etcds://`` store.
    """

    defaults: TLSProtocol = TLSProtocol()
    https: TLSProtocol = TLSProtocol()
    internal_rpc: TLSInternalRPC = TLSInternalRPC()
    store: TLSProtocol = TLSProtocol()


@dataclass(frozen=True, slots=True)
class Performance:
    raft_multiplier: Annotated[int, positive] = 5


@dataclass(frozen=True, slots=True)
class GossipWAN:
    """How often a server probes each server of the other datacenters, how long a probe may
    take, and how many probes in a row must fail before that server is reported failed
    (Consul's WAN gossip keys; waypost probes over the HTTP API rather than memberlist)."""

    probe_interval: Annotated[Duration, positive_duration] = Duration("5s")
    probe_timeout: Annotated[Duration, positive_duration] = Duration("3s")
    suspicion_mult: Annotated[int, positive] = 6


@dataclass(frozen=True, slots=True)
class Liveness:
    """waypost's replacement for Serf's failure detector (not a Consul key).

    Every agent refreshes a heartbeat for its node in the store each
    ``heartbeat_interval``; a node whose heartbeat is older than
    ``failure_timeout`` gets its ``serfHealth`` check set to critical. Failed
    nodes are removed after the Consul key ``reconnect_timeout``. Left at its
    default, the interval grows with the cluster, and each node's deadline with
    its own interval (see ``waypost.agent.pacing``).
    """

    heartbeat_interval: Duration = Duration("1s")
    failure_timeout: Duration = Duration("10s")
    #: Whether ``heartbeat_interval`` was left at its default, which scales with the cluster.
    heartbeat_scaled: bool = field(default=True, metadata=RUNTIME)


@dataclass(frozen=True, slots=True)
class TombstoneGC:
    """How long deleted KV keys keep their tombstone, which holds a prefix's blocking index
    up after its newest key is deleted (not a Consul key: Consul fixes its servers'
    ``TombstoneTTL`` and ``TombstoneTTLGranularity`` at these defaults). The leader reaps
    tombstones older than ``ttl``, batched into reaps at most ``granularity`` apart."""

    ttl: Annotated[Duration, positive_duration] = Duration("15m")
    granularity: Annotated[Duration, positive_duration] = Duration("30s")


@dataclass(frozen=True, slots=True)
class VirtualIPs:
    """waypost's virtual IPs (not a Consul key), one stable address per name.

    The leader gives every catalog service name an address from ``range`` (unless
    ``catalog_services`` is off), and every name in ``services`` too: a declared virtual
    service, whose value is a filter expression choosing its instances by ``Service``,
    ``Tags`` and ``Meta``. The default range is on loopback, which Linux routes to ``lo``
    whole, so that proxies can listen on the addresses without privileges. Every server
    should use the same settings: whichever leads allocates.
    """

    range: Annotated[str, ip_network] = "127.240.0.0/12"
    catalog_services: bool = True
    services: Annotated[Mapping[str, str], filter_expressions] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    datacenter: Annotated[str, datacenter_name] = "dc1"
    #: Defaults to ``datacenter``.
    primary_datacenter: Annotated[str, datacenter_name] = ""
    #: Defaults to the host name.
    node_name: str = ""
    #: Defaults to the ID persisted in ``data_dir/node-id``, else a new random UUID.
    node_id: Annotated[str, node_id] = ""
    node_meta: Mapping[str, str] = field(default_factory=dict)
    tagged_addresses: Mapping[str, str] = field(default_factory=dict)
    server: bool = False
    bootstrap: bool = False
    bootstrap_expect: Count = 0
    data_dir: str = ""
    pid_file: str = ""
    log_level: Annotated[str, log_level] = "info"
    log_json: bool = False
    client_addr: IPList = "127.0.0.1"
    bind_addr: IP = "0.0.0.0"
    #: Defaults to ``bind_addr``, or this host's outbound address when that is 0.0.0.0/::.
    advertise_addr: IP = ""
    #: Defaults to ``advertise_addr``.
    advertise_addr_wan: IP = ""
    addresses: Addresses = Addresses()
    ports: Ports = Ports()
    retry_join: tuple[str, ...] = ()
    retry_interval: Duration = Duration("30s")
    retry_max: Count = 0
    start_join: tuple[str, ...] = ()
    #: Servers only: other datacenters' servers, ``host[:port]`` of their HTTP API.
    retry_join_wan: tuple[str, ...] = ()
    retry_interval_wan: Duration = Duration("30s")
    retry_max_wan: Count = 0
    start_join_wan: tuple[str, ...] = ()
    #: How long a failed server of another datacenter stays listed before it is forgotten.
    reconnect_timeout_wan: Duration = Duration("72h")
    gossip_wan: GossipWAN = GossipWAN()
    rejoin_after_leave: bool = False
    reconnect_timeout: Duration = Duration("72h")
    domain: str = "consul."
    alt_domain: str = ""
    recursors: tuple[str, ...] = ()
    dns_config: DNSConfig = DNSConfig()
    enable_script_checks: bool = False
    #: Defaults to ``enable_script_checks``.
    enable_local_script_checks: bool = False
    check_output_max_size: Annotated[int, positive] = 4096
    check_update_interval: Duration = Duration("5m")
    discard_check_output: bool = False
    ae_interval: Duration = Duration("1m")
    default_query_time: Duration = Duration("300s")
    max_query_time: Duration = Duration("600s")
    session_ttl_min: Duration = Duration("10s")
    limits: Limits = Limits()
    acl: ACL = ACL()
    ui_config: UIConfig = UIConfig()
    connect: Connect = Connect()
    http_config: HTTPConfig = HTTPConfig()
    performance: Performance = Performance()
    encrypt: Annotated[str, encrypt_key] = ""
    tls: TLSConfig = TLSConfig()
    #: Defaults to true on clients and false on servers.
    leave_on_terminate: bool = False
    #: Defaults to true on servers and false on clients.
    skip_leave_on_interrupt: bool = False
    disable_update_check: bool = False
    disable_anonymous_signature: bool = False
    disable_remote_exec: bool = True
    disable_host_node_id: bool = True
    enable_debug: bool = False
    #: Service and check definitions as written (``service``/``check`` blocks included);
    #: the agent normalises their keys when it registers them.
    services: tuple[Definition, ...] = ()
    checks: tuple[Definition, ...] = ()
    #: waypost: where the catalog lives. Defaults to memory:// in -dev, to
    #: sqlite:///<data_dir>/store.db on a server, and to "" (no local store) on a client.
    store: Annotated[str, store_url] = ""
    liveness: Liveness = Liveness()
    tombstone_gc: TombstoneGC = TombstoneGC()
    virtual_ips: VirtualIPs = VirtualIPs()

    dev: bool = field(default=False, metadata=RUNTIME)
    #: The agent's command line, so that a reload re-reads the same files and flags.
    argv: tuple[str, ...] = field(default=(), metadata=RUNTIME)
    #: Things worth logging at start-up: keys accepted but ignored, skipped files.
    warnings: tuple[str, ...] = field(default=(), metadata=RUNTIME)


#: What ``-dev`` changes, applied before any file or flag (Consul's DevSource).
DEV_DEFAULTS: dict[str, object] = {
    "server": True,
    "bind_addr": "127.0.0.1",
    "log_level": "DEBUG",
    "ui_config": {"enabled": True},
    "disable_anonymous_signature": True,
    "enable_debug": True,
    "connect": {"enabled": True},
    "performance": {"raft_multiplier": 1},
    "ports": {"grpc": 8502},
    "store": "memory://",
    "liveness": {"heartbeat_interval": "200ms", "failure_timeout": "2s"},
}
