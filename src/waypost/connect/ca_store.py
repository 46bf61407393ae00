"""The CA's state in the store: initialisation, reconfiguration with rotation, and signing.

Every server shares one ``ConnectCA`` record. The first server to start creates it only if
it does not exist yet, so servers starting together agree on one root (the losers' writes
fail their guard and they read the winner's). A new configuration that changes the
provider's settings rotates the root as Consul's built-in provider does: a new key (or the
one given) and root, cross-signed by the old root's key; the old root stays trusted,
inactive, until the leaves it signed have expired (twice the leaf TTL after its rotation).

Signing reads the record and writes nothing, so a burst of leaf requests after a rotation
costs CPU only.

The private keys stay on servers, as Consul keeps them: client agents are sent the record
``without_keys`` (their leaves are signed, and their configuration changes applied, by a
server), and a record a client writes back (a snapshot restored through it) gets the keys
it could not have been sent from the server's copy (``with_keys``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from waypost.connect import ca
from waypost.connect.ca_config import PROVIDER, CAConfigError, CASettings, normalise, settings
from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.model import CARoot, ConnectCA
from waypost.state.state import State, TxnPlan
from waypost.store.base import Put

__all__ = [
    "active_root",
    "ensure_ca",
    "go_time",
    "issue",
    "new_state",
    "reconfigure",
    "roots_view",
    "set_config",
    "with_keys",
    "without_keys",
]


def go_time(when: dt.datetime) -> str:
    """How Go's encoding/json writes a UTC ``time.Time``."""
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _root(s: CASettings, cluster_id: str, serial: int, now: dt.datetime) -> tuple[CARoot, ca.PrivateKey]:
    """A root from the configured key and certificate, or a fresh key and self-signed root."""
    key = ca.load_key(s.private_key) if s.private_key else ca.generate_key(s.key_type, s.key_bits)
    domain = ca.trust_domain(cluster_id)
    pem = s.root_cert or ca.new_root(
        key, domain, serial=serial, ttl=dt.timedelta(seconds=s.root_ttl), now=now
    )
    info = ca.root_info(pem)
    record = CARoot(
        ID=info.id,
        Name="Consul CA Primary Cert",
        SerialNumber=info.serial,
        SigningKeyID=info.signing_key_id,
        ExternalTrustDomain=cluster_id,
        NotBefore=go_time(info.not_before),
        NotAfter=go_time(info.not_after),
        RootCert=pem if pem.endswith("\n") else pem + "\n",
        SigningKey=ca.key_pem(key),
        Active=True,
        PrivateKeyType=info.key_type,
        PrivateKeyBits=info.key_bits,
    )
    return record, key


def new_state(raw_config: Mapping[str, Any], now: dt.datetime | None = None) -> ConnectCA:
    """A cluster's first CA record from the agent's ``ca_config`` (its ``cluster_id`` or a new one)."""
    config, cluster_id = normalise(raw_config)
    cluster_id = cluster_id or str(uuid.uuid4())
    root, _ = _root(settings(config), cluster_id, 1, now or _now())
    return ConnectCA(ClusterID=cluster_id, Provider=PROVIDER, Config=config, Roots=[root], NextSerial=2)


def active_root(record: ConnectCA) -> CARoot:
    for root in record.Roots:
        if root.Active:
            return root
    raise CAConfigError("the CA has no active root")


def reconfigure(
    current: ConnectCA, provider: str, raw_config: Mapping[str, Any], now: dt.datetime | None = None
) -> ConnectCA | None:
    """The record after ``PUT /v1/connect/ca/configuration``; None when nothing changes.

    Raises CAConfigError for a provider other than the built-in one or settings it refuses."""
    if provider != PROVIDER:
        raise CAConfigError(f'unknown CA provider "{provider}"')
    config, _ = normalise(raw_config)
    if config == current.Config:
        return None
    s = settings(config)
    now = now or _now()
    old = active_root(current)
    if s.private_key and s.private_key == old.SigningKey and s.root_cert in ("", old.RootCert):
        return msgspec.structs.replace(current, Config=config)  # the same root: no rotation
    new, _ = _root(s, current.ClusterID, current.NextSerial, now)
    if new.ID == old.ID:
        return msgspec.structs.replace(current, Config=config)
    if old.SigningKey:
        xc = ca.cross_sign(new.RootCert, old.RootCert, ca.load_key(old.SigningKey), now=now)
        new = msgspec.structs.replace(new, IntermediateCerts=[xc])
    keep_until = now - 2 * dt.timedelta(seconds=settings(current.Config).leaf_ttl)
    roots = []
    for root in current.Roots:
        if root.Active:
            root = msgspec.structs.replace(root, Active=False, RotatedOutAt=go_time(now))
        elif root.RotatedOutAt and dt.datetime.fromisoformat(root.RotatedOutAt) < keep_until:
            continue  # every leaf it signed has expired
        roots.append(msgspec.structs.replace(root, AddedIndex=root.AddedIndex or current.ModifyIndex))
    roots.append(new)
    return msgspec.structs.replace(current, Config=config, Roots=roots, NextSerial=current.NextSerial + 1)


