"""The emulator as a server someone may leave running (issue 11 item 6), over real HTTP.

Host check, token on every admin route, refusal to listen publicly without a token, body caps, outbound
fetch limits (deadline, redirects, private targets), decompression bombs, bad ZIP entries, deep JSON.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from emulator_helpers import TG, Api, make_image, message_shape, v2_shape

from airflow_provider_bria.emulator.settings import Settings

MIB = 1024 * 1024


def _raw(url: str, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the emulator; return everything it answers until it closes or goes quiet."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk
        if b"\r\n\r\n" in data and data.split(b"\r\n\r\n", 1)[1].rstrip().endswith(b"}"):
            return data


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


# --------------------------------------------------------------------------------------------
# Host header, admin token, public bind
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", ""])
def test_foreign_host_header_is_refused(emulator: Any, host: str) -> None:
    port = urlsplit(emulator.url).port
    raw = _raw(
        emulator.url,
        f"GET {TG}/projects HTTP/1.1\r\nHost: {host}\r\napi_token: {emulator.token}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert _status(raw) == 400
    assert b"Host" in raw
    for ok_host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        raw = _raw(
            emulator.url,
            f"GET {TG}/projects HTTP/1.1\r\nHost: {ok_host}\r\napi_token: {emulator.token}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert _status(raw) == 200, ok_host


def test_host_allowed_names() -> None:
    settings = Settings(host="10.1.2.3", api_token="t", allowed_hosts=("bria-emulator",))
    assert settings.host_allowed("127.0.0.1:8765")
    assert settings.host_allowed("[::1]:8765")
    assert settings.host_allowed("LOCALHOST")
    assert settings.host_allowed("10.1.2.3:1")
    assert settings.host_allowed("bria-emulator:8765")
    assert not settings.host_allowed("bria-emulator.evil:8765")
    assert not settings.host_allowed("[::2]:8765")
    assert not settings.host_allowed("")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])  # noqa: S104 (never bound: refused first)
def test_public_bind_without_token_is_refused(host: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BRIA_EMULATOR_API_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_provider_bria.emulator", "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert "--api-token" in proc.stderr
    assert "listening" not in proc.stdout


# --------------------------------------------------------------------------------------------
# Body caps
# --------------------------------------------------------------------------------------------


def test_400_mib_body_by_content_length_is_413_before_reading(emulator: Any) -> None:
    head = (
        f"POST {TG}/projects HTTP/1.1\r\nHost: 127.0.0.1\r\napi_token: {emulator.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {400 * MIB}\r\n\r\n"
    ).encode()
    raw = _raw(emulator.url, head + b"{")  # not one more byte is sent: the answer must not wait for them
    assert _status(raw) == 413
    assert "larger than" in message_shape(json.loads(raw.split(b"\r\n\r\n", 1)[1]))
    assert emulator.state()["counts"]["projects"] == 0


@pytest.fixture(scope="module")
def small_body_emulator(start_emulator: Any) -> Iterator[Any]:
    emu = start_emulator(extra_args=["--max-body-mb", "1"])
    yield emu
    emu.stop()


def test_streamed_body_without_length_is_counted_and_cut(small_body_emulator: Any) -> None:
    emu = small_body_emulator
    parts = urlsplit(emu.url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /v2/image/generate/tailored HTTP/1.1\r\nHost: 127.0.0.1\r\napi_token: {emu.token}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        chunk = b"x" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sock.settimeout(0.05)
        answer = b""
        while sent < 400 * MIB:  # the 400 MiB of the review, stopped as soon as the emulator answers
            try:
                sock.sendall(frame)
                sent += len(chunk)
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if answer:
                break
        sock.settimeout(10)
        answer += _read_all(sock) if answer and not answer.rstrip().endswith(b"}") else b""
    assert _status(answer) == 413
    v2_shape(json.loads(answer.split(b"\r\n\r\n", 1)[1]), 413)
    assert sent < 16 * MIB  # refused after about the cap, not after the whole stream
    assert emu.health()


def test_bodies_under_the_cap_still_work(small_body_emulator: Any) -> None:
    api = Api(small_body_emulator.url, small_body_emulator.token)
    assert api.post(f"{TG}/projects", json={"project_name": "p" * 1000, "ip_medium": "photography",
                                            "ip_type": "other"}).status_code == 201
    resp = api.post(f"{TG}/projects", data=b"{" + b" " * (2 * MIB) + b"}", headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    message_shape(resp.json())


# --------------------------------------------------------------------------------------------
# Deep JSON
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_400_never_500(api: Api, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"project_name": ' + nested + ', "ip_medium": "photography", "ip_type": "other"}'
    resp = api.post(f"{TG}/projects", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "nested" in message_shape(resp.json())
    v2 = api.post("/v2/image/generate/tailored", data=nested, headers={"Content-Type": "application/json"})
    assert v2.status_code == 400
    v2_shape(v2.json(), 400)


def test_deeply_nested_json_inside_a_string_field_is_400(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images[:1])
    image = dataset["images"][0]
    deep = "[" * 100_000 + "]" * 100_000
    resp = api.put(f"{TG}/datasets/{dataset['id']}/images/{image['id']}", json={"caption": deep})
    assert resp.status_code == 400
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={"visual_schema": deep})
    assert resp.status_code == 400


# --------------------------------------------------------------------------------------------
# Outbound fetches
# --------------------------------------------------------------------------------------------


class _Tricky(http.server.BaseHTTPRequestHandler):
    """``/slow.png`` sends one byte per second; ``/redirect-file`` redirects to file://; ``/loop`` loops;
    ``/ok.png`` is a real image."""

    hits: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        type(self).hits.append(self.path)
        if self.path == "/slow.png":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(60):  # at most a minute, then the handler ends by itself
                    self.wfile.write(b"\x89")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                type(self).hits.append("closed-by-emulator")
            return
        if self.path in ("/redirect-file", "/loop"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd" if self.path == "/redirect-file" else "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = make_image("red")
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def tricky_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tricky)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def strict_emulator(start_emulator: Any) -> Iterator[Any]:
    """An emulator with the production default: no private/loopback fetch targets."""
    emu = start_emulator(allow_private_fetch=False)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def impatient_emulator(start_emulator: Any) -> Iterator[Any]:
    emu = start_emulator(extra_args=["--fetch-timeout", "2"])
    yield emu
    emu.stop()


def _basic_dataset(api: Api) -> dict[str, Any]:
    return api.dataset(api.project()["id"])


def test_image_url_sending_one_byte_per_second_hits_the_deadline(impatient_emulator: Any, tricky_server: str) -> None:
    api = Api(impatient_emulator.url, impatient_emulator.token)
    dataset = _basic_dataset(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"image_url": f"{tricky_server}/slow.png"})
    assert resp.status_code == 422
    assert "Timed out" in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}")["images_count"] == 0


def test_redirects_only_to_http_and_only_a_few_hops(api: Api, tricky_server: str) -> None:
    dataset = _basic_dataset(api)
    for path, text in (("/redirect-file", "non-http(s)"), ("/loop", "Too many redirects")):
        resp = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"image_url": f"{tricky_server}{path}"})
        assert resp.status_code == 422, path
        assert text in message_shape(resp.json())
    assert _Tricky.hits.count("/loop") == 6  # first request + 5 hops
    ok = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"image_url": f"{tricky_server}/ok.png"})
    assert ok.status_code == 201  # the test setting (allow private) really lets loopback through


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{port}/ok.png", "http://localhost:{port}/ok.png", "http://[::1]:{port}/ok.png",
     "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x.png", "http://[::ffff:127.0.0.1]:{port}/ok.png"],
)
def test_private_targets_refused_by_default(strict_emulator: Any, tricky_server: str, target: str) -> None:
    api = Api(strict_emulator.url, strict_emulator.token)
    url = target.format(port=urlsplit(tricky_server).port)
    before = len(_Tricky.hits)
    dataset = _basic_dataset(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"image_url": url})
    assert resp.status_code == 422
    assert "private" in message_shape(resp.json())
    schema = api.post(f"{TG}/generate_visual_schema", json={"images": [url] * 5})
    assert schema.status_code == 422
    advanced = api.dataset(api.project()["id"], upload_type="advanced")
    bulk = api.post(f"{TG}/datasets/{advanced['id']}/images/bulk-upload", json={"zip_url": url})
    assert bulk.status_code == 400
    assert len(_Tricky.hits) == before  # no request reached the server


def test_own_file_urls_are_inputs_without_http(strict_emulator: Any) -> None:
    """An emulator output URL (like Bria's) is a valid image input even when private targets are refused."""
    api = Api(strict_emulator.url, strict_emulator.token)
    dataset = _basic_dataset(api)
    first = api.upload(dataset["id"], make_image("blue"), "blue.png")
    again = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"image_url": first["image_url"]})
    assert again.status_code == 201
    missing = first["image_url"].rsplit("/", 1)[0] + "/no-such-file.png"
    assert api.post(f"{TG}/datasets/{dataset['id']}/images", json={"image_url": missing}).status_code == 422


