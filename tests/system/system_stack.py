"""A real Airflow deployment on 127.0.0.1 for the system tests: scheduler, dag-processor, triggerer, API server.

:class:`AirflowStack` prepares an isolated ``AIRFLOW_HOME`` (SQLite, LocalExecutor, SimpleAuthManager with a
known admin password, free ports), runs ``airflow db migrate``, starts the four components as child processes
(each the leader of its own session, so it and only its own children can be stopped together), waits for the
API server and for the DAGs to be parsed, and stops everything by PID at the end. Every component's stdout and
stderr go to ``<home>/component-logs/<name>.log`` so the secret-hygiene test can read them.

What it shares with the Celery deployment (settings, health wait, stop by PID) is
:class:`~airflow_provider_bria.devstack.deployment.AirflowDeployment`; the REST client lives in :mod:`system_rest`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from kit import conn_json

from airflow_provider_bria.devstack.deployment import ADMIN_USER, AirflowDeployment, airflow_env
from airflow_provider_bria.devstack.services import Child, ServiceError, free_port

REPO = Path(__file__).resolve().parents[2]
SYSTEM_DAGS = Path(__file__).resolve().parent / "dags"
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
#: Module written into the home (on PYTHONPATH) holding the SQLite connect args.
SETTINGS_MODULE = "bria_system_db_settings"
#: Seeds of the emulators started with ``--fault-rate 0.2`` (connections ``bria_fault_<seed>``).
FAULT_SEEDS = (1, 2, 3)
#: A component could not be started or died.
StackError = ServiceError

__all__ = ["ADMIN_USER", "FAULT_SEEDS", "REPO", "AirflowStack", "StackError", "conn_json"]


class AirflowStack(AirflowDeployment):
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
        super().__init__(log_dir=home / "component-logs", dags_folder=home / "dags", connections=connections,
                         dag_folders=dag_folders or {"examples": REPO / "dags", "system": SYSTEM_DAGS},
                         extra_env=extra_env)
        self.home = home
        self.db_path = home / "airflow.db"
        self.env = self._build_env()

    # ------------------------------------------------------------------ environment

    def _build_env(self) -> dict[str, str]:
        env = airflow_env(base_url=self.base_url, port=self.port, dags_folder=self.dags_folder,
                          passwords_file=self.home / "passwords.json")
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            # SQLite is single-writer: wait up to 60 s for a lock instead of the default 5 s (see migrate()).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{SETTINGS_MODULE}.CONNECT_ARGS",
            "PYTHONPATH": os.pathsep.join(p for p in (str(self.home), os.environ.get("PYTHONPATH", "")) if p),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        })
        return self._with_connections(env)

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._link_dag_folders()
        (self.home / f"{SETTINGS_MODULE}.py").write_text(
            '"""SQLite connect args of the system-test deployment."""\n\nCONNECT_ARGS = {"timeout": 60}\n'
        )
        self._write_passwords(self.home / "passwords.json")

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        """``airflow db migrate`` into this home's SQLite file."""
        self._migrate(self.env, timeout=300)
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
            self.procs[name] = Child(name, cmd, self.log_dir / f"{name}.log", env=self.env, cwd=self.home)
        self._wait_api_healthy(time.monotonic() + timeout, timeout)
        return self

    # ------------------------------------------------------------------ logs

    def log_files(self) -> Iterable[Path]:
        """Every file under ``<home>/logs`` (task and triggerer logs) and every component log."""
        return self._files_under(self.home / "logs", self.log_dir)
