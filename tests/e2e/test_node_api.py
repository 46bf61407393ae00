"""The npm ``consul`` package (node-consul, pinned in ``nodeapi/package-lock.json``) drives a
real waypost agent end to end.

The Node tests in ``nodeapi/`` use Node's own runner (``node:test``) and find the agent
through ``CONSUL_HTTP_ADDR``; the ACL file gets an agent of its own with ACLs on (default
deny, not bootstrapped), the others share one without ACLs. Their dependencies install
with ``npm ci`` into a cache directory named for the lock file's hash (``node_modules`` is
never written into the tree), and reach the tests through ``NODE_PATH``. ``node --test``
runs each file once; each Node test is reported as its own pytest test, so a failure
shows up by name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from waypost.testing import AgentProcess

NODEAPI = Path(__file__).parent / "nodeapi"
NODE_NAME = "node-api-agent"
#: All Node files normally take a few seconds; each Node test has its own 30 s limit.
RUN_TIMEOUT = 180
NPM_TIMEOUT = 300
#: ``node --test`` with ``--test-reporter`` (Debian bookworm's nodejs is 18.19).
MIN_NODE = (18, 15)

TEST_FILES = sorted(NODEAPI.glob("*.test.js"))
ACL_FILES = {"acl.test.js"}
ACL_HCL = 'acl { enabled = true default_policy = "deny" }'
NODE_TESTS = sorted(
    name for path in TEST_FILES for name in re.findall(r'^test\(\s*"([^"]+)"', path.read_text(), re.MULTILINE)
)
#: A top-level TAP result line: ``ok 3 - name`` or ``not ok 3 - name # SKIP reason``.
RESULT = re.compile(r"^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b ?(.*))?$")


@dataclass
class NodeTest:
    action: str = "missing"
    output: list[str] = field(default_factory=list)
    #: Why node skipped it (``t.skip("...")``).
    reason: str = ""


@dataclass
class NodeRun:
    tests: dict[str, NodeTest]
    #: Everything node printed, for failures the per-test output does not explain.
    log: str


def _node() -> str:
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (apt-get install nodejs npm)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    numbers = re.match(r"v(\d+)\.(\d+)", version.stdout.strip())
    if not numbers or tuple(map(int, numbers.groups())) < MIN_NODE:
        pytest.skip(f"node >= {MIN_NODE[0]}.{MIN_NODE[1]} is needed, found {version.stdout.strip()}")
    return found


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "waypost" / "node"


def _node_modules() -> Path:
    """The pinned packages: a checkout's own ``npm ci`` if there is one, else the cache's,
    installed on first use for this lock file."""
    local = NODEAPI / "node_modules"
    if (local / "consul").is_dir():
        return local
    lock = (NODEAPI / "package-lock.json").read_bytes()
    target = _cache_dir() / hashlib.sha256(lock).hexdigest()[:16]
    if (target / "node_modules" / "consul").is_dir():
        return target / "node_modules"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NODEAPI / name, target / name)
    env = {**os.environ, "npm_config_cache": str(_cache_dir() / "npm-cache")}
    try:
        done = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm ci did not finish within {NPM_TIMEOUT}s in {target}")
    if done.returncode != 0:
        shutil.rmtree(target / "node_modules", ignore_errors=True)
        pytest.fail(f"npm ci failed in {target}:\n{done.stdout}\n{done.stderr}")
    return target / "node_modules"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = tmp_path_factory.mktemp("node-api-agent") / "agent.log"
    with AgentProcess(["-dev", "-node", NODE_NAME], log_path=log) as running:
        yield running


@pytest.fixture(scope="module")
def acl_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = tmp_path_factory.mktemp("node-api-acl-agent") / "agent.log"
    with AgentProcess(["-dev", "-node", NODE_NAME, "-hcl", ACL_HCL], log_path=log) as running:
        yield running


def parse_tap(stdout: str) -> dict[str, NodeTest]:
    """Top-level results of node's TAP reporter, each with its own lines: what the test
    printed (node writes it before the ``# Subtest`` header), the result and its
    diagnostics block, which ends at ``  ...``."""
    tests: dict[str, NodeTest] = {}
    pending: list[str] = []
    current: NodeTest | None = None
    for line in stdout.splitlines():
        result = RESULT.match(line)
        if result:
            verdict, name, directive, reason = result.groups()
            current = tests.setdefault(name.replace("\\#", "#"), NodeTest())
            current.action = "skip" if directive == "SKIP" else "pass" if verdict == "ok" else "fail"
            current.reason = reason or ""
            current.output, pending = [*pending, line], []
        elif current is not None:
            current.output.append(line)
            if line == "  ...":
                current = None
        elif not line.startswith("TAP version"):
            pending.append(line)
    return tests


def _run_file(node: str, path: Path, env: dict[str, str], timeout: float) -> tuple[str, str]:
    proc = subprocess.Popen(
        [node, "--test", "--test-reporter=tap", path.name],
        cwd=NODEAPI,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        return proc.communicate(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return stdout, f"{stderr}\nnode --test {path.name} was killed after {timeout:.0f}s"


@pytest.fixture(scope="module")
def node_run(agent: AgentProcess, acl_agent: AgentProcess) -> NodeRun:
    """One ``node --test`` per file, one after another: the files share the agent, and
    some (node maintenance) briefly change what the others would see."""
    node = _node()
    modules = _node_modules()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "WAYPOST_", "NODE_"))}
    env.update(WAYPOST_TEST_NODE=NODE_NAME, NODE_PATH=str(modules))
    deadline = time.monotonic() + RUN_TIMEOUT
    tests: dict[str, NodeTest] = {}
    log = []
    for path in TEST_FILES:
        target = acl_agent if path.name in ACL_FILES else agent
        env["CONSUL_HTTP_ADDR"] = target.address
        stdout, stderr = _run_file(node, path, env, deadline - time.monotonic())
        tests.update(parse_tap(stdout))
        log.append(f"== {path.name}\n{stdout}\n{stderr}")
    return NodeRun(tests, "\n".join(log))


def test_tap_parsing_keeps_each_result_with_its_details() -> None:
    tap = "\n".join(
        [
            "TAP version 13",
            "# printed by the first test",
            "# Subtest: first one",
            "ok 1 - first one",
            "  ---",
            "  duration_ms: 1.5",
            "  ...",
            "# Subtest: second \\# two",
            "not ok 2 - second \\# two",
            "  ---",
            "  error: 'boom'",
            "  ...",
            "# Subtest: third",
            "ok 3 - third # SKIP not here",
            "  ---",
            "  ...",
            "1..3",
        ]
    )
    tests = parse_tap(tap)
    assert {name: t.action for name, t in tests.items()} == {
        "first one": "pass",
        "second # two": "fail",
        "third": "skip",
    }
    assert "  error: 'boom'" in tests["second # two"].output
    assert tests["second # two"].output[0] == "# Subtest: second \\# two"
    assert tests["first one"].output[:2] == ["# printed by the first test", "# Subtest: first one"]
    assert tests["third"].reason == "not here"
    assert tests["third"].output == ["# Subtest: third", "ok 3 - third # SKIP not here", "  ---", "  ..."]


def test_node_test_names_are_unique() -> None:
    assert NODE_TESTS
    assert len(NODE_TESTS) == len(set(NODE_TESTS))


@pytest.mark.timeout(RUN_TIMEOUT + NPM_TIMEOUT + 60)
@pytest.mark.parametrize("name", NODE_TESTS)
def test_node_api(node_run: NodeRun, name: str) -> None:
    result = node_run.tests.get(name, NodeTest())
    output = "\n".join(result.output)
    if result.action == "skip":
        pytest.skip(result.reason or "skipped in node")
    # A test node never reported (a file that crashed, a run killed) is explained by the log.
    detail = output if result.output else node_run.log
    assert result.action == "pass", f"Node test {name!r}: {result.action}\n{detail}"
