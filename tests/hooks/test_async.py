"""Async (httpx) calls for triggers, with httpx.MockTransport: requests, retry policy, errors, no blocking lookups."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hooktestlib import BASE, TOKEN

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaNotFoundError,
    BriaServerError,
    BriaTransportError,
)
from airflow_provider_bria.hooks.bria import BriaHook

TG = "/v1/tailored-gen"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """An httpx MockTransport that answers from a queue per (method, path) and records requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: dict[tuple[str, str], list[Any]] = {}

    def add(self, method: str, path: str, *answers: Any) -> None:
        self.answers.setdefault((method, path), []).extend(answers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(599, json={"message": f"unexpected {request.method} {request.url.path}"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def ahook(conn_env: str, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> BriaHook:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the async path must not use the blocking connection lookup")

    monkeypatch.setattr(BriaHook, "get_connection", classmethod(forbidden))
    hook = BriaHook()
    hook._async_transport = httpx.MockTransport(recorder.handler)
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    hook.retry_policy.asleep = fake_sleep
    hook.waits = waits  # type: ignore[attr-defined]
    return hook


def check(request: httpx.Request, method: str, path: str) -> None:
    assert request.method == method
    assert request.url.path == path
    assert request.url.host == "bria.test"
    assert request.headers["api_token"] == TOKEN
    assert request.headers["User-Agent"].startswith("airflow-provider-bria/")


async def test_aget_model(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("GET", f"{TG}/models/31", httpx.Response(200, json={"id": 31, "status": "InProgress"}))
    async with ahook:
        assert await ahook.aget_model("31") == {"id": 31, "status": "InProgress"}
        client = ahook._async_client
        assert client is not None
    assert ahook._async_client is None
    assert client.is_closed
    check(recorder.requests[0], "GET", f"{TG}/models/31")
    assert recorder.requests[0].content == b""


async def test_aget_status_by_id_url_and_404(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("GET", "/v2/status/r-1", httpx.Response(200, json={"status": "IN_PROGRESS", "request_id": "r-1"}))
    recorder.add("GET", "/v2/status/r-2", httpx.Response(202, json={
        "status": "COMPLETED", "result": {"image_url": "https://x/i.png", "seed": "5"}}))
    recorder.add("GET", "/v2/status/gone", httpx.Response(404, json={"status": "NOT_FOUND"}))
    async with ahook:
        assert (await ahook.aget_status("r-1")).status is JobStatus.IN_PROGRESS
        done = await ahook.aget_status(f"{BASE}/v2/status/r-2")
        gone = await ahook.aget_status("https://elsewhere.example/v2/status/gone")
    assert done.status is JobStatus.COMPLETED
    assert done.image_url == "https://x/i.png"
    assert done.seed == 5
    assert gone.status is JobStatus.NOT_FOUND
    assert gone.request_id == "gone"
    for req in recorder.requests:
        check(req, "GET", req.url.path)


async def test_aget_status_http_status_url_on_api_host_is_polled_over_https(ahook: BriaHook,
                                                                           recorder: Recorder) -> None:
    recorder.add("GET", "/v2/status/r-5", httpx.Response(200, json={"status": "IN_PROGRESS"}))
    plain = BASE.replace("https://", "http://")
    async with ahook:
        resp = await ahook.aget_status(f"{plain}/v2/status/r-5")
    assert resp.request_id == "r-5"
    assert len(recorder.requests) == 1
    assert recorder.requests[0].url.scheme == "https"
    check(recorder.requests[0], "GET", "/v2/status/r-5")


async def test_aget_bulk_upload_status_with_alias_fallback(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("GET", f"{TG}/datasets/4/images/bulk-upload/status", httpx.Response(404, json={"detail": "x"}))
    recorder.add("GET", f"{TG}/datasets/4/images/bulk/status", httpx.Response(200, json={"status": "completed"}))
    async with ahook:
        assert await ahook.aget_bulk_upload_status(4) == {"status": "completed"}
    assert [r.url.path for r in recorder.requests] == [f"{TG}/datasets/4/images/bulk-upload/status",
                                                       f"{TG}/datasets/4/images/bulk/status"]


async def test_astop_training(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("POST", f"{TG}/models/31/stop_training", httpx.Response(200, json={"id": 31, "status": "Stopping"}))
    recorder.add("POST", f"{TG}/models/32/stop_training", httpx.Response(200))
    async with ahook:
        assert await ahook.astop_training(31) == {"id": 31, "status": "Stopping"}
        assert await ahook.astop_training(32) is None
    check(recorder.requests[0], "POST", f"{TG}/models/31/stop_training")
    assert recorder.requests[0].content == b""


async def test_async_get_is_retried_with_retry_after(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("GET", f"{TG}/models/1",
                 httpx.Response(429, headers={"Retry-After": "4"}),
                 httpx.ReadTimeout("slow"),
                 httpx.Response(503),
                 httpx.Response(200, json={"id": 1}))
    async with ahook:
        assert await ahook.aget_model(1) == {"id": 1}
    assert len(recorder.requests) == 4
    waits = ahook.waits  # type: ignore[attr-defined]
    assert waits[0] == 4.0
    assert len(waits) == 3


async def test_async_post_is_not_retried_after_send(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("POST", f"{TG}/models/1/stop_training", httpx.Response(500, json={"message": "oops"}))
    async with ahook:
        with pytest.raises(BriaServerError, match="oops"):
            await ahook.astop_training(1)
    assert len(recorder.requests) == 1


async def test_async_post_connect_error_is_retried(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("POST", f"{TG}/models/1/stop_training", httpx.ConnectError("refused"),
                 httpx.Response(200, json={"id": 1}))
    async with ahook:
        assert await ahook.astop_training(1) == {"id": 1}
    assert len(recorder.requests) == 2


async def test_async_transport_error_after_retries_keeps_cause(ahook: BriaHook, recorder: Recorder) -> None:
    ahook.retry_policy.retry_limit = 2
    error = httpx.ReadTimeout("slow")
    recorder.add("GET", f"{TG}/models/1", error)
    async with ahook:
        with pytest.raises(BriaTransportError, match="ReadTimeout after 3 attempt") as info:
            await ahook.aget_model(1)
    assert info.value.__cause__ is error
    assert TOKEN not in str(info.value)


async def test_async_error_shapes(ahook: BriaHook, recorder: Recorder) -> None:
    recorder.add("GET", f"{TG}/models/1", httpx.Response(401, content=json.dumps("Access denied").encode()))
    recorder.add("GET", f"{TG}/models/2", httpx.Response(404, json={"message": "Model not found"}))
    async with ahook:
        with pytest.raises(BriaAuthError, match="Access denied"):
            await ahook.aget_model(1)
        with pytest.raises(BriaNotFoundError, match="Model not found"):
            await ahook.aget_model(2)


async def test_async_settings_shared_with_sync_cache(ahook: BriaHook) -> None:
    settings = await ahook.aget_settings()
    assert settings.base_url == BASE
    assert ahook.base_url == BASE  # served from the cache: the sync lookup (forbidden here) is not used
    assert await ahook.aget_settings() is settings


async def test_every_async_client_shares_one_tls_context(conn_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a TLS context costs ~20 ms of CPU in the event loop: it must happen once per process."""
    seen: list[Any] = []
    real_client = httpx.AsyncClient

    def capture(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        seen.append(kwargs.get("verify"))
        return real_client(*args, **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", capture)
    hooks = [BriaHook() for _ in range(3)]
    for hook in hooks:
        await hook.aget_conn()
    for hook in hooks:
        await hook.aclose()
    assert len(seen) == 3
    assert all(ctx is seen[0] for ctx in seen)
    assert isinstance(seen[0], ssl.SSLContext)


async def test_async_429_waits_out_the_minute_within_the_connection_budget(
    ahook: BriaHook, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Triggers get the same 429 rule and the connection's retry_budget as the sync path."""
    from hooktestlib import conn_json

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(retry_budget=100))
    ahook.retry_policy.retry_limit = 2
    recorder.add("GET", f"{TG}/models/31", httpx.Response(429, json={"message": "Too many requests"}),
                 httpx.Response(429), httpx.Response(429), httpx.Response(200, json={"id": 31}))
    async with ahook:
        assert await ahook.aget_model(31) == {"id": 31}
    assert len(recorder.requests) == 4
    assert sum(ahook.waits) == pytest.approx(61.0)  # type: ignore[attr-defined]
    assert ahook.retry_policy.budget == 100.0
