"""The api_token goes only to the API's origin (scheme + host + port): never to another host, another port,
nor over plain HTTP to an API configured as HTTPS (status URLs, absolute request paths, download redirects)."""

from __future__ import annotations

from typing import Any

import pytest
import requests_mock as rm
from hooktestlib import BASE, TOKEN, conn_json

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.hooks._api_generation import status_target
from airflow_provider_bria.hooks._connection import settings_from_connection, url_origin

PLAIN = BASE.replace("https://", "http://")  # same host as the API, but unencrypted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bria.test/v2/status/r", ("https", "bria.test", 443)),
        ("https://Bria.TEST:443/x", ("https", "bria.test", 443)),
        ("http://bria.test/x", ("http", "bria.test", 80)),
        ("HTTP://127.0.0.1:8765", ("http", "127.0.0.1", 8765)),
        ("http://[::1]:9000/a", ("http", "::1", 9000)),
        ("ftp://bria.test/x", None),
        ("/v2/status/r", None),
        ("https://", None),
        ("https://bria.test:notaport/x", None),
    ],
)
def test_url_origin(url: str, expected: Any) -> None:
    assert url_origin(url) == expected


def test_settings_origin_includes_scheme_and_port() -> None:
    settings = settings_from_connection(host=BASE, schema=None, port=None, password=TOKEN, extra={})
    assert settings.origin == ("https", "bria.test", 443)
    assert settings.is_api_origin(f"{BASE}/v2/status/r")
    assert settings.is_api_origin("https://bria.test:443/v2/status/r")
    assert not settings.is_api_origin(f"{PLAIN}/v2/status/r")
    assert not settings.is_api_origin("https://bria.test:8443/v2/status/r")
    assert not settings.is_api_origin("https://evil.example/v2/status/r")
    plain = settings_from_connection(host="http://127.0.0.1:8765", schema=None, port=None, password=TOKEN, extra={})
    assert plain.is_api_origin("http://127.0.0.1:8765/_emulator/files/a.png")  # an http API gets http calls
    assert not plain.is_api_origin("https://127.0.0.1:8765/_emulator/files/a.png")


def test_an_absolute_url_is_parsed_once_per_api_url_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # every status poll and download builds its URL here: the configured origin is computed once per settings
    # object, and the URL itself parsed once (it was parsed three times, and the base URL twice, per call)
    from airflow_provider_bria.hooks import _connection

    settings = settings_from_connection(host=BASE, schema=None, port=None, password=TOKEN, extra={})
    assert settings.origin == ("https", "bria.test", 443)
    parsed: list[str] = []
    real = _connection.strict_split
    monkeypatch.setattr(_connection, "strict_split", lambda url, **kw: (parsed.append(url), real(url, **kw))[1])
    assert settings.api_url(f"{BASE}/v2/status/r1") == (f"{BASE}/v2/status/r1", "/v2/status/r1")
    assert settings.api_url("https://bria.test:443/v2/status/r2?a=1") == (f"{BASE}/v2/status/r2?a=1", "/v2/status/r2")
    assert parsed == [f"{BASE}/v2/status/r1", "https://bria.test:443/v2/status/r2?a=1"]
    for other in (f"{PLAIN}/v2/status/r", "https://bria.test:8443/v2/status/r", "https://evil.example/x"):
        with pytest.raises(BriaInputError, match="Refusing to send the api_token"):
            settings.api_url(other)


@pytest.mark.parametrize(
    "value",
    [
        f"{BASE}/v2/status/r-1",
        "https://bria.test:443/v2/status/r-1",
        "HTTPS://BRIA.TEST/v2/status/r-1",
        f"{PLAIN}/v2/status/r-1",
        "https://bria.test:8443/v2/status/r-1",
        "https://evil.example/v2/status/r-1",
        "https://bría.test/v2/status/r-1",
        "r-1",
    ],
)
def test_status_target_is_always_the_status_path_on_the_configured_origin(value: str) -> None:
    assert status_target(value, ("https", "bria.test", 443)) == ("/v2/status/r-1", "r-1")


