"""HashiCorp's Go API client (github.com/hashicorp/consul/api) drives real waypost agents end to end.

The Go tests in ``goapi/`` start their agents through Consul's own test harness
(``sdk/testutil``), which execs ``consul agent -config-file <its JSON>`` and
``consul version -format=json`` from PATH. A ``consul`` shim written here, first
on PATH, answers the version with the Consul version waypost speaks (the harness
picks the config keys it writes from it) and turns into ``waypost agent`` for
everything else. ``go test`` runs once; each Go test is reported as its own
pytest test, so a failure or a known gap (a Go ``t.Skip``) shows up by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

GOAPI = Path(__file__).parent / "goapi"
#: Go tests that run longer than this are stuck; the whole run normally takes about a minute.
GO_TEST_TIMEOUT = "170s"
RUN_TIMEOUT = 240

#: The Debian package and the official tarball's place, for machines where go is not on PATH.
GO_CANDIDATES = ("go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go")
#: go.mod pins module versions that build with Debian bookworm's golang-go.
MIN_GO = (1, 19)

SHIM = """#!{python}
import contextlib
import json
import os
import subprocess
import sys

args = sys.argv[1:]
if args[:1] == ["version"]:
    info = json.loads(subprocess.check_output([sys.executable, "-m", "waypost", "version", "-format=json"]))
    print(json.dumps({{"Version": info["ConsulVersion"], "Revision": info["Revision"], "Prerelease": ""}}))
    sys.exit(0)
os.execv(sys.executable, [sys.executable, "-m", "waypost", *args])
"""

GO_TESTS = sorted(
    name
    for path in GOAPI.glob("*_test.go")
    for name in re.findall(r"^func (Test\w+)\(t \*testing\.T\)", path.read_text(), re.MULTILINE)
)


@dataclass
class GoTest:
    action: str = "missing"
    output: list[str] = field(default_factory=list)


@dataclass
class GoRun:
    tests: dict[str, GoTest]
    #: Output outside any test: build errors, the package summary.
    log: str


def _go() -> str:
    for candidate in GO_CANDIDATES:
        found = shutil.which(candidate)
        if found is None:
            continue
        version = subprocess.run([found, "env", "GOVERSION"], capture_output=True, text=True, check=False)
        numbers = re.match(r"go(\d+)\.(\d+)", version.stdout.strip())
        if numbers and tuple(map(int, numbers.groups())) >= MIN_GO:
            return found
    pytest.skip("go >= 1.19 is not installed (apt-get install golang-go)")


def _cache_dir() -> Path:
    """Module downloads and builds persist between runs; Go makes its module cache read-only."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "waypost" / "go"


def _write_shim(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "consul"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)


@pytest.fixture(scope="module")
def go_run(tmp_path_factory: pytest.TempPathFactory) -> GoRun:
    go = _go()
    shim_dir = tmp_path_factory.mktemp("consul-shim")
    _write_shim(shim_dir)
    cache = _cache_dir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "WAYPOST_", "TEST_"))}
    env.update(
        PATH=f"{shim_dir}{os.pathsep}{env.get('PATH', '')}",
        GOPATH=str(cache / "gopath"),
        GOCACHE=str(cache / "build"),
        GOFLAGS="-mod=readonly",
        GOTOOLCHAIN="local",
        GOWORK="off",
        TMPDIR=str(tmp_path_factory.mktemp("go-tmp")),
    )
    proc = subprocess.Popen(
        [go, "test", "-count=1", "-json", f"-timeout={GO_TEST_TIMEOUT}", "./..."],
        cwd=GOAPI,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\ngo test was killed after {RUN_TIMEOUT}s"
    finally:
        # A Go test binary that timed out or panicked leaves the agents the harness started
        # running; they are in the process group of the go command.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    tests: dict[str, GoTest] = {}
    log = [stderr]
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            log.append(line)
            continue
        name = event.get("Test")
        if name is None:
            log.append(event.get("Output", ""))
            continue
        test = tests.setdefault(name.split("/")[0], GoTest())
        if event["Action"] == "output":
            test.output.append(event["Output"])
        elif event["Action"] in ("pass", "fail", "skip") and "/" not in name:
            test.action = event["Action"]
    return GoRun(tests, "".join(log))


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.parametrize("name", GO_TESTS)
def test_go_api(go_run: GoRun, name: str) -> None:
    result = go_run.tests.get(name, GoTest())
    output = "".join(result.output)
    if result.action == "skip":
        reason = re.findall(r"waypost gap: .*", output) or [output.strip().splitlines()[-1]]
        pytest.skip(reason[0])
    assert result.action == "pass", f"Go test {name}: {result.action}\n{output}\n{go_run.log}"
