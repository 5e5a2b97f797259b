"""What every local Airflow deployment of the dev stacks shares: settings, start-up checks, stop by PID.

:class:`AirflowDeployment` is the base of :class:`~airflow_provider_bria.devstack.celery_stack.CeleryStack`
(``make celery``, ``tests/celery``) and of the system tests' ``AirflowStack`` (``tests/system``, LocalExecutor on
SQLite). It holds the API server's address and admin password, the environment every component gets
(:func:`airflow_env`: the simple auth manager, the execution API URL, :data:`FAST_SCHEDULER_ENV`), the
``airflow db migrate`` step, the health wait, the liveness check and the stop (SIGTERM by PID, then SIGKILL of
each component's process group). Only the standard library is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_bria.devstack.services import Child, ServiceError, free_port

ADMIN_USER = "admin"
STOP_GRACE_SECONDS = 20.0
#: Parts of ``/api/v2/monitor/health`` that must be healthy before a deployment counts as started.
HEALTH_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
#: Fast scheduling: runs start within a second or two of being triggered, dead task processes are noticed in
#: about 20 s, and a changed DAG file is parsed again within seconds.
FAST_SCHEDULER_ENV: dict[str, str] = {
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


def airflow_env(*, base_url: str, port: int, dags_folder: Path, passwords_file: Path, paused: bool = True,
                ) -> dict[str, str]:
    """This process's environment without ``AIRFLOW*`` variables, plus the settings every deployment shares.

    :param base_url: the API server's URL.
    :param port: the API server's port.
    :param dags_folder: ``[core] dags_folder``.
    :param passwords_file: the simple auth manager's passwords file.
    :param paused: ``[core] dags_are_paused_at_creation``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(paused),
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|airflow_provider_bria)\..*",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
                                       "SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **FAST_SCHEDULER_ENV,
    })
    return env


class AirflowDeployment:
    """The parts of a local Airflow deployment its subclasses share.

    :param log_dir: folder of the components' logs (``<name>.log``).
    :param dags_folder: the shared DAGs folder (``dag_folders`` are linked into it).
    :param connections: ``{conn_id: AIRFLOW_CONN_* value}`` given to every component.
    :param dag_folders: ``{name: path}`` linked into ``dags_folder``.
    :param extra_env: more environment variables for every component.
    :param port: API server port (0: a free one).
    """

    def __init__(self, *, log_dir: Path, dags_folder: Path, connections: Mapping[str, str],
                 dag_folders: Mapping[str, Path], extra_env: Mapping[str, str] | None = None, port: int = 0) -> None:
        self.log_dir = log_dir
        self.dags_folder = dags_folder
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.procs: dict[str, Child] = {}
        self._stopped: set[str] = set()  # components stopped or killed on purpose
        self.env: dict[str, str] = {}
        self._connections = dict(connections)
        self._dag_folders = dict(dag_folders)
        self._extra_env = dict(extra_env or {})

    def _with_connections(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` plus the connections and the caller's extra variables (these win)."""
        for conn_id, value in self._connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        env.update(self._extra_env)
        return env

    def _link_dag_folders(self) -> None:
        for path in (self.dags_folder, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        for name, src in self._dag_folders.items():
            link = self.dags_folder / name
            if not link.exists():
                link.symlink_to(Path(src).resolve(), target_is_directory=True)

    def _write_passwords(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({ADMIN_USER: self.password}))
        path.chmod(0o600)

    def _migrate(self, env: Mapping[str, str], timeout: float) -> None:
        """``airflow db migrate`` with ``env`` (output in ``db-migrate.log``)."""
        proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=dict(env),
                              cwd=env.get("AIRFLOW_HOME"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False, timeout=timeout)
        (self.log_dir / "db-migrate.log").write_text(proc.stdout)
        if proc.returncode != 0:
            raise ServiceError(f"airflow db migrate failed ({proc.returncode}):\n{proc.stdout[-4000:]}")

    def _watched(self) -> list[Child]:
        """The processes :meth:`check_alive` watches: every component not stopped on purpose."""
        return [c for n, c in self.procs.items() if n not in self._stopped]

    def check_alive(self) -> None:
        """Raise :class:`ServiceError` naming any watched process that exited."""
        dead = [c for c in self._watched() if not c.alive()]
        if dead:
            tails = "\n".join(f"--- {c.name} (exit {c.proc.returncode}):\n{c.tail()}" for c in dead)
            raise ServiceError(f"components died: {[c.name for c in dead]}\n{tails}")

    def _wait_api_healthy(self, deadline: float, timeout: float) -> None:
        """Wait until ``/api/v2/monitor/health`` reports every part of :data:`HEALTH_PARTS` healthy."""
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as resp:  # noqa: S310
                    body = json.loads(resp.read())
                last = body
                if all((body.get(p) or {}).get("status") == "healthy" for p in HEALTH_PARTS):
                    return
            except (OSError, ValueError, urllib.error.URLError) as err:
                last = str(err)
            time.sleep(1.0)
        raise ServiceError(f"Airflow did not become healthy in {timeout:g} s (last: {last})")

    def _stop_components(self) -> None:
        """SIGTERM every component by PID, wait up to :data:`STOP_GRACE_SECONDS`, then SIGKILL each group."""
        for child in self.procs.values():
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.procs.values():
            child.kill()

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The end of a component's log.

        :param name: component name.
        :param chars: characters to return.
        """
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    @staticmethod
    def _files_under(*roots: Path) -> Iterator[Path]:
        for root in roots:
            if root.exists():
                yield from (p for p in root.rglob("*") if p.is_file())

    def start(self) -> AirflowDeployment:
        """Start the deployment (subclasses)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the deployment (subclasses)."""
        self._stop_components()

    def __enter__(self) -> AirflowDeployment:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

