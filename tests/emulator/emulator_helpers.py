"""Helpers of the emulator contract tests: a raw-HTTP client with builders, test images, error-shape checks.

Every test talks to a real emulator process over HTTP with ``requests``; nothing here imports the app.
"""

from __future__ import annotations

import base64
import functools
import io
import time
from collections.abc import Callable
from typing import Any

import requests

TG = "/v1/tailored-gen"


class Api:
    """A tiny raw-HTTP client: ``api.post("/v1/...", json=...)`` returns the :class:`requests.Response`.

    :param url: the emulator's base URL.
    :param token: the api_token to send (``None`` sends none).
    """

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["api_token"] = token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """Call and assert the status; return the decoded JSON (``None`` for an empty body)."""
        resp = self.request(method, path, **kwargs)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json() if resp.content else None

    # ---- builders (each asserts its own success) ---------------------------------------------
    def project(self, **fields: Any) -> dict[str, Any]:
        body = {"project_name": "Brand", "ip_medium": "illustration", "ip_type": "stylized_scene", **fields}
        return self.ok("POST", f"{TG}/projects", 201, json=body)

    def dataset(self, project_id: int, **fields: Any) -> dict[str, Any]:
        return self.ok("POST", f"{TG}/datasets", 201, json={"project_id": project_id, "name": "ds", **fields})

    def upload(self, dataset_id: int, data: bytes, name: str = "img.png", **fields: Any) -> dict[str, Any]:
        body = {"file": base64.b64encode(data).decode(), "image_name": name, **fields}
        return self.ok("POST", f"{TG}/datasets/{dataset_id}/images", 201, json=body)

    def fibo_dataset(self, images: list[bytes], *, schema: bool = True, complete: bool = False) -> dict[str, Any]:
        """A FIBO project + basic dataset with the images uploaded (schema set first when ``schema``)."""
        project = self.project(training_version="fibo")
        dataset = self.dataset(project["id"], training_version="fibo")
        if schema:
            encoded = [base64.b64encode(b).decode() for b in images[:10]]
            while len(encoded) < 5:
                encoded.append(encoded[0])
            vs = self.ok("POST", f"{TG}/generate_visual_schema", json={"images": encoded})["visual_schema"]
            self.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": vs})
        for index, data in enumerate(images):
            self.upload(dataset["id"], data, f"image_{index}.png")
        if complete:
            self.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
        return self.ok("GET", f"{TG}/datasets/{dataset['id']}")

    def legacy_dataset(self, version: str = "max", *, project_id: int | None = None, complete: bool = True) -> Any:
        """A legacy dataset with the 5 images the spec requires for completion (completed when ``complete``)."""
        pid = project_id if project_id is not None else self.project(project_name=f"legacy-{version}")["id"]
        dataset = self.dataset(pid, training_version=version)
        for color in COLORS[:5]:
            self.upload(dataset["id"], make_image(color), f"{color}.png")
        if complete:
            self.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
        return self.ok("GET", f"{TG}/datasets/{dataset['id']}")

    def model(self, dataset_id: int, **fields: Any) -> dict[str, Any]:
        return self.ok("POST", f"{TG}/models", 201, json={"dataset_id": dataset_id, "name": "model", **fields})

    def wait_model(self, model_id: int, statuses: tuple[str, ...], timeout: float = 15.0) -> dict[str, Any]:
        """Poll GET model until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            model = self.ok("GET", f"{TG}/models/{model_id}")
            if model["status"] in statuses:
                return model
            assert time.monotonic() < deadline, f"model {model_id} stuck in {model['status']}"
            time.sleep(0.05)

    def trained_model(self, images: list[bytes], **fields: Any) -> dict[str, Any]:
        """A FIBO model trained to Completed (the emulator's training time should be short)."""
        dataset = self.fibo_dataset(images, complete=True)
        model = self.model(dataset["id"], **fields)
        self.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
        return self.wait_model(model["id"], ("Completed",))

    def wait_job(self, request_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll /v2/status until the job leaves IN_PROGRESS."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.ok("GET", f"/v2/status/{request_id}")
            if body["status"] != "IN_PROGRESS":
                return body
            assert time.monotonic() < deadline, f"job {request_id} stuck"
            time.sleep(0.05)


@functools.lru_cache(maxsize=64)
def make_image(
    color: tuple[int, int, int] | str = "red", size: tuple[int, int] = (1024, 1024), fmt: str = "PNG"
) -> bytes:
    """A solid image with a contrasting square, encoded in ``fmt`` (cached)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill="white")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


COLORS = ["red", "blue", "green", "purple", "orange", "teal", "yellow", "pink", "brown", "gray"]


def v2_shape(body: Any, code: int) -> None:
    """Assert the v2 error envelope."""
    assert set(body) == {"error", "request_id"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["request_id"], str)
    assert body["request_id"]


def message_shape(body: Any) -> str:
    """Assert the v1 ``{"message": ...}`` shape; return the message."""
    assert isinstance(body, dict), body
    assert set(body) == {"message"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body["message"]


Builder = Callable[..., Any]
