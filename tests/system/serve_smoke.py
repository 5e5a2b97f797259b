"""Drive ``python -m airflow_provider_bria.demo --serve`` (``make airflow``) as a user at a terminal would.

:class:`ServeRun` starts the command as the leader of a new session (so its process group is the terminal's
foreground group in miniature: :meth:`ServeRun.interrupt` sends SIGINT to the whole group, as Ctrl-C does), with
its own ``AIRFLOW_HOME`` (``--home``), data folder (``--data``), a free API port (``--port 0``), free log-server
ports and an environment stripped of the caller's ``AIRFLOW*``/``BRIA_*`` variables, so it never touches a
developer's ``<repo>/.airflow/serve`` or ports. Its output is captured line by line (and written to a file).

The Airflow components are started by the demo in sessions of their own (not in the demo's group), so a
background thread snapshots every descendant (PID, create time, process group) while the command runs;
:meth:`ServeRun.leftovers` then lists every tracked process, and every member of a tracked process group, that
is still alive, and :meth:`ServeRun.kill_all` SIGKILLs them (never anything else: PIDs are checked against
their create time through psutil).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import psutil

REPO = Path(__file__).resolve().parents[2]
BANNER_UI = re.compile(r"^\s*Airflow UI:\s+(?P<url>http://\S+)\s*$")
BANNER_LOGIN = re.compile(r"^\s*Login:\s+(?P<user>\S+)\s+/\s+(?P<password>\S+)\s*$")
BANNER_BRIA = re.compile(r"^\s*Bria API:\s+(?P<url>http://\S+)")
LOOPBACK = frozenset({"127.0.0.1", "::1"})


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``.

    :param host: IP address.
    :param port: TCP port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without Airflow or Bria settings (the test session sets its own), plus ``extra``.

    :param extra: variables to add.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BRIA_"))}
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} ({' '.join(proc.cmdline())[:160]})"
    except psutil.Error:
        return f"pid {proc.pid}"


class ServeRun:
    """One ``demo --serve`` process tree.

    :param home: the ``AIRFLOW_HOME`` passed as ``--home``.
    :param data: the outputs folder passed as ``--data``.
    :param log_path: where the command's output is written.
    :param startup_timeout: ``--startup-timeout`` (seconds the demo waits for the API server).
    """

    def __init__(self, home: Path, data: Path, log_path: Path, *, startup_timeout: float = 170.0,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args
        self.home = home
        self.data = data
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.pgid: int | None = None
        self.lines: list[str] = []
        self.tracked: dict[tuple[int, float], psutil.Process] = {}
        self.groups: set[int] = set()
        #: command line of every tracked process, as first seen
        self.commands: dict[int, str] = {}
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._log: IO[str] | None = None

    # ------------------------------------------------------------------ start and output

    def start(self) -> ServeRun:
        """Start the command (own session and process group) with isolated home, data and ports."""
        env = clean_env(
            # Not set by demo.py: without these two, a second instance (a developer's `make airflow`) clashes.
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        )
        cmd = [
            sys.executable, "-m", "airflow_provider_bria.demo", "--serve",
            "--home", str(self.home), "--data", str(self.data), "--port", "0",
            "--startup-timeout", f"{self.startup_timeout:g}", *self.extra_args,
        ]
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in kill_all)
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            cmd, env=env, cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
        )
        self.pgid = os.getpgid(self.proc.pid)
        assert self.pgid == self.proc.pid, "the command must lead its own process group"
        self.groups.add(self.pgid)
        for target in (self._read, self._track):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError, AttributeError):  # the log may be closed by kill_all()
                self._log.write(line)  # type: ignore[union-attr]
                self._log.flush()  # type: ignore[union-attr]
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _track(self) -> None:
        assert self.proc is not None
        while self.proc.poll() is None:
            self.snapshot()
            time.sleep(0.3)

    def snapshot(self) -> None:
        """Record every current descendant of the command and its process group."""
        assert self.proc is not None
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            try:
                key = (child.pid, child.create_time())
                pgid = os.getpgid(child.pid)
            except (psutil.Error, ProcessLookupError):
                continue
            if key not in self.tracked:
                self.tracked[key] = child
                self.commands[child.pid] = _describe(child)
            self.groups.add(pgid)

    def output(self, last: int = 60) -> str:
        """The last lines of output (for assertion messages).

        :param last: number of lines.
        """
        with self._cond:
            return "\n".join(self.lines[-last:])

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float, *, start: int = 0) -> re.Match[str]:
        """Wait until an output line matches ``pattern``.

        :param pattern: compiled regular expression (``match`` per line).
        :param timeout: seconds.
        :param start: index of the first line to look at.
        :raises AssertionError: on timeout or if the command exits first.
        """
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = pattern.match(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._threads[0].is_alive():
                    raise AssertionError(
                        f"demo --serve exited ({self.proc.returncode}) before printing {pattern.pattern!r}:\n"
                        f"{self.output()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line matching {pattern.pattern!r} in {timeout:g} s:\n{self.output()}")
                self._cond.wait(min(remaining, 1.0))

    # ------------------------------------------------------------------ stop

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the command's whole process group (what a terminal sends)."""
        assert self.pgid is not None
        self.snapshot()
        os.killpg(self.pgid, signal.SIGINT)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or ``None`` if still running after ``timeout`` seconds.

        :param timeout: seconds.
        """
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._threads[0].join(timeout=10)
        return code

    def _group_members(self, pgid: int) -> list[psutil.Process]:
        members = []
        for proc in psutil.process_iter():
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                if proc.pid != os.getpid() and os.getpgid(proc.pid) == pgid and _alive(proc):
                    members.append(proc)
        return members

    def group_exists(self, pgid: int) -> bool:
        """``os.killpg(pgid, 0)``: whether any process (zombies included) is in the group.

        :param pgid: process group id.
        """
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def leftovers(self) -> list[str]:
        """Descriptions of every tracked process, or member of a tracked group, still alive (not a zombie)."""
        found: dict[int, psutil.Process] = {p.pid: p for p in self.tracked.values() if _alive(p)}
        for pgid in self.groups:
            if self.group_exists(pgid):
                found.update({p.pid: p for p in self._group_members(pgid)})
        return [_describe(p) for p in found.values()]

    def listening_sockets(self) -> list[tuple[str, str, int]]:
        """``(process, ip, port)`` of every listening TCP socket of the live process tree."""
        self.snapshot()
        out = []
        for proc in self.tracked.values():
            if not _alive(proc):
                continue
            with contextlib.suppress(psutil.Error):
                for conn in proc.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        out.append((_describe(proc), conn.laddr.ip, conn.laddr.port))
        return out

    def kill_all(self) -> None:
        """SIGKILL the command's group, every tracked process and every member of a tracked group; reap."""
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        victims = [p for p in self.tracked.values() if _alive(p)]
        for pgid in self.groups:
            if self.group_exists(pgid):
                victims.extend(self._group_members(pgid))
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.kill()  # psutil refuses a PID reused by another process
        psutil.wait_procs(victims, timeout=10)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._log is not None:
            self._log.close()
