"""A private RabbitMQ node for end-to-end tests: loopback only, every state path in a work folder.

Debian's `rabbitmq-server` is started from `/usr/lib/rabbitmq/bin/rabbitmq-server` (not the
`/usr/sbin` wrapper, which switches user and writes under /var), after our own `epmd`, so that
every process started here is a child we can stop by its PID (and process group).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pika.exceptions

from certificates import write_certificates

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = "epmd"
HOST = "127.0.0.1"
INSTALL_HINT = "apt-get update && apt-get install -y rabbitmq-server"

# Small disks must not block publishers; nothing else differs from the defaults.
RABBITMQ_CONF = """\
loopback_users.guest = true
disk_free_limit.absolute = 10MB
log.console = false
log.file.level = info
"""


def free_ports(count: int = 1) -> list[int]:
    """Distinct TCP ports free on the loopback interface right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _parent_death_signal() -> Callable[[], None] | None:
    """A `preexec_fn` that has the child SIGTERMed when the process that started it dies (Linux
    `PR_SET_PDEATHSIG`), so that a killed test run leaves no broker or connector behind.

    Resolved before any fork; the signal follows the death of the starting *thread* (start children
    from the main thread).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return preexec


DIE_WITH_PARENT = _parent_death_signal()


def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a live process from /proc, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of every live descendant of `pid` (Linux /proc), children first."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found: list[tuple[int, int]] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child[0])
    return found


def _alive(pid: int, start_time: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == start_time and stat[1] != "Z"


def stop_process(process: subprocess.Popen | None, timeout: float, sig: int = signal.SIGTERM) -> int | None:
    """Signal a child started with `start_new_session=True`, wait (bounded), then kill what is left.

    What is left: the child, its process group, and every descendant seen before the signal (Erlang's
    erl_child_setup and inet_gethost open sessions of their own). Returns the exit code (None when
    there was no process).
    """
    if process is None:
        return None
    family = descendants(process.pid) if process.poll() is None else []
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    _kill_group(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    deadline = time.monotonic() + 5
    while True:
        left = [(pid, start) for pid, start in family if _alive(pid, start)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid, _start in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return process.returncode


def _kill_group(pgid: int, sig: int) -> None:
    """Signal what remains of a process group (the leader's PID is the group id)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class RabbitMQ:
    """A RabbitMQ node on free loopback ports: `start(workdir)`, `stop()`, `restart()`.

    Attributes once started: `host`, `port` (AMQP), `tls_port` (AMQP over TLS, with a certificate of
    a private CA), `user`, `password`, `vhost`, `workdir`, `startup_seconds` (time of the last start
    until an AMQP connection succeeded).
    """

    def __init__(self, startup_timeout: float = 60.0, stop_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.host = HOST
        self.user = "guest"
        self.password = "guest"
        self.vhost = "/"
        self.port = 0
        self.tls_port = 0
        self.dist_port = 0
        self.epmd_port = 0
        self.workdir: Path | None = None
        self.startup_seconds: float | None = None
        self._server: subprocess.Popen | None = None
        self._epmd: subprocess.Popen | None = None
        self._server_out = None
        self._epmd_out = None

    # -- lifecycle -------------------------------------------------------------------------------

    @staticmethod
    def check_installed() -> None:
        """Raise a clear error when Debian's rabbitmq-server or epmd is missing."""
        if not RABBITMQ_SERVER.is_file():
            raise RuntimeError(f"{RABBITMQ_SERVER} not found: install RabbitMQ with `{INSTALL_HINT}`")
        if shutil.which(EPMD) is None:
            raise RuntimeError(f"`epmd` (Erlang) not found on PATH: install RabbitMQ with `{INSTALL_HINT}`")

    def start(self, workdir: Path) -> RabbitMQ:
        """Start epmd then the node, with every state path under `workdir`; wait (bounded) until AMQP answers.

        Ports are chosen at the first start and kept: `stop()` then `start()` again reuses them.
        """
        self.check_installed()
        if self._server is not None:
            raise RuntimeError("RabbitMQ already started")
        self.workdir = Path(workdir)
        if not self.port:
            self.port, self.tls_port, self.dist_port, self.epmd_port = free_ports(4)
        self._prepare_dirs()
        if self._epmd is None or self._epmd.poll() is not None:
            self._start_epmd()
        self._start_server()
        return self

    def stop(self) -> None:
        """Stop the node (TERM, bounded wait, kill), then epmd; safe to call twice."""
        self._stop_server()
        self._stop_epmd()

    def restart(self, *, hard: bool = False) -> None:
        """Stop the node and start it again on the same ports and data folder (durable state survives).

        `hard=True` kills the node (SIGKILL) instead of stopping it cleanly. epmd keeps running.
        """
        if self.workdir is None:
            raise RuntimeError("RabbitMQ was never started")
        self._stop_server(sig=signal.SIGKILL if hard else signal.SIGTERM)
        self._start_server()

    def stop_server_only(self, *, hard: bool = False) -> None:
        """Take the broker down (for outage tests) without forgetting its ports; `resume()` brings it back."""
        self._stop_server(sig=signal.SIGKILL if hard else signal.SIGTERM)

    def resume(self) -> None:
        """Start the node again after `stop_server_only()`."""
        if self.workdir is None:
            raise RuntimeError("RabbitMQ was never started")
        if self._server is None:
            self._start_server()

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    @property
    def pids(self) -> list[int]:
        """PIDs of the processes started here that are still alive (launcher, epmd)."""
        return [p.pid for p in (self._server, self._epmd) if p is not None and p.poll() is None]

    def __enter__(self) -> RabbitMQ:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- AMQP helpers ----------------------------------------------------------------------------

    def connection_parameters(self, **overrides: object) -> pika.ConnectionParameters:
        options: dict = {
            "host": self.host,
            "port": self.port,
            "virtual_host": self.vhost,
            "credentials": pika.PlainCredentials(self.user, self.password),
            "connection_attempts": 1,
            "socket_timeout": 5,
            "blocked_connection_timeout": 10,
        }
        options.update(overrides)
        return pika.ConnectionParameters(**options)

    def connect(self) -> pika.BlockingConnection:
        """A new blocking connection to the node (the caller closes it)."""
        return pika.BlockingConnection(self.connection_parameters())

    def log_tail(self, lines: int = 40) -> str:
        """The end of the launcher output and of the node log, for error messages."""
        if self.workdir is None:
            return ""
        parts = []
        for path in (self.workdir / "rabbitmq-server.out", self.workdir / "log" / "rabbit@localhost.log"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- internals -------------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        assert self.workdir is not None
        for name in ("home", "mnesia", "log"):
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        tls = write_certificates(self.workdir / "tls")
        (self.workdir / "rabbitmq.conf").write_text(
            RABBITMQ_CONF
            + f"listeners.ssl.1 = {HOST}:{self.tls_port}\n"
            + f"ssl_options.cacertfile = {tls['ca']}\nssl_options.certfile = {tls['cert']}\n"
            + f"ssl_options.keyfile = {tls['key']}\nssl_options.verify = verify_none\n",
            encoding="utf-8",
        )
        (self.workdir / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        (self.workdir / "rabbitmq-env.conf").write_text("", encoding="utf-8")

    def _environment(self) -> dict[str, str]:
        assert self.workdir is not None
        work = self.workdir
        env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            {
                "HOME": str(work / "home"),
                "RABBITMQ_NODENAME": "rabbit@localhost",
                "RABBITMQ_NODE_IP_ADDRESS": HOST,
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "ERL_EPMD_ADDRESS": HOST,
                "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_MNESIA_BASE": str(work / "mnesia"),
                "RABBITMQ_LOG_BASE": str(work / "log"),
                "RABBITMQ_CONFIG_FILE": str(work / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(work / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(work / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(work / "rabbitmq-env.conf"),
            }
        )
        return env

    def _start_epmd(self) -> None:
        assert self.workdir is not None
        self._epmd_out = (self.workdir / "epmd.out").open("ab")
        self._epmd = subprocess.Popen(
            [EPMD, "-address", HOST, "-port", str(self.epmd_port)],
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._epmd_out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=DIE_WITH_PARENT,  # SIGTERM if the test run dies
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() > deadline:
                self._stop_epmd()
                raise RuntimeError(f"epmd did not start on {HOST}:{self.epmd_port}")
            time.sleep(0.05)

    def _start_server(self) -> None:
        assert self.workdir is not None
        started = time.monotonic()
        self._server_out = (self.workdir / "rabbitmq-server.out").open("ab")
        self._server = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            env=self._environment(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._server_out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=DIE_WITH_PARENT,  # SIGTERM if the test run dies
        )
        try:
            self._wait_ready(started + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, deadline: float) -> None:
        """Until an AMQP connection succeeds (bounded by `deadline`)."""
        pika_logger = logging.getLogger("pika")
        while True:
            assert self._server is not None
            if self._server.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self._server.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ not ready after {self.startup_timeout:.0f} s\n{self.log_tail()}")
            if _port_open(self.port):
                level = pika_logger.level
                pika_logger.setLevel(logging.CRITICAL)
                try:
                    self.connect().close()
                    return
                except pika.exceptions.AMQPError:
                    pass
                finally:
                    pika_logger.setLevel(level)
            time.sleep(0.2)

    def _stop_server(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self._server, self.stop_timeout, sig)
        self._server = None
        if self._server_out is not None:
            self._server_out.close()
            self._server_out = None

    def _stop_epmd(self) -> None:
        stop_process(self._epmd, 5)
        self._epmd = None
        if self._epmd_out is not None:
            self._epmd_out.close()
            self._epmd_out = None
