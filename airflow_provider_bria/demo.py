"""``make demo`` and ``make airflow``: the whole product in one command, no Bria token needed.

``python -m airflow_provider_bria.demo`` (``make demo``):

1. uses ``<repo>/.airflow/demo`` as ``AIRFLOW_HOME`` (SQLite, migrated once), ``<repo>/dags`` as the DAGs folder
   and ``<repo>/.demo/`` for images and outputs (all git-ignored);
2. starts the Bria emulator on a free loopback port with a short training time and points ``bria_default`` at it
   through ``AIRFLOW_CONN_BRIA_DEFAULT`` -- or, when ``BRIA_API_TOKEN`` is set, points it at the real API
   (``BRIA_API_HOST`` overrides the host) and starts no emulator;
3. runs the four example DAGs in order with ``dag.test()`` (in this process: Airflow is imported only after the
   environment is set), the asset events of one feeding the next;
4. prints a summary (objects created, training time, the absolute path of every generated image), stops the
   emulator and exits non-zero if any DAG run did not succeed.

``python -m airflow_provider_bria.demo --serve`` (``make airflow``): the emulator plus Airflow's scheduler,
dag-processor, triggerer and API server on 127.0.0.1 (LocalExecutor, SQLite, parallelism 4, home
``<repo>/.airflow/serve``); prints the UI address and login; Ctrl-C stops everything.

This module imports nothing heavy at import time (no Airflow, no emulator).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAG_ORDER = ("bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining")
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
DEMO_TRAINING_SECONDS = 5.0
DEMO_JOB_SECONDS = 0.5
SERVE_TRAINING_SECONDS = 20.0
STOP_GRACE_SECONDS = 20.0


def repo_root() -> Path:
    """The checkout holding ``dags/`` (the package's parent for an editable install, else the cwd)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here, Path.cwd()):
        if (candidate / "dags" / "bria_training.py").is_file():
            return candidate
    raise SystemExit("Cannot find the example DAGs: run from the airflow-provider-bria checkout (dags/ missing)")


def _say(text: str) -> None:
    print(f"[bria-demo] {text}", flush=True)


# --------------------------------------------------------------------------------------------
# Environment and database
# --------------------------------------------------------------------------------------------


def airflow_env(home: Path, dags: Path, *, verbose: bool = False) -> dict[str, str]:
    """Airflow settings shared by the demo and ``--serve`` (environment variables, set before import).

    :param home: the ``AIRFLOW_HOME``.
    :param dags: the DAGs folder.
    :param verbose: keep Airflow's INFO logs (default: warnings only).
    """
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO" if verbose else "WARNING",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|airflow_provider_bria)\..*",
    }


def ensure_db(home: Path, env: dict[str, str]) -> None:
    """Run ``airflow db migrate`` unless this home was already migrated by this Airflow version.

    :param home: the ``AIRFLOW_HOME``.
    :param env: the full environment for the subprocess.
    """
    from importlib.metadata import version

    stamp = home / f".migrated-{version('apache-airflow')}"
    if stamp.exists() and (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    _say(f"Migrating the Airflow metadata database in {home} (first run only)...")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"airflow db migrate failed (exit {proc.returncode})")
    stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    _say(f"Database ready in {time.monotonic() - started:.1f} s")


def conn_json(host: str, token: str) -> str:
    """``AIRFLOW_CONN_BRIA_DEFAULT`` value (JSON form) for a host and token.

    :param host: the API base URL.
    :param token: the api_token.
    """
    return json.dumps({"conn_type": "bria", "host": host, "password": token})


