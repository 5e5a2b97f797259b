"""Throw-away PostgreSQL, Redis and S3 (moto) servers on free loopback ports, stopped by PID.

* :func:`ensure_debian_packages` installs Debian's ``postgresql`` and ``redis-server`` with ``apt-get`` only
  when their binaries are missing (the packages' own system services are never started).
* :class:`Postgres`: a new cluster made by ``initdb`` in a temporary folder, run by ``postgres`` directly (no
  ``pg_ctl`` daemonising, so the PID we hold is the postmaster's). PostgreSQL refuses to run as root: as root,
  the cluster belongs to the unprivileged ``nobody`` user. Durability is switched off (``fsync=off``...):
  this database lives for one test session.
* :class:`Redis`: ``redis-server`` with a password, no persistence (``--save ""``, no AOF).
* :class:`MotoS3`: moto's server mode, an S3 API on loopback.

Every server leads its own session (process group); :meth:`Child.stop` sends SIGTERM (SIGINT for PostgreSQL's
fast shutdown) to that PID, then SIGKILLs the group. Only the standard library is imported at module level.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: Debian package -> a binary it installs.
DEBIAN_PACKAGES = {"postgresql": "initdb", "redis-server": "redis-server"}
APT_TIMEOUT_SECONDS = 900
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 20.0


class ServiceError(RuntimeError):
    """A server could not be installed or started."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``postgres``, if any."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "postgres").is_file()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0) if found else None


def missing_packages() -> list[str]:
    """The Debian packages of :data:`DEBIAN_PACKAGES` whose binaries are absent."""
    missing = []
    if postgres_bin() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        missing.append("redis-server")
    return missing


def ensure_debian_packages(log: IO[str] | None = None) -> list[str]:
    """Install the missing Debian packages with ``apt-get`` (as root or through passwordless sudo).

    A temporary ``/usr/sbin/policy-rc.d`` answering 101 keeps the packages from starting their system-wide
    services. Nothing is done when every binary is present.

    :param log: where apt-get's output goes (default: discarded).
    :returns: the packages installed.
    :raises ServiceError: when they are missing and cannot be installed.
    """
    missing = missing_packages()
    if not missing:
        return []
    if os.geteuid() == 0:
        sudo: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        sudo = ["sudo", "-n"]
    else:
        raise ServiceError(f"need root or passwordless sudo to apt-get install {' '.join(missing)}")
    if shutil.which("apt-get") is None:
        raise ServiceError(f"apt-get not found: install {' '.join(missing)} with your package manager")
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists() and not sudo
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = log if log is not None else subprocess.DEVNULL
    try:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                                    *missing]):
            code = subprocess.run([*sudo, *cmd], env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=APT_TIMEOUT_SECONDS, check=False).returncode
            if code != 0:
                raise ServiceError(f"{' '.join(cmd)} failed with exit code {code}")
    finally:
        if created:
            policy.unlink(missing_ok=True)
    still = missing_packages()
    if still:
        raise ServiceError(f"installed {missing}, but the binaries of {still} are still missing")
    return missing


