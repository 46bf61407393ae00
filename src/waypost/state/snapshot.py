"""Snapshot archives: the store's records to Consul's snapshot file layout and back, in memory.

The file is what ``consul snapshot save`` writes: a gzipped tar holding ``meta.json``
(Raft's snapshot metadata), ``state.bin`` (the records) and ``SHA256SUMS``, so the same
tooling habits (checksums, ``inspect``'s ID/Size/Index/Term/Version) apply. ``state.bin``
is waypost's own: like Consul's it is a run of records each led by its Consul message
type byte, but each record carries a length and holds one store key and its msgpack value,
because waypost's records are store keys, not Raft log entries.

Reading is all-or-nothing and checks everything a restore relies on before anything is
written: the gzip stream, the tar members, both checksums, the metadata, and that every
record belongs to a snapshotted table and decodes as that table's record. It reads a file
as a stream and inflates it to a temporary file, so an archive of any size costs memory
only for its records. A file that
fails any check raises ``SnapshotError`` with Consul's wording where Consul has one.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from waypost.state import schema
from waypost.store.base import KeyValue

__all__ = [
    "MAX_STATE_SIZE",
    "TRANSIENT",
    "TYPES",
    "Entry",
    "Meta",
    "Snapshot",
    "SnapshotError",
    "decode",
    "encode",
    "snapshotted",
]

MAX_STATE_SIZE = 512 * 1024 * 1024
"""Decompressed bytes a snapshot may hold; a gzip bomb stops here instead of exhausting the disk."""

_READ = 1 << 20
"""Bytes read, and at most inflated, at a time."""

_IN_MEMORY = 8 << 20
"""An inflated archive up to this size stays in memory; a larger one goes to a temporary file."""

TYPES: dict[str, tuple[int, str]] = {
    schema.NODES.name: (0, "Register"),
    schema.SERVICES.name: (0, "Register"),
    schema.CHECKS.name: (0, "Register"),
    schema.KVS.name: (2, "KVS"),
    schema.SESSIONS.name: (3, "Session"),
    schema.COORDINATES.name: (6, "CoordinateBatchUpdate"),
    schema.PREPARED_QUERIES.name: (7, "PreparedQuery"),
    schema.VIRTUAL_IPS.name: (32, "ServiceVirtualIP"),
    schema.VIRTUAL_IP_CLAIMS.name: (32, "ServiceVirtualIP"),
    schema.ACL_BOOTSTRAP.name: (11, "ACLBootstrap"),
    schema.INTENTIONS.name: (12, "Intention"),
    schema.CONNECT_CA.name: (13, "ConnectCA"),
    schema.ACL_TOKENS.name: (17, "ACLToken"),
    schema.ACL_POLICIES.name: (19, "ACLPolicy"),
    schema.ACL_ROLES.name: (26, "ACLRole"),
}
"""Snapshotted tables and the Consul message type (number, name) their records travel as."""

TRANSIENT = frozenset(
    {schema.MEMBERS.name, schema.LIVENESS.name, schema.LEADER.name, schema.EVENTS.name, "graveyard"}
)
"""Tables a snapshot leaves out, as Consul's leaves out gossip: membership, liveness and the
leader belong to the running agents, user events are fire-and-forget (restoring old ones
would run their watch handlers again), and the graveyard's reap index is a revision of the
store it was read from. Every table is in exactly one of TYPES and TRANSIENT."""

_TABLES = [t for t in schema.TABLES if t.name in TYPES]
_META = "meta.json"
_STATE = "state.bin"
_SUMS = "SHA256SUMS"
_FRAME = struct.Struct(">BI")


class SnapshotError(ValueError):
    """The bytes are not a complete, intact waypost snapshot; nothing was restored."""


class Entry(msgspec.Struct, frozen=True):
    """One store key of a snapshotted table, with the indexes its record showed when saved
    (its revisions, or those it carried from an earlier restore); the value is the bare
    record."""

    Key: str
    Value: bytes
    CreateIndex: int
    ModifyIndex: int


class Server(msgspec.Struct):
    Suffrage: int
    ID: str
    Address: str


class Configuration(msgspec.Struct):
    Servers: list[Server] = msgspec.field(default_factory=list)


class Meta(msgspec.Struct):
    """Raft's SnapshotMeta, as Consul's meta.json spells it."""

    Version: int
    ID: str
    Index: int
    Term: int
    Size: int
    Peers: bytes | None = None
    Configuration: Configuration = msgspec.field(default_factory=Configuration)
    ConfigurationIndex: int = 0


@dataclass(frozen=True)
class Snapshot:
    meta: Meta
    entries: list[tuple[int, Entry]]
    """(message type, entry) in file order."""

    def stats(self) -> list[tuple[str, int, int]]:
        """(type name, count, bytes) per message type, largest first as ``inspect`` lists them."""
        names = {number: name for number, name in TYPES.values()}
        totals: dict[str, list[int]] = {}
        for kind, entry in self.entries:
            row = totals.setdefault(names[kind], [0, 0])
            row[0] += 1
            row[1] += _FRAME.size + len(_ENCODER.encode(entry))
        return sorted(((n, c, s) for n, (c, s) in totals.items()), key=lambda r: (-r[2], r[0]))


_ENCODER = msgspec.msgpack.Encoder()
_ENTRY = msgspec.msgpack.Decoder(Entry)
_META_DECODER = msgspec.json.Decoder(Meta)


def snapshotted(key: str) -> schema.Table[Any] | None:
    """The snapshotted table ``key`` belongs to, or None for transient and foreign keys."""
    for table in _TABLES:
        if key.startswith(table.prefix):
            return table
    return None


def encode(
    kvs: Iterable[KeyValue], index: int, *, term: int = 1, servers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The archive of every snapshotted key in ``kvs`` (a store read at revision ``index``);
    ``servers`` are (ID, address) pairs for the Raft configuration in meta.json."""
    state = bytearray()
    for kv in kvs:
        table = snapshotted(kv.key)
        if table is None:
            continue
        value, create, modify = schema.carried(kv.value)
        entry = Entry(kv.key, value, create or kv.create_revision, modify or kv.mod_revision)
        payload = _ENCODER.encode(entry)
        state += _FRAME.pack(TYPES[table.name][0], len(payload))
        state += payload
    meta = Meta(
        Version=1,
        ID=f"{term}-{index}-{int(time.time() * 1000)}",
        Index=index,
        Term=term,
        Size=len(state),
        Configuration=Configuration([Server(0, sid, addr) for sid, addr in servers]),
        ConfigurationIndex=index,
    )
    meta_bytes = msgspec.json.encode(meta) + b"\n"
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in ((_META, meta_bytes), (_STATE, bytes(state)))
    ).encode()
    out = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in ((_META, meta_bytes), (_STATE, bytes(state)), (_SUMS, sums)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(now)
            tar.addfile(info, io.BytesIO(data))
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return compressor.compress(out.getvalue()) + compressor.flush()


def decode(source: bytes | IO[bytes]) -> Snapshot:
    """Verify an archive completely and return its records; raises ``SnapshotError``.
    ``source`` is its bytes, or a file read from its current position to its end."""
    with _gunzip(io.BytesIO(source) if isinstance(source, bytes) else source) as raw:
        files = _untar(raw)
    sums = files.pop(_SUMS, b"")
    _verify(files, sums)
    try:
        meta = _META_DECODER.decode(files[_META])
    except msgspec.DecodeError as exc:
        raise SnapshotError(
            f"failed to read snapshot file: failed to decode snapshot metadata: {exc}"
        ) from None
    state = files[_STATE]
    if meta.Size != len(state):
        raise SnapshotError(
            f"failed to read snapshot file: meta.json says {meta.Size} bytes, state.bin has {len(state)}"
        )
    return Snapshot(meta, _records(state))


def _gunzip(source: IO[bytes]) -> IO[bytes]:
    """The inflated archive, rewound; at most ``_READ`` bytes are inflated at a time, so a
    gzip bomb is stopped at ``MAX_STATE_SIZE`` without ever being held whole."""
    chunk = source.read(_READ)
    if chunk[:2] != b"\x1f\x8b":
        raise SnapshotError("failed to decompress snapshot: gzip: invalid header")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    raw = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 (the caller closes it)
    size = 0
    try:
        while chunk and not inflater.eof:
            pending = chunk
            while not inflater.eof:
                inflated = inflater.decompress(pending, _READ)
                size += len(inflated)
                if size > MAX_STATE_SIZE:
                    raise SnapshotError(
                        f"failed to read snapshot file: more than {MAX_STATE_SIZE} bytes uncompressed"
                    )
                raw.write(inflated)
                pending = inflater.unconsumed_tail
                if not pending and len(inflated) < _READ:
                    break  # this chunk is used up and nothing it held is left to inflate
            chunk = source.read(_READ)
        if not inflater.eof:
            raise SnapshotError("failed to read snapshot file: unexpected EOF")
        unread = len(inflater.unused_data) + len(chunk)
        while chunk:
            chunk = source.read(_READ)
            unread += len(chunk)
        if unread:
            raise SnapshotError(f"{unread} unread bytes remain after the gzip stream")
    except zlib.error as exc:
        raw.close()
        raise SnapshotError(f"failed to read snapshot file: gzip: {exc}") from None
    except BaseException:
        raw.close()
        raise
    raw.seek(0)
    return raw


def _untar(raw: IO[bytes]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=raw, mode="r:") as tar:
            for member in tar:
                if member.name not in (_META, _STATE, _SUMS) or not member.isfile():
                    raise SnapshotError(
                        f'failed to read snapshot file: unexpected file "{member.name}" in snapshot'
                    )
                stream = tar.extractfile(member)
                content = stream.read() if stream is not None else b""
                if len(content) != member.size:
                    raise SnapshotError(
                        "failed to read snapshot file: failed reading snapshot: unexpected EOF"
                    )
                files[member.name] = content
    except (tarfile.TarError, EOFError) as exc:
        raise SnapshotError(f"failed to read snapshot file: failed reading snapshot: {exc}") from None
    return files


def _verify(files: dict[str, bytes], sums: bytes) -> None:
    """Consul's check: every listed file matches, and both files were listed and present."""
    prefix = "failed to read snapshot file: failed checking integrity of snapshot: "
    seen: set[str] = set()
    for line in sums.decode("utf-8", "replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or not name:
            raise SnapshotError(prefix + f"malformed checksum line {line!r}")
        if name not in (_META, _STATE):
            raise SnapshotError(prefix + f'list missing hash for "{name}"')
        if name not in files or hashlib.sha256(files[name]).hexdigest() != digest.lower():
            raise SnapshotError(prefix + f'hash check failed for "{name}"')
        seen.add(name)
    for name in (_META, _STATE):
        if name not in seen:
            raise SnapshotError(prefix + f'file missing for "{name}"')


def _records(state: bytes) -> list[tuple[int, Entry]]:
    known = {number for number, _ in TYPES.values()}
    out: list[tuple[int, Entry]] = []
    keys: set[str] = set()
    offset = 0
    while offset < len(state):
        if offset + _FRAME.size > len(state):
            raise SnapshotError("failed to read snapshot file: state.bin ends inside a record header")
        kind, size = _FRAME.unpack_from(state, offset)
        offset += _FRAME.size
        if kind not in known:
            raise SnapshotError(f"failed to read snapshot file: unrecognized msg type {kind}")
        if offset + size > len(state):
            raise SnapshotError("failed to read snapshot file: state.bin ends inside a record")
        try:
            entry = _ENTRY.decode(state[offset : offset + size])
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"failed to read snapshot file: record at byte {offset}: {exc}") from None
        offset += size
        table = snapshotted(entry.Key)
        if table is None or TYPES[table.name][0] != kind:
            raise SnapshotError(
                f"failed to read snapshot file: key {entry.Key!r} does not belong in a snapshot"
            )
        if entry.Key in keys:
            raise SnapshotError(f"failed to read snapshot file: key {entry.Key!r} appears twice")
        keys.add(entry.Key)
        try:
            table.decode(entry.Value, entry.CreateIndex, entry.ModifyIndex)
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"failed to read snapshot file: {entry.Key!r}: {exc}") from None
        out.append((kind, entry))
    return out