@dataclass
class Backend:
    """Where ``bria_default`` points: the emulator (started here) or the real API."""

    url: str
    token: str
    emulator: Any = None

    @property
    def real_api(self) -> bool:
        """Whether this is Bria's real API."""
        return self.emulator is None

    def stop(self) -> None:
        """Stop the emulator, if one was started."""
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def start_backend(*, training_seconds: float, job_seconds: float, state_file: Path | None = None) -> Backend:
    """Start the emulator, or use the real API when ``BRIA_API_TOKEN`` is set.

    :param training_seconds: emulator training duration.
    :param job_seconds: emulator v2 job duration.
    :param state_file: emulator SQLite state file (``None``: in memory).
    """
    token = os.environ.get("BRIA_API_TOKEN", "").strip()
    if token:
        from airflow_provider_bria.contract import DEFAULT_HOST

        host = os.environ.get("BRIA_API_HOST", "").strip() or DEFAULT_HOST
        _say(f"BRIA_API_TOKEN is set: using the real Bria API at {host} (no emulator; this costs credits)")
        return Backend(url=host, token=token)
    from airflow_provider_bria.emulator.process import EmulatorProcess

    emulator = EmulatorProcess(
        port=0,
        api_token=f"demo-{secrets.token_hex(8)}",
        training_seconds=training_seconds,
        job_seconds=job_seconds,
        state_file=str(state_file) if state_file else None,
    ).start()
    _say(f"Bria emulator listening on {emulator.url} (training takes {training_seconds:g} s)")
    return Backend(url=emulator.url, token=emulator.token, emulator=emulator)


# --------------------------------------------------------------------------------------------
# make demo
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """Outcome of one ``dag.test()``."""

    dag_id: str
    state: str
    seconds: float
    run_id: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    task_seconds: dict[str, float] = field(default_factory=dict)
    returns: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.state == "success"


def demo_run_conf(data: Path, *, real_api: bool) -> dict[str, dict[str, Any]]:
    """The ``run_conf`` of each DAG in the demo (everything under ``data``).

    :param data: the demo data folder (``<repo>/.demo``).
    :param real_api: running against the real API (outputs are kept between runs then).
    """
    del real_api  # same inputs either way; kept for clarity at the call site
    return {
        "bria_dataset_preparation": {
            "image_source": str(data / "images"),
            "generate_demo_images": True,
            "num_demo_images": 8,
            "human_review": False,  # unattended: the review waits for a human in the UI (make airflow)
        },
        "bria_training": {},
        "bria_scheduled_generation": {
            "output_folder": (data / "outputs").as_uri(),
            "images_per_prompt": 2,
        },
        "bria_retraining": {
            "new_images_source": str(data / "new-images"),
            "generate_demo_images": True,
            "num_demo_images": 3,
            "demo_seed": 1,
        },
    }


def _xcom_returns(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    out: dict[str, Any] = {}
    with create_session() as session:
        # The rows are XComModel objects (SQLAlchemy types scalars() of this select as one-element tuples).
        rows: Sequence[Any] = session.scalars(
            XComModel.get_many(run_id=run_id, dag_ids=dag_id, key="return_value")
        ).all()
        for row in rows:
            if row.map_index < 0:
                out[row.task_id] = XComModel.deserialize_value(row)
    return out


def run_dag(dag: Any, conf: dict[str, Any]) -> RunResult:
    """``dag.test(run_conf=conf)`` and collect states, durations and return values.

    :param dag: the DAG object.
    :param conf: the run conf.
    """
    from airflow_provider_bria._compat import prepare_dag_test

    started = time.monotonic()
    try:
        prepare_dag_test(dag)
        dr = dag.test(run_conf=conf)
    except Exception as err:  # noqa: BLE001 - reported in the summary; the demo goes on to clean up
        _say(f"{dag.dag_id}: dag.test() raised {type(err).__name__}: {err}")
        return RunResult(dag.dag_id, "error", time.monotonic() - started)
    seconds = time.monotonic() - started
    state = str(getattr(dr.state, "value", dr.state))
    result = RunResult(dag.dag_id, state, seconds, run_id=dr.run_id)
    from airflow.utils.session import create_session

    with create_session() as session:
        for ti in dr.get_task_instances(session=session):
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            result.tasks[key] = str(getattr(ti.state, "value", ti.state))
            if ti.start_date and ti.end_date:
                result.task_seconds[key] = (ti.end_date - ti.start_date).total_seconds()
    result.returns = _xcom_returns(dag.dag_id, dr.run_id)
    return result


def _poll_interval(args: argparse.Namespace) -> float:
    if args.poll_interval is not None:
        return float(args.poll_interval)
    return 60.0 if os.environ.get("BRIA_API_TOKEN", "").strip() else 1.0


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(uri).path))
    if "://" not in uri:
        return Path(uri)
    return None


