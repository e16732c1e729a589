"""Run an MQTT broker for the demo, a single-box centre and the tests.

`MosquittoBroker` runs the system's Mosquitto as a child process with a generated config
(persistence for QoS 1 sessions, TCP_NODELAY, high queue limits) in a data directory.
`AmqttBroker` is the no-Mosquitto fallback: amqtt's broker on its own event loop in a
daemon thread of this process (MQTT 3.1.1 only, no persistence across restarts here).
Both have the same start / stop / restart / kill interface and are context managers.
"""
from __future__ import annotations

import asyncio
import functools
import grp
import ipaddress
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger(__name__)

MOSQUITTO_FALLBACK_PATH = "/usr/sbin/mosquitto"  # Debian's package does not put it on PATH


class BrokerError(RuntimeError):
    """The broker did not start, or was asked to do something it cannot do."""


class Broker(Protocol):
    host: str
    port: int
    name: str

    def start(self, timeout: float = 10.0) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...
    def restart(self) -> None: ...
    def kill(self) -> None: ...
    def is_running(self) -> bool: ...


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def mosquitto_path() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return MOSQUITTO_FALLBACK_PATH if os.access(MOSQUITTO_FALLBACK_PATH, os.X_OK) else None


def mosquitto_available() -> bool:
    return mosquitto_path() is not None


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_port_closed(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _port_open(host, port) and time.monotonic() < deadline:
        time.sleep(0.02)


# --------------------------------------------------------------------------- Mosquitto


class MosquittoBroker:
    """Mosquitto as a child process, configured from Python and logging into `data_dir`.

    Persistence: Mosquitto snapshots its in-memory state (retained messages, persistent
    sessions and their queued QoS 1 messages) on a clean stop and every `autosave_interval`
    seconds; `kill()` (SIGKILL) loses what changed since the last snapshot.

    Running as root: Mosquitto then switches to an unprivileged user *before* it opens its log,
    password and ACL files and writes its database. With `run_as=None` we use the `mosquitto`
    user when it can reach `data_dir` (the directory is then chown'ed to it) and stay root
    otherwise (e.g. under a 0700 temporary directory), saying so in the log.
    """

    name = "mosquitto"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        data_dir: Path | str = Path("mqtt-data"),
        *,
        websockets_port: int | None = None,
        password_file: Path | str | None = None,
        acl_file: Path | str | None = None,
        run_as: str | None = None,
        executable: str | None = None,
        max_queued_messages: int = 100_000,
        max_inflight_messages: int = 1000,
        autosave_interval: int = 60,
        persistent_client_expiration: str = "14d",
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir).resolve()
        self.websockets_port = websockets_port
        self.password_file = Path(password_file).resolve() if password_file else None
        self.acl_file = Path(acl_file).resolve() if acl_file else None
        self.run_as = run_as
        self.executable = executable or mosquitto_path()
        self.max_queued_messages = max_queued_messages
        self.max_inflight_messages = max_inflight_messages
        self.autosave_interval = autosave_interval
        self.persistent_client_expiration = persistent_client_expiration
        self.config_path = self.data_dir / "mosquitto.conf"
        self.log_path = self.data_dir / "mosquitto.log"
        self.stderr_path = self.data_dir / "mosquitto.stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = None

    # -- config

    def _effective_user(self) -> str | None:
        """The `user` line, or None when we are not root (Mosquitto then keeps our user)."""
        if os.geteuid() != 0:
            return None
        if self.run_as:
            return self.run_as
        try:
            account = pwd.getpwnam("mosquitto")
        except KeyError:
            log.warning("no 'mosquitto' user: running Mosquitto as root")
            return "root"
        readable = [p for p in (self.password_file, self.acl_file) if p]
        if _can_reach(self.data_dir, account) and all(_can_read(p, account) for p in readable):
            return "mosquitto"
        log.warning("user 'mosquitto' cannot reach %s (or its password/ACL files): running "
                    "Mosquitto as root", self.data_dir)
        return "root"

    def config_text(self, user: str | None = None) -> str:
        listeners = [f"listener {self.port} {self.host}", _socket_domain(self.host)]
        if self.websockets_port is not None:
            # libwebsockets ignores the bind address unless the socket domain is given.
            listeners += [f"listener {self.websockets_port} {self.host}", "protocol websockets",
                          _socket_domain(self.host) or "socket_domain ipv4"]
        lines = [
            "# Written by motcua (queue_server/mqtt/broker.py); changes are overwritten on start.",
            "per_listener_settings false",
            *[line for line in listeners if line],
            f"allow_anonymous {'false' if self.password_file else 'true'}",
            *([f"password_file {self.password_file}"] if self.password_file else []),
            *([f"acl_file {self.acl_file}"] if self.acl_file else []),
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "persistence_file mosquitto.db",
            f"autosave_interval {self.autosave_interval}",
            f"persistent_client_expiration {self.persistent_client_expiration}",
            # Small packets at once: request/response ~0.4 ms instead of ~88 ms.
            "set_tcp_nodelay true",
            # The default of 1000 queued messages per client drops events under load.
            f"max_queued_messages {self.max_queued_messages}",
            f"max_inflight_messages {self.max_inflight_messages}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
            *([f"user {user}"] if user else []),
        ]
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._effective_user()
        self.config_path.write_text(self.config_text(user), encoding="utf-8")
        if user and user != "root":
            account = pwd.getpwnam(user)
            for path in (self.data_dir, *self.data_dir.glob("mosquitto.*")):
                os.chown(path, account.pw_uid, account.pw_gid)
        return self.config_path

    # -- lifecycle

    def start(self, timeout: float = 10.0) -> None:
        if self.is_running():
            raise BrokerError(f"mosquitto already running on port {self.port}")
        if not self.executable:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        if _port_open(self.host, self.port):
            raise BrokerError(f"port {self.host}:{self.port} is already in use")
        self.write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._process = subprocess.Popen(
            [self.executable, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C in the demo's terminal is ours to handle
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._reap()
                raise BrokerError(f"mosquitto exited with status {code} while starting:\n"
                                  f"{self.log_tail()}")
            if self._log_says_running(log_offset) and self._listeners_open():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(f"mosquitto did not open port {self.port} within {timeout} s:\n"
                                  f"{self.log_tail()}")
            time.sleep(0.02)

    def _log_says_running(self, offset: int) -> bool:
        # "running" is logged after the listeners are open; a port that accepts connections
        # alone could belong to someone else's process.
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                return b" running" in handle.read()
        except OSError:
            return False

    def _listeners_open(self) -> bool:
        ports = [self.port] + ([self.websockets_port] if self.websockets_port else [])
        return all(_port_open(_connect_host(self.host), port) for port in ports)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (Mosquitto saves its database), then SIGKILL if it does not exit in time."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash or power cut, for tests. Unsaved state is lost."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._reap()

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password and ACL files."""
        if not self.is_running():
            raise BrokerError("mosquitto is not running")
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _reap(self) -> None:
        self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.stderr_path, self.log_path):
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(no log output)"

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _socket_domain(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ""
    return "socket_domain ipv4" if address.version == 4 else "socket_domain ipv6"


def _connect_host(host: str) -> str:
    """Where to probe a listener bound to `host` (a wildcard bind is reachable on loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def _permits(path: Path, account: pwd.struct_passwd, bits: tuple[int, int, int]) -> bool:
    """Whether `account` has the permission `bits` (user, group, other) on `path` (mode bits only)."""
    info = path.stat()
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem}
    if info.st_uid == account.pw_uid:
        return bool(info.st_mode & bits[0])
    if info.st_gid in groups:
        return bool(info.st_mode & bits[1])
    return bool(info.st_mode & bits[2])


def _can_reach(directory: Path, account: pwd.struct_passwd) -> bool:
    """Every ancestor of `directory` lets `account` through (a data directory itself we chown)."""
    execute = (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
    return all(_permits(parent, account, execute) for parent in directory.parents)


def _can_read(path: Path, account: pwd.struct_passwd) -> bool:
    read = (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
    return path.exists() and _can_reach(path, account) and _permits(path, account, read)


# --------------------------------------------------------------------------- amqtt


class AmqttBroker:
    """amqtt's broker in a daemon thread with its own event loop: no external program needed.

    Differences from Mosquitto: MQTT 3.1.1 only (use protocol=MQTTv311 in clients); retained
    messages and persistent sessions live in memory only, so they are lost on stop/restart
    (amqtt's SessionDBPlugin would need sqlalchemy and aiosqlite, which are not dependencies);
    roughly 4x slower; no websockets listener is configured here.
    """

    name = "amqtt"

    def __init__(self, host: str = "127.0.0.1", port: int = 1883,
                 data_dir: Path | str | None = None) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir else None  # unused: nothing is persisted
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def _config(self) -> dict:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only our auth plugin: the default set adds $SYS publishing and packet logging.
            "plugins": {f"{__name__}.AmqttOpenAuthPlugin": {}},
        }

    def start(self, timeout: float = 10.0) -> None:
        if self.is_running():
            raise BrokerError(f"amqtt already running on port {self.port}")
        if _port_open(_connect_host(self.host), self.port):
            raise BrokerError(f"port {self.host}:{self.port} is already in use")
        self._started.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise BrokerError(f"amqtt did not start within {timeout} s")
        if self._failure is not None:
            self._thread.join(timeout)
            self._thread = None
            raise BrokerError(f"amqtt failed to start: {self._failure}") from self._failure

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        from amqtt.broker import Broker as AmqttServer  # imported here: heavy, and optional

        self._stop_requested = asyncio.Event()
        try:
            server = AmqttServer(self._config(), loop=asyncio.get_running_loop())
            await server.start()
        except BaseException as exc:  # reported to start() in the caller's thread
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        await self._stop_requested.wait()
        await server.shutdown()

    def stop(self, timeout: float = 5.0) -> None:
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop_requested.set)
        thread.join(timeout)
        if thread.is_alive():
            raise BrokerError(f"amqtt did not stop within {timeout} s")
        self._thread = None
        _wait_port_closed(_connect_host(self.host), self.port, timeout)

    def kill(self) -> None:
        """There is no separate process to kill: same as stop(); in-memory state is gone either way."""
        self.stop()

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> AmqttBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@functools.cache
def _open_auth_plugin() -> type:
    from dataclasses import dataclass

    from amqtt.plugins.base import BaseAuthPlugin
    from amqtt.session import Session

    class AmqttOpenAuthPlugin(BaseAuthPlugin):
        """Lets every client in, like Mosquitto's `allow_anonymous true`.

        amqtt's own AnonymousAuthPlugin flags such sessions anonymous, and amqtt then never
        queues QoS 1 messages for them while they are away: persistent sessions would not work.
        """

        @dataclass
        class Config:
            pass

        async def authenticate(self, *, session: Session) -> bool:
            return True

    AmqttOpenAuthPlugin.__module__ = __name__
    return AmqttOpenAuthPlugin


def __getattr__(name: str) -> object:
    # amqtt loads plugins by dotted path; building the class on first use keeps amqtt's
    # import (~140 ms) off the start-up path of programs that only use Mosquitto.
    if name == "AmqttOpenAuthPlugin":
        return _open_auth_plugin()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- choice


def start_embedded_broker(host: str, port: int, data_dir: Path | str,
                          prefer: Literal["auto", "mosquitto", "amqtt"] = "auto",
                          **mosquitto_options: object) -> MosquittoBroker | AmqttBroker:
    """Start and return a broker: Mosquitto when installed (or required), otherwise amqtt."""
    if prefer not in ("auto", "mosquitto", "amqtt"):
        raise ValueError(f"prefer must be auto, mosquitto or amqtt, not {prefer!r}")
    if prefer == "mosquitto" or (prefer == "auto" and mosquitto_available()):
        broker: MosquittoBroker | AmqttBroker = MosquittoBroker(host, port, data_dir,
                                                                **mosquitto_options)  # type: ignore[arg-type]
    else:
        if mosquitto_options:
            raise ValueError(f"options {sorted(mosquitto_options)} only apply to Mosquitto")
        broker = AmqttBroker(host, port, data_dir)
    broker.start()
    return broker
