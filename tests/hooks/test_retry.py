"""The single retry policy: what is retried, what is not, how long it waits, and what is raised at the end."""

from __future__ import annotations

import email.utils
import logging
from typing import Any

import pytest
import requests
import requests_mock as rm
from hooktestlib import BASE, TOKEN, png_bytes
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from airflow_provider_bria.exceptions import (
    BriaNotFoundError,
    BriaRateLimitError,
    BriaServerError,
    BriaTransportError,
    BriaValidationError,
)
from airflow_provider_bria.hooks._retry import RetryPolicy, parse_retry_after, retry_mode

TG = "/v1/tailored-gen"


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when the TCP connection is refused (nothing was sent)."""
    return requests.exceptions.ConnectionError(
        MaxRetryError(None, "/x", NewConnectionError(None, "Failed to establish a new connection: refused"))
    )


def dropped() -> requests.exceptions.ConnectionError:
    """What requests raises when the server drops the connection after the request was sent."""
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


def test_get_503_then_200_is_retried(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    api.get(f"{BASE}{TG}/models/1", [{"status_code": 503, "json": {"message": "busy"}}, {"json": {"id": 1}}])
    assert hook.get_model(1) == {"id": 1}
    assert api.call_count == 2
    assert len(sleeps) == 1
    assert 0.5 <= sleeps[0] <= 1.0


def test_post_create_500_is_not_retried(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    api.post(f"{BASE}{TG}/projects", status_code=500, json={"message": "internal"})
    with pytest.raises(BriaServerError, match="internal") as info:
        hook.create_project("p", "photography", "other")
    assert info.value.status_code == 500
    assert api.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize("exc", [requests.exceptions.ReadTimeout("read timed out"), dropped()],
                         ids=["read-timeout", "dropped"])
def test_post_after_send_failure_is_not_retried(hook: Any, api: rm.Mocker, sleeps: list[float],
                                                exc: Exception) -> None:
    api.post(f"{BASE}/v2/image/generate/tailored", exc=exc)
    with pytest.raises(BriaTransportError, match="1 attempt") as info:
        hook.generate_image(1, prompt="x")
    assert info.value.__cause__ is exc
    assert info.value.method == "POST"
    assert info.value.path == "/v2/image/generate/tailored"
    assert api.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize("exc", [requests.exceptions.ConnectTimeout("connect timed out"), refused()],
                         ids=["connect-timeout", "refused"])
def test_post_connect_error_is_retried(hook: Any, api: rm.Mocker, sleeps: list[float], exc: Exception) -> None:
    api.post(f"{BASE}{TG}/models", [{"exc": exc}, {"status_code": 201, "json": {"id": 5}}])
    assert hook.create_model(1, "m") == {"id": 5}
    assert api.call_count == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("exc", [requests.exceptions.ReadTimeout("t"), dropped(), refused()],
                         ids=["read-timeout", "dropped", "refused"])
def test_get_transport_errors_are_retried(hook: Any, api: rm.Mocker, exc: Exception) -> None:
    api.get(f"{BASE}{TG}/models/1", [{"exc": exc}, {"json": {"id": 1}}])
    assert hook.get_model(1) == {"id": 1}
    assert api.call_count == 2


def test_429_retry_after_seconds_is_honoured_even_for_post(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    api.post(f"{BASE}/v2/image/generate/tailored", [
        {"status_code": 429, "headers": {"Retry-After": "7"}, "json": {"message": "slow down"}},
        {"status_code": 202, "json": {"request_id": "r", "status_url": f"{BASE}/v2/status/r"}},
    ])
    assert hook.generate_image(1, prompt="x").request_id == "r"
    assert api.call_count == 2
    assert sleeps == [7.0]


def test_429_retry_after_http_date(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    import time

    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    api.get(f"{BASE}{TG}/projects", [{"status_code": 429, "headers": {"Retry-After": when}}, {"json": []}])
    assert hook.list_projects() == []
    assert len(sleeps) == 1
    assert 17 <= sleeps[0] <= 20


def test_429_exhausted_raises_rate_limit_error_with_retry_after(hook: Any, api: rm.Mocker,
                                                                sleeps: list[float]) -> None:
    hook.retry_policy.retry_limit = 2
    api.get(f"{BASE}{TG}/projects", status_code=429, headers={"Retry-After": "3"},
            json={"error": {"code": 429, "message": "Request limit exceeded"}, "request_id": "q-1"})
    with pytest.raises(BriaRateLimitError, match="Request limit exceeded") as info:
        hook.list_projects()
    assert info.value.retry_after == 3.0
    assert info.value.request_id == "q-1"
    assert api.call_count == 3
    assert sleeps == [3.0, 3.0]


def test_retry_limit_exhausted_on_transport_error_keeps_cause(hook: Any, api: rm.Mocker,
                                                              sleeps: list[float]) -> None:
    hook.retry_policy.retry_limit = 2
    api.get(f"{BASE}{TG}/models/1", exc=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(BriaTransportError, match="ConnectTimeout after 3 attempt") as info:
        hook.get_model(1)
    assert isinstance(info.value.__cause__, requests.exceptions.ConnectTimeout)
    assert info.value.status_code is None
    assert api.call_count == 3
    assert len(sleeps) == 2


def test_retry_limit_exhausted_on_5xx_raises_server_error(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    hook.retry_policy.retry_limit = 3
    api.get(f"{BASE}{TG}/models/1", status_code=502,
            json={"error": {"code": 502, "message": "Bad Gateway", "details": "upstream failed"}, "request_id": "a"})
    with pytest.raises(BriaServerError) as info:
        hook.get_model(1)
    assert str(info.value) == "GET /v1/tailored-gen/models/1 -> HTTP 502: Bad Gateway (upstream failed) [request_id=a]"
    assert api.call_count == 4
    # exponential: bases 1, 2, 4 with equal jitter
    assert [0.5 <= sleeps[0] <= 1, 1 <= sleeps[1] <= 2, 2 <= sleeps[2] <= 4] == [True, True, True]


def test_retry_limit_zero_disables_retries(conn_env: str, api: rm.Mocker) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    api.get(f"{BASE}{TG}/models/1", status_code=503)
    with pytest.raises(BriaServerError):
        BriaHook(retry_limit=0).get_model(1)
    assert api.call_count == 1


def test_4xx_is_never_retried(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}{TG}/models/1", status_code=400, json={"message": "bad"})
    with pytest.raises(BriaValidationError):
        hook.get_model(1)
    assert api.call_count == 1


def test_read_only_post_helper_is_retried_on_5xx(hook: Any, api: rm.Mocker) -> None:
    png = png_bytes()
    api.post(f"{BASE}{TG}/generate_visual_schema", [{"status_code": 500}, {"json": {"visual_schema": "{}"}}])
    assert hook.generate_visual_schema([png] * 5) == "{}"
    assert api.call_count == 2


def test_retry_false_never_retries(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}{TG}/projects", status_code=503)
    with pytest.raises(BriaServerError):
        hook.request("GET", f"{TG}/projects", retry=False)
    assert api.call_count == 1


def test_delete_404_after_ambiguous_attempt_counts_as_deleted(hook: Any, api: rm.Mocker) -> None:
    api.delete(f"{BASE}{TG}/models/1", [{"status_code": 504}, {"status_code": 404, "json": "Model not found"}])
    assert hook.delete_model(1) is None
    assert api.call_count == 2


def test_delete_404_first_time_raises(hook: Any, api: rm.Mocker) -> None:
    api.delete(f"{BASE}{TG}/models/1", status_code=404, json="Model not found")
    with pytest.raises(BriaNotFoundError, match="Model not found"):
        hook.delete_model(1)


def test_retries_are_logged_without_secrets(hook: Any, api: rm.Mocker, caplog: pytest.LogCaptureFixture,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    api.get(f"{BASE}{TG}/models/1", [{"status_code": 503}, {"exc": refused()}, {"json": {"id": 1}}])
    hook.get_model(1)
    out = caplog.text + "".join(capsys.readouterr())
    assert "GET /v1/tailored-gen/models/1 returned HTTP 503; retry 1/5" in out
    assert "failed with ConnectionError; retry 2/5" in out
    assert TOKEN not in out
    assert "api_token" not in out


# ---------------------------------------------------------------- pure policy


@pytest.mark.parametrize(
    ("method", "retry", "mode"),
    [("GET", None, "all"), ("put", None, "all"), ("DELETE", None, "all"), ("POST", None, "safe"),
     ("POST", True, "all"), ("GET", False, "none")],
)
def test_retry_mode(method: str, retry: bool | None, mode: str) -> None:
    assert retry_mode(method, retry) == mode


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(retry_delay=2.0, retry_max_delay=10.0)
    for attempt, base in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        values = {policy.backoff(attempt) for _ in range(50)}
        assert all(base / 2 <= v <= base for v in values)
        assert len(values) > 1  # jitter


def test_wait_honours_retry_after_up_to_the_bound() -> None:
    policy = RetryPolicy(retry_delay=1.0, max_retry_after=60.0)
    assert policy.wait_seconds(1, 12.0) == 12.0
    assert policy.wait_seconds(1, 3600.0) == 60.0
    assert policy.wait_seconds(1, 0.0) <= 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), ("0.5", 0.5), ("-3", 0.0), ("", None), (None, None), ("soon", None),
     ("Wed, 21 Oct 2015 07:28:30 GMT", 10.0)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:20 GMT").timestamp()
    assert parse_retry_after(value, now=now) == expected


# ---------------------------------------------------------------- 429 without Retry-After, retry budget


def test_429_without_retry_after_waits_out_a_full_minute_before_giving_up(
    hook: Any, api: rm.Mocker, sleeps: list[float]
) -> None:
    """Bria documents no Retry-After and a 10 requests/minute free tier: the last try comes after 61 s."""
    api.get(f"{BASE}{TG}/projects", status_code=429, json={"message": "Too many requests"})
    with pytest.raises(BriaRateLimitError):
        hook.list_projects()
    limit = hook.retry_policy.retry_limit
    assert api.call_count == limit + 2  # the retries, then one more after the window
    assert sum(sleeps) == pytest.approx(61.0)  # the backoff (< 61 s) topped up to exactly the window
    assert sum(sleeps[:limit]) < 61.0


def test_429_without_retry_after_recovers_after_the_window(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    hook.retry_policy.retry_limit = 2
    api.post(f"{BASE}{TG}/projects", [{"status_code": 429}] * 3 + [{"status_code": 201, "json": {"id": 5}}])
    assert hook.create_project("p", "photography", "other") == {"id": 5}
    assert api.call_count == 4
    assert sum(sleeps) == pytest.approx(61.0)


def test_429_with_retry_after_gets_no_extra_attempt(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    hook.retry_policy.retry_limit = 2
    api.get(f"{BASE}{TG}/projects", status_code=429, headers={"Retry-After": "2"})
    with pytest.raises(BriaRateLimitError):
        hook.list_projects()
    assert api.call_count == 3


def test_5xx_gets_no_extra_attempt(hook: Any, api: rm.Mocker, sleeps: list[float]) -> None:
    hook.retry_policy.retry_limit = 2
    api.get(f"{BASE}{TG}/projects", status_code=503)
    with pytest.raises(BriaServerError):
        hook.list_projects()
    assert api.call_count == 3


def test_retry_budget_from_the_connection_caps_total_waiting(
    monkeypatch: pytest.MonkeyPatch, api: rm.Mocker
) -> None:
    from hooktestlib import conn_json

    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(retry_budget=20))
    hook = BriaHook(retry_limit=10)
    waits: list[float] = []
    hook.retry_policy.sleep = waits.append
    api.get(f"{BASE}{TG}/projects", status_code=429, headers={"Retry-After": "7"})
    with pytest.raises(BriaRateLimitError):
        hook.list_projects()
    assert hook.retry_policy.budget == 20.0
    assert waits == [7.0, 7.0]  # a third 7 s wait would pass the 20 s budget
    assert api.call_count == 3


def test_retry_budget_default_and_explicit_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from hooktestlib import conn_json

    from airflow_provider_bria.hooks._retry import DEFAULT_RETRY_BUDGET
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json())
    hook = BriaHook()
    hook.settings  # noqa: B018 - resolves the connection
    assert hook.retry_policy.budget == DEFAULT_RETRY_BUDGET
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(retry_budget="45"))
    hook = BriaHook()
    hook.retry_policy.retry_budget = 5.0
    hook.settings  # noqa: B018
    assert hook.retry_policy.budget == 5.0


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_bad_retry_budget_is_a_connection_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from hooktestlib import conn_json

    from airflow_provider_bria.exceptions import BriaConnectionConfigError
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(retry_budget=value))
    with pytest.raises(BriaConnectionConfigError, match="retry_budget"):
        BriaHook().settings  # noqa: B018


class _Answer:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}

    def close(self) -> None:
        return None


def _call(outcomes: list[Any], mode: str) -> tuple[Any, int, int, list[float]]:
    """``call_with_retries`` over scripted outcomes: (result, attempts made, controllers built, sleeps)."""
    from airflow_provider_bria.hooks._retry import build_retrying, call_with_retries

    sleeps: list[float] = []
    policy = RetryPolicy(retry_limit=3, retry_delay=1.0, sleep=sleeps.append)
    script, built = list(outcomes), [0]

    def attempt() -> Any:
        outcome = script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def build() -> Any:
        built[0] += 1
        return build_retrying(policy, mode=mode, method="GET", path="/x", logger=logging.getLogger("t"))

    result = call_with_retries(attempt, policy, mode, build)
    return result, len(outcomes) - len(script), built[0], sleeps


def test_a_first_answer_that_is_not_retried_builds_no_retry_controller() -> None:
    for status in (200, 404):
        result, attempts, built, sleeps = _call([_Answer(status), _Answer(200)], "all")
        assert (result.status_code, attempts, built, sleeps) == (status, 1, 0, [])


def test_a_retryable_first_outcome_is_replayed_as_the_controllers_first_attempt() -> None:
    # the same attempts and waits as a controller that ran from the start: 503, 503, 200 = two retries
    result, attempts, built, sleeps = _call([_Answer(503), _Answer(503), _Answer(200)], "all")
    assert (result.status_code, attempts, built, len(sleeps)) == (200, 3, 1, 2)
    # retries exhausted: retry_limit=3 means four attempts, the last answer returned
    result, attempts, built, sleeps = _call([_Answer(503)] * 5, "all")
    assert (result.status_code, attempts, len(sleeps)) == (503, 4, 3)
    # a 5xx to a non-idempotent call is not retried (safe mode): returned after one attempt
    result, attempts, _, sleeps = _call([_Answer(500), _Answer(200)], "safe")
    assert (result.status_code, attempts, sleeps) == (500, 1, [])


def test_a_first_exception_goes_through_the_controller() -> None:
    result, attempts, built, sleeps = _call([refused(), _Answer(200)], "all")
    assert (result.status_code, attempts, built, len(sleeps)) == (200, 2, 1, 1)
    with pytest.raises(ValueError, match="not a transport error"):
        _call([ValueError("not a transport error"), _Answer(200)], "all")


def test_the_hook_builds_a_retry_controller_only_when_a_retry_may_follow(
        hook: Any, api: rm.Mocker, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_provider_bria.hooks.bria as bria

    built: list[str] = []
    real = bria.build_retrying
    monkeypatch.setattr(bria, "build_retrying", lambda *a, **k: (built.append(k["path"]), real(*a, **k))[1])
    api.get(f"{BASE}{TG}/models/1", json={"id": 1})
    assert hook.get_model(1) == {"id": 1}
    assert built == []
    api.get(f"{BASE}{TG}/models/2", [{"status_code": 503, "json": {}}, {"json": {"id": 2}}])
    assert hook.get_model(2) == {"id": 2}
    assert built == [f"{TG}/models/2"]
    assert len(sleeps) == 1