def print_summary(results: list[RunResult], backend: Backend, total: float) -> list[Path]:
    """Print what the demo did; return the generated image paths that exist on disk.

    :param results: the DAG runs, in order.
    :param backend: the emulator or real API used.
    :param total: wall-clock seconds of the whole demo.
    """
    print()
    print("=" * 78)
    print("Bria provider demo: summary")
    print("=" * 78)
    for res in results:
        failed = [t for t, s in res.tasks.items() if s not in ("success", "skipped")]
        extra = f"  failed tasks: {', '.join(failed)}" if failed else ""
        print(f"  {res.dag_id:<28} {res.state.upper():<8} {res.seconds:6.1f} s{extra}")
    if backend.emulator is not None:
        try:
            counts = backend.emulator.state().get("counts", {})
        except Exception as err:  # noqa: BLE001 - the summary must not hide the run's own outcome
            counts = {}
            print(f"  (could not read the emulator state: {err})")
        if counts:
            keys = ("projects", "datasets", "images", "models", "trainings_started", "generation_jobs", "requests")
            print("  Objects in the emulator: " + ", ".join(f"{k}={counts.get(k, 0)}" for k in keys))
    for res in results:
        train = res.returns.get("train_model")
        if isinstance(train, dict):
            secs = res.task_seconds.get("train_model")
            timing = f"{secs:.1f} s (task duration, incl. deferral)" if secs is not None else "n/a"
            print(
                f"  Model {train.get('model_id')} {train.get('model_name')!r} ({res.dag_id}): "
                f"{train.get('status')} after {timing}"
            )
    images: list[Path] = []
    for res in results:
        uris = res.returns.get("report")
        if isinstance(uris, list):
            for uri in uris:
                path = _local_path(str(uri))
                if path is not None and path.is_file():
                    images.append(path.resolve())
                else:
                    print(f"  MISSING output: {uri}")
    if images:
        print(f"  Generated images ({len(images)}):")
        for path in images:
            print(f"    {path}")
    print(f"  Total time: {total:.1f} s")
    print("=" * 78)
    return images


def _quiet_airflow(verbose: bool) -> None:
    """Hide dag.test()'s benign noise (its 1-second "No tasks to run" waits, a Starlette notice) unless verbose."""
    if verbose:
        return
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated")
    logging.getLogger("airflow.sdk.definitions.dag").setLevel(logging.ERROR)


