from __future__ import annotations

import base64
from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess


def test_put_get_literal_stdin_and_file(waypost: Runner, tmp_path: Path, dev_agent: AgentProcess) -> None:
    r = waypost("kv", "put", "app/name", "hello")
    assert (r.code, r.out) == (0, "Success! Data written to: app/name\n")
    assert waypost("kv", "get", "app/name").out == "hello\n"

    assert waypost("kv", "put", "app/stdin", "-", stdin=b"from stdin").code == 0
    assert waypost("kv", "get", "app/stdin").out == "from stdin\n"

    path = tmp_path / "value.bin"
    path.write_bytes(b"\x00\x01binary")
    assert waypost("kv", "put", "app/file", f"@{path}").code == 0
    assert dev_agent.get("/v1/kv/app/file")[0]["Value"] == base64.b64encode(b"\x00\x01binary").decode()
    encoded = base64.b64encode(b"\x00\x01binary").decode()
    assert waypost("kv", "get", "-base64", "-recurse", "app/file").out == f"app/file:{encoded}\n"
    assert waypost("kv", "get", "app/file").out.encode() == b"\x00\x01binary\n"

    assert waypost("kv", "put", "-base64", "app/b64", base64.b64encode(b"decoded").decode()).code == 0
    assert waypost("kv", "get", "app/b64").out == "decoded\n"

    assert waypost("kv", "put", "app/empty").code == 0
    assert waypost("kv", "get", "app/empty").out == "\n"


def test_get_missing_key_is_an_error(waypost: Runner) -> None:
    r = waypost("kv", "get", "no/such/key")
    assert r.code == 1
    assert r.err == "Error! No key exists at: no/such/key\n"
    assert waypost("kv", "get").code == 1


def test_recurse_keys_and_detailed(waypost: Runner) -> None:
    for key, value in (("tree/a", "1"), ("tree/b/c", "2"), ("tree/b/d", "3")):
        assert waypost("kv", "put", key, value).code == 0
    assert waypost("kv", "get", "-recurse", "tree").out == "tree/a:1\ntree/b/c:2\ntree/b/d:3\n"
    assert waypost("kv", "get", "-keys", "tree/").out == "tree/a\ntree/b/\n"
    assert waypost("kv", "get", "-keys", "-separator=", "tree/").out == "tree/a\ntree/b/c\ntree/b/d\n"
    assert waypost("kv", "put", "-flags=42", "tree/a", "1").code == 0
    lines = waypost("kv", "get", "-detailed", "tree/a").out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "CreateIndex",
        "Flags",
        "Key",
        "LockIndex",
        "ModifyIndex",
        "Session",
        "Value",
    ]
    assert lines[1] == "Flags            42"
    assert lines[5] == "Session          -"
    assert lines[6] == "Value            1"


def test_cas_put_and_delete(waypost: Runner, dev_agent: AgentProcess) -> None:
    assert waypost("kv", "put", "cas/k", "v1").code == 0
    index = dev_agent.get("/v1/kv/cas/k")[0]["ModifyIndex"]
    stale = waypost("kv", "put", "-cas", f"-modify-index={index + 1000}", "cas/k", "v2")
    assert (stale.code, stale.err) == (1, "Error! Did not write to cas/k: CAS failed\n")
    assert waypost("kv", "put", "-cas", "-modify-index", str(index), "cas/k", "v2").code == 0
    assert waypost("kv", "put", "-cas", "cas/k", "v3").err == "Must specify -modify-index with -cas!\n"

    index = dev_agent.get("/v1/kv/cas/k")[0]["ModifyIndex"]
    assert waypost("kv", "delete", "-cas", f"-modify-index={index + 1000}", "cas/k").code == 1
    r = waypost("kv", "delete", "-cas", f"-modify-index={index}", "cas/k")
    assert (r.code, r.out) == (0, "Success! Deleted key: cas/k\n")
    r = waypost("kv", "delete", "-modify-index=3", "cas/k")
    assert r.err == "Cannot specify -modify-index without -cas!\n"


def test_delete_recurse(waypost: Runner) -> None:
    for key in ("gone/a", "gone/b", "kept"):
        assert waypost("kv", "put", key, "x").code == 0
    r = waypost("kv", "delete", "-recurse", "gone")
    assert (r.code, r.out) == (0, "Success! Deleted keys with prefix: gone\n")
    assert waypost("kv", "get", "-recurse", "gone").out == ""
    assert waypost("kv", "get", "kept").out == "x\n"


def test_acquire_and_release_with_a_session(waypost: Runner, dev_agent: AgentProcess) -> None:
    session = dev_agent.put("/v1/session/create", {"Name": "cli-test"})["ID"]
    assert waypost("kv", "put", "-acquire", "locked/k", "v").err.startswith("Error! Missing -session")
    r = waypost("kv", "put", "-acquire", f"-session={session}", "locked/k", "v")
    assert (r.code, r.out) == (0, "Success! Lock acquired on: locked/k\n")
    assert dev_agent.get("/v1/kv/locked/k")[0]["Session"] == session
    other = dev_agent.put("/v1/session/create", {"Name": "other"})["ID"]
    r = waypost("kv", "put", "-acquire", f"-session={other}", "locked/k", "v")
    assert (r.code, r.err) == (1, "Error! Did not acquire lock\n")
    r = waypost("kv", "put", "-release", f"-session={session}", "locked/k")
    assert (r.code, r.out) == (0, "Success! Lock released on: locked/k\n")


def test_usage_errors_exit_1_with_help(waypost: Runner) -> None:
    r = waypost("kv", "get", "-nope", "x")
    assert r.code == 1
    assert r.err.startswith("flag provided but not defined: -nope\n\nUsage: waypost kv get")
    assert waypost("kv", "put").err == "Error! Missing KEY argument\n"
    assert waypost("kv", "put", "a", "b", "c").code == 1
    assert waypost("kv").code == 1
    assert waypost("kv", "frobnicate").code == 1


def test_help_on_every_subcommand(waypost: Runner) -> None:
    for sub in ("get", "put", "delete", "export", "import"):
        for flag in ("-h", "--help", "-help"):
            r = waypost("kv", sub, flag)
            assert r.code == 0, (sub, flag)
            assert r.out.startswith(f"Usage: waypost kv {sub}")
            assert "$ waypost kv" in r.out
    assert waypost("kv", "-h").code == 0
