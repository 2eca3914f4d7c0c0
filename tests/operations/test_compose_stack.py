"""Run docker-compose.yml's services natively, with their own commands.

Docker does not run on these machines, so each app service's ``command`` (and
health check) is taken from the parsed compose file and run here, against the
machine's PostgreSQL and Redis: the hostnames ``postgres`` and ``redis`` become
127.0.0.1, with a database and a Redis db number of the test's own (both
cleaned up). The environment is .env.example plus the service's own
``environment``. Drift between the compose file and the code fails here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from base.fake_slack import FakeSlack
from tests.support.runall import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv running the tests: python, celery, gunicorn
PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
# A Redis db of this test's own; it is flushed (FLUSHDB, never FLUSHALL) before and after.
REDIS_DB = int(os.environ.get("SLABUDDY_COMPOSE_TEST_REDIS_DB", "13"))

pytestmark = pytest.mark.slow


def _reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
        return True
    except OSError:
        return False


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X:?error}, and $$ for a literal $."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if op == ":?" and not value:
            raise AssertionError(f"compose needs {name}: {arg}")
        if op == ":-" and not value:
            return arg
        return value

    text = text.replace("$$", "\0")
    text = re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, text)
    return text.replace("\0", "$")


def argv(command, env: dict[str, str]) -> list[str]:
    if isinstance(command, list):
        return [interpolate(part, env) for part in command]
    return shlex.split(interpolate(command, env))


def healthcheck_argv(test: list[str], env: dict[str, str]) -> list[str]:
    kind, *rest = test
    rest = [interpolate(part, env) for part in rest]
    if kind == "CMD-SHELL":
        return ["sh", "-c", rest[0]]
    assert kind == "CMD", test
    return rest


def local(url: str, *, host: str, netloc: str, path: str | None = None) -> str:
    parts = urlsplit(url)
    assert parts.hostname == host, f"{url} should point at the {host} service"
    return urlunsplit((parts.scheme, netloc, parts.path if path is None else path, "", ""))


class Stack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def alive(self, name: str) -> None:
        proc = self.procs[name]
        assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}"

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _get(url: str, *, auth: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait(what: str, condition, stack: Stack, names: list[str], timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        for name in names:
            stack.alive(name)
        time.sleep(0.3)
    logs = "\n".join(f"--- {n}\n{stack.log(n)[-3000:]}" for n in names)
    pytest.fail(f"{what}: not within {timeout} s\n{logs}")


@pytest.fixture
def database():
    if not (_reachable(PG) and _reachable(REDIS)):
        pytest.skip("PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) is not running")
    import psycopg
    import redis

    outer = os.environ.get("CELERY_BROKER_URL", "")
    assert not outer.startswith("redis") or urlsplit(outer).path != f"/{REDIS_DB}", (
        "SLABUDDY_COMPOSE_TEST_REDIS_DB must differ from the suite's own Redis db"
    )
    name = f"slabuddy_compose_{os.getpid()}"
    admin = psycopg.connect(host=PG[0], port=PG[1], user="postgres", dbname="postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    broker = redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_DB)
    broker.flushdb()
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        broker.flushdb()
        broker.close()


# The services run on the machine's PostgreSQL and Redis whatever the suite's configuration: once
# is enough, in the PostgreSQL + Redis run (CI's second), where the same stores are checked.
@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
                    reason="compose's services run on PostgreSQL and Redis: the PostgreSQL + Redis run")
def test_compose_services_run_with_their_own_commands(database, tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "flower"} <= set(services)
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert "-E" in argv(services["worker"]["command"], {}), "task events must be on for Flower"
    assert "-E" in argv(services["escalation-worker"]["command"], {}), "task events must be on for Flower"

    dotenv_values = dotenv(ROOT / ".env.example")
    base_env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    base_env["PATH"] = f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    base_env["HOSTNAME"] = socket.gethostname()  # what Docker sets; used by the worker's health check
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    slack = FakeSlack().start()
    stack = Stack(tmp_path)
    ports = {"web": free_port(), "flower": free_port()}

    def service_env(name: str) -> dict[str, str]:
        service = services[name]
        env = {**base_env, **dotenv_values}
        for key, value in service.get("environment", {}).items():
            env[key] = interpolate(str(value), {**dotenv_values, **env})
        env["DATABASE_URL"] = local(
            env["DATABASE_URL"], host="postgres", netloc="postgres@127.0.0.1:5432", path=f"/{database}"
        )
        env["CELERY_BROKER_URL"] = local(
            env["CELERY_BROKER_URL"], host="redis", netloc="127.0.0.1:6379", path=f"/{REDIS_DB}"
        )
        assert env["SLABUDDY_DATA_DIR"] == "/data"
        env["SLABUDDY_DATA_DIR"] = str(data_dir)
        env["SLACK_API_BASE_URL"] = slack.base_url  # the scan and the bot talk to the stand-in
        env["HEARTBEAT_SECONDS"] = "2"  # so beat's first heartbeat comes within seconds
        return env

    def command(name: str) -> list[str]:
        args = argv(services[name]["command"], service_env(name))
        text = json.dumps(args)
        text = text.replace("0.0.0.0:8000", f"127.0.0.1:{ports['web']}")
        text = text.replace("--port=5555", f"--port={ports['flower']} --address=127.0.0.1")
        return json.loads(text)

    def health(name: str) -> subprocess.CompletedProcess:
        args = healthcheck_argv(services[name]["healthcheck"]["test"], service_env(name))
        args = [
            a.replace("127.0.0.1:8000", f"127.0.0.1:{ports['web']}").replace(
                "127.0.0.1:5555", f"127.0.0.1:{ports['flower']}"
            )
            for a in args
        ]
        return subprocess.run(
            args, cwd=ROOT, env=service_env(name), capture_output=True, text=True, timeout=40
        )

    web_url = f"http://127.0.0.1:{ports['web']}"
    try:
        # web: migrations, schedules, static files, then gunicorn serves /healthz.
        stack.start("web", command("web"), service_env("web"))
        _wait("gunicorn /healthz", lambda: _get(web_url + "/healthz")[0] == 200, stack, ["web"], timeout=75)
        assert json.loads(_get(web_url + "/healthz")[1]) == {"status": "ok"}
        assert health("web").returncode == 0

        for name in ("worker", "escalation-worker", "beat", "flower"):
            stack.start(name, command(name), service_env(name))

        # the workers: each answers a ping, through its own compose health check (celery inspect ping).
        for worker in ("worker", "escalation-worker"):
            def pinged(worker=worker):
                result = health(worker)
                return result.returncode == 0 and "pong" in result.stdout

            _wait(f"{worker} ping", pinged, stack, [worker], timeout=45)

        # beat: schedules the heartbeat, the worker runs it, /readyz turns 200.
        _wait(
            "/readyz 200", lambda: _get(web_url + "/readyz")[0] == 200, stack, ["beat", "worker"], timeout=45
        )
        ready = json.loads(_get(web_url + "/readyz")[1])
        assert ready["checks"]["beat"]["ok"] and ready["checks"]["broker"]["detail"] == "redis reachable"
        assert "Scheduler: Sending due task SLA Buddy heartbeat" in stack.log("beat")
        assert health("beat").returncode == 0

        # flower: basic auth from FLOWER_BASIC_AUTH, and it sees the worker's task events.
        flower_url = f"http://127.0.0.1:{ports['flower']}"
        credentials = dotenv_values["FLOWER_BASIC_AUTH"]
        _wait("flower", lambda: _get(flower_url + "/healthcheck")[0] == 200, stack, ["flower"], timeout=30)
        assert health("flower").returncode == 0
        assert _get(flower_url + "/")[0] == 401
        assert _get(flower_url + "/", auth="admin:wrong")[0] == 401
        assert _get(flower_url + "/", auth=credentials)[0] == 200

        def heartbeat_task_seen():
            status, body = _get(flower_url + "/api/tasks?limit=20", auth=credentials)
            return status == 200 and b"ops.tasks.heartbeat" in body

        _wait("task events in Flower", heartbeat_task_seen, stack, ["flower", "worker", "beat"], timeout=20)
    finally:
        stack.stop()
        slack.stop()


def test_flower_refuses_to_start_without_basic_auth(tmp_path):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    args = argv(compose["services"]["flower"]["command"], {})
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "SLABUDDY_DATA_DIR": str(tmp_path)}
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH must be set" in result.stderr