#: Signals that end ``make demo`` cleanly: ``kill <pid>`` and closing the terminal (Ctrl-C included, see below).
DEMO_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class DemoStopper:
    """Signal handler of ``make demo``: however the demo is ended, the emulator it started is stopped.

    Outside ``dag.test()`` it raises :class:`SystemExit` (``128 + signal number``: 143 for SIGTERM) so that
    ``run_demo``'s ``finally`` prints the summary and stops the emulator. Inside ``dag.test()`` an exception
    only fails the running task (the in-process task runner turns even ``SystemExit`` and ``KeyboardInterrupt``
    into a task failure and the run goes on, retries included), so the handler stops the emulator itself and
    exits at once. While the emulator starts, a signal is held back until :meth:`release`, so a half-started
    emulator is never orphaned.

    The task runner installs its own SIGTERM handler (which calls the task's ``on_kill``) for every task:
    :meth:`listener` gives an Airflow listener that puts this handler back on top of it at each task start,
    still calling it first so the running operator's ``on_kill`` runs.
    """

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.in_dag_test = False
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}
        self._chained: dict[int, Callable[[int, Any], Any]] = {}
        self._holding = False
        self._pending: int | None = None

    def install(self) -> None:
        """Handle :data:`DEMO_STOP_SIGNALS` (the previous handlers are kept for :meth:`uninstall`)."""
        for sig in DEMO_STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self)

    def uninstall(self) -> None:
        """Put the handlers found by :meth:`install` back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        self._chained.clear()

    @contextlib.contextmanager
    def holding(self) -> Any:
        """Hold a signal back while the block runs (starting the emulator); act on it right after."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        self.release()

    def release(self) -> None:
        """Act on a signal held back by :meth:`holding`."""
        if self._pending is not None:
            signum, self._pending = self._pending, None
            self(signum, None)

    def reinstall(self) -> None:
        """Take the stop signals back from a handler installed since (the task runner's), chaining to it."""
        for sig in self._previous:
            current = signal.getsignal(sig)
            if current is not self:
                if callable(current):
                    self._chained[sig] = current
                signal.signal(sig, self)

    def task_done(self) -> None:
        """Forget the handlers chained for the task that just ended (its ``on_kill`` must not run later)."""
        self._chained.clear()

    def __call__(self, signum: int, frame: Any) -> None:
        """The handler itself."""
        if os.getpid() != self._pid:  # a forked child inherited the handler: die the default way
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self._holding:
            self._pending = signum
            return
        chained = self._chained.pop(signum, None)
        if chained is not None:
            with contextlib.suppress(Exception):
                chained(signum, frame)  # the running task's on_kill
        code = 128 + signum
        name = signal.Signals(signum).name
        if not self.in_dag_test:
            _say(f"{name} received: stopping")
            raise SystemExit(code)
        _say(f"{name} received during a DAG run: stopping the emulator and exiting")
        if self.backend is not None:
            with contextlib.suppress(Exception):
                self.backend.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def listener(self) -> Any:
        """An Airflow task-instance listener calling :meth:`reinstall` / :meth:`task_done` (imports Airflow)."""
        from airflow.listeners import hookimpl

        stopper = self

        class _Listener:
            @hookimpl
            def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
                stopper.reinstall()

            @hookimpl
            def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
                stopper.task_done()

            @hookimpl
            def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
                stopper.task_done()

            @hookimpl
            def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
                stopper.task_done()

        return _Listener()


def _demo_environment(args: argparse.Namespace) -> tuple[Path, Path]:
    """Point this process at the demo's Airflow home (environment, migrated database); return ``(root, data)``.

    :param args: parsed command-line arguments.
    """
    root = repo_root()
    home = Path(args.home).resolve() if args.home else root / ".airflow" / "demo"
    data = Path(args.data).resolve() if args.data else root / ".demo"
    env = airflow_env(home, root / "dags", verbose=args.verbose)
    env["AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL"] = str(_poll_interval(args))
    env["BRIA_EXAMPLES_DATA"] = str(data)
    os.environ.update(env)
    os.environ.pop("AIRFLOW_CONN_BRIA_DEFAULT", None)
    ensure_db(home, dict(os.environ))
    return root, data


def _run_example_dags(root: Path, data: Path, backend: Backend, stopper: DemoStopper,
                      results: list[RunResult]) -> bool:
    """``dag.test()`` every DAG of :data:`DAG_ORDER` in turn, appending to ``results``; stop at the first failure.

    :param root: the repository (its ``dags/`` folder).
    :param data: the examples' data folder.
    :param backend: the Bria API (emulator or real).
    :param stopper: the demo's signal handling (re-armed after each task).
    :param results: receives each run's result.
    :returns: ``False`` when a DAG file does not import.
    """
    from airflow_provider_bria._compat import DagBag

    bag = DagBag(dag_folder=str(root / "dags"))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"Import error in {path}:\n{err}", file=sys.stderr)
        return False
    confs = demo_run_conf(data, real_api=backend.real_api)
    for index, dag_id in enumerate(DAG_ORDER, start=1):
        _say(f"[{index}/{len(DAG_ORDER)}] dag.test() {dag_id} ...")
        stopper.in_dag_test = True
        try:
            result = run_dag(bag.dags[dag_id], confs[dag_id])
        finally:
            stopper.in_dag_test = False
            stopper.reinstall()  # the last task's runner left its SIGTERM handler installed
            stopper.task_done()
        results.append(result)
        _say(f"[{index}/{len(DAG_ORDER)}] {dag_id}: {result.state} in {result.seconds:.1f} s")
        if not result.ok:
            _say(f"{dag_id} did not succeed; task states: {result.tasks}")
            _say("Re-run with --verbose for Airflow's task logs.")
            break
    return True


