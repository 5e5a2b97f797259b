"""Connection handling: host forms, token sources, extras, masking, test_connection and token-safe downloads."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests_mock as rm
from hooktestlib import BASE, TOKEN, conn_json

from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL, DEFAULT_HOST
from airflow_provider_bria.exceptions import BriaConnectionConfigError
from airflow_provider_bria.hooks._connection import build_base_url, settings_for_connection, settings_from_connection
from airflow_provider_bria.hooks.bria import BriaHook


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, DEFAULT_HOST),
        ("", None, None, DEFAULT_HOST),
        ("http://127.0.0.1:8765", None, None, "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765/", None, None, "http://127.0.0.1:8765"),
        ("https://proxy.example/bria/", None, None, "https://proxy.example/bria"),
        ("engine.prod.bria-api.com", None, None, "https://engine.prod.bria-api.com"),
        ("127.0.0.1", "http", 8765, "http://127.0.0.1:8765"),
        ("HTTPS://Engine.Example", None, 443, "https://engine.example:443"),
        ("https://user:pw@engine.example", None, None, "https://engine.example"),
        ("http://[::1]:9000", None, None, "http://[::1]:9000"),
    ],
)
def test_build_base_url(host: str | None, schema: str | None, port: int | None, expected: str) -> None:
    assert build_base_url(host, schema=schema, port=port) == expected


@pytest.mark.parametrize(("host", "schema"), [("ftp://x.example", None), ("x.example", "ftp"), ("http://", None)])
def test_build_base_url_rejects_bad_hosts(host: str, schema: str | None) -> None:
    with pytest.raises(BriaConnectionConfigError):
        build_base_url(host, schema=schema)


def _settings(**kw: Any) -> Any:
    base = {"host": BASE, "schema": None, "port": None, "password": TOKEN, "extra": {}}
    base.update(kw)
    return settings_from_connection(**base)


def test_settings_for_connection_reads_a_connection_object() -> None:
    from airflow.sdk import Connection

    conn = Connection(conn_id="c1", conn_type="bria", host="127.0.0.1", schema="http", port=9000, password=TOKEN,
                      extra=json.dumps({"console_url": "https://c.example/", "timeout": "9"}))
    settings = settings_for_connection(conn, conn_id="c1")
    assert (settings.base_url, settings.console_url, settings.read_timeout, settings.token) == (
        "http://127.0.0.1:9000", "https://c.example", 9.0, TOKEN)
    assert settings_for_connection(conn, 2.5, "c1").read_timeout == 2.5
    no_token = Connection(conn_id="c2", conn_type="bria", host=BASE)
    with pytest.raises(BriaConnectionConfigError, match="'c2' has no API token"):
        settings_for_connection(no_token, conn_id="c2")


def test_token_from_password_then_extra_and_missing() -> None:
    assert _settings().token == TOKEN
    assert _settings(password="", extra={"api_token": "from-extra"}).token == "from-extra"
    assert _settings(password=" pw ", extra={"api_token": "from-extra"}).token == "pw"
    with pytest.raises(BriaConnectionConfigError, match="has no API token"):
        _settings(password=None)


def test_extras_console_url_and_timeout() -> None:
    s = _settings()
    assert (s.console_url, s.read_timeout, s.connect_timeout) == (DEFAULT_CONSOLE_URL, 60.0, 10.0)
    s = _settings(extra={"console_url": "https://console.example/", "timeout": "15"})
    assert (s.console_url, s.read_timeout) == ("https://console.example", 15.0)
    s = _settings(extra={"extra__bria__console_url": "https://legacy.example", "extra__bria__timeout": 5})
    assert (s.console_url, s.read_timeout) == ("https://legacy.example", 5.0)
    assert _settings(extra={"timeout": 5}, timeout=99).read_timeout == 99.0
    with pytest.raises(BriaConnectionConfigError, match="timeout"):
        _settings(extra={"timeout": "-1"})
    with pytest.raises(BriaConnectionConfigError, match="console_url"):
        _settings(extra={"console_url": "console.example"})


def test_settings_repr_hides_token() -> None:
    assert TOKEN not in repr(_settings())


def test_hook_reads_json_and_uri_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT",
                       conn_json("http://127.0.0.1:8765", console_url="https://c.example", timeout=7))
    hook = BriaHook()
    assert (hook.base_url, hook.console_url, hook.settings.read_timeout) == (
        "http://127.0.0.1:8765", "https://c.example", 7.0)
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", f"bria://:{TOKEN}@127.0.0.1:9000/http?console_url=https%3A%2F%2Fc.x")
    other = BriaHook("other", timeout=3)
    assert (other.base_url, other.console_url, other.settings.read_timeout) == (
        "http://127.0.0.1:9000", "https://c.x", 3.0)
    assert other.settings.token == TOKEN


def test_no_io_in_init_and_repr_is_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_BRIA_DEFAULT", raising=False)
    hook = BriaHook()  # connection does not exist: constructing must still work
    assert repr(hook) == "BriaHook(bria_conn_id='bria_default')"
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json())
    assert TOKEN not in repr(hook)
    assert TOKEN not in str(vars(hook).get("_settings"))


def test_token_is_registered_with_the_secrets_masker(hook: Any) -> None:
    from airflow.sdk.log import _secrets_masker

    hook.settings  # noqa: B018 - resolving the connection masks the token
    assert _secrets_masker().redact(f"token is {TOKEN}") == "token is ***"


def test_extra_token_is_masked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import _secrets_masker

    secret = "extra-only-token-55a1"
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_X", json.dumps({"conn_type": "bria", "host": BASE,
                                                          "extra": {"api_token": secret}}))
    assert BriaHook("bria_x").settings.token == secret
    assert secret not in _secrets_masker().redact(f"value {secret}")


def test_test_connection_success_and_auth_failure(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/v1/tailored-gen/projects", json=[{"id": 1}, {"id": 2}])
    ok, message = hook.test_connection()
    assert ok is True
    assert "2 project(s)" in message
    assert BASE in message
    assert api.last_request.headers["api_token"] == TOKEN
    api.get(f"{BASE}/v1/tailored-gen/projects", status_code=401, json={"message": "Unauthorized"})
    ok, message = hook.test_connection()
    assert ok is False
    assert "rejected the API token (HTTP 401)" in message
    assert TOKEN not in message


def test_test_connection_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(token=None))
    ok, message = BriaHook().test_connection()
    assert ok is False
    assert "no API token" in message


def test_test_connection_no_retries(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/v1/tailored-gen/projects", status_code=503)
    ok, _ = hook.test_connection()
    assert ok is False
    assert api.call_count == 1


# ---------------------------------------------------------------- downloads


def test_open_download_sends_token_only_to_api_host(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/_emulator/files/a.png", content=b"PNGDATA")
    api.get("https://cdn.example/x.png?sig=1", content=b"CDN")
    with hook.open_download("/_emulator/files/a.png") as resp:
        assert resp.content == b"PNGDATA"
    assert api.last_request.headers["api_token"] == TOKEN
    with hook.open_download("https://cdn.example/x.png?sig=1") as resp:
        assert resp.content == b"CDN"
    assert "api_token" not in api.last_request.headers
    assert api.last_request.headers["User-Agent"].startswith("airflow-provider-bria/")


def test_open_download_drops_token_across_redirect_to_other_host(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/files/1", status_code=302, headers={"Location": "https://s3.example/obj?X-Sig=abc"})
    api.get("https://s3.example/obj?X-Sig=abc", content=b"OBJ")
    resp = hook.open_download(f"{BASE}/files/1")
    assert resp.content == b"OBJ"
    first, second = api.request_history
    assert first.headers["api_token"] == TOKEN
    assert "api_token" not in second.headers


def test_open_download_error_status_raises(hook: Any, api: rm.Mocker) -> None:
    from airflow_provider_bria.exceptions import BriaNotFoundError

    api.get("https://cdn.example/gone.png", status_code=404, text="expired")
    with pytest.raises(BriaNotFoundError, match="expired"):
        hook.open_download("https://cdn.example/gone.png")


def test_api_calls_do_not_follow_redirects(hook: Any, api: rm.Mocker) -> None:
    from airflow_provider_bria.exceptions import BriaAPIError

    api.get(f"{BASE}/v1/tailored-gen/projects", status_code=307, headers={"Location": "https://evil.example/p"})
    with pytest.raises(BriaAPIError) as info:
        hook.list_projects()
    assert info.value.status_code == 307
    assert api.call_count == 1


@pytest.mark.parametrize(("extra", "expected"), [({}, "application/json"),
                                                 ({"upload_encoding": "multipart"}, "multipart/form-data"),
                                                 ({"upload_encoding": " JSON "}, "application/json")])
def test_upload_encoding_is_a_connection_setting(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], expected: str
) -> None:
    """The upload-image body encoding cannot be verified offline, so a user can switch it per connection."""
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(**extra))
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    with rm.Mocker() as api:
        api.post(f"{BASE}/v1/tailored-gen/datasets/3/images", status_code=201, json={"id": 1})
        BriaHook().upload_image(3, file=png, image_name="a.png")
        assert api.last_request.headers["Content-Type"].startswith(expected)
        # an explicit argument beats the connection
        other = "multipart" if expected == "application/json" else "json"
        BriaHook().upload_image(3, file=png, image_name="a.png", encoding=other)
        assert not api.last_request.headers["Content-Type"].startswith(expected)


def test_bad_upload_encoding_extra_is_rejected() -> None:
    with pytest.raises(BriaConnectionConfigError, match="upload_encoding"):
        settings_from_connection(host=None, schema=None, port=None, password="t",
                                 extra={"upload_encoding": "xml"})
