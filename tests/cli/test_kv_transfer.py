from __future__ import annotations

import base64
import json
from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess


def _seed(agent: AgentProcess) -> None:
    agent.put("/v1/kv/exp/a", b"alpha")
    agent.put("/v1/kv/exp/b/c?flags=7", b"<b&c>")


def test_export_prints_consuls_format(waypost: Runner, dev_agent: AgentProcess) -> None:
    _seed(dev_agent)
    r = waypost("kv", "export", "exp/")
    assert r.code == 0
    assert json.loads(r.out) == [
        {"key": "exp/a", "flags": 0, "value": base64.b64encode(b"alpha").decode()},
        {"key": "exp/b/c", "flags": 7, "value": base64.b64encode(b"<b&c>").decode()},
    ]
    assert r.out.startswith('[\n\t{\n\t\t"key": "exp/a",\n\t\t"flags": 0,\n')
    assert waypost("kv", "export", "nothing-here/").out == "[]\n"


def test_import_from_stdin_file_and_argument(
    waypost: Runner, dev_agent: AgentProcess, tmp_path: Path
) -> None:
    _seed(dev_agent)
    exported = waypost("kv", "export", "exp/").out

    r = waypost("kv", "import", "-prefix=copy1/", "-", stdin=exported)
    assert (r.code, r.out) == (0, "Imported: copy1/exp/a\nImported: copy1/exp/b/c\n")
    assert waypost("kv", "get", "copy1/exp/b/c").out == "<b&c>\n"
    assert dev_agent.get("/v1/kv/copy1/exp/b/c")[0]["Flags"] == 7

    path = tmp_path / "export.json"
    path.write_text(exported)
    assert waypost("kv", "import", "-prefix=copy2/", f"@{path}").code == 0
    assert waypost("kv", "get", "copy2/exp/a").out == "alpha\n"

    inline = json.dumps([{"key": "copy3/x", "flags": 0, "value": base64.b64encode(b"inline").decode()}])
    assert waypost("kv", "import", inline).code == 0
    assert waypost("kv", "get", "copy3/x").out == "inline\n"


def test_import_errors(waypost: Runner) -> None:
    assert waypost("kv", "import").err == "Error! Missing DATA argument\n"
    r = waypost("kv", "import", "-", stdin="not json")
    assert r.code == 1
    assert r.err.startswith("Cannot unmarshal data:")
    r = waypost("kv", "import", '[{"key": "bad", "value": "!!!"}]')
    assert r.code == 1
    assert r.err.startswith("Error base 64 decoding value for key bad")
    assert waypost("kv", "import", "@/nonexistent/file.json").err.startswith("Error! Failed to read file:")
