"""``waypost template`` end to end: a real agent, the real CLI, a real haproxy.

The documented consul-template examples are rendered against an agent loaded with the
documentation's data; each expected text was worked out by hand from the template and
Go's text/template rules (whitespace kept exactly, instances sorted by node then ID).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.testing import AgentProcess, free_port, wait_for

WAYPOST = [sys.executable, "-m", "waypost"]
WAIT_MIN, WAIT_MAX = 0.2, 1.0
DOC_NODES = {
    "nyc3-worker-1": "104.131.86.92",
    "nyc3-worker-2": "104.131.109.224",
    "nyc3-worker-3": "104.131.59.59",
}


def template(agent: AgentProcess, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WAYPOST, "template", "-http-addr", agent.address, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_template(agent: AgentProcess, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WAYPOST, "template", "-http-addr", agent.address, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    return proc.returncode, err


@pytest.fixture(scope="module")
def docs_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """An agent holding the data of consul-template's documentation examples."""
    log = tmp_path_factory.mktemp("docs-agent") / "agent.log"
    with AgentProcess(["-dev", "-node", "ct-node"], log_path=log) as agent:
        for node, address in DOC_NODES.items():
            for service, port, tags in (("web", 80, ["release"]), ("redis", 6379, [])):
                agent.put(
                    "/v1/catalog/register",
                    {
                        "Node": node,
                        "Address": address,
                        "Service": {"Service": service, "Port": port, "Tags": tags},
                    },
                )
        agent.put(
            "/v1/catalog/register",
            {
                "Node": "nyc3-worker-1",
                "Address": DOC_NODES["nyc3-worker-1"],
                "Service": {"ID": "down", "Service": "down", "Port": 9},
                "Check": {"CheckID": "down-check", "Name": "down", "Status": "critical", "ServiceID": "down"},
            },
        )
        kv = {
            "service/haproxy/maxconn": "4",
            "service/haproxy/mode": "default",
            "service/haproxy/timeouts/connect": "5s",
            "service/haproxy/timeouts/client": "30s",
            "service/redis/maxconns": "12",
            "service/redis/minconns": "2",
            "service/redis/nested/": "",
            "service/redis/nested/config/value": '"value"',
        }
        for key, value in kv.items():
            agent.put(f"/v1/kv/{key}", value.encode())
        yield agent


def render_once(agent: AgentProcess, tmp_path: Path, text: str) -> str:
    source, dest = tmp_path / "in.ctmpl", tmp_path / "out.conf"
    source.write_text(text)
    done = template(agent, "-once", "-template", f"{source}:{dest}")
    assert done.returncode == 0, done.stderr
    return dest.read_text()


HAPROXY_DOC = """global
    daemon
    maxconn {{key "service/haproxy/maxconn"}}

defaults
    mode {{key "service/haproxy/mode"}}{{range ls "service/haproxy/timeouts"}}
    timeout {{.Key}} {{.Value}}{{end}}

listen http-in
    bind *:8000{{range service "release.web"}}
    server {{.Node}} {{.Address}}:{{.Port}}{{end}}
"""


def test_documented_haproxy_backends(docs_agent: AgentProcess, tmp_path: Path) -> None:
    assert render_once(docs_agent, tmp_path, HAPROXY_DOC) == (
        "global\n"
        "    daemon\n"
        "    maxconn 4\n"
        "\n"
        "defaults\n"
        "    mode default\n"
        "    timeout client 30s\n"
        "    timeout connect 5s\n"
        "\n"
        "listen http-in\n"
        "    bind *:8000\n"
        "    server nyc3-worker-1 104.131.86.92:80\n"
        "    server nyc3-worker-2 104.131.109.224:80\n"
        "    server nyc3-worker-3 104.131.59.59:80\n"
    )


NGINX_DOC = """{{range services}} {{$name := .Name}} {{$service := service .Name}}
upstream {{$name}} {
  zone upstream-{{$name}} 64k;
  {{range $service}}server {{.Address}}:{{.Port}} max_fails=3 fail_timeout=60 weight=1;
  {{else}}server 127.0.0.1:65535; # force a 502{{end}}
} {{end}}

server {
  listen 80 default_server;

  location / {
    root /usr/share/nginx/html/;
    index index.html;
  }

  location /stub_status {
    stub_status;
  }

{{range services}} {{$name := .Name}}
  location /{{$name}} {
    proxy_pass http://{{$name}};
  }
{{end}}
}
"""


