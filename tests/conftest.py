"""Suite-wide set-up: an isolated Airflow home (set before Airflow is imported) and the emulator.

Rules for the rest of the suite:
- Airflow settings are environment variables set here, before anything imports ``airflow``.
- The DAGs folder is ``$AIRFLOW_HOME/dags``, holding links to ``dags/`` (examples) and ``tests/test_dags/``,
  so ``dag.test()`` works for both.
- The ``emulator`` fixture runs one real emulator process (real HTTP on 127.0.0.1) for the whole session;
  ``start_emulator`` starts extra ones with other flags. ``bria_conn`` points ``bria_default`` at it.
- Sub-folders put their own fixtures in their own ``conftest.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import TEST_TOKEN, conn_json, serve_directory

REPO = Path(__file__).resolve().parent.parent

_HOME = Path(tempfile.mkdtemp(prefix="bria-airflow-test-"))
(_HOME / "dags").mkdir()
for _name, _src in (("examples", REPO / "dags"), ("test_dags", REPO / "tests" / "test_dags")):
    if _src.is_dir():
        (_HOME / "dags" / _name).symlink_to(_src, target_is_directory=True)

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_HOME / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|airflow_provider_bria)\..*",
    }
)
os.environ.pop("AIRFLOW_CONN_BRIA_DEFAULT", None)


def pytest_configure(config: pytest.Config) -> None:
    """On Airflow 3.0, make ``dag.test()`` write the DAG and its assets to the DB first, as 3.1+ does itself."""
    from airflow_provider_bria._compat import AIRFLOW_V_3_1_PLUS, prepare_dag_test

    if AIRFLOW_V_3_1_PLUS:
        return
    from airflow.sdk import DAG

    original = DAG.test

    def test(self: Any, *args: Any, **kwargs: Any) -> Any:
        prepare_dag_test(self)
        return original(self, *args, **kwargs)

    DAG.test = test  # type: ignore[method-assign]


def _drop_closed_stream_handlers() -> None:
    """Remove logging handlers whose stream is closed (Airflow 3.0's ``dag.test()`` leaves one on ``airflow.task``).

    A ``StreamHandler`` made during a test on the stream pytest captured then stays attached after the capture
    is closed: every later ``airflow.task`` record prints "--- Logging error ---" with its message to stderr.
    """
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in list(logger.handlers):
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and getattr(stream, "closed", False):
                logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _no_closed_log_streams() -> None:
    """Before each test, drop the logging handlers an earlier test's closed capture left (seen on Airflow 3.0)."""
    _drop_closed_stream_handlers()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's Airflow home directory."""
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated metadata database (SQLite), created once per session on first use."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
    )
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def start_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., object]]:
    """Factory starting extra emulator processes: ``start_emulator(fault_rate=0.2, seed=1)``.

    Every process started is stopped (by PID) at the end of the session.
    """
    from airflow_provider_bria.emulator.process import EmulatorProcess

    started: list[EmulatorProcess] = []

    def _start(**flags: object) -> EmulatorProcess:
        flags.setdefault("api_token", TEST_TOKEN)
        flags.setdefault("training_seconds", 2)
        flags.setdefault("job_seconds", 0.2)
        # the suite's file servers listen on 127.0.0.1: the emulator refuses such URLs unless told otherwise
        flags.setdefault("allow_private_fetch", True)
        proc = EmulatorProcess(**flags)
        proc.start()
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def emulator_session(start_emulator: Callable[..., object]) -> object:
    """The suite's shared emulator process."""
    return start_emulator()


@pytest.fixture
def emulator(emulator_session: object) -> object:
    """The shared emulator, reset to an empty state for this test."""
    emulator_session.reset()  # type: ignore[attr-defined]
    return emulator_session


@pytest.fixture
def bria_conn(emulator: object, monkeypatch: pytest.MonkeyPatch) -> object:
    """``bria_default`` points at the (reset) shared emulator; returns the emulator."""
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(emulator.url))  # type: ignore[attr-defined]
    return emulator


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for ``zip_url``/``image_url`` tests: yields ``(base_url, directory)``."""
    root = tmp_path_factory.mktemp("served")
    with serve_directory(root) as url:
        yield url, root
