"""Airflow with the CeleryExecutor over PostgreSQL, Redis and S3, all on 127.0.0.1, every process stopped by PID.

:class:`CeleryStack` lays out one folder per component under ``root``::

    root/dags/                      the only shared folder: links to the DAG folders
    root/pylib/                     the hostname callable (on PYTHONPATH)
    root/component-logs/<name>.log  stdout/stderr of every process
    root/components/<name>/         AIRFLOW_HOME, working directory and TMPDIR of one component

starts PostgreSQL (metadata database and Celery result backend), Redis (Celery broker, and the account-wide
rate-limit store in database 1), moto (S3: inputs, outputs and remote task logs), migrates the database, then
starts the scheduler, dag-processor, triggerer, API server and ``workers`` Celery workers. Each worker has its own
Celery node name (``--celery-hostname worker-N@127.0.0.1``) and reports its own host name to Airflow
(``[core] hostname_callable`` reads ``BRIA_DEVSTACK_HOSTNAME``), so task instances show which worker ran them.
Task logs go to S3 (remote logging), so no component serves logs over HTTP (``--skip-serve-logs``).

Connections come from the environment (``AIRFLOW_CONN_*``): ``bria_s3`` (aws, the moto endpoint),
``bria_rate_limit`` (redis, database 1) and those given by the caller (``bria_default``...).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_bria.devstack.deployment import ADMIN_USER, AirflowDeployment, airflow_env
from airflow_provider_bria.devstack.services import Child, MotoS3, Postgres, Redis, ServiceError, ensure_debian_packages

__all__ = ["ADMIN_USER", "DATA_BUCKET", "RATE_LIMIT_CONN_ID", "CeleryStack"]

S3_CONN_ID = "bria_s3"
RATE_LIMIT_CONN_ID = "bria_rate_limit"
DATA_BUCKET = "bria-data"
LOG_BUCKET = "bria-logs"
HOSTNAME_ENV = "BRIA_DEVSTACK_HOSTNAME"
HOSTNAME_MODULE = "bria_devstack_hostname"
#: File (in each worker's folder) listing every local file a worker process opened whose name ends in an image
#: suffix, and the DAG files it parsed: written by an audit hook (``sys.addaudithook``, inherited by the forked
#: task processes).
OPENED_IMAGES_FILE = "opened-images.log"
_AUDIT_HOOK = '''"""Workers of the devstack: record every local image file any process opens (test instrumentation)."""

import os
import sys
import threading

_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_LOG = os.environ.get("BRIA_DEVSTACK_OPENED_IMAGES")
_DAGS = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", "")
_inside = threading.local()


def _hook(event, args):
    if event != "open" or not _LOG or getattr(_inside, "busy", False):
        return
    path = args[0]
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return
    # Image files, and (as a sign of life of the hook in task processes) the DAG files they parse.
    if not (path.lower().endswith(_SUFFIXES) or (_DAGS and path.startswith(_DAGS) and path.endswith(".py"))):
        return
    _inside.busy = True
    try:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {args[1]!r} {os.path.abspath(path)}\\n".encode())
        finally:
            os.close(fd)
    finally:
        _inside.busy = False


sys.addaudithook(_hook)
'''
CORE_COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")


def worker_name(index: int) -> str:
    """Name (and reported host name) of worker ``index`` (1-based).

    :param index: worker number.
    """
    return f"worker-{index}"


def node_name(worker: str) -> str:
    """Celery node name of a worker (``--celery-hostname``), as ``ping``/``inspect`` answers name it.

    :param worker: ``worker-N``.
    """
    return f"{worker}@127.0.0.1"


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from ``/proc``), children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class CeleryStack(AirflowDeployment):
    """A CeleryExecutor deployment on loopback.

    :param root: an empty folder for everything the deployment writes locally.
    :param connections: ``{conn_id: AIRFLOW_CONN_* value}`` given to every component (e.g. ``bria_default``).
    :param dag_folders: ``{name: path}`` linked into the shared DAGs folder.
    :param workers: number of Celery workers.
    :param concurrency: task slots per worker.
    :param extra_env: more environment variables for every component.
    :param paused_at_creation: ``[core] dags_are_paused_at_creation``.
    :param port: API server port (0: a free one).
    """

    def __init__(
        self,
        root: Path,
        *,
        connections: Mapping[str, str],
        dag_folders: Mapping[str, Path],
        workers: int = 2,
        concurrency: int = 2,
        extra_env: Mapping[str, str] | None = None,
        paused_at_creation: bool = True,
        port: int = 0,
    ) -> None:
        self.root = root.resolve()
        super().__init__(log_dir=self.root / "component-logs", dags_folder=self.root / "dags",
                         connections=connections, dag_folders=dag_folders, extra_env=extra_env, port=port)
        self.pylib = self.root / "pylib"
        self.workers = workers
        self.concurrency = concurrency
        self.postgres = Postgres(self.log_dir)
        self.redis = Redis(self.log_dir)
        self.s3 = MotoS3(self.log_dir)
        self._paused = paused_at_creation

    # ------------------------------------------------------------------ layout and environment

    def component_dir(self, name: str) -> Path:
        """The private folder of one component (its AIRFLOW_HOME and working directory).

        :param name: component name.
        """
        return self.root / "components" / name

    def _prepare(self) -> None:
        self._link_dag_folders()
        self.pylib.mkdir(parents=True, exist_ok=True)
        (self.pylib / f"{HOSTNAME_MODULE}.py").write_text(
            '"""[core] hostname_callable of the devstack: each worker reports its own name."""\n\n'
            "import os\nimport socket\n\n\n"
            "def hostname() -> str:\n"
            f'    """``${HOSTNAME_ENV}``, else the FQDN."""\n'
            f'    return os.environ.get("{HOSTNAME_ENV}") or socket.getfqdn()\n'
        )
        (self.pylib / "workers").mkdir(exist_ok=True)
        (self.pylib / "workers" / "sitecustomize.py").write_text(_AUDIT_HOOK)

    def _base_env(self) -> dict[str, str]:
        db_url = self.postgres.sqlalchemy_url
        redis_conn = {"conn_type": "redis", "host": "127.0.0.1", "port": self.redis.port,
                      "password": self.redis.password, "extra": {"db": 1}}
        env = airflow_env(base_url=self.base_url, port=self.port, dags_folder=self.dags_folder,
                          passwords_file=self.component_dir("api-server") / "passwords.json", paused=self._paused)
        env.update({
            "PYTHONPATH": os.pathsep.join(p for p in (str(self.pylib), os.environ.get("PYTHONPATH", "")) if p),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(max(8, 2 * self.workers * self.concurrency)),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{HOSTNAME_MODULE}.hostname",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url(0),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            # Task logs in S3: the API server reads them from there, no worker serves logs over HTTP.
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{LOG_BUCKET}/airflow",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": S3_CONN_ID,
            f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(self.s3.connection()),
            f"AIRFLOW_CONN_{RATE_LIMIT_CONN_ID.upper()}": json.dumps(redis_conn),
        })
        return self._with_connections(env)

    def component_env(self, name: str) -> dict[str, str]:
        """The environment of one component: the shared settings plus its own home, temp dir and host name.

        :param name: component name.
        """
        home = self.component_dir(name)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        return {**self.env, "AIRFLOW_HOME": str(home), "TMPDIR": str(home / "tmp"), HOSTNAME_ENV: name}

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, timeout: float = 240.0) -> CeleryStack:
        """Install what is missing, start the servers, migrate, start Airflow and wait until it is healthy.

        :param timeout: seconds to wait for the API server, the scheduler's health and the workers.
        """
        self._prepare()
        with open(self.log_dir / "apt-get.log", "a") as apt_log:
            ensure_debian_packages(apt_log)
        self.postgres.start()
        self.redis.start()
        self.s3.start()
        self.s3.create_buckets(DATA_BUCKET, LOG_BUCKET)
        self.env = self._base_env()
        self.migrate()
        self._write_passwords(self.component_dir("api-server") / "passwords.json")
        for name in CORE_COMPONENTS:
            self._start_component(name)
        for index in range(1, self.workers + 1):
            self.start_worker(worker_name(index))
        self.wait_healthy(timeout)
        return self

    def migrate(self) -> None:
        """``airflow db migrate`` into the PostgreSQL database."""
        self._migrate(self.component_env("migrate"), timeout=600)

    def _start_component(self, name: str, args: list[str] | None = None, *, worker: bool = False) -> Child:
        cmd = [sys.executable, "-m", "airflow", *(args or [name])]
        if name == "api-server":
            cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        elif name in ("scheduler", "triggerer"):
            cmd.append("--skip-serve-logs")
        env = self.component_env(name)
        if worker:
            env["PYTHONPATH"] = os.pathsep.join((str(self.pylib / "workers"), env["PYTHONPATH"]))
            env["BRIA_DEVSTACK_OPENED_IMAGES"] = str(self.component_dir(name) / OPENED_IMAGES_FILE)
        child = Child(name, cmd, self.log_dir / f"{name}.log", env=env, cwd=Path(env["AIRFLOW_HOME"]))
        self.procs[name] = child
        return child

    def start_worker(self, name: str) -> Child:
        """Start (or restart) one Celery worker.

        :param name: ``worker-N``.
        """
        args = ["celery", "worker", "--celery-hostname", node_name(name), "--concurrency",
                str(self.concurrency), "--skip-serve-logs", "--without-mingle", "--without-gossip"]
        self._stopped.discard(name)
        return self._start_component(name, args, worker=True)

    def stop_worker(self, name: str) -> None:
        """Stop one worker cleanly (SIGTERM: Celery's warm shutdown), then SIGKILL its process group.

        :param name: ``worker-N``.
        """
        self._stopped.add(name)
        self.procs[name].stop()

    def worker_names(self) -> list[str]:
        """Names of the workers started (alive or not)."""
        return [n for n in self.procs if n.startswith("worker-")]

    def live_workers(self) -> list[str]:
        """Names of the workers not stopped on purpose whose process is alive."""
        return [n for n in self.worker_names() if n not in self._stopped and self.procs[n].alive()]

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL a worker at once: its process group and every descendant (pool processes, task processes).

        :param name: ``worker-N``.
        :returns: the PIDs killed.
        """
        child = self.procs[name]
        self._stopped.add(name)
        pids = [child.pid, *_descendants(child.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.kill()
        return pids

    def _watched(self) -> list[Child]:
        """The servers and every component not stopped on purpose."""
        servers = [s.child for s in (self.postgres, self.redis, self.s3) if s.child is not None]
        return [*servers, *super()._watched()]

    def wait_healthy(self, timeout: float) -> None:
        """Wait for the API server's health (database, scheduler, triggerer, dag-processor) and every worker.

        :param timeout: seconds.
        """
        deadline = time.monotonic() + timeout
        self._wait_api_healthy(deadline, timeout)
        expected = {node_name(n) for n in self.live_workers()}
        while time.monotonic() < deadline:
            self.check_alive()
            if expected <= set(self.ping_workers()):
                return
            time.sleep(1.0)
        raise ServiceError(f"Celery workers {sorted(expected)} did not answer in {timeout:g} s")

    def celery_app(self) -> Any:
        """A Celery app on the deployment's broker (for ``control.ping`` / ``inspect``)."""
        from celery import Celery

        return Celery("bria-devstack-probe", broker=self.redis.url(0))

    def ping_workers(self, timeout: float = 2.0) -> list[str]:
        """Celery node names answering a ping.

        :param timeout: seconds to wait for answers.
        """
        app = self.celery_app()
        try:
            return sorted(name for reply in app.control.ping(timeout=timeout) for name in reply)
        finally:
            app.close()

    def active_celery_tasks(self, timeout: float = 2.0) -> dict[str, int]:
        """Tasks each worker is executing right now (Celery's own view: ``inspect().active()``).

        Returns as soon as every live worker answered (Celery's ``limit``), so a probe takes milliseconds rather
        than the whole ``timeout``; a worker that does not answer in time is missing from the result.

        :param timeout: seconds to wait for answers.
        """
        app = self.celery_app()
        try:
            active = app.control.inspect(timeout=timeout, limit=len(self.live_workers()) or None).active() or {}
            return {name: len(tasks) for name, tasks in active.items()}
        finally:
            app.close()

    def stop(self) -> None:
        """Stop Airflow's components (SIGTERM by PID, then SIGKILL of each process group), then the servers."""
        self._stop_components()
        for server in (self.s3, self.redis, self.postgres):
            with contextlib.suppress(Exception):
                server.stop()

    # ------------------------------------------------------------------ inspection

    def opened_images(self) -> dict[str, list[str]]:
        """Per worker: local image and DAG files its processes opened (``"<pid> '<mode>' <path>"`` lines)."""
        out: dict[str, list[str]] = {}
        for name in self.worker_names():
            path = self.component_dir(name) / OPENED_IMAGES_FILE
            out[name] = path.read_text().splitlines() if path.exists() else []
        return out

    def log_files(self) -> Iterator[Path]:
        """Every component log and every file written under the components' folders."""
        return self._files_under(self.log_dir, self.root / "components")

    @staticmethod
    def s3_uri(*parts: str) -> str:
        """``s3://bria_s3@bria-data/<parts>``: a data location reached through the ``bria_s3`` connection.

        :param parts: key parts.
        """
        return f"s3://{S3_CONN_ID}@{DATA_BUCKET}/" + "/".join(p.strip("/") for p in parts)