def test_documented_nginx_upstreams(docs_agent: AgentProcess, tmp_path: Path) -> None:
    consul_port = docs_agent.get("/v1/catalog/service/consul")[0]["ServicePort"]

    def upstream(name: str, servers: list[str]) -> str:
        body = "".join(f"server {s} max_fails=3 fail_timeout=60 weight=1;\n  " for s in servers)
        body = body or "server 127.0.0.1:65535; # force a 502"
        return f"  \nupstream {name} {{\n  zone upstream-{name} 64k;\n  {body}\n}} "

    def location(name: str) -> str:
        return f" \n  location /{name} {{\n    proxy_pass http://{name};\n  }}\n"

    names = ["consul", "down", "redis", "web"]
    servers = {
        "consul": [f"127.0.0.1:{consul_port}"],
        "down": [],
        "redis": [f"{a}:6379" for a in DOC_NODES.values()],
        "web": [f"{a}:80" for a in DOC_NODES.values()],
    }
    expected = (
        "".join(upstream(n, servers[n]) for n in names)
        + "\n\nserver {\n  listen 80 default_server;\n\n  location / {\n    root /usr/share/nginx/html/;\n"
        + "    index index.html;\n  }\n\n  location /stub_status {\n    stub_status;\n  }\n\n"
        + "".join(location(n) for n in names)
        + "\n}\n"
    )
    assert render_once(docs_agent, tmp_path, NGINX_DOC) == expected


def test_documented_range_services_with_service_name(docs_agent: AgentProcess, tmp_path: Path) -> None:
    text = "{{range services}}# {{.Name}}{{range service .Name}}\n{{.Address}}{{end}}\n\n{{end}}\n"
    assert render_once(docs_agent, tmp_path, text) == (
        "# consul\n127.0.0.1\n\n"
        "# down\n\n"
        "# redis\n104.131.86.92\n104.131.109.224\n104.131.59.59\n\n"
        "# web\n104.131.86.92\n104.131.109.224\n104.131.59.59\n\n"
        "\n"
    )


def test_documented_tree_and_an_env_file(docs_agent: AgentProcess, tmp_path: Path) -> None:
    documented = '{{ range tree "service/redis" }}\n{{ .Key }}:{{ .Value }}{{ end }}'
    assert (
        render_once(docs_agent, tmp_path, documented)
        == '\nmaxconns:12\nminconns:2\nnested/config/value:"value"'
    )
    env_file = (
        '{{ range tree "service/redis" }}{{ .Key | replaceAll "/" "_" | toUpper }}={{ .Value }}\n{{ end }}'
    )
    assert (
        render_once(docs_agent, tmp_path, env_file)
        == 'MAXCONNS=12\nMINCONNS=2\nNESTED_CONFIG_VALUE="value"\n'
    )


def test_dry_prints_and_writes_nothing(docs_agent: AgentProcess, tmp_path: Path) -> None:
    source = tmp_path / "in.ctmpl"
    source.write_text('{{ key "service/haproxy/maxconn" }}')
    done = template(docs_agent, "-once", "-dry", "-template", f"{source}:{tmp_path / 'out'}")
    assert (done.returncode, done.stdout) == (0, f"> {tmp_path / 'out'}\n4")
    assert not (tmp_path / "out").exists()


def test_syntax_error_names_file_and_line_and_writes_nothing(dev_agent: AgentProcess, tmp_path: Path) -> None:
    source, dest = tmp_path / "bad.ctmpl", tmp_path / "out"
    source.write_text("ok\n{{ range .X }}\n{{ end ")
    done = template(dev_agent, "-once", "-template", f"{source}:{dest}")
    assert done.returncode == 1
    assert f"template: {source}:3: unclosed action" in done.stderr
    source.write_text('line one\n  {{ key "a" | printf "%s" 3 | len 4 }}')
    done = template(dev_agent, "-once", "-template", f"{source}:{dest}")
    assert done.returncode == 1
    assert f"template: {source}:2:" in done.stderr
    assert "wrong number of args for len" in done.stderr
    assert not dest.exists()


def test_missing_key_fails_fast_with_err_on_failed_lookup_else_waits(
    dev_agent: AgentProcess, tmp_path: Path
) -> None:
    source, dest = tmp_path / "in.ctmpl", tmp_path / "out"
    source.write_text('{{ key "app/not-there" }}')
    done = template(dev_agent, "-once", "-err-on-failed-lookup", "-template", f"{source}:{dest}")
    assert done.returncode == 1
    assert 'key "app/not-there" does not exist' in done.stderr
    waiting = start_template(dev_agent, tmp_path, "-once", "-template", f"{source}:{dest}")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=2)
        dev_agent.put("/v1/kv/app/not-there", b"arrived")
        assert waiting.wait(timeout=15) == 0
    finally:
        stop(waiting)
    assert dest.read_text() == "arrived"


