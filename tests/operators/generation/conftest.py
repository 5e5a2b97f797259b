"""Fixtures of the generation tests: fake contexts, a fake Bria host (requests-mock), emulator-backed models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests_mock as rm
from generation_helpers import MOCK_BASE, MOCK_TOKEN, make_context, train_model
from kit import FAST_HOOK, conn_json


@pytest.fixture
def context() -> Callable[..., dict[str, Any]]:
    """``context(try_number=1)``: a minimal task context."""
    return make_context


@pytest.fixture
def memory_store() -> Iterator[str]:
    """Attach fsspec's in-memory filesystem as Airflow's ``memory://`` store; cleared afterwards.

    ``attach`` returns an already cached ``memory`` store as it is, and one cached by an earlier
    ``ObjectStoragePath("memory://...")`` has no filesystem: Airflow's store cache is saved, the ``memory``
    entry replaced for the test, and the cache restored afterwards.
    """
    from airflow.sdk.io.store import _STORE_CACHE, attach
    from fsspec.implementations.memory import MemoryFileSystem

    cached = dict(_STORE_CACHE)
    _STORE_CACHE.pop("memory", None)
    fs = MemoryFileSystem()
    attach(protocol="memory", fs=fs)
    yield "memory://bria-test"
    for path in list(MemoryFileSystem.store):
        if path.startswith("/bria-test"):
            MemoryFileSystem.store.pop(path, None)
    _STORE_CACHE.clear()
    _STORE_CACHE.update(cached)


@pytest.fixture
def mock_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """``bria_default`` points at the fake host of the requests-mock tests."""
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(MOCK_BASE, MOCK_TOKEN))
    return MOCK_BASE


@pytest.fixture
def api(mock_conn: str) -> Iterator[rm.Mocker]:
    """requests-mock on the fake host; unmatched requests raise."""
    with rm.Mocker(case_sensitive=True) as m:
        yield m


@pytest.fixture
def hook(bria_conn: Any) -> Any:
    """A fast-retrying hook on the (reset) shared emulator."""
    from airflow_provider_bria.hooks.bria import BriaHook

    return BriaHook(**FAST_HOOK)


@pytest.fixture
def fibo_model(hook: Any, bria_conn: Any) -> int:
    """A Completed FIBO model on the emulator (status forced through the admin endpoint)."""
    return train_model(hook, bria_conn)


@pytest.fixture
def bria_conn_env(mock_conn: str) -> None:
    """A bria_default connection (for code paths that build a hook but whose calls are patched)."""


@pytest.fixture(scope="session")
def slow_emulator_session(start_emulator: Callable[..., Any]) -> Any:
    """A second emulator whose v2 jobs take 1.5 s, so a deferrable task really defers."""
    return start_emulator(job_seconds=1.5)


@pytest.fixture
def slow_conn(slow_emulator_session: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``bria_default`` points at the (reset) slow emulator; returns it."""
    slow_emulator_session.reset()
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(slow_emulator_session.url))
    return slow_emulator_session


@pytest.fixture
def run_dag(airflow_db: Any) -> Callable[..., Any]:
    """``run_dag(dag_id, conf)``: load ``tests/test_dags/<dag_id>.py`` and run it with ``dag.test()``."""
    from generation_helpers import run_test_dag

    return run_test_dag


@pytest.fixture(autouse=True)
def _fast_download_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """No multi-second pauses between download attempts in tests."""
    monkeypatch.setattr("airflow_provider_bria.operators._generation_base.DOWNLOAD_RETRY_DELAY", 0.01)
