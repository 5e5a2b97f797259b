"""Every documented error shape becomes the right BriaAPIError subclass with the server's message; no token leaks."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import requests_mock as rm
from hooktestlib import BASE, TOKEN

from airflow_provider_bria.exceptions import (
    BriaAPIError,
    BriaAuthError,
    BriaConflictError,
    BriaModerationError,
    BriaNotFoundError,
    BriaRateLimitError,
    BriaServerError,
    BriaValidationError,
)

TG = "/v1/tailored-gen"


@pytest.fixture
def no_retry_hook(hook: Any) -> Any:
    hook.retry_policy.retry_limit = 0
    return hook


SHAPES = [
    # (status, body kwargs, exception class, message, extra attribute checks)
    (422, {"json": {"error": {"code": 422, "message": "Prompt blocked by moderation", "details": "nsfw"},
                    "request_id": "req-9"}},
     BriaModerationError, "Prompt blocked by moderation", {"request_id": "req-9", "details": "nsfw", "code": 422}),
    (403, {"json": "Quota exceeded: Free users can make up to 1000 requests in total."},
     BriaAuthError, "Quota exceeded: Free users can make up to 1000 requests in total.", {}),
    (401, {"json": {"message": "Invalid api_token"}}, BriaAuthError, "Invalid api_token", {}),
    (400, {"json": {"errors": [{"msg": "Input should be less than or equal to 5000",
                                "field_name": "total_training_steps", "field_input": "1000000"}]}},
     BriaValidationError, "total_training_steps: Input should be less than or equal to 5000", {}),
    (400, {"json": {"error": "Provide either caption or regenerate_caption"}},
     BriaValidationError, "Provide either caption or regenerate_caption", {}),
    (409, {"json": {"message": "Cannot delete model while it is in training"}},
     BriaConflictError, "Cannot delete model while it is in training", {}),
    (404, {"json": "Model not found"}, BriaNotFoundError, "Model not found", {}),
    (412, {"json": {"message": "Dataset is not completed"}}, BriaValidationError, "Dataset is not completed", {}),
    (413, {"json": {"message": "Zip too large"}}, BriaValidationError, "Zip too large", {}),
    (415, {"text": "Unsupported Media Type"}, BriaValidationError, "Unsupported Media Type", {}),
    (429, {"json": {"message": "Request limit exceeded"}, "headers": {"Retry-After": "12"}},
     BriaRateLimitError, "Request limit exceeded", {"retry_after": 12.0}),
    (500, {"text": "<html>Internal Server Error</html>"}, BriaServerError, "<html>Internal Server Error</html>", {}),
    (503, {"content": b"", "reason": "Service Unavailable"}, BriaServerError, "Service Unavailable", {}),
    (400, {"json": {"detail": [{"loc": ["body", "name"], "msg": "Field required"}]}},
     BriaValidationError, "Field required", {}),
]


@pytest.mark.parametrize(("status", "resp", "cls", "message", "attrs"), SHAPES,
                         ids=[f"{s[0]}-{s[2].__name__}-{i}" for i, s in enumerate(SHAPES)])
def test_error_shape_maps_to_subclass_and_message(no_retry_hook: Any, api: rm.Mocker, status: int,
                                                  resp: dict[str, Any], cls: type[BriaAPIError], message: str,
                                                  attrs: dict[str, Any]) -> None:
    api.get(f"{BASE}{TG}/models/3", status_code=status, **resp)
    with pytest.raises(BriaAPIError) as info:
        no_retry_hook.get_model(3)
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.message == message
    assert exc.method == "GET"
    assert exc.path == f"{TG}/models/3"
    for key, value in attrs.items():
        assert getattr(exc, key) == value
    for text in (str(exc), repr(exc), *map(str, exc.args)):
        assert TOKEN not in text
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301
    assert type(again) is cls
    assert str(again) == str(exc)


def test_status_codes_map_without_body(no_retry_hook: Any, api: rm.Mocker) -> None:
    expected = {401: BriaAuthError, 403: BriaAuthError, 404: BriaNotFoundError, 400: BriaValidationError,
                412: BriaValidationError, 413: BriaValidationError, 415: BriaValidationError,
                422: BriaModerationError, 409: BriaConflictError, 429: BriaRateLimitError, 500: BriaServerError,
                502: BriaServerError, 504: BriaServerError}
    for status, cls in expected.items():
        api.get(f"{BASE}{TG}/projects", status_code=status)
        with pytest.raises(cls):
            no_retry_hook.list_projects()


def test_transport_error_over_real_socket_has_no_token(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from hooktestlib import conn_json

    from airflow_provider_bria.exceptions import BriaTransportError
    from airflow_provider_bria.hooks.bria import BriaHook

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(f"http://127.0.0.1:{port}"))
    hook = BriaHook(retry_limit=1, retry_delay=0)
    with pytest.raises(BriaTransportError) as info:
        hook.list_projects()
    assert "2 attempt(s)" in str(info.value)
    assert info.value.__cause__ is not None
    for text in (str(info.value), repr(info.value), caplog.text, repr(hook)):
        assert TOKEN not in text
    ok, msg = hook.test_connection()
    assert ok is False
    assert TOKEN not in msg
    assert "ConnectionError" in msg


def test_presigned_query_is_not_echoed_in_transport_errors(hook: Any, api: rm.Mocker) -> None:
    import requests

    from airflow_provider_bria.exceptions import BriaTransportError

    hook.retry_policy.retry_limit = 0
    url = "https://s3.example/bucket/x.png?X-Amz-Signature=deadbeefsecret"
    api.get(url, exc=requests.exceptions.ConnectionError(f"failed for url: {url}"))
    with pytest.raises(BriaTransportError) as info:
        hook.open_download(url)
    assert "deadbeefsecret" not in str(info.value)
    assert info.value.path == "/bucket/x.png"
