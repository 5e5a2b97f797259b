"""Auth (401 in each path's shape), unknown routes, wrong methods and malformed bodies."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import pytest
from emulator_helpers import TG, Api, message_shape, v2_shape


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_missing_or_wrong_token_is_401(emulator: Any, token: str | None) -> None:
    api = Api(emulator.url, token)
    resp = api.get(f"{TG}/projects")
    assert resp.status_code == 401
    assert "api_token" in message_shape(resp.json())
    v2 = api.post("/v2/image/generate/tailored", json={"tailored_model_id": "1", "prompt": "x"})
    assert v2.status_code == 401
    v2_shape(v2.json(), 401)
    assert api.get("/v2/status/abc").status_code == 401
    assert emulator.state()["counts"]["projects"] == 0


def test_token_is_the_api_token_header_not_bearer(emulator: Any) -> None:
    api = Api(emulator.url, None)
    resp = api.get(f"{TG}/projects", headers={"Authorization": f"Bearer {emulator.token}"})
    assert resp.status_code == 401
    assert api.get(f"{TG}/projects", headers={"api_token": emulator.token}).status_code == 200


def test_any_non_empty_token_without_api_token_flag(start_emulator: Any) -> None:
    emu = start_emulator(api_token=None)
    try:
        assert Api(emu.url, "anything-at-all").get(f"{TG}/projects").status_code == 200
        assert Api(emu.url, None).get(f"{TG}/projects").status_code == 401
        parts = urlsplit(emu.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", f"{TG}/projects", headers={"api_token": "\t"})
        assert conn.getresponse().status == 401
        conn.close()
        assert emu.token
    finally:
        emu.stop()


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_admin_and_files_need_the_token_health_does_not(emulator: Any, token: str | None) -> None:
    api = Api(emulator.url, token)
    assert api.get("/_emulator/health").json() == {"status": "ok"}
    for method, path in [
        ("GET", "/_emulator/state"),
        ("POST", "/_emulator/reset"),
        ("GET", "/_emulator/faults"),
        ("POST", "/_emulator/faults"),
        ("POST", "/_emulator/settings"),
        ("GET", "/_emulator/requests"),
        ("POST", "/_emulator/models/1/status"),
        ("GET", "/_emulator/files/nothing.png"),
    ]:
        resp = api.request(method, path, json={"fault_rate": 1.0})
        assert resp.status_code == 401, (method, path)
        assert "api_token" in message_shape(resp.json())
    assert emulator.faults()["fault_rate"] == 0.0  # the refused POST changed nothing
    authorised = Api(emulator.url, emulator.token)
    assert authorised.get("/_emulator/state").status_code == 200
    assert authorised.get("/_emulator/files/nothing.png").status_code == 404


def test_unauthenticated_requests_are_logged(emulator: Any) -> None:
    Api(emulator.url, "bad").get(f"{TG}/projects")
    log = emulator.requests("/v1/")
    assert log[-1]["status"] == 401
    assert log[-1]["path"] == f"{TG}/projects"


def test_unknown_routes_and_methods_keep_bria_shapes(api: Api) -> None:
    v1 = api.get("/v1/tailored-gen/nothing-here")
    assert v1.status_code == 404
    message_shape(v1.json())
    v2 = api.get("/v2/nothing-here")
    assert v2.status_code == 404
    v2_shape(v2.json(), 404)
    wrong_method = api.request("PATCH", f"{TG}/projects")
    assert wrong_method.status_code == 405
    message_shape(wrong_method.json())


@pytest.mark.parametrize(("path", "v2"), [(f"{TG}/projects", False), ("/v2/image/generate/tailored", True)])
def test_malformed_json_is_400(api: Api, path: str, v2: bool) -> None:
    for data in ("{not json", "[1, 2]", ""):
        resp = api.post(path, data=data, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, data
        if v2:
            v2_shape(resp.json(), 400)
        else:
            message_shape(resp.json())


def test_error_bodies_never_echo_the_token(api: Api, emulator: Any) -> None:
    for resp in (
        api.get(f"{TG}/projects/0"),
        api.post("/v2/image/generate/tailored", json={}),
        Api(emulator.url, "wrong").get(f"{TG}/projects"),
    ):
        assert emulator.token not in resp.text
        assert "wrong" not in resp.text
    assert emulator.token not in str(emulator.state())