def run_demo(args: argparse.Namespace) -> int:
    """The ``make demo`` flow; returns the process exit code.

    SIGTERM, SIGHUP and Ctrl-C stop it cleanly: the emulator never outlives it (see :class:`DemoStopper`).

    :param args: parsed command-line arguments.
    """
    total_start = time.monotonic()
    root, data = _demo_environment(args)
    stopper = DemoStopper()
    stopper.install()
    backend: Backend | None = None
    listener: Any = None
    results: list[RunResult] = []
    try:
        with stopper.holding():
            backend = start_backend(
                training_seconds=args.training_seconds or DEMO_TRAINING_SECONDS, job_seconds=DEMO_JOB_SECONDS
            )
            stopper.backend = backend
        if backend.emulator is not None:
            # A fresh emulator has no objects: start from clean outputs and new-image folders too.
            import shutil

            for sub in ("outputs", "new-images"):
                shutil.rmtree(data / sub, ignore_errors=True)
        os.environ["AIRFLOW_CONN_BRIA_DEFAULT"] = conn_json(backend.url, backend.token)
        _say("Loading the example DAGs...")
        from airflow_provider_bria._compat import get_listener_manager

        _quiet_airflow(args.verbose)  # after importing Airflow, which configures logging
        listener = stopper.listener()
        get_listener_manager().add_listener(listener)
        if not _run_example_dags(root, data, backend, stopper, results):
            return 1
    finally:
        images: list[Path] = []
        if backend is not None:
            images = print_summary(results, backend, time.monotonic() - total_start)
            backend.stop()
        if listener is not None:
            with contextlib.suppress(Exception):
                get_listener_manager().pm.unregister(listener)
        stopper.uninstall()
    return demo_exit_code(results, images)


def demo_exit_code(results: list[RunResult], images: list[Path]) -> int:
    """0 only when every DAG of :data:`DAG_ORDER` ran and succeeded and generated images exist on disk.

    :param results: the DAG runs, in order.
    :param images: generated image files found on disk.
    """
    ran = [r.dag_id for r in results]
    if ran != list(DAG_ORDER[: len(ran)]) or len(ran) != len(DAG_ORDER) or not all(r.ok for r in results):
        return 1
    if not images:
        _say("No generated image found on disk")
        return 1
    return 0


# --------------------------------------------------------------------------------------------
# make airflow
# --------------------------------------------------------------------------------------------


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise SystemExit("No free TCP port on 127.0.0.1")


def _persistent_secret(path: Path) -> str:
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def _admin_password(home: Path) -> str:
    """Seed SimpleAuthManager's password file with a known admin password (kept across runs)."""
    pw_file = home / "simple_auth_manager_passwords.json.generated"
    passwords: dict[str, str] = {}
    if pw_file.is_file():
        try:
            passwords = json.loads(pw_file.read_text() or "{}")
        except ValueError:
            passwords = {}
    if not passwords.get("admin"):
        passwords["admin"] = secrets.token_urlsafe(9)
        pw_file.write_text(json.dumps(passwords) + "\n")
        pw_file.chmod(0o600)
    return passwords["admin"]