def test_once_against_an_agent_that_is_gone_exits_non_zero(tmp_path: Path) -> None:
    source = tmp_path / "in.ctmpl"
    source.write_text('{{ key "a" }}')
    done = subprocess.run(
        [*WAYPOST, "template", "-http-addr", f"127.0.0.1:{free_port()}", "-once", "-template", f"{source}:x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "unreachable" in done.stderr
    assert "retry 1/4" in done.stderr


def test_one_command_for_several_templates_runs_once_per_change(
    dev_agent: AgentProcess, tmp_path: Path
) -> None:
    dev_agent.put("/v1/kv/shared/v", b"1")
    (tmp_path / "a.ctmpl").write_text('a={{ key "shared/v" }}')
    (tmp_path / "b.ctmpl").write_text('b={{ key "shared/v" }}')
    command = "echo run >> runs.log"
    proc = start_template(
        dev_agent,
        tmp_path,
        *("-wait", f"{WAIT_MIN}s:{WAIT_MAX}s"),
        *("-template", f"a.ctmpl:a.out:{command}", "-template", f"b.ctmpl:b.out:{command}"),
    )
    runs = tmp_path / "runs.log"
    try:
        wait_for(lambda: runs.exists() and runs.read_text().count("run") == 1)
        dev_agent.put("/v1/kv/shared/v", b"2")
        wait_for(lambda: (tmp_path / "b.out").read_text() == "b=2")
        wait_for(lambda: runs.read_text().count("run") == 2)
        dev_agent.put("/v1/kv/shared/v", b"2")
        time.sleep(WAIT_MAX + 0.5)
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert runs.read_text().count("run") == 2, "an unchanged value is no change set"
    assert (tmp_path / "a.out").read_text() == "a=2"


def test_write_to_file_and_dotted_service_names(dev_agent: AgentProcess, tmp_path: Path) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "api.v2", "ID": "api-v2-1", "Port": 7001})
    text = (
        '{{ range service "name=api.v2" }}{{ .ID }}{{ end }}'
        '{{ "side" | writeToFile "' + str(tmp_path / "side" / "one.txt") + '" "" "" "0600" }}'
    )
    assert render_once(dev_agent, tmp_path, text) == "api-v2-1"
    side = tmp_path / "side" / "one.txt"
    assert side.read_text() == "side"
    assert oct(side.stat().st_mode & 0o777) == "0o600"


