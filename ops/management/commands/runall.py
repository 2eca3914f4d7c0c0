"""Run web, the Celery workers, Celery beat and Flower together on one machine.

The workers are the two kinds of ``ops/workers.py``: a prefork worker for the
``default`` queue and a threads worker for the ``escalation`` queue.

This is what ``make run`` starts. Each child runs in its own process group so
that shutdown is ours to order: Ctrl-C (SIGINT) or SIGTERM stops every child
and its pool processes, and if any child dies the others are stopped too.

Flower listens on 127.0.0.1 only and never without a password: FLOWER_BASIC_AUTH
(``user:password``) if set, else a password generated once into the data folder
and printed next to the admin URL. It reads it from its environment (FLOWER_*),
not from its command line, where ``ps`` would show it.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from base.fake_slack import BOT_USER_ID
from ops.demo.history import demo_history_seed
from ops.demo.setup import DEMO_ROUTING_KEY, demo_setup
from ops.workers import DEFAULT_WORKER, ESCALATION_WORKER

# Children SLA Buddy can run without: when one exits, the others carry on.
OPTIONAL_CHILDREN = frozenset({"flower"})

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM if runall itself is killed with SIGKILL.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Command(BaseCommand):
    help = "Start the web server, the Celery workers and Celery beat; stop them all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("SLABUDDY_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SLABUDDY_PORT", 8000)))
        parser.add_argument("--concurrency", type=int, default=DEFAULT_WORKER.concurrency,
                            help="processes of the default-queue worker")
        parser.add_argument("--escalation-threads", type=int, default=ESCALATION_WORKER.concurrency,
                            help="threads of the escalation-queue worker")
        parser.add_argument(
            "--flower-port", type=int, default=int(os.environ.get("SLABUDDY_FLOWER_PORT", 5555)),
            help="Flower's port on 127.0.0.1 (0: do not start Flower)",
        )

    def handle(self, *args, host: str, port: int, concurrency: int, escalation_threads: int,
               flower_port: int, **options):
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "slabuddy"]
        if flower_port and not _port_free(flower_port):
            # Flower is monitoring, not the product: a taken port must not stop SLA Buddy.
            self.stderr.write(f"Flower: port {flower_port} on 127.0.0.1 is in use; starting without Flower "
                              "(choose another with SLABUDDY_FLOWER_PORT, or 0 to leave it out).")
            flower_port = 0
        flower_login = flower_basic_auth() if flower_port else None
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": celery + DEFAULT_WORKER.argv(node=f"slabuddy-{os.getpid()}@%h", concurrency=concurrency)
            + ["-l", "info"],
            "beat": celery + [
                "beat", "-l", "info", "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile", "",
            ],
        }
        # After flower in the list (and so in "Stopped ..."): the two workers need not start in order.
        escalation_node = f"slabuddy-escalation-{os.getpid()}@%h"
        escalation = celery + ESCALATION_WORKER.argv(node=escalation_node, concurrency=escalation_threads)
        env = dict(os.environ)
        if flower_login:
            commands["flower"] = celery + ["flower", "--address=127.0.0.1", f"--port={flower_port}"]
            env["FLOWER_BASIC_AUTH"] = flower_login
            env.pop("FLOWER_BASIC_AUTH_FILE", None)  # Flower would take it for an option of its own
        commands["escalation"] = escalation + ["-l", "info"]
        if settings.DEMO_MODE:
            commands, env = self._with_demo_slack(commands, env)
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

        for name, cmd in commands.items():
            child = subprocess.Popen(
                cmd,
                cwd=settings.BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                text=True,
                bufsize=1,
            )
            self.children[name] = child
            threading.Thread(target=self._relay, args=(name, child), daemon=True).start()

        url = f"http://{host}:{port}"
        if self._wait_for_web(f"{url}/healthz", timeout=60):
            banner = f"SLA Buddy is up. Admin: {url}/admin/"
            if settings.DEMO_MODE:
                banner += f"   Demo: {url}/demo/"
            if flower_login:
                user, password = flower_login.split(":", 1)
                banner += (f"\nFlower (Celery monitoring): http://127.0.0.1:{flower_port}/  "
                           f"user {user!r}, password {password!r}")
            self.stdout.write(self.style.SUCCESS(banner) + "\nPress Ctrl-C to stop everything.")
        exit_code = self._supervise()
        sys.exit(exit_code)

    def _with_demo_slack(self, commands: dict, env: dict) -> tuple[dict, dict]:
        """Demo mode: stand-ins for Slack's Web API and for PagerDuty, and every child pointed at them."""
        port = int(os.environ.get("SLABUDDY_DEMO_SLACK_PORT") or 0) or _free_port()
        pager_port = int(os.environ.get("SLABUDDY_DEMO_PAGER_PORT") or 0) or _free_port()
        secret_file = settings.DATA_DIR / "demo_signing_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_hex(16))
            secret_file.chmod(0o600)
        env = env | {
            "SLACK_API_BASE_URL": f"http://127.0.0.1:{port}/api/",
            "SLACK_SIGNING_SECRET": secret_file.read_text().strip(),
            "SLACK_BOT_USER_ID": BOT_USER_ID,
            # The demo pages a stand-in PagerDuty, never a real one.
            "PAGERDUTY_EVENTS_URL": f"http://127.0.0.1:{pager_port}/v2/enqueue",
            "PAGERDUTY_ROUTING_KEY": DEMO_ROUTING_KEY,
        }
        env.pop("SLACK_SIGNING_SECRET_FILE", None)
        env.pop("PAGERDUTY_ROUTING_KEY_FILE", None)
        demo_setup()
        seeded = demo_history_seed()  # a past month for the report and replay pages (demo mode only)
        if seeded:
            self.stdout.write(f"Demo mode: seeded {seeded} past tickets (a month of demo history).")
        self.stdout.write(
            f"Demo mode (no SLACK_BOT_TOKEN): stand-in Slack on port {port}, "
            f"stand-in pager on port {pager_port}."
        )
        fake = [sys.executable, "-m", "base.fake_slack", "--port", str(port)]
        pager = [sys.executable, "-m", "base.fake_pager", "--port", str(pager_port)]
        return {"slack": fake, "pager": pager, **commands}, env

    def _relay(self, name: str, child: subprocess.Popen) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stdout.write(f"{name:>6} | {line}")
            sys.stdout.flush()

    def _wait_for_web(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.children["web"].poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        return False

    def _on_signal(self, signum, frame) -> None:
        self.stopping.set()

    def _supervise(self) -> int:
        exit_code = 0
        while not self.stopping.is_set():
            for name, child in self.children.items():
                if child.poll() is not None and name in OPTIONAL_CHILDREN:
                    self.stderr.write(f"{name} exited with code {child.returncode}; "
                                      "SLA Buddy keeps running without it.")
                    del self.children[name]
                    break
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with code {child.returncode}; stopping.")
                    exit_code = 1
                    self.stopping.set()
                    break
            self.stopping.wait(0.5)
        self._stop_all()
        return exit_code

    def _stop_all(self, grace: float = 10.0) -> None:
        # SIGTERM to each main process: Celery's warm shutdown stops its own pool.
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + grace
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in self.children.values():
            # Also reaps pool processes left in the group after their parent exited.
            self._signal_group(child, signal.SIGKILL)
            child.wait()
        self.stdout.write(f"Stopped {', '.join(self.children)}.")

    @staticmethod
    def _signal_group(child: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(child.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def flower_basic_auth() -> str:
    """``user:password`` for Flower: FLOWER_BASIC_AUTH, else generated once and kept (0600)."""
    if settings.FLOWER_BASIC_AUTH is not None:
        user, _, password = settings.FLOWER_BASIC_AUTH.partition(":")
        if not user or not password:
            raise CommandError("FLOWER_BASIC_AUTH must be user:password: Flower never runs without one.")
        return settings.FLOWER_BASIC_AUTH
    path = settings.DATA_DIR / "flower_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    password = path.read_text().strip()
    if not password:
        raise CommandError(f"{path} is empty; delete it and a new Flower password is generated.")
    return f"flower:{password}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
