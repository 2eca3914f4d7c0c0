"""Helpers shared by the benchmarks that run SLA Buddy as separate processes.

Nothing here imports Django at module level: a benchmark sets its environment
first (``bench_environment``), then calls ``django.setup()`` itself.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import signal
import socket
import statistics
import sys
import threading
from pathlib import Path

from ops.testing.processes import Proc
from ops.workers import WORKERS

__all__ = ["Proc"]  # benchmarks import it from here with the other helpers

BASE_DIR = Path(__file__).resolve().parent.parent
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"


def bench_environment(*, database: str, broker_db: int, data_dir: str) -> None:
    """Defaults for a benchmark run; anything already in the environment wins."""
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    os.environ.setdefault("CELERY_BROKER_URL", f"redis://127.0.0.1:6379/{broker_db}")
    os.environ.setdefault("SLABUDDY_DATA_DIR", data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slabuddy.settings")
    # Production-like request handling without production's secrets: no debug
    # bookkeeping (DEBUG keeps every query in memory), plain HTTP on 127.0.0.1.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("LOG_LEVEL", "warning")


def ensure_database() -> None:
    """Create the benchmark's PostgreSQL database if it does not exist."""
    import dj_database_url
    import psycopg

    db = dj_database_url.parse(os.environ["DATABASE_URL"])
    if "postgresql" not in db["ENGINE"]:
        raise SystemExit("this benchmark measures PostgreSQL + Redis: set DATABASE_URL=postgres://...")
    dsn = dict(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or None,
               password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)
    with psycopg.connect(**{k: v for k, v in dsn.items() if v is not None}) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db["NAME"],)).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def stop_on_sigterm() -> None:
    """SIGTERM (``kill``, ``timeout``) unwinds like Ctrl-C, so the benchmark stops what it started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the compose file's commands ------------------------------------------------------


def compose_service(service: str) -> dict:
    import yaml

    return yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]


def nice_for_cpu_shares(shares: int | None, *, processes: int = 1, against: int = 1) -> int:
    """The nice value for each of ``processes`` processes so that together they weigh against
    ``against`` nice-0 processes as a container with ``cpu_shares`` weighs against one with the
    default 1024 (a container's share is split among its processes; each nice step is a factor
    of about 1.25)."""
    if not shares or shares >= 1024:
        return 0
    weight = shares / 1024 * against / processes  # of one process, a nice-0 process being 1
    return max(0, min(19, round(math.log(1 / weight) / math.log(1.25))))


def compose_command(service: str) -> list[str]:
    """The argv a docker-compose.yml service runs (its final ``exec`` for ``sh -c`` commands)."""
    command = compose_service(service)["command"]
    if isinstance(command, list):
        return list(command)
    argv = shlex.split(command.replace("$$", "$"))
    if argv[:2] == ["sh", "-c"]:
        script = argv[2]
        argv = shlex.split(script.rsplit("exec ", 1)[1]) if "exec " in script else shlex.split(script)
    return argv


def option_set(argv: list[str], option: str, value: str) -> list[str]:
    """Replace ``--option value`` / ``--option=value`` in argv (or append it)."""
    out, i, done = [], 0, False
    while i < len(argv):
        arg = argv[i]
        if arg == option:
            out += [option, value]
            i, done = i + 2, True
            continue
        if arg.startswith(option + "="):
            out.append(f"{option}={value}")
            i, done = i + 1, True
            continue
        out.append(arg)
        i += 1
    return out if done else out + [option, value]


def option_get(argv: list[str], option: str, default: str | None = None) -> str | None:
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return default


def venv_argv(argv: list[str]) -> list[str]:
    """Run ``celery``/``gunicorn``/``python`` from this interpreter's environment."""
    head, *rest = argv
    if head in ("python", "python3"):
        return [sys.executable, *rest]
    return [sys.executable, "-m", head, *rest]


# --- child processes: ops.testing.processes.Proc (shared with the tests) ----------------------


def worker_argvs(*, node: str, concurrency: dict[str, int] | None = None) -> list[tuple[str, list[str]]]:
    """``celery -A slabuddy`` arguments of each kind of worker (ops/workers.py), as ``make run``
    starts them: ``[(kind, argv), ...]``, each named ``<kind>-<node>``; ``concurrency`` by kind."""
    concurrency = concurrency or {}
    return [(kind.name, kind.argv(node=f"{kind.name}-{node}", concurrency=concurrency.get(kind.name)))
            for kind in WORKERS]


# --- the stand-in Slack, in a process of its own ---------------------------------------


def _serve_fake_slack(conn) -> None:
    from base.fake_slack import FakeSlack

    fake = FakeSlack().start()
    conn.send(fake.base_url)
    while True:
        command, payload = conn.recv()
        if command == "threads":
            for channel, ts in payload:
                fake.add_message(channel, "bench ticket", ts=ts, user="UCUST")
            conn.send(None)
        elif command == "posts":  # (key, arrival time) of every accepted chat.postMessage
            conn.send([
                ((c.args.get("metadata") or {}).get("event_payload", {}).get("key"), c.at)
                for c in fake.calls("chat.postMessage") if c.status == 200
            ])
        elif command == "stop":
            fake.stop()
            conn.send(None)
            return


class FakeSlackProcess:
    """``base.fake_slack`` in a child process, away from the benchmark's own CPU and GIL."""

    def __init__(self):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_serve_fake_slack, args=(child_conn,), daemon=True)
        self.process.start()
        self.base_url = self.conn.recv()

    def ask(self, command: str, payload=None):
        self.conn.send((command, payload))
        return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(5)


# --- measuring ----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency_summary(values: list[float], prefix: str) -> dict[str, float | None]:
    """p50 / p99 / max in seconds, rounded to the millisecond."""
    if not values:
        return {f"{prefix}_p50_s": None, f"{prefix}_p99_s": None, f"{prefix}_max_s": None}
    return {
        f"{prefix}_p50_s": round(statistics.median(values), 3),
        f"{prefix}_p99_s": round(percentile(values, 0.99), 3),
        f"{prefix}_max_s": round(max(values), 3),
    }


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (a worker's pool, gunicorn's workers)."""
    total = 0.0
    for one in (pid, *children_of(pid)):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class RssSampler(threading.Thread):
    """Peak RSS of some processes (each with its children), sampled twice a second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pids: dict[str, int] = {}
        self.peak_main: dict[str, int] = {}
        self.peak_total: dict[str, int] = {}
        self.first_total: dict[str, int] = {}
        self.stopping = threading.Event()

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for name, pid in list(self.pids.items()):
                main = rss_kib(pid)
                total = main + sum(rss_kib(child) for child in children_of(pid))
                if not main:
                    continue
                self.first_total.setdefault(name, total)
                self.peak_main[name] = max(self.peak_main.get(name, 0), main)
                self.peak_total[name] = max(self.peak_total.get(name, 0), total)


class LoadSampler(threading.Thread):
    """The machine's 1-minute load average, sampled every few seconds (the machine may be shared)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(2):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float | None]:
        if not self.samples:
            return {"load_avg_mean": None, "load_avg_max": None}
        return {"load_avg_mean": round(statistics.mean(self.samples), 2),
                "load_avg_max": round(max(self.samples), 2)}


def machine() -> dict[str, str | int | None]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "kernel": platform.release()}
