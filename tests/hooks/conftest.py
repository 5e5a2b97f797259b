"""Fixtures of the hook tests: a fake Bria host served by requests-mock, and a hook whose sleeps are recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock as rm
from hooktestlib import BASE, conn_json


@pytest.fixture
def conn_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point bria_default at the fake host."""
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json())
    return BASE


@pytest.fixture
def sleeps() -> list[float]:
    """Seconds the hook would have slept between retries."""
    return []


@pytest.fixture
def hook(conn_env: str, sleeps: list[float]) -> Iterator[Any]:
    """A BriaHook on the fake host; retry waits are recorded instead of slept."""
    from airflow_provider_bria.hooks.bria import BriaHook

    h = BriaHook()
    h.retry_policy.sleep = sleeps.append
    yield h
    h.close()


@pytest.fixture
def api() -> Iterator[rm.Mocker]:
    """requests-mock; unmatched requests raise NoMockAddress."""
    with rm.Mocker(case_sensitive=True) as m:
        yield m
