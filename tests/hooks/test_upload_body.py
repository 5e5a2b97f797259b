"""The JSON body of an image upload is spliced (base64 never goes through the JSON encoder) yet is, byte for byte,
the body ``requests`` makes from the same dict (the oracle: requests' own ``json=`` encoding)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from hooktestlib import BASE, assert_sent, png_bytes

from airflow_provider_bria.hooks._inputs import EncodedJSON, json_with_base64

TG = "/v1/tailored-gen"
PNG = png_bytes()


def requests_body(body: dict[str, Any]) -> bytes:
    """What ``requests`` sends for ``json=body``."""
    prepared = requests.Request("POST", "http://x/", json=body).prepare()
    assert isinstance(prepared.body, bytes)
    return prepared.body


@pytest.mark.parametrize("rest", [
    {},
    {"image_name": "cat.png"},
    {"image_name": "chat-été-猫.png", "increase_resolution": False, "content_moderation": True},
    {"image_name": 'quote " and \\ backslash'},
])
@pytest.mark.parametrize("data", [PNG, b"\x00\xff" * 1000, b"a"])
def test_the_spliced_body_is_the_one_requests_makes(data: bytes, rest: dict[str, Any]) -> None:
    body = json_with_base64("file", data, rest)
    assert isinstance(body, EncodedJSON)
    expected = {"file": base64.b64encode(data).decode("ascii"), **rest}
    assert bytes(body) == requests_body(expected)
    assert json.loads(body) == expected


def test_upload_image_sends_the_spliced_body_as_json(hook: Any, api: Any) -> None:
    api.post(f"{BASE}{TG}/datasets/11/images", json={"id": 21}, status_code=201)
    hook.upload_image(11, file=PNG, image_name="cat.png", increase_resolution=False)
    req = assert_sent(api, "POST", f"{TG}/datasets/11/images")
    assert req.headers["Content-Type"] == "application/json"
    expected = {"file": base64.b64encode(PNG).decode("ascii"), "image_name": "cat.png", "increase_resolution": False}
    assert req.body == requests_body(expected)
    assert "api_token" in req.headers
