"""The archive format on its own: Consul's layout, and every way a file can be unfit to restore."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import struct
import tarfile
from pathlib import Path

import msgspec
import pytest

from waypost.state import schema
from waypost.state.model import KVEntry, Node
from waypost.state.snapshot import TRANSIENT, TYPES, Entry, SnapshotError, decode, encode
from waypost.store.base import KeyValue


def kvs() -> list[KeyValue]:
    node = schema.encode(Node(Node="web-1", Address="10.0.0.1"))
    entry = schema.encode(KVEntry(Key="app/x", Flags=42, Value=b"\x00bin"))
    return [
        KeyValue(schema.NODES.key("web-1"), node, 5, 9, 2),
        KeyValue(schema.KVS.key("app/x"), entry, 7, 7, 1),
        KeyValue(schema.LEADER_KEY, b"transient", 3, 3, 1, lease=4),
        KeyValue(schema.MEMBERS.key("web-1"), b"transient", 2, 2, 1),
    ]


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def pack(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def test_every_table_is_either_snapshotted_or_declared_transient() -> None:
    names = {t.name for t in schema.TABLES}
    assert names <= set(TYPES) | TRANSIENT
    assert not set(TYPES) & TRANSIENT


def test_consul_layout_with_checksums_and_raft_metadata() -> None:
    data = encode(kvs(), 11, servers=[("id-1", "127.0.0.1:8300")])
    files = members(data)
    assert list(files) == ["meta.json", "state.bin", "SHA256SUMS"]
    meta = json.loads(files["meta.json"])
    assert (meta["Version"], meta["Index"], meta["Term"], meta["Size"]) == (1, 11, 1, len(files["state.bin"]))
    assert meta["ID"].startswith("1-11-")
    assert meta["Configuration"]["Servers"] == [{"Suffrage": 0, "ID": "id-1", "Address": "127.0.0.1:8300"}]
    sums = dict(reversed(line.split("  ")) for line in files["SHA256SUMS"].decode().splitlines())
    assert sums == {name: hashlib.sha256(files[name]).hexdigest() for name in ("meta.json", "state.bin")}


def test_round_trip_keeps_records_and_drops_transient_keys() -> None:
    snap = decode(encode(kvs(), 11))
    got = {e.Key: (e.Value, e.CreateIndex, e.ModifyIndex) for _, e in snap.entries}
    want = {kv.key: (kv.value, kv.create_revision, kv.mod_revision) for kv in kvs()[:2]}
    assert got == want
    assert [(name, count) for name, count, _ in snap.stats()] == [("Register", 1), ("KVS", 1)]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d[: len(d) // 2], "unexpected EOF"),
        (lambda d: d[:-3], "unexpected EOF"),
        (lambda d: b"", "invalid header"),
        (lambda d: b"not a snapshot", "invalid header"),
        (lambda d: random.Random(1).randbytes(4096), "invalid header"),
        (lambda d: gzip.compress(random.Random(2).randbytes(4096)), "failed to read snapshot file"),
        (lambda d: gzip.compress(b""), "failed reading snapshot"),
        (lambda d: d + b"trailing", "unread bytes remain"),
        (lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], "failed to read snapshot file"),
    ],
)
def test_damaged_files_are_refused(mangle: object, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        decode(mangle(encode(kvs(), 11)))  # type: ignore[operator]


def test_foreign_archives_are_refused() -> None:
    with pytest.raises(SnapshotError, match=r'unexpected file "hello\.txt" in snapshot'):
        decode(pack({"hello.txt": b"hi"}))
    with pytest.raises(SnapshotError, match=r'file missing for "meta\.json"'):
        decode(pack({}))


def test_checksum_mismatch_is_refused() -> None:
    files = members(encode(kvs(), 11))
    state = bytearray(files["state.bin"])
    state[-1] ^= 0x01
    files["state.bin"] = bytes(state)
    with pytest.raises(SnapshotError, match=r'hash check failed for "state\.bin"'):
        decode(pack(files))


def forged(entries: list[Entry], kind: int = 2) -> bytes:
    """A well-formed archive around hand-made records, checksums and all."""
    state = b"".join(
        struct.pack(">BI", kind, len(p)) + p for p in (msgspec.msgpack.encode(e) for e in entries)
    )
    meta = json.dumps({"Version": 1, "ID": "1-1-1", "Index": 1, "Term": 1, "Size": len(state)}).encode()
    sums = "".join(
        f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in (("meta.json", meta), ("state.bin", state))
    )
    return pack({"meta.json": meta, "state.bin": state, "SHA256SUMS": sums.encode()})


def test_records_that_do_not_belong_are_refused_even_with_good_checksums() -> None:
    """A file whose checksums match but whose records a restore could not apply."""
    good = Entry("kv/a", schema.encode(KVEntry(Key="a")), 1, 1)
    assert [e for _, e in decode(forged([good])).entries] == [good]
    with pytest.raises(SnapshotError, match="does not belong"):
        decode(forged([Entry("system/leader/current", b"", 1, 1)]))
    with pytest.raises(SnapshotError, match="does not belong"):
        decode(forged([good], kind=3))
    with pytest.raises(SnapshotError, match="unrecognized msg type 99"):
        decode(forged([good], kind=99))
    with pytest.raises(SnapshotError, match="'kv/bad'"):
        decode(forged([Entry("kv/bad", b"\xc1 not msgpack", 1, 1)]))
    with pytest.raises(SnapshotError, match="appears twice"):
        decode(forged([good, good]))


def test_a_large_archive_is_read_from_a_file_in_parts(tmp_path: Path) -> None:
    """Larger than a read and than what stays in memory: the file is inflated piece by piece."""
    rng = random.Random(3)
    values = [schema.encode(KVEntry(Key=f"big/{i}", Value=rng.randbytes(1 << 20))) for i in range(10)]
    records = [KeyValue(schema.KVS.key(f"big/{i}"), v, i + 1, i + 1, 1) for i, v in enumerate(values)]
    data = encode(records, 20)
    path = tmp_path / "big.snap"
    cases = {data: None, data + bytes(3 << 20): f"{3 << 20} unread bytes", data[:-100]: "unexpected EOF"}
    for content, refusal in cases.items():
        path.write_bytes(content)
        with path.open("rb") as f:
            if refusal is None:
                assert [e.Value for _, e in decode(f).entries] == values
            else:
                with pytest.raises(SnapshotError, match=refusal):
                    decode(f)


def test_a_gzip_bomb_stops_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import waypost.state.snapshot as module

    monkeypatch.setattr(module, "MAX_STATE_SIZE", 1024)
    with pytest.raises(SnapshotError, match="more than 1024 bytes uncompressed"):
        decode(gzip.compress(os.urandom(10) + bytes(1 << 20)))