# --------------------------------------------------------------------------------------------
# Decompression bombs and bad ZIP entries
# --------------------------------------------------------------------------------------------


def _bulk_and_wait(api: Api, dataset_id: int, zip_url: str) -> dict[str, Any]:
    """Start a bulk upload and poll its status until it ends."""
    api.ok("POST", f"{TG}/datasets/{dataset_id}/images/bulk-upload", 202, json={"zip_url": zip_url})
    deadline = time.monotonic() + 60
    while True:
        job = api.ok("GET", f"{TG}/datasets/{dataset_id}/images/bulk-upload/status")
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline
        time.sleep(0.05)


@functools.lru_cache(maxsize=1)
def _bomb_png() -> bytes:
    """A 13000x13000 PNG of a few tens of KB (648 MiB once decoded as RGBA)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (13000, 13000), 0).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def test_pixel_bomb_upload_is_refused_before_decoding(api: Api) -> None:
    bomb = _bomb_png()
    assert len(bomb) < 1 * MIB
    dataset = _basic_dataset(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"file": base64.b64encode(bomb).decode()})
    assert resp.status_code in (413, 422)
    assert "pixels" in message_shape(resp.json())
    schema = api.post(f"{TG}/generate_visual_schema", json={"images": [base64.b64encode(bomb).decode()] * 5})
    assert schema.status_code in (413, 422)


def test_zip_with_one_bomb_among_good_images_fails_only_that_entry(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    zeros = io.BytesIO()
    with zipfile.ZipFile(zeros, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, color in enumerate(("red", "blue", "green")):
            archive.writestr(f"good{index}.png", make_image(color))
        archive.writestr("pixel-bomb.png", _bomb_png())
        archive.writestr("zip-bomb.png", b"\0" * (200 * MIB))  # ~200 KB compressed, 200 MiB inflated
    raw = bytearray(zeros.getvalue())
    name = f"{uuid.uuid4().hex}.zip"
    (root / name).write_bytes(bytes(raw))
    dataset = api.dataset(api.project()["id"], upload_type="advanced", training_version="fibo")
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": json.dumps({"style": "flat"})})
    job = _bulk_and_wait(api, dataset["id"], f"{base}/{name}")
    assert job["status"] == "completed"
    assert job["done"] == 3
    failed = {f["filename"]: f["error_code"] for f in job["failed_images"]}
    assert failed == {"pixel-bomb.png": failed["pixel-bomb.png"], "zip-bomb.png": 413}
    assert failed["pixel-bomb.png"] in (413, 422)


def test_corrupt_zip_entry_is_a_per_entry_failure(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("good.png", make_image("red"))
        archive.writestr("corrupt.png", make_image("blue"))
    raw = bytearray(buf.getvalue())
    header = raw.index(b"PK\x03\x04", raw.index(b"corrupt.png") - 40)
    data_start = header + 30 + len("corrupt.png")
    for offset in range(data_start + 10, data_start + 60):  # scramble the deflate stream of one entry
        raw[offset] ^= 0xFF
    name = f"{uuid.uuid4().hex}.zip"
    (root / name).write_bytes(bytes(raw))
    dataset = api.dataset(api.project()["id"], upload_type="advanced")
    job = _bulk_and_wait(api, dataset["id"], f"{base}/{name}")
    assert job["status"] == "completed"
    assert job["done"] == 1
    assert [f["filename"] for f in job["failed_images"]] == ["corrupt.png"]
    assert job["failed_images"][0]["error_code"] == 422
