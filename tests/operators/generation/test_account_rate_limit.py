"""Account-wide rate-limit settings of the Bria connection and the limiter a generation task gets from them.

No Redis server here (``tests/celery/test_celery_0_limiter.py`` runs the window against a real one): a
``redis.Redis`` client connects lazily, so building the limiter needs none.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_bria.exceptions import BriaConnectionConfigError, BriaInputError
from airflow_provider_bria.hooks.bria import BriaHook
from airflow_provider_bria.operators._rate_limit import (
    AccountRateLimiter,
    RateLimiter,
    RedisSlidingWindow,
    account_key,
    account_limit_settings,
    limiter_for,
)

URL, TOKEN = "https://engine.example.test", "account-token-0123456789"


def _hook(monkeypatch: pytest.MonkeyPatch, **extra: object) -> BriaHook:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_ACCOUNT", json.dumps(
        {"conn_type": "bria", "host": URL, "password": TOKEN, "extra": extra}))
    monkeypatch.setenv("AIRFLOW_CONN_SHARED_REDIS", json.dumps(
        {"conn_type": "redis", "host": "127.0.0.1", "port": 6390, "password": "pw", "extra": {"db": 3}}))
    return BriaHook("bria_account")


def test_no_account_limit_gives_the_per_task_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = limiter_for(_hook(monkeypatch), 30)
    assert type(limiter) is RateLimiter
    assert limiter.requests_per_minute == 30


def test_account_limit_without_a_store_caps_the_task_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = limiter_for(_hook(monkeypatch, account_requests_per_minute=20), 60)
    assert type(limiter) is RateLimiter
    assert limiter.requests_per_minute == 20
    assert "tasks running at the same time can together exceed it" in caplog.text
    assert limiter_for(_hook(monkeypatch, account_requests_per_minute=20), None).requests_per_minute == 20


def test_account_limit_with_a_store_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook(monkeypatch, account_requests_per_minute="12", rate_limit_conn_id="shared_redis")
    limiter = limiter_for(hook, 60)
    assert isinstance(limiter, AccountRateLimiter)
    assert limiter.requests_per_minute == 60
    assert limiter.shared.limit == 12
    assert limiter.shared.key == account_key(URL, TOKEN)
    kwargs = limiter.shared.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("127.0.0.1", 6390, 3, "pw")
    custom = limiter_for(_hook(monkeypatch, account_requests_per_minute=12, rate_limit_conn_id="shared_redis",
                               rate_limit_key="bria:team-a"), None)
    assert custom.shared.key == "bria:team-a"


def test_account_settings_are_checked() -> None:
    assert account_limit_settings({}, "c") == (None, None, None)
    assert account_limit_settings({"account_requests_per_minute": "60", "rate_limit_conn_id": "r"}, "c") == (
        60, "r", None,
    )
    for bad in (0, -1, 1.5, "x", True):
        with pytest.raises(BriaConnectionConfigError, match="account_requests_per_minute"):
            account_limit_settings({"account_requests_per_minute": bad}, "c")
    with pytest.raises(BriaConnectionConfigError, match="rate_limit_conn_id"):
        account_limit_settings({"rate_limit_conn_id": "r"}, "c")
    with pytest.raises(BriaConnectionConfigError, match="rate_limit_key"):
        account_limit_settings({"account_requests_per_minute": 5, "rate_limit_key": " "}, "c")
    with pytest.raises(BriaInputError, match="positive whole number"):
        RedisSlidingWindow(object(), "k", 0)


def test_account_key_never_contains_the_token() -> None:
    key = account_key(URL, TOKEN)
    assert TOKEN not in key
    assert key == account_key(URL, TOKEN)
    assert key != account_key(URL, TOKEN + "x")
    assert key != account_key(URL + ":8443", TOKEN)