@pytest.mark.parametrize(
    "value",
    [
        "http://evil.example\\@bria.test/v2/status/r-1",
        "https://EVIL.example\\@BRIA.test:443/v2/status/r-1",
        "https://user@bria.test/v2/status/r-1",
        "https://bria.test\\evil.example/v2/status/r-1",
        "https://bria .test/v2/status/r-1",
        "https://bria.test\t/v2/status/r-1",
        "https://bria.test:99999/v2/status/r-1",
        "https://[::1/v2/status/r-1",
        "..",
        "../../v1/tailored-gen/projects",
        "file:///etc/passwd",
    ],
)
def test_malformed_status_urls_and_ids_are_refused(value: str) -> None:
    with pytest.raises(BriaInputError):
        status_target(value, ("https", "bria.test", 443))


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example\\@bria.test/v1/tailored-gen/projects",
        "https://evil.example\\@bria.test/v1/tailored-gen/projects",
        "https://Evil.Example\\@Bria.Test:443/v1/tailored-gen/projects",
        "https://user:pw@bria.test/v1/tailored-gen/projects",
        "https://bría.test/v1/tailored-gen/projects",
        "https://xn--bra-mpa.test/v1/tailored-gen/projects",
        "https://bria.test.evil.example/v1/tailored-gen/projects",
        "https://bria.test:8443/v1/tailored-gen/projects",
        "https://bria.test/v1/tailored-gen/../../admin",
        "https://bria.test/v1/%2e%2e/admin",
    ],
)
def test_request_to_a_foreign_or_ambiguous_url_is_refused_before_sending(hook: Any, api: rm.Mocker, url: str) -> None:
    api.register_uri(rm.ANY, rm.ANY, json=[])
    with pytest.raises(BriaInputError) as info:
        hook.request("GET", url)
    assert TOKEN not in str(info.value)
    assert api.call_count == 0