class Child:
    """A child process leading its own session, with its output in a log file, stopped by PID.

    :param name: a label for messages.
    :param cmd: the command line.
    :param log_path: file receiving stdout and stderr.
    :param env: the environment (default: this process's).
    :param cwd: working directory.
    :param user: run as this uid (with ``group``); only as root.
    :param group: gid for ``user``.
    :param stop_signal: the signal of a clean stop.
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: int | None = None,
        group: int | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log_path = log_path
        self.stop_signal = stop_signal
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
        extra: dict[str, Any] = {}
        if user is not None:
            extra.update(user=user, group=group, extra_groups=[])
        self.proc = subprocess.Popen(
            self.cmd, env=dict(env) if env is not None else None, cwd=str(cwd) if cwd else None,
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **extra,
        )

    @property
    def pid(self) -> int:
        """The child's process id (the leader of its process group)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of the child's log.

        :param chars: characters to return.
        """
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Send :attr:`stop_signal` to the PID, wait up to ``grace`` seconds, then SIGKILL its process group.

        :param grace: seconds to wait for a clean exit.
        """
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the child's whole process group (the session created for it) and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def wait_for(check: Any, what: str, child: Child, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Poll ``check()`` until it is true; fail early when ``child`` exits.

    :param check: callable returning a bool (exceptions count as ``False``).
    :param what: description for the error.
    :param child: the process being waited for.
    :param timeout: seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise ServiceError(f"{child.name} exited with code {child.proc.returncode}:\n{child.tail()}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise ServiceError(f"{what} not ready after {timeout:g} s:\n{child.tail()}")


def unprivileged_ids() -> tuple[int, int] | None:
    """``(uid, gid)`` of ``nobody`` when running as root (PostgreSQL refuses root), else ``None``."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with one database and one password-protected user.

    :param log_dir: where ``postgres.log`` and ``initdb.log`` go.
    :param database: the database created for Airflow.
    :param user: its owner (the cluster's superuser).
    """

    def __init__(self, log_dir: Path, *, database: str = "airflow", user: str = "airflow") -> None:
        self.log_dir = log_dir
        self.database = database
        self.user = user
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.root: Path | None = None
        self.child: Child | None = None

    @property
    def sqlalchemy_url(self) -> str:
        """``postgresql+psycopg2://`` URL of the database."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> Postgres:
        """``initdb`` a cluster in a new temporary folder, start ``postgres`` and create the database."""
        bindir = postgres_bin()
        if bindir is None:
            raise ServiceError("PostgreSQL is not installed (see ensure_debian_packages)")
        ids = unprivileged_ids()
        # Directly under /tmp (mkdtemp: private, unpredictable name): the unprivileged user must be able to reach
        # it, which a pytest or $TMPDIR folder owned by root (mode 0700) would not allow.
        self.root = Path(tempfile.mkdtemp(prefix="bria-pg-", dir="/tmp"))  # noqa: S108
        data, sock, pwfile = self.root / "data", self.root / "sock", self.root / "pwfile"
        sock.mkdir()
        pwfile.write_text(self.password + "\n")
        if ids is not None:
            for path in (self.root, sock, pwfile):
                os.chown(path, *ids)
        user = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids else {}
        with open(self.log_dir / "initdb.log", "wb") as out:
            code = subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", self.user, f"--pwfile={pwfile}", "-E", "UTF8",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"],
                stdout=out, stderr=subprocess.STDOUT, cwd=str(self.root), check=False, timeout=120, **user,
            ).returncode
        if code != 0:
            raise ServiceError(f"initdb failed ({code}): {(self.log_dir / 'initdb.log').read_text()[-2000:]}")
        self.port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1", "unix_socket_directories": str(sock), "max_connections": "200",
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "64MB",
        }
        cmd = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        self.child = Child("postgres", cmd, self.log_dir / "postgres.log", cwd=self.root,
                           user=ids[0] if ids else None, group=ids[1] if ids else None, stop_signal=signal.SIGINT)
        wait_for(lambda: self._sql("SELECT 1", "postgres") is not None, "PostgreSQL", self.child)
        self._sql(f'CREATE DATABASE "{self.database}"', "postgres")
        return self

    def _sql(self, statement: str, database: str) -> Any:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                                dbname=database, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then remove the cluster's folder."""
        if self.child is not None:
            self.child.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """``redis-server`` on 127.0.0.1 with a password and no persistence.

    :param log_dir: where ``redis.log`` goes (also its working directory's parent).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.child: Child | None = None

    def url(self, db: int = 0) -> str:
        """``redis://`` URL of database ``db``.

        :param db: database number.
        """
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        """``AUTH`` + ``PING`` over a raw socket."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and len(reply) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
        return b"+PONG" in reply

    def start(self) -> Redis:
        """Start the server and wait for ``PONG``."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        workdir = self.log_dir / "redis"
        workdir.mkdir(exist_ok=True)
        self.port = free_port()
        cmd = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--requirepass", self.password,
               "--save", "", "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
               "--protected-mode", "yes", "--databases", "4"]
        self.child = Child("redis", cmd, self.log_dir / "redis.log", cwd=workdir)
        wait_for(self.ping, "Redis", self.child)
        return self

    def stop(self) -> None:
        """SIGTERM by PID (no snapshot is written: persistence is off), then SIGKILL the group."""
        if self.child is not None:
            self.child.stop()


class MotoS3:
    """moto's server mode (``python -m moto.server``): an S3 API on 127.0.0.1 with fixed test credentials.

    :param log_dir: where ``moto.log`` goes.
    """

    access_key = "bria-devstack"
    secret_key = "bria-devstack-secret"  # noqa: S105 (moto accepts any credentials)
    region = "us-east-1"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = 0
        self.child: Child | None = None

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> dict[str, Any]:
        """An Airflow ``aws`` connection (JSON form) pointing at this endpoint."""
        return {"conn_type": "aws", "login": self.access_key, "password": self.secret_key,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region}}

    def start(self) -> MotoS3:
        """Start the server and wait until it answers."""
        self.port = free_port()
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.child = Child("moto", cmd, self.log_dir / "moto.log", env=env, cwd=self.log_dir)

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2) as resp:  # noqa: S310
                return resp.status == 200

        wait_for(ready, "moto S3", self.child)
        return self

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def create_buckets(self, *names: str) -> None:
        """Create buckets (existing ones are kept).

        :param names: bucket names.
        """
        client = self.client()
        for name in names:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` in ``bucket``, sorted.

        :param bucket: bucket name.
        :param prefix: key prefix.
        """
        paginator = self.client().get_paginator("list_objects_v2")
        out: list[str] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            out.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(out)

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL the group."""
        if self.child is not None:
            self.child.stop(grace=5)
