"""The sync session's proxies and CA bundle still come from the environment (read once per origin, not per
request), and ``~/.netrc`` never adds credentials next to the ``api_token``."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from hooktestlib import BASE, TOKEN, conn_json

STORAGE = "https://storage.test"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
               "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy, CA-bundle or netrc setting from the machine; a home without ``.netrc``."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def _get_models(hook: Any, api: rm.Mocker) -> Any:
    api.get(f"{BASE}/v1/tailored-gen/models", json=[])
    hook.request("GET", "/v1/tailored-gen/models")
    return api.last_request


def test_https_proxy_from_environment(monkeypatch: pytest.MonkeyPatch, hook: Any, api: rm.Mocker) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert _get_models(hook, api).proxies.get("https") == "http://proxy.test:3128"


def test_no_proxy_skips_the_api_host_only(monkeypatch: pytest.MonkeyPatch, hook: Any, api: rm.Mocker) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "bria.test")
    assert "https" not in _get_models(hook, api).proxies
    api.get(f"{STORAGE}/out.png", content=b"x")
    hook.open_download(f"{STORAGE}/out.png").close()
    assert api.last_request.proxies.get("https") == "http://proxy.test:3128"  # another host: proxied


def test_no_proxy_by_default(hook: Any, api: rm.Mocker) -> None:
    assert not _get_models(hook, api).proxies


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REQUESTS_CA_BUNDLE": "/etc/bundle-a.pem", "CURL_CA_BUNDLE": "/etc/bundle-b.pem"}, "/etc/bundle-a.pem"),
        ({"CURL_CA_BUNDLE": "/etc/bundle-b.pem"}, "/etc/bundle-b.pem"),
        ({}, True),
    ],
)
def test_ca_bundle_from_environment(monkeypatch: pytest.MonkeyPatch, hook: Any, api: rm.Mocker,
                                    env: dict[str, str], expected: Any) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _get_models(hook, api).verify == expected


def test_netrc_credentials_are_never_sent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hook: Any,
                                          api: rm.Mocker) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine bria.test login someone password netrc-secret\n"
                     "machine storage.test login other password storage-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    sent = _get_models(hook, api)
    assert "Authorization" not in sent.headers
    assert sent.headers["api_token"] == TOKEN
    api.get(f"{STORAGE}/out.png", content=b"x")
    hook.open_download(f"{STORAGE}/out.png").close()
    assert "Authorization" not in api.last_request.headers  # a pre-signed URL refuses a second credential
    assert "api_token" not in api.last_request.headers


def test_environment_read_once_per_origin(monkeypatch: pytest.MonkeyPatch, hook: Any, api: rm.Mocker) -> None:
    import requests.utils

    calls: list[str] = []
    original = requests.utils.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        calls.append(url)
        return original(url, no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setattr("requests.sessions.get_environ_proxies", counting)
    api.get(f"{BASE}/v1/tailored-gen/models", json=[])
    api.get(f"{STORAGE}/out.png", content=b"x")
    for _ in range(5):
        hook.request("GET", "/v1/tailored-gen/models")
        hook.open_download(f"{STORAGE}/out.png").close()
    assert sorted(calls) == [f"{BASE}/v1/tailored-gen/models", f"{STORAGE}/out.png"]


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward HTTP proxy stand-in: records the request line and answers it itself."""

    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append((self.path, self.headers.get("api_token")))
        body = json.dumps([{"id": 7, "via": "proxy"}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    """A proxy on 127.0.0.1 (stopped at the end of the test)."""
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_requests_really_go_through_the_environment_proxy(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json("http://bria.invalid"))
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with BriaHook(retry_limit=0) as hook:
        assert hook.request("GET", "/v1/tailored-gen/models") == [{"id": 7, "via": "proxy"}]
        assert hook.request("GET", "/v1/tailored-gen/models") == [{"id": 7, "via": "proxy"}]
    assert _Proxy.seen == [("http://bria.invalid/v1/tailored-gen/models", TOKEN)] * 2
