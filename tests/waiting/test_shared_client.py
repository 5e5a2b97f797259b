"""Triggers share one async HTTP client per event loop and API origin; plain hooks keep their own."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

TOKEN = "shared-client-secret-token"


def _conn(host: str) -> str:
    return json.dumps({"conn_type": "bria", "host": host, "password": TOKEN, "extra": {}})


@pytest.fixture
def conns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", _conn("https://bria.test"))
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_OTHER", _conn("https://other.test"))


def _trigger(conn_id: str = "bria_default", model_id: int = 1) -> Any:
    from airflow_provider_bria.triggers.training import BriaTrainingTrigger

    return BriaTrainingTrigger(model_id=model_id, bria_conn_id=conn_id, poll_interval=5, end_time=time.time() + 60)


async def test_triggers_of_one_origin_share_one_client(conns: None) -> None:
    hooks = [_trigger(model_id=i)._hook() for i in range(3)]
    clients = [await hook.aget_conn() for hook in hooks]
    assert all(client is clients[0] for client in clients)
    other = _trigger("bria_other")._hook()
    assert await other.aget_conn() is not clients[0]  # another origin: another client
    for hook in hooks:
        await hook.aclose()
    assert not clients[0].is_closed  # a trigger ending does not close the others' client
    assert (await _trigger()._hook().aget_conn()) is clients[0]


async def test_shared_client_holds_no_token_and_keeps_no_cookie(conns: None) -> None:
    client = await _trigger()._hook().aget_conn()
    assert TOKEN not in repr(dict(client.headers))
    assert "api_token" not in {key.lower() for key in client.headers}
    response = httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"},
                              request=httpx.Request("GET", "https://bria.test/v1/x"))
    client.cookies.extract_cookies(response)
    assert len(client.cookies) == 0


async def test_a_plain_hook_keeps_its_own_client(conns: None) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    shared = await _trigger()._hook().aget_conn()
    hook = BriaHook()
    own = await hook.aget_conn()
    assert own is not shared
    await hook.aclose()
    assert own.is_closed
    assert not shared.is_closed
