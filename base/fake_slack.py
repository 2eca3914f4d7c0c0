"""A small, real HTTP stand-in for Slack's Web API.

Used by the tests, the benchmarks and demo mode: point ``SLACK_API_BASE_URL``
at ``FakeSlack.base_url`` and slack_sdk talks to it over HTTP exactly as it
would to Slack. It keeps channels and threads in memory, records every call,
and can be told to fail the next calls of a method (429 with Retry-After,
500, or a Slack error such as ``channel_not_found``), or to carry out a call
only after the client has given up on it (``land_late``: Slack slower than our
timeout, or a connection dropped mid-call, yet the post appears).

Two faults of a real Slack can be switched on for a whole run (benchmarks):
``SlowPosts`` makes a share of ``chat.postMessage`` calls hang past the
client's timeout (then answer 503, nothing posted), and ``ChannelPostLimit``
enforces Slack's posting limit (about one message per second per channel,
short bursts allowed; 429 with Retry-After beyond it).

Run it alone with ``python -m base.fake_slack --port 8765``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT_USER_ID = "UFAKEBOT01"
BOT_ID = "BFAKEBOT01"
TEAM_ID = "TFAKETEAM1"


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    remaining: int = 1


@dataclass
class LateLanding:
    """Carry the call out ``hold`` seconds late, then answer ``status`` (or drop the connection
    at once and carry it out ``hold`` seconds after that)."""

    hold: float
    status: int = 503
    drop: bool = False
    remaining: int = 1


DROP = object()  # handle()'s answer: close the connection without a response


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    status: int


@dataclass
class FakeSlackState:
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=lambda: defaultdict(list))
    late: dict[str, list[LateLanding]] = field(default_factory=lambda: defaultdict(list))
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # users.info answers, by id
    views: dict[str, dict[str, Any]] = field(default_factory=dict)  # open modals, by view id
    home_tabs: dict[str, dict[str, Any]] = field(default_factory=dict)  # views.publish, by user id
    deleted: list[dict[str, Any]] = field(default_factory=list)  # messages removed by chat.delete


# --- faults for a whole run: slow posts, Slack's posting limit per channel ------------------


@dataclass
class SlowPosts:
    """A ``share`` of chat.postMessage calls (to ``channel`` only, if given) hang ``seconds`` (past
    the client's timeout), then answer 503 with nothing posted. Which calls hang is drawn from
    ``seed``: runs repeat. ``release()`` ends every hang at once, and no call hangs after it."""

    share: float
    seconds: float = 10.5
    seed: int = 13
    channel: str | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.hanging = 0  # calls hanging right now

    def hangs(self, channel: str) -> bool:
        if self._released.is_set() or (self.channel is not None and channel != self.channel):
            return False
        with self._lock:
            return self._random.random() < self.share

    def hang(self) -> None:
        with self._lock:
            self.hanging += 1
        try:
            self._released.wait(self.seconds)
        finally:
            with self._lock:
                self.hanging -= 1

    def release(self) -> None:
        self._released.set()


@dataclass
class ChannelPostLimit:
    """Slack's posting limit: a token bucket per channel, ``per_second`` tokens a second up to
    ``burst``; a post without a token is refused with 429 and Retry-After (whole seconds)."""

    per_second: float = 1.0
    burst: int = 3

    def __post_init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # channel: (tokens, at)
        self._lock = threading.Lock()

    def retry_after(self, channel: str, now: float) -> int:
        """0 if a post to ``channel`` may go now (it takes a token), else seconds to wait."""
        with self._lock:
            tokens, at = self._buckets.get(channel, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            if tokens >= 1:
                self._buckets[channel] = (tokens - 1, now)
                return 0
            self._buckets[channel] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.per_second))


class FakeSlack:
    """Start with ``FakeSlack().start()``; stop with ``.stop()`` (or use as a context manager)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, page_limit_cap: int = 200,
                 slow_posts: SlowPosts | None = None, post_limit: ChannelPostLimit | None = None):
        self.slow_posts = slow_posts
        self.post_limit = post_limit
        self.state = FakeSlackState()
        self.lock = threading.Lock()
        self.page_limit_cap = page_limit_cap
        # Sent back by auth.test in the x-oauth-scopes header, as Slack does.
        self.scopes = ["app_mentions:read", "channels:history", "channels:read", "chat:write", "commands",
                       "groups:history", "groups:read", "reactions:read", "usergroups:read", "users:read",
                       "users:read.email"]
        self._ts_counter = itertools.count(1)
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def start(self) -> FakeSlack:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- scripting -----------------------------------------------------------
    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        ``status=429`` with ``retry_after`` is a rate limit; ``status=500`` a
        server error; ``error='channel_not_found'`` an ``ok: false`` answer.
        """
        with self.lock:
            self.state.failures[method].append(
                Failure(status=status, error=error, retry_after=retry_after, remaining=times)
            )

    def land_late(self, method: str, *, hold: float, status: int = 503, drop: bool = False,
                  times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect only after the client gave up.

        Without ``drop``: the call is held ``hold`` seconds (longer than the client's
        timeout), carried out (a post appears in the thread), then answered with ``status``.
        With ``drop``: the connection is closed at once, and the call is carried out
        ``hold`` seconds later. Either way the client sees a failure and Slack shows the post.
        """
        with self.lock:
            self.state.late[method].append(LateLanding(hold=hold, status=status, drop=drop, remaining=times))

    def new_ts(self) -> str:
        return f"{time.time():.0f}.{next(self._ts_counter):06d}"

    def add_message(self, channel: str, text: str = "", *, ts: str | None = None, **fields: Any) -> dict:
        """Put a message into a channel's history as if someone had posted it."""
        message = {"type": "message", "ts": ts or self.new_ts(), "text": text, **fields}
        with self.lock:
            self.state.messages[channel].append(message)
        return message

    def add_user(self, user_id: str, *, name: str = "", real_name: str = "", display_name: str = "",
                 email: str = "", is_bot: bool = False, deleted: bool = False) -> dict:
        """A workspace member as users.info describes them."""
        user = {
            "id": user_id, "team_id": TEAM_ID, "name": name or user_id.lower(), "deleted": deleted,
            "real_name": real_name, "is_bot": is_bot, "is_admin": False,
            "profile": {"real_name": real_name, "display_name": display_name, "email": email},
        }
        with self.lock:
            self.state.users[user_id] = user
        return user

    # -- inspection ----------------------------------------------------------
    def opened_views(self) -> list[dict[str, Any]]:
        """Modals as Slack holds them now (opened, then perhaps updated), oldest first."""
        with self.lock:
            return [dict(view) for view in self.state.views.values()]

    def home_tab(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for a user."""
        with self.lock:
            return self.state.home_tabs.get(user_id)

    def calls(self, method: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self.state.calls if method is None or c.method == method]

    def call_counts(self) -> Counter:
        with self.lock:
            return Counter(c.method for c in self.state.calls)

    def posts(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot posted (successfully), oldest first."""
        with self.lock:
            found = []
            for chan, messages in self.state.messages.items():
                for message in messages:
                    if message.get("user") != BOT_USER_ID:
                        continue
                    if channel is not None and chan != channel:
                        continue
                    if thread_ts is not None and message.get("thread_ts") != thread_ts:
                        continue
                    found.append({**message, "channel": chan})
            return sorted(found, key=lambda m: float(m["ts"]))

    def deleted(self) -> list[dict[str, Any]]:
        """Messages removed with chat.delete, in the order they were removed."""
        with self.lock:
            return list(self.state.deleted)

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self.lock:
            return sorted(
                (
                    m for m in self.state.messages[channel]
                    if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
                ),
                key=lambda m: float(m["ts"]),
            )

    def reset(self) -> None:
        with self.lock:
            self.state = FakeSlackState()

    # -- API methods ---------------------------------------------------------
    def _take_failure(self, method: str) -> Failure | None:
        queue = self.state.failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    def _take_late(self, method: str) -> LateLanding | None:
        with self.lock:
            queue = self.state.late.get(method)
            if not queue:
                return None
            late = queue[0]
            late.remaining -= 1
            if late.remaining <= 0:
                queue.pop(0)
            return late

    def handle_late(self, late: LateLanding, method: str, args: dict[str, Any],
                    token: str | None) -> tuple[int, dict, dict]:
        """Wait, carry the call out, then answer with the error (see ``land_late``)."""
        time.sleep(late.hold)
        self.handle(method, args, token)
        return late.status, {"ok": False, "error": "service_unavailable"}, {}
    def _run_faults(self, method: str, args: dict[str, Any]) -> tuple[int, dict, dict] | None:
        """The run-wide faults (outside the lock: a hanging call holds only its own thread)."""
        if method != "chat.postMessage":
            return None
        if self.slow_posts is not None and self.slow_posts.hangs(str(args.get("channel"))):
            self.slow_posts.hang()
            with self.lock:
                self.state.calls.append(Call(method, args, time.time(), 503))
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        if self.post_limit is not None:
            wait = self.post_limit.retry_after(str(args.get("channel")), time.monotonic())
            if wait:
                with self.lock:
                    self.state.calls.append(Call(method, args, time.time(), 429))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)}
        return None

    def handle(self, method: str, args: dict[str, Any], token: str | None) -> tuple[int, dict, dict]:
        faulted = self._run_faults(method, args)
        if faulted is not None:
            return faulted
        with self.lock:
            failure = self._take_failure(method)
            if failure is not None:
                headers = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(failure.retry_after)
                default_error = "ratelimited" if failure.status == 429 else "internal_error"
                body = {"ok": False, "error": failure.error or default_error}
                self.state.calls.append(Call(method, args, time.time(), failure.status))
                return failure.status, body, headers
            if not token:
                self.state.calls.append(Call(method, args, time.time(), 200))
                return 200, {"ok": False, "error": "not_authed"}, {}
            handler = getattr(self, "api_" + method.replace(".", "_"), None)
            if handler is None:
                body = {"ok": False, "error": "unknown_method"}
            else:
                body = handler(args)
            self.state.calls.append(Call(method, args, time.time(), 200))
            headers = {"x-oauth-scopes": ",".join(self.scopes)} if method == "auth.test" else {}
            return 200, body, headers

    def api_auth_test(self, args):
        return {"ok": True, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "team_id": TEAM_ID,
                "user": "slabuddy", "team": "Fake Team", "url": "https://fake.slack.example/"}

    def api_chat_postMessage(self, args):
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        message = {
            "type": "message", "ts": self.new_ts(), "user": BOT_USER_ID, "bot_id": BOT_ID,
            "text": args.get("text", ""),
        }
        for key in ("thread_ts", "blocks", "attachments", "metadata"):
            if args.get(key):
                value = args[key]
                message[key] = json.loads(value) if isinstance(value, str) and key != "thread_ts" else value
        self.state.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def api_chat_update(self, args):
        channel, ts = args.get("channel"), args.get("ts")
        for message in self.state.messages.get(channel, []):
            if message["ts"] == ts:
                message["text"] = args.get("text", message.get("text", ""))
                if args.get("blocks"):
                    blocks = args["blocks"]
                    message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
                message["edited"] = {"user": BOT_USER_ID, "ts": self.new_ts()}
                return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def api_chat_delete(self, args):
        channel, ts = args.get("channel"), args.get("ts")
        messages = self.state.messages.get(channel, [])
        for index, message in enumerate(messages):
            if message["ts"] == ts:
                if message.get("user") != BOT_USER_ID:
                    return {"ok": False, "error": "cant_delete_message"}
                del messages[index]
                self.state.deleted.append({**message, "channel": channel})
                return {"ok": True, "channel": channel, "ts": ts}
        return {"ok": False, "error": "message_not_found"}

    def _page(self, items: list[dict], args: dict) -> dict:
        limit = min(int(args.get("limit") or 100), self.page_limit_cap)
        start = int(args.get("cursor") or 0)
        page = items[start:start + limit]
        more = start + limit < len(items)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _visible(self, message: dict, include_metadata: bool) -> dict:
        if include_metadata:
            return dict(message)
        return {k: v for k, v in message.items() if k != "metadata"}

    def api_conversations_history(self, args):
        channel = args.get("channel")
        if channel not in self.state.messages and channel not in self.state.channels:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        include_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        items = [
            self._visible(m, include_metadata) for m in self.state.messages.get(channel, [])
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
            and float(m["ts"]) <= latest
        ]
        items.sort(key=lambda m: float(m["ts"]), reverse=True)  # Slack: newest first
        return self._page(items, args)

    def api_conversations_replies(self, args):
        channel, ts = args.get("channel"), args.get("ts")
        include_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        items = [
            self._visible(m, include_metadata) for m in self.state.messages.get(channel, [])
            if m["ts"] == ts or m.get("thread_ts") == ts
        ]
        if not items:
            return {"ok": False, "error": "thread_not_found"}
        items.sort(key=lambda m: float(m["ts"]))  # Slack: parent first, then oldest first
        return self._page(items, args)

    def api_fake_postMessage(self, args):
        """Not Slack: post as a person (demo page, tests). Only this fake has it."""
        channel, user = args.get("channel"), args.get("user")
        if not channel or not user:
            return {"ok": False, "error": "channel_and_user_required"}
        message = {"type": "message", "ts": self.new_ts(), "user": user, "text": args.get("text", "")}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.state.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def api_fake_postAsBot(self, args):
        """Not Slack: post as another app's bot (a helpdesk), e.g. a message without a Ticket ID yet."""
        channel, bot_id = args.get("channel"), args.get("bot_id")
        if not channel or not bot_id:
            return {"ok": False, "error": "channel_and_bot_id_required"}
        message = {"type": "message", "subtype": "bot_message", "ts": self.new_ts(), "bot_id": bot_id,
                   "username": args.get("username") or bot_id, "text": args.get("text", "")}
        self.state.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def api_fake_editMessage(self, args):
        """Not Slack: someone edits a message (keeps its ts); answers the message before and after."""
        channel, ts = args.get("channel"), args.get("ts")
        for message in self.state.messages.get(channel, []):
            if message["ts"] == ts:
                previous = dict(message)
                message["text"] = args.get("text", "")
                editor = message.get("user") or message.get("bot_id")
                message["edited"] = {"user": editor, "ts": self.new_ts()}
                return {"ok": True, "message": dict(message), "previous_message": previous}
        return {"ok": False, "error": "message_not_found"}

    def api_fake_react(self, args):
        """Not Slack: a person adds (``remove``: takes off) a reaction on a message, as Slack keeps them."""
        channel, ts, user, name = args.get("channel"), args.get("ts"), args.get("user"), args.get("name")
        for message in self.state.messages.get(channel, []):
            if message["ts"] == ts:
                reactions = message.setdefault("reactions", [])
                entry = next((r for r in reactions if r["name"] == name), None)
                if entry is None:
                    entry = {"name": name, "users": [], "count": 0}
                    reactions.append(entry)
                users = set(entry["users"])
                if args.get("remove"):
                    users.discard(user)
                else:
                    users.add(user)
                entry["users"], entry["count"] = sorted(users), len(users)
                message["reactions"] = [r for r in reactions if r["count"]]
                return {"ok": True, "event_ts": self.new_ts()}
        return {"ok": False, "error": "message_not_found"}

    def api_conversations_info(self, args):
        channel = args.get("channel")
        info = self.state.channels.get(channel)
        if info is None:
            if channel not in self.state.messages:
                return {"ok": False, "error": "channel_not_found"}
            info = {"id": channel, "name": channel.lower(), "is_member": True}
        return {"ok": True, "channel": info}

    # Modals and the App Home: Slack keeps the view, with an id and a hash that changes on update.
    def _view(self, view: Any, **extra: Any) -> dict | None:
        view = json.loads(view) if isinstance(view, str) else view
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            return None
        number = next(self._ts_counter)
        return {**view, "id": extra.pop("id", None) or f"VFAKE{number:06d}", "hash": f"{number}.fakehash",
                "team_id": TEAM_ID, **extra}

    def api_views_open(self, args):
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view = self._view(args.get("view"))
        if view is None or view["type"] != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        self.state.views[view["id"]] = view
        return {"ok": True, "view": view}

    def api_views_update(self, args):
        current = self.state.views.get(args.get("view_id") or "")
        if current is None:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != current["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        view = self._view(args.get("view"), id=current["id"])
        if view is None:
            return {"ok": False, "error": "invalid_arguments"}
        self.state.views[view["id"]] = view
        return {"ok": True, "view": view}

    def api_views_publish(self, args):
        user = args.get("user_id")
        view = self._view(args.get("view"))
        if not user:
            return {"ok": False, "error": "invalid_arguments"}
        if view is None or view["type"] != "home":
            return {"ok": False, "error": "invalid_arguments"}
        self.state.home_tabs[user] = view
        return {"ok": True, "view": view}

    def api_users_info(self, args):
        user = self.state.users.get(args.get("user") or "")
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _dispatch(self, body: bytes):
                url = urlparse(self.path)
                method = url.path.rsplit("/", 1)[-1]
                args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
                ctype = self.headers.get("Content-Type", "")
                if body:
                    if "json" in ctype:
                        try:
                            args.update(json.loads(body))
                        except ValueError:
                            pass
                    else:
                        args.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip() or args.get("token")
                late = fake._take_late(method)
                if late is not None and late.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)  # the client sees the connection drop
                    fake.handle_late(late, method, args, token)
                    return
                if late is not None:
                    status, payload, headers = fake.handle_late(late, method, args, token)
                else:
                    status, payload, headers = fake.handle(method, args, token)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:  # the client gave up before the answer (a late landing)
                    self.close_connection = True

            def do_GET(self):
                self._dispatch(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self._dispatch(self.rfile.read(length) if length else b"")

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    fake = FakeSlack(options.host, options.port)
    print(f"Fake Slack Web API at {fake.base_url}", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