def _wait_http(
    url: str,
    timeout: float,
    procs: dict[str, subprocess.Popen[bytes]],
    should_stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Wait until ``url`` answers 200; ``False`` on timeout, when a component dies, or when asked to stop.

    :param url: the health URL.
    :param timeout: seconds to wait at most.
    :param procs: the components started so far (an early exit of one ends the wait).
    :param should_stop: polled every half second; ``True`` (Ctrl-C) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not should_stop():
        for name, proc in procs.items():
            if proc.poll() is not None:
                _say(f"{name} exited early with code {proc.returncode}")
                return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL built here
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def stop_processes(procs: dict[str, subprocess.Popen[bytes]], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each child (by PID), wait up to ``grace``, then SIGKILL each child's whole process group.

    :param procs: the processes started by ``--serve`` (each leads its own session/process group).
    :param grace: seconds to wait for a clean exit.
    """
    for name, proc in procs.items():
        if proc.poll() is None:
            _say(f"Stopping {name} (pid {proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        remaining = max(0.1, deadline - time.monotonic())
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=remaining)
    for name, proc in procs.items():
        alive = proc.poll() is None
        if alive:
            _say(f"{name} (pid {proc.pid}) did not stop in {grace:g} s: killing its process group")
        # Always: a leader that exited cleanly can leave executor workers or task supervisors in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group this script created for that child
        if alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


#: Variables ``env.sh`` exports: what ``airflow dags test`` in another shell needs to use the same Airflow and
#: the same emulator as ``--serve``.
ENV_FILE_KEYS = ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES",
                 "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP",
                 "AIRFLOW_CONN_BRIA_DEFAULT", "BRIA_EXAMPLES_DATA", "PATH")


def write_env_file(home: Path, env: dict[str, str]) -> Path:
    """Write ``<home>/env.sh`` (mode 0600: it holds the emulator's token) exporting :data:`ENV_FILE_KEYS`.

    :param home: the ``AIRFLOW_HOME``.
    :param env: the environment of the served Airflow.
    """
    import shlex

    path = home / "env.sh"
    lines = ["# Written by python -m airflow_provider_bria.demo --serve: source it to use that Airflow."]
    lines += [f"export {key}={shlex.quote(env[key])}" for key in ENV_FILE_KEYS if key in env]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _serve_env(args: argparse.Namespace, root: Path, home: Path, data: Path, port: int) -> tuple[dict[str, str], Path]:
    """The environment of the served Airflow and its DAGs folder (``--dags``, else the examples).

    :param args: parsed command-line arguments.
    :param root: the repository.
    :param home: the ``AIRFLOW_HOME``.
    :param data: the examples' data folder.
    :param port: the API server's port.
    :raises SystemExit: when ``--dags`` names no folder.
    """
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    dags = Path(args.dags).expanduser().resolve() if args.dags else root / "dags"
    if not dags.is_dir():
        raise SystemExit(f"--dags {dags}: no such folder (create it and put your DAG files in it)")
    env.update(airflow_env(home, dags, verbose=True))
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
            "SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": _persistent_secret(home / ".jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": _persistent_secret(home / ".api_secret_key"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "BRIA_EXAMPLES_DATA": str(data),
            "AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL": str(_poll_interval(args)),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env, dags


def _start_components(env: dict[str, str], logs: Path, port: int, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """Start Airflow's components (:data:`COMPONENTS`) into ``procs``, each leading its own process group.

    :param env: their environment.
    :param logs: folder of their logs.
    :param port: the API server's port.
    :param procs: receives each process as it starts (so a failure part-way still stops the others).
    """
    for name in COMPONENTS:
        cmd = [sys.executable, "-m", "airflow", name]
        if name == "api-server":
            cmd += ["--host", "127.0.0.1", "--port", str(port)]
        elif name in ("scheduler", "triggerer"):
            # Their log servers would listen on every interface at fixed ports (8793/8794); task and
            # trigger logs are local files the API server reads directly.
            cmd.append("--skip-serve-logs")
        with open(logs / f"{name}.log", "ab") as log_file:
            procs[name] = subprocess.Popen(  # noqa: S603 - fixed argv
                cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        _say(f"Started {name} (pid {procs[name].pid}); log: {logs / (name + '.log')}")


def _print_banner(base_url: str, password: str, backend: Backend, data: Path) -> None:
    print()
    print("=" * 78)
    print(f"  Airflow UI:     {base_url}")
    print(f"  Login:          admin / {password}")
    print(f"  Bria API:       {backend.url}" + ("" if backend.real_api else "  (emulator)"))
    print(f"  Outputs:        {data}")
    print("  Trigger 'bria_dataset_preparation': training and generation follow through assets.")
    print("  Press Ctrl-C to stop everything.")
    print("=" * 78, flush=True)


def _watch(procs: dict[str, subprocess.Popen[bytes]], stopping: dict[str, bool], logs: Path) -> int:
    """Wait until asked to stop or a component exits; 0 when every component was still running.

    :param procs: the components.
    :param stopping: ``{"flag": bool}``, set by the signal handler.
    :param logs: folder of their logs (named when one exits).
    """
    while not stopping["flag"]:
        for name, proc in procs.items():
            if proc.poll() is not None:
                _say(f"{name} exited with code {proc.returncode}; stopping (log: {logs / (name + '.log')})")
                stopping["flag"] = True
                break
        time.sleep(0.5)
    return 0 if all(p.poll() is None for p in procs.values()) else 1


def serve(args: argparse.Namespace) -> int:
    """The ``make airflow`` flow; returns the process exit code.

    :param args: parsed command-line arguments.
    """
    root = repo_root()
    home = Path(args.home).resolve() if args.home else root / ".airflow" / "serve"
    data = Path(args.data).resolve() if args.data else root / ".demo" / "serve"
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port(args.port)
    base_url = f"http://127.0.0.1:{port}"
    env, dags = _serve_env(args, root, home, data, port)
    ensure_db(home, env)
    password = _admin_password(home)
    logs = home / "component-logs"
    logs.mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = {"flag": False}
    backend: Backend | None = None

    def _on_signal(signum: int, frame: Any) -> None:
        stopping["flag"] = True

    # SIGHUP too: closing the terminal must not leave Airflow running in the background.
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        backend = start_backend(
            training_seconds=args.training_seconds or SERVE_TRAINING_SECONDS,
            job_seconds=1.0,
            state_file=home / "emulator.sqlite",
        )
        if stopping["flag"]:
            return 130
        env["AIRFLOW_CONN_BRIA_DEFAULT"] = conn_json(backend.url, backend.token)
        env_file = write_env_file(home, env)
        _say(f"DAGs folder: {dags}. In another shell: source {env_file} && airflow dags test <dag_id>")
        _start_components(env, logs, port, procs)
        if not _wait_http(
            f"{base_url}/api/v2/monitor/health", args.startup_timeout, procs, lambda: stopping["flag"]
        ):
            if stopping["flag"]:
                return 130  # interrupted while starting: the conventional exit code of Ctrl-C
            _say(f"The API server did not answer in {args.startup_timeout:g} s; see the logs in {logs}")
            return 1
        _print_banner(base_url, password, backend, data)
        return _watch(procs, stopping, logs)
    finally:
        _say("Shutting down...")
        stop_processes(procs)
        if backend is not None:
            backend.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _say("Stopped.")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_bria.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="run Airflow (UI, scheduler...) instead of dag.test()")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's INFO logs during the demo")
    parser.add_argument(
        "--training-seconds",
        type=float,
        default=None,
        help=f"emulator training time (default {DEMO_TRAINING_SECONDS:g}; --serve default {SERVE_TRAINING_SECONDS:g})",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="seconds between training polls, exported as AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL "
        "(default 1 with the emulator, 60 with the real API)",
    )
    parser.add_argument("--dags", help="--serve: your DAGs folder (default: the example DAGs in <repo>/dags)")
    parser.add_argument("--home", help="AIRFLOW_HOME (default <repo>/.airflow/demo, --serve: <repo>/.airflow/serve)")
    parser.add_argument("--data", help="inputs/outputs folder (default <repo>/.demo, --serve: <repo>/.demo/serve)")
    parser.add_argument("--port", type=int, default=8080, help="--serve: API server port (default 8080, else free)")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="--serve: seconds to wait for the UI")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m airflow_provider_bria.demo``.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    if args.serve:
        return serve(args)
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