async def ensure_ca(state: State, raw_config: Mapping[str, Any]) -> None:
    """Create the cluster's CA from ``raw_config`` if no server has created it yet. The
    record is not read back: a snapshot restore applied right after the write may already
    have replaced it (a server restoring while it starts), which is no failure to start."""
    fresh: ConnectCA | None = None

    def plan() -> TxnPlan | None:
        nonlocal fresh
        if state.indexes.connect_ca:
            return None
        fresh = fresh or new_state(raw_config)
        return [guard(schema.CONNECT_CA_KEY, None)], [Put(schema.CONNECT_CA_KEY, schema.encode(fresh))]

    await state.write(plan)


async def set_config(state: State, provider: str, raw_config: Mapping[str, Any]) -> None:
    """Apply a new configuration; a rotation computed against a record another server
    changed meanwhile is recomputed from the new one."""

    def plan() -> TxnPlan | None:
        current = state.indexes.connect_ca.get("state")
        if current is None:
            raise CAConfigError("the CA is not initialised yet")
        updated = reconfigure(current, provider, raw_config)
        if updated is None:
            return None
        return [guard(schema.CONNECT_CA_KEY, current)], [Put(schema.CONNECT_CA_KEY, schema.encode(updated))]

    await state.write(plan)


def without_keys(record: ConnectCA) -> ConnectCA:
    """The record as client agents are sent it: no root's signing key and no configured key."""
    config = {k: v for k, v in record.Config.items() if k != "PrivateKey"}
    roots = [msgspec.structs.replace(r, SigningKey="") for r in record.Roots]
    return msgspec.structs.replace(record, Config=config, Roots=roots)


def with_keys(record: ConnectCA, current: ConnectCA | None) -> ConnectCA:
    """A record written through a client agent, with the keys ``without_keys`` left out put
    back from ``current`` (the server's copy), by root ID. Raises CAConfigError when its
    active root's key is known neither to the record nor to this cluster: it could not sign."""
    keys = {r.ID: r.SigningKey for r in current.Roots} if current is not None else {}
    roots = [
        r if r.SigningKey else msgspec.structs.replace(r, SigningKey=keys.get(r.ID, "")) for r in record.Roots
    ]
    record = msgspec.structs.replace(record, Roots=roots)
    active = active_root(record)
    if not active.SigningKey:
        raise CAConfigError(
            f"the active root {active.ID} has no signing key and this cluster does not hold it"
        )
    configured = current.Config.get("PrivateKey") if current is not None else None
    if "PrivateKey" not in record.Config and configured and configured == active.SigningKey:
        record = msgspec.structs.replace(record, Config={**record.Config, "PrivateKey": configured})
    return record


def roots_view(record: ConnectCA) -> dict[str, Any]:
    """``IndexedCARoots`` as Consul's roots endpoints answer: no key material."""
    active = active_root(record)
    roots = [
        {
            "ID": r.ID,
            "Name": r.Name,
            "SerialNumber": r.SerialNumber,
            "SigningKeyID": r.SigningKeyID,
            "ExternalTrustDomain": r.ExternalTrustDomain,
            "NotBefore": r.NotBefore,
            "NotAfter": r.NotAfter,
            "RootCert": r.RootCert,
            "IntermediateCerts": r.IntermediateCerts or None,
            "Active": r.Active,
            "PrivateKeyType": r.PrivateKeyType,
            "PrivateKeyBits": r.PrivateKeyBits,
            "CreateIndex": r.AddedIndex or record.ModifyIndex,
            "ModifyIndex": r.AddedIndex or record.ModifyIndex,
        }
        for r in record.Roots
    ]
    return {"ActiveRootID": active.ID, "TrustDomain": ca.trust_domain(record.ClusterID), "Roots": roots}


def issue(record: ConnectCA, csr_pem: str, service: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Sign a leaf for ``service`` with the active root: Consul's ``IssuedCert``, its
    ``CertPEM`` followed by the root's intermediates (the cross-signed old root's)."""
    root = active_root(record)
    now = now or _now()
    ttl = dt.timedelta(seconds=settings(record.Config).leaf_ttl)
    domain = ca.trust_domain(record.ClusterID)
    pem = ca.sign_leaf(csr_pem, root.RootCert, ca.load_key(root.SigningKey), ttl=ttl, now=now, domain=domain)
    leaf = ca.load_cert(pem)
    chain = "".join(c if c.endswith("\n") else c + "\n" for c in [pem, *root.IntermediateCerts])
    return {
        "SerialNumber": ca.colon_hex(leaf.serial_number.to_bytes(20, "big").lstrip(b"\0") or b"\0"),
        "CertPEM": chain,
        "Service": service,
        "ServiceURI": ca.uri_sans(leaf)[0],
        "ValidAfter": go_time(leaf.not_valid_before_utc),
        "ValidBefore": go_time(leaf.not_valid_after_utc),
    }