def _stats(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats;csv", timeout=5) as resp:
        rows = [line.split(",") for line in resp.read().decode().splitlines() if line.startswith("web,")]
    return {r[1] for r in rows if r[1] not in ("FRONTEND", "BACKEND")}


HAPROXY_TEMPLATE = """global
    maxconn 100

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

listen stats
    bind 127.0.0.1:{{ env "STATS_PORT" }}
    stats enable
    stats uri /stats

backend web{{ range service "hweb" }}
    server {{ .ID }} {{ .Address }}:{{ .Port }}{{ end }}
"""

RELOAD = """echo run >> runs.log
if [ -f haproxy.pid ]; then kill -USR2 "$(cat haproxy.pid)"; fi
"""


@pytest.mark.skipif(
    shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"), reason="needs haproxy"
)
def test_haproxy_follows_the_catalog(dev_agent: AgentProcess, tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    stats_port = free_port()
    (tmp_path / "haproxy.ctmpl").write_text(HAPROXY_TEMPLATE)
    (tmp_path / "reload.sh").write_text(RELOAD)
    cfg, runs = tmp_path / "haproxy.cfg", tmp_path / "runs.log"
    env = {**os.environ, "STATS_PORT": str(stats_port)}
    daemon = subprocess.Popen(
        [*WAYPOST, "template", "-http-addr", dev_agent.address, "-wait", f"{WAIT_MIN}s:{WAIT_MAX}s",
         "-template", "haproxy.ctmpl:haproxy.cfg:sh reload.sh"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    proxy: subprocess.Popen[bytes] | None = None
    follow = WAIT_MAX + 1.0
    try:
        wait_for(lambda: runs.exists() and "backend web\n" in cfg.read_text())
        proxy = subprocess.Popen(
            [haproxy, "-W", "-db", "-f", str(cfg), "-p", str(tmp_path / "haproxy.pid")],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _stats(stats_port) == set())

        check = {"TTL": "60s", "Status": "passing"}
        steps: list[tuple[str, object, set[str]]] = [
            ("register", {"Name": "hweb", "ID": "hweb1", "Port": 9101, "Check": check}, {"hweb1"}),
            ("register", {"Name": "hweb", "ID": "hweb2", "Port": 9102, "Check": check}, {"hweb1", "hweb2"}),
            ("fail", "service:hweb2", {"hweb1"}),
            ("deregister", "hweb1", set()),
        ]  # fmt: skip
        for i, (action, arg, expected) in enumerate(steps, start=2):
            if action == "register":
                dev_agent.put("/v1/agent/service/register", arg)
            elif action == "fail":
                dev_agent.put(f"/v1/agent/check/fail/{arg}")
            else:
                dev_agent.put(f"/v1/agent/service/deregister/{arg}")
            wait_for(lambda expected=expected: _servers(cfg) == expected, limit=follow)
            wait_for(lambda expected=expected: _stats(stats_port) == expected, limit=follow)
            assert runs.read_text().count("run") == i
    finally:
        code, err = stop(daemon)
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        dev_agent.put("/v1/agent/service/deregister/hweb2")
    assert code == 0, err
    assert runs.read_text().count("run") == 1 + len(steps), "one reload per change set"


def _servers(cfg: Path) -> set[str]:
    return {line.split()[1] for line in cfg.read_text().splitlines() if line.strip().startswith("server ")}


def test_dedup_elects_one_renderer_and_shares_its_output(dev_agent: AgentProcess, tmp_path: Path) -> None:
    dev_agent.put("/v1/kv/dd/v", b"one")
    (tmp_path / "in.ctmpl").write_text('v={{ key "dd/v" }}')
    outs = [tmp_path / f"out{n}.conf" for n in range(2)]
    procs = [start_template(dev_agent, tmp_path, "-dedup", "-template", "in.ctmpl:out0.conf")]
    try:
        wait_for(outs[0].exists)
        procs.append(start_template(dev_agent, tmp_path, "-dedup", "-template", "in.ctmpl:out1.conf"))
        wait_for(lambda: all(o.exists() and o.read_text() == "v=one" for o in outs))
        locks = [k for k in dev_agent.get("/v1/kv/consul-template/dedup/?keys") if k.endswith("/lock")]
        assert len(locks) == 1
        lock = dev_agent.get(f"/v1/kv/{locks[0]}")[0]
        assert lock["Session"], "one instance holds the template's lock"
        _, _, data = dev_agent.request("GET", f"/v1/kv/{locks[0].removesuffix('lock')}data?raw")
        assert data == b"v=one", "the leader shares its output through KV"
        dev_agent.put("/v1/kv/dd/v", b"two")
        wait_for(lambda: all(o.read_text() == "v=two" for o in outs))
        code, err = stop(procs[0])
        assert code == 0, err
        dev_agent.put("/v1/kv/dd/v", b"three")  # the first instance was the leader; the other takes over
        wait_for(lambda: outs[1].read_text() == "v=three")
        assert outs[0].read_text() == "v=two"
    finally:
        for proc in procs:
            stop(proc)


def test_an_agent_that_goes_away_is_retried_with_a_log_line(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "in.ctmpl").write_text('{{ keyOrDefault "gone/v" "default" }}')
    out = tmp_path / "out.conf"
    with AgentProcess(["-dev"], http_port=port) as first:
        first.put("/v1/kv/gone/v", b"before")
        daemon = start_template(first, tmp_path, "-template", "in.ctmpl:out.conf")
        wait_for(lambda: out.exists() and out.read_text() == "before")
    try:
        with AgentProcess(["-dev"], http_port=port) as second:
            second.put("/v1/kv/gone/v", b"after")
            wait_for(lambda: out.read_text() == "after", limit=30)
    finally:
        code, err = stop(daemon)
    assert code == 0, err
    assert "unreachable" in err
    assert "retrying with back-off" in err


CHILD = """import signal, sys, time
log = open("child.log", "a", buffering=1)
log.write("start\\n")
signal.signal(signal.SIGHUP, lambda *_: log.write("hup\\n"))
signal.signal(signal.SIGTERM, lambda *_: (log.write("term\\n"), sys.exit(0)))
for _ in range(600):
    time.sleep(0.1)
"""


def test_config_file_and_exec_mode(dev_agent: AgentProcess, tmp_path: Path) -> None:
    dev_agent.put("/v1/kv/exec/v", b"1")
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "ct.hcl").write_text(
        f"""
template {{
  contents = "v={{{{ key \\"exec/v\\" }}}}"
  destination = "out.conf"
  perms = 0600
}}
exec {{
  command = ["{sys.executable}", "child.py"]
  reload_signal = "SIGHUP"
  kill_signal = "SIGTERM"
}}
"""
    )
    log = tmp_path / "child.log"
    proc = start_template(dev_agent, tmp_path, "-config", "ct.hcl")
    try:
        wait_for(lambda: log.exists() and log.read_text() == "start\n")
        assert (tmp_path / "out.conf").read_text() == "v=1"
        assert oct((tmp_path / "out.conf").stat().st_mode & 0o777) == "0o600"
        dev_agent.put("/v1/kv/exec/v", b"2")
        wait_for(lambda: log.read_text() == "start\nhup\n")
        assert (tmp_path / "out.conf").read_text() == "v=2"
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert log.read_text() == "start\nhup\nterm\n"


def test_command_timeout_fails_once(dev_agent: AgentProcess, tmp_path: Path) -> None:
    (tmp_path / "ct.hcl").write_text(
        """
template {
  contents = "x"
  destination = "out.conf"
  command = "sleep 30"
  command_timeout = "300ms"
}
"""
    )
    proc = start_template(dev_agent, tmp_path, "-once", "-config", "ct.hcl")
    code, err = proc.wait(timeout=20), proc.communicate()[1]
    assert code == 1
    assert "command sleep 30 timed out after 300ms" in err
    assert (tmp_path / "out.conf").read_text() == "x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-wait", "soon", "-template", "a:b"], '-wait: time: invalid duration "soon"'),
        (["-template", "nope.ctmpl:b"], "template nope.ctmpl: source does not exist"),
        ([], "At least one template must be specified"),
        (["-log-level", "loud", "-template", "a:b"], "log_level: unknown level 'loud'"),
        (["-config", "missing.hcl"], "config: missing.hcl: No such file or directory"),
        (["-bogus"], "flag provided but not defined: -bogus"),
        (["-token-file", "no-such-token", "-template", "a:b"], "Error loading token file"),
        (["-exec", "true", "-exec-reload-signal", "SIGNOPE", "-template", "a:b"], "unknown signal 'SIGNOPE'"),
    ],
)
def test_bad_command_lines(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "a").write_text("")
    done = subprocess.run(
        [*WAYPOST, "template", "-http-addr", "127.0.0.1:1", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert message in done.stderr


def test_file_changes_sighup_reloads_and_config_directories(dev_agent: AgentProcess, tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-a.hcl").write_text(
        'template {\n  source = "in.ctmpl"\n  destination = "out.conf"\n}\n'
    )
    (tmp_path / "conf.d" / "ignored.txt").write_text("not a config")
    (tmp_path / "in.ctmpl").write_text('one:{{ file "data.txt" }}')
    (tmp_path / "data.txt").write_text("a")
    out = tmp_path / "out.conf"
    proc = start_template(dev_agent, tmp_path, "-config", "conf.d")
    try:
        wait_for(lambda: out.exists() and out.read_text() == "one:a")
        (tmp_path / "data.txt").write_text("b")
        wait_for(lambda: out.read_text() == "one:b")
        (tmp_path / "in.ctmpl").write_text('two:{{ file "data.txt" }}')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: out.read_text() == "two:b")
    finally:
        code, err = stop(proc)
    assert code == 0, err


def test_each_template_has_its_own_quiescence(dev_agent: AgentProcess, tmp_path: Path) -> None:
    dev_agent.put("/v1/kv/q/v", b"1")
    (tmp_path / "ct.hcl").write_text(
        """
template {
  contents = "slow={{ key \\"q/v\\" }}"
  destination = "slow.out"
  wait { min = "3s" max = "6s" }
}
template {
  contents = "fast={{ key \\"q/v\\" }}"
  destination = "fast.out"
}
"""
    )
    slow, fast = tmp_path / "slow.out", tmp_path / "fast.out"
    proc = start_template(dev_agent, tmp_path, "-config", "ct.hcl")
    try:
        wait_for(lambda: slow.exists() and fast.exists() and slow.read_text() == "slow=1")
        dev_agent.put("/v1/kv/q/v", b"2")
        wait_for(lambda: fast.read_text() == "fast=2")
        assert slow.read_text() == "slow=1", "the slow template waits for its own quiescence"
        wait_for(lambda: slow.read_text() == "slow=2", limit=10)
    finally:
        code, err = stop(proc)
    assert code == 0, err
