"""Issue 11 item 7: the 12 MB upload limit, ``..`` run ids, ``.part`` clean-up, result URLs without their query
in XCom, malformed connection hosts."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import fsspec
import pytest
from securitylib import Recorder, context, json_route, png, resumed_images_op, send

from airflow_provider_bria.exceptions import BriaConnectionConfigError


def _noise_png(side: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


@pytest.mark.parametrize("listed_size", [True, False])
def test_quality_gate_skips_images_above_12_mb(tmp_path: Path, listed_size: bool) -> None:
    from airflow_provider_bria.operators._image_sources import ImageSource
    from airflow_provider_bria.operators._quality_gate import ImageRejected, SkipCode, inspect_image

    data = _noise_png(2200)  # ~13.9 MiB, 2200x2200: a valid resolution
    assert 13 * 1024 * 1024 < len(data) < 15 * 1024 * 1024
    path = tmp_path / "big.png"
    path.write_bytes(data)
    src = ImageSource(uri=str(path), name="big.png", path=str(path), fs=fsspec.filesystem("file"),
                      size=len(data) if listed_size else None)
    with pytest.raises(ImageRejected) as info:
        inspect_image(src, increase_resolution=False)
    assert info.value.code == SkipCode.TOO_LARGE
    assert "12 MB" in info.value.reason


def test_a_dotdot_run_id_stays_inside_the_outputs_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow_provider_bria.operators._generation_inputs import default_output_path, safe_segment

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    for run_id in ("..", ".", "...", "../..", "%2e%2e"):
        location = default_output_path(context(run_id))
        resolved = os.path.normpath(location.removeprefix("file://"))
        assert resolved.startswith(str(tmp_path / "bria_outputs" / "sec") + os.sep), (run_id, location)
    assert safe_segment("..") == "__"
    assert safe_segment("v1.2") == "v1.2"


def test_part_files_of_a_killed_try_are_removed_on_retry(hook: Any, server: Recorder, tmp_path: Path) -> None:
    op = resumed_images_op(server, tmp_path, "r-8", lambda h: send(h, 200, png(1024, 1024)))
    stem = op.stem
    mine = [tmp_path / f".{stem}.png.0123456789.part", tmp_path / f".{stem}.json.abcdefabcd.part"]
    theirs = tmp_path / ".another-task-image-0123abcd4567.png.fedcba9876.part"
    for p in (*mine, theirs):
        p.write_bytes(b"half a file")
    op.execute(context())
    assert not any(p.exists() for p in mine)
    assert theirs.exists()  # another task's temporary is left alone
    assert (tmp_path / f"{stem}.png").exists()


def test_result_urls_reach_xcom_without_their_query(hook: Any, server: Recorder, tmp_path: Path) -> None:
    from airflow_provider_bria.operators.generation import BriaGenerateVideoOperator

    signed = f"{server.origin}/files/v.mp4?X-Amz-Signature=s3cr3tsig&X-Amz-Credential=AKIA"
    server.routes["/v2/status/r-v"] = json_route({"status": "COMPLETED", "request_id": "r-v",
                                                  "result": {"video_url": signed}})
    server.routes["/files/v.mp4"] = lambda h: send(h, 200, b"\x00\x00\x00\x18ftypmp42" + b"\0" * 64)
    op = BriaGenerateVideoOperator(task_id="v", model_id=1, image="https://img.example/a.png",
                                   output_path=str(tmp_path), check_model=False, hook_params={"retry_limit": 0})
    stem = op._item(1, "https://img.example/a.png").stem
    (tmp_path / f"{stem}.json").write_text(json.dumps({"status": "submitted", "request_id": "r-v"}))
    record = op.execute(context())
    assert record["video_url"] == f"{server.origin}/files/v.mp4"
    assert "s3cr3tsig" not in (tmp_path / f"{stem}.json").read_text()
    again = op.execute(context())  # existing: read back from the sidecar
    assert again["existing"]
    assert "s3cr3tsig" not in json.dumps(again)


@pytest.mark.parametrize(("host", "message"), [
    ("http://[::1", "not a valid URL"),
    ("http://[::1:8765/x", "not a valid URL"),
    ("http://bria .test", "whitespace"),
    ("http://bria.test\\@evil.example", "backslash"),
    ("https://bria\n.test", "whitespace"),
])
def test_malformed_connection_hosts(host: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", json.dumps({"conn_type": "bria", "host": host,
                                                                "password": "tok-1"}))
    with pytest.raises(BriaConnectionConfigError, match=message):
        BriaHook().settings  # noqa: B018
