"""Fixtures of the security tests: recording HTTP servers on 127.0.0.1 and hooks pointed at them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from securitylib import TOKEN, Recorder, start_server


def _serve() -> Iterator[Recorder]:
    recorder = Recorder()
    srv, thread = start_server(recorder)
    yield recorder
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def server() -> Iterator[Recorder]:
    """The 'API' server: the connection's configured origin."""
    yield from _serve()


@pytest.fixture
def other() -> Iterator[Recorder]:
    """A second server on another port (another origin)."""
    yield from _serve()


@pytest.fixture
def hook(server: Recorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A hook (no retries) whose connection points at ``server``."""
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT",
                       json.dumps({"conn_type": "bria", "host": server.origin, "password": TOKEN}))
    h = BriaHook(retry_limit=0)
    yield h
    h.close()
