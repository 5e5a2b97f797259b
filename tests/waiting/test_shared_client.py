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


async def test_triggers_of_one_connection_share_one_hook_resolved_once(conns: None,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A thousand triggers started together look their connection up once, not once each."""
    import asyncio

    from airflow_provider_bria.hooks.bria import BriaHook

    lookups: list[str] = []
    real = BriaHook.aget_connection.__func__  # type: ignore[attr-defined]

    async def counting(cls: Any, conn_id: str) -> Any:
        lookups.append(conn_id)
        await asyncio.sleep(0.01)  # every trigger asks while the first lookup is still under way
        return await real(cls, conn_id)

    monkeypatch.setattr(BriaHook, "aget_connection", classmethod(counting))
    hooks = await asyncio.gather(*(_trigger(model_id=i).shared_hook() for i in range(50)))
    assert all(hook is hooks[0] for hook in hooks)
    assert lookups == ["bria_default"]
    other = await _trigger("bria_other").shared_hook()
    assert other is not hooks[0]
    assert lookups == ["bria_default", "bria_other"]
    timeout = _trigger()
    timeout.hook_params = {"timeout": 5.0}
    assert await timeout.shared_hook() is not hooks[0]  # other hook parameters: another hook


async def test_shared_hook_is_renewed_after_its_ttl_and_a_failed_lookup_is_not_kept(
    monkeypatch: pytest.MonkeyPatch, conns: None
) -> None:
    from airflow_provider_bria.exceptions import BriaError
    from airflow_provider_bria.waiting import trigger as trigger_module

    first = await _trigger().shared_hook()
    assert await _trigger().shared_hook() is first
    monkeypatch.setattr(trigger_module, "SHARED_HOOK_TTL_SECONDS", 0.0)
    assert await _trigger().shared_hook() is not first  # expired: the connection is looked up again
    from airflow_provider_bria.hooks.bria import BriaHook

    lookups: list[str] = []

    async def missing(cls: Any, conn_id: str) -> Any:
        lookups.append(conn_id)
        raise BriaError(f"no connection {conn_id}")

    monkeypatch.setattr(BriaHook, "aget_connection", classmethod(missing))
    for _ in range(2):
        with pytest.raises(BriaError, match="bria_other"):
            await _trigger("bria_other").shared_hook()
    assert lookups == ["bria_other", "bria_other"]  # the failure was not kept: the second poll asked again


async def test_shared_clients_carry_one_request_each_and_never_more_than_the_limit(
    conns: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests beyond the limit wait for a free client; no client ever carries two at once."""
    import asyncio

    from airflow_provider_bria.hooks import _async

    monkeypatch.setattr(_async, "SHARED_CLIENT_MAX_CONNECTIONS", 3)
    busy: dict[int, int] = {}
    peak = {"clients": 0, "per_client": 0}

    async def request(self: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
        busy[id(self)] = busy.get(id(self), 0) + 1
        peak["clients"] = max(peak["clients"], sum(1 for n in busy.values() if n))
        peak["per_client"] = max(peak["per_client"], busy[id(self)])
        assert kwargs["headers"] == {"api_token": TOKEN}
        await asyncio.sleep(0.005)
        busy[id(self)] -= 1
        return httpx.Response(200, json={"id": 1, "status": "InProgress"}, request=httpx.Request(method, url))

    monkeypatch.setattr(httpx.AsyncClient, "request", request)
    hook = await _trigger().shared_hook()
    models = await asyncio.gather(*(hook.aget_model(i) for i in range(1, 31)))
    assert [m["status"] for m in models] == ["InProgress"] * 30
    assert peak == {"clients": 3, "per_client": 1}
    lanes = _async.shared_lanes(hook.settings, hook._user_agent_headers())
    assert len(lanes.clients) == 3
    assert all(not c.is_closed and len(c.cookies) == 0 for c in lanes.clients)


def test_triggers_of_one_class_share_one_logger(conns: None) -> None:
    """A logger per trigger is ~8 objects the triggerer's collector scans for each of thousands of triggers."""
    first, second = _trigger(model_id=1), _trigger(model_id=2)
    assert first.log is second.log
    assert "_log" not in vars(first)  # found on the class, not made per instance


def test_loading_a_trigger_class_imports_the_hook() -> None:
    """The triggerer loads a trigger class in an iteration of its own; the first poll must not import the hook
    in the iteration in which a restart starts thousands of triggers."""
    import subprocess
    import sys

    code = ("import sys, airflow_provider_bria.triggers.training, airflow_provider_bria.triggers.job; "
            "print('airflow_provider_bria.hooks.bria' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr[-2000:]