def test_api_origin_url_is_rebuilt_from_the_configured_origin(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/v1/tailored-gen/projects", json=[])
    hook.request("GET", "HTTPS://BRIA.TEST:443/v1/tailored-gen/projects?x=1")
    assert api.last_request.url == f"{BASE}/v1/tailored-gen/projects?x=1"
    assert api.last_request.headers["api_token"] == TOKEN


def test_http_status_url_on_api_host_is_polled_over_https(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/v2/status/r-3", json={"status": "IN_PROGRESS"})
    api.get(f"{PLAIN}/v2/status/r-3", json={"status": "COMPLETED"})  # must never be contacted
    resp = hook.get_status(f"{PLAIN}/v2/status/r-3")
    assert resp.status is JobStatus.IN_PROGRESS
    assert resp.request_id == "r-3"
    assert [(r.scheme, r.hostname, r.path) for r in api.request_history] == [("https", "bria.test", "/v2/status/r-3")]
    assert api.last_request.headers["api_token"] == TOKEN


def test_absolute_http_path_on_api_host_is_refused(hook: Any, api: rm.Mocker) -> None:
    api.register_uri(rm.ANY, rm.ANY, json=[])
    with pytest.raises(BriaInputError, match="Refusing to send the api_token to http://bria.test") as info:
        hook.request("GET", f"{PLAIN}/v1/tailored-gen/projects")
    assert TOKEN not in str(info.value)
    with pytest.raises(BriaInputError, match="Refusing to send the api_token"):
        hook.request("GET", "https://bria.test:8443/v1/tailored-gen/projects")
    assert api.call_count == 0
    hook.request("GET", "https://bria.test:443/v1/tailored-gen/projects")  # explicit default port: same origin
    assert api.last_request.headers["api_token"] == TOKEN


def test_open_download_of_http_url_on_api_host_sends_no_token(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{PLAIN}/_emulator/files/a.png", content=b"PNG")
    with hook.open_download(f"{PLAIN}/_emulator/files/a.png") as resp:
        assert resp.content == b"PNG"
    assert api.last_request.scheme == "http"
    assert "api_token" not in api.last_request.headers


def test_open_download_drops_token_on_https_to_http_redirect(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/files/1", status_code=302, headers={"Location": f"{PLAIN}/files/1-plain"})
    api.get(f"{PLAIN}/files/1-plain", status_code=301, headers={"Location": f"{BASE}/files/1-back"})
    api.get(f"{BASE}/files/1-back", content=b"OBJ")
    with hook.open_download(f"{BASE}/files/1") as resp:
        assert resp.content == b"OBJ"
    first, plain, back = api.request_history
    assert (first.scheme, first.headers["api_token"]) == ("https", TOKEN)
    assert plain.scheme == "http"
    assert "api_token" not in plain.headers
    assert "api_token" not in back.headers  # back on the API host, but the chain left the origin: no token


def test_open_download_drops_token_on_redirect_to_other_port(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/files/2", status_code=307, headers={"Location": "https://bria.test:8443/files/2"})
    api.get("https://bria.test:8443/files/2", content=b"X")
    with hook.open_download(f"{BASE}/files/2") as resp:
        assert resp.content == b"X"
    assert "api_token" not in api.last_request.headers


def test_http_api_connection_still_sends_token_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection explicitly configured as http (the emulator) keeps working: its origin is http."""
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json("http://127.0.0.1:8765"))
    hook = BriaHook()
    with rm.Mocker() as api:
        api.get("http://127.0.0.1:8765/v2/status/r-4", json={"status": "COMPLETED", "result": {"image_url": "u"}})
        assert hook.get_status("http://127.0.0.1:8765/v2/status/r-4").status is JobStatus.COMPLETED
        assert api.last_request.headers["api_token"] == TOKEN
    hook.close()


def test_open_download_sends_no_token_after_a_foreign_redirect_back_to_the_api(hook: Any, api: rm.Mocker) -> None:
    api.get("https://cdn.example/o.png", status_code=302, headers={"Location": f"{BASE}/v1/tailored-gen/projects"})
    api.get(f"{BASE}/v1/tailored-gen/projects", content=b"[]")
    with hook.open_download("https://cdn.example/o.png") as resp:
        assert resp.content == b"[]"
    assert all("api_token" not in r.headers for r in api.request_history)


@pytest.mark.parametrize(
    "location",
    [
        "http://evil.example\\@bria.test/files/1",
        "https://evil.example\\@BRIA.TEST/files/1",
        "https://u:p@bria.test/files/1",
        "https://bria.test\\@evil.example/files/1",
    ],
)
def test_open_download_refuses_an_ambiguous_redirect(hook: Any, api: rm.Mocker, location: str) -> None:
    api.get(rm.ANY, content=b"X")  # registered first: later registrations take precedence
    api.get(f"{BASE}/files/1", status_code=302, headers={"Location": location})
    with pytest.raises(BriaInputError, match="Download URL"):
        hook.open_download(f"{BASE}/files/1")
    assert api.call_count == 1


@pytest.mark.parametrize(
    "url",
    ["http://evil.example\\@bria.test/files/1", "https://EVIL.example\\@bria.test:443/files/1", "file:///etc/passwd"],
)
def test_open_download_refuses_an_ambiguous_url(hook: Any, api: rm.Mocker, url: str) -> None:
    api.get(rm.ANY, content=b"X")
    with pytest.raises(BriaInputError):
        hook.open_download(url)
    assert api.call_count == 0


def test_untrusted_download_on_the_api_origin_gets_no_token(hook: Any, api: rm.Mocker) -> None:
    api.get(f"{BASE}/files/9", content=b"X")
    with hook.open_download(f"{BASE}/files/9", trusted=False) as resp:
        assert resp.content == b"X"
    assert "api_token" not in api.last_request.headers
    tag = hook.url_tag(f"{BASE}/files/9")
    assert TOKEN not in tag
    assert hook.trusts_url(f"{BASE}/files/9", tag)
    assert not hook.trusts_url(f"{BASE}/files/10", tag)
    assert not hook.trusts_url(f"{BASE}/files/9", None)


def test_idn_connection_host_is_stored_in_its_ascii_form() -> None:
    settings = settings_from_connection(host="https://bría.test", schema=None, port=None, password=TOKEN, extra={})
    assert settings.base_url == "https://xn--bra-sma.test"
    assert settings.is_api_origin("https://xn--bra-sma.test/v2/status/r")
    assert not settings.is_api_origin("https://bría.test/v2/status/r")  # the Unicode spelling never gets the token
