"""A real Airflow deployment on 127.0.0.1 for the system tests: scheduler, dag-processor, triggerer, API server.

:class:`AirflowStack` prepares an isolated ``AIRFLOW_HOME`` (SQLite, LocalExecutor, SimpleAuthManager with a
known admin password, free ports), runs ``airflow db migrate``, starts the four components as child processes
(each the leader of its own session, so it and only its own children can be stopped together), waits for the
API server and for the DAGs to be parsed, and stops everything by PID at the end. Every component's stdout and
stderr go to ``<home>/component-logs/<name>.log`` so the secret-hygiene test can read them.

Only the standard library is used here; the REST client lives in :mod:`system_rest`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_DAGS = Path(__file__).resolve().parent / "dags"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
#: Module written into the home (on PYTHONPATH) holding the SQLite connect args.
SETTINGS_MODULE = "bria_system_db_settings"
ADMIN_USER = "admin"
STOP_GRACE_SECONDS = 20.0
#: Seeds of the emulators started with ``--fault-rate 0.2`` (connections ``bria_fault_<seed>``).
FAULT_SEEDS = (1, 2, 3)


class StackError(RuntimeError):
    """A component could not be started or died."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def conn_json(url: str, token: str, **extra: object) -> str:
    """``AIRFLOW_CONN_*`` JSON value of a bria connection.

    :param url: the API base URL (the emulator's).
    :param token: the api_token.
    :param extra: connection extras (e.g. ``console_url``).
    """
    return json.dumps({"conn_type": "bria", "host": url, "password": token, "extra": extra})


class AirflowStack:
    """Airflow's four long-running components over one SQLite metadata database.

    :param home: an empty folder used as ``AIRFLOW_HOME``.
    :param connections: ``{conn_id: AIRFLOW_CONN_* value}`` exported to every component.
    :param extra_env: more environment variables (e.g. example DAG settings).
    :param dag_folders: folders linked into the DAGs folder as ``<name>`` -> path.
    """

    def __init__(
        self,
        home: Path,
        *,
        connections: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
        dag_folders: Mapping[str, Path] | None = None,
    ) -> None:
        self.home = home
        self.dags_folder = home / "dags"
        self.log_dir = home / "component-logs"
        self.db_path = home / "airflow.db"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._log_files: list[object] = []
        self._connections = dict(connections)
        self._extra_env = dict(extra_env or {})
        self._dag_folders = dict(dag_folders or {"examples": REPO / "dags", "system": SYSTEM_DAGS})
        self.env = self._build_env()

    # ------------------------------------------------------------------ environment

    def _build_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        venv_bin = str(Path(sys.executable).parent)
        env.update(
            {
                "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|airflow_provider_bria)\..*",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                # SQLite is single-writer: wait up to 60 s for a lock instead of the default 5 s (see migrate()).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{SETTINGS_MODULE}.CONNECT_ARGS",
                "PYTHONPATH": os.pathsep.join(p for p in (str(self.home), os.environ.get("PYTHONPATH", "")) if p),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # Fast scheduling: runs start within a second or two of being triggered.
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            }
        )
        for conn_id, value in self._connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        env.update(self._extra_env)
        return env

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        for name, src in self._dag_folders.items():
            link = self.dags_folder / name
            if not link.exists():
                link.symlink_to(src, target_is_directory=True)
        (self.home / f"{SETTINGS_MODULE}.py").write_text(
            '"""SQLite connect args of the system-test deployment."""\n\nCONNECT_ARGS = {"timeout": 60}\n'
        )
        pw_file = self.home / "passwords.json"
        pw_file.write_text(json.dumps({ADMIN_USER: self.password}))
        pw_file.chmod(0o600)

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        """``airflow db migrate`` into this home's SQLite file."""
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=300,
        )
        (self.log_dir / "db-migrate.log").write_text(proc.stdout)
        if proc.returncode != 0:
            raise StackError(f"airflow db migrate failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
        # Write-ahead logging (a persistent property of the file): readers no longer block the writer, so four
        # components, the task processes and the tests' REST calls share one SQLite file without lock errors.
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=60)) as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StackError(f"could not switch {self.db_path} to WAL (journal_mode={mode})")

    def start(self, *, timeout: float = 180.0) -> AirflowStack:
        """Prepare the home, migrate, start the four components and wait for the API server.

        :param timeout: seconds to wait for the API server's health endpoint.
        """
        self._prepare_home()
        self.migrate()
        for name in COMPONENTS:
            cmd = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
            log_file = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop())
            self._log_files.append(log_file)
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=str(self.home),
            )
        self.wait_healthy(timeout)
        return self

    def check_alive(self) -> None:
        """Raise :class:`StackError` naming any component that exited."""
        dead = {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}
        if dead:
            tails = "\n".join(f"--- {n} (exit {c}):\n{self.log_tail(n)}" for n, c in dead.items())
            raise StackError(f"Airflow components died: {dead}\n{tails}")

    def wait_healthy(self, timeout: float) -> None:
        """Wait until ``/api/v2/monitor/health`` answers 200 with a healthy scheduler, triggerer, dag-processor.

        :param timeout: seconds.
        """
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as resp:  # noqa: S310
                    body = json.loads(resp.read())
                last = json.dumps(body)
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((body.get(p) or {}).get("status") == "healthy" for p in parts):
                    return
            except (OSError, ValueError, urllib.error.URLError) as err:
                last = str(err)
            time.sleep(1.0)
        raise StackError(f"Airflow did not become healthy in {timeout:g} s (last: {last})")

    def stop(self) -> None:
        """SIGTERM every component by PID, then SIGKILL the process group each one leads if still alive."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs.values():
            # Each component leads the session created for it at start: its group holds only its own children.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for log_file in self._log_files:
            log_file.close()  # type: ignore[attr-defined]
        self._log_files.clear()

    # ------------------------------------------------------------------ logs

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The end of a component's log.

        :param name: component name.
        :param chars: characters to return.
        """
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def log_files(self) -> Iterable[Path]:
        """Every file under ``<home>/logs`` (task and triggerer logs) and every component log."""
        for root in (self.home / "logs", self.log_dir):
            if root.exists():
                yield from (p for p in root.rglob("*") if p.is_file())
